/**
 * What an intruder with root does to recordings on disk: copy them aside, edit a gzip file's lines
 * and write it back as valid gzip, cut its members apart. Used by the tamper-evidence tests.
 */
import { generateKeyPairSync, sign } from "node:crypto";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { runEsr, sessionsDir, tempDir } from "./harness.ts";
import { checkpointMessage, type ChainRecord } from "../../lib/store/integrity/chain.ts";

/** A copy of a data dir, to tamper with while the original stays clean. */
export function copyDataDir(dataDir: string): string {
  const copy = tempDir("esr-tampered-");
  cpSync(dataDir, copy, { recursive: true });
  return copy;
}

export function chainFilePath(dataDir: string, sid: string): string {
  return join(sessionsDir(dataDir), `${sid}.chain`);
}

/** The gzip members of a file, each as its compressed bytes (found as the shortest slices that inflate). */
export function gzipMembers(bytes: Buffer): Buffer[] {
  const members: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = start + 1;
    for (; end <= bytes.length; end++) {
      if (end < bytes.length && !(bytes[end] === 0x1f && bytes[end + 1] === 0x8b)) continue;
      try {
        gunzipSync(bytes.subarray(start, end));
        break;
      } catch {
        // not a whole member yet
      }
    }
    members.push(bytes.subarray(start, end));
    start = end;
  }
  return members;
}

/** Gzip bytes whose text is rewritten as `edit` returns it, as one valid member: no CRC gives it away. */
export function editGzipBytes(bytes: Uint8Array, edit: (text: string) => string): Buffer {
  return gzipSync(Buffer.from(edit(gunzipSync(bytes).toString("latin1")), "latin1"));
}

/** Rewrites a gzip file's text as `edit` returns it (editGzipBytes). */
export function editGzipText(path: string, edit: (text: string) => string) {
  writeFileSync(path, editGzipBytes(readFileSync(path), edit));
}

/** Rewrites a gzip file's lines (each without its newline). */
export function editGzipLines(path: string, edit: (lines: string[]) => string[]) {
  editGzipText(path, (text) => `${edit(text.split("\n").slice(0, -1)).join("\n")}\n`);
}

/** `esr verify` of one session (or `--all`), as an operator runs it. */
export async function verify(dataDir: string, sid: string | "--all", extra: string[] = []) {
  return runEsr(["verify", sid, "--data-dir", dataDir, ...extra]);
}

/** A chain file's text with its end checkpoint re-signed with a key of the intruder's own. */
export function resignEnd(chain: string): string {
  const records: ChainRecord[] = chain
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const end = records.at(-1)!;
  if (end.type !== "checkpoint" || end.kind !== "end") throw new Error("the chain does not end with its seal");
  const { privateKey } = generateKeyPairSync("ed25519");
  end.sig = sign(null, checkpointMessage(end), privateKey).toString("base64");
  return records.map((r) => `${JSON.stringify(r)}\n`).join("");
}

/** A public key that is no host's, as `--key` takes it. */
export function strangerKey(): string {
  const { publicKey } = generateKeyPairSync("ed25519");
  return `ed25519:${publicKey.export({ format: "der", type: "spki" }).subarray(12).toString("base64")}`;
}

/** `esr verify --from` the fleet store, as an auditor runs it. */
export async function verifyFrom(uri: string, sid: string | "--all", extra: string[] = []) {
  return runEsr(["verify", sid, "--from", uri, ...extra]);
}
