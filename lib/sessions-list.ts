/** `esr ls`: one summary per recorded session, newest first. */
import { readRecording, listSessionIds } from "./recording.ts";

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

function summarize(dataDir: string, sid: string): SessionSummary {
  const { events, warnings } = readRecording(dataDir, sid);
  const summary: SessionSummary = {
    sid,
    command: [],
    counts: { command: 0, disk: 0, network: 0 },
    lost: { command: 0, disk: 0, network: 0 },
    warnings: warnings.length,
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
    } else if (e.event === "session.command") summary.counts.command++;
    else if (e.event === "session.disk") summary.counts.disk++;
    else if (e.event === "session.network") summary.counts.network++;
  }
  return summary;
}
