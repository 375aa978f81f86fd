/**
 * The YAML side of lib/config: files are walked as YAML syntax trees rather than converted to plain
 * objects, so that every error can name the file and line of the offending value. Loaded only when
 * a config must be parsed (config.ts requires it on use): a config found in the cache needs none of
 * it, nor the `yaml` package.
 */
import { posix } from "node:path";
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document,
  type Node,
  type YAMLMap,
} from "yaml";
import { DEFAULT_EVENTS, isEventKind, KINDS, type EventKind } from "../events/kinds/index.ts";
import { DISK_IGNORE_PREFIXES, ignoredPrefixProblem } from "../events/kinds/disk-filter.ts";
import {
  ConfigError,
  DAY_MS,
  defaultConfig,
  KINDS_TEXT,
  quote,
  sortKinds,
  type ConfigSource,
  type DiskFilterConfig,
  type EnhancedRecordingConfig,
  type EsrConfig,
  type IntegrityConfig,
  type StorageConfig,
} from "./config.ts";

/** 4 GiB of ring buffer per kind with 4 KiB pages: anything larger is a typo, not a choice. */
const MAX_BUFFER_PAGES = 1048576;

/** config.ts's parseConfig. */
export function parseSources(sources: ConfigSource[]): EsrConfig {
  const acc: Accumulator = { cfg: defaultConfig(), clusterNameSet: false, userRoles: new Map() };
  for (const source of sources) {
    acc.cfg.files.push(source.name);
    parseSource(source.name, source.text, acc);
  }
  if (!acc.clusterNameSet) acc.cfg.clusterName = acc.cfg.nodename;
  acc.cfg.users = resolveUsers(acc.userRoles, acc.cfg.roles);
  return acc.cfg;
}

/** Merge state across sources: user roles keep their location until every role is known. */
interface Accumulator {
  cfg: EsrConfig;
  clusterNameSet: boolean;
  userRoles: Map<string, RoleRef[]>;
}

interface RoleRef {
  role: string;
  file: string;
  line: number;
}

/** Users may name roles defined in a later file, so they are checked only once all are read. */
function resolveUsers(userRoles: Map<string, RoleRef[]>, roles: Map<string, EventKind[]>): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const [user, refs] of userRoles) {
    for (const ref of refs) {
      if (!roles.has(ref.role)) {
        throw new ConfigError(
          ref.file,
          ref.line,
          "spec.roles",
          `user ${quote(user)} has role ${quote(ref.role)}, which no loaded file defines`,
        );
      }
    }
    users.set(
      user,
      refs.map((ref) => ref.role),
    );
  }
  return users;
}

function parseSource(file: string, text: string, acc: Accumulator): void {
  const lines = new LineCounter();
  for (const doc of parseAllDocuments(text, { lineCounter: lines })) {
    const reader = new DocReader(file, doc, lines);
    reader.checkSyntax();
    readDocument(reader, acc);
  }
}

/** A key found in a mapping, with its value (null when the key is absent or left empty). */
interface Field {
  path: string;
  value: Node | null;
  keyLine: number;
  /** Where a problem with the value is reported: the value itself, or its key if it has none. */
  line: number;
}

/** Reads one document, turning every problem into a ConfigError that points into the file. */
class DocReader {
  constructor(
    readonly file: string,
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  checkSyntax(): void {
    const err = this.doc.errors[0];
    if (!err) return;
    const line = err.linePos?.[0].line ?? this.lineAt(err.pos[0]);
    // The parser's message ends with its location and a multi-line excerpt; keep the first clause.
    const message = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError(this.file, line, "yaml", message);
  }

  top(): Field {
    const value = this.deref(this.doc.contents);
    const line = value?.range ? this.lineAt(value.range[0]) : 1;
    return { path: "", value, keyLine: line, line };
  }

  field(parent: YAMLMap | undefined, parentPath: string, name: string): Field | undefined {
    const pair = parent?.items.find((item) => isScalar(item.key) && item.key.value === name);
    if (!pair) return undefined;
    const keyNode = pair.key as Node;
    const keyLine = keyNode.range ? this.lineAt(keyNode.range[0]) : 0;
    const value = this.deref(pair.value as Node | null);
    const line = value?.range ? this.lineAt(value.range[0]) : keyLine;
    const path = parentPath ? `${parentPath}.${name}` : name;
    return { path, value: isNullScalar(value) ? null : value, keyLine, line };
  }

  lineOf(node: Node | null, fallback: number): number {
    return node?.range ? this.lineAt(node.range[0]) : fallback;
  }

  fail(at: Field, message: string): never {
    return this.failAt(at.line, at.path || "document", message);
  }

  failAt(line: number, key: string, message: string): never {
    throw new ConfigError(this.file, line, key, message);
  }

  /** Anchors are legal YAML and cheap to follow one at a time, since only known keys are visited. */
  deref(node: Node | null | undefined): Node | null {
    if (isAlias(node)) return node.resolve(this.doc) ?? null;
    return node ?? null;
  }

  private lineAt(offset: number): number {
    return this.lines.linePos(offset).line;
  }
}

function isNullScalar(node: Node | null): boolean {
  return isScalar(node) && node.value === null;
}

function readDocument(r: DocReader, acc: Accumulator): void {
  const top = r.top();
  if (top.value === null) return;
  const doc = mapOf(r, top, "a mapping of keys (teleport:, ssh_service:, or kind: role/user)");
  const kindField = r.field(doc, "", "kind");
  if (!kindField || kindField.value === null) return readNodeConfig(r, doc, acc);
  const kind = stringOf(r, kindField);
  if (kind === "role") return readRole(r, doc, kindField, acc.cfg);
  if (kind === "user") return readUser(r, doc, kindField, acc);
  // Other resources (tokens, connectors...) may share the file with ours; they are Teleport's.
}

function readNodeConfig(r: DocReader, doc: YAMLMap, acc: Accumulator): void {
  const cfg = acc.cfg;
  const teleport = optionalMap(r, r.field(doc, "", "teleport"));
  const nodename = r.field(teleport, "teleport", "nodename");
  if (nodename?.value) cfg.nodename = stringOf(r, nodename);
  const dataDir = r.field(teleport, "teleport", "data_dir");
  if (dataDir?.value) cfg.dataDir = absolutePathOf(r, dataDir);
  readStorage(r, optionalMap(r, r.field(teleport, "teleport", "storage")), cfg.storage);
  const esr = optionalMap(r, r.field(doc, "", "esr"));
  readIntegrity(r, optionalMap(r, r.field(esr, "esr", "integrity")), cfg.integrity);
  readDiskFilter(r, optionalMap(r, r.field(esr, "esr", "disk_filter")), cfg.enhancedRecording.diskFilter);

  const auth = optionalMap(r, r.field(doc, "", "auth_service"));
  const clusterName = r.field(auth, "auth_service", "cluster_name");
  if (clusterName?.value) {
    cfg.clusterName = stringOf(r, clusterName);
    acc.clusterNameSet = true;
  }

  const ssh = optionalMap(r, r.field(doc, "", "ssh_service"));
  readEnhancedRecording(r, optionalMap(r, r.field(ssh, "ssh_service", "enhanced_recording")), cfg.enhancedRecording);
}

function readStorage(r: DocReader, map: YAMLMap | undefined, storage: StorageConfig): void {
  const events = r.field(map, "teleport.storage", "audit_events_uri");
  if (events?.value) {
    // Teleport also takes a single string here.
    const items = isSeq(events.value) ? seqOf(r, events, "a list of URIs") : [events.value];
    storage.auditEventsUris = items.map((node) =>
      storeUriOf(r, { ...events, value: node, line: r.lineOf(node, events.line) }),
    );
  }
  const sessions = r.field(map, "teleport.storage", "audit_sessions_uri");
  if (sessions?.value) storage.auditSessionsUri = storeUriOf(r, sessions);
  const retention = r.field(map, "teleport.storage", "retention_period");
  if (retention?.value) storage.retentionMs = durationOf(r, retention);
}

function readIntegrity(r: DocReader, map: YAMLMap | undefined, integrity: IntegrityConfig): void {
  const interval = r.field(map, "esr.integrity", "checkpoint_interval");
  if (interval?.value) integrity.checkpointIntervalMs = durationOf(r, interval);
  const events = r.field(map, "esr.integrity", "checkpoint_events");
  if (events?.value) integrity.checkpointEvents = countOf(r, events);
  const epoch = r.field(map, "esr.integrity", "epoch_length");
  if (epoch?.value) integrity.epochMs = durationOf(r, epoch);
}

function readDiskFilter(r: DocReader, map: YAMLMap | undefined, filter: DiskFilterConfig): void {
  const prefixes = r.field(map, "esr.disk_filter", "ignore_path_prefixes");
  if (!prefixes?.value) return;
  const items = seqOf(r, prefixes, "a list of absolute paths");
  if (items.length > DISK_IGNORE_PREFIXES)
    r.fail(prefixes, `at most ${DISK_IGNORE_PREFIXES} paths (the BPF program's bound), got ${items.length}`);
  filter.ignorePathPrefixes = items.map((node) => {
    const item = { ...prefixes, value: node, line: r.lineOf(node, prefixes.line) };
    const path = stringOf(r, item);
    const problem = ignoredPrefixProblem(path);
    if (problem) r.fail(item, `${quote(path)} ${problem}`);
    return path;
  });
}

function countOf(r: DocReader, f: Field): number {
  const value = isScalar(f.value) ? f.value.value : undefined;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1)
    r.fail(f, `must be a whole number from 1 up, got ${describe(f.value)}`);
  return value;
}

/** A store URI's scheme is checked here, where the file and line are known; the rest where it is used. */
function storeUriOf(r: DocReader, f: Field): string {
  const value = stringOf(r, f);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme !== "postgresql" && scheme !== "postgres" && scheme !== "file")
    r.fail(f, `must be a postgresql://, postgres:// or file:// URI, got ${quote(value.replace(/:[^@/]*@/, ":…@"))}`);
  return value;
}

const DURATION_UNITS: Record<string, number> = { d: DAY_MS, h: 3_600_000, m: 60_000, s: 1000 };

/** A Go-style duration (`8760h`, `90m`, `1h30m`), plus days (`365d`); at least a second. */
function durationOf(r: DocReader, f: Field): number {
  const text = isScalar(f.value) ? String(f.value.value) : "";
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)([dhms])/g)];
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * DURATION_UNITS[unit!]!, 0);
  if (!parts.length || parts.map((p) => p[0]).join("") !== text || !(ms >= 1000))
    r.fail(f, `must be a duration such as 8760h or 365d, got ${describe(f.value)}`);
  return ms;
}

function readEnhancedRecording(r: DocReader, map: YAMLMap | undefined, er: EnhancedRecordingConfig): void {
  const at = (name: string): Field | undefined => {
    const f = r.field(map, "ssh_service.enhanced_recording", name);
    return f?.value ? f : undefined;
  };
  const enabled = at("enabled");
  if (enabled) er.enabled = booleanOf(r, enabled);
  for (const kind of KINDS) {
    const pages = at(kind.bufferSizeKey);
    if (pages) er.bufferPages[kind.name] = pagesOf(r, pages);
  }
  const cgroupPath = at("cgroup_path");
  if (cgroupPath) er.cgroupPath = absolutePathOf(r, cgroupPath);
  const rootPath = at("root_path");
  if (rootPath) er.rootPath = rootPathOf(r, rootPath);
}

function readRole(r: DocReader, doc: YAMLMap, kind: Field, cfg: EsrConfig): void {
  const name = resourceName(r, doc, kind, "role");
  const spec = optionalMap(r, r.field(doc, "", "spec"));
  const options = optionalMap(r, r.field(spec, "spec", "options"));
  const events = r.field(options, "spec.options", "enhanced_recording");
  cfg.roles.set(name, events?.value ? eventListOf(r, events, name) : [...DEFAULT_EVENTS]);
}

function readUser(r: DocReader, doc: YAMLMap, kind: Field, acc: Accumulator): void {
  const name = resourceName(r, doc, kind, "user");
  const spec = optionalMap(r, r.field(doc, "", "spec"));
  const roles = r.field(spec, "spec", "roles");
  acc.userRoles.set(name, roles?.value ? roleRefsOf(r, roles) : []);
}

function resourceName(r: DocReader, doc: YAMLMap, kind: Field, what: string): string {
  const metadata = r.field(doc, "", "metadata");
  const name = r.field(optionalMap(r, metadata), "metadata", "name");
  if (!name?.value) {
    r.failAt(metadata?.keyLine ?? kind.keyLine, "metadata.name", `${what} has no name (add metadata: { name: ... })`);
  }
  return stringOf(r, name);
}

function eventListOf(r: DocReader, f: Field, role: string): EventKind[] {
  const items = seqOf(r, f, "a list of event kinds");
  const kinds = items.map((item) => {
    const value = isScalar(item) ? item.value : undefined;
    if (!isEventKind(value)) {
      const shown = typeof value === "string" ? quote(value) : describe(item);
      const message = `role ${quote(role)}: unknown event kind ${shown} (expected ${KINDS_TEXT})`;
      r.failAt(r.lineOf(item, f.line), f.path, message);
    }
    return value;
  });
  // An empty list is Teleport's way of saying "the default", not "record nothing".
  return kinds.length === 0 ? [...DEFAULT_EVENTS] : sortKinds(kinds);
}

function roleRefsOf(r: DocReader, f: Field): RoleRef[] {
  return seqOf(r, f, "a list of role names").map((item) => {
    const line = r.lineOf(item, f.line);
    return { role: stringOf(r, { ...f, value: item, line }), file: r.file, line };
  });
}

function optionalMap(r: DocReader, f: Field | undefined): YAMLMap | undefined {
  return f?.value ? mapOf(r, f, "a mapping") : undefined;
}

function mapOf(r: DocReader, f: Field, expected: string): YAMLMap {
  if (!isMap(f.value)) r.fail(f, `must be ${expected}, got ${describe(f.value)}`);
  return f.value;
}

function seqOf(r: DocReader, f: Field, expected: string): (Node | null)[] {
  if (!isSeq(f.value)) r.fail(f, `must be ${expected}, got ${describe(f.value)}`);
  return f.value.items.map((item) => r.deref(item as Node | null));
}

function stringOf(r: DocReader, f: Field): string {
  const value = isScalar(f.value) ? f.value.value : undefined;
  if (typeof value !== "string" || value === "") {
    const hint = isScalar(f.value) && typeof value !== "string" ? " (quote it)" : "";
    r.fail(f, `must be a non-empty string, got ${describe(f.value)}${hint}`);
  }
  return value;
}

/** YAML 1.1 booleans: Teleport's Go YAML parsers accept them, unquoted, for a boolean key. */
const YAML11_BOOLEANS = new Map<string, boolean>([
  ...["yes", "Yes", "YES", "on", "On", "ON"].map((word): [string, boolean] => [word, true]),
  ...["no", "No", "NO", "off", "Off", "OFF"].map((word): [string, boolean] => [word, false]),
]);

function booleanOf(r: DocReader, f: Field): boolean {
  const node = f.value;
  if (isScalar(node)) {
    if (typeof node.value === "boolean") return node.value;
    const yaml11 = node.type === "PLAIN" ? YAML11_BOOLEANS.get(String(node.value)) : undefined;
    if (yaml11 !== undefined) return yaml11;
  }
  return r.fail(f, `must be true or false, got ${describe(node)}`);
}

function pagesOf(r: DocReader, f: Field): number {
  const value = isScalar(f.value) ? f.value.value : undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_BUFFER_PAGES) {
    r.fail(f, `must be a whole number of pages from 1 to ${MAX_BUFFER_PAGES}, got ${describe(f.value)}`);
  }
  return value;
}

/** Normalised so that callers can join it with other paths without re-checking for "..". */
function absolutePathOf(r: DocReader, f: Field): string {
  const value = stringOf(r, f);
  if (!posix.isAbsolute(value)) r.fail(f, `must be an absolute path, got ${quote(value)}`);
  return posix.resolve(value);
}

function rootPathOf(r: DocReader, f: Field): string {
  const path = absolutePathOf(r, f);
  if (path === "/") {
    r.fail(
      f,
      `must not be ${quote(stringOf(r, f))}: esr needs a parent slice of its own under cgroup_path, never the cgroup root (e.g. /esr)`,
    );
  }
  return path;
}

function describe(node: Node | null): string {
  if (node === null) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (!isScalar(node) || node.value === null) return "nothing";
  const value = node.value;
  if (typeof value === "string") return `string ${quote(value)}`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${String(node.source ?? value)}`;
  return quote(String(value));
}
