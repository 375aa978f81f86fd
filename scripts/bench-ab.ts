/**
 * A/B of two esr executables in one run, runs interleaved so that both see the same machine:
 * `esr --version`, `esr record -- true` and a recorded exec storm, median of N runs each.
 *   bun scripts/bench-ab.ts OLD_ESR NEW_ESR [--runs N]
 * Used to show that a refactoring costs nothing (build the old commit's dist/esr in a worktree).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 15;
const binaries = args.filter((a, i) => !a.startsWith("--") && i !== runsAt + 1);
if (binaries.length !== 2 || !(runs > 0)) {
  console.error("usage: bun scripts/bench-ab.ts OLD_ESR NEW_ESR [--runs N]");
  process.exit(2);
}

/** Wall time of one run, in ms; a run that fails stops the bench. */
function timed(cmd: string[]): number {
  const start = Bun.nanoseconds();
  const r = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
  const ms = (Bun.nanoseconds() - start) / 1e6;
  if (r.exitCode !== 0) {
    console.error(`${cmd.join(" ")} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
    process.exit(1);
  }
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const storm = "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done";
const rows: [string, (esr: string, dataDir: string) => string[]][] = [
  ["esr --version", (esr) => [esr, "--version"]],
  ["esr record -- true", (esr, d) => [esr, "record", "-q", "--data-dir", d, "--", "true"]],
  ["recorded 200-exec storm", (esr, d) => [esr, "record", "-q", "--data-dir", d, "--", "sh", "-c", storm]],
];

const dataDir = mkdtempSync(join(tmpdir(), "esr-bench-ab-"));
try {
  console.log(`A = ${binaries[0]}\nB = ${binaries[1]}\nmedian of ${runs} interleaved runs\n`);
  console.log(`${"row".padEnd(26)}${"A ms".padStart(9)}${"B ms".padStart(9)}${"B/A".padStart(8)}`);
  for (const [name, cmd] of rows) {
    const times: number[][] = [[], []];
    for (let i = 0; i < runs; i++) for (const b of [0, 1]) times[b]!.push(timed(cmd(binaries[b]!, dataDir)));
    const [a, b] = times.map(median) as [number, number];
    console.log(
      `${name.padEnd(26)}${a.toFixed(1).padStart(9)}${b.toFixed(1).padStart(9)}${(b / a).toFixed(3).padStart(8)}`,
    );
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
