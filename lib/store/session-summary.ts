/** `esr ls`: one summary per recorded session, newest first. */
import { EVENT_KINDS } from "../config/config.ts";
import { listSessionIds, SessionFiles } from "./file/session-files.ts";
import { KIND_EVENT } from "../events/schema.ts";

export interface SessionSummary {
  sid: string;
  start?: string;
  end?: string;
  login?: string;
  user?: string;
  command: string[];
  counts: { command: number; disk: number; network: number };
  lost: { command: number; disk: number; network: number };
  exitCode?: number;
  warnings: number;
}

export function listSessions(dataDir: string): SessionSummary[] {
  return listSessionIds(dataDir)
    .map(({ sid }) => summarize(dataDir, sid))
    .sort((a, b) => (b.start ?? "").localeCompare(a.start ?? ""));
}

/**
 * Start and end come from the session's events file; the enhanced events are only counted, so a
 * session of millions of events is listed without holding them in memory.
 */
function summarize(dataDir: string, sid: string): SessionSummary {
  const files = SessionFiles.open(dataDir, sid);
  const events = files.events(new Set(["events"]));
  const summary: SessionSummary = {
    sid,
    command: [],
    counts: { command: 0, disk: 0, network: 0 },
    lost: { command: 0, disk: 0, network: 0 },
    warnings: 0,
  };
  for (const e of events) {
    if (e.event === "session.start") {
      summary.start = e.time as string;
      summary.login = e.login as string;
      summary.user = e.user as string;
      summary.command = (e.initial_command as string[]) ?? [];
    } else if (e.event === "session.end") {
      summary.end = e.time as string;
      summary.exitCode = e.exit_code as number;
      Object.assign(summary.lost, e.lost_events);
    }
  }
  for (const kind of EVENT_KINDS) summary.counts[kind] = files.count(KIND_EVENT[kind]);
  summary.warnings = files.warnings.length;
  return summary;
}
