/**
 * Load: the session Teleport's users lose events in (`while sleep .5; do ls; done`) must lose none
 * while the rest of the host runs an exec storm and an open storm; and under true overload (a full
 * ring), the lost count per kind is exactly what the kernel produced minus what was written, in
 * session.end and in `esr ls`. The overload is made deterministic by stopping the recorder
 * (SIGSTOP) while the session does a known number of things, then letting it go on (SIGCONT).
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import { evade, procState, requireRootAndEsr, startRecording, waitFor } from "../support/adversary.ts";
import { ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

let EVADE: string;

beforeAll(() => {
  requireRootAndEsr();
  EVADE = evade();
});

describe("a busy host", () => {
  test("`while sleep; do ls; done` loses nothing while the host runs an exec storm and an open storm", async () => {
    const LOOPS = 30;
    const STORM_S = 5;
    const execStorm = Bun.spawn([EVADE, "execstorm", String(STORM_S), "/bin/true"], { stdout: "pipe" });
    const openStorm = Bun.spawn([EVADE, "openstorm", String(STORM_S), "/etc/hostname"], { stdout: "pipe" });
    await Bun.sleep(200);
    const t0 = performance.now();
    const r = await record(["bash", "-c", `for i in $(seq 1 ${LOOPS}); do sleep .05; ls / >/dev/null; done`], {
      flags: ["--events", "command,disk,network"],
    });
    const sessionS = (performance.now() - t0) / 1000;
    const [execs, opens] = await Promise.all([
      new Response(execStorm.stdout).text(),
      new Response(openStorm.stdout).text(),
    ]);
    const events = await replayEvents(r.dataDir, r.sid);
    const cmds = ofType(events, "session.command");
    expect(cmds.filter((e) => e.path === "/usr/bin/ls").length).toBe(LOOPS);
    expect(cmds.filter((e) => e.path === "/usr/bin/sleep").length).toBe(LOOPS);
    // Every ls opened the directory it lists.
    const lsPids = new Set(cmds.filter((e) => e.path === "/usr/bin/ls").map((e) => e.pid));
    const lsDirOpens = ofType(events, "session.disk").filter((e) => lsPids.has(e.pid) && e.path === "/");
    expect(lsDirOpens.length).toBe(LOOPS);
    expect(ofType(events, "session.end")[0]!.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
    const execRate = Number(/execs (\d+)/.exec(execs)![1]) / STORM_S;
    const openRate = Number(/opens (\d+)/.exec(opens)![1]) / STORM_S;
    console.log(
      `load: host exec storm ${execRate.toFixed(0)}/s, open storm ${openRate.toFixed(0)}/s; session: ${events.length} events in ${sessionS.toFixed(1)} s, lost 0`,
    );
    expect(execRate).toBeGreaterThan(20);
    expect(openRate).toBeGreaterThan(1000);
  });

  test("an open storm inside the session: what is not written is counted, exactly", async () => {
    // 200k opens of one path as fast as a CPU goes: far more than a 1 MiB ring holds per 10 ms drain.
    const N = 200_000;
    const path = "/etc/hostname";
    const r = await record([EVADE, "opens", String(N), path], { flags: ["--events", "disk"] });
    const events = await replayEvents(r.dataDir, r.sid);
    const lost = ofType(events, "session.end")[0]!.lost_events as { command: number; disk: number; network: number };
    const written = ofType(events, "session.disk").filter((e) => e.path === path).length;
    // Opens of other paths (the loader's) happen before the storm and are all written.
    const others = ofType(events, "session.disk").filter((e) => e.path !== path);
    expect(others.length).toBeGreaterThan(0);
    expect(written + lost.disk).toBe(N);
    console.log(`load: in-session open storm: ${N} opens, ${written} written, ${lost.disk} lost`);
  });
});

/**
 * Runs `bash -c script` in a recorded session where the script stops itself (kill -STOP $$) before
 * and after its burst. Between the two stops the recorder is stopped too, so the burst lands in the
 * ring with nobody reading it.
 */
async function burstWhileRecorderStopped(kind: string, burst: string, prelude = ":") {
  const script = `exec 2>/dev/null; ${prelude}; kill -STOP $$; ${burst}; kill -STOP $$`;
  const dataDir = tempDir();
  const rec = await startRecording(["--data-dir", dataDir, "--events", kind, "--", "bash", "-c", script]);
  const slice = `/cgroup2/esr/${rec.sid}`;
  const shellPid = () => Number(readFileSync(`${slice}/cgroup.procs`, "utf8").split("\n")[0]);
  let bash = 0;
  await waitFor("the shell of the session", () => (bash = shellPid()) > 0 && procState(bash) === "T");
  await Bun.sleep(100); // the recorder drains everything before the burst
  process.kill(rec.proc.pid, "SIGSTOP");
  await waitFor("the recorder to stop", () => procState(rec.proc.pid) === "T");
  process.kill(bash, "SIGCONT");
  await waitFor("the burst to end", () => procState(bash) === "T", 60_000);
  process.kill(rec.proc.pid, "SIGCONT");
  await Bun.sleep(100);
  process.kill(bash, "SIGCONT");
  expect(await rec.proc.exited).toBe(0);
  const events = await replayEvents(dataDir, rec.sid);
  const end = ofType(events, "session.end")[0]!;
  return { events, lost: end.lost_events as { command: number; disk: number; network: number }, dataDir, sid: rec.sid };
}

async function lsLost(dataDir: string, sid: string): Promise<number> {
  const ls = await runEsr(["ls", "--data-dir", dataDir, "--json"]);
  expect(ls.exitCode).toBe(0);
  const row = ls.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((s) => s.sid === sid);
  const text = await runEsr(["ls", "--data-dir", dataDir]);
  const line = text.stdout.split("\n").find((l) => l.startsWith(sid))!;
  const header = text.stdout.split("\n")[0]!;
  // The LOST column of the table, where its header is.
  const lostCol = line.slice(header.indexOf("LOST")).split(/\s+/)[0];
  expect(Number(lostCol)).toBe(row.lost.command + row.lost.disk + row.lost.network);
  return row.lost.command + row.lost.disk + row.lost.network;
}

describe("a full ring: lost = produced - written, per kind", () => {
  test("command: 60 execs with 30 KiB of arguments each", async () => {
    const N = 60;
    const { events, lost, dataDir, sid } = await burstWhileRecorderStopped(
      "command",
      `for ((i = 0; i < ${N}; i++)); do /bin/true burst-$i "$big"; done`,
      'big=$(printf "%030000d" 0)',
    );
    const cmds = ofType(events, "session.command");
    // Produced: the shell's own exec, then the burst.
    expect(cmds[0]!.path).toBe("/usr/bin/bash");
    const burst = cmds.filter((e) => /^burst-\d+$/.test(e.argv[0]!));
    expect(cmds.length).toBe(1 + burst.length);
    expect(lost.command).toBeGreaterThan(0);
    expect(burst.length + lost.command).toBe(N);
    expect(lost.disk + lost.network).toBe(0);
    // What was written is what the kernel gave first: a prefix of the burst, in order.
    expect(burst.map((e) => e.argv[0])).toEqual(Array.from({ length: burst.length }, (_, i) => `burst-${i}`));
    expect(await lsLost(dataDir, sid)).toBe(lost.command);
    console.log(`overload command: produced ${N + 1}, written ${cmds.length}, lost ${lost.command}`);
  });

  test("disk: 1000 opens of a 4000-byte path", async () => {
    const N = 1000;
    const long = `/nonexistent-${"p".repeat(180)}`.repeat(21).slice(0, 4000);
    const { events, lost, dataDir, sid } = await burstWhileRecorderStopped(
      "disk",
      `for ((i = 0; i < ${N}; i++)); do : < ${long}; done`,
    );
    const burst = ofType(events, "session.disk").filter((e) => e.path === long);
    expect(lost.disk).toBeGreaterThan(0);
    expect(burst.length + lost.disk).toBe(N);
    expect(lost.command + lost.network).toBe(0);
    expect(await lsLost(dataDir, sid)).toBe(lost.disk);
    console.log(`overload disk: produced ${N} in the burst, written ${burst.length}, lost ${lost.disk}`);
  });

  test("network: 4000 connects", async () => {
    const N = 4000;
    const { events, lost, dataDir, sid } = await burstWhileRecorderStopped(
      "network",
      `for ((i = 0; i < ${N}; i++)); do : 3<>/dev/tcp/127.0.0.1/9; done`,
    );
    const net = ofType(events, "session.network");
    expect(net.every((e) => e.dst_port === 9)).toBe(true);
    expect(lost.network).toBeGreaterThan(0);
    expect(net.length + lost.network).toBe(N);
    expect(lost.command + lost.disk).toBe(0);
    expect(await lsLost(dataDir, sid)).toBe(lost.network);
    console.log(`overload network: produced ${N}, written ${net.length}, lost ${lost.network}`);
  });
});
