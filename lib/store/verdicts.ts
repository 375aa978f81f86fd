/**
 * What readers show of `esr verify` unasked (ls, replay, play, the web list), for either store:
 * the same verdicts verify prints, computed once per listing.
 */
import { SessionFiles } from "./file/session-files.ts";
import { FileEventSource } from "./file/file-store.ts";
import { hostTrust, verifySession, type Verdict } from "./integrity/verify.ts";
import { PostgresEventSource } from "./postgres/source.ts";
import { STORED_KEY_NOTE, verifyStore } from "./postgres/verify-store.ts";
import type { EventSource } from "./store.ts";

/**
 * One verdict per sid. A data dir's host journal is checked once for all of them (its signatures
 * grow with every session); the fleet store's sessions as `esr verify --from` checks them, each
 * host's journal read once, a session the database fails for shown as "error" and the others
 * verified still.
 */
export async function shownVerdicts(source: EventSource, sids: string[]): Promise<(Verdict | undefined)[]> {
  if (sids.length === 0) return [];
  if (source instanceof FileEventSource) {
    const trust = hostTrust(source.dataDir);
    return sids.map((sid) => verifySession(SessionFiles.open(source.dataDir, sid), trust));
  }
  if (source instanceof PostgresEventSource) return verifyStore(source, sids, undefined, { keepGoing: true });
  return sids.map(() => undefined);
}

/** A list's word for a verdict; `*` when it trusted the store's own key (verdictFootnote says so). */
export function verdictWord(verdict: Verdict | undefined): string {
  return verdict ? `${verdict.status}${verdict.storedKey ? "*" : ""}` : "-";
}

/** What the `*` of verdictWord means, when a list has one. */
export function verdictFootnote(verdicts: (Verdict | undefined)[]): string | undefined {
  return verdicts.some((v) => v?.storedKey) ? `* esr verify --from: ${STORED_KEY_NOTE}` : undefined;
}
