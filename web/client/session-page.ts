/**
 * One session: the terminal played back with the kernel's events on one clock. The timeline marks
 * every exec (red when its command line never appeared on the screen), connects, opens, output,
 * truncation and loss; the event list follows the playhead; clicking an event, a marker or a
 * process seeks there; `?t=SECONDS` or `?ei=N` opens at an instant.
 */
import { getBytes, getJson } from "./api.ts";
import { safeLine } from "../../lib/events/safe-text.ts";
import { append, clear, formatDuration, formatTime, h } from "./dom.ts";
import { EventList, type ListedEvent } from "./event-list.ts";
import { lastAtOrBefore, Player, type Frames } from "./player.ts";
import { Timeline, type TimelineIndex } from "./timeline.ts";
import { treeView, type TreeNode } from "./tree-view.ts";
import type { SessionMeta } from "../timeline-codes.ts";

const TICK_MS = 40;
const IDLE_MS = 500;
const SPEEDS = [0.5, 1, 2, 4, 8, 16, 64];

export async function sessionPage(app: HTMLElement, sid: string) {
  const base = `/api/sessions/${encodeURIComponent(sid)}`;
  const { meta, index, frames } = await getJson<{ meta: SessionMeta; index: TimelineIndex; frames?: Frames }>(base);
  const bytes = frames ? await getBytes(`${base}/output`) : undefined;
  clear(app);

  const lost = Object.entries(meta.lost).filter(([, n]) => n > 0);
  append(
    app,
    h("h1", {}, "Session ", h("code", { class: "sid" }, meta.sid)),
    h(
      "dl",
      { class: "meta" },
      ...(
        [
          ["Host", safeLine(meta.host ?? "?")],
          ["Login", safeLine(meta.login ?? "?")],
          ["User", safeLine(meta.user ?? "?")],
          ["Start (UTC)", formatTime(meta.start)],
          [
            "Duration",
            meta.end ? formatDuration(meta.durationMs) : `running (${formatDuration(meta.durationMs)} so far)`,
          ],
          ["Command", safeLine(meta.command.join(" "))],
          ["Exit", meta.exitCode === undefined ? "?" : String(meta.exitCode)],
        ] as [string, string][]
      ).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    ),
    h(
      "p",
      { class: "marks" },
      meta.unseen > 0 &&
        h(
          "span",
          { class: "flag unseen" },
          `${meta.unseen} command${meta.unseen > 1 ? "s" : ""} ran that never appeared on the screen`,
        ),
      lost.length > 0 &&
        h("span", { class: "flag lost" }, `events lost: ${lost.map(([k, n]) => `${k} ${n}`).join(", ")}`),
      meta.truncated > 0 && h("span", { class: "flag truncated" }, `${meta.truncated} truncated`),
      !meta.terminal && h("span", { class: "flag" }, "no terminal output recorded: events and processes only"),
      ...meta.warnings.map((w) => h("span", { class: "flag warning" }, safeLine(w))),
    ),
  );

  let t = 0;
  let playing = false;
  let speed = 1;
  let skipIdle = false;
  const position = (ms: number) => lastAtOrBefore(index.ms, ms);

  const terminalBox = h("div", { class: "terminal", id: "terminal" });
  const player = frames && bytes ? new Player(terminalBox, frames, bytes, meta.size) : undefined;
  const timeline = new Timeline(index, frames?.ms ?? [], meta.durationMs, (ms) => seek(ms));
  const detail = h("pre", { class: "json", id: "event-json" });
  const list = new EventList(sid, index, (p, e) => {
    seek(index.ms[p]!);
    pick(p, e);
  });
  const pick = (p: number, e: ListedEvent) => {
    list.select(p);
    detail.textContent = JSON.stringify(e.event, null, 2);
  };

  const clock = h("span", { class: "clock", id: "clock" });
  const playButton = h("button", { id: "play", onclick: () => (playing ? pause() : play()) }, "▶ Play");
  const speedSelect = h(
    "select",
    { id: "speed", onchange: () => (speed = Number(speedSelect.value)) },
    ...SPEEDS.map((s) => h("option", { value: s, selected: s === 1 }, `${s}×`)),
  );
  const idleBox = h("input", { type: "checkbox", id: "skip-idle", onchange: () => (skipIdle = idleBox.checked) });
  const followBox = h("input", {
    type: "checkbox",
    id: "follow",
    checked: true,
    onchange: () => (list.follow = followBox.checked),
  });

  const update = () => {
    player?.show(t);
    timeline.playhead(t);
    list.setCurrent(position(t));
    clock.textContent = `${formatDuration(t)} / ${formatDuration(meta.durationMs)}`;
  };
  const remember = () => {
    const url = new URL(location.href);
    url.searchParams.delete("ei");
    url.searchParams.set("t", (t / 1000).toFixed(3));
    history.replaceState(null, "", url);
  };
  const seek = (ms: number) => {
    t = Math.max(0, Math.min(meta.durationMs, ms));
    list.follow = followBox.checked;
    update();
    remember();
  };

  let timer: ReturnType<typeof setInterval> | undefined;
  let last = 0;
  const play = () => {
    if (t >= meta.durationMs) t = 0;
    playing = true;
    playButton.textContent = "❚❚ Pause";
    last = performance.now();
    timer = setInterval(() => {
      const now = performance.now();
      t += (now - last) * speed;
      last = now;
      if (skipIdle) {
        const next = Math.min(
          index.ms[position(t) + 1] ?? Infinity,
          frames ? (frames.ms[lastAtOrBefore(frames.ms, t) + 1] ?? Infinity) : Infinity,
        );
        if (next !== Infinity && next - t > IDLE_MS) t = next - IDLE_MS;
      }
      if (t >= meta.durationMs) {
        t = meta.durationMs;
        pause();
      }
      update();
    }, TICK_MS);
  };
  const pause = () => {
    playing = false;
    playButton.textContent = "▶ Play";
    clearInterval(timer);
    remember();
  };

  const treeBox = h("div", { class: "tree-box", hidden: true });
  let treeLoaded = false;
  const tabs = h(
    "div",
    { class: "tabs" },
    h("button", { id: "tab-events", onclick: () => showTab(false) }, "Events"),
    h("button", { id: "tab-tree", onclick: () => showTab(true) }, "Process tree"),
  );
  const showTab = async (tree: boolean) => {
    list.el.hidden = tree;
    treeBox.hidden = !tree;
    if (tree && !treeLoaded) {
      treeLoaded = true;
      treeBox.appendChild(treeView(await getJson<TreeNode[]>(`${base}/tree`), seek));
    }
    if (!tree) list.render();
  };

  append(
    app,
    h(
      "div",
      { class: "player" },
      h(
        "div",
        { class: "controls" },
        playButton,
        " ",
        clock,
        h("label", {}, " Speed ", speedSelect),
        h("label", {}, idleBox, " skip idle"),
        h("label", {}, followBox, " list follows playback"),
      ),
      player ? terminalBox : null,
      timeline.canvas,
      h(
        "p",
        { class: "legend" },
        h("span", { class: "key unseen" }, "■"),
        " ran, never shown on screen  ",
        h("span", { class: "key truncated" }, "■"),
        " truncated  ",
        h("span", { class: "key lost" }, "■"),
        " events lost (counted at session end)  ",
        h("span", { class: "key exec" }, "■"),
        " exec",
      ),
    ),
    h("div", { class: "side" }, tabs, list.el, treeBox, h("h2", {}, "Selected event"), detail),
  );

  timeline.layout(timeline.canvas.parentElement!.clientWidth);
  addEventListener("resize", () => {
    timeline.layout(timeline.canvas.parentElement!.clientWidth);
    update();
  });

  const params = new URLSearchParams(location.search);
  const ei = params.get("ei");
  const at = params.get("t");
  if (ei !== null) {
    const p = index.ms.length ? await findEi(list, index, Number(ei)) : -1;
    if (p >= 0) {
      seek(index.ms[p]!);
      const e = await list.load(p);
      if (e) pick(p, e);
    } else update();
  } else if (at !== null && Number.isFinite(Number(at))) seek(Number(at) * 1000);
  else update();
  list.render();
}

/** The list position of event `ei`: events are in `ei` order, so a binary search over pages. */
async function findEi(list: EventList, index: TimelineIndex, ei: number): Promise<number> {
  let lo = 0;
  let hi = index.ms.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = await list.load(mid);
    if (!e) return -1;
    if (e.event.ei === ei) return mid;
    if (e.event.ei < ei) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}
