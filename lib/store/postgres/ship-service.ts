/**
 * `esr ship`: the one process per host that ships the data dir to every configured PostgreSQL
 * target. A service of its own rather than part of the recorders: `esr record` and `esr daemon`
 * both write the spool, neither outlives the other, and a slow or unreachable database must never
 * hold up a recording (a recorder only writes local files).
 *
 * Batch-and-disconnect: a target's connection is opened when there is something to ship and closed
 * once the spool is shipped, so a fleet of hosts that ship every few seconds holds few server
 * connections at any moment (hosts × time to ship a batch ÷ interval).
 */
import type { SQL } from "bun";
import { errorMessage } from "../../errors.ts";
import { connect, storeError } from "./connection.ts";
import { Shipper, type ShipTarget } from "./shipper.ts";
import { isPostgresUri, maskPassword, parsePgUri } from "./uri.ts";

/** The PostgreSQL targets of a configuration: each events URI, and the sessions URI for recordings. */
export function shipTargets(storage: { auditEventsUris: string[]; auditSessionsUri?: string }): ShipTarget[] {
  const eventUris = storage.auditEventsUris.filter(isPostgresUri);
  const sessionsUri = storage.auditSessionsUri ?? eventUris[0];
  const targets = eventUris.map((uri) => ({ uri, events: true, recordings: uri === sessionsUri }));
  if (sessionsUri && isPostgresUri(sessionsUri) && !eventUris.includes(sessionsUri))
    targets.push({ uri: sessionsUri, events: false, recordings: true });
  // Every URI is checked before anything runs: a typo is one clear line at start, not a retry loop.
  for (const t of targets) parsePgUri(t.uri);
  return targets;
}

export interface ShipOptions {
  dataDir: string;
  targets: ShipTarget[];
  /** How often the spool is checked for new events. */
  intervalMs: number;
  /** Ship what is there and return, instead of running until stopped. */
  once?: boolean;
  log(line: string): void;
  /** Resolves when the service should stop (after the batch in flight). */
  stopped?: Promise<void>;
}

/** Longest wait between attempts while a target fails. */
const MAX_BACKOFF_MS = 15_000;

/** Runs until stopped (or, with `once`, until every target is shipped or has failed once); false when a target failed. */
export async function runShipping(opts: ShipOptions): Promise<boolean> {
  let stop = false;
  void opts.stopped?.then(() => (stop = true));
  const results = await Promise.all(
    opts.targets.map(async (target) => {
      const shipper = new Shipper(opts.dataDir, target, (line) => opts.log(`${maskPassword(target.uri)}: ${line}`));
      let waitMs = opts.intervalMs;
      let failing = false;
      for (;;) {
        const ok = await shipOnce(shipper, opts.log);
        if (ok && failing) opts.log(`${maskPassword(target.uri)}: shipping again`);
        failing = !ok;
        if (opts.once || stop) return ok;
        waitMs = ok ? opts.intervalMs : Math.min(MAX_BACKOFF_MS, waitMs * 2);
        await Promise.race([Bun.sleep(waitMs), opts.stopped]);
        if (stop) return ok;
      }
    }),
  );
  return results.every(Boolean);
}

async function shipOnce(shipper: Shipper, log: (line: string) => void): Promise<boolean> {
  const uri = maskPassword(shipper.target.uri);
  let sql: SQL | undefined;
  try {
    if (shipper.backlog().bytes === 0) return true;
    sql = connect(shipper.target.uri);
    const shipped = await shipper.shipAll(sql);
    if (shipped.events || shipped.recordings)
      log(`${uri}: shipped ${shipped.events} events, ${shipped.recordings} recordings`);
    return true;
  } catch (err) {
    const message = storeError(uri, "shipping", err).message;
    if (shipper.cursor.lastError !== message) log(`${message}; will retry, nothing is lost (the data dir keeps it)`);
    shipper.recordError(message);
    return false;
  } finally {
    await sql?.close().catch((err: unknown) => log(`${uri}: closing: ${errorMessage(err)}`));
  }
}
