/**
 * End-to-end test helpers: run the real esr executable (dist/esr, built by scripts/build.ts) as
 * root on the real kernel, and read back what it recorded.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEvent, EventName, EventOf } from "../../lib/events/audit-events.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const FIXTURES = join(ROOT, "test", "fixtures");
export const ESR = process.env.ESR_BIN ?? join(ROOT, "dist", "esr");

/** The session files of a data dir (host uuid, sessions dir). */
export function sessionsDir(dataDir: string): string {
  return join(dataDir, "log", readFileSync(join(dataDir, "host_uuid"), "utf8").trim(), "sessions", "default");
}

export function tempDir(prefix = "esr-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runEsr(
  args: string[],
  opts: { env?: Record<string, string>; stdin?: string | number | "inherit"; cwd?: string } = {},
): Promise<RunResult> {
  const proc = Bun.spawn({
    cmd: [ESR, ...args],
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdin: typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : (opts.stdin ?? "ignore"),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { exitCode, stdout, stderr };
}

export interface Recorded extends RunResult {
  sid: string;
  dataDir: string;
}

/** `esr record [flags] -- command...` in a fresh data dir (unless given); the sid comes from stderr. */
export async function record(
  command: string[],
  opts: { flags?: string[]; dataDir?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<Recorded> {
  const dataDir = opts.dataDir ?? tempDir();
  const result = await runEsr(["record", "--data-dir", dataDir, ...(opts.flags ?? []), "--", ...command], opts);
  const sid = /esr: session ([0-9a-f-]{36})/.exec(result.stderr)?.[1];
  if (!sid) throw new Error(`no session id in esr's stderr (exit ${result.exitCode}): ${result.stderr}`);
  return { ...result, sid, dataDir };
}

/** The session's events as stored (`esr replay --format json`). */
export async function replayEvents(dataDir: string, sid: string, extra: string[] = []): Promise<AuditEvent[]> {
  const out = await runEsr(["replay", sid, "--data-dir", dataDir, "--format", "json", ...extra]);
  if (out.exitCode !== 0) throw new Error(`esr replay failed (${out.exitCode}): ${out.stderr}`);
  return out.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Each exec as one string, `path arg1 arg2…`, in order. */
export function execLines(events: AuditEvent[]): string[] {
  return ofType(events, "session.command").map((e) => [e.path, ...e.argv].join(" "));
}

/** The events of one type, typed as that type. */
export function ofType<Name extends EventName>(events: AuditEvent[], event: Name): EventOf<Name>[] {
  return events.filter((e): e is EventOf<Name> => e.event === event);
}

/** A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice of a free one). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}
