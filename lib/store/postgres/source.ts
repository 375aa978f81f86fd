/**
 * Reading the fleet store: sessions listed from their start and end events, searches over the
 * events table, and a session read back from its stored files with the same code that reads them
 * from the data dir, so `replay` and `play` print the same bytes from either. A session whose
 * recording is not stored yet (still running, or its host not caught up) is read from its events.
 */
import type { SQL } from "bun";
import { checkSessionId, SessionFiles, type FileShelf } from "../file/session-files.ts";
import { FilesRecording } from "../file/file-store.ts";
import { summaryOf } from "../session-summary.ts";
import { isStoredEvent } from "../stored-event.ts";
import {
  DEFAULT_SEARCH_LIMIT,
  pageOfSessions,
  splitKey,
  type EventQuery,
  type EventSource,
  type SearchPage,
  type SearchQuery,
  type SessionPage,
  type SessionRecording,
  UnknownSession,
} from "../store.ts";
import type { AuditEvent } from "../../events/audit-events.ts";
import { KINDS } from "../../events/kinds/index.ts";
import { EsrError } from "../../errors.ts";
import { connect, storeError } from "./connection.ts";
import { maskPassword } from "./uri.ts";
import { SEARCH_TEXT } from "./schema.ts";

const ENHANCED: string[] = KINDS.map((k) => k.event);

/** Rows whose event_data can be an event at all; the rest of its shape is checked by isStoredEvent. */
const AN_OBJECT = "jsonb_typeof(event_data) = 'object'";

/**
 * A row's page key from the columns it is ordered by, spelled as eventKey and sessionPageKey spell
 * them from a stored event (ms, UTC), so that a forged event_data cannot derail paging.
 */
const rowKey = (id: string) =>
  `to_char(event_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '|' || ${id}::text`;
/** One row of the events table. */
export interface EventRow {
  id: string;
  type: string;
  sid: string;
  time: Date;
  data: unknown;
}

const KIND_OF_EVENT: Record<string, string> = Object.fromEntries(KINDS.map((k) => [k.event, k.name]));

export class PostgresEventSource implements EventSource {
  private readonly sql: SQL;
  private readonly recordingsSql: SQL;
  readonly location: string;

  /** `sessionsUri`: where recordings are, when not with the events. */
  constructor(uri: string, sessionsUri?: string) {
    this.location = maskPassword(uri);
    this.sql = connect(uri);
    this.recordingsSql = sessionsUri && sessionsUri !== uri ? connect(sessionsUri) : this.sql;
  }

  private async query<T>(what: string, run: (sql: SQL) => Promise<T>, sql = this.sql): Promise<T> {
    try {
      return await run(sql);
    } catch (err) {
      throw storeError(this.location, what, err);
    }
  }

  async sessions(page: { limit?: number; after?: string } = {}): Promise<SessionPage> {
    const after = page.after === undefined ? undefined : splitKey(page.after);
    if (page.after !== undefined && !after)
      throw new EsrError(`not a session page key: ${JSON.stringify(page.after)}`, 2);
    const limit = page.limit ?? 1_000_000;
    const starts: { key: string; sid: string; data: AuditEvent }[] = await this.query("listing sessions", (sql) =>
      sql.unsafe(
        `SELECT ${rowKey("session_id")} AS key, session_id::text AS sid, event_data AS data FROM events
         WHERE event_type = 'session.start' AND ${AN_OBJECT} ${after ? "AND (event_time, session_id) < ($2::timestamptz, $3::uuid)" : ""}
         ORDER BY event_time DESC, session_id DESC LIMIT $1`,
        after ? [limit + 1, after.time, after.id] : [limit + 1],
      ),
    );
    if (starts.length === 0) return { sessions: [] };
    const sids = starts.map((s) => s.sid);
    const listed = starts.filter((s) => isStoredEvent(s.data));
    const rows: { sid: string; type: string; n: number; data: AuditEvent | null }[] = await this.query(
      "listing sessions",
      (sql) => sql`
        SELECT session_id::text AS sid, event_type AS type, count(*)::int AS n,
               (array_agg(event_data) FILTER (WHERE event_type = 'session.end' AND jsonb_typeof(event_data) = 'object'))[1] AS data
        FROM events WHERE session_id = ANY(${sids}::uuid[]) AND event_type = ANY(${[...ENHANCED, "session.end"]}::text[])
        GROUP BY 1, 2`,
    );
    const summaries = listed.map(({ sid, data }) => {
      const mine = rows.filter((r) => r.sid === sid);
      const counts = Object.fromEntries(
        mine.filter((r) => r.type in KIND_OF_EVENT).map((r) => [KIND_OF_EVENT[r.type], r.n]),
      );
      const end = mine.find((r) => r.type === "session.end")?.data;
      return summaryOf(sid, end ? [data, end] : [data], counts, 0);
    });
    // The key of the last start read, listed or not: the next page goes on from there.
    const result = pageOfSessions(summaries, { limit });
    return starts.length > limit ? { ...result, next: starts[limit - 1]!.key } : result;
  }

  async search(q: SearchQuery): Promise<SearchPage> {
    const params: unknown[] = [];
    const where: string[] = [];
    const param = (value: unknown, cast = "") => {
      params.push(value);
      return `$${params.length}${cast}`;
    };
    if (q.since !== undefined) where.push(`event_time >= ${param(q.since, "::timestamptz")}`);
    if (q.until !== undefined) where.push(`event_time < ${param(q.until, "::timestamptz")}`);
    if (q.user !== undefined) where.push(`event_data->>'user' = ${param(q.user)}`);
    if (q.login !== undefined) where.push(`event_data->>'login' = ${param(q.login)}`);
    if (q.host !== undefined) where.push(`event_data->>'server_hostname' = ${param(q.host)}`);
    if (q.types !== undefined) where.push(`event_type = ANY(${param(q.types, "::text[]")})`);
    if (q.program !== undefined) where.push(`event_data->>'program' = ${param(q.program)}`);
    if (q.sid !== undefined) {
      checkSessionId(q.sid);
      where.push(`session_id = ${param(q.sid, "::uuid")}`);
    }
    if (q.text !== undefined)
      where.push(`${SEARCH_TEXT} ILIKE ${param(`%${q.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`)}`);
    if (q.after !== undefined) {
      const key = splitKey(q.after);
      if (!key) throw new EsrError(`search: --after must be a key printed by a previous search`, 2);
      where.push(`(event_time, event_id) < (${param(key.time, "::timestamptz")}, ${param(key.id, "::uuid")})`);
    }
    const limit = q.limit ?? DEFAULT_SEARCH_LIMIT;
    where.push(AN_OBJECT);
    const rows: { key: string; data: unknown }[] = await this.query("searching", (sql) =>
      sql.unsafe(
        `SELECT ${rowKey("event_id")} AS key, event_data AS data FROM events WHERE ${where.join(" AND ")}
         ORDER BY event_time DESC, event_id DESC LIMIT ${param(limit + 1)}`,
        params,
      ),
    );
    const events = rows
      .slice(0, limit)
      .map((r) => r.data)
      .filter(isStoredEvent);
    return rows.length > limit ? { events, next: rows[limit - 1]!.key } : { events };
  }

  async session(sid: string): Promise<SessionRecording> {
    checkSessionId(sid);
    const stored = await this.recordingFiles(sid);
    if (stored) return new FilesRecording(new SessionFiles(sid, stored.shelf));
    if ((await this.eventCount(sid)) === 0) throw new UnknownSession(sid, this.location);
    return new EventsRecording(sid, this);
  }

  /** A session's stored files as a shelf, and the host that stored them; undefined when none are stored. */
  async recordingFiles(sid: string): Promise<{ serverId: string; shelf: FileShelf } | undefined> {
    const parts: { name: string; part: number; parts: number; data: Uint8Array; server_id: string }[] =
      await this.query(
        `reading session ${sid}`,
        (sql) => sql`
          SELECT file_name AS name, part, parts, data, server_id::text FROM recordings
          WHERE session_id = ${sid}::uuid ORDER BY file_name, part`,
        this.recordingsSql,
      );
    return parts.length ? { serverId: parts[0]!.server_id, shelf: this.shelf(sid, parts) } : undefined;
  }

  /** A session's stored files as a shelf; a file with parts missing reads as far as they go, and says so. */
  private shelf(sid: string, parts: { name: string; part: number; parts: number; data: Uint8Array }[]): FileShelf {
    const files = new Map<string, Buffer>();
    const warnings = new Map<string, string>();
    for (const name of new Set(parts.map((p) => p.name))) {
      const mine = parts.filter((p) => p.name === name);
      const contiguous = mine.filter((p, i) => p.part === i);
      if (contiguous.length !== mine[0]!.parts)
        warnings.set(name, `${contiguous.length} of ${mine[0]!.parts} parts stored`);
      files.set(name, Buffer.concat(contiguous.map((p) => p.data)));
    }
    const where = (name: string) => `${this.location} recording ${sid}/${name}`;
    return {
      read: (name) => {
        const data = files.get(name);
        if (!data) throw new Error("not stored");
        if (warnings.has(name)) throw new Error(warnings.get(name));
        return data;
      },
      describe: where,
    };
  }

  /** Every session whose recording is stored, with the host that stored it. */
  async storedSessions(): Promise<{ sid: string; serverId: string }[]> {
    return this.query(
      "listing recordings",
      (sql) => sql`
        SELECT session_id::text AS sid, min(server_id::text) AS "serverId" FROM recordings
        GROUP BY session_id ORDER BY min(creation_time), session_id`,
      this.recordingsSql,
    );
  }

  /** Hosts whose integrity journal is stored. */
  async journalHosts(): Promise<string[]> {
    const rows: { host: string }[] = await this.query(
      "reading host journals",
      (sql) => sql`SELECT DISTINCT server_id::text AS host FROM host_journal ORDER BY 1`,
      this.recordingsSql,
    );
    return rows.map((r) => r.host);
  }

  /** A host's integrity journal as shipped: its lines by number, and how a message names one. */
  async journal(host: string): Promise<{ lines: string[]; where: (line: number) => string }> {
    const rows: { line: number; entry: string }[] = await this.query(
      `reading the journal of host ${host}`,
      (sql) => sql`SELECT line, entry FROM host_journal WHERE server_id = ${host}::uuid ORDER BY line`,
      this.recordingsSql,
    );
    // Messages name the stored line numbers: a row deleted shows as the line after the hole.
    const numbers = rows.map((r) => r.line);
    return {
      lines: rows.map((r) => r.entry),
      where: (i) => `${this.location} host_journal of host ${host} line ${numbers[i - 1]! + 1}`,
    };
  }

  async eventCount(sid: string): Promise<number> {
    const [{ n }] = await this.query(
      `reading session ${sid}`,
      (sql) => sql`SELECT count(*)::int AS n FROM events WHERE session_id = ${sid}::uuid`,
    );
    return n;
  }

  /** A session's rows of the events table, as stored. */
  async eventRows(sid: string): Promise<EventRow[]> {
    return this.query(
      `reading session ${sid}`,
      (sql) => sql`
        SELECT event_id::text AS id, event_type AS type, session_id::text AS sid, event_time AS time, event_data AS data
        FROM events WHERE session_id = ${sid}::uuid ORDER BY event_time, event_id`,
    );
  }

  /** Events of one session by `ei`, from the events table. */
  async sessionEvents(sid: string, query: EventQuery): Promise<AuditEvent[]> {
    const streams = query.streams;
    const types = streams && [...streams].filter((s) => s !== "events");
    const sessionStream = !streams || streams.has("events");
    return (
      await this.query(
        `reading session ${sid}`,
        (sql) => sql`
          SELECT event_data AS data FROM events WHERE session_id = ${sid}::uuid
            AND jsonb_typeof(event_data->'ei') = 'number'
            AND (${types === undefined} OR event_type = ANY(${types ?? []}::text[])
                 OR (${sessionStream} AND NOT event_type = ANY(${ENHANCED}::text[])))
            AND (event_data->>'ei')::numeric >= ${query.fromEi ?? 0}
          ORDER BY (event_data->>'ei')::numeric
          LIMIT ${query.limit ?? null}::bigint`,
      )
    )
      .map((r: { data: unknown }) => r.data)
      .filter(isStoredEvent);
  }

  async close() {
    await this.sql.close();
    if (this.recordingsSql !== this.sql) await this.recordingsSql.close();
  }
}

/** A session whose files are not stored (yet): its events, and no terminal output. */
class EventsRecording implements SessionRecording {
  readonly warnings: string[];

  constructor(
    readonly sid: string,
    private readonly source: PostgresEventSource,
  ) {
    this.warnings = [`session ${sid}: its recording is not in ${source.location} yet; showing its events`];
  }

  events(query: EventQuery = {}): Promise<AuditEvent[]> {
    return this.source.sessionEvents(this.sid, query);
  }

  async terminalOutput(): Promise<Buffer | undefined> {
    return undefined;
  }
}
