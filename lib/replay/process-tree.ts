/**
 * `esr replay --tree`: a session's processes as a tree, built from what the kernel reported — each
 * exec's pid and ppid — with every exec of a process (a failed one, or `exec` replacing it), and
 * its connects and opens under it.
 */
import { commandText, execNotes, networkText, notesText, openText, type Paint, returnCodeText } from "./text-format.ts";
import type { AuditEvent } from "../events/audit-events.ts";
import type { SessionCommandEvent, SessionDiskEvent, SessionNetworkEvent } from "../events/kinds/index.ts";

export interface ProcessNode {
  pid: number;
  /** The parent at the process's first exec; undefined for a process seen only by its activity. */
  ppid?: number;
  /** session.command events, in order. */
  execs: SessionCommandEvent[];
  /** session.network and session.disk events, in order. */
  activity: (SessionNetworkEvent | SessionDiskEvent)[];
  children: ProcessNode[];
}

/** The roots: processes whose parent did not exec in the session (COMMAND itself, forked subshells' children). */
export function buildProcessTree(events: AuditEvent[]): ProcessNode[] {
  const nodes = new Map<number, ProcessNode>();
  const node = (pid: number) => {
    let n = nodes.get(pid);
    if (!n) nodes.set(pid, (n = { pid, execs: [], activity: [], children: [] }));
    return n;
  };
  for (const e of [...events].sort((a, b) => a.ei - b.ei)) {
    if (e.event === "session.command") {
      const n = node(e.pid);
      n.ppid ??= e.ppid;
      n.execs.push(e);
    } else if (e.event === "session.network" || e.event === "session.disk") node(e.pid).activity.push(e);
  }
  const roots: ProcessNode[] = [];
  for (const n of nodes.values()) {
    const parent = n.ppid === undefined ? undefined : nodes.get(n.ppid);
    // A reused pid could make a loop; such a process is shown as a root instead.
    if (parent && !isAncestor(n, parent, nodes)) parent.children.push(n);
    else roots.push(n);
  }
  return roots;
}

function isAncestor(candidate: ProcessNode, of: ProcessNode, nodes: Map<number, ProcessNode>): boolean {
  for (
    let n: ProcessNode | undefined = of, steps = 0;
    n && steps <= nodes.size;
    n = n.ppid === undefined ? undefined : nodes.get(n.ppid), steps++
  ) {
    if (n === candidate) return true;
  }
  return false;
}

/** The tree as text lines, with box-drawing branches; `paint` colours it (or not). */
export function formatProcessTree(roots: ProcessNode[], paint: Paint): string[] {
  const lines: string[] = [];
  const walk = (n: ProcessNode, lead: string, branch: string, childLead: string) => {
    const [first, ...more] = n.execs;
    const head = first ? execText(first, paint) : paint("dim", "(no exec recorded)");
    const ppid = branch === "" && n.ppid !== undefined ? paint("dim", `  (ppid ${n.ppid})`) : "";
    lines.push(`${paint("dim", lead + branch + String(n.pid))} ${head}${ppid}`);
    // Lines about this process line up with its command, beside the branch down to its children.
    const pad = paint("dim", childLead + (n.children.length ? "│" : " ")) + " ".repeat(String(n.pid).length);
    for (const e of more) lines.push(`${pad}${paint("dim", "↳")} ${execText(e, paint)}`);
    for (const [text, count] of activityLines(n.activity, paint))
      lines.push(`${pad}  ${text}${count > 1 ? paint("dim", ` ×${count}`) : ""}`);
    n.children.forEach((child, i) => {
      const last = i === n.children.length - 1;
      walk(child, childLead, last ? "└── " : "├── ", childLead + (last ? "    " : "│   "));
    });
  };
  for (const root of roots) walk(root, "", "", "");
  return lines;
}

function execText(e: SessionCommandEvent, paint: Paint): string {
  const rc = e.return_code;
  const failed = rc < 0;
  const command = commandText(e);
  const notes = notesText(execNotes(e));
  return `${paint(failed ? "red" : "bold", command)}${paint("yellow", notes)} ${paint(failed ? "red" : "green", `= ${returnCodeText(rc)}`)}`;
}

/** One line per distinct network event or open, in order of first occurrence, with how many times it happened. */
function activityLines(activity: ProcessNode["activity"], paint: Paint): [string, number][] {
  const counts = new Map<string, number>();
  for (const e of activity) {
    const text = e.event === "session.network" ? paint("magenta", networkText(e)) : paint("cyan", openText(e));
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  return [...counts];
}
