/**
 * The hash chain of one session, written as it is recorded (README "Tamper-evident recordings").
 *
 * Every event line and every chunk of terminal output is bound into the head of the flush that
 * names it (its link): head_f = SHA-256(head_{f-1} ‖ items_f ‖ 0 ‖ for each stream of items_f, in
 * the order it first appears there: stream ‖ 0 ‖ SHA-256(the bytes the stream stored since the
 * last flush)), where items_f is the JSON of the flush record's `items` (which items, in which
 * order: the data files alone do not keep it); head_0 = SHA-256(format ‖ 0 ‖ host ‖ 0 ‖ sid). The
 * stream digests cover exactly the bytes each file was given, hashed as they are written, so the
 * chain costs a SHA-256 pass over the data and nothing per item (a digest per item, the first
 * format, cost more than the rest of writing an event). items_f splits those bytes into items
 * without ambiguity: an event is one line (a stored line holds no other newline), a chunk has its
 * length listed. A verifier can only tell flushes apart anyway: it recomputes each link. At each
 * flush, after the data files, `<sid>.chain` gets a line with items_f and the head; at the
 * start, every `checkpointIntervalMs` or `checkpointEvents` items, and at the end, a checkpoint
 * signed with the host key. The end checkpoint seals the session.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { HostKey, Signed } from "./host-key.ts";
import { chainFileName, type StoredItemChain } from "../file/session-writer.ts";
import { writeAll } from "../file/gzip-members.ts";

export const CHAIN_FORMAT = "esr-chain-2";
/**
 * The first format, which esr wrote before 2026-12-03 and verify still reads: a link per item,
 * head_i = SHA-256(head_{i-1} ‖ stream ‖ 0 ‖ index ‖ 0 ‖ stored bytes). Its head_0 names it, so a
 * session's format is the one whose chain its records match.
 */
export const CHAIN_FORMAT_1 = "esr-chain-1";
export type ChainFormat = typeof CHAIN_FORMAT | typeof CHAIN_FORMAT_1;
const CHECKPOINT_FORMAT = "esr-checkpoint-1";

/**
 * Items in recording order, as runs: `[stream, first index, count]` for events (their `ei`),
 * `[stream, first index, [byte length…]]` for terminal chunks (numbered from 0).
 */
export type ItemRun = [string, number, number | number[]];

export interface FlushRecord {
  type: "flush";
  /** Items chained so far. */
  n: number;
  head: string;
  items: ItemRun[];
}

export type CheckpointKind = "start" | "interval" | "end";

export interface Checkpoint {
  type: "checkpoint";
  kind: CheckpointKind;
  host: string;
  sid: string;
  /** The session's number among the host's sessions (the host key counts them). */
  seq: number;
  n: number;
  head: string;
  /** How often the recorder promised interval checkpoints. */
  interval_ms: number;
  epoch: number;
  time: string;
  sig: string;
}

export type ChainRecord = FlushRecord | Checkpoint;

/** What a checkpoint's signature covers: every field but the signature, in a fixed order. */
export function checkpointMessage(c: Omit<Checkpoint, "type" | "sig">): Buffer {
  return Buffer.from(
    JSON.stringify([CHECKPOINT_FORMAT, c.kind, c.host, c.sid, c.seq, c.n, c.head, c.interval_ms, c.epoch, c.time]),
  );
}

/** The running head, shared by the recorder and the verifier. */
export class ChainHasher {
  /** Per stream, the bytes it stored in the open link. */
  private readonly streams = new Map<string, Bun.CryptoHasher>();
  /** digest() into a buffer wants room for the largest digest. */
  private readonly digest = new Uint8Array(64);
  private readonly current = new Uint8Array(32);
  count = 0;

  constructor(
    host: string,
    sid: string,
    private readonly format: ChainFormat = CHAIN_FORMAT,
  ) {
    const hasher = new Bun.CryptoHasher("sha256");
    hasher.update(`${format}\0${host}\0${sid}`);
    this.setHead(hasher);
  }

  /** Bytes a stream stored, in the order stored; any piece at a time (the first format: one whole item, its index). */
  add(stream: string, bytes: Uint8Array, index = 0) {
    if (this.format === CHAIN_FORMAT_1) {
      const item = new Bun.CryptoHasher("sha256");
      item.update(this.current);
      item.update(`${stream}\0${index}\0`);
      item.update(bytes);
      return this.setHead(item);
    }
    let hasher = this.streams.get(stream);
    if (!hasher) this.streams.set(stream, (hasher = new Bun.CryptoHasher("sha256")));
    hasher.update(bytes);
  }

  /** Closes the open link: `items` name what the bytes added since the last link hold. */
  link(items: ItemRun[]) {
    if (this.format === CHAIN_FORMAT_1) {
      for (const run of items) this.count += runLength(run);
      return;
    }
    const link = new Bun.CryptoHasher("sha256");
    link.update(this.current);
    link.update(JSON.stringify(items));
    link.update("\0");
    const seen = new Set<string>();
    for (const [stream] of items) {
      if (seen.has(stream)) continue;
      seen.add(stream);
      link.update(`${stream}\0`);
      // A stream named but given no bytes (empty chunks) is the digest of nothing.
      const hasher = this.streams.get(stream) ?? new Bun.CryptoHasher("sha256");
      hasher.digest(this.digest);
      link.update(this.digest.subarray(0, 32));
    }
    this.streams.clear();
    for (const run of items) this.count += runLength(run);
    this.setHead(link);
  }

  headHex(): string {
    return Buffer.from(this.current).toString("hex");
  }

  private setHead(hasher: Bun.CryptoHasher) {
    hasher.digest(this.digest);
    this.current.set(this.digest.subarray(0, 32));
  }
}

/** How often to sign (the config's `esr.integrity`). */
export interface CheckpointPolicy {
  checkpointIntervalMs: number;
  checkpointEvents: number;
}

/** The chain a session writer feeds: hashes what the files store, writes and signs on flushes. */
export class SessionChain implements StoredItemChain {
  private readonly hasher: ChainHasher;
  private readonly fd: number;
  private runs: ItemRun[] = [];
  private seq?: number;
  private lastCheckpoint = { at: 0, n: 0 };
  private sealed = false;

  constructor(
    private readonly key: HostKey,
    private readonly sid: string,
    sessionsDir: string,
    private readonly config: CheckpointPolicy,
  ) {
    this.hasher = new ChainHasher(key.host, sid);
    this.fd = openSync(join(sessionsDir, chainFileName(sid)), "a", 0o600);
  }

  item(stream: string, index: number, chunkLength?: number) {
    const run = this.lastRun(stream, index);
    if (chunkLength !== undefined) {
      if (run) (run[2] as number[]).push(chunkLength);
      else this.runs.push([stream, index, [chunkLength]]);
    } else if (run) (run[2] as number)++;
    else this.runs.push([stream, index, 1]);
  }

  stored(stream: string, bytes: Uint8Array) {
    this.hasher.add(stream, bytes);
  }

  /** The run the item at `index` of `stream` continues, if it continues one. */
  private lastRun(stream: string, index: number): ItemRun | undefined {
    const run = this.runs[this.runs.length - 1];
    return run && run[0] === stream && run[1] + runLength(run) === index ? run : undefined;
  }

  /** Called once the data files are flushed: the chain never names an item that is not on disk. */
  flush() {
    let text = "";
    if (this.runs.length) {
      this.hasher.link(this.runs);
      const record: FlushRecord = {
        type: "flush",
        n: this.hasher.count,
        head: this.hasher.headHex(),
        items: this.runs,
      };
      text += `${JSON.stringify(record)}\n`;
      this.runs = [];
    }
    const now = Date.now();
    if (this.seq === undefined) text += this.checkpoint("start");
    else if (
      now - this.lastCheckpoint.at >= this.config.checkpointIntervalMs ||
      this.hasher.count - this.lastCheckpoint.n >= this.config.checkpointEvents
    )
      text += this.checkpoint("interval");
    if (text) writeAll(this.fd, Buffer.from(text));
  }

  /** Flushes and seals: the end checkpoint, after which nothing belongs to the session. */
  close() {
    if (this.sealed) return;
    this.sealed = true;
    try {
      this.flush();
      writeAll(this.fd, Buffer.from(this.checkpoint("end")));
    } finally {
      closeSync(this.fd);
    }
  }

  private checkpoint(kind: CheckpointKind): string {
    const n = this.hasher.count;
    const head = this.hasher.headHex();
    const unsigned = {
      kind,
      host: this.key.host,
      sid: this.sid,
      n,
      head,
      interval_ms: this.config.checkpointIntervalMs,
    };
    const journal =
      kind === "interval"
        ? undefined
        : ({ reason: kind === "start" ? "start" : "seal", sid: this.sid, n, head } as const);
    const signed: Signed = this.key.sign((s) => checkpointMessage({ ...unsigned, ...s }), this.seq, journal);
    this.seq = signed.seq;
    this.lastCheckpoint = { at: Date.now(), n };
    const checkpoint: Checkpoint = { type: "checkpoint", ...unsigned, ...signed };
    return `${JSON.stringify(checkpoint)}\n`;
  }
}

export function runLength(run: ItemRun): number {
  return Array.isArray(run[2]) ? run[2].length : run[2];
}
