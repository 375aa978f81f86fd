/** `esr ls`: one summary per recorded session, newest first. */
import { listSessionIds, SessionFiles } from "./file/session-files.ts";
import { KINDS, noLoss, type LostCounts } from "../events/kinds/index.ts";

export interface SessionSummary {
  sid: string;
  start?: string;
  end?: string;
  login?: string;
  user?: string;
  host?: string;
  command: string[];
  /** events recorded, per kind */
  counts: LostCounts;
  lost: LostCounts;
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
    counts: noLoss(),
    lost: noLoss(),
    warnings: 0,
  };
  for (const e of events) {
    if (e.event === "session.start") {
      summary.start = e.time;
      summary.login = e.login;
      summary.user = e.user;
      summary.host = e.server_hostname;
      summary.command = e.initial_command ?? [];
    } else if (e.event === "session.end") {
      summary.end = e.time;
      summary.exitCode = e.exit_code;
      Object.assign(summary.lost, e.lost_events);
    }
  }
  for (const kind of KINDS) summary.counts[kind.name] = files.count(kind.event);
  summary.warnings = files.warnings.length;
  return summary;
}
