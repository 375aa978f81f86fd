/** Options several commands share, and how they turn into a configuration. */
import { existsSync, statSync, type Stats } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { defaultCacheDir } from "../lib/config/config-cache.ts";
import { ConfigError, defaultConfig, loadConfig, type EsrConfig } from "../lib/config/config.ts";
import { EsrError } from "../lib/errors.ts";
import { FileEventSource } from "../lib/store/file/file-store.ts";
import type { EventSource } from "../lib/store/store.ts";
import { PostgresEventSource } from "../lib/store/postgres/source.ts";
import { isPostgresUri, maskPassword } from "../lib/store/postgres/uri.ts";
import { shownVerdicts } from "../lib/store/verdicts.ts";
import { safeLine } from "../lib/events/safe-text.ts";

export const DEFAULT_CONFIG_FILE = "/etc/esr.yaml";

export const configArg = {
  config: {
    type: "string",
    valueHint: "FILE",
    description: `Teleport-style config file; repeat to add files (default ${DEFAULT_CONFIG_FILE} when it exists)`,
  },
} as const;

export const sidArg = {
  sid: { type: "positional", required: false, description: "session id (esr ls lists them)" },
} as const;

/** The session id a command was given, exactly one; a usage error otherwise. */
export function requireSid(command: string, args: { sid?: string; _: string[] }): string {
  if (!args.sid) throw new EsrError(`${command}: which session? (esr ${command} <sid>; esr ls lists them)`, 2);
  if (args._.length > 1) throw new EsrError(`${command}: unexpected argument ${JSON.stringify(args._[1])}`, 2);
  return args.sid;
}

export const dataDirArg = {
  "data-dir": {
    type: "string",
    valueHint: "DIR",
    description: "where recordings are (default: teleport.data_dir, else /var/lib/esr)",
  },
} as const;

/** Every value of a repeatable option before `--` (citty keeps only the last). */
export function repeated(rawArgs: string[], name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a === "--") break;
    if (a === `--${name}`) values.push(rawArgs[++i] ?? "");
    else if (a.startsWith(`--${name}=`)) values.push(a.slice(name.length + 3));
  }
  return values;
}

/** Config files larger than this are refused rather than read into memory. */
const MAX_CONFIG_BYTES = 16 << 20;

/**
 * Refuses what cannot be a config file before reading it: a device (/dev/zero would be read
 * forever; /dev/null is fine: an empty config) or a file too large to be one. Pipes are read, so
 * that `--config <(…)` works.
 */
function checkConfigFile(name: string) {
  let st: Stats | undefined;
  try {
    st = statSync(name);
  } catch {
    return; // loadConfig says why it cannot be read
  }
  if ((st.isCharacterDevice() || st.isBlockDevice() || st.isSocket()) && name !== "/dev/null") {
    throw new ConfigError(name, 0, "file", "cannot read: not a regular file");
  }
  if (st.isFile() && st.size > MAX_CONFIG_BYTES)
    throw new ConfigError(
      name,
      0,
      "file",
      `cannot read: ${st.size} bytes is too large for a config file (at most ${MAX_CONFIG_BYTES})`,
    );
}

/** The configuration from --config files (or the default file), with --data-dir applied. */
export function cliConfig(rawArgs: string[], dataDir?: string): EsrConfig {
  const files = repeated(rawArgs, "config");
  for (const file of files) checkConfigFile(file);
  const options = { cacheDir: defaultCacheDir() };
  const config = files.length
    ? loadConfig(files, options)
    : existsSync(DEFAULT_CONFIG_FILE)
      ? loadConfig([DEFAULT_CONFIG_FILE], options)
      : defaultConfig();
  if (dataDir) config.dataDir = isAbsolute(dataDir) ? dataDir : resolve(dataDir);
  return config;
}

export const fromArg = {
  from: {
    type: "string",
    valueHint: "URI",
    description:
      "read from this store: postgresql://… or file://DIR (default: the config's first audit_events_uri, else the data dir)",
  },
} as const;

/**
 * Where the reading commands read recordings: `--from`, else `--data-dir`, else the first
 * `audit_events_uri`, else the data dir.
 */
export function eventSource(config: EsrConfig, args: { from?: string; "data-dir"?: string } = {}): EventSource {
  const uri = args.from ?? (args["data-dir"] ? undefined : config.storage.auditEventsUris[0]);
  if (uri === undefined) return new FileEventSource(config.dataDir);
  if (isPostgresUri(uri))
    return new PostgresEventSource(uri, args.from === undefined ? config.storage.auditSessionsUri : undefined);
  const file = /^file:\/\/(.*)$/i.exec(uri);
  if (!file)
    throw new EsrError(
      `--from must be a postgresql://, postgres:// or file:// URI, not ${JSON.stringify(maskPassword(uri))}`,
      2,
    );
  const dir = decodeURIComponent(file[1]!);
  return new FileEventSource(dir ? resolve(dir) : config.dataDir);
}

/**
 * What replay and play say unasked, on stderr after what they print: a session whose chain does
 * not verify whole (esr verify; the fleet store's line is verify --from's). Said only when nothing
 * else warned: damage is already reported by the warnings, and a whole session adds nothing.
 */
export async function verdictNotice(source: EventSource, sid: string, warnings: string[]) {
  if (warnings.length) return undefined;
  const [verdict] = await shownVerdicts(source, [sid]);
  if (verdict && verdict.status !== "whole")
    return `esr: verify: ${safeLine(`${verdict.status}: ${verdict.detail}`)}\n`;
}
