/** What the server that builds a session's view and the page that draws it share: codes and shapes. */
import type { SessionSummary } from "../lib/store/session-summary.ts";

export const KIND = { session: 0, command: 1, network: 2, disk: 3 } as const;

export const FLAG = { unseen: 1, truncated: 2, failed: 4, lost: 8 } as const;

/**
 * How far terminal output's time may trail the kernel's: exec times are stamped in the kernel,
 * output times when the recorder read the bytes off the pty, which can be tens of milliseconds
 * after the shell wrote them (seen: an echoed command line stamped 20 ms after its exec). The
 * screen at an instant therefore shows the output read up to this long after it.
 */
export const OUTPUT_LAG_MS = 50;

/** A session's facts at the top of its page. */
export interface SessionMeta {
  sid: string;
  start?: string;
  end?: string;
  host?: string;
  login?: string;
  user?: string;
  command: string[];
  size?: string;
  exitCode?: number;
  lost: Record<string, number>;
  durationMs: number;
  terminal: boolean;
  unseen: number;
  truncated: number;
  warnings: string[];
}

/**
 * A row of the sessions list: the store's summary of the session, with the marks of its view and
 * `esr verify`'s verdict: its word, its line, and whether it trusted the fleet store's own key.
 */
export type SessionRow = SessionSummary &
  Pick<SessionMeta, "unseen" | "truncated"> & { verify?: string; verifyDetail?: string; verifyStoredKey?: boolean };
