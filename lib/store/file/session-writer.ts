/**
 * Writes one session's events (docs/contract.md §4) in Teleport's file layout: `<sid>-0.events.gz`
 * for session.start/end and the other session events, `<sid>-0.session.<kind>-events.gz` per
 * enhanced kind, `<sid>-0.chunks.gz` for terminal output, `<sid>.index` naming them (each at index
 * and offset 0), every event also to the host's events.log — except print events, which only time
 * the terminal output and would flood the SIEM feed — and `<sid>.completed` once the session is
 * finalized. Nothing reaches disk between flushes; the owner flushes at least every second, so a
 * recorder killed with SIGKILL loses at most that much.
 *
 * One file per type, as Teleport's own playback writer (SSHPlaybackWriter) makes them. Naming files
 * by their first `ei` and starting one at each gap in `ei` would not serve Teleport's reader (it
 * skips N lines of the first file, not N − index) and would cost two files per exec when disk
 * events interleave (measured: 1008 files for 500 execs); readers order by `ei` instead.
 */
import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditLog } from "./audit-log.ts";
import type { SessionSink } from "../store.ts";
import { ByteBatch, GzipMemberFile } from "./gzip-members.ts";
import type { AuditEvent } from "../../events/audit-events.ts";
import { kindOfEvent } from "../../events/kinds/index.ts";

/** The index type (and file name part) of the file an event goes to. */
function fileTypeOf(event: string): string {
  return kindOfEvent(event) ? event : "events";
}

/** The index type of the terminal output file (Teleport's name). */
export const CHUNKS_TYPE = "chunks";

export function sessionFileName(sid: string, type: string): string {
  if (type === "events" || type === CHUNKS_TYPE) return `${sid}-0.${type}.gz`;
  return `${sid}-0.${type}-events.gz`;
}

export function indexFileName(sid: string): string {
  return `${sid}.index`;
}

/** Teleport's sign that a session's files are final. */
export function completedFileName(sid: string): string {
  return `${sid}.completed`;
}

/** The session's hash chain and checkpoints (lib/store/integrity/). */
export function chainFileName(sid: string): string {
  return `${sid}.chain`;
}

/**
 * What the writer tells a session's hash chain: every item's stream and index (`ei`, or the
 * chunk's number, with its length), in the order written; the exact bytes each stream's file is
 * given, as it is given them; `flush` once the data files are flushed.
 */
export interface StoredItemChain {
  item(stream: string, index: number, chunkLength?: number): void;
  stored(stream: string, bytes: Uint8Array): void;
  flush(): void;
  close(): void;
}

/** Whether an event also goes to events.log (and so to the fleet store's events table). */
export function loggedEvent(event: string): boolean {
  return event !== "print";
}

export class SessionWriter implements SessionSink {
  private readonly files = new Map<string, GzipMemberFile>();
  /** events.log lines, written in bounded pieces like the gzip members. */
  private readonly logBatch = new ByteBatch();
  private nextEi = 0;
  private nextChunk = 0;

  constructor(
    private readonly log: AuditLog,
    readonly sid: string,
    private readonly chain?: StoredItemChain,
  ) {}

  /** The `ei` of the next event: events are numbered in the order they are written. */
  index(): number {
    return this.nextEi++;
  }

  write(event: AuditEvent) {
    const line = JSON.stringify(event);
    const type = fileTypeOf(event.event);
    this.file(type).appendLine(line);
    this.chain?.item(type, event.ei);
    if (!loggedEvent(event.event)) return;
    if (this.logBatch.addLine(line)) this.flushLog();
  }

  /** Raw terminal output, the bytes that print events point into. */
  writeOutput(bytes: Uint8Array) {
    this.file(CHUNKS_TYPE).append(bytes);
    this.chain?.item(CHUNKS_TYPE, this.nextChunk++, bytes.length);
  }

  flush() {
    for (const file of this.files.values()) file.flush();
    this.chain?.flush();
    this.flushLog();
  }

  private flushLog() {
    const lines = this.logBatch.take();
    if (lines !== undefined) this.log.append(lines);
  }

  /** Writes what is left and marks the session's files final. */
  close() {
    this.flush();
    for (const file of this.files.values()) file.close();
    this.files.clear();
    this.chain?.close();
    // After the seal: "completed" means every file, the chain's included, is final.
    writeFileSync(join(this.log.sessionsDir, completedFileName(this.sid)), "completed", { mode: 0o600 });
  }

  private file(type: string): GzipMemberFile {
    let file = this.files.get(type);
    if (!file) {
      const name = sessionFileName(this.sid, type);
      const { chain } = this;
      file = new GzipMemberFile(join(this.log.sessionsDir, name), chain && ((bytes) => chain.stored(type, bytes)));
      this.files.set(type, file);
      appendFileSync(
        join(this.log.sessionsDir, indexFileName(this.sid)),
        `${JSON.stringify({ file_name: name, type, index: 0, offset: 0 })}\n`,
        { mode: 0o600 },
      );
    }
    return file;
  }
}
