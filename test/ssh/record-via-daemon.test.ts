/**
 * `esr record` handing its session's kernel side to a running `esr daemon` (lib/ssh/daemon-tracer.ts,
 * lib/ssh/recorder-sessions.ts): a real daemon, real `dist/esr record`s, real BPF. The recorder
 * writes its session as before; the daemon's one program set records it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { daemonSetup, removeSlicesParent, TestDaemon, type DaemonSetup } from "../support/daemon-harness.ts";
import { ESR, ofType, replayEvents, runEsr, tempDir } from "../support/harness.ts";
import type { AuditEvent } from "../../lib/events/audit-events.ts";

setDefaultTimeout(60_000);

const ALL_KINDS_ROLE = `kind: role
version: v5
metadata:
  name: everything
spec:
  options:
    enhanced_recording: [command, disk, network]
`;

let setup: DaemonSetup;
let daemon: TestDaemon;
let listener: Bun.TCPSocketListener;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
  listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  setup = daemonSetup(ALL_KINDS_ROLE);
  daemon = await TestDaemon.start(setup);
});

afterAll(async () => {
  await daemon?.stop();
  listener?.stop(true);
  if (setup) removeSlicesParent(setup);
});

/** `esr record` with the daemon's config (same root_path), its socket unless `socket` says otherwise. */
function recordArgs(dataDir: string, command: string[], flags: string[] = [], socket = setup.socket): string[] {
  return [
    "record",
    "--config",
    setup.configFile,
    "--data-dir",
    dataDir,
    "--socket",
    socket,
    ...flags,
    "--",
    ...command,
  ];
}

async function recordVia(command: string[], flags: string[] = [], socket?: string) {
  const dataDir = tempDir();
  const from = daemon.log.length;
  const r = await runEsr(recordArgs(dataDir, command, flags, socket));
  const sid = r.stderr.match(/esr: session ([0-9a-f-]{36})/)?.[1];
  if (!sid) throw new Error(`no session id in: ${r.stderr}`);
  return { ...r, sid, dataDir, daemonLog: daemon.log.slice(from) };
}

/** Whether a pid names a live process (not a zombie). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The ids of the host's BPF programs and links, as bpftool lists them. */
async function bpfIds(): Promise<{ progs: number[]; links: number[] }> {
  const ids = async (what: string) =>
    (JSON.parse(await Bun.$`bpftool --json ${what} list`.quiet().text()) as { id: number }[]).map((o) => o.id);
  return { progs: await ids("prog"), links: await ids("link") };
}

/** The BPF programs and links a process holds (its fds, the kernel's fdinfo). */
function heldBpf(pid: number): { progs: number[]; links: number[] } {
  const held = { progs: [] as number[], links: [] as number[] };
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let info: string;
    try {
      if (!readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("anon_inode:bpf")) continue;
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      continue;
    }
    const link = info.match(/^link_id:\s+(\d+)/m);
    const prog = info.match(/^prog_id:\s+(\d+)/m);
    if (link) held.links.push(Number(link[1]));
    else if (prog) held.progs.push(Number(prog[1]));
  }
  return held;
}

/** Waits until the daemon has logged `count` sessions of recorders since `from`. */
function waitForRecorders(d: TestDaemon, count: number, from: number) {
  const started = () => [...d.log.slice(from).matchAll(/^esr daemon: recording \//gm)].length;
  return waitFor(`${count} recorders' sessions in the daemon's log`, () => started() >= count, 20_000);
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

/** A session's enhanced events without what differs between two runs of the same command. */
function comparable(events: AuditEvent[]): string[] {
  const varying = new Set(["sid", "time", "uid", "ei", "pid", "ppid", "cgroup_id", "server_id", "src_addr"]);
  return events
    .filter((e) => ["session.command", "session.disk", "session.network"].includes(e.event))
    .map((e) => JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !varying.has(k)))))
    .sort();
}

describe("esr record through a running daemon", () => {
  test("records through the daemon's programs, and the events are those of a standalone recording", async () => {
    const script = `cat /etc/hostname >/dev/null; ls /nonexistent-dir 2>/dev/null; /bin/echo via-daemon-marker; exec 3<>/dev/tcp/127.0.0.1/${listener.port}`;
    const via = await recordVia(["bash", "-c", script], ["--events", "command,disk,network"]);
    expect(via.exitCode).toBe(0);
    // One line: the session id. A daemon that records it is no news.
    expect(via.stderr).toBe(`esr: session ${via.sid}\n`);
    expect(via.stdout).toBe("via-daemon-marker\n");
    expect(via.daemonLog).toMatch(new RegExp(`recording /cgroup2${setup.rootPath}/${via.sid} for esr record pid \\d+`));
    expect(via.daemonLog).toMatch(/stopped recording .* \(lost events: command 0, disk 0, network 0\)/);

    const alone = await recordVia(["bash", "-c", script], ["--events", "command,disk,network", "--no-daemon"]);
    expect(alone.exitCode).toBe(0);
    expect(alone.daemonLog).toBe("");

    const viaEvents = await replayEvents(via.dataDir, via.sid);
    const aloneEvents = await replayEvents(alone.dataDir, alone.sid);
    for (const type of ["session.command", "session.disk", "session.network"] as const)
      expect(ofType(viaEvents, type).length).toBeGreaterThan(0);
    expect(comparable(viaEvents)).toEqual(comparable(aloneEvents));
    expect(ofType(viaEvents, "session.end")[0]!.enhanced_recording).toBe(true);
    // Its files and chain are the recorder's own, as before.
    const verify = await runEsr(["verify", via.sid, "--data-dir", via.dataDir]);
    expect(verify.exitCode).toBe(0);
    expect(verify.stdout).toMatch(/ whole /);
  });

  test("10 concurrent recorders attach no program of their own", async () => {
    const before = await bpfIds();
    const dataDir = tempDir();
    const from = daemon.log.length;
    const recorders = Array.from({ length: 10 }, (_, i) =>
      Bun.spawn([ESR, ...recordArgs(dataDir, ["sh", "-c", `/bin/echo concurrent-${i}; sleep 3`])], {
        stdout: "pipe",
        stderr: "pipe",
      }),
    );
    await waitForRecorders(daemon, 10, from);
    const during = await bpfIds();
    // The daemon's programs, and nothing more of esr's: a recorder holds no BPF program or link, and
    // whatever bpftool lists now that it did not before belongs to some other process of the host.
    const daemonHolds = heldBpf(daemon.proc.pid);
    expect(daemonHolds.links.length).toBeGreaterThan(0);
    for (const id of daemonHolds.links) expect(before.links).toContain(id);
    const recordersHold = recorders.map((p) => heldBpf(p.pid));
    expect(recordersHold).toEqual(Array(10).fill({ progs: [], links: [] }));
    const grown = during.links.filter((id) => !before.links.includes(id));
    const grownProgs = during.progs.filter((id) => !before.progs.includes(id));
    if (grown.length || grownProgs.length)
      console.error(
        `bpftool: ${grown.length} links and ${grownProgs.length} programs were added meanwhile, by other processes`,
      );
    const codes = await Promise.all(recorders.map((p) => p.exited));
    expect(codes).toEqual(Array(10).fill(0));
    const sids = await Promise.all(
      recorders.map(async (p) => (await new Response(p.stderr).text()).match(/session ([0-9a-f-]{36})/)![1]!),
    );
    for (const [i, sid] of sids.entries()) {
      const execs = ofType(await replayEvents(dataDir, sid), "session.command").map((e) => e.argv.join(" "));
      expect(execs).toContain(`concurrent-${i}`);
      expect(execs.filter((a) => a.startsWith("concurrent-"))).toEqual([`concurrent-${i}`]);
    }
  });

  for (const [signal, why] of [
    ["SIGKILL", "it closed the connection"],
    ["SIGTERM", "esr daemon stopped"],
  ] as const)
    test(`a daemon ${signal}ed mid-session fails the session: one line, its processes killed, its files verify`, async () => {
      const own = daemonSetup(ALL_KINDS_ROLE);
      const doomed = await TestDaemon.start(own);
      const dataDir = tempDir();
      const pidFile = join(tempDir(), "pid");
      const proc = Bun.spawn(
        [
          ESR,
          "record",
          "--config",
          own.configFile,
          "--data-dir",
          dataDir,
          "--socket",
          own.socket,
          "--",
          "sh",
          "-c",
          `/bin/echo before-the-kill; sleep 60 & echo $! > ${pidFile}; wait`,
        ],
        { stdout: "pipe", stderr: "pipe" },
      );
      try {
        await doomed.waitForLog(/recording \/cgroup2\S+ for esr record pid/);
        await waitFor("the session's sleep", () => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n"));
        const sleeper = Number(readFileSync(pidFile, "utf8"));
        expect(running(sleeper)).toBe(true);
        await Bun.sleep(600); // a flush: what was recorded so far is on disk
        await doomed.stop(signal);
        const code = await proc.exited;
        const stderr = await new Response(proc.stderr).text();
        expect(code).not.toBe(0);
        const lines = stderr.trimEnd().split("\n");
        expect(lines[0]).toMatch(/^esr: session [0-9a-f-]{36}$/);
        expect(lines.slice(1)).toEqual([
          expect.stringMatching(
            new RegExp(
              `^esr: the esr daemon at \\S+ stopped recording the session \\(${why}\\); its processes were killed so that nothing runs unrecorded$`,
            ),
          ),
        ]);
        expect(running(sleeper)).toBe(false);
        const sid = lines[0]!.split(" ")[2]!;
        const execs = ofType(await replayEvents(dataDir, sid), "session.command").map((e) => e.argv.join(" "));
        expect(execs).toContain("before-the-kill");
        const verify = await runEsr(["verify", sid, "--data-dir", dataDir]);
        expect(verify.exitCode).toBe(0);
      } finally {
        proc.kill("SIGKILL");
        if (doomed.proc.exitCode === null) await doomed.stop("SIGKILL");
        // The next daemon removes the slices the killed one could not.
        const next = await TestDaemon.start(own);
        await next.stop();
        removeSlicesParent(own);
      }
    });

  test("a recorder SIGKILLed: the daemon drops its session and kills what ran in it; other sessions go on", async () => {
    const dataDir = tempDir();
    const pidFile = join(tempDir(), "pid");
    const from = daemon.log.length;
    const victim = Bun.spawn([ESR, ...recordArgs(dataDir, ["sh", "-c", `sleep 60 & echo $! > ${pidFile}; wait`])], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const bystander = Bun.spawn([ESR, ...recordArgs(dataDir, ["sh", "-c", "sleep 2; /bin/echo bystander-after"])], {
      stdout: "pipe",
      stderr: "pipe",
    });
    await waitForRecorders(daemon, 2, from);
    await waitFor("the victim's sleep", () => existsSync(pidFile) && readFileSync(pidFile, "utf8").endsWith("\n"));
    const sleeper = Number(readFileSync(pidFile, "utf8"));
    victim.kill("SIGKILL");
    await victim.exited;
    const m = await daemon.waitForLog(
      new RegExp(`killed what ran in (\\S+): its esr record \\(pid ${victim.pid}\\) went away`),
      10_000,
      from,
    );
    await waitFor("the victim's sleep to die", () => !running(sleeper));
    expect(existsSync(join(m[1]!, "cgroup.procs")) ? readFileSync(join(m[1]!, "cgroup.procs"), "utf8") : "").toBe("");
    // The bystander is recorded to its end.
    expect(await bystander.exited).toBe(0);
    const sid = (await new Response(bystander.stderr).text()).match(/session ([0-9a-f-]{36})/)![1]!;
    const events = await replayEvents(dataDir, sid);
    expect(ofType(events, "session.command").map((e) => e.argv.join(" "))).toContain("bystander-after");
    expect(ofType(events, "session.end")[0]!.enhanced_recording).toBe(true);
    // The daemon still records new sessions.
    const after = await recordVia(["/bin/echo", "after-the-victim"], ["--events", "command"]);
    expect(after.exitCode).toBe(0);
    expect(after.daemonLog).toMatch(/recording /);
  });

  test("a stopped recorder holds up no other session; what it could not take is counted as lost, exactly", async () => {
    const N = 200_000;
    const dir = tempDir();
    const go = join(dir, "go");
    const dataDir = tempDir();
    const from = daemon.log.length;
    // Its opens before the go are written; after it, only /etc/hostname is opened, N times.
    const storm = `select(undef, undef, undef, 0.02) until -e $ARGV[0]; for (1..${N}) { open(my $f, "<", "/etc/hostname"); close $f } print "done\\n"`;
    const slow = Bun.spawn([ESR, ...recordArgs(dataDir, ["perl", "-e", storm, go], ["--events", "command,disk"])], {
      stdout: "pipe",
      stderr: "pipe",
    });
    await waitForRecorders(daemon, 1, from);
    await Bun.sleep(500);
    slow.kill("SIGSTOP");
    try {
      await Bun.write(go, "");
      // Meanwhile another recorder's session is recorded whole, while the first one reads nothing.
      const other = await recordVia(
        ["sh", "-c", "for i in $(seq 30); do /bin/echo other-$i; done"],
        ["--events", "command,disk"],
      );
      expect(other.exitCode).toBe(0);
      const otherEvents = await replayEvents(other.dataDir, other.sid);
      expect(ofType(otherEvents, "session.command").filter((e) => e.argv[0]?.startsWith("other-"))).toHaveLength(30);
      expect(ofType(otherEvents, "session.end")[0]!.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
      const reader = slow.stdout.getReader();
      let out = "";
      while (!out.includes("done")) {
        const { value, done } = await reader.read();
        if (done) break;
        out += new TextDecoder().decode(value);
      }
      reader.releaseLock();
    } finally {
      slow.kill("SIGCONT");
    }
    expect(await slow.exited).toBe(0);
    const sid = (await new Response(slow.stderr).text()).match(/session ([0-9a-f-]{36})/)![1]!;
    const events = await replayEvents(dataDir, sid);
    const written = ofType(events, "session.disk").filter((e) => e.path === "/etc/hostname").length;
    const lost = ofType(events, "session.end")[0]!.lost_events;
    expect(lost.disk).toBeGreaterThan(0);
    expect(written).toBeGreaterThan(0);
    expect(written + lost.disk).toBe(N);
  });

  test("a record request from a non-root peer is refused", async () => {
    const dir = tempDir();
    const client = join(dir, "client.ts");
    await Bun.write(
      client,
      `const s = await Bun.connect({ unix: process.argv[2], socket: { data(_s, d) { process.stdout.write(d); }, close() { process.exit(0); } } });
s.write(JSON.stringify({ type: "record", slices: "/cgroup2${setup.rootPath}", kinds: ["command"], ignorePathPrefixes: [] }) + "\\n");`,
    );
    chmodSync(dir, 0o755);
    chmodSync(client, 0o644);
    for (const p of [setup.dir, join(setup.dir, "run")]) chmodSync(p, 0o755);
    chmodSync(setup.socket, 0o666);
    try {
      const out =
        await Bun.$`setpriv --reuid=65534 --regid=65534 --clear-groups ${process.execPath} ${client} ${setup.socket}`
          .quiet()
          .nothrow();
      expect(out.stdout.toString()).toMatch(/^\{"ok":false,"error":"caller uid 65534 \(pid \d+\) is not root"\}\n$/);
    } finally {
      chmodSync(setup.socket, 0o600);
      for (const p of [join(setup.dir, "run"), setup.dir]) chmodSync(p, 0o700);
    }
    expect(daemon.log).not.toMatch(/for esr record pid \d+ \(uid/);
  });
});

describe("esr record without the daemon", () => {
  test("no daemon listening: programs of its own, and nothing said about it", async () => {
    const r = await recordVia(["/bin/echo", "no-daemon-here"], ["--events", "command"], join(tempDir(), "none.sock"));
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe(`esr: session ${r.sid}\n`);
    expect(r.daemonLog).toBe("");
    const execs = ofType(await replayEvents(r.dataDir, r.sid), "session.command").map((e) => e.argv.join(" "));
    expect(execs).toEqual(["no-daemon-here"]);
  });

  test("a daemon that cannot record what is asked: one line, and programs of its own", async () => {
    const narrow = daemonSetup(); // no role: the default kinds only, no disk
    const other = await TestDaemon.start(narrow);
    try {
      const dataDir = tempDir();
      const r = await runEsr([
        "record",
        "--config",
        narrow.configFile,
        "--data-dir",
        dataDir,
        "--socket",
        narrow.socket,
        "--events",
        "command,disk",
        "--",
        "cat",
        "/etc/hostname",
      ]);
      expect(r.exitCode).toBe(0);
      const lines = r.stderr.trimEnd().split("\n");
      expect(lines[0]).toBe(
        `esr: the esr daemon at ${narrow.socket} cannot record this session (it has no programs for disk events (no role of its config selects them)); loading programs of its own`,
      );
      expect(lines).toHaveLength(2);
      const sid = lines[1]!.match(/session ([0-9a-f-]{36})/)![1]!;
      const disk = ofType(await replayEvents(dataDir, sid), "session.disk").map((e) => e.path);
      expect(disk).toContain("/etc/hostname");
      // Another root_path than the daemon's: its programs do not watch there.
      const commandOnly = (config: string, socket: string) =>
        runEsr([
          "record",
          "--config",
          config,
          "--data-dir",
          dataDir,
          "--socket",
          socket,
          "--events",
          "command",
          "--",
          "true",
        ]);
      const elsewhere = await commandOnly(setup.configFile, narrow.socket);
      expect(elsewhere.exitCode).toBe(0);
      expect(elsewhere.stderr).toMatch(
        new RegExp(
          `^esr: the esr daemon at \\S+ cannot record this session \\(its sessions go to /cgroup2${narrow.rootPath}, not /cgroup2${setup.rootPath}\\); loading programs of its own\\n`,
        ),
      );
      // Another disk filter than the daemon's: its programs would filter what this config records.
      const filtered = tempDir();
      const filteredConfig = join(filtered, "esr.yaml");
      writeFileSync(
        filteredConfig,
        `${readFileSync(setup.configFile, "utf8").replace(/\n---\n[\s\S]*$/, "\n")}esr:\n  disk_filter:\n    ignore_path_prefixes: [/usr/lib/]\n`,
      );
      const unfiltered = await commandOnly(filteredConfig, setup.socket);
      expect(unfiltered.exitCode).toBe(0);
      expect(unfiltered.stderr).toMatch(
        /^esr: the esr daemon at \S+ cannot record this session \(its disk filter \(esr.disk_filter: none\) is not this recorder's \(\/usr\/lib\/\)\); loading programs of its own\n/,
      );
      expect(other.log).not.toMatch(/recording \//);
    } finally {
      await other.stop();
      removeSlicesParent(narrow);
    }
  });
});
