/**
 * The terminal side of a recording, in Teleport's format: the raw output bytes in
 * `<sid>-0.chunks.gz`, and their timing in print events (`bytes`, `ms` since session start,
 * `offset` in the chunks stream, `ci`) among the session's other events. Resizes are `resize`
 * events. Writing batches output, so a busy terminal costs one print event per burst, not per read.
 */
import { EsrError } from "./errors.ts";
import type { SessionFiles } from "./recording.ts";
import { type AuditEvent, printEvent, resizeEvent } from "./schema.ts";
import type { RecordedSession } from "./session.ts";
import type { PtySink, TerminalSize } from "./terminal.ts";

/** Output is timed per burst of at most this long: enough for playback, few events when busy. */
const BATCH_MS = 10;

/** Records a pty's output and size changes into a session. */
export class TerminalRecorder implements PtySink {
  /** Bytes recorded so far: where the next print event's bytes start. */
  private offset = 0;
  private nextCi = 0;
  private batch?: { start: Date; bytes: number; timer: ReturnType<typeof setTimeout> };
  private ended = false;

  constructor(private readonly session: Pick<RecordedSession, "writer" | "identity" | "start" | "fail">) {}

  output(bytes: Uint8Array) {
    if (this.ended) return;
    this.guard(() => {
      // The bytes go to the writer at once (it copies them); only their timing waits for the burst to end.
      this.session.writer.writeOutput(bytes);
      this.batch ??= { start: new Date(), bytes: 0, timer: setTimeout(() => this.guard(() => this.endBatch()), BATCH_MS) };
      this.batch.bytes += bytes.length;
    });
  }

  resize(size: TerminalSize) {
    if (this.ended) return;
    this.guard(() => {
      // Output drawn for the old size is played before the resize.
      this.endBatch();
      const { writer, identity } = this.session;
      writer.write(resizeEvent(identity, writer.index(), size));
    });
  }

  end() {
    if (this.ended) return;
    this.guard(() => this.endBatch());
    this.ended = true;
  }

  private endBatch() {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    clearTimeout(batch.timer);
    const { writer, start } = this.session;
    writer.write(printEvent(writer.index(), { bytes: batch.bytes, ms: batch.start.getTime() - start.getTime(), offset: this.offset, ci: this.nextCi++ }, batch.start));
    this.offset += batch.bytes;
  }

  /** A failed write makes the recording unreliable: the session decides what that means. */
  private guard(write: () => void) {
    try {
      write();
    } catch (err) {
      this.session.fail(err);
    }
  }
}

/** A piece of terminal output and when it was shown. */
export interface TerminalFrame {
  ei: number;
  /** ms since session start */
  ms: number;
  time: string;
  bytes: Buffer;
}

export interface TerminalRecording {
  frames: TerminalFrame[];
  /** "W:H" at the start */
  size?: string;
  warnings: string[];
}

/**
 * A session's terminal output, frame by frame, timed by the print events among `events` (read
 * from the session's events file unless the caller has them). Bytes that no print event times (a recorder killed
 * between writing them and their print event) come last, at once.
 */
export function readTerminalRecording(files: SessionFiles, events = files.events(new Set(["events"]))): TerminalRecording {
  const { warnings } = files;
  const output = files.terminalOutput();
  if (!output) throw new EsrError(`session ${files.sid} has no terminal recording`);
  const start = events.find((e) => e.event === "session.start");
  const frames: TerminalFrame[] = [];
  let end = 0;
  for (const e of events) {
    if (e.event !== "print") continue;
    const { offset, bytes, ms } = e;
    if (typeof offset !== "number" || typeof bytes !== "number" || typeof ms !== "number" || offset !== end || offset + bytes > output.length) {
      warnings.push(`print event ${e.ei} does not match the recorded output (${output.length} bytes); showing the output before it`);
      return { frames, size: sizeOf(start), warnings };
    }
    frames.push({ ei: e.ei, ms, time: String(e.time), bytes: output.subarray(offset, offset + bytes) });
    end = offset + bytes;
  }
  if (end < output.length) {
    const last = frames.at(-1);
    frames.push({ ei: last?.ei ?? 0, ms: last?.ms ?? 0, time: last?.time ?? String(start?.time), bytes: output.subarray(end) });
  }
  return { frames, size: sizeOf(start), warnings };
}

function sizeOf(start: AuditEvent | undefined): string | undefined {
  return typeof start?.size === "string" ? start.size : undefined;
}
