/**
 * Concurrency: many recorders on one host at once. Every session gets its own events and only
 * those; recorders with different cgroup roots never touch each other's slices or mounts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireRootAndEsr, startRecording, waitFor } from "../support/adversary.ts";
import { ofType, record, replayEvents, tempDir } from "../support/harness.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

beforeAll(requireRootAndEsr);

const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      // best effort
    }
  }
});

/** Removes an (empty) cgroup directory if it is there. */
function rmdirQuiet(path: string) {
  if (existsSync(path)) rmdirSync(path);
}

function configFile(rootPath: string, cgroupPath = "/cgroup2"): string {
  const file = join(tempDir(), "esr.yaml");
  writeFileSync(
    file,
    `ssh_service:\n  enhanced_recording:\n    cgroup_path: ${cgroupPath}\n    root_path: ${rootPath}\n`,
  );
  return file;
}

test("20 sessions at once: each has all of its own events and none of the others'", async () => {
  const SESSIONS = 20;
  const EXECS = 40;
  const dir = tempDir();
  const go = join(dir, "go");
  const dataDir = tempDir();
  // Each session waits for the others to be recording, then runs its markers: execs and opens.
  const recs = await Promise.all(
    Array.from({ length: SESSIONS }, (_, k) =>
      startRecording([
        "--data-dir",
        dataDir,
        "--events",
        "command,disk,network",
        "--",
        "bash",
        "-c",
        `while [ ! -e ${go} ]; do sleep 0.02; done; for i in $(seq 1 ${EXECS}); do /bin/echo conc-${k}-$i >/dev/null; : < ${dir}/open-${k}-$i; done 2>/dev/null; (: 3<>/dev/tcp/127.0.0.1/${2000 + k}) 2>/dev/null; exit 0`,
      ]),
    ),
  );
  writeFileSync(go, "");
  const codes = await Promise.all(recs.map((r) => r.proc.exited));
  const problems: string[] = [];
  for (const [k, r] of recs.entries()) {
    if (codes[k] !== 0) problems.push(`session ${k}: esr exited ${codes[k]}: ${await r.stderr()}`);
    const events = await replayEvents(dataDir, r.sid);
    if (!events.every((e) => e.event === "print" || e.sid === r.sid))
      problems.push(`session ${k}: an event of another session`);
    const markers = ofType(events, "session.command")
      .map((e) => e.argv[0])
      .filter((a) => a?.startsWith("conc-"));
    if (JSON.stringify(markers) !== JSON.stringify(Array.from({ length: EXECS }, (_, i) => `conc-${k}-${i + 1}`)))
      problems.push(`session ${k}: exec markers ${JSON.stringify(markers)}`);
    const opens = ofType(events, "session.disk")
      .map((e) => e.path)
      .filter((p) => p.includes("/open-"));
    if (JSON.stringify(opens) !== JSON.stringify(Array.from({ length: EXECS }, (_, i) => `${dir}/open-${k}-${i + 1}`)))
      problems.push(`session ${k}: open markers ${JSON.stringify(opens)}`);
    const ports = ofType(events, "session.network").map((e) => e.dst_port);
    if (JSON.stringify(ports) !== JSON.stringify([2000 + k]))
      problems.push(`session ${k}: connects to ${JSON.stringify(ports)}`);
    const lost = ofType(events, "session.end")[0]?.lost_events;
    if (JSON.stringify(lost) !== JSON.stringify({ command: 0, disk: 0, network: 0 }))
      problems.push(`session ${k}: lost ${JSON.stringify(lost)}`);
  }
  expect(problems).toEqual([]);
});

describe("recorders with different root_path values", () => {
  test("a recorder never removes another's live slices, even when one root_path is inside the other", async () => {
    const outer = `/esr-test-outer-${process.pid}`;
    const inner = `${outer}/inner`;
    cleanups.push(() => rmdirQuiet(`/cgroup2${outer}`));
    const dataDir = tempDir();
    const dir = tempDir();
    const go = join(dir, "go");
    // B records under the inner root, and runs until told to go on.
    const b = await startRecording([
      "--config",
      configFile(inner),
      "--data-dir",
      dataDir,
      "--events",
      "command",
      "--",
      "bash",
      "-c",
      `while [ ! -e ${go} ]; do sleep 0.02; done; /bin/echo inner-marker`,
    ]);
    const bSlice = `/cgroup2${inner}/${b.sid}`;
    expect(existsSync(bSlice)).toBe(true);
    // A starts under the outer root (it cleans dead recorders' slices there first) and records too.
    const a = await record(["/bin/echo", "outer-marker"], {
      flags: ["--config", configFile(outer), "--events", "command"],
      dataDir,
    });
    expect(a.exitCode).toBe(0);
    expect(existsSync(bSlice)).toBe(true);
    writeFileSync(go, "");
    expect(await b.proc.exited).toBe(0);
    const bEvents = await replayEvents(dataDir, b.sid);
    expect(ofType(bEvents, "session.command").some((e) => e.argv[0] === "inner-marker")).toBe(true);
    expect(ofType(await replayEvents(dataDir, a.sid), "session.command").map((e) => e.argv)).toEqual([
      ["outer-marker"],
    ]);
    rmdirQuiet(`/cgroup2${inner}`);
  });

  test("two recorders with sibling roots record at the same time, each only its own", async () => {
    const dataDir = tempDir();
    const roots = [`/esr-test-a-${process.pid}`, `/esr-test-b-${process.pid}`];
    for (const r of roots) cleanups.push(() => rmdirQuiet(`/cgroup2${r}`));
    const [a, b] = await Promise.all(
      roots.map((root, i) =>
        record(["bash", "-c", `for i in $(seq 1 50); do /bin/echo root-${i}-$i; done >/dev/null`], {
          flags: ["--config", configFile(root), "--events", "command"],
          dataDir,
        }),
      ),
    );
    for (const [i, r] of [a!, b!].entries()) {
      const args = ofType(await replayEvents(dataDir, r.sid), "session.command")
        .map((e) => e.argv[0])
        .filter((x) => x?.startsWith("root-"));
      expect(args).toEqual(Array.from({ length: 50 }, (_, n) => `root-${i}-${n + 1}`));
    }
  });

  test("two recorders that both find cgroup_path unmounted: both record, neither unmounts the other's", async () => {
    const cgroupPath = join(tempDir(), "cg");
    mkdirSync(cgroupPath);
    cleanups.push(() => {
      for (let i = 0; i < 4 && readFileSync("/proc/self/mountinfo", "utf8").includes(` ${cgroupPath} `); i++)
        Bun.spawnSync(["umount", cgroupPath]);
    });
    const config = configFile("/esr-test-mount", cgroupPath);
    cleanups.push(() => rmdirQuiet("/cgroup2/esr-test-mount"));
    const dataDir = tempDir();
    const dir = tempDir();
    const go = join(dir, "go");
    const first = await startRecording([
      "--config",
      config,
      "--data-dir",
      dataDir,
      "--events",
      "command",
      "--",
      "bash",
      "-c",
      `while [ ! -e ${go} ]; do sleep 0.02; done; /bin/echo first-marker`,
    ]);
    const second = await record(["/bin/echo", "second-marker"], {
      flags: ["--config", config, "--events", "command"],
      dataDir,
    });
    expect(second.exitCode).toBe(0);
    await waitFor("the first session's slice", () => existsSync(join(cgroupPath, "esr-test-mount", first.sid)));
    writeFileSync(go, "");
    expect(await first.proc.exited).toBe(0);
    expect(
      ofType(await replayEvents(dataDir, first.sid), "session.command").some((e) => e.argv[0] === "first-marker"),
    ).toBe(true);
    expect(ofType(await replayEvents(dataDir, second.sid), "session.command").map((e) => e.argv)).toEqual([
      ["second-marker"],
    ]);
    // esr mounts cgroup2 where nothing is, and never unmounts: the mount is still there, once.
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.split(" ")[4] === cgroupPath);
    expect(mounts.length).toBe(1);
  });
});
