/**
 * One session as the session page needs it, built once per version of its recording: the events
 * as a list (print events only time the output, so they are left out), a compact index of that
 * list (time, kind and marks per event) for the timeline, the terminal output with its control
 * strings removed, the "never shown" execs, and the process tree. The page loads the index and the
 * output whole and the events in pages, so a session of 100k events never travels as one document.
 */
import type { AuditEvent, SessionEndEvent } from "../lib/events/audit-events.ts";
import { buildProcessTree, type ProcessNode } from "../lib/replay/process-tree.ts";
import { framesOf } from "../lib/replay/terminal-frames.ts";
import { commandText, networkText, openText, returnCodeText, shellQuote } from "../lib/replay/text-format.ts";
import type { EventSource, SessionRecording } from "../lib/store/store.ts";
import { neverShown } from "./shown.ts";
import { TerminalFilter } from "./terminal-filter.ts";
import { FLAG, KIND, type SessionMeta } from "./timeline-codes.ts";

const KIND_OF: Record<string, number> = {
  "session.command": KIND.command,
  "session.network": KIND.network,
  "session.disk": KIND.disk,
};

export interface SessionView {
  sid: string;
  meta: SessionMeta;
  list: AuditEvent[];
  index: { ms: number[]; kind: number[]; flags: number[] };
  output?: { ms: number[]; length: number[]; bytes: Uint8Array };
  startMs: number;
}

/** The line the event list and the audit log show for an event: what it did, as text. */
export function eventText(e: AuditEvent): string {
  switch (e.event) {
    case "session.command":
      return `${commandText(e)} = ${returnCodeText(e.return_code)}`;
    case "session.network":
      return networkText(e);
    case "session.disk":
      return openText(e);
    case "session.start":
      return `start ${shellQuote(Array.isArray(e.initial_command) ? e.initial_command.map(String) : [])}`;
    case "session.end": {
      const some = (counts: unknown) =>
        Object.entries((counts ?? {}) as Record<string, number>).filter(([, n]) => n > 0);
      const text = (label: string, counts: [string, number][]) =>
        counts.length ? ` ${label} ${counts.map(([k, n]) => `${k}=${n}`).join(",")}` : "";
      return `end exit=${e.exit_code}${text("LOST", some(e.lost_events))}${text("filtered", some(e.filtered_events))}`;
    }
    case "resize":
      return `resize ${e.size}`;
    default:
      return e.event;
  }
}

function lostCount(e: SessionEndEvent): number {
  return Object.values((e.lost_events ?? {}) as Record<string, unknown>).reduce<number>(
    (n, v) => n + (typeof v === "number" ? v : 0),
    0,
  );
}

export async function buildSessionView(recording: SessionRecording): Promise<SessionView> {
  const { sid, warnings } = recording;
  const events = await recording.events();
  const terminal = await recording.terminalOutput();
  const frames = terminal ? framesOf(terminal, events, warnings).frames : undefined;
  const start = events.find((e) => e.event === "session.start");
  const end = events.findLast((e) => e.event === "session.end");
  const startMs = Date.parse(String(start?.time ?? events[0]?.time)) || 0;
  const msOf = (e: { time?: unknown } | AuditEvent) => Math.max(0, (Date.parse(String(e.time)) || startMs) - startMs);
  const list = events.filter((e) => e.event !== "print");

  let output: SessionView["output"];
  let unseen = new Set<number>();
  if (frames) {
    const filter = new TerminalFilter();
    const filtered = frames.map((f) => ({ ms: msOf(f), bytes: filter.write(f.bytes) }));
    output = {
      ms: filtered.map((f) => f.ms),
      length: filtered.map((f) => f.bytes.length),
      bytes: Buffer.concat(filtered.map((f) => f.bytes)),
    };
    const execs = list.filter((e) => e.event === "session.command");
    // The session's own command (and a setpriv before it) was started by the recorder, never typed.
    const firstOutput = filtered[0]?.ms ?? Infinity;
    const rootPid = execs[0]?.pid;
    const typed = execs.filter((e) => !(e.pid === rootPid && msOf(e) <= firstOutput));
    unseen = neverShown(typed, filtered, msOf);
  }

  const index = { ms: [] as number[], kind: [] as number[], flags: [] as number[] };
  let truncated = 0;
  for (const e of list) {
    let flags = 0;
    if (unseen.has(e.ei)) flags |= FLAG.unseen;
    if ((e.event === "session.command" && e.argv_truncated) || ("path_truncated" in e && e.path_truncated)) {
      flags |= FLAG.truncated;
      truncated++;
    }
    if ("return_code" in e && typeof e.return_code === "number" && e.return_code < 0) flags |= FLAG.failed;
    if (e.event === "session.end" && lostCount(e) > 0) flags |= FLAG.lost;
    index.ms.push(msOf(e));
    index.kind.push(KIND_OF[e.event] ?? KIND.session);
    index.flags.push(flags);
  }
  const durationMs = Math.max(index.ms.at(-1) ?? 0, output ? (output.ms.at(-1) ?? 0) : 0, end ? msOf(end) : 0);
  return {
    sid,
    startMs,
    list,
    index,
    output,
    meta: {
      sid,
      start: start?.time as string | undefined,
      end: end?.time as string | undefined,
      host: start?.server_hostname as string | undefined,
      login: start?.login as string | undefined,
      user: start?.user as string | undefined,
      command: Array.isArray(start?.initial_command) ? start.initial_command.map(String) : [],
      size: typeof start?.size === "string" ? start.size : undefined,
      exitCode: end?.exit_code as number | undefined,
      lost: (end?.lost_events ?? {}) as Record<string, number>,
      durationMs,
      terminal: Boolean(frames),
      unseen: unseen.size,
      truncated,
      warnings,
    },
  };
}

export interface TreeNode {
  pid: number;
  ppid?: number;
  execs: { ei: number; ms: number; text: string; failed: boolean; unseen: boolean }[];
  activity: { ei: number; ms: number; text: string; count: number }[];
  children: TreeNode[];
}

/** The process tree (`esr replay --tree`) with what the page needs to seek from it. */
export function sessionTree(view: SessionView): TreeNode[] {
  const position = new Map(view.list.map((e, i) => [e.ei, i]));
  const at = (e: AuditEvent) => view.index.ms[position.get(e.ei) ?? 0] ?? 0;
  const convert = (n: ProcessNode): TreeNode => {
    const activity = new Map<string, TreeNode["activity"][number]>();
    for (const e of n.activity) {
      const text = eventText(e);
      const seen = activity.get(text);
      if (seen) seen.count++;
      else activity.set(text, { ei: e.ei, ms: at(e), text, count: 1 });
    }
    return {
      pid: n.pid,
      ppid: n.ppid,
      execs: n.execs.map((e) => ({
        ei: e.ei,
        ms: at(e),
        text: eventText(e),
        failed: typeof e.return_code === "number" && e.return_code < 0,
        unseen: ((view.index.flags[position.get(e.ei) ?? 0] ?? 0) & FLAG.unseen) !== 0,
      })),
      activity: [...activity.values()],
      children: n.children.map(convert),
    };
  };
  return buildProcessTree(view.list).map(convert);
}

/**
 * A few sessions' views. A finished session's recording never changes (it is stored once), so its
 * view is kept; a running one's grows, so its view is rebuilt once it is a second old.
 */
export class SessionViews {
  private readonly cache = new Map<string, { built: number; view: Promise<SessionView> }>();

  constructor(
    private readonly source: EventSource,
    private readonly max = 4,
  ) {}

  async get(sid: string): Promise<SessionView> {
    const hit = this.cache.get(sid);
    this.cache.delete(sid);
    const fresh = hit && ((await hit.view.catch(() => undefined))?.meta.end || performance.now() - hit.built < 1000);
    const entry = fresh ? hit : { built: performance.now(), view: this.source.session(sid).then(buildSessionView) };
    this.cache.set(sid, entry);
    while (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value!);
    try {
      return await entry.view;
    } catch (err) {
      // A failed read (the store down, the session unknown) is not kept: the next request tries again.
      if (this.cache.get(sid) === entry) this.cache.delete(sid);
      throw err;
    }
  }
}
