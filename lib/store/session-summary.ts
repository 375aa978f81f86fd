/**
 * What `esr ls` and the web UI's sessions list show of a session, wherever it is stored. Free of
 * Node modules: the web page's code shares the shape.
 */
import { KINDS, noLoss, type LostCounts } from "../events/kinds/index.ts";
import type { AuditEvent } from "../events/audit-events.ts";
import { isStoredEvent } from "./stored-event.ts";

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
  /** left out as configured (esr.disk_filter): not lost, never added to it */
  filtered: LostCounts;
  exitCode?: number;
  warnings: number;
}

/** A summary from a session's start and end events and its event counts by kind, wherever they are stored. */
export function summaryOf(
  sid: string,
  sessionEvents: AuditEvent[],
  counts: Partial<LostCounts>,
  warnings: number,
): SessionSummary {
  const summary: SessionSummary = {
    sid,
    command: [],
    counts: { ...noLoss(), ...counts },
    lost: noLoss(),
    filtered: noLoss(),
    warnings,
  };
  for (const e of sessionEvents) {
    if (!isStoredEvent(e)) continue;
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
      Object.assign(summary.filtered, e.filtered_events);
    }
  }
  return summary;
}
