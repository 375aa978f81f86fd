/**
 * Helpers shared by the adversarial tests (evasion, load, concurrency, faults, permissions): the
 * evade helper program built from test/fixtures/evade.c with the host's clang, and small
 * process and file utilities. Nothing here mocks the kernel: everything runs for real.
 */
import { chmodSync, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { ESR, FIXTURES, tempDir } from "./harness.ts";

/** Fails with the name of what is missing, never skips. */
export function requireRootAndEsr() {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
}

const fixturePrograms = new Map<string, string>();

/**
 * A C program of test/fixtures/ (`source`, relative to it), compiled once per test file into a
 * directory anyone can read, so that a session of another user can run it.
 */
export function fixtureProgram(source: string, compiler: "clang" | "gcc" = "clang"): string {
  const built = fixturePrograms.get(source);
  if (built) return built;
  const dir = tempDir("esr-fixture-");
  chmodSync(dir, 0o755);
  const out = join(dir, basename(source, ".c"));
  const cc = Bun.spawnSync([compiler, "-O2", "-Wall", "-Werror", "-pthread", "-o", out, join(FIXTURES, source)], {
    stderr: "pipe",
  });
  if (cc.exitCode !== 0)
    throw new Error(`cannot build test/fixtures/${source} with ${compiler}: ${cc.stderr.toString()}`);
  fixturePrograms.set(source, out);
  return out;
}

/** test/fixtures/evade.c, with the host's clang (a build dependency of esr). */
export function evade(): string {
  return fixtureProgram("evade.c");
}

/** Every path under `dir`, itself included. */
export function walk(dir: string): string[] {
  const out = [dir];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

/** Resident memory of a process in KiB (VmRSS), or undefined once it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** One-letter state of a process (R, S, T, Z…) from /proc/PID/stat. */
export function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

export async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  stepMs = 10,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(stepMs);
  }
}

/** Starts `esr record` in the background; resolves once it printed the session id. */
export async function startRecording(args: string[], opts: { env?: Record<string, string> } = {}) {
  const proc = Bun.spawn([ESR, "record", ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
  });
  const reader = proc.stderr.getReader();
  let stderr = "";
  const decoder = new TextDecoder();
  while (!/esr: session ([0-9a-f-]{36})/.test(stderr)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`esr record ended before printing a session id: ${stderr}`);
    stderr += decoder.decode(value);
  }
  const sid = /esr: session ([0-9a-f-]{36})/.exec(stderr)![1]!;
  // Keep draining stderr so the recorder never blocks on a full pipe.
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return stderr;
      stderr += decoder.decode(value);
    }
  })();
  const stdout = new Response(proc.stdout).text();
  return { proc, sid, stderr: () => rest, stdout: () => stdout };
}
