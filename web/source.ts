/**
 * What the web UI reads, and the one place that knows where from: today the local data dir
 * through lib/store's file readers. A store that reads the fleet's database replaces this file's
 * functions and nothing else in web/.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { AuditLog } from "../lib/store/file/audit-log.ts";
import { listSessionIds, SessionFiles } from "../lib/store/file/session-files.ts";
import { summarize, type SessionSummary } from "../lib/store/session-summary.ts";
import type { AuditEvent } from "../lib/events/audit-events.ts";
import { framesOf, type TerminalFrame } from "../lib/replay/terminal-frames.ts";

export type { SessionSummary };

export interface RecordedSessionData {
  /** Every event in `ei` order, print events included. */
  events: AuditEvent[];
  /** Terminal output frames; undefined when the session was not recorded on a terminal. */
  frames?: TerminalFrame[];
  warnings: string[];
}

export interface EventSource {
  /** Every session, newest first. */
  sessions(): SessionSummary[];
  /** Changes whenever a session's recording does (a running session grows); empty for an unknown session. */
  sessionVersion(sid: string): string;
  session(sid: string): RecordedSessionData;
  /** The audit log's files, newest day first, each with the day it holds (YYYY-MM-DD). */
  auditLogDays(): { day: string; read(): string }[];
}

export function fileSource(dataDir: string): EventSource {
  const sessionsDir = () => AuditLog.read(dataDir).sessionsDir;
  /** Names, sizes and times of the files whose names start with `prefix`: changes when any of them does. */
  const version = (prefix: string) => {
    const dir = sessionsDir();
    return readdirSync(dir)
      .filter((name) => name.startsWith(prefix))
      .sort()
      .map((name) => {
        const st = statSync(join(dir, name));
        return `${name}:${st.size}:${st.mtimeMs}`;
      })
      .join("|");
  };
  // Listing counts every session's events: done again only when a recording changed.
  let listed: { version: string; sessions: SessionSummary[] } | undefined;
  return {
    sessions() {
      const now = version("");
      if (listed?.version !== now) {
        const all = listSessionIds(dataDir).map(({ sid }) => summarize(SessionFiles.open(dataDir, sid)));
        listed = { version: now, sessions: all.sort((a, b) => (b.start ?? "").localeCompare(a.start ?? "")) };
      }
      return listed.sessions;
    },
    sessionVersion: version,
    session(sid) {
      const files = SessionFiles.open(dataDir, sid);
      const events = files.events();
      const output = files.terminalOutput();
      const frames = output ? framesOf(output, events, files.warnings).frames : undefined;
      return { events, frames, warnings: files.warnings };
    },
    auditLogDays() {
      // <data_dir>/log/<server_id>/ holds the daily files; the sessions dir is two levels below it.
      const logDir = dirname(dirname(sessionsDir()));
      if (!existsSync(logDir)) return [];
      return readdirSync(logDir)
        .filter((name) => /^\d{4}-\d\d-\d\d\.00:00:00\.log$/.test(name))
        .sort()
        .reverse()
        .map((name) => ({ day: name.slice(0, 10), read: () => readFileSync(join(logDir, name), "utf8") }));
    },
  };
}
