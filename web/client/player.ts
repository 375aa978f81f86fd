/**
 * Terminal playback in xterm.js. The server already removed every control string (OSC, DCS, …)
 * from the output; the widget also swallows OSC 52 (clipboard) and OSC 8 (links) itself, and gets
 * no input, so recorded output cannot reach the reviewer's clipboard, open a link or answer
 * queries. Seeking back redraws from the start; forward writes only what is new.
 */
import { Terminal } from "@xterm/xterm";
import { OUTPUT_LAG_MS } from "../timeline-codes.ts";

export interface Frames {
  ms: number[];
  length: number[];
}

/** The index of the last value ≤ t in a sorted array, or -1. */
export function lastAtOrBefore(sorted: number[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

export class Player {
  readonly term: Terminal;
  private readonly ends: number[] = [];
  /** How many frames the terminal shows now. */
  private written = 0;

  constructor(
    container: HTMLElement,
    private readonly frames: Frames,
    private readonly bytes: Uint8Array,
    size: string | undefined,
  ) {
    const [cols, rows] = (size ?? "80:24").split(":").map(Number);
    this.term = new Terminal({
      cols: cols! > 0 && cols! < 1000 ? cols : 80,
      rows: rows! > 0 && rows! < 500 ? rows : 24,
      disableStdin: true,
      scrollback: 10000,
      fontSize: 13,
      cursorBlink: false,
    });
    for (const osc of [8, 52]) this.term.parser.registerOscHandler(osc, () => true);
    this.term.open(container);
    let end = 0;
    for (const n of frames.length) this.ends.push((end += n));
  }

  /** Shows the screen as it was at `ms`. */
  show(ms: number) {
    const k = lastAtOrBefore(this.frames.ms, ms + OUTPUT_LAG_MS) + 1;
    if (k === this.written) return;
    if (k < this.written) {
      this.term.reset();
      this.written = 0;
    }
    const from = this.written ? this.ends[this.written - 1]! : 0;
    const to = k ? this.ends[k - 1]! : 0;
    if (to > from) this.term.write(this.bytes.subarray(from, to));
    this.written = k;
  }
}
