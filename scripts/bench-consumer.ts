#!/usr/bin/env bun
/**
 * The recorder's side of an open storm (README "Performance", issue #14 item 4): `esr record
 * --no-daemon --events disk` of `bench-workload openrate N RATE`, with default buffers, as the
 * bench's "Delivery rate" rows run it. Per rate it prints the rate achieved, events written and
 * lost, the recorder's CPU per event written (its rusage minus the workload's) and its peak RSS.
 * With several executables the runs alternate between them, so that all see the same machine.
 * Numbers only.
 *
 *   bun scripts/bench-consumer.ts [--rates 100000,200000,0] [--seconds 2] [--runs 3] [ESR …]
 */
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dir, "..");
const WORKLOAD = join(ROOT, "build", "bench-workload");
const BENCH_USER = "esrbench";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rates: { type: "string", default: "100000,200000,0" },
    seconds: { type: "string", default: "2" },
    runs: { type: "string", default: "3" },
  },
});
const rates = values.rates.split(",").map(Number);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const binaries = positionals.length ? positionals : [join(ROOT, "dist", "esr")];

function sh(cmd: string[]): string {
  const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  return r.stdout.toString();
}

interface Run {
  achieved: number;
  written: number;
  lost: number;
  cpuPerEventUs: number;
  maxRssMB: number;
}

async function once(esr: string, rate: number): Promise<Run> {
  // A data dir per run: listing one that holds earlier storms would count all their events again.
  const dataDir = mkdtempSync(join(tmpdir(), "esr-bench-consumer-"));
  try {
    return await recordStorm(esr, dataDir, rate);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function recordStorm(esr: string, dataDir: string, rate: number): Promise<Run> {
  // Full speed: as many as the bench's own full-speed row.
  const n = rate ? Math.round(rate * seconds) : 200_000 * seconds;
  const proc = Bun.spawn({
    cmd: [esr, "record", "--no-daemon", "--data-dir", dataDir, "--events", "disk", "--login", BENCH_USER, "--"].concat([
      WORKLOAD,
      "openrate",
      String(n),
      String(rate),
    ]),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  if (proc.exitCode !== 0) throw new Error(`esr record failed: ${err}`);
  const [, secs, , workloadCpu] = out.trim().split("\n").pop()!.split(" ").map(Number);
  const sid = /session (\S+)/.exec(err)?.[1];
  const session = sh([esr, "ls", "--json", "--no-verify", "--data-dir", dataDir])
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line))
    .find((s) => s.sid === sid);
  if (!session) throw new Error(`session ${sid} not listed`);
  const usage = proc.resourceUsage()!;
  const recorderCpu = Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6 - workloadCpu!;
  const written = session.counts.disk as number;
  return {
    achieved: n / secs!,
    written,
    lost: session.lost.disk as number,
    cpuPerEventUs: (recorderCpu / written) * 1e6,
    maxRssMB: Number(usage.maxRSS) / 1048576,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main() {
  if (process.getuid?.() !== 0) throw new Error("the bench runs as root");
  const source = join(ROOT, "scripts", "bench", "workload.c");
  if (!existsSync(WORKLOAD) || statSync(WORKLOAD).mtimeMs < statSync(source).mtimeMs)
    sh(["clang", "-O2", "-Wall", "-Werror", "-o", WORKLOAD, source]);
  if (sh(["id", "-u", BENCH_USER]).trim() === "") throw new Error(`no user ${BENCH_USER}: run scripts/bench.ts once`);
  for (const rate of rates) {
    const results = new Map<string, Run[]>(binaries.map((b) => [b, []]));
    for (let r = 0; r < runs; r++)
      for (const esr of r % 2 ? [...binaries].reverse() : binaries) results.get(esr)!.push(await once(esr, rate));
    for (const [esr, rs] of results) {
      const f = (pick: (r: Run) => number, digits: number) => rs.map((r) => pick(r).toFixed(digits)).join(" ");
      console.log(
        `${(rate ? `${rate / 1000}k/s` : "full").padEnd(8)} ${esr}\n` +
          `  achieved ${f((r) => r.achieved / 1000, 0)} k/s   lost ${rs.map((r) => `${r.lost}/${r.written + r.lost}`).join(" ")}\n` +
          `  recorder CPU per event ${f((r) => r.cpuPerEventUs, 2)} µs (median ${median(rs.map((r) => r.cpuPerEventUs)).toFixed(2)})` +
          `   peak RSS ${f((r) => r.maxRssMB, 1)} MB (max ${Math.max(...rs.map((r) => r.maxRssMB)).toFixed(1)})`,
      );
    }
  }
}

await main();
