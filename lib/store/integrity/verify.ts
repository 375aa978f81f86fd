/**
 * `esr verify`: a session's stored items against its hash chain, its checkpoints against the host
 * key's journal (README "Tamper-evident recordings"). The items are read through SessionFiles, as
 * every reader reads them; the verdict says how far the recording is proven and where it stops.
 */
import { listSessionIds, SessionFiles } from "../file/session-files.ts";
import { AuditLog } from "../file/audit-log.ts";
import { CHUNKS_TYPE } from "../file/session-writer.ts";
import { EsrError } from "../../errors.ts";
import {
  CHAIN_FORMAT,
  CHAIN_FORMAT_1,
  ChainHasher,
  checkpointMessage,
  runLength,
  type ChainFormat,
  type ChainRecord,
  type Checkpoint,
} from "./chain.ts";
import { signatureValid, trustedJournal, type JournalEntry, type TrustedJournal } from "./host-key.ts";

/** "error": the store could not be read to verify (only in the readers' lists, lib/store/verdicts.ts). */
export type VerdictStatus = "whole" | "broken" | "unsealed" | "wrong-key" | "missing" | "unchained" | "error";

export interface Verdict {
  sid: string;
  status: VerdictStatus;
  /** Items proven: chained and covered by a valid signed checkpoint. */
  verified: number;
  /** What was found, in one line. */
  detail: string;
  /** Checked against the key the fleet store itself holds (no --key): its detail says so. */
  storedKey?: boolean;
}

/** The host journal, checked once for all the sessions of a data dir. */
export interface HostTrust {
  host: string;
  journal?: TrustedJournal;
  /** Set when the key a verifier was given is not the host's, or there is no key to check against. */
  wrongKey?: string;
  /** Journal entries naming each session's start and seal: one of each, unless someone re-signed. */
  starts: Map<string, JournalEntry[]>;
  seals: Map<string, JournalEntry[]>;
}

export function hostTrust(dataDir: string, rootKeys?: string[]): HostTrust {
  const { serverId: host } = AuditLog.read(dataDir);
  return trustOf(host, () => trustedJournal(dataDir, host, rootKeys));
}

/** A host's trust from its journal, wherever the journal is kept; `journal` throws EsrError when no key fits. */
export function trustOf(host: string, journal: () => TrustedJournal): HostTrust {
  const trust: HostTrust = { host, starts: new Map(), seals: new Map() };
  try {
    trust.journal = journal();
  } catch (err) {
    if (!(err instanceof EsrError)) throw err;
    trust.wrongKey = err.message;
    return trust;
  }
  for (const { entry } of trust.journal.epochs) {
    if (entry.sid === undefined) continue;
    const named = entry.reason === "start" ? trust.starts : entry.reason === "seal" ? trust.seals : undefined;
    named?.set(entry.sid, [...(named.get(entry.sid) ?? []), entry]);
  }
  return trust;
}

/** Verdicts for some sessions of a data dir, or for all of them and those its journal says are gone. */
export function verifyDataDir(dataDir: string, sids: string[] | "all", rootKeys?: string[]): Verdict[] {
  const trust = hostTrust(dataDir, rootKeys);
  const present = new Set(listSessionIds(dataDir).map((s) => s.sid));
  const wanted = sids === "all" ? [...present, ...[...trust.starts.keys()].filter((sid) => !present.has(sid))] : sids;
  return wanted.map((sid) => {
    const start = trust.starts.get(sid)?.[0];
    if (!present.has(sid) && start) return missingVerdict(sid, start);
    return verifySession(SessionFiles.open(dataDir, sid), trust);
  });
}

function missingVerdict(sid: string, start: JournalEntry): Verdict {
  return {
    sid,
    status: "missing",
    verified: 0,
    detail: `the host journal records session #${start.seq} started at ${start.since}; its files are gone`,
  };
}

interface StoredLine {
  bytes: Buffer;
  file: string;
  /** 1-based */
  line: number;
}

/** The items of a session's files, by stream and index, and each file's lines in order. */
class StoredItems {
  private readonly byKey = new Map<string, StoredLine>();
  /** Per file: the ei (or undefined, unreadable) of each line, and the next line the chain should read. */
  private readonly files = new Map<string, { eis: (number | undefined)[]; next: number }>();
  private readonly streamFiles = new Map<string, { path: string; damage?: string }[]>();
  private readonly chunks: Buffer;
  private chunkOffset = 0;
  private consumed = 0;
  readonly total: number;

  constructor(files: SessionFiles) {
    const chunkParts: Buffer[] = [];
    let total = 0;
    for (const file of files.storedFiles()) {
      this.streamFiles.set(file.type, [
        ...(this.streamFiles.get(file.type) ?? []),
        { path: file.path, damage: file.damage },
      ]);
      if (file.type === CHUNKS_TYPE) {
        chunkParts.push(file.bytes);
        continue;
      }
      const eis: (number | undefined)[] = [];
      let start = 0;
      for (let end = file.bytes.indexOf(10); end >= 0; start = end + 1, end = file.bytes.indexOf(10, start)) {
        const bytes = file.bytes.subarray(start, end + 1);
        const ei = eiOf(bytes);
        eis.push(ei);
        if (ei !== undefined && !this.byKey.has(`${file.type}\0${ei}`))
          this.byKey.set(`${file.type}\0${ei}`, { bytes, file: file.path, line: eis.length });
      }
      total += eis.length;
      this.files.set(file.path, { eis, next: 1 });
    }
    this.chunks = Buffer.concat(chunkParts);
    this.total = total;
  }

  /** The next item the chain names, or why it is not where the chain says. */
  take(stream: string, index: number, chunkLength?: number): { bytes: Buffer } | { problem: string } {
    if (chunkLength !== undefined) {
      if (this.chunkOffset + chunkLength > this.chunks.length)
        return { problem: `the terminal output ends at byte ${this.chunks.length}${this.damageOf(stream)}` };
      const bytes = this.chunks.subarray(this.chunkOffset, this.chunkOffset + chunkLength);
      this.chunkOffset += chunkLength;
      return { bytes };
    }
    const item = this.byKey.get(`${stream}\0${index}`);
    if (!item) return { problem: `not in ${this.pathsOf(stream)}${this.damageOf(stream, true)} (removed?)` };
    const file = this.files.get(item.file)!;
    if (item.line !== file.next) {
      const found = file.eis[file.next - 1];
      return {
        problem: `${item.file} line ${file.next} holds ${found === undefined ? "an unreadable line" : `ei ${found}`} where ei ${index} was recorded (it is at line ${item.line}: lines reordered or inserted)`,
      };
    }
    file.next++;
    this.consumed++;
    return { bytes: item.bytes };
  }

  /** Event lines and terminal bytes no chain record named: written after the last flush record, or added. */
  leftover(): { lines: number; bytes: number; first?: string } {
    let first: string | undefined;
    for (const [path, file] of this.files)
      if (file.next <= file.eis.length) {
        first ??= `${path} line ${file.next}`;
      }
    return { lines: this.total - this.consumed, bytes: this.chunks.length - this.chunkOffset, first };
  }

  private pathsOf(stream: string): string {
    const files = this.streamFiles.get(stream);
    return files ? files.map((f) => f.path).join(", ") : `any file (the index names no ${stream} file)`;
  }

  /** `named`: the message names the stream's files already, so a single one is not named twice. */
  private damageOf(stream: string, named = false): string {
    const files = this.streamFiles.get(stream) ?? [];
    const damaged = files.find((f) => f.damage);
    if (!damaged) return "";
    return named && files.length === 1 ? `: ${damaged.damage}` : `: ${damaged.path} ${damaged.damage}`;
  }
}

function eiOf(line: Buffer): number | undefined {
  try {
    const ei = JSON.parse(line.toString("utf8"))?.ei;
    return typeof ei === "number" ? ei : undefined;
  } catch {
    return undefined;
  }
}

/** The chain file's records; a last line cut short by a kill is not one, a damaged line stops the rest. */
function chainRecords(bytes: Buffer): { records: ChainRecord[]; damagedLine?: number } {
  const lines = bytes.toString("utf8").split("\n");
  lines.pop();
  const records: ChainRecord[] = [];
  for (const [i, line] of lines.entries()) {
    try {
      const record = JSON.parse(line);
      if (!isChainRecord(record)) throw new Error("not a chain record");
      records.push(record);
    } catch {
      return { records, damagedLine: i + 1 };
    }
  }
  return { records };
}

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** The shape the verifier relies on; anything else in a chain file is damage, not a crash. */
function isChainRecord(r: unknown): r is ChainRecord {
  if (typeof r !== "object" || r === null) return false;
  const x = r as Record<string, unknown>;
  if (!isCount(x.n) || typeof x.head !== "string") return false;
  if (x.type === "flush")
    return (
      Array.isArray(x.items) &&
      x.items.every(
        (run) =>
          Array.isArray(run) &&
          run.length === 3 &&
          typeof run[0] === "string" &&
          isCount(run[1]) &&
          (isCount(run[2]) || (Array.isArray(run[2]) && run[2].every(isCount))),
      )
    );
  return (
    x.type === "checkpoint" &&
    ["start", "interval", "end"].includes(x.kind as string) &&
    ["host", "sid", "time", "sig"].every((k) => typeof x[k] === "string") &&
    ["seq", "interval_ms", "epoch"].every((k) => isCount(x[k]))
  );
}

/** Everything a checkpoint must satisfy besides covering the chain head; undefined when it does. */
function checkpointProblem(c: Checkpoint, trust: HostTrust, sid: string): string | undefined {
  if (c.host !== trust.host || c.sid !== sid) return `belongs to session ${c.sid} of host ${c.host}`;
  const epoch = trust.journal?.epochs[c.epoch];
  if (!epoch)
    return `is signed in epoch ${c.epoch}, which the host journal does not certify${trust.journal?.broken ? ` (${trust.journal.broken})` : ""}`;
  if (!signatureValid(epoch.pub, checkpointMessage(c), c.sig)) return `has a bad signature for epoch ${c.epoch}'s key`;
  const t = Date.parse(c.time);
  if (!(t >= Date.parse(epoch.since)) || (epoch.until !== undefined && t > Date.parse(epoch.until)))
    return `claims ${c.time}, outside epoch ${c.epoch} (${epoch.since} to ${epoch.until ?? "now"}): signed with a later key`;
  return undefined;
}

/** A journal entry opened the epoch after the one that signed this checkpoint, naming its position. */
function journalMatches(entry: JournalEntry, c: Checkpoint): boolean {
  return entry.epoch === c.epoch + 1 && entry.n === c.n && entry.head === c.head && entry.seq === c.seq;
}

/** Checkpoints further apart than this are a gap someone filled in with a later key. */
function gapLimitMs(intervalMs: number): number {
  return 3 * intervalMs + 10_000;
}

export function verifySession(files: SessionFiles, trust: HostTrust): Verdict {
  const verdict = verifyChain(files, trust, CHAIN_FORMAT);
  if (verdict.status !== "broken" || verdict.verified > 0) return verdict;
  // Nothing matched from the first head on: a session an earlier esr chained in the first format?
  const legacy = verifyChain(files, trust, CHAIN_FORMAT_1);
  return legacy.status !== "broken" || legacy.verified > 0 ? legacy : verdict;
}

function verifyChain(files: SessionFiles, trust: HostTrust, format: ChainFormat): Verdict {
  const sid = files.sid;
  const journalStarts = trust.starts.get(sid) ?? [];
  const journalSeals = trust.seals.get(sid) ?? [];
  const chain = files.chain();
  if (!chain) {
    if (journalStarts.length)
      return {
        sid,
        status: "broken",
        verified: 0,
        detail: `its chain file is gone (the host journal records its start)`,
      };
    return { sid, status: "unchained", verified: 0, detail: "recorded without a hash chain" };
  }
  if (trust.wrongKey) return { sid, status: "wrong-key", verified: 0, detail: trust.wrongKey };
  const { records, damagedLine } = chainRecords(chain.bytes);
  const items = new StoredItems(files);
  const hasher = new ChainHasher(trust.host, sid, format);
  let verified = 0;
  let start: Checkpoint | undefined;
  let last: Checkpoint | undefined;
  let seal: Checkpoint | undefined;
  const broken = (what: string): Verdict => ({
    sid,
    status: "broken",
    verified,
    detail: `verified up to item ${verified}; ${what}`,
  });

  for (const record of records) {
    if (seal) return broken(`${chain.path} goes on after the seal`);
    if (record.type === "flush") {
      const from = hasher.count;
      let taken = 0;
      for (const run of record.items) {
        const [stream, first, lengths] = run;
        // The hashed items start with their stream and index: only plain ones keep them unambiguous.
        if (typeof stream !== "string" || stream.includes("\0") || !Number.isSafeInteger(first) || first < 0)
          return broken(`${chain.path} names items as ${JSON.stringify([stream, first])}, which no recorder writes`);
        for (let i = 0; i < runLength(run); i++) {
          const index = first + i;
          const item = items.take(stream, index, Array.isArray(lengths) ? lengths[i] : undefined);
          const name = stream === CHUNKS_TYPE ? `chunk ${index}` : `${stream} ei ${index}`;
          if ("problem" in item) return broken(`item ${from + taken} (${name}) ${item.problem}`);
          hasher.add(stream, item.bytes, index);
          taken++;
        }
      }
      hasher.link(record.items);
      if (hasher.count !== record.n || hasher.headHex() !== record.head)
        return broken(`items ${from}–${hasher.count - 1} are not what was recorded (changed in place)`);
      continue;
    }
    const c = record;
    const problem = checkpointProblem(c, trust, sid);
    if (problem) return broken(`the ${c.kind} checkpoint at item ${c.n} ${problem}`);
    if (c.n !== hasher.count || c.head !== hasher.headHex())
      return broken(`the ${c.kind} checkpoint at item ${c.n} does not match the chain (at item ${hasher.count})`);
    if ((c.kind === "start") !== (start === undefined))
      return broken(`a ${c.kind} checkpoint where ${start ? "an interval or end" : "the start"} checkpoint belongs`);
    if (c.kind === "start") {
      if (journalStarts.length > 1)
        return broken(`started ${journalStarts.length} times in the host journal (re-signed with a later key)`);
      if (!journalStarts[0] || !journalMatches(journalStarts[0], c))
        return broken(`the start checkpoint is not the one the host journal records (forged)`);
      start = c;
    } else if (c.seq !== start!.seq)
      return broken(`the ${c.kind} checkpoint at item ${c.n} has another session's number`);
    if (last && Date.parse(c.time) - Date.parse(last.time) > gapLimitMs(start!.interval_ms))
      return broken(`no checkpoint from ${last.time} to ${c.time} (one was due every ${start!.interval_ms / 1000} s)`);
    if (c.kind === "end") {
      if (journalSeals.length > 1)
        return broken(`sealed ${journalSeals.length} times in the host journal (re-sealed with a later key)`);
      if (!journalSeals[0] || !journalMatches(journalSeals[0], c))
        return broken(`the seal is not the one the host journal records (re-sealed or forged)`);
      seal = c;
    }
    last = c;
    verified = c.n;
  }
  if (damagedLine !== undefined) return broken(`${chain.path} line ${damagedLine} is damaged`);
  const leftover = items.leftover();
  if (seal) {
    if (leftover.lines || leftover.bytes)
      return broken(
        `${leftover.lines} event lines and ${leftover.bytes} output bytes after the seal${leftover.first ? ` (${leftover.first})` : ""}`,
      );
    return {
      sid,
      status: "whole",
      verified,
      detail: `${verified} items, sealed ${seal.time} (session #${seal.seq}, epoch ${seal.epoch})`,
    };
  }
  if (journalSeals[0])
    return broken(
      `the host journal records its seal at item ${journalSeals[0].n}; its files stop at item ${hasher.count} (truncated)`,
    );
  if (!start)
    return {
      sid,
      status: "unsealed",
      verified: 0,
      detail: "no signed checkpoint: the recorder stopped before its first",
    };
  const unsigned = hasher.count - verified + leftover.lines + (leftover.bytes ? 1 : 0);
  return {
    sid,
    status: "unsealed",
    verified,
    detail: `verified up to item ${verified} (last checkpoint ${last!.time}); ${unsigned} items after it unsigned: the recorder stopped without sealing`,
  };
}
