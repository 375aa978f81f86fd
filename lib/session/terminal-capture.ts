/**
 * Captures the terminal side of a session, in Teleport's format: the raw output bytes in
 * `<sid>-0.chunks.gz`, and their timing in print events (`bytes`, `ms` since session start,
 * `offset` in the chunks stream, `ci`) among the session's other events. Resizes are `resize`
 * events. Writing batches output, so a busy terminal costs one print event per burst, not per read.
 */
import { printEvent, resizeEvent } from "../events/audit-events.ts";
import type { RecordedSession } from "./recorded-session.ts";
import type { PtySink, TerminalSize } from "../sys/pty.ts";

/** Output is timed per burst of at most this long: enough for playback, few events when busy. */
const BATCH_MS = 10;

/** Records a pty's output and size changes into a session. */
export class TerminalCapture implements PtySink {
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
      this.batch ??= {
        start: new Date(),
        bytes: 0,
        timer: setTimeout(() => this.guard(() => this.endBatch()), BATCH_MS),
      };
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
    writer.write(
      printEvent(
        writer.index(),
        { bytes: batch.bytes, ms: batch.start.getTime() - start.getTime(), offset: this.offset, ci: this.nextCi++ },
        batch.start,
      ),
    );
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
