/**
 * The file-based audit log (docs/contract.md §4): the host's server id, the daily events file that
 * `events.log` points at, and the directory of per-session files. Everything is root-only.
 */
import {
  appendFileSync,
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { EsrError, errorMessage } from "../../errors.ts";

/** A UUID as esr writes them (host_uuid, session ids); readers accept upper case too. */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class AuditLog {
  readonly serverId: string;
  readonly sessionsDir: string;
  private readonly logDir: string;
  private currentDay = "";

  private constructor(dataDir: string) {
    this.serverId = readOrCreateHostUuid(dataDir);
    this.logDir = join(dataDir, "log");
    this.sessionsDir = sessionsDirOf(dataDir, this.serverId);
    makeDir(this.sessionsDir);
    for (const dir of [
      this.logDir,
      join(this.logDir, this.serverId),
      join(this.logDir, this.serverId, "sessions"),
      this.sessionsDir,
    ])
      secureDir(dir);
  }

  /** Opens (creating it if needed) the audit log in a data dir; fails with a clear error if it cannot be written. */
  static open(dataDir: string): AuditLog {
    try {
      return new AuditLog(dataDir);
    } catch (err) {
      if (err instanceof EsrError) throw err;
      throw new EsrError(`cannot use data dir ${dataDir}: ${errorMessage(err)}`);
    }
  }

  /** Opens an existing audit log for reading; never creates anything. */
  static read(dataDir: string): { serverId: string; sessionsDir: string; dailyDir: string } {
    const uuidFile = join(dataDir, "host_uuid");
    if (!existsSync(uuidFile)) throw new EsrError(`no recordings in ${dataDir} (no host_uuid)`);
    const serverId = readHostUuid(uuidFile);
    return { serverId, sessionsDir: sessionsDirOf(dataDir, serverId), dailyDir: join(dataDir, "log", serverId) };
  }

  /** Appends JSON lines to today's file, moving `events.log` to it when the day changes. */
  append(lines: string | Uint8Array) {
    const day = new Date().toISOString().slice(0, 10);
    const name = dailyLogName(day);
    if (day !== this.currentDay) {
      this.currentDay = day;
      pointEventsLog(this.logDir, join(this.serverId, name));
    }
    appendFileSync(join(this.logDir, this.serverId, name), lines, { mode: 0o600 });
  }
}

/** The daily file of every event (`YYYY-MM-DD.00:00:00.log`). */
function dailyLogName(day: string): string {
  return `${day}.00:00:00.log`;
}

/** The daily event files of a data dir, oldest first: every event the host recorded, in order. */
export function dailyLogFiles(dailyDir: string): string[] {
  if (!existsSync(dailyDir)) return [];
  return readdirSync(dailyDir)
    .filter((name) => /^\d{4}-\d{2}-\d{2}\.00:00:00\.log$/.test(name))
    .sort();
}

/** <data_dir>/log/<server_id>/sessions/default (docs/contract.md §4). */
function sessionsDirOf(dataDir: string, serverId: string): string {
  return join(dataDir, "log", serverId, "sessions", "default");
}

export function makeDir(path: string) {
  mkdirSync(path, { recursive: true, mode: 0o700 });
}

/**
 * A directory that holds recordings must be root's and root's alone (docs/contract.md §4): one that another
 * user owns (or could replace) is refused, one that others may read or write is made 0700. Else a
 * recorded user with write access to it could move the log aside and put a directory of theirs in
 * its place.
 */
function secureDir(path: string) {
  const st = statSync(path);
  if (st.uid !== 0)
    throw new EsrError(
      `cannot use data dir: ${path} is owned by uid ${st.uid}, not root (recordings must be root's alone)`,
    );
  if ((st.mode & 0o077) !== 0) chmodSync(path, 0o700);
}

function readOrCreateHostUuid(dataDir: string): string {
  makeDir(dataDir);
  secureDir(dataDir);
  const file = join(dataDir, "host_uuid");
  if (existsSync(file)) return readHostUuid(file);
  const id = crypto.randomUUID();
  // Written aside and renamed, so two recorders starting at once agree on one id.
  const tmp = `${file}.${process.pid}`;
  writeFileSync(tmp, `${id}\n`, { mode: 0o600 });
  try {
    if (existsSync(file)) return readHostUuid(file);
    renameSync(tmp, file);
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
  return readHostUuid(file);
}

function readHostUuid(file: string): string {
  const id = readFileSync(file, "utf8").trim();
  if (!UUID_RE.test(id)) throw new EsrError(`${file} does not hold a UUID`);
  return id;
}

/** Points log/events.log at `target` (relative to log/) with an atomic rename. */
function pointEventsLog(logDir: string, target: string) {
  const link = join(logDir, "events.log");
  try {
    if (lstatSync(link).isSymbolicLink() && readlinkSync(link) === target) return;
  } catch {
    // no link yet
  }
  const tmp = `${link}.${process.pid}`;
  if (existsSync(tmp)) unlinkSync(tmp);
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}
