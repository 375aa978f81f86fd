/**
 * The local data dir as a store: sessions written as SPEC §4 files (the durable spool that the
 * fleet shipper reads), and read back from them.
 */
import { AuditLog } from "./audit-log.ts";
import { listSessionIds, SessionFiles } from "./session-files.ts";
import { SessionWriter } from "./session-writer.ts";
import { summarize } from "../session-summary.ts";
import {
  pageOfEvents,
  pageOfSessions,
  type EventQuery,
  type EventSource,
  type EventStore,
  type SessionPage,
  type SessionRecording,
  type SessionSink,
} from "../store.ts";
import type { AuditEvent } from "../../events/audit-events.ts";

export class FileEventStore implements EventStore {
  private constructor(readonly log: AuditLog) {}

  /** Opens (creating it if needed) the data dir for writing; a clear error if it cannot be written. */
  static open(dataDir: string): FileEventStore {
    return new FileEventStore(AuditLog.open(dataDir));
  }

  get serverId(): string {
    return this.log.serverId;
  }

  get location(): string {
    return this.log.sessionsDir;
  }

  openSession(sid: string): SessionSink {
    return new SessionWriter(this.log, sid);
  }
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
