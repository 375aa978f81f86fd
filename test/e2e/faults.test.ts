/**
 * Faults: the recorder killed at random points, the disk filling up, a read-only data dir, the
 * session's own user going after the recorder, and a long session's memory. Real mounts (tmpfs),
 * real signals, the real executable.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { evade, procState, requireRootAndEsr, rssKiB, startRecording, waitFor } from "../support/adversary.ts";
import { ESR, execLines, ofType, record, replayEvents, runEsr, sessionsDir, tempDir } from "../support/harness.ts";
import { sessionFilePath } from "../support/pty-session.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

let EVADE: string;
const mounts: string[] = [];

beforeAll(() => {
  requireRootAndEsr();
  EVADE = evade();
});

afterAll(() => {
  for (const m of mounts.reverse()) Bun.spawnSync(["umount", "-l", m]);
});

function tmpfs(opts: string): string {
  const dir = tempDir("esr-tmpfs-");
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`cannot mount a tmpfs (${opts}) at ${dir}: ${r.stderr}`);
  mounts.push(dir);
  return dir;
}

function oneLine(stderr: string): string {
  const lines = stderr
    .trimEnd()
    .split("\n")
    .filter((l) => !/^esr: session [0-9a-f-]{36}$/.test(l) && !/recording what it left running/.test(l));
  expect(lines.length).toBe(1);
  expect(lines[0]).toMatch(/^esr: /);
  return lines[0]!;
}

/** Pids of processes whose command line contains `marker`, other than this test's. */
function pidsWith(marker: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe("the recorder killed with SIGKILL at random points", () => {
  // Deterministic "random" points, from right after start to well into the session.
  const delays = [5, 40, 180, 650, 1300, 2200];
  for (const delay of delays) {
    test(`after ${delay} ms: files readable, at most 1 s of events lost, the next run cleans the slice`, async () => {
      const dataDir = tempDir();
      const marker = `killed-at-${delay}-${process.pid}`;
      // Each tick carries the time the shell started it, in µs (bash's EPOCHREALTIME).
      // stderr to a file: the session's processes inherit it and outlive the recorder. Each tick
      // notes the time it starts (µs, bash's EPOCHREALTIME) in a file of its own, then execs.
      const errFile = join(tempDir(), "stderr");
      const tickLog = join(tempDir(), "ticks");
      const proc = Bun.spawn(
        [
          ESR,
          "record",
          "--data-dir",
          dataDir,
          "--events",
          "command",
          "--",
          "bash",
          "-c",
          `for i in $(seq 1 100000); do t=\${EPOCHREALTIME/./}; echo $t >> ${tickLog}; /bin/true ${marker} $t; sleep 0.01; done`,
        ],
        { stderr: Bun.file(errFile) },
      );
      await Bun.sleep(delay);
      const killedAtUs = Date.now() * 1000;
      proc.kill("SIGKILL");
      await proc.exited;
      const stderr = readFileSync(errFile, "utf8");
      const sid = /esr: session ([0-9a-f-]{36})/.exec(stderr)?.[1];

      if (sid) {
        // Files are readable: every .gz through zcat, the session through esr replay.
        for (const f of readdirSync(sessionsDir(dataDir)).filter((n) => n.endsWith(".gz"))) {
          expect(Bun.spawnSync(["zcat", join(sessionsDir(dataDir), f)]).exitCode).toBe(0);
        }
        const events = await replayEvents(dataDir, sid);
        expect(events[0]!.event).toBe("session.start");
        expect(readFileSync(join(dataDir, "log", "events.log"), "utf8")).toContain(sid);
        // At most the last second before the kill is lost: every tick started earlier is written.
        const written = new Set(
          ofType(events, "session.command")
            .filter((e) => e.argv[0] === marker)
            .map((e) => e.argv[1]),
        );
        const started = existsSync(tickLog) ? readFileSync(tickLog, "utf8").split("\n").filter(Boolean) : [];
        const old = started.filter((t) => Number(t) < killedAtUs - 1_000_000);
        expect(old.filter((t) => !written.has(t))).toEqual([]);
        if (delay >= 2000) expect(old.length).toBeGreaterThan(10);
      }
      // The session's processes outlived the recorder, unrecorded; the next esr run removes them.
      await Bun.sleep(50);
      const next = await record(["true"], { flags: ["--events", "command"] });
      expect(next.exitCode).toBe(0);
      await waitFor("the killed session's processes to be gone", () => pidsWith(marker).length === 0, 5000);
      if (sid) expect(existsSync(`/cgroup2/esr/${sid}`)).toBe(false);
    });
  }
});

describe("disk full while recording", () => {
  test("a clear error, the command is killed, and what was written stays readable", async () => {
    const mnt = tmpfs("size=1m");
    const dataDir = join(mnt, "data");
    const marker = `disk-full-${process.pid}`;
    const r = await runEsr([
      "record",
      "--data-dir",
      dataDir,
      "--events",
      "command",
      "--",
      // Incompressible 27 KiB arguments fill 1 MiB in a few dozen execs; a sleeper would outlive it.
      "bash",
      "-c",
      `big=$(head -c 20000 /dev/urandom | base64 -w0); (exec -a ${marker} sleep 60) & for i in $(seq 1 2000); do /bin/true $big; done; /bin/echo never-reached`,
    ]);
    expect(r.exitCode).not.toBe(0);
    const line = oneLine(r.stderr);
    expect(line).toMatch(/cannot write the recording in .*: ENOSPC: no space left on device.*processes were killed/);
    // Nothing of the session runs on unrecorded.
    await waitFor("the session's processes to be gone", () => pidsWith(marker).length === 0, 5000);
    const sid = /esr: session ([0-9a-f-]{36})/.exec(r.stderr)![1]!;
    const replay = await runEsr(["replay", sid, "--data-dir", dataDir]);
    expect([0, 3]).toContain(replay.exitCode);
    expect(/ start +login=root/.test(replay.stdout)).toBe(true);
    expect(replay.stdout.includes("exec     /usr/bin/head -c 20000 /dev/urandom")).toBe(true);
    expect(/exec +\/bin\/echo never-reached/.test(replay.stdout)).toBe(false);
    expect((await runEsr(["ls", "--data-dir", dataDir])).stdout).toContain(sid);
  });

  test("a data dir already full: the command does not run", async () => {
    const mnt = tmpfs("size=64k");
    writeFileSync(join(mnt, "filler"), Buffer.alloc(60 * 1024));
    const out = join(tempDir(), "ran");
    const r = await runEsr(["record", "--data-dir", join(mnt, "data"), "--events", "command", "--", "touch", out]);
    expect(r.exitCode).not.toBe(0);
    expect(oneLine(r.stderr)).toMatch(/no space left on device/i);
    expect(existsSync(out)).toBe(false);
  });
});

describe("a read-only data dir", () => {
  test("record fails with one line before running anything; ls and replay still read it", async () => {
    const mnt = tmpfs("size=8m");
    const dataDir = join(mnt, "data");
    const first = await record(["/bin/echo", "before-ro"], { flags: ["--events", "command"], dataDir });
    expect(first.exitCode).toBe(0);
    expect(Bun.spawnSync(["mount", "-o", "remount,ro", mnt]).exitCode).toBe(0);
    const out = join(tempDir(), "ran");
    const r = await runEsr(["record", "--data-dir", dataDir, "--events", "command", "--", "touch", out]);
    expect(r.exitCode).not.toBe(0);
    expect(oneLine(r.stderr)).toMatch(/read-only file system/i);
    expect(existsSync(out)).toBe(false);
    expect(execLines(await replayEvents(dataDir, first.sid))).toEqual(["/bin/echo before-ro"]);
    const ls = await runEsr(["ls", "--data-dir", dataDir]);
    expect(ls.exitCode).toBe(0);
    expect(ls.stdout).toContain(first.sid);
  });
});

describe("the session's user against the recorder", () => {
  test("as --login nobody: cannot kill, stop, ptrace or read the recorder, and all of it is recorded", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const r = await record(
      [
        "bash",
        "-c",
        `for s in KILL STOP TERM; do kill -$s $PPID 2>>${dir}/out; echo "kill $s: $?" >> ${dir}/out; done; ${EVADE} ptrace $PPID >> ${dir}/out; ${EVADE} readmem $PPID >> ${dir}/out; cat /proc/$PPID/environ > /dev/null 2>>${dir}/out || echo "environ: denied" >> ${dir}/out; /bin/echo still-recorded`,
      ],
      { flags: ["--events", "command", "--login", "nobody"] },
    );
    expect(r.exitCode).toBe(0);
    const out = readFileSync(join(dir, "out"), "utf8");
    expect(out).toContain("kill KILL: 1");
    expect(out).toContain("kill STOP: 1");
    expect(out).toContain("kill TERM: 1");
    expect(out).toContain("ptrace: EPERM");
    expect(out).toMatch(/readmem: E(ACCES|PERM)/);
    expect(out).toContain("environ: denied");
    const execs = execLines(await replayEvents(r.dataDir, r.sid));
    expect(execs.some((l) => / ptrace \d+$/.test(l))).toBe(true);
    expect(execs).toContain("/bin/echo still-recorded");
  });

  test("a stopped-and-continued recorder (SIGSTOP by root) loses nothing while its ring has room", async () => {
    const dataDir = tempDir();
    const rec = await startRecording([
      "--data-dir",
      dataDir,
      "--events",
      "command",
      "--",
      "bash",
      "-c",
      "sleep 0.3; for i in $(seq 1 20); do /bin/echo paused-$i; done >/dev/null; sleep 0.5",
    ]);
    process.kill(rec.proc.pid, "SIGSTOP");
    await waitFor("the recorder to stop", () => procState(rec.proc.pid) === "T");
    await Bun.sleep(600);
    process.kill(rec.proc.pid, "SIGCONT");
    expect(await rec.proc.exited).toBe(0);
    const events = await replayEvents(dataDir, rec.sid);
    expect(execLines(events).filter((l) => l.startsWith("/bin/echo paused-")).length).toBe(20);
    expect(ofType(events, "session.end")[0]!.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  });
});

describe("a long session", () => {
  test("recorder memory does not grow under a fast exec loop (shortened; scripts/soak.ts runs for hours)", async () => {
    const SECONDS = 16;
    const dataDir = tempDir();
    const rec = await startRecording([
      "--data-dir",
      dataDir,
      "--events",
      "command,disk,network",
      "--",
      EVADE,
      "execstorm",
      String(SECONDS),
      "/bin/true",
    ]);
    const samples: number[] = [];
    for (let s = 0; s < SECONDS; s++) {
      await Bun.sleep(1000);
      const kib = rssKiB(rec.proc.pid);
      if (kib !== undefined) samples.push(kib);
    }
    expect(await rec.proc.exited).toBe(0);
    const execs = Number(/execs (\d+)/.exec(await rec.stdout())![1]);
    const early = Math.max(...samples.slice(3, 6));
    const late = Math.max(...samples.slice(-3));
    console.log(
      `soak (short): ${execs} execs in ${SECONDS} s (${(execs / SECONDS).toFixed(0)}/s); recorder RSS ${(early / 1024).toFixed(1)} MiB at 4-6 s, ${(late / 1024).toFixed(1)} MiB at the end`,
    );
    expect(execs).toBeGreaterThan(SECONDS * 20);
    expect(late - early).toBeLessThan(16 * 1024);
    const end = ofType(await replayEvents(dataDir, rec.sid), "session.end")[0]!;
    expect(end.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  });
});

describe("a long session's recording", () => {
  test("1.1 million events in one file: replay and ls read it (they used to overflow the stack)", async () => {
    const r = await record(["true"], { flags: ["--events", "command"] });
    const N = 1_100_000;
    const lines: string[] = [];
    for (let i = 0; i < N; i++)
      lines.push(
        `{"argv":["x${i}"],"code":"T4000I","ei":${i + 2},"event":"session.command","path":"/bin/true","pid":1,"sid":"${r.sid}"}\n`,
      );
    writeFileSync(sessionFilePath(r.dataDir, r.sid, "session.command"), Bun.gzipSync(Buffer.from(lines.join(""))));
    const replay = Bun.spawnSync([ESR, "replay", r.sid, "--data-dir", r.dataDir, "--format", "json"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    // The file was rewritten behind the recorder's back: replay reads it all and says the chain breaks.
    expect(replay.stderr.toString()).toMatch(
      /^esr: verify: broken: verified up to item \d+; item \d+ \(session\.command ei \d+\)/,
    );
    expect(replay.exitCode).toBe(0);
    // and the session's own: session.start, exec, session.end
    expect(replay.stdout.toString().split("\n").filter(Boolean).length).toBe(N + 3);
    const ls = await runEsr(["ls", "--data-dir", r.dataDir, "--json"]);
    expect(ls.exitCode).toBe(0);
    expect(JSON.parse(ls.stdout).counts.command).toBe(N);
  });
});
