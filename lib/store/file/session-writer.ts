/**
 * Writes one session's events (docs/contract.md §4) in Teleport's file layout: `<sid>-<ei>.events.gz`
 * for session.start/end and the other session events, `<sid>-<ei>.session.<kind>-events.gz` per
 * enhanced kind, `<sid>-0.chunks.gz` for terminal output, `<sid>.index` naming them, every event also
 * to the host's events.log — except print events, which only time the terminal output and would
 * flood the SIEM feed — and `<sid>.completed` once the session is finalized. Nothing reaches disk
 * between flushes; the owner flushes at least every second, so a recorder killed with SIGKILL loses
 * at most that much.
 *
 * As Teleport's file session logger does, a file holds only consecutive events: it is named, and
 * indexed, by the `ei` of its first, and an event that does not follow the last one of its file
 * (another kind's came between) starts a new file. A reader that wants the events after N opens
 * the last file indexed at or below N and skips lines, as Teleport's reader does. Sessions written
 * before this layout have one `-0` file per type, indexed 0: readers that read every file the index
 * names and order by `ei` read both.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditLog } from "./audit-log.ts";
import type { SessionSink } from "../store.ts";
import { GzipMemberFile, TextBatch } from "./gzip-members.ts";
import type { AuditEvent } from "../../events/audit-events.ts";
import { kindOfEvent } from "../../events/kinds/index.ts";

/** The index type (and file name part) of the file an event goes to. */
function fileTypeOf(event: string): string {
  return kindOfEvent(event) ? event : "events";
}

/** The index type of the terminal output file (Teleport's name). */
export const CHUNKS_TYPE = "chunks";

/** A file's name: the session, where the file starts (its first `ei`; for terminal output, its byte offset) and its type. */
export function sessionFileName(sid: string, type: string, start: number): string {
  if (type === "events" || type === CHUNKS_TYPE) return `${sid}-${start}.${type}.gz`;
  return `${sid}-${start}.${type}-events.gz`;
}

export function indexFileName(sid: string): string {
  return `${sid}.index`;
}

/** Teleport's sign that a session's files are final. */
export function completedFileName(sid: string): string {
  return `${sid}.completed`;
}

interface OpenFile {
  file: GzipMemberFile;
  /** The `ei` of the last event written to it. */
  lastEi: number;
}

export class SessionWriter implements SessionSink {
  /** The file being written, per index type. */
  private readonly files = new Map<string, OpenFile>();
  /** events.log lines, written in bounded pieces like the gzip members. */
  private readonly logBatch = new TextBatch();
  private nextEi = 0;

  constructor(
    private readonly log: AuditLog,
    readonly sid: string,
  ) {}

  /** The `ei` of the next event: events are numbered in the order they are written. */
  index(): number {
    return this.nextEi++;
  }

  write(event: AuditEvent) {
    const line = `${JSON.stringify(event)}\n`;
    this.eventFile(fileTypeOf(event.event), event.ei).append(line);
    if (event.event === "print") return;
    if (this.logBatch.add(line)) this.flushLog();
  }

  /** Raw terminal output, the bytes that print events point into. */
  writeOutput(bytes: Uint8Array) {
    // One stream with no gaps: a single file from offset 0.
    let output = this.files.get(CHUNKS_TYPE);
    if (!output) this.files.set(CHUNKS_TYPE, (output = { file: this.open(CHUNKS_TYPE, 0, "latin1"), lastEi: -1 }));
    output.file.append(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1"));
  }

  flush() {
    for (const { file } of this.files.values()) file.flush();
    this.flushLog();
  }

  private flushLog() {
    const lines = this.logBatch.take();
    if (lines !== undefined) this.log.append(lines);
  }

  /** Writes what is left and marks the session's files final. */
  close() {
    this.flush();
    for (const { file } of this.files.values()) file.close();
    this.files.clear();
    writeFileSync(join(this.log.sessionsDir, completedFileName(this.sid)), "completed", { mode: 0o600 });
  }

  /** The file an event numbered `ei` goes to: the type's current one if `ei` follows its last event, else a new one. */
  private eventFile(type: string, ei: number): GzipMemberFile {
    const current = this.files.get(type);
    if (current && current.lastEi + 1 === ei) {
      current.lastEi = ei;
      return current.file;
    }
    current?.file.close();
    const file = this.open(type, ei, "utf8");
    this.files.set(type, { file, lastEi: ei });
    return file;
  }

  /** Creates a file and names it in the index: an event file by its first `ei`, the output by its first byte. */
  private open(type: string, start: number, encoding: "utf8" | "latin1"): GzipMemberFile {
    const name = sessionFileName(this.sid, type, start);
    const file = new GzipMemberFile(join(this.log.sessionsDir, name), encoding);
    const position = type === CHUNKS_TYPE ? { index: 0, offset: start } : { index: start, offset: 0 };
    appendFileSync(
      join(this.log.sessionsDir, indexFileName(this.sid)),
      `${JSON.stringify({ file_name: name, type, ...position })}\n`,
      { mode: 0o600 },
    );
    return file;
  }
}
