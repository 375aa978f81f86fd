/**
 * The audit log page's search: every event of every session (the host's audit log, where print
 * events never go), filtered on the server, newest first, a page at a time.
 */
import type { AuditEvent } from "../lib/events/audit-events.ts";
import { EsrError } from "../lib/errors.ts";
import type { EventSource } from "./source.ts";

export interface SearchFilter {
  from?: number;
  to?: number;
  /** An event name (`session.command`) or a kind (`command`, `network`, `disk`, `session`). */
  type?: string;
  /** Matches `user` or `login`. */
  user?: string;
  host?: string;
  program?: string;
  /** Text anywhere in argv, path, exe or the destination address. */
  text?: string;
  sid?: string;
}

const TYPE_EVENTS: Record<string, string[]> = {
  command: ["session.command"],
  network: ["session.network"],
  disk: ["session.disk"],
  session: ["session.start", "exec", "session.end", "resize"],
};

/** A filter from URL parameters; a bad one is one clear error. */
export function parseSearchFilter(params: URLSearchParams): SearchFilter {
  const time = (name: string) => {
    const v = params.get(name);
    if (!v) return undefined;
    const t = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(t)) throw new EsrError(`${name}: not a time: ${JSON.stringify(v.slice(0, 40))}`, 2);
    return t;
  };
  const text = (name: string) => params.get(name)?.trim() || undefined;
  const type = text("type");
  if (type && !(type in TYPE_EVENTS) && !Object.values(TYPE_EVENTS).flat().includes(type))
    throw new EsrError(`type: unknown event type ${JSON.stringify(type.slice(0, 40))}`, 2);
  return {
    from: time("from"),
    to: time("to"),
    type,
    user: text("user"),
    host: text("host"),
    program: text("program"),
    text: text("q"),
    sid: text("sid"),
  };
}

/** Stored events are filtered by their fields' names, whatever their kind (and whatever a damaged line holds). */
function matches(e: Record<string, unknown>, f: SearchFilter, events: string[] | undefined): boolean {
  if (events && !events.includes(String(e.event))) return false;
  if (f.sid && e.sid !== f.sid) return false;
  if (f.user && e.user !== f.user && e.login !== f.user) return false;
  if (f.host && e.server_hostname !== f.host) return false;
  if (f.program && e.program !== f.program) return false;
  if (f.from !== undefined || f.to !== undefined) {
    const t = Date.parse(String(e.time));
    if (f.from !== undefined && !(t >= f.from)) return false;
    if (f.to !== undefined && !(t <= f.to)) return false;
  }
  if (f.text) {
    const fields = [e.path, e.exe, e.dst_addr, ...(Array.isArray(e.argv) ? e.argv : [])];
    if (!fields.some((v) => typeof v === "string" && v.includes(f.text!))) return false;
  }
  return true;
}

export interface SearchPage {
  events: AuditEvent[];
  more: boolean;
  scanned: number;
}

/**
 * Strings a stored line must contain to match: the writer's JSON.stringify escapes character by
 * character, so a value (or a piece of one) appears in the line exactly as JSON.stringify spells it.
 */
function needles(f: SearchFilter, events: string[] | undefined): string[] {
  const json = (v: string) => JSON.stringify(v);
  return [
    events?.length === 1 && `"event":${json(events[0]!)}`,
    f.sid && json(f.sid),
    f.user && json(f.user),
    f.host && `"server_hostname":${json(f.host)}`,
    f.program && `"program":${json(f.program)}`,
    f.text && json(f.text).slice(1, -1),
  ].filter((n): n is string => Boolean(n));
}

/** Events `offset`… of the matches, newest first; stops reading as soon as the page is full. */
export function searchAuditLog(source: EventSource, f: SearchFilter, offset: number, limit: number): SearchPage {
  const events = f.type ? (TYPE_EVENTS[f.type] ?? [f.type]) : undefined;
  const required = needles(f, events);
  const fromDay = f.from === undefined ? "" : new Date(f.from).toISOString().slice(0, 10);
  const toDay = f.to === undefined ? "\uffff" : new Date(f.to).toISOString().slice(0, 10);
  const found: AuditEvent[] = [];
  let scanned = 0;
  for (const { day, read } of source.auditLogDays()) {
    if (day > toDay) continue;
    if (day < fromDay) break;
    const lines = read().split("\n");
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i]!;
      // Cheap tests on the raw line first: most lines of a big log fail them.
      if (!line || !required.every((n) => line.includes(n))) continue;
      scanned++;
      let e: AuditEvent;
      try {
        e = JSON.parse(line);
      } catch {
        continue;
      }
      if (!matches(e as unknown as Record<string, unknown>, f, events)) continue;
      if (found.push(e) > offset + limit) return { events: found.slice(offset, offset + limit), more: true, scanned };
    }
  }
  return { events: found.slice(offset, offset + limit), more: false, scanned };
}
