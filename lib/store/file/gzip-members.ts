/**
 * Session files are gzip streams written as a series of complete members, one per flush, so a
 * recorder killed at any moment leaves a file that zcat reads up to its last flush.
 *
 * Compression is Bun's native zlib, not fflate: at level 3 it costs ≈ 0.56 µs per event against
 * fflate's ≈ 6.3 µs, for the same ≈ 30 bytes per event (scripts/bench.ts). fflate is still what
 * finds member boundaries when reading.
 */
import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { Gunzip } from "fflate";

const LEVEL = 3;
/** A burst is written in pieces of about this much, so no single write stalls the event loop. */
const MAX_BATCH_CHARS = 1 << 20;

/** Text gathered until it is written; `add` says when it has grown to the size of one write. */
export class TextBatch {
  private parts: string[] = [];
  private chars = 0;

  /** Adds text; true when the batch should be written now. */
  add(text: string): boolean {
    this.parts.push(text);
    this.chars += text.length;
    return this.chars >= MAX_BATCH_CHARS;
  }

  /** All of it, emptying the batch; undefined when there is nothing. */
  take(): string | undefined {
    if (this.parts.length === 0) return undefined;
    const text = this.parts.join("");
    this.parts = [];
    this.chars = 0;
    return text;
  }
}

export class GzipMemberFile {
  private readonly fd: number;
  private readonly batch = new TextBatch();

  /** `latin1` when what is appended is raw bytes, one character per byte (a terminal's output). */
  constructor(
    readonly path: string,
    private readonly encoding: "utf8" | "latin1" = "utf8",
  ) {
    this.fd = openSync(path, "a", 0o600);
    // A new file starts as an empty member, so that a recorder killed before its first flush
    // leaves a file zcat reads (an empty file is not a gzip stream to zcat).
    if (fstatSync(this.fd).size === 0) writeAll(this.fd, EMPTY_MEMBER);
  }

  append(line: string) {
    if (this.batch.add(line)) this.flush();
  }

  /** Writes what was appended since the last flush as one gzip member. */
  flush() {
    const text = this.batch.take();
    if (text !== undefined) writeAll(this.fd, Bun.gzipSync(Buffer.from(text, this.encoding), { level: LEVEL }));
  }

  close() {
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }
}

const EMPTY_MEMBER = Bun.gzipSync(new Uint8Array(0), { level: LEVEL });

export function writeAll(fd: number, bytes: Uint8Array) {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
}

export interface GunzipResult {
  text: string;
  /** Why reading stopped before the end of the file: a truncated or corrupt member. */
  error?: string;
}

/** {@link gunzipMemberBytes}, decoded as UTF-8 text. */
export function gunzipMembers(bytes: Uint8Array): GunzipResult {
  const { bytes: data, error } = gunzipMemberBytes(bytes);
  const text = data.toString("utf8");
  return error === undefined ? { text } : { text, error };
}

/**
 * Decompresses member after member, each checked against its CRC and length; at the first damaged
 * member it stops and returns what came before, with the reason. fflate finds where members start
 * (it does not check CRCs); zlib checks each one.
 */
export function gunzipMemberBytes(bytes: Uint8Array): { bytes: Buffer; error?: string } {
  const parts: Buffer[] = [];
  const error = forEachMember(bytes, (member) => parts.push(member));
  return error === undefined ? { bytes: Buffer.concat(parts) } : { bytes: Buffer.concat(parts), error };
}

/** Lines (newline bytes) up to the first damaged member, holding one member in memory at a time. */
export function countLines(bytes: Uint8Array): { lines: number; error?: string } {
  let lines = 0;
  const error = forEachMember(bytes, (member) => {
    for (let at = member.indexOf(10); at >= 0; at = member.indexOf(10, at + 1)) lines++;
  });
  return error === undefined ? { lines } : { lines, error };
}

/** Hands each intact member, decompressed, to `use`; returns why it stopped early, if it did. */
function forEachMember(bytes: Uint8Array, use: (member: Buffer) => void): string | undefined {
  const starts = new Set<number>([0]);
  const scanner = new Gunzip(() => {});
  scanner.onmember = (offset) => starts.add(offset);
  try {
    scanner.push(bytes, true);
  } catch {
    // Damage is reported below, by the member that holds it.
  }
  const offsets = [...starts].sort((a, b) => a - b);
  for (const [i, start] of offsets.entries()) {
    const end = offsets[i + 1] ?? bytes.length;
    if (start >= bytes.length) break;
    let member: Buffer;
    try {
      member = gunzipSync(bytes.subarray(start, end));
    } catch (err) {
      return `damaged at byte ${start} (gzip member ${i + 1}): ${err instanceof Error ? err.message : String(err)}`;
    }
    use(member);
  }
  return undefined;
}
