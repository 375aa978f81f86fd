/**
 * Ships a host's recordings into the fleet store without losing any: the daily event files the
 * recorders already write (`log/<server_id>/*.log`, every event of every session, in order) are
 * the durable spool, read from a persisted cursor in batches; each batch is inserted in one
 * transaction, `ON CONFLICT DO NOTHING` on the event's `uid`, so a batch shipped twice (esr killed
 * after the commit, before the cursor was saved) adds nothing. When a batch holds a session.end,
 * that session's files go in the same transaction: the cursor never passes a session.end whose
 * recording is not stored. A session's files are shipped once final (`<sid>.completed`, written
 * after the chain's seal), with its chain, and the host key's journal goes with them up to its end
 * (`host_journal`), so the store holds what `esr verify --from` needs to check them.
 *
 * Memory is bounded by the batch size (events) and the part size (recordings), whatever the backlog.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { SQL } from "bun";
import { AuditLog, dailyLogFiles } from "../file/audit-log.ts";
import { directoryShelf, SessionFiles } from "../file/session-files.ts";
import { chainFileName, completedFileName, indexFileName } from "../file/session-writer.ts";
import { journalPath } from "../integrity/host-key.ts";
import { EsrError, errorMessage } from "../../errors.ts";

/** Bytes of the spool read per batch. */
const BATCH_BYTES = 1 << 20;
/** Recording files are stored in parts of this size. */
export const PART_BYTES = 4 << 20;
/**
 * A day's file is left behind only once the next one exists and nothing was appended to it for
 * this long: a recorder that computed the day just before midnight may still append to it.
 */
const DAY_GRACE_MS = 60_000;
/**
 * How long a session.end waits for its files to be final: the recorder seals the chain right
 * after it writes session.end, so this is only reached when it died in between.
 */
const COMPLETED_WAIT_MS = 5_000;

export interface ShipTarget {
  uri: string;
  /** Whether the target receives events (an `audit_events_uri`). */
  events: boolean;
  /** Whether it receives recordings (the `audit_sessions_uri`). */
  recordings: boolean;
}

export interface Cursor {
  uri: string;
  /** Daily file name and byte offset of the first line not yet shipped. */
  file?: string;
  offset: number;
  /** The host journal's lines shipped (targets that receive recordings): how many, up to which byte. */
  journal?: { lines: number; offset: number };
  shippedEvents: number;
  shippedRecordings: number;
  lastShipped?: string;
  lastError?: string;
}

export interface Backlog {
  uri: string;
  events: number;
  bytes: number;
  cursor: Cursor;
}

export interface BatchResult {
  events: number;
  recordings: number;
  /** True when the spool is shipped up to its end. */
  caughtUp: boolean;
}

export class Shipper {
  private readonly cursorPath: string;
  cursor: Cursor;

  constructor(
    readonly dataDir: string,
    readonly target: ShipTarget,
    private readonly warn: (line: string) => void = () => {},
  ) {
    this.cursorPath = cursorPathOf(dataDir, target.uri);
    this.cursor = readCursor(this.cursorPath, target.uri);
  }

  /** Undefined until a recorder has made the data dir: there is nothing to ship yet. */
  private spool() {
    return existsSync(join(this.dataDir, "host_uuid")) ? AuditLog.read(this.dataDir) : undefined;
  }

  /** Ships one batch (or moves to the next day's file); resolves when it is committed and the cursor saved. */
  async shipBatch(sql: SQL): Promise<BatchResult> {
    const spool = this.spool();
    if (!spool) return { events: 0, recordings: 0, caughtUp: true };
    const { dailyDir, sessionsDir, serverId } = spool;
    const files = dailyLogFiles(dailyDir);
    if (this.cursor.file === undefined) {
      if (files.length === 0) return { events: 0, recordings: 0, caughtUp: true };
      this.cursor = { ...this.cursor, file: files[0], offset: 0 };
    }
    const name = this.cursor.file!;
    const { text, complete, size, mtimeMs } = readAt(join(dailyDir, name), this.cursor.offset);
    const later = files.find((f) => f > name);
    const rows = parseLines(text.subarray(0, complete), name, this.warn);
    const ended = rows.flatMap((r) => (r.type === "session.end" && r.sid ? [r.sid] : []));
    if (this.target.recordings) await waitCompleted(sessionsDir, ended, this.warn);
    // Read after the sessions are final: the journal then holds their seals.
    const journal = this.target.recordings ? readJournal(this.dataDir, this.cursor.journal) : undefined;
    if (complete === 0) {
      if (journal?.lines.length) {
        await sql.begin((tx) => insertJournal(tx, serverId, journal));
        this.save({ ...this.cursor, journal: journal.next });
        return { events: 0, recordings: 0, caughtUp: false };
      }
      const settled = Date.now() - mtimeMs > DAY_GRACE_MS;
      if (later === undefined || !settled) return { events: 0, recordings: 0, caughtUp: true };
      if (this.cursor.offset < size)
        this.warn(
          `${name}: ${size - this.cursor.offset} bytes after the last complete line were never completed; skipped`,
        );
      this.save({ ...this.cursor, file: later, offset: 0 });
      return { events: 0, recordings: 0, caughtUp: false };
    }
    let recordings = 0;
    await sql.begin(async (tx) => {
      if (this.target.events && rows.length) await insertEvents(tx, rows);
      if (this.target.recordings)
        for (const sid of ended) recordings += await insertRecording(tx, sessionsDir, serverId, sid, this.warn);
      if (journal?.lines.length) await insertJournal(tx, serverId, journal);
    });
    const caughtUp = this.cursor.offset + complete >= size && later === undefined && !journal?.more;
    this.save({
      ...this.cursor,
      offset: this.cursor.offset + complete,
      journal: journal?.next ?? this.cursor.journal,
      shippedEvents: this.cursor.shippedEvents + (this.target.events ? rows.length : 0),
      shippedRecordings: this.cursor.shippedRecordings + recordings,
      lastShipped: new Date().toISOString(),
      lastError: undefined,
    });
    return { events: rows.length, recordings, caughtUp };
  }

  /** Ships batches until the spool is shipped to its end. */
  async shipAll(sql: SQL): Promise<{ events: number; recordings: number }> {
    const total = { events: 0, recordings: 0 };
    for (;;) {
      const r = await this.shipBatch(sql);
      total.events += r.events;
      total.recordings += r.recordings;
      if (r.caughtUp) return total;
    }
  }

  /** Remembers why shipping failed, for `esr status`. */
  recordError(message: string) {
    if (this.cursor.lastError !== message) this.save({ ...this.cursor, lastError: message });
  }

  /** What is recorded but not yet shipped. */
  backlog(): Backlog {
    let events = 0;
    let bytes = 0;
    const spool = this.spool();
    for (const name of spool ? dailyLogFiles(spool.dailyDir) : []) {
      if (this.cursor.file !== undefined && name < this.cursor.file) continue;
      const from = name === this.cursor.file ? this.cursor.offset : 0;
      const counted = countFrom(join(spool!.dailyDir, name), from);
      events += counted.lines;
      bytes += counted.bytes;
    }
    return { uri: this.target.uri, events, bytes, cursor: this.cursor };
  }

  private save(cursor: Cursor) {
    this.cursor = cursor;
    writeCursor(this.cursorPath, cursor);
  }
}

/** An events-table row as shipped from one events.log line. */
export interface ShippedRow {
  time: string;
  uid: string;
  type: string;
  sid: string | null;
  data: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseLines(bytes: Buffer, file: string, warn: (line: string) => void): ShippedRow[] {
  const rows: ShippedRow[] = [];
  for (const line of bytes.toString("utf8").split("\n")) {
    if (!line) continue;
    const row = shippedRow(line);
    if (typeof row === "string") warn(`${file}: ${row}`);
    else rows.push(row);
  }
  return rows;
}

/** The row an event line becomes in the events table, or why it is skipped (the verifier expects the same rows). */
export function shippedRow(line: string): ShippedRow | string {
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(line);
  } catch (err) {
    return `unparsable line skipped (${errorMessage(err)})`;
  }
  const { time, uid, sid } = event ?? {};
  if (typeof time !== "string" || Number.isNaN(Date.parse(time)) || typeof uid !== "string" || !UUID.test(uid))
    return "event without a valid time and uid skipped";
  return {
    time,
    uid,
    type: String(event.event),
    sid: typeof sid === "string" && UUID.test(sid) ? sid : null,
    data: storable(line, event),
  };
}

/**
 * jsonb refuses two things JSON allows: the NUL character and unpaired surrogates. A recorded
 * user may get either into an event, and one refused row must not stop the whole spool, so those
 * characters become U+FFFD in the stored copy (the local files keep them).
 */
function storable(line: string, event: unknown): string {
  if (!/\\u0000|\\ud[89a-f]/i.test(line)) return line;
  return JSON.stringify(event, (_key, value) =>
    typeof value === "string" ? value.replaceAll("\0", "\ufffd").toWellFormed() : value,
  );
}

async function insertEvents(tx: SQL, rows: ShippedRow[]) {
  await tx`
    INSERT INTO events (event_time, event_id, event_type, session_id, event_data)
    SELECT t::timestamptz, i::uuid, ty, s::uuid, d::jsonb
    FROM unnest(${rows.map((r) => r.time)}::text[], ${rows.map((r) => r.uid)}::text[],
                ${rows.map((r) => r.type)}::text[], ${rows.map((r) => r.sid)}::text[],
                ${rows.map((r) => r.data)}::text[]) AS u(t, i, ty, s, d)
    ON CONFLICT DO NOTHING`;
}

/** Waits (a little) until the sessions whose files are there are final; says which never became so. */
async function waitCompleted(sessionsDir: string, sids: string[], warn: (line: string) => void) {
  const pending = (sid: string) =>
    existsSync(join(sessionsDir, indexFileName(sid))) && !existsSync(join(sessionsDir, completedFileName(sid)));
  const deadline = Date.now() + COMPLETED_WAIT_MS;
  for (let waiting = sids.filter(pending); waiting.length; waiting = waiting.filter(pending)) {
    if (Date.now() >= deadline) {
      for (const sid of waiting) warn(`session ${sid}: its files were never marked completed; shipped as they are`);
      return;
    }
    await Bun.sleep(20);
  }
}

interface JournalChunk {
  /** Numbered from the first line not yet shipped. */
  first: number;
  lines: string[];
  next: { lines: number; offset: number };
  /** More complete lines follow than one batch reads. */
  more: boolean;
}

/** The host journal's complete lines from where the cursor stands (a batch at most); undefined without a journal. */
function readJournal(dataDir: string, from = { lines: 0, offset: 0 }): JournalChunk | undefined {
  const path = journalPath(dataDir);
  if (!existsSync(path)) return undefined;
  const { text, complete, size } = readAt(path, from.offset);
  const lines = text.subarray(0, complete).toString("utf8").split("\n");
  lines.pop();
  return {
    first: from.lines,
    lines,
    next: { lines: from.lines + lines.length, offset: from.offset + complete },
    more: from.offset + text.length < size && complete > 0,
  };
}

async function insertJournal(tx: SQL, serverId: string, journal: JournalChunk) {
  await tx`
    INSERT INTO host_journal (server_id, line, entry)
    SELECT ${serverId}::uuid, ${journal.first} + n - 1, e
    FROM unnest(${journal.lines}::text[]) WITH ORDINALITY AS u(e, n)
    ON CONFLICT DO NOTHING`;
}

/** Stores a finished session's files, part by part; returns 1, or 0 when its files are gone. */
async function insertRecording(
  tx: SQL,
  sessionsDir: string,
  serverId: string,
  sid: string,
  warn: (line: string) => void,
): Promise<number> {
  let names: string[];
  try {
    names = new SessionFiles(sid, directoryShelf(sessionsDir)).fileNames();
  } catch (err) {
    warn(`session ${sid}: recording not shipped: ${errorMessage(err)}`);
    return 0;
  }
  // Sessions recorded before the chain existed have none; verify says "unchained".
  if (existsSync(join(sessionsDir, chainFileName(sid)))) names.push(chainFileName(sid));
  for (const name of names) {
    const path = join(sessionsDir, name);
    if (!existsSync(path)) {
      warn(`session ${sid}: ${name} is missing; the recording is stored without it`);
      continue;
    }
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      const parts = Math.max(1, Math.ceil(size / PART_BYTES));
      for (let part = 0; part < parts; part++) {
        const data = Buffer.alloc(Math.min(PART_BYTES, size - part * PART_BYTES));
        readFully(fd, data, part * PART_BYTES);
        await tx`
          INSERT INTO recordings (session_id, file_name, part, parts, data, server_id)
          VALUES (${sid}::uuid, ${name}, ${part}, ${parts}, ${data}, ${serverId}::uuid)
          ON CONFLICT DO NOTHING`;
      }
    } finally {
      closeSync(fd);
    }
  }
  return 1;
}

function readFully(fd: number, into: Buffer, position: number) {
  for (let off = 0; off < into.length;) {
    const n = readSync(fd, into, off, into.length - off, position + off);
    if (n === 0) throw new Error("file shrank while being read");
    off += n;
  }
}

/** Up to a batch of bytes from `offset`, and how many of them end in a complete line. */
function readAt(path: string, offset: number): { text: Buffer; complete: number; size: number; mtimeMs: number } {
  const fd = openSync(path, "r");
  try {
    const st = fstatSync(fd);
    const text = Buffer.alloc(Math.max(0, Math.min(BATCH_BYTES, st.size - offset)));
    const n = text.length ? readSync(fd, text, 0, text.length, offset) : 0;
    const complete = text.subarray(0, n).lastIndexOf(10) + 1;
    return { text: text.subarray(0, n), complete, size: st.size, mtimeMs: st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

function countFrom(path: string, offset: number): { lines: number; bytes: number } {
  let lines = 0;
  let bytes = 0;
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(BATCH_BYTES);
    for (let pos = offset; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      for (let at = buf.indexOf(10); at >= 0 && at < n; at = buf.indexOf(10, at + 1)) lines++;
      pos += n;
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { lines, bytes };
}

/** One cursor file per target, named by a hash of its URI, in `<data_dir>/ship/`. */
function cursorPathOf(dataDir: string, uri: string): string {
  const dir = join(dataDir, "ship");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, `${new Bun.CryptoHasher("sha256").update(uri).digest("hex").slice(0, 16)}.cursor.json`);
}

function readCursor(path: string, uri: string): Cursor {
  const fresh: Cursor = { uri, offset: 0, shippedEvents: 0, shippedRecordings: 0 };
  if (!existsSync(path)) return fresh;
  try {
    const saved = JSON.parse(readFileSync(path, "utf8")) as Partial<Cursor>;
    if (saved.offset !== undefined && !(Number.isInteger(saved.offset) && saved.offset >= 0))
      throw new Error("bad offset");
    const j = saved.journal;
    if (j !== undefined && !(Number.isInteger(j?.lines) && j.lines >= 0 && Number.isInteger(j.offset) && j.offset >= 0))
      throw new Error("bad journal position");
    return { ...fresh, ...saved, uri };
  } catch (err) {
    throw new EsrError(
      `ship cursor ${path} is damaged (${errorMessage(err)}): remove it to ship the spool again from its start (events already stored are not duplicated)`,
    );
  }
}

/** Written aside, synced and renamed: a crash leaves the old cursor or the new one, never half of one. */
function writeCursor(path: string, cursor: Cursor) {
  const tmp = `${path}.${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeFileSync(fd, `${JSON.stringify(cursor)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
