/**
 * The local data dir as a store: sessions written as docs/contract.md §4 files (the durable spool that the
 * fleet shipper reads), and read back from them.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AuditLog, dailyLogFiles } from "./audit-log.ts";
import { listSessionIds, SessionFiles } from "./session-files.ts";
import { SessionWriter } from "./session-writer.ts";
import { summaryOf, type SessionSummary } from "../session-summary.ts";
import { isStoredEvent } from "../stored-event.ts";
import { SessionChain, type CheckpointPolicy } from "../integrity/chain.ts";
import { HostKey } from "../integrity/host-key.ts";
import {
  DEFAULT_SEARCH_LIMIT,
  eventKey,
  matchesSearch,
  pageOfEvents,
  pageOfSessions,
  type EventQuery,
  type EventSource,
  type EventStore,
  type SearchPage,
  type SearchQuery,
  type SessionPage,
  type SessionRecording,
  type SessionSink,
} from "../store.ts";
import type { AuditEvent } from "../../events/audit-events.ts";
import { KINDS } from "../../events/kinds/index.ts";

export class FileEventStore implements EventStore {
  private constructor(
    readonly log: AuditLog,
    private readonly key: HostKey,
    private readonly policy: CheckpointPolicy,
  ) {}

  /**
   * Opens (creating it if needed) the data dir for writing, with the host key that signs its
   * sessions' chains; a clear error if it cannot be written.
   */
  static open(dataDir: string, integrity: CheckpointPolicy & { epochMs: number }): FileEventStore {
    const log = AuditLog.open(dataDir);
    return new FileEventStore(log, HostKey.open(dataDir, log.serverId, integrity.epochMs), integrity);
  }

  get serverId(): string {
    return this.log.serverId;
  }

  get location(): string {
    return this.log.sessionsDir;
  }

  openSession(sid: string): SessionSink {
    return new SessionWriter(this.log, sid, new SessionChain(this.key, sid, this.log.sessionsDir, this.policy));
  }
}

/**
 * Start and end come from the session's events file; the enhanced events are only counted, so a
 * session of millions of events is listed without holding them in memory.
 */
function summarize(files: SessionFiles): SessionSummary {
  const counts = Object.fromEntries(KINDS.map((kind) => [kind.name, files.count(kind.event)]));
  return summaryOf(files.sid, files.events(new Set(["events"])), counts, files.warnings.length);
}

/**
 * A test on a daily file's raw line that every event matching `q` passes, run before the line is
 * parsed: most lines of a big log fail it. The writer spells each line with JSON.stringify, so a
 * field that must equal a value holds `"name":value` in the line, spelled the same way. Text is
 * tested only when it is plain ASCII without `"` or `\`: otherwise the line's spelling (escapes,
 * case mapping in context) could differ from the text searched.
 */
function lineFilter(q: SearchQuery): (line: string) => boolean {
  const field = (name: string, value: string | undefined) =>
    value === undefined ? undefined : `"${name}":${JSON.stringify(value)}`;
  const required = [
    field("user", q.user),
    field("login", q.login),
    field("server_hostname", q.host),
    field("program", q.program),
    field("sid", q.sid?.toLowerCase()),
  ].filter((n): n is string => n !== undefined);
  const types = q.types?.map((t) => field("event", t)!);
  const text =
    q.text !== undefined && /^[\x20-\x7e]*$/.test(q.text) && !/["\\]/.test(q.text) ? q.text.toLowerCase() : undefined;
  return (line) =>
    required.every((n) => line.includes(n)) &&
    (types === undefined || types.some((n) => line.includes(n))) &&
    (text === undefined || line.toLowerCase().includes(text));
}

export class FileEventSource implements EventSource {
  constructor(readonly dataDir: string) {}

  get location(): string {
    return this.dataDir;
  }

  async sessions(page?: { limit?: number; after?: string }): Promise<SessionPage> {
    const all = listSessionIds(this.dataDir).map(({ sid }) => summarize(SessionFiles.open(this.dataDir, sid)));
    return pageOfSessions(all, page);
  }

  async session(sid: string): Promise<SessionRecording> {
    return new FilesRecording(SessionFiles.open(this.dataDir, sid));
  }

  /** Scans the daily event files: fine for one host's data dir; the fleet store has indexes for this. */
  async search(query: SearchQuery): Promise<SearchPage> {
    const { dailyDir } = AuditLog.read(this.dataDir);
    const after = query.after;
    const found: { key: string; event: AuditEvent }[] = [];
    const mayMatch = lineFilter(query);
    for (const name of dailyLogFiles(dailyDir)) {
      for (const line of readFileSync(join(dailyDir, name), "utf8").split("\n")) {
        if (!line || !mayMatch(line)) continue;
        let event: AuditEvent;
        try {
          event = JSON.parse(line);
        } catch {
          continue; // a line being written; replay reports damage, search only finds
        }
        if (!isStoredEvent(event)) continue;
        const key = eventKey(event);
        if ((after === undefined || key < after) && matchesSearch(event, query)) found.push({ key, event });
      }
    }
    found.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    const limit = query.limit ?? DEFAULT_SEARCH_LIMIT;
    const events = found.slice(0, limit).map((f) => f.event);
    return found.length > limit ? { events, next: eventKey(events.at(-1)!) } : { events };
  }

  async close() {}
}

/**
 * A session read from its files. The events of each selection are parsed once and then paged from
 * memory, so a reader walking a long session page by page does not decompress it per page.
 */
export class FilesRecording implements SessionRecording {
  private cached?: { key: string; events: AuditEvent[] };

  constructor(readonly files: SessionFiles) {}

  get sid(): string {
    return this.files.sid;
  }

  get warnings(): string[] {
    return this.files.warnings;
  }

  async events(query: EventQuery = {}): Promise<AuditEvent[]> {
    const key = query.streams ? [...query.streams].sort().join(",") : "*";
    if (this.cached?.key !== key) {
      const streams = query.streams && new Set(query.streams);
      this.cached = { key, events: this.files.events(streams) };
    }
    return pageOfEvents(this.cached.events, query);
  }

  async terminalOutput(): Promise<Buffer | undefined> {
    return this.files.terminalOutput();
  }
}
