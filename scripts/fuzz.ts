#!/usr/bin/env bun
/**
 * Fuzzing of the two parsers that read what esr did not write itself in this run: the config
 * parser (Teleport-style YAML, roles and users) and the reader of session `.gz` files.
 *   bun scripts/fuzz.ts [--iterations N] [--seed S]      (default 200000 each, about a minute)
 * test/bad-input.test.ts runs the same generators, shortened, in CI.
 *
 * Config: documents generated from the config's own keys with values of every YAML type (and
 * anchors, aliases, tags, odd scalars), plus byte-level mutations of valid files. Property: the
 * parser returns a configuration or throws a ConfigError/EsrError whose message is one line naming
 * the file; never another exception, never a hang.
 *
 * .gz: files of gzip members written by GzipMemberFile, then truncated, bit-flipped, overwritten,
 * spliced with garbage. Property: gunzipMembers and readEventFile never throw; what they return is a
 * prefix of the original events (damage is never turned into made-up events); damage is reported.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../lib/config/config.ts";
import { EsrError } from "../lib/errors.ts";
import { GzipMemberFile, gunzipMembers } from "../lib/store/file/gzip-members.ts";
import { readEventFile } from "../lib/store/file/session-files.ts";

/** A small, seedable PRNG (mulberry32): a failing case can be replayed from its seed. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

const SCALARS = [
  "",
  "~",
  "null",
  "true",
  "false",
  "yes",
  "no",
  "on",
  "0",
  "-1",
  "8",
  "1.5",
  "1e9",
  "0x10",
  "0o17",
  ".inf",
  "-.inf",
  ".nan",
  "99999999999999999999",
  "/",
  "/cgroup2",
  "relative/path",
  "../..",
  "/esr",
  "command",
  "disk",
  "network",
  "bogus",
  "'quoted'",
  '"dq"',
  '"\\u0000"',
  "!!str 8",
  "!!int x",
  "!!binary aGk=",
  "<<: *a",
  "&a 1",
  "*a",
  "*undefined",
  "|",
  ">",
  "- ",
  "? k",
  "{",
  "[",
  "\t",
  "é",
  "\u202e",
  "%YAML 1.2",
  "@",
  "`",
  "#c",
  "a: b: c",
];
const KEYS = [
  "teleport",
  "nodename",
  "data_dir",
  "auth_service",
  "cluster_name",
  "ssh_service",
  "enhanced_recording",
  "enabled",
  "command_buffer_size",
  "disk_buffer_size",
  "network_buffer_size",
  "cgroup_path",
  "root_path",
  "kind",
  "version",
  "metadata",
  "name",
  "spec",
  "options",
  "roles",
  "role",
  "user",
  "unknown",
  "<<",
];

function yamlValue(r: Rng, depth: number): string {
  const roll = r.int(10);
  if (depth > 3 || roll < 5) return r.pick(SCALARS);
  if (roll < 7) return `[${Array.from({ length: r.int(4) }, () => yamlValue(r, depth + 1)).join(", ")}]`;
  return `{ ${Array.from({ length: r.int(4) }, () => `${r.pick(KEYS)}: ${yamlValue(r, depth + 1)}`).join(", ")} }`;
}

function yamlBlock(r: Rng, indent: number, depth: number): string {
  const lines: string[] = [];
  for (let i = 0, n = 1 + r.int(4); i < n; i++) {
    const key = r.pick(KEYS);
    if (depth < 4 && r.int(3) === 0) lines.push(`${" ".repeat(indent)}${key}:\n${yamlBlock(r, indent + 2, depth + 1)}`);
    else if (r.int(6) === 0)
      lines.push(
        `${" ".repeat(indent)}${key}:\n${Array.from({ length: 1 + r.int(3) }, () => `${" ".repeat(indent + 2)}- ${yamlValue(r, depth + 1)}`).join("\n")}`,
      );
    else lines.push(`${" ".repeat(indent)}${key}: ${yamlValue(r, depth)}`);
  }
  return lines.join("\n");
}

const VALID = [
  "teleport:\n  nodename: web-1\n  data_dir: /var/lib/esr\nauth_service:\n  cluster_name: prod\nssh_service:\n  enhanced_recording:\n    enabled: true\n    command_buffer_size: 8\n    disk_buffer_size: 128\n    network_buffer_size: 8\n    cgroup_path: /cgroup2\n    root_path: /esr\n",
  "kind: role\nversion: v8\nmetadata: { name: auditors }\nspec:\n  options:\n    enhanced_recording: [command, disk, network]\n---\nkind: user\nmetadata: { name: alice }\nspec: { roles: [auditors] }\n",
];

function mutate(r: Rng, text: string): string {
  const chars = [...text];
  for (let k = 1 + r.int(4); k > 0; k--) {
    const at = r.int(chars.length + 1);
    switch (r.int(5)) {
      case 0:
        chars.splice(at, 1 + r.int(8));
        break;
      case 1:
        chars.splice(at, 0, ...r.pick(SCALARS));
        break;
      case 2:
        chars.splice(
          at,
          0,
          r.pick([
            ":",
            "-",
            " ",
            "\n",
            "\t",
            "[",
            "]",
            "{",
            "}",
            "&",
            "*",
            "!",
            "'",
            '"',
            "#",
            "|",
            ">",
            "\0",
            "\uFFFD",
          ]),
        );
        break;
      case 3:
        chars.length = at;
        break;
      default:
        chars.splice(at, 0, ...chars.slice(r.int(chars.length), r.int(chars.length)));
    }
  }
  return chars.join("");
}

export function configInput(r: Rng): string {
  switch (r.int(3)) {
    case 0:
      return mutate(r, r.pick(VALID));
    case 1:
      return Array.from({ length: 1 + r.int(3) }, () => yamlBlock(r, 0, 0)).join("\n---\n");
    default:
      return `${r.pick(VALID)}---\n${yamlBlock(r, 0, 0)}`;
  }
}

export interface FuzzReport {
  iterations: number;
  accepted: number;
  rejected: number;
  /** inputs that broke the property, with why (empty when all is well) */
  failures: { input: string; why: string }[];
  ms: number;
}

export function fuzzConfig(iterations: number, seed = 1): FuzzReport {
  const r = rng(seed);
  const report: FuzzReport = { iterations, accepted: 0, rejected: 0, failures: [], ms: 0 };
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const text = configInput(r);
    const t = performance.now();
    try {
      parseConfig([{ name: "fuzz.yaml", text }]);
      report.accepted++;
    } catch (err) {
      if (!(err instanceof EsrError)) report.failures.push({ input: text, why: `not an EsrError: ${String(err)}` });
      else if (err.message.includes("\n"))
        report.failures.push({ input: text, why: `a message of several lines: ${err.message}` });
      else if (!err.message.startsWith("fuzz.yaml:") && !/unknown role|role "/.test(err.message))
        report.failures.push({ input: text, why: `the message does not name the file: ${err.message}` });
      else report.rejected++;
    }
    if (performance.now() - t > 1000)
      report.failures.push({ input: text, why: `took ${(performance.now() - t).toFixed(0)} ms` });
  }
  report.ms = performance.now() - t0;
  return report;
}

/** A .gz session file of `members` members holding `lines` events in all, and its text. */
function gzFile(dir: string, r: Rng, members: number, lines: number): { bytes: Buffer; text: string } {
  const path = join(dir, `f${r.int(1e9)}.gz`);
  const file = new GzipMemberFile(path);
  let text = "";
  for (let i = 0; i < lines; i++) {
    const line = `${JSON.stringify({ ei: i, event: "session.command", argv: [r.pick(SCALARS), "x".repeat(r.int(200))] })}\n`;
    file.append(line);
    text += line;
    if (r.int(Math.max(1, Math.floor(lines / members))) === 0) file.flush();
  }
  file.close();
  const bytes = readFileSync(path);
  rmSync(path);
  return { bytes, text };
}

function damage(r: Rng, bytes: Buffer): Buffer {
  let out = Buffer.from(bytes);
  for (let k = 1 + r.int(3); k > 0; k--) {
    switch (r.int(5)) {
      case 0:
        out = out.subarray(0, r.int(out.length + 1));
        break;
      case 1:
        if (out.length) out[r.int(out.length)]! ^= 1 << r.int(8);
        break;
      case 2: {
        const at = r.int(out.length + 1);
        const junk = Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256)));
        out = Buffer.concat([out.subarray(0, at), junk, out.subarray(at)]);
        break;
      }
      case 3: {
        // a gzip header where none belongs: members must not be found inside others
        const at = r.int(out.length + 1);
        out = Buffer.concat([out.subarray(0, at), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), out.subarray(at)]);
        break;
      }
      default:
        if (out.length) out.fill(r.int(256), r.int(out.length), r.int(out.length));
    }
  }
  return out;
}

export function fuzzGzip(iterations: number, seed = 1): FuzzReport & { damaged: number } {
  const r = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), "esr-fuzz-"));
  const report = {
    iterations,
    accepted: 0,
    rejected: 0,
    damaged: 0,
    failures: [] as { input: string; why: string }[],
    ms: 0,
  };
  const t0 = performance.now();
  const originals = Array.from({ length: 8 }, () => gzFile(dir, r, 1 + r.int(12), 1 + r.int(60)));
  try {
    for (let i = 0; i < iterations; i++) {
      const original = r.pick(originals);
      const bytes = damage(r, original.bytes);
      try {
        const got = gunzipMembers(bytes);
        if (!original.text.startsWith(got.text)) {
          // A flipped bit that still passes the CRC (1 in 2^32) would land here; nothing else may.
          report.failures.push({
            input: bytes.toString("base64"),
            why: "gunzipMembers returned text that is not a prefix of the original",
          });
          continue;
        }
        if (got.error) report.damaged++;
        // The whole reader, as replay uses it: events, then warnings; never a throw.
        const path = join(dir, `in-${i % 4}.gz`);
        writeFileSync(path, bytes);
        const warnings: string[] = [];
        const events = readEventFile(path, warnings);
        const expected = original.text
          .split("\n")
          .filter(Boolean)
          .slice(0, events.length)
          .map((l) => JSON.parse(l));
        if (JSON.stringify(events) !== JSON.stringify(expected))
          report.failures.push({
            input: bytes.toString("base64"),
            why: "readEventFile returned events that are not the original's first ones",
          });
        else if (warnings.some((w) => w.includes("\n")))
          report.failures.push({ input: bytes.toString("base64"), why: "a warning of several lines" });
        else if (warnings.length) report.rejected++;
        else report.accepted++;
      } catch (err) {
        report.failures.push({ input: bytes.toString("base64"), why: `threw: ${String(err)}` });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report.ms = performance.now() - t0;
  return report;
}

if (import.meta.main) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  const iterations = arg("iterations", 200_000);
  const seed = arg("seed", Date.now() % 1e9);
  console.log(`fuzz: seed ${seed}, ${iterations} inputs each`);
  const c = fuzzConfig(iterations, seed);
  console.log(
    `config: ${c.accepted} accepted, ${c.rejected} rejected with one-line errors, ${c.failures.length} failures, ${(c.iterations / (c.ms / 1000)).toFixed(0)} inputs/s`,
  );
  const g = fuzzGzip(iterations, seed);
  console.log(
    `gz:     ${g.accepted} read whole, ${g.rejected} read up to damage with a warning (${g.damaged} damaged members found), ${g.failures.length} failures, ${(g.iterations / (g.ms / 1000)).toFixed(0)} inputs/s`,
  );
  for (const f of [...c.failures, ...g.failures].slice(0, 10))
    console.log(`FAIL ${f.why}\n  input: ${JSON.stringify(f.input).slice(0, 400)}`);
  process.exit(c.failures.length + g.failures.length ? 1 : 0);
}
