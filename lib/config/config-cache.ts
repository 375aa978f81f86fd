/**
 * Parsed configs kept by content, so that a short command skips the YAML parser when its config
 * has not changed (importing and running it was ≈ 14 of the ≈ 60 ms of `esr record -- true`
 * through a daemon): one file per config in /run/esr/config (tmpfs, gone at boot), named by the
 * SHA-256 of everything the parse depends on.
 *
 * Only root reads or writes it, and only files that nobody but root can have written: a cached
 * config decides what is recorded, so an entry anyone else could plant or edit is ignored. Any
 * problem with an entry (unreadable, corrupt, another format) means it is parsed again and
 * rewritten, never an error; a config with an error is never kept, so each run reports it.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { ConfigSource, EsrConfig } from "./config.ts";

export const CONFIG_CACHE_DIR = "/run/esr/config";

/** Bumped whenever what an entry holds changes shape: entries of another format are ignored. */
const FORMAT = 1;

/** Entries kept: a config that changes at every run (generated, say) cannot fill /run. */
export const MAX_ENTRIES = 32;

/** The cache the compiled esr uses, as root; none when run from source, whose parser can change under the same bun. */
export function defaultCacheDir(): string | undefined {
  return Bun.isStandaloneExecutable ? CONFIG_CACHE_DIR : undefined;
}

/** The config `sources` make: from `dir` when it was parsed before, else parsed (and kept if root). */
export function cachedConfig(
  dir: string,
  sources: ConfigSource[],
  parse: (sources: ConfigSource[]) => EsrConfig,
): EsrConfig {
  const key = process.getuid?.() === 0 ? keyOf(sources) : undefined;
  if (key === undefined) return parse(sources);
  const hit = readEntry(dir, key);
  if (hit) return hit;
  const config = parse(sources);
  writeEntry(dir, key, config);
  return config;
}

/**
 * Everything the result depends on: the host name (the default nodename and cluster name), the
 * executable that parses (an upgraded esr may read the same text differently; /run outlives an
 * upgrade until reboot), and every file's name and text, in order. Never file times: the text is
 * read anyway, and a file edited within a timestamp's resolution must not be missed.
 */
export function cacheKey(sources: ConfigSource[]): string {
  const exe = statSync(process.execPath);
  const parser = [process.execPath, exe.dev, exe.ino, exe.size, exe.mtimeMs, exe.ctimeMs];
  return sha256(JSON.stringify([hostname(), parser, sources.map((s) => [s.name, s.text])]));
}

function keyOf(sources: ConfigSource[]): string | undefined {
  try {
    return cacheKey(sources);
  } catch {
    return undefined; // the executable is gone (replaced while running): no identity, no cache
  }
}

/** The file an entry is kept in. */
export function entryPath(dir: string, key: string): string {
  return join(dir, `${key}.json`);
}

/**
 * An entry is two lines: a header (format, key, and the SHA-256 of the second line) and the config
 * as JSON, Maps as lists of entries. The checksum makes any damage a miss, not a wrong config.
 */
interface Header {
  format: number;
  key: string;
  sha256: string;
}

type StoredConfig = { [K in keyof EsrConfig]: EsrConfig[K] extends Map<infer A, infer B> ? [A, B][] : EsrConfig[K] };

function readEntry(dir: string, key: string): EsrConfig | undefined {
  try {
    if (!rootOnly(lstatSync(dir), "dir")) return undefined;
    const fd = openSync(entryPath(dir, key), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    let text: string;
    try {
      if (!rootOnly(fstatSync(fd), "file")) return undefined;
      text = readFileSync(fd, "utf8");
    } finally {
      closeSync(fd);
    }
    const newline = text.indexOf("\n");
    const header = JSON.parse(text.slice(0, newline)) as Header;
    const body = text.slice(newline + 1);
    if (header?.format !== FORMAT || header.key !== key || header.sha256 !== sha256(body)) return undefined;
    const { roles, users, ...rest } = JSON.parse(body) as StoredConfig;
    return { ...rest, roles: new Map(roles), users: new Map(users) };
  } catch {
    return undefined;
  }
}

function sha256(text: string): string {
  return new Bun.CryptoHasher("sha256").update(text).digest("hex");
}

/** Owned by root and writable by nobody else: the only entries (and directory) trusted. */
function rootOnly(st: { uid: number; mode: number; isFile(): boolean; isDirectory(): boolean }, what: "file" | "dir") {
  return st.uid === 0 && (st.mode & 0o022) === 0 && (what === "file" ? st.isFile() : st.isDirectory());
}

/** Written aside and renamed into place, so that a reader never sees half an entry. */
function writeEntry(dir: string, key: string, config: EsrConfig): void {
  const stored: StoredConfig = { ...config, roles: [...config.roles], users: [...config.users] };
  const body = JSON.stringify(stored);
  const header: Header = { format: FORMAT, key, sha256: sha256(body) };
  const aside = join(dir, `.${key}.${process.pid}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!rootOnly(lstatSync(dir), "dir")) return;
    const fd = openSync(aside, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, `${JSON.stringify(header)}\n${body}`);
    } finally {
      closeSync(fd);
    }
    renameSync(aside, entryPath(dir, key));
    prune(dir);
  } catch {
    try {
      unlinkSync(aside);
    } catch {}
  }
}

/** Removes the oldest entries beyond MAX_ENTRIES (a writer's leftover .tmp files count too). */
function prune(dir: string): void {
  const names = readdirSync(dir);
  if (names.length <= MAX_ENTRIES) return;
  const aged = names.flatMap((name) => {
    try {
      return [{ name, mtime: lstatSync(join(dir, name)).mtimeMs }];
    } catch {
      return []; // removed meanwhile by another esr
    }
  });
  aged.sort((a, b) => a.mtime - b.mtime);
  for (const { name } of aged.slice(0, aged.length - MAX_ENTRIES)) {
    try {
      unlinkSync(join(dir, name));
    } catch {}
  }
}
