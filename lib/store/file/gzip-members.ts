/**
 * Session files are gzip streams written as a series of complete members, one per flush, so a
 * recorder killed at any moment leaves a file that zcat reads up to its last flush.
 *
 * Compression is Bun's native zlib, not fflate: at level 3 it costs ≈ 0.56 µs per event against
 * fflate's ≈ 6.3 µs, for the same ≈ 30 bytes per event (scripts/bench.ts). Level 2 is cheaper and
 * smaller still on open-storm events in 256 KiB members (0.47 µs and 27.8 B per event against 0.57
 * µs and 28.6 B at level 3; level 1: 0.40 µs but 44.6 B). fflate is still what finds member
 * boundaries when reading.
 */
import { closeSync, existsSync, linkSync, openSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const LEVEL = 2;
/**
 * A burst is written in pieces of about this much, so no single write stalls the event loop and
 * a storm holds little: 256 KiB is ≈ 500 open events, ≈ 2 ms of gzip.
 */
const BATCH_BYTES = 256 << 10;

/**
 * Bytes gathered until they are written, encoded into one buffer as they come, reused from batch
 * to batch: a storm's lines leave no joined strings or per-batch buffers behind. `add` says when
 * it has grown to the size of one write.
 */
export class ByteBatch {
  private buffer = Buffer.allocUnsafe(BATCH_BYTES);
  private used = 0;

  /** Adds a line and its newline, UTF-8; true when the batch should be written now. */
  addLine(line: string): boolean {
    // A UTF-16 unit is at most 3 UTF-8 bytes.
    this.reserve(3 * line.length + 1);
    this.used += this.buffer.write(line, this.used, "utf8");
    this.buffer[this.used++] = 10;
    return this.used >= BATCH_BYTES;
  }

  /** Adds bytes as they are (text as UTF-8); true when the batch should be written now. */
  add(data: string | Uint8Array): boolean {
    if (typeof data === "string") {
      this.reserve(3 * data.length);
      this.used += this.buffer.write(data, this.used, "utf8");
    } else {
      this.reserve(data.length);
      this.buffer.set(data, this.used);
      this.used += data.length;
    }
    return this.used >= BATCH_BYTES;
  }

  /** What was added, emptying the batch: valid until the next add. Undefined when there is nothing. */
  take(): Buffer<ArrayBuffer> | undefined {
    if (this.used === 0) return undefined;
    const bytes = this.buffer.subarray(0, this.used);
    this.used = 0;
    return bytes;
  }

  private reserve(bytes: number) {
    if (this.used + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.buffer.length, this.used + bytes));
    grown.set(this.buffer.subarray(0, this.used));
    this.buffer = grown;
  }
}

export class GzipMemberFile {
  private readonly fd: number;
  private readonly batch = new ByteBatch();

  /** `stored` sees the bytes of each member before they are compressed (the session's hash chain). */
  constructor(
    readonly path: string,
    private readonly stored?: (bytes: Uint8Array) => void,
  ) {
    createWithEmptyMember(path);
    this.fd = openSync(path, "a", 0o600);
  }

  /** Appends bytes (text as UTF-8). */
  append(data: string | Uint8Array) {
    if (this.batch.add(data)) this.flush();
  }

  /** Appends a line and its newline. */
  appendLine(line: string) {
    if (this.batch.addLine(line)) this.flush();
  }

  /** Writes what was appended since the last flush as one gzip member. */
  flush() {
    const bytes = this.batch.take();
    if (bytes === undefined) return;
    this.stored?.(bytes);
    writeAll(this.fd, Bun.gzipSync(bytes, { level: LEVEL }));
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

/**
 * A new file appears already holding an empty member, so that a recorder killed before its first
 * flush, or between creating the file and writing to it, leaves a file zcat reads (an empty file
 * is not a gzip stream to zcat). Written aside and linked into place: link never replaces a file.
 * A kill between the two leaves a dot file, which no reader lists.
 */
function createWithEmptyMember(path: string) {
  if (existsSync(path)) return;
  const aside = join(dirname(path), `.${basename(path)}.${process.pid}.new`);
  writeFileSync(aside, EMPTY_MEMBER, { mode: 0o600 });
  try {
    linkSync(aside, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(aside);
  }
}

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

const SCAN_SLICE = 64 << 10;

/** Hands each intact member, decompressed, to `use`; returns why it stopped early, if it did. */
function forEachMember(bytes: Uint8Array, use: (member: Buffer) => void): string | undefined {
  // Required here, not imported: only readers need them, and loading both costs a recorder's start ≈ 6.5 ms.
  const { gunzipSync } = require("node:zlib") as typeof import("node:zlib");
  const { Gunzip } = require("fflate") as typeof import("fflate");
  const starts = new Set<number>([0]);
  const scanner = new Gunzip(() => {});
  scanner.onmember = (offset) => starts.add(offset);
  try {
    // In slices: given a whole file at once, fflate inflates it into one buffer of its whole size
    // (an `esr ls` of large sessions was killed for 24 GB); slices keep it to its window.
    for (let at = 0; at < bytes.length; at += SCAN_SLICE)
      scanner.push(bytes.subarray(at, at + SCAN_SLICE), at + SCAN_SLICE >= bytes.length);
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
