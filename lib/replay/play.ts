/**
 * `esr play`: a session's terminal output, written at the pace it was shown. Playing is writing
 * the recorded bytes as they are, so a terminal shows what the user saw (colours, full-screen
 * programs), and a pipe gets the output byte for byte.
 */
import type { TerminalFrame } from "./terminal-frames.ts";

export interface PlayOptions {
  /** 2 plays twice as fast. */
  speed: number;
  /** Pauses longer than IDLE_LIMIT_MS play as that long. */
  skipIdle: boolean;
  /** Resolves once the bytes are written. */
  write(bytes: Uint8Array): Promise<void>;
}

const IDLE_LIMIT_MS = 500;

/** Sequences that undo what an interrupted playback may leave on: attributes, a hidden cursor, the alternate screen, bracketed paste, mouse reporting. */
export const TERMINAL_RESET = "\x1b[0m\x1b[?25h\x1b[?1049l\x1b[?2004l\x1b[?1000l\x1b[?1002l\x1b[?1006l";

export async function playFrames(frames: TerminalFrame[], opts: PlayOptions) {
  const started = performance.now();
  let previousMs = 0;
  /** Where playback should be, in ms since it started. */
  let due = 0;
  for (const frame of frames) {
    const pause = Math.max(0, frame.ms - previousMs);
    previousMs = frame.ms;
    due += (opts.skipIdle ? Math.min(pause, IDLE_LIMIT_MS) : pause) / opts.speed;
    // Waiting for each frame against the start, not the previous frame, keeps long sessions from drifting.
    const wait = started + due - performance.now();
    if (wait >= 1) await Bun.sleep(wait);
    await opts.write(frame.bytes);
  }
}
