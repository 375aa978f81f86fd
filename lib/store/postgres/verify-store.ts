/**
 * `esr verify --from postgresql://…`: the fleet store's copy of each session checked as the host's
 * files are (lib/store/integrity/verify.ts, over the stored files), then its rows of the events
 * table against the verified recording, then each host's sequence of sessions against its shipped
 * journal (README "Tamper-evident recordings").
 */
import { EsrError, errorMessage } from "../../errors.ts";
import { SessionFiles, type FileShelf } from "../file/session-files.ts";
import { CHUNKS_TYPE, indexFileName, loggedEvent } from "../file/session-writer.ts";
import { journalTrust, parsePublicKey, publicKeyText, type JournalEntry } from "../integrity/host-key.ts";
import { trustOf, verifySession, type HostTrust, type Verdict } from "../integrity/verify.ts";
import { UnknownSession } from "../store.ts";
import { shippedRow } from "./shipper.ts";
import type { EventRow, PostgresEventSource } from "./source.ts";

/** Row differences named in a verdict's line; the rest are counted. */
const NAMED_PROBLEMS = 3;

/** What a verdict checked without --key adds: a database administrator could have replaced the key with the rest. */
export const STORED_KEY_NOTE =
  "checked against the key stored in the database (pass --key with the host's own key for a real check)";

/**
 * Verdicts for some sessions of the store, or for all of them and those the hosts' journals say are
 * missing. Each host's stored journal must chain to one of `rootKeys`; without them it is trusted
 * from its own first line, as stored: a database administrator could replace it whole, and every
 * line says so. With `keepGoing` (the readers' lists), a session that cannot be verified (the
 * database failing) gets an "error" verdict and the others go on; `esr verify` stops at the first.
 */
export async function verifyStore(
  source: PostgresEventSource,
  sids: string[] | "all",
  rootKeys?: string[],
  { keepGoing = false } = {},
): Promise<Verdict[]> {
  const trusts = new Map<string, HostTrust>();
  const trustFor = async (host: string): Promise<HostTrust> => {
    const known = trusts.get(host);
    if (known) return known;
    const { lines, where } = await source.journal(host);
    const trust = trustOf(host, () => {
      if (lines.length === 0) throw new EsrError(`the store holds no journal of host ${host}`);
      const roots = rootKeys ?? [storedRootKey(lines[0]!)].filter((k) => k !== undefined);
      if (roots.length === 0) throw new EsrError(`${where(1)} names no root key`);
      return journalTrust(lines, host, roots, where);
    });
    trusts.set(host, trust);
    return trust;
  };
  let stored: { sid: string; serverId: string }[];
  try {
    stored = await source.storedSessions();
  } catch (err) {
    if (!keepGoing || sids === "all") throw err;
    return sids.map((sid) => errorVerdict(sid, err));
  }
  const hostOf = new Map(stored.map((s) => [s.sid, s.serverId]));
  const verdicts: { verdict: Verdict; host: string; seq: number }[] = [];
  const add = (verdict: Verdict, trust: HostTrust) =>
    verdicts.push({ verdict, host: trust.host, seq: trust.starts.get(verdict.sid)?.[0]?.seq ?? Infinity });
  const guarded = async (sid: string, check: () => Promise<void>) => {
    try {
      await check();
    } catch (err) {
      if (!keepGoing) throw err;
      verdicts.push({ verdict: errorVerdict(sid, err), host: "", seq: Infinity });
    }
  };

  if (sids === "all") {
    for (const { sid, serverId } of stored) {
      const trust = await trustFor(serverId);
      add(await verifyStored(source, sid, trust), trust);
    }
    for (const host of new Set([...stored.map((s) => s.serverId), ...(await source.journalHosts())])) {
      const trust = await trustFor(host);
      for (const [sid, [start]] of trust.starts)
        if (!hostOf.has(sid)) add(await missingVerdict(source, sid, start!, trust), trust);
    }
  } else {
    let hosts: string[] | undefined;
    for (const sid of sids)
      await guarded(sid, async () => {
        const host = hostOf.get(sid);
        if (host !== undefined) {
          const trust = await trustFor(host);
          add(await verifyStored(source, sid, trust), trust);
          return;
        }
        hosts ??= await source.journalHosts();
        const trust = (await Promise.all(hosts.map(trustFor))).find((t) => t.starts.has(sid));
        if (trust) add(await missingVerdict(source, sid, trust.starts.get(sid)![0]!, trust), trust);
        else if ((await source.eventCount(sid)) > 0)
          verdicts.push({
            verdict: {
              sid,
              status: "missing",
              verified: 0,
              detail: "its events are in the store, its recording is not, and no stored host journal names it",
            },
            host: "",
            seq: Infinity,
          });
        else throw new UnknownSession(sid, source.location);
      });
  }
  if (sids === "all") verdicts.sort((a, b) => a.host.localeCompare(b.host) || a.seq - b.seq);
  return verdicts.map(({ verdict }) =>
    rootKeys || verdict.status === "error"
      ? verdict
      : { ...verdict, detail: `${verdict.detail}; ${STORED_KEY_NOTE}`, storedKey: true },
  );
}

/** A session the store could not be read for: what failed, instead of a verdict. */
function errorVerdict(sid: string, err: unknown): Verdict {
  return { sid, status: "error", verified: 0, detail: `cannot verify: ${errorMessage(err)}` };
}

/** The root key a stored journal names in its first line (epoch 0 certifies itself). */
function storedRootKey(line: string): string | undefined {
  try {
    const pub = JSON.parse(line)?.pub;
    return typeof pub === "string" ? parsePublicKey(publicKeyText(pub)) : undefined;
  } catch {
    return undefined;
  }
}

async function verifyStored(source: PostgresEventSource, sid: string, trust: HostTrust): Promise<Verdict> {
  const stored = await source.recordingFiles(sid);
  if (!stored) return { sid, status: "missing", verified: 0, detail: "its recording left the store while verifying" };
  let files: SessionFiles;
  try {
    files = new SessionFiles(sid, stored.shelf);
  } catch (err) {
    return brokenIndex(sid, stored.shelf, err);
  }
  const verdict = verifySession(files, trust);
  if (verdict.status !== "whole") return verdict;
  const rows = await source.eventRows(sid);
  const problems = rowProblems(files, rows);
  if (problems.length === 0) return { ...verdict, detail: `${verdict.detail}; its ${rows.length} event rows match` };
  const more = problems.length > NAMED_PROBLEMS ? `; ${problems.length - NAMED_PROBLEMS} more` : "";
  return {
    sid,
    status: "broken",
    verified: verdict.verified,
    detail: `the recording verifies whole (${verdict.verified} items), the events table does not: ${problems.slice(0, NAMED_PROBLEMS).join("; ")}${more}`,
  };
}

function brokenIndex(sid: string, shelf: FileShelf, err: unknown): Verdict {
  return {
    sid,
    status: "broken",
    verified: 0,
    detail: `${shelf.describe(indexFileName(sid))}: ${errorMessage(err)} (the other files of the recording are stored)`,
  };
}

/** A session the host journal names, whose recording the store does not hold. */
async function missingVerdict(
  source: PostgresEventSource,
  sid: string,
  start: JournalEntry,
  trust: HostTrust,
): Promise<Verdict> {
  const seal = trust.seals.get(sid)?.[0];
  const rows = await source.eventCount(sid);
  const why = seal
    ? `the host journal records its start at ${start.since} and its seal at ${seal.since}`
    : `the host journal records its start at ${start.since}, no seal: still running, or its recorder died`;
  return {
    sid,
    status: "missing",
    verified: 0,
    detail: `session seq ${start.seq} of host ${trust.host} missing from the store (${why}; ${rows} of its event rows are stored)`,
  };
}

interface Expected {
  ei: number;
  type: string;
  time: string;
  data: unknown;
}

/**
 * How the session's rows of the events table differ from what its verified files hold: each
 * recorded event that reaches events.log must be there once, as shipped, and nothing else.
 */
function rowProblems(files: SessionFiles, rows: EventRow[]): string[] {
  const expected = new Map<string, Expected>();
  for (const file of files.storedFiles()) {
    if (file.type === CHUNKS_TYPE) continue;
    for (const line of file.bytes.toString("utf8").split("\n")) {
      const row = line ? shippedRow(line) : undefined;
      if (!row || typeof row === "string" || !loggedEvent(row.type)) continue;
      const data = JSON.parse(row.data);
      expected.set(row.uid, { ei: data.ei, type: row.type, time: row.time, data });
    }
  }
  const byId = new Map<string, EventRow[]>();
  for (const row of rows) byId.set(row.id, [...(byId.get(row.id) ?? []), row]);
  const problems: string[] = [];
  for (const [uid, e] of [...expected].sort(([, a], [, b]) => a.ei - b.ei)) {
    const [row, ...extra] = byId.get(uid) ?? [];
    const name = `ei ${e.ei} (${e.type})`;
    if (!row) problems.push(`the row of ${name} is deleted`);
    else {
      const changed = rowChanges(row, e);
      if (changed) problems.push(`the row of ${name} is changed: ${changed}`);
      if (extra.length) problems.push(`the row of ${name} is there ${extra.length + 1} times`);
    }
  }
  for (const row of rows)
    if (!expected.has(row.id)) {
      const ei = (row.data as { ei?: unknown } | null)?.ei;
      problems.push(
        `a row the recording does not hold is added: event_id ${row.id} (${row.type}${typeof ei === "number" ? `, ei ${ei}` : ""})`,
      );
    }
  return problems;
}

/** What differs between a row and the event it was shipped from, field by field; undefined when nothing. */
function rowChanges(row: EventRow, e: Expected): string | undefined {
  const changes: string[] = [];
  if (row.type !== e.type) changes.push(`event_type ${show(row.type)}, recorded ${show(e.type)}`);
  if (new Date(row.time).getTime() !== Date.parse(e.time))
    changes.push(`event_time ${new Date(row.time).toISOString()}, recorded ${e.time}`);
  const stored = row.data;
  if (typeof stored !== "object" || stored === null || Array.isArray(stored))
    changes.push(`event_data is ${show(stored)}, not the recorded event`);
  else {
    const recorded = e.data as Record<string, unknown>;
    for (const key of new Set([...Object.keys(recorded), ...Object.keys(stored)])) {
      const value = (stored as Record<string, unknown>)[key];
      if (!Bun.deepEquals(value, recorded[key]))
        changes.push(`${key} is ${show(value)}, recorded ${show(recorded[key])}`);
    }
  }
  return changes.length ? changes.join(", ") : undefined;
}

/** A value, short enough for one line. */
function show(value: unknown): string {
  const text = value === undefined ? "absent" : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}
