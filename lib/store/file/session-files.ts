/**
 * Reading recorded sessions back: the index, every file it names, the events in `ei` order, and
 * the terminal output. Damage never hides what is readable: a truncated or corrupt file yields what
 * comes before the damage, and a warning that says where.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { AuditLog, UUID_RE } from "./audit-log.ts";
import { EsrError, errorMessage } from "../../errors.ts";
import { countLines, gunzipMemberBytes, gunzipMembers } from "./gzip-members.ts";
import type { AuditEvent } from "../../events/audit-events.ts";
import { chainFileName, CHUNKS_TYPE, indexFileName } from "./session-writer.ts";
import { UnknownSession } from "../store.ts";
import { isStoredEvent } from "../stored-event.ts";

interface IndexEntry {
  file_name: string;
  type: string;
}

export function checkSessionId(sid: string) {
  if (!UUID_RE.test(sid))
    throw new EsrError(
      `invalid session id ${JSON.stringify(sid)}: expected a UUID such as 86aca627-971d-4883-854d-d309ba04c658`,
    );
}

/**
 * Where a session's files are read from: the sessions directory, or copies of its files kept
 * elsewhere (the fleet store), read with the same code so both give the same output.
 */
export interface FileShelf {
  /** The bytes of one file; throws when it cannot be read. */
  read(fileName: string): Buffer;
  /** How a warning names the file. */
  describe(fileName: string): string;
}

/** The files of a sessions directory. */
export function directoryShelf(dir: string): FileShelf {
  return { read: (name) => readFileSync(join(dir, name)), describe: (name) => join(dir, name) };
}

/**
 * One recorded session's files, as its index names them: the index is read once, and every
 * warning about what could not be read gathers here, once each.
 */
export class SessionFiles {
  readonly warnings: string[] = [];
  private readonly entries: IndexEntry[];

  constructor(
    readonly sid: string,
    private readonly shelf: FileShelf,
  ) {
    this.entries = readIndex(shelf, indexFileName(sid), this.warnings);
  }

  static open(dataDir: string, sid: string): SessionFiles {
    checkSessionId(sid);
    const { sessionsDir } = AuditLog.read(dataDir);
    if (!existsSync(join(sessionsDir, indexFileName(sid)))) throw new UnknownSession(sid, dataDir);
    return new SessionFiles(sid, directoryShelf(sessionsDir));
  }

  /** The file names the index lists, index first: what a copy of the session must hold. */
  fileNames(): string[] {
    return [indexFileName(this.sid), ...this.entries.map((entry) => entry.file_name)];
  }

  /** The events of the files of some index types (all but the terminal output when undefined), in `ei` order. */
  events(types?: Set<string>): AuditEvent[] {
    const events: AuditEvent[] = [];
    for (const name of this.names((type) => type !== CHUNKS_TYPE && (!types || types.has(type)))) {
      // Not push(...): a file of a long session holds more events than a call can take arguments.
      for (const event of readEvents(this.shelf, name, this.warnings)) events.push(event);
    }
    return events.sort((a, b) => a.ei - b.ei);
  }

  /** How many events the files of one index type hold, counted without parsing them. */
  count(type: string): number {
    let n = 0;
    for (const name of this.names((t) => t === type))
      n += readGzipFile(this.shelf, name, this.warnings, "events", countLines)?.lines ?? 0;
    return n;
  }

  /** The bytes the session's terminal showed; undefined when it was not recorded on a terminal. */
  terminalOutput(): Buffer | undefined {
    const names = this.names((type) => type === CHUNKS_TYPE);
    if (names.length === 0) return undefined;
    return Buffer.concat(
      names.map(
        (name) => readGzipFile(this.shelf, name, this.warnings, "output", gunzipMemberBytes)?.bytes ?? Buffer.alloc(0),
      ),
    );
  }

  /**
   * Every file the index names, decompressed up to its first damage, as stored: the bytes a
   * verifier hashes. A file that cannot be read has no bytes and says why.
   */
  storedFiles(): { type: string; name: string; path: string; bytes: Buffer; damage?: string }[] {
    return this.entries.map(({ type, file_name: name }) => {
      const path = this.shelf.describe(name);
      try {
        const { bytes, error } = gunzipMemberBytes(this.shelf.read(name));
        return error === undefined ? { type, name, path, bytes } : { type, name, path, bytes, damage: error };
      } catch (err) {
        return { type, name, path, bytes: Buffer.alloc(0), damage: `cannot read (${errorMessage(err)})` };
      }
    });
  }

  /** The session's hash chain and checkpoints; undefined when there is none. */
  chain(): { path: string; bytes: Buffer } | undefined {
    const name = chainFileName(this.sid);
    try {
      return { path: this.shelf.describe(name), bytes: this.shelf.read(name) };
    } catch {
      return undefined;
    }
  }

  private names(wanted: (type: string) => boolean): string[] {
    return this.entries.filter((entry) => wanted(entry.type)).map((entry) => entry.file_name);
  }
}

function readIndex(shelf: FileShelf, name: string, warnings: string[]): IndexEntry[] {
  const entries: IndexEntry[] = [];
  const path = shelf.describe(name);
  for (const [i, line] of shelf.read(name).toString("utf8").split("\n").entries()) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as IndexEntry;
      // Only plain names: an index must not point outside the sessions directory.
      if (typeof entry.file_name !== "string" || entry.file_name.includes("/") || typeof entry.type !== "string")
        throw new Error("not an index entry");
      entries.push(entry);
    } catch (err) {
      warnings.push(`${path}:${i + 1}: unreadable index line (${errorMessage(err)})`);
    }
  }
  return entries;
}

/** One `.gz` file decompressed up to the first damage, which is reported; undefined when it cannot be read. */
function readGzipFile<T extends { error?: string }>(
  shelf: FileShelf,
  name: string,
  warnings: string[],
  what: string,
  gunzip: (bytes: Uint8Array) => T,
): T | undefined {
  const path = shelf.describe(name);
  let bytes: Buffer;
  try {
    bytes = shelf.read(name);
  } catch (err) {
    warnings.push(`${path}: cannot read (${errorMessage(err)})`);
    return undefined;
  }
  const content = gunzip(bytes);
  if (content.error) warnings.push(`${path}: ${content.error}; showing the ${what} before it`);
  return content;
}

/** The events of one `.gz` file, up to the first damage. */
export function readEventFile(path: string, warnings: string[]): AuditEvent[] {
  return readEvents(directoryShelf(dirname(path)), basename(path), warnings);
}

function readEvents(shelf: FileShelf, name: string, warnings: string[]): AuditEvent[] {
  const path = shelf.describe(name);
  const content = readGzipFile(shelf, name, warnings, "events", gunzipMembers);
  if (!content) return [];
  const events: AuditEvent[] = [];
  const lines = content.text.split("\n");
  const partial = lines.pop();
  if (partial) warnings.push(`${path}: last line is incomplete; skipped`);
  for (const [i, line] of lines.entries()) {
    if (!line) continue;
    try {
      const event = JSON.parse(line);
      if (!isStoredEvent(event)) throw new Error("not an audit event (or a field of an unexpected type)");
      events.push(event);
    } catch (err) {
      warnings.push(`${path}: line ${i + 1}: ${errorMessage(err)}`);
    }
  }
  return events;
}

/** Session ids present in a data dir, with their index's modification time. */
export function listSessionIds(dataDir: string): { sid: string; mtimeMs: number }[] {
  const { sessionsDir } = AuditLog.read(dataDir);
  if (!existsSync(sessionsDir)) return [];
  return readdirSync(sessionsDir)
    .map((name) => ({ name, sid: name.replace(/\.index$/, "") }))
    .filter(({ name, sid }) => name === indexFileName(sid) && UUID_RE.test(sid))
    .map(({ name, sid }) => ({ sid, mtimeMs: statSync(join(sessionsDir, name)).mtimeMs }));
}
