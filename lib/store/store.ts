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

export interface EventSource {
  /** Where it reads, for messages. */
  readonly location: string;
  sessions(page?: { limit?: number; after?: string }): Promise<SessionPage>;
  /** A session by id; an EsrError naming the source when there is no such session. */
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
