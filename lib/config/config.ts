/**
 * Teleport-style YAML configuration: the node config (`teleport`, `auth_service`,
 * `ssh_service.enhanced_recording`) plus `kind: role` / `kind: user` resources that select which
 * enhanced events are recorded for whom (docs/contract.md §2).
 *
 * This module holds what every command needs (the types, the defaults, who is recorded with which
 * events); parsing is config-yaml.ts, loaded only when a config is parsed rather than found in the
 * cache (config-cache.ts): importing the YAML parser and its first parse cost a short command ≈ 10 ms.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { getSystemErrorMessage } from "node:util";
import { EsrError } from "../errors.ts";
import { DEFAULT_EVENTS, EVENT_KINDS, isEventKind, KINDS, type EventKind } from "../events/kinds/index.ts";
import { cachedConfig } from "./config-cache.ts";

export { EVENT_KINDS, type EventKind } from "../events/kinds/index.ts";

export interface EnhancedRecordingConfig {
  enabled: boolean;
  /** Ring buffer size per kind, in pages (Teleport's <kind>_buffer_size keys). */
  bufferPages: Record<EventKind, number>;
  /** Where cgroup v2 is (or will be) mounted. */
  cgroupPath: string;
  /** Parent of the per-session slices, relative to cgroupPath (Teleport's convention). */
  rootPath: string;
  /** `esr.disk_filter` (esr's own key, not Teleport's): opens the disk program does not record. */
  diskFilter: DiskFilterConfig;
}

/**
 * `esr.disk_filter`: read-only opens of files under these paths are counted (filtered_events), not
 * recorded. A trailing "/" means what lies below a directory; without it, that path itself. Empty
 * (the default): every open is recorded, as Teleport does.
 */
export interface DiskFilterConfig {
  ignorePathPrefixes: string[];
}

/** `teleport.storage`: where events and recordings go besides the data dir (docs/contract.md §8). */
export interface StorageConfig {
  /** Every entry receives every event; the first is the one read. `file://…` is the local data dir. */
  auditEventsUris: string[];
  /** Where finished sessions' recording files go; the first PostgreSQL events URI when absent. */
  auditSessionsUri?: string;
  /** How long the fleet store keeps events (`retention_period`). */
  retentionMs: number;
}

/** `esr.integrity`: how often a recording's chain is signed, and how long a host key epoch lasts. */
export interface IntegrityConfig {
  checkpointIntervalMs: number;
  /** An interval checkpoint also after this many items. */
  checkpointEvents: number;
  epochMs: number;
}

/** A config file's name and its whole text. */
export interface ConfigSource {
  name: string;
  text: string;
}

export interface EsrConfig {
  nodename: string;
  dataDir: string;
  storage: StorageConfig;
  integrity: IntegrityConfig;
  clusterName: string;
  enhancedRecording: EnhancedRecordingConfig;
  roles: Map<string, EventKind[]>;
  users: Map<string, string[]>;
  files: string[];
}

/** A problem in a config file, located precisely enough for the operator to fix it. */
export class ConfigError extends EsrError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly key: string,
    message: string,
  ) {
    super(`${file}:${line}: ${key}: ${message}`);
    this.name = "ConfigError";
  }
}

export const DAY_MS = 86_400_000;

export function defaultConfig(): EsrConfig {
  const nodename = hostname();
  return {
    nodename,
    dataDir: "/var/lib/esr",
    storage: { auditEventsUris: [], retentionMs: 365 * DAY_MS },
    integrity: { checkpointIntervalMs: 10_000, checkpointEvents: 10_000, epochMs: 60_000 },
    clusterName: nodename,
    enhancedRecording: {
      enabled: true,
      bufferPages: Object.fromEntries(KINDS.map((k) => [k.name, k.defaultBufferPages])) as Record<EventKind, number>,
      cgroupPath: "/cgroup2",
      rootPath: "/esr",
      diskFilter: { ignorePathPrefixes: [] },
    },
    roles: new Map(),
    users: new Map(),
    files: [],
  };
}

/**
 * The config that `files` make. With `cacheDir` (root's esr: cli/common.ts), a config parsed before
 * from exactly the same texts is taken from there instead of parsed again.
 */
export function loadConfig(files: string[], options: { cacheDir?: string } = {}): EsrConfig {
  const sources = files.map((name) => ({ name, text: readConfigFile(name) }));
  return options.cacheDir === undefined ? parseConfig(sources) : cachedConfig(options.cacheDir, sources, parseConfig);
}

/** Parses config texts, in order; a ConfigError names the file and line of the first problem. */
export function parseConfig(sources: ConfigSource[]): EsrConfig {
  // Synchronous and on use, also in the compiled executable: a command that parses nothing never
  // evaluates the YAML parser.
  const { parseSources } = require("./config-yaml.ts") as typeof import("./config-yaml.ts");
  return parseSources(sources);
}

export function parseEventKinds(list: string, what: string): EventKind[] {
  const kinds = list.split(",").map((item) => item.trim());
  for (const kind of kinds) {
    if (kind === "") throw new EsrError(`${what}: empty event kind in ${quote(list)} (expected ${KINDS_TEXT})`);
    if (!isEventKind(kind)) throw new EsrError(`${what}: unknown event kind ${quote(kind)} (expected ${KINDS_TEXT})`);
  }
  return sortKinds(kinds as EventKind[]);
}

export function eventsForUser(
  cfg: EsrConfig,
  user: string,
  overrides: { roles?: string[]; events?: EventKind[] } = {},
): EventKind[] {
  if (overrides.events) return sortKinds(overrides.events);
  const roles = overrides.roles ?? cfg.users.get(user);
  // A user with no roles at all is recorded like one without a user resource: silently recording
  // no enhanced events for them would be the surprising (and unsafe) choice.
  if (roles === undefined || roles.length === 0) return [...DEFAULT_EVENTS];
  return sortKinds(roles.flatMap((role) => roleEvents(cfg, user, role)));
}

/** Every kind some user could be recorded with under this config: what a daemon must load. */
export function possibleEvents(cfg: EsrConfig): EventKind[] {
  return sortKinds([...DEFAULT_EVENTS, ...[...cfg.roles.values()].flat()]);
}

/** For config-yaml.ts's messages, as for this module's. */
export const KINDS_TEXT = EVENT_KINDS.join(", ");

export function sortKinds(kinds: readonly EventKind[]): EventKind[] {
  return EVENT_KINDS.filter((kind) => kinds.includes(kind));
}

function roleEvents(cfg: EsrConfig, user: string, role: string): EventKind[] {
  const events = cfg.roles.get(role);
  if (events) return events;
  const known = [...cfg.roles.keys()].sort().join(", ");
  const hint = known
    ? `defined roles: ${known}`
    : "no role is defined; pass a file with kind: role resources to --config";
  throw new EsrError(`unknown role ${quote(role)} for user ${quote(user)} (${hint})`);
}

function readConfigFile(name: string): string {
  try {
    return readFileSync(name, "utf8");
  } catch (err) {
    throw new ConfigError(name, 0, "file", `cannot read: ${readFailure(err)}`);
  }
}

function readFailure(err: unknown): string {
  const errno = (err as NodeJS.ErrnoException).errno;
  if (typeof errno === "number") return getSystemErrorMessage(errno);
  return err instanceof Error ? err.message : String(err);
}

/** Values are quoted as JSON so that messages stay on one line and of bounded length. */
export function quote(value: string): string {
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 76)}..."` : text;
}
