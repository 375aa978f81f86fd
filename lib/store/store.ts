/**
 * The store seam: recorders write a session through an {@link EventStore}, and every reader (the
 * CLI's replay, ls and play, the web UI) reads through an {@link EventSource}. The local data dir
 * (`file/`) is the first implementation of both; the fleet store (`postgres/`) reads the same
 * recordings from PostgreSQL.
 *
 * Writing is synchronous: it is on the recorder's hot path and must never wait for a network.
 * Reading is asynchronous and paged, so a reader can walk a session of millions of events, or a
 * database, without holding it all.
 */
import type { AuditEvent } from "../events/audit-events.ts";
import { EsrError } from "../errors.ts";
import type { SessionSummary } from "./session-summary.ts";

/** One session being recorded. */
export interface SessionSink {
  readonly sid: string;
  /** The `ei` of the next event: events are numbered in the order they are written. */
  index(): number;
  write(event: AuditEvent): void;
  /** Raw terminal output, the bytes that print events point into. */
  writeOutput(bytes: Uint8Array): void;
  /** Makes everything written so far durable (the recorder calls it at least every second). */
  flush(): void;
  close(): void;
}

export interface EventStore {
  /** The host's id, `server_id` in every event. */
  readonly serverId: string;
  /** Where recordings go, for messages. */
  readonly location: string;
  openSession(sid: string): SessionSink;
}

/**
 * The event streams of a session, as the local index names them: "events" (session.start, print,
 * resize, session.end…) and one per enhanced kind ("session.command", …).
 */
export type EventStream = string;

export interface EventQuery {
  /** Only these streams; every stream but the terminal output when absent. */
  streams?: ReadonlySet<EventStream>;
  /** Events with `ei` ≥ this (a page starts where the last one ended). */
  fromEi?: number;
  /** At most this many events. */
  limit?: number;
}

/** One recorded session, read back. */
export interface SessionRecording {
  readonly sid: string;
  /** What could not be read (damage, truncation), once each; readers show them after the output. */
  readonly warnings: string[];
  /** Events in `ei` order. */
  events(query?: EventQuery): Promise<AuditEvent[]>;
  /** The bytes the session's terminal showed; undefined when it was not recorded on a terminal. */
  terminalOutput(): Promise<Buffer | undefined>;
}

export interface SessionPage {
  /** Newest first (by start, then session id). */
  sessions: SessionSummary[];
  /** Pass as `after` for the next page; absent on the last page. */
  next?: string;
}

/** `esr search`: every given field must match. */
export interface SearchQuery {
  /** RFC 3339 times; `since` inclusive, `until` exclusive. */
  since?: string;
  until?: string;
  user?: string;
  login?: string;
  /** `server_hostname` */
  host?: string;
  /** Event names (`session.command`, …). */
  types?: string[];
  program?: string;
  /** A substring of the path or the arguments, any case. */
  text?: string;
  sid?: string;
  /** At most this many events (default 100). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface SearchPage {
  /** Newest first (by time, then uid). */
  events: AuditEvent[];
  next?: string;
}

export const DEFAULT_SEARCH_LIMIT = 100;

/**
 * A field by name, whatever the event's type: searches ask every event for fields that only
 * some types have.
 */
function field(e: AuditEvent, name: string): unknown {
  return (e as unknown as Record<string, unknown>)[name];
}

/** The stable key events are searched and paged by. */
export function eventKey(e: AuditEvent): string {
  return `${String(e.time)}|${String(field(e, "uid"))}`;
}

/** Splits a page key made by {@link eventKey} or {@link sessionPageKey}. */
export function splitKey(key: string): { time: string; id: string } | undefined {
  const at = key.lastIndexOf("|");
  const time = key.slice(0, at);
  const id = key.slice(at + 1);
  if (at < 0 || Number.isNaN(Date.parse(time)) || !/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  return { time, id };
}

/** The text `text` searches in: the path, then the arguments as JSON. */
export function searchText(e: AuditEvent): string {
  const path = field(e, "path");
  const argv = field(e, "argv");
  return `${typeof path === "string" ? path : ""} ${argv === undefined ? "" : JSON.stringify(argv)}`;
}

/** Whether an event matches a query's filters (not its paging), for stores that filter in JS. */
export function matchesSearch(e: AuditEvent, q: SearchQuery): boolean {
  const time = String(e.time);
  return (
    (q.since === undefined || Date.parse(time) >= Date.parse(q.since)) &&
    (q.until === undefined || Date.parse(time) < Date.parse(q.until)) &&
    (q.user === undefined || field(e, "user") === q.user) &&
    (q.login === undefined || field(e, "login") === q.login) &&
    (q.host === undefined || field(e, "server_hostname") === q.host) &&
    (q.types === undefined || q.types.includes(e.event)) &&
    (q.program === undefined || field(e, "program") === q.program) &&
    (q.sid === undefined || String(field(e, "sid")).toLowerCase() === q.sid.toLowerCase()) &&
    (q.text === undefined || searchText(e).toLowerCase().includes(q.text.toLowerCase()))
  );
}

/** A session the store does not hold, told apart from a store that cannot answer (the web UI's 404, not 503). */
export class UnknownSession extends EsrError {
  constructor(sid: string, location: string) {
    super(`unknown session ${sid} (not in ${location})`);
  }
}

export interface EventSource {
  /** Where it reads, for messages. */
  readonly location: string;
  sessions(page?: { limit?: number; after?: string }): Promise<SessionPage>;
  /** Events of every session, newest first. */
  search(query: SearchQuery): Promise<SearchPage>;
  /** A session by id; {@link UnknownSession} when there is no such session. */
  session(sid: string): Promise<SessionRecording>;
  close(): Promise<void>;
}

/** The stable key sessions are paged by: newest start first, then session id. */
export function sessionPageKey(s: Pick<SessionSummary, "start" | "sid">): string {
  return `${s.start ?? ""}|${s.sid}`;
}

/** Sorts summaries newest first and cuts the page that follows `after`. */
export function pageOfSessions(all: SessionSummary[], page: { limit?: number; after?: string } = {}): SessionPage {
  const sorted = all
    .map((s) => ({ s, key: sessionPageKey(s) }))
    .sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  const from = page.after === undefined ? 0 : sorted.findIndex(({ key }) => key < page.after!);
  const rest = from < 0 ? [] : sorted.slice(from);
  const limit = page.limit ?? Infinity;
  const sessions = rest.slice(0, limit).map(({ s }) => s);
  return rest.length > limit ? { sessions, next: sessionPageKey(sessions.at(-1)!) } : { sessions };
}

/** Applies an {@link EventQuery}'s `fromEi` and `limit` to events already in `ei` order. */
export function pageOfEvents(events: AuditEvent[], query: EventQuery = {}): AuditEvent[] {
  const { fromEi, limit } = query;
  if (fromEi === undefined && limit === undefined) return events;
  let start = 0;
  if (fromEi !== undefined) {
    // Binary search: events are sorted by ei.
    let hi = events.length;
    while (start < hi) {
      const mid = (start + hi) >> 1;
      if (events[mid]!.ei < fromEi) start = mid + 1;
      else hi = mid;
    }
  }
  return events.slice(start, limit === undefined ? undefined : start + limit);
}
