/**
 * The host's forward-secure signing key and its journal (README "Tamper-evident recordings").
 *
 * The key evolves one way: seed_{e+1} = SHA-256("esr-epoch-seed" ‖ seed_e), and the old seed is
 * overwritten on disk. Each new epoch's public key is certified by the previous epoch's key in an
 * append-only journal whose first line holds the root public key (epoch 0), the one a verifier
 * trusts. The key evolves when an epoch has lasted its length, and right after it signs a session's
 * start or seal, so the journal entry that opens the next epoch names that session: whoever takes
 * the key later can neither sign in an earlier epoch nor remove a start or seal from the journal
 * without breaking the certificates of every later epoch.
 *
 * Every recorder of the host (several `esr record`, the daemon) shares the key under flock(2), and
 * reads it afresh for every signature: no process keeps a seed that the files no longer hold.
 */
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync } from "node:fs";
import { join } from "node:path";
import { EsrError, errorMessage } from "../../errors.ts";
import { withFileLock } from "../../sys/libc.ts";
import { AuditLog, makeDir } from "../file/audit-log.ts";
import { writeAll } from "../file/gzip-members.ts";

/** What a journal entry says opened its epoch. */
export type EpochReason = "created" | "time" | "start" | "seal";

/** One line of the journal: an epoch's public key, certified by the previous epoch's key. */
export interface JournalEntry {
  epoch: number;
  /** The epoch's Ed25519 public key, base64 of its 32 bytes. */
  pub: string;
  /** RFC 3339: when the epoch began; the previous one ended then. */
  since: string;
  reason: EpochReason;
  /** For "start" and "seal": the session and the chain position just signed. */
  sid?: string;
  seq?: number;
  n?: number;
  head?: string;
  /** Signature by the previous epoch's key (epoch 0: by its own). */
  sig: string;
}

/** The secret state: the current epoch's seed and what the next signature needs. */
interface KeyState {
  format: typeof KEY_FORMAT;
  host: string;
  epoch: number;
  seed: string;
  since: string;
  /** The latest time signed in this epoch: the next epoch never begins before it. */
  last: string;
  /** The per-host sequence number the next session gets. */
  nextSeq: number;
  /** The journal entry of this epoch, appended again if a crash left the journal behind. */
  entry: JournalEntry;
}

const KEY_FORMAT = "esr-host-key-1";
const ENTRY_FORMAT = "esr-epoch-1";
export const INTEGRITY_DIR = "integrity";
const KEY_FILE = "host.key";
const PUBLIC_FILE = "host.pub";
const JOURNAL_FILE = "journal";
const LOCK_FILE = "lock";
const PUBLIC_KEY_PREFIX = "ed25519:";
/** DER prefixes that turn 32 raw bytes into a PKCS#8 private or SPKI public Ed25519 key. */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

export function integrityDir(dataDir: string): string {
  return join(dataDir, INTEGRITY_DIR);
}

/** The journal a data dir's host key keeps (what the fleet shipper copies). */
export function journalPath(dataDir: string): string {
  return join(integrityDir(dataDir), JOURNAL_FILE);
}

function privateKeyOf(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
}

function rawPublicKey(key: KeyObject): string {
  const der = createPublicKey(key).export({ format: "der", type: "spki" });
  return der.subarray(SPKI_ED25519.length).toString("base64");
}

export function publicKeyObject(raw: string): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_ED25519, Buffer.from(raw, "base64")]),
    format: "der",
    type: "spki",
  });
}

/** The exported form of a public key: `ed25519:<base64>`. */
export function publicKeyText(raw: string): string {
  return `${PUBLIC_KEY_PREFIX}${raw}`;
}

/** A public key given as `ed25519:<base64>` (or the file holding it); undefined when it is not one. */
export function parsePublicKey(text: string): string | undefined {
  const raw = text.trim().startsWith(PUBLIC_KEY_PREFIX) ? text.trim().slice(PUBLIC_KEY_PREFIX.length) : "";
  return /^[A-Za-z0-9+/]{43}=$/.test(raw) ? raw : undefined;
}

/** What an epoch's certificate signs: every field, in a fixed order. */
export function entryMessage(host: string, e: Omit<JournalEntry, "sig">): Buffer {
  return Buffer.from(
    JSON.stringify([
      ENTRY_FORMAT,
      host,
      e.epoch,
      e.pub,
      e.since,
      e.reason,
      e.sid ?? null,
      e.seq ?? null,
      e.n ?? null,
      e.head ?? null,
    ]),
  );
}

export function signatureValid(pub: string, message: Buffer, sig: string): boolean {
  try {
    return verify(null, message, publicKeyObject(pub), Buffer.from(sig, "base64"));
  } catch {
    return false;
  }
}

function nextSeed(seed: Buffer): Buffer {
  return createHash("sha256").update("esr-epoch-seed").update(seed).digest();
}

/** The later of two RFC 3339 times: no epoch begins, and nothing is signed, before what was signed already. */
function notBefore(now: Date, earliest: string): string {
  return new Date(Math.max(now.getTime(), Date.parse(earliest))).toISOString();
}

/** What a signer is told when it signs: the epoch, the time it signed at, and the session's sequence number. */
export interface Signed {
  epoch: number;
  time: string;
  seq: number;
  sig: string;
}

export class HostKey {
  private constructor(
    private readonly dir: string,
    readonly host: string,
    private readonly epochMs: number,
  ) {}

  /** The host's key in a data dir, created (with its journal) on first use. */
  static open(dataDir: string, host: string, epochMs: number): HostKey {
    const dir = integrityDir(dataDir);
    try {
      makeDir(dir);
      const key = new HostKey(dir, host, epochMs);
      key.locked(() => {
        if (!existsSync(join(dir, KEY_FILE))) key.create();
      });
      return key;
    } catch (err) {
      if (err instanceof EsrError) throw err;
      throw new EsrError(`cannot use the host key in ${dir}: ${errorMessage(err)}`);
    }
  }

  /**
   * Signs what `message(epoch, time, seq)` returns with the current epoch's key. With `journal`,
   * the key then evolves and the next epoch's journal entry names the session and position
   * signed; a "start" also takes the next sequence number.
   */
  sign(
    message: (signed: Omit<Signed, "sig">) => Buffer,
    seq: number | undefined,
    journal?: { reason: "start" | "seal"; sid: string; n: number; head: string },
  ): Signed {
    return this.locked(() => {
      let state = this.load();
      const now = new Date();
      if (now.getTime() - Date.parse(state.since) >= this.epochMs) state = this.evolve(state, now, { reason: "time" });
      const time = notBefore(now, state.last);
      const sessionSeq = seq ?? state.nextSeq;
      const fields = { epoch: state.epoch, time, seq: sessionSeq };
      const sig = sign(null, message(fields), privateKeyOf(Buffer.from(state.seed, "hex"))).toString("base64");
      state = { ...state, last: time, nextSeq: seq === undefined ? state.nextSeq + 1 : state.nextSeq };
      if (journal) this.evolve(state, now, { ...journal, seq: sessionSeq });
      else this.save(state);
      return { ...fields, sig };
    });
  }

  /** The root public key (epoch 0) as exported: `ed25519:<base64>`. */
  publicKey(): string {
    return readFileSync(join(this.dir, PUBLIC_FILE), "utf8").trim();
  }

  get publicKeyFile(): string {
    return join(this.dir, PUBLIC_FILE);
  }

  private create() {
    const seed = randomBytes(32);
    const key = privateKeyOf(seed);
    const pub = rawPublicKey(key);
    const since = new Date().toISOString();
    const unsigned = { epoch: 0, pub, since, reason: "created" as const };
    const entry = { ...unsigned, sig: sign(null, entryMessage(this.host, unsigned), key).toString("base64") };
    // Public, but in a root-only data dir like every other file: `esr check` prints it for export.
    writeFileDurably(join(this.dir, PUBLIC_FILE), `${publicKeyText(pub)}\n`, 0o600);
    writeFileDurably(join(this.dir, JOURNAL_FILE), "", 0o600);
    this.save({
      format: KEY_FORMAT,
      host: this.host,
      epoch: 0,
      seed: seed.toString("hex"),
      since,
      last: since,
      nextSeq: 0,
      entry,
    });
  }

  /** The key state, with the journal brought up to its epoch (a crash between the two writes). */
  private load(): KeyState {
    const file = join(this.dir, KEY_FILE);
    let state: KeyState;
    try {
      state = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      throw new EsrError(`cannot read the host key ${file}: ${errorMessage(err)}`);
    }
    if (state.format !== KEY_FORMAT || state.host !== this.host)
      throw new EsrError(`${file} is not this host's key (host ${JSON.stringify(state.host)}, expected ${this.host})`);
    if (lastJournalEpoch(join(this.dir, JOURNAL_FILE)) < state.epoch)
      appendDurably(join(this.dir, JOURNAL_FILE), `${JSON.stringify(state.entry)}\n`);
    return state;
  }

  /** The next epoch: its seed derived one way, certified by the current key, the current seed overwritten. */
  private evolve(
    state: KeyState,
    now: Date,
    about: { reason: EpochReason; sid?: string; seq?: number; n?: number; head?: string },
  ): KeyState {
    const seed = nextSeed(Buffer.from(state.seed, "hex"));
    const since = notBefore(now, state.last);
    const unsigned = { epoch: state.epoch + 1, pub: rawPublicKey(privateKeyOf(seed)), since, ...about };
    const sig = sign(null, entryMessage(this.host, unsigned), privateKeyOf(Buffer.from(state.seed, "hex")));
    const entry = { ...unsigned, sig: sig.toString("base64") };
    const next: KeyState = { ...state, epoch: entry.epoch, seed: seed.toString("hex"), since, last: since, entry };
    this.save(next);
    appendDurably(join(this.dir, JOURNAL_FILE), `${JSON.stringify(entry)}\n`);
    return next;
  }

  /** Replaces the key file, then overwrites the old file's bytes, so the old seed leaves the disk. */
  private save(state: KeyState) {
    const file = join(this.dir, KEY_FILE);
    const old = existsSync(file) ? openSync(file, "r+") : undefined;
    try {
      const tmp = `${file}.${process.pid}`;
      writeFileDurably(tmp, `${JSON.stringify(state)}\n`, 0o600);
      renameSync(tmp, file);
      if (old !== undefined) {
        writeAll(old, Buffer.alloc(4096));
        fsyncSync(old);
      }
    } finally {
      if (old !== undefined) closeSync(old);
    }
  }

  private locked<T>(use: () => T): T {
    const fd = openSync(join(this.dir, LOCK_FILE), "a", 0o600);
    try {
      return withFileLock(fd, use);
    } finally {
      closeSync(fd);
    }
  }
}

function writeFileDurably(path: string, text: string, mode: number) {
  const fd = openSync(path, "w", mode);
  try {
    writeAll(fd, Buffer.from(text));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function appendDurably(path: string, text: string) {
  const fd = openSync(path, "a", 0o600);
  try {
    writeAll(fd, Buffer.from(text));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The epoch of the journal's last line as written (-1: none; a last line cut short by a crash is
 * left out), read from the file's end: the journal grows by a line per session, and this runs at
 * every signature.
 */
export function lastJournalEpoch(path: string): number {
  if (!existsSync(path)) return -1;
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    for (let tail = 4096; ; tail *= 4) {
      const start = Math.max(0, size - tail);
      const bytes = Buffer.alloc(size - start);
      readSync(fd, bytes, 0, bytes.length, start);
      const end = bytes.lastIndexOf(0x0a);
      const begin = end < 0 ? -1 : end === 0 ? 0 : bytes.lastIndexOf(0x0a, end - 1) + 1;
      // A line wholly inside what was read, or the file's first: else read further back.
      if (begin > 0 || (start === 0 && end >= 0))
        return (JSON.parse(bytes.subarray(begin, end).toString("utf8")) as JournalEntry).epoch;
      if (start === 0) return -1;
    }
  } finally {
    closeSync(fd);
  }
}

/** What a verifier knows from a journal checked against a root public key. */
export interface TrustedJournal {
  /** Epochs in order, each with when it began and (but for the last) ended. */
  epochs: { pub: string; since: string; until?: string; entry: JournalEntry }[];
  /** Why the journal stops being trusted before its end: a bad certificate, a gap, damage. */
  broken?: string;
}

/**
 * Reads a data dir's journal and follows its certificates from the root key (journalTrust): one of
 * `rootKeys`, else the data dir's own `host.pub`. Throws when there is no key to trust.
 */
export function trustedJournal(dataDir: string, host: string, rootKeys?: string[]): TrustedJournal {
  const dir = integrityDir(dataDir);
  const path = journalPath(dataDir);
  const own = existsSync(join(dir, PUBLIC_FILE))
    ? parsePublicKey(readFileSync(join(dir, PUBLIC_FILE), "utf8"))
    : undefined;
  const roots = rootKeys ?? (own ? [own] : undefined);
  if (!roots) throw new EsrError(`no host public key in ${dir} (give one with --key)`);
  if (!existsSync(path)) throw new EsrError(`no host journal in ${dir}`);
  const lines = readFileSync(path, "utf8").split("\n");
  lines.pop();
  return journalTrust(lines, host, roots, (line) => `${path}:${line}`);
}

/**
 * A journal's lines (a data dir's file, or the fleet store's copy) checked from a root key: its
 * first line must hold one of `roots`, and every entry after it must be signed by the key of the
 * entry before it. Throws when the root is none of them (the wrong key, or a journal replaced
 * whole). `where` names a 1-based line for messages.
 */
export function journalTrust(
  lines: string[],
  host: string,
  roots: string[],
  where: (line: number) => string,
): TrustedJournal {
  const trusted: TrustedJournal = { epochs: [] };
  for (const [i, line] of lines.entries()) {
    let entry: JournalEntry;
    try {
      entry = JSON.parse(line);
      if (typeof entry !== "object" || entry === null) throw new Error("not an entry");
    } catch {
      trusted.broken = `${where(i + 1)}: unreadable line`;
      break;
    }
    const previous = trusted.epochs.at(-1);
    if (i === 0 && !roots.includes(entry.pub))
      throw new WrongKeyError(`the journal's root key is ${publicKeyText(String(entry.pub))}`);
    const signer = previous?.pub ?? entry.pub;
    if (entry.epoch !== i) {
      trusted.broken = `${where(i + 1)}: holds epoch ${entry.epoch} where epoch ${i} belongs (lines removed or inserted)`;
      break;
    }
    if (!signatureValid(signer, entryMessage(host, entry), entry.sig)) {
      trusted.broken = `${where(i + 1)}: epoch ${entry.epoch} is not certified by epoch ${i - 1}'s key`;
      break;
    }
    if (previous) previous.until = entry.since;
    trusted.epochs.push({ pub: entry.pub, since: entry.since, entry });
  }
  return trusted;
}

/** The key a verifier was given is not the one the recordings were signed with. */
export class WrongKeyError extends EsrError {}

/**
 * `esr check`'s line for the host key: created here on first use, its root public key printed
 * so that it can be kept off the host (README "Tamper-evident recordings").
 */
export function hostKeyItem(config: { dataDir: string }): { name: string; ok: boolean; detail: string } {
  try {
    const host = AuditLog.open(config.dataDir).serverId;
    const key = HostKey.open(config.dataDir, host, Infinity);
    return {
      name: "host key",
      ok: true,
      detail: `${key.publicKey()} (${key.publicKeyFile}); keep a copy off this host`,
    };
  } catch (err) {
    return { name: "host key", ok: false, detail: errorMessage(err) };
  }
}
