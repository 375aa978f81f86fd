/**
 * The session's timeline on a canvas: one lane of exec markers (red: never shown on screen), one
 * each for connects, file opens and terminal output, truncation and loss marks, and the playhead.
 * Drawn from the compact index, so 100k events cost one pass per redraw, not 100k elements.
 */
import { FLAG, KIND } from "../timeline-codes.ts";

export interface TimelineIndex {
  ms: number[];
  kind: number[];
  flags: number[];
}

const LANES = ["exec", "network", "files", "output"];
const LANE_H = 16;
const LABEL_W = 64;

export class Timeline {
  readonly canvas: HTMLCanvasElement;
  private base?: ImageData;

  constructor(
    private readonly index: TimelineIndex,
    private readonly frameMs: number[],
    private readonly duration: number,
    onSeek: (ms: number) => void,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "timeline";
    this.canvas.height = LANE_H * LANES.length + 8;
    this.canvas.addEventListener("click", (ev) => {
      const rect = this.canvas.getBoundingClientRect();
      const x = ev.clientX - rect.left - LABEL_W;
      if (x >= 0) onSeek(Math.round((x / (rect.width - LABEL_W)) * this.duration));
    });
  }

  private x(ms: number, width: number): number {
    return LABEL_W + Math.round((ms / Math.max(1, this.duration)) * (width - LABEL_W - 1));
  }

  /** Draws the lanes once for the canvas's width; the playhead is drawn over a copy. */
  layout(width: number) {
    const c = this.canvas;
    c.width = Math.max(200, Math.floor(width));
    const g = c.getContext("2d")!;
    g.fillStyle = "#fafafa";
    g.fillRect(0, 0, c.width, c.height);
    g.font = "11px sans-serif";
    LANES.forEach((name, i) => {
      g.fillStyle = "#666";
      g.fillText(name, 4, i * LANE_H + 12);
      g.fillStyle = i % 2 ? "#f0f0f0" : "#e8e8e8";
      g.fillRect(LABEL_W, i * LANE_H, c.width - LABEL_W, LANE_H - 2);
    });
    const { ms, kind, flags } = this.index;
    // Ordinary marks first, the ones a reviewer must see on top.
    for (const pass of [0, 1]) {
      for (let i = 0; i < ms.length; i++) {
        const f = flags[i]!;
        const important = (f & (FLAG.unseen | FLAG.truncated | FLAG.lost)) !== 0;
        if (important !== (pass === 1)) continue;
        const x = this.x(ms[i]!, c.width);
        const k = kind[i]!;
        if (f & FLAG.lost) {
          g.fillStyle = "#000";
          g.fillRect(x - 1, 0, 3, LANE_H * LANES.length);
          continue;
        }
        const lane = k === KIND.command ? 0 : k === KIND.network ? 1 : k === KIND.disk ? 2 : -1;
        if (lane < 0) continue;
        g.fillStyle =
          f & FLAG.unseen
            ? "#d00"
            : f & FLAG.truncated
              ? "#e80"
              : f & FLAG.failed
                ? "#888"
                : ["#25c", "#818", "#177"][lane]!;
        g.fillRect(x, lane * LANE_H + (important ? 0 : 2), important ? 2 : 1, important ? LANE_H - 2 : LANE_H - 6);
      }
    }
    g.fillStyle = "#3a3";
    for (const t of this.frameMs) g.fillRect(this.x(t, c.width), 3 * LANE_H + 3, 1, LANE_H - 8);
    this.base = g.getImageData(0, 0, c.width, c.height);
  }

  playhead(ms: number) {
    const g = this.canvas.getContext("2d")!;
    if (this.base) g.putImageData(this.base, 0, 0);
    g.fillStyle = "#000";
    g.fillRect(this.x(ms, this.canvas.width), 0, 2, this.canvas.height);
  }
}
