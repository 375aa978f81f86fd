/**
 * The session's events as a scrolling list that follows playback. Only the rows in view exist;
 * their events are fetched a page at a time, so a session of 100k events opens at once.
 */
import { getJson } from "./api.ts";
import { safeLine } from "../../lib/events/safe-text.ts";
import { clear, h } from "./dom.ts";
import { FLAG } from "../timeline-codes.ts";
import type { TimelineIndex } from "./timeline.ts";

const ROW_H = 20;
const PAGE = 200;

export interface ListedEvent {
  event: Record<string, unknown> & { event: string; ei: number; pid?: number; time?: string };
  text: string;
}

const LABEL: Record<string, string> = {
  "session.command": "exec",
  "session.network": "connect",
  "session.disk": "open",
  "session.start": "start",
  "session.end": "end",
  resize: "resize",
};

export class EventList {
  readonly el: HTMLElement;
  private readonly rows: HTMLElement;
  private readonly pages = new Map<number, ListedEvent[] | Promise<void>>();
  private current = -1;
  private selected = -1;
  follow = true;

  constructor(
    private readonly sid: string,
    private readonly index: TimelineIndex,
    private readonly onPick: (position: number, e: ListedEvent) => void,
  ) {
    this.rows = h("div", { class: "rows" });
    this.rows.style.height = `${index.ms.length * ROW_H}px`;
    this.el = h("div", { class: "event-list", tabindex: 0 }, this.rows);
    this.el.addEventListener("scroll", () => this.render());
    // A reviewer scrolling by hand stops the list from following playback until the next seek.
    this.el.addEventListener("wheel", () => (this.follow = false), { passive: true });
  }

  /** The event at a list position, once its page is loaded. */
  eventAt(position: number): ListedEvent | undefined {
    const page = this.pages.get(Math.floor(position / PAGE));
    return Array.isArray(page) ? page[position % PAGE] : undefined;
  }

  async load(position: number): Promise<ListedEvent | undefined> {
    await this.page(Math.floor(position / PAGE));
    return this.eventAt(position);
  }

  private page(n: number): Promise<void> {
    const have = this.pages.get(n);
    if (Array.isArray(have)) return Promise.resolve();
    if (have) return have;
    const loading = getJson<{ events: ListedEvent[] }>(
      `/api/sessions/${encodeURIComponent(this.sid)}/events?offset=${n * PAGE}&limit=${PAGE}`,
    ).then((r) => {
      this.pages.set(n, r.events);
      this.render();
    });
    this.pages.set(n, loading);
    return loading;
  }

  /** Highlights the event at `position` (the last one at or before the playhead). */
  setCurrent(position: number) {
    if (position === this.current) return;
    this.current = position;
    if (this.follow && position >= 0) {
      const top = position * ROW_H;
      if (top < this.el.scrollTop || top > this.el.scrollTop + this.el.clientHeight - ROW_H)
        this.el.scrollTop = Math.max(0, top - this.el.clientHeight / 3);
    }
    this.render();
  }

  select(position: number) {
    this.selected = position;
    this.render();
  }

  render() {
    const first = Math.max(0, Math.floor(this.el.scrollTop / ROW_H) - 5);
    const last = Math.min(this.index.ms.length, first + Math.ceil(this.el.clientHeight / ROW_H) + 10);
    clear(this.rows);
    for (let p = first; p < last; p++) {
      const e = this.eventAt(p);
      if (!e) void this.page(Math.floor(p / PAGE));
      const flags = this.index.flags[p]!;
      const cls = [
        "row",
        p === this.current && "current",
        p === this.selected && "selected",
        flags & FLAG.unseen && "unseen",
        flags & FLAG.truncated && "truncated",
        flags & FLAG.failed && "failed",
        flags & FLAG.lost && "lost",
      ]
        .filter(Boolean)
        .join(" ");
      const row = h(
        "div",
        {
          class: cls,
          "data-position": p,
          title: flags & FLAG.unseen ? "ran, but its command line never appeared on the screen" : undefined,
        },
        h("span", { class: "t" }, (this.index.ms[p]! / 1000).toFixed(3)),
        h("span", { class: "pid" }, e?.event.pid === undefined ? "" : String(e.event.pid)),
        h("span", { class: "kind" }, e ? (LABEL[e.event.event] ?? safeLine(e.event.event)) : ""),
        h("span", { class: "what" }, e ? safeLine(e.text) : "…"),
      );
      row.style.top = `${p * ROW_H}px`;
      if (e) row.addEventListener("click", () => this.onPick(p, e));
      this.rows.appendChild(row);
    }
  }
}
