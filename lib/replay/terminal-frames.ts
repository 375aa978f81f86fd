/**
 * A session's terminal recording read back as frames (bytes and when they were shown), from the raw
 * output and the print events that time it (lib/session/terminal-capture.ts writes both).
 */
import { EsrError } from "../errors.ts";
import type { AuditEvent } from "../events/audit-events.ts";
import type { SessionRecording } from "../store/store.ts";

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
export async function readTerminalRecording(
  recording: SessionRecording,
  given?: AuditEvent[],
): Promise<TerminalRecording> {
  const output = await recording.terminalOutput();
  if (!output) throw new EsrError(`session ${recording.sid} has no terminal recording`);
  const events = given ?? (await recording.events({ streams: new Set(["events"]) }));
  return framesOf(output, events, recording.warnings);
}

/** The frames of recorded output, timed by the print events among `events`; damage goes to `warnings`. */
export function framesOf(output: Buffer, events: AuditEvent[], warnings: string[]): TerminalRecording {
  const start = events.find((e) => e.event === "session.start");
  const frames: TerminalFrame[] = [];
  let end = 0;
  for (const e of events) {
    if (e.event !== "print") continue;
    const { offset, bytes, ms } = e;
    if (
      typeof offset !== "number" ||
      typeof bytes !== "number" ||
      typeof ms !== "number" ||
      offset !== end ||
      offset + bytes > output.length
    ) {
      warnings.push(
        `print event ${e.ei} does not match the recorded output (${output.length} bytes); showing the output before it`,
      );
      return { frames, size: sizeOf(start), warnings };
    }
    frames.push({ ei: e.ei, ms, time: String(e.time), bytes: output.subarray(offset, offset + bytes) });
    end = offset + bytes;
  }
  if (end < output.length) {
    const last = frames.at(-1);
    frames.push({
      ei: last?.ei ?? 0,
      ms: last?.ms ?? 0,
      time: last?.time ?? String(start?.time),
      bytes: output.subarray(end),
    });
  }
  return { frames, size: sizeOf(start), warnings };
}

function sizeOf(start: AuditEvent | undefined): string | undefined {
  return start?.event === "session.start" ? start.size : undefined;
}
