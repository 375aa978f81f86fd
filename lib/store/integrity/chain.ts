/**
 * The hash chain of one session, written as it is recorded (README "Tamper-evident recordings").
 *
 * Every event line and every chunk of terminal output is bound, in the order it was written, into
 * head_i = SHA-256(head_{i-1} ‖ stream ‖ 0 ‖ index ‖ 0 ‖ stored bytes), head_0 = SHA-256(format ‖ 0 ‖
 * host ‖ 0 ‖ sid). At each flush, after the data files, `<sid>.chain` gets a line naming the items
 * since the last flush (their order, which the data files alone do not keep) and the head; at the
 * start, every `checkpointIntervalMs` or `checkpointEvents` items, and at the end, a checkpoint
 * signed with the host key. The end checkpoint seals the session.
 */
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { HostKey, Signed } from "./host-key.ts";
import { chainFileName, type StoredItemChain } from "../file/session-writer.ts";
import { writeAll } from "../file/gzip-members.ts";

export const CHAIN_FORMAT = "esr-chain-1";
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
  private readonly hasher = new Bun.CryptoHasher("sha256");
  /** digest() into a buffer wants room for the largest digest. */
  private readonly digest = new Uint8Array(64);
  readonly head = new Uint8Array(32);
  count = 0;

  constructor(host: string, sid: string) {
    this.hasher.update(`${CHAIN_FORMAT}\0${host}\0${sid}`);
    this.hasher.digest(this.digest);
    this.head.set(this.digest.subarray(0, 32));
  }

  add(stream: string, index: number, bytes: string | Uint8Array) {
    this.hasher.update(this.head);
    this.hasher.update(`${stream}\0${index}\0`);
    this.hasher.update(bytes);
    this.hasher.digest(this.digest);
    this.head.set(this.digest.subarray(0, 32));
    this.count++;
  }

  headHex(): string {
    return Buffer.from(this.head).toString("hex");
  }
}

/** How often to sign (the config's `esr.integrity`). */
export interface CheckpointPolicy {
  checkpointIntervalMs: number;
  checkpointEvents: number;
}

/** The chain a session writer feeds: hashes on every item, writes and signs on flushes. */
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

  add(stream: string, index: number, bytes: string | Uint8Array) {
    this.hasher.add(stream, index, bytes);
    const run = this.runs.at(-1);
    const chunk = typeof bytes !== "string";
    if (run && run[0] === stream && run[1] + runLength(run) === index) {
      if (Array.isArray(run[2])) run[2].push(bytes.length);
      else run[2]++;
    } else this.runs.push([stream, index, chunk ? [bytes.length] : 1]);
  }

  /** Called once the data files are flushed: the chain never names an item that is not on disk. */
  flush() {
    let text = "";
    if (this.runs.length) {
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
