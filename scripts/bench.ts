#!/usr/bin/env bun
/**
 * esr's benchmark: every workload unrecorded and recorded, alternating A B A B in the same run,
 * with auditd as the reference users would pick instead. Prints medians, ratios against the
 * unrecorded baseline of the same run, events/s and lost events. Numbers only: nothing here fails
 * on timing.
 *
 *   bun scripts/bench.ts            full run (≈ 5–8 min on 2 cores)
 *   bun scripts/bench.ts --quick    a smoke run of every row (CI)
 *   bun scripts/bench.ts --no-auditd
 *   bun scripts/bench.ts --outside  only the rows of processes outside any session
 *
 * Recorders run with --no-daemon except in the rows that say they go through a daemon: a daemon
 * listening on the default socket would otherwise record them.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { attachFloorPrograms } from "./bench/floor.ts";

const ROOT = join(import.meta.dir, "..");
const ESR = join(ROOT, "dist", "esr");

const WORKLOAD = join(ROOT, "build", "bench-workload");
const MIXED = join(ROOT, "scripts", "bench", "mixed.sh");

const quick = process.argv.includes("--quick");
const withAuditd = !process.argv.includes("--no-auditd");
const outsideOnly = process.argv.includes("--outside");
const ROUNDS = quick ? 1 : 5;
const BENCH_USER = "esrbench";

const scale = (n: number) => (quick ? Math.max(1, Math.round(n / 20)) : n);

interface Sample {
  nsPerOp: number;
  /** CPU seconds of the recorder alone (esr's rusage minus the workload's own) */
  recorderCpu?: number;
  maxRssBytes?: number;
  sid?: string;
}

// ---------------------------------------------------------------------------------------------

function sh(cmd: string[], opts: { allowFail?: boolean; stderr?: boolean } = {}): string {
  const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0 && !opts.allowFail)
    throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  return (opts.stderr ? r.stderr : r.stdout).toString();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function parseWorkload(out: string): { nsPerOp: number; cpu: number } {
  const [, , ns, cpu] = out.trim().split("\n").pop()!.split(" ").map(Number);
  return { nsPerOp: ns!, cpu: cpu! };
}

function benchUid(): number {
  if (sh(["id", "-u", BENCH_USER], { allowFail: true }).trim() === "")
    sh(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", BENCH_USER]);
  return Number(sh(["id", "-u", BENCH_USER]).trim());
}

/** The workload as the bench user, not recorded. */
async function plain(args: string[]): Promise<Sample> {
  const out = sh(["setpriv", `--reuid=${BENCH_USER}`, `--regid=${BENCH_USER}`, "--init-groups", "--", ...args]);
  return { nsPerOp: parseWorkload(out).nsPerOp };
}

/**
 * The storm rows run the workload on CPU 1 and the recorder on CPU 0, recorded or not: on a host of
 * two CPUs the scheduler otherwise stacks them now and then, and the ratio would measure where the
 * scheduler put the recorder (whose CPU has rows of its own) more than what the recorded process pays.
 */
const PINNED = navigator.hardwareConcurrency >= 2;
const onWorkloadCpu = (args: string[]) => (PINNED ? ["taskset", "-c", "1", ...args] : args);

/** The workload as the bench user inside an esr session recording `events` (`pinned`: the recorder on CPU 0). */
async function recorded(
  args: string[],
  events: string,
  dataDir: string,
  flags: string[] = [],
  pinned = false,
): Promise<Sample> {
  const proc = Bun.spawn({
    cmd: [
      ...(pinned && PINNED ? ["taskset", "-c", "0"] : []),
      ESR,
      "record",
      "--no-daemon",
      "--data-dir",
      dataDir,
      "--events",
      events,
      "--login",
      BENCH_USER,
      ...flags,
      "--",
      ...args,
    ],
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  if (proc.exitCode !== 0) throw new Error(`esr record failed: ${err}`);
  const usage = proc.resourceUsage()!;
  const w = parseWorkload(out);
  const esrCpu = Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6;
  return {
    nsPerOp: w.nsPerOp,
    recorderCpu: Math.max(0, esrCpu - w.cpu),
    maxRssBytes: Number(usage.maxRSS),
    sid: /session (\S+)/.exec(err)?.[1],
  };
}

// auditd ----------------------------------------------------------------------------------------

const AUDIT_KEY = "esrbench";
let startedAuditd = false;

/** Audit costs every process of the host once enabled: leave it as the run found it. */
function stopAuditd() {
  if (!startedAuditd) return;
  sh(["/sbin/auditctl", "-e", "0"], { allowFail: true });
  sh(["pkill", "-x", "auditd"], { allowFail: true });
}

function auditdReady(): string | undefined {
  if (!withAuditd) return "skipped (--no-auditd)";
  if (!existsSync("/sbin/auditctl")) {
    const r = Bun.spawnSync([
      "bash",
      "-c",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq auditd >/dev/null 2>&1",
    ]);
    if (r.exitCode !== 0) return "auditd could not be installed";
  }
  if (sh(["pgrep", "-x", "auditd"], { allowFail: true }).trim() === "") {
    sh(["/sbin/auditd"], { allowFail: true });
    startedAuditd = true;
  }
  sh(["/sbin/auditctl", "-e", "1"], { allowFail: true });
  const status = sh(["/sbin/auditctl", "-s"], { allowFail: true });
  return /enabled 1|enabled 2/.test(status) || /pid [1-9]/.test(status)
    ? undefined
    : `auditd did not start: ${status.trim()}`;
}

/** Runs `fn` with an audit rule for `syscalls`, scoped to the bench user (as close as auditd allows). */
async function withAuditRule<T>(syscalls: string[], uid: number, fn: () => Promise<T>): Promise<T> {
  const rule = [
    "-a",
    "always,exit",
    "-F",
    "arch=b64",
    ...syscalls.flatMap((s) => ["-S", s]),
    "-F",
    `uid=${uid}`,
    "-k",
    AUDIT_KEY,
  ];
  sh(["/sbin/auditctl", ...rule]);
  try {
    return await fn();
  } finally {
    sh(["/sbin/auditctl", "-d", ...rule.slice(1)], { allowFail: true });
  }
}

// one esr daemon, its logins, and esr record sessions through it ---------------------------------

/** An `esr daemon` of its own (socket, config with a role recording all three kinds, root_path). */
class BenchDaemon {
  private constructor(
    private readonly proc: ReturnType<typeof Bun.spawn>,
    readonly config: string,
    readonly socket: string,
    private readonly rootPath: string,
  ) {}

  static async start(dataDir: string): Promise<BenchDaemon> {
    const dir = mkdtempSync(join(tmpdir(), "esr-bench-daemon-"));
    const rootPath = `/esr-bench-${process.pid}`;
    const config = join(dir, "esr.yaml");
    await Bun.write(
      config,
      `ssh_service:\n  enhanced_recording:\n    root_path: ${rootPath}\n---\nkind: role\nmetadata: { name: all }\nspec: { options: { enhanced_recording: [command, disk, network] } }\n---\nkind: user\nmetadata: { name: root }\nspec: { roles: [all] }\n`,
    );
    const socket = join(dir, "run", "esr.sock");
    const proc = Bun.spawn({
      cmd: [ESR, "daemon", "--config", config, "--data-dir", dataDir, "--socket", socket],
      stdout: "ignore",
      stderr: "ignore",
    });
    for (let i = 0; i < 200 && !existsSync(socket); i++) await Bun.sleep(25);
    return new BenchDaemon(proc, config, socket, rootPath);
  }

  async stop() {
    this.proc.kill("SIGTERM");
    await this.proc.exited;
    Bun.spawnSync(["rmdir", join("/cgroup2", this.rootPath)]);
  }
}

/**
 * N logins recorded by one `esr daemon`, each a process holding a TCP connection (as sshd's does)
 * that runs the PAM hook and then sleeps in its slice, recording all three kinds.
 */
class DaemonLogins {
  private constructor(
    private readonly daemon: BenchDaemon,
    private readonly logins: ReturnType<typeof Bun.spawn>[],
    private readonly listener: { stop(closeActive?: boolean): void },
  ) {}

  static async start(dataDir: string, n: number): Promise<DaemonLogins> {
    const daemon = await BenchDaemon.start(dataDir);
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const logins: ReturnType<typeof Bun.spawn>[] = [];
    for (let i = 0; i < n; i++) {
      const script = `exec 3<>/dev/tcp/127.0.0.1/${listener.port} && PAM_TYPE=open_session "${ESR}" pam --socket "${daemon.socket}" && exec sleep 3600`;
      logins.push(
        Bun.spawn({
          cmd: ["bash", "-c", script],
          env: { PATH: "/usr/bin:/bin", PAM_USER: "root", PAM_SERVICE: "sshd" },
          stdout: "ignore",
          stderr: "ignore",
        }),
      );
    }
    await Bun.sleep(300 + n * 40);
    const failed = logins.filter((l) => l.exitCode !== null);
    if (failed.length) throw new Error(`${failed.length} daemon logins failed to start`);
    return new DaemonLogins(daemon, logins, listener);
  }

  async stop() {
    for (const l of this.logins) l.kill("SIGKILL");
    await Promise.all(this.logins.map((l) => l.exited));
    await this.daemon.stop();
    this.listener.stop(true);
  }
}

// the kernel's share ------------------------------------------------------------------------------

interface ProgramTime {
  runs: number;
  ns: number;
}

/** run_cnt and run_time_ns of the loaded BPF programs by id (with kernel.bpf_stats_enabled on). */
function programTimes(): Map<number, { name: string } & ProgramTime> {
  const out = new Map<number, { name: string } & ProgramTime>();
  for (const p of JSON.parse(sh(["bpftool", "prog", "show", "--json"])) as Record<string, unknown>[])
    out.set(p.id as number, { name: String(p.name), runs: Number(p.run_cnt ?? 0), ns: Number(p.run_time_ns ?? 0) });
  return out;
}

/**
 * The kernel time of esr's programs while a recorded workload runs, per program: the kernel's own
 * accounting (kernel.bpf_stats_enabled, which adds ≈ 20–30 ns per run to what it measures),
 * sampled while the session lingers after the workload, before its programs are unloaded.
 */
async function kernelTimes(args: string[], events: string, dataDir: string) {
  const before = new Set(programTimes().keys());
  sh(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"]);
  const seen = new Map<string, ProgramTime>();
  try {
    const run = recorded(["bash", "-c", `"$@"; sleep 1.5`, "workload", ...args], events, dataDir);
    let done = false;
    run.finally(() => (done = true));
    while (!done) {
      for (const [id, p] of programTimes())
        if (!before.has(id) && p.runs > 0 && EVENT_KIND_PREFIXES.some((k) => p.name.startsWith(k))) seen.set(p.name, p);
      await Bun.sleep(250);
    }
    return { sample: await run, programs: seen };
  } finally {
    sh(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"]);
  }
}
const EVENT_KIND_PREFIXES = ["command_", "disk_", "network_"];

/** N `esr record -- sleep 3600`, all three kinds, standalone (--no-daemon) or through `daemon`. */
async function recordSessions(dataDir: string, n: number, daemon?: BenchDaemon): Promise<() => Promise<void>> {
  const via = daemon ? ["--config", daemon.config, "--socket", daemon.socket] : ["--no-daemon"];
  const sessions = Array.from({ length: n }, () =>
    Bun.spawn({
      cmd: [
        ESR,
        "record",
        "-q",
        ...via,
        "--data-dir",
        dataDir,
        "--events",
        "command,disk,network",
        "--",
        "sleep",
        "3600",
      ],
      stdout: "ignore",
      stderr: "pipe",
    }),
  );
  await Bun.sleep(500 + n * 60);
  const failed = sessions.filter((s) => s.exitCode !== null);
  if (failed.length)
    throw new Error(`${failed.length} esr record sessions failed: ${await new Response(failed[0]!.stderr).text()}`);
  return async () => {
    for (const s of sessions) s.kill("SIGTERM");
    await Promise.all(sessions.map((s) => s.exited));
  };
}

// reading what esr wrote -----------------------------------------------------------------------

function sessionFiles(dataDir: string, sid: string): string[] {
  const hosts = join(dataDir, "log");
  const out: string[] = [];
  for (const host of readdirSync(hosts)) {
    const dir = join(hosts, host, "sessions", "default");
    if (existsSync(dir))
      for (const f of readdirSync(dir)) if (f.startsWith(sid) && f.endsWith(".gz")) out.push(join(dir, f));
  }
  return out;
}

interface Summary {
  events: number;
  lost: Record<string, number>;
  filtered: Record<string, number>;
  bytes: number;
}

/** What `esr ls` says of these sessions, from one listing (each lists the whole data dir). */
function sessionSummaries(dataDir: string, sids: string[]): Summary[] {
  const ls = new Map(
    sh([ESR, "ls", "--json", "--no-verify", "--data-dir", dataDir])
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
      .map((x) => [x.sid, x]),
  );
  return sids.map((sid) => {
    const s = ls.get(sid);
    if (!s) throw new Error(`esr ls does not list session ${sid}`);
    const events = s.counts.command + s.counts.disk + s.counts.network;
    const bytes = sessionFiles(dataDir, sid).reduce((n, f) => n + statSync(f).size, 0);
    return { events, lost: s.lost, filtered: s.filtered, bytes };
  });
}

const sessionSummary = (dataDir: string, sid: string) => sessionSummaries(dataDir, [sid])[0]!;

// the rows ---------------------------------------------------------------------------------------

interface Row {
  name: string;
  value: string;
  target: string;
  met?: boolean;
}
const rows: Row[] = [];
function row(name: string, value: string, target = "", met?: boolean) {
  rows.push({ name, value, target, met });
  console.log(
    `  ${name.padEnd(58)} ${value.padEnd(30)} ${target}${met === undefined ? "" : met ? "  ok" : "  MISSED"}`,
  );
}
const ratio = (x: number) => `${x.toFixed(3)}×`;

async function main() {
  if (process.getuid?.() !== 0) throw new Error("the benchmark runs as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bash scripts/setup.sh`);
  const source = join(ROOT, "scripts", "bench", "workload.c");
  if (!existsSync(WORKLOAD) || statSync(WORKLOAD).mtimeMs < statSync(source).mtimeMs)
    sh(["clang", "-O2", "-Wall", "-Werror", "-o", WORKLOAD, source]);
  const uid = benchUid();
  const dataDir = mkdtempSync(join(tmpdir(), "esr-bench-"));
  const auditdProblem = auditdReady();
  console.log(
    `esr benchmark — ${quick ? "quick smoke run" : `${ROUNDS} rounds, medians`}; kernel ${sh(["uname", "-r"]).trim()}, ${navigator.hardwareConcurrency} CPUs${PINNED ? " (storms: workload on CPU 1, recorder on CPU 0)" : ""}`,
  );
  if (auditdProblem) console.log(`  auditd: ${auditdProblem}`);

  // 1. Workloads: unrecorded vs esr vs auditd, alternating.
  const workloads = [
    {
      name: "exec storm (fork+exec /bin/true a b c)",
      args: [WORKLOAD, "exec", String(scale(400))],
      events: "command",
      audit: ["execve"],
      target: 1.05,
    },
    {
      name: "open storm, disk events (open+close cached file)",
      args: [WORKLOAD, "open", String(scale(200000))],
      events: "disk",
      audit: ["openat"],
      target: 1.25,
    },
    {
      name: "connect storm on loopback, network events",
      args: [WORKLOAD, "connect", String(scale(5000))],
      events: "network",
      audit: undefined,
      target: 1.15,
    },
    {
      name: "mixed shell workload, all events",
      args: ["bash", MIXED],
      events: "command,disk,network",
      audit: undefined,
      target: undefined,
    },
  ];
  const recordedSamples: Sample[] = [];
  for (const w of outsideOnly ? [] : workloads) {
    const base: number[] = [];
    const esr: number[] = [];
    const audit: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // A B (C), then B A (C), …: neither side always runs first.
      const order = r % 2 ? ["esr", "base"] : ["base", "esr"];
      for (const side of order) {
        if (side === "base") base.push((await plain(onWorkloadCpu(w.args))).nsPerOp);
        else {
          const s = await recorded(onWorkloadCpu(w.args), w.events, dataDir, [], true);
          esr.push(s.nsPerOp);
          recordedSamples.push(s);
        }
      }
      if (w.audit && !auditdProblem)
        audit.push((await withAuditRule(w.audit, uid, () => plain(onWorkloadCpu(w.args)))).nsPerOp);
    }
    const b = median(base);
    const e = median(esr) / b;
    row(
      `${w.name}: esr / unrecorded`,
      `${ratio(e)} (${median(esr).toFixed(0)} vs ${b.toFixed(0)} ns/op)`,
      w.target ? `target ≤ ${w.target}×` : "",
      w.target ? e <= w.target : undefined,
    );
    if (audit.length) row(`${w.name}: auditd / unrecorded`, ratio(median(audit) / b), "reference");
  }

  stopAuditd();

  // 1b. Where a recorded event's kernel time goes: each program's own time per run, as the kernel
  // accounts it, over the events the session wrote.
  for (const w of outsideOnly ? [] : workloads.filter((w) => w.events !== "command,disk,network")) {
    const { sample, programs } = await kernelTimes(w.args, w.events, dataDir);
    const events = sessionSummary(dataDir, sample.sid!).events;
    const total = [...programs.values()].reduce((n, p) => n + p.ns, 0);
    const each = [...programs].map(([name, p]) => `${name} ${(p.ns / p.runs).toFixed(0)} ns × ${p.runs}`).join(", ");
    row(`kernel time per ${w.events} event (${each})`, `${(total / events / 1000).toFixed(2)} µs`);
  }

  // 2. Processes outside any session while N sessions record: N standalone recorders (each with
  // its own programs), and N logins of one esr daemon (one set of programs for all).
  // The workload is pinned to one CPU (the recorders get the other), and each configuration is
  // compared with a baseline measured right after its sessions end.
  const outsideRuns = async () => {
    const m = { exec: [] as number[], open: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      m.exec.push((await plain(["taskset", "-c", "1", WORKLOAD, "exec", String(scale(300))])).nsPerOp);
      m.open.push((await plain(["taskset", "-c", "1", WORKLOAD, "open", String(scale(200000))])).nsPerOp);
    }
    return m;
  };
  /** Rows for what `label` costs processes outside any session; `targeted`: #14's target rows. */
  const outsideRow = async (label: string, start: () => Promise<() => Promise<void>>, targeted = false) => {
    const stop = await start();
    const during = await outsideRuns();
    await stop();
    const base = await outsideRuns();
    const ex = median(during.exec) / median(base.exec);
    const op = median(during.open) / median(base.open);
    // #14: the target, or within 10 % of what the hooks alone cost (the floor, measured first).
    const goal = (target: number, floor: number) => Math.max(target, floor * 1.1);
    for (const [storm, value, target, floor] of [
      ["exec", ex, 1.02, floors.exec],
      ["open", op, 1.05, floors.open],
    ] as const)
      row(
        `outside any session, ${label}: ${storm} storm`,
        ratio(value),
        targeted ? `target ≤ ${goal(target, floor).toFixed(3)}× (${target}×, or floor + 10 %)` : "",
        targeted ? value <= goal(target, floor) : undefined,
      );
    return { exec: ex, open: op };
  };
  let floors = { exec: 1, open: 1 };
  floors = await outsideRow("empty programs at esr's hooks (sys_exit, sched_process_exec): the floor", async () => {
    const detach = attachFloorPrograms(["floor_sys_exit", "floor_sched_process_exec"]);
    return async () => detach();
  });
  await outsideRow("an idle esr daemon (programs loaded, no session)", async () => {
    const daemon = await DaemonLogins.start(dataDir, 0);
    return () => daemon.stop();
  });
  for (const n of quick ? [1] : [1, 10, 50]) {
    await outsideRow(
      `${n} sessions of one esr daemon recording`,
      async () => {
        const daemon = await DaemonLogins.start(dataDir, n);
        return () => daemon.stop();
      },
      n === 50,
    );
  }
  for (const n of quick ? [1] : [1, 10, 50]) {
    await outsideRow(
      `${n} esr record sessions through one esr daemon`,
      async () => {
        const daemon = await BenchDaemon.start(dataDir);
        const stop = await recordSessions(dataDir, n, daemon);
        return async () => {
          await stop();
          await daemon.stop();
        };
      },
      n === 50,
    );
  }
  for (const n of quick ? [1] : [1, 10, 50])
    await outsideRow(`${n} standalone (--no-daemon) esr record sessions recording`, () => recordSessions(dataDir, n));
  if (outsideOnly) return rmSync(dataDir, { recursive: true, force: true });

  // 3. esr record -- true against esr --version (Bun's start and esr's imports), standalone and
  // through a running daemon (what a host with the esr-daemon unit does), recorder CPU and RSS,
  // bytes per event.
  const wallOf = (cmd: string[]) => {
    const walls: number[] = [];
    for (let i = 0; i < (quick ? 3 : 20); i++) {
      const t0 = performance.now();
      sh(cmd);
      walls.push(performance.now() - t0);
    }
    return median(walls);
  };
  const version = wallOf([ESR, "--version"]);
  row("esr --version, wall time (the baseline of the next two)", `${version.toFixed(1)} ms`);
  const startRow = (label: string, wall: number, target: boolean) =>
    row(
      label,
      `${wall.toFixed(1)} ms (${(wall / version).toFixed(2)}× esr --version)`,
      target ? "target ≤ 2.5× esr --version" : "",
      target ? wall <= 2.5 * version : undefined,
    );
  startRow(
    "esr record -- true, standalone (--no-daemon), wall time",
    wallOf([ESR, "record", "-q", "--no-daemon", "--data-dir", dataDir, "--", "true"]),
    false,
  );
  const daemon = await BenchDaemon.start(dataDir);
  const via = wallOf([
    ESR,
    "record",
    "-q",
    "--config",
    daemon.config,
    "--socket",
    daemon.socket,
    "--data-dir",
    dataDir,
    "--",
    "true",
  ]);
  await daemon.stop();
  startRow("esr record -- true through a running esr daemon, wall time", via, true);
  const rss = Math.max(...recordedSamples.map((s) => s.maxRssBytes ?? 0)) / 1048576;
  row("recorder peak RSS (any run above)", `${rss.toFixed(1)} MB`, "target ≤ 80 MB", rss <= 80);
  const perKind = new Map<string, { events: number; bytes: number; cpu: number }>();
  const withSid = recordedSamples.filter((s) => s.sid);
  const summaries = sessionSummaries(
    dataDir,
    withSid.map((s) => s.sid!),
  );
  for (const [i, s] of withSid.entries()) {
    const sum = summaries[i]!;
    const kind = sum.events > 0 ? "all" : "none";
    const acc = perKind.get(kind) ?? { events: 0, bytes: 0, cpu: 0 };
    acc.events += sum.events;
    acc.bytes += sum.bytes;
    acc.cpu += s.recorderCpu ?? 0;
    perKind.set(kind, acc);
  }
  const all = perKind.get("all")!;
  const bpe = all.bytes / all.events;
  row("bytes per event on disk (session .gz files)", `${bpe.toFixed(1)} B`, "target ≤ 40 B", bpe <= 40);
  row("recorder CPU per event", `${((all.cpu / all.events) * 1e6).toFixed(2)} µs`);

  // 4. Delivery rate without loss, and where loss starts, with default buffer sizes.
  let lossless = 0;
  for (const rate of quick ? [50_000] : [50_000, 100_000, 200_000, 300_000, 400_000, 600_000, 0]) {
    const n = scale(rate ? rate * 2 : 400_000);
    // A data dir of its own: listing the storms' sessions to find this one would take longer than it.
    const rateDir = mkdtempSync(join(tmpdir(), "esr-bench-rate-"));
    const s = await recorded([WORKLOAD, "openrate", String(n), String(rate)], "disk", rateDir);
    const sum = sessionSummary(rateDir, s.sid!);
    rmSync(rateDir, { recursive: true, force: true });
    const achieved = 1e9 / s.nsPerOp;
    if (sum.lost.disk === 0 && achieved > lossless) lossless = achieved;
    row(
      `open events at ${rate ? `${rate / 1000}k/s` : "full speed"} (achieved ${(achieved / 1000).toFixed(0)}k/s)`,
      `${sum.events} written, ${sum.lost.disk} lost`,
      rate === 200_000 ? "target 0 lost" : "",
      rate === 200_000 ? sum.lost.disk === 0 : undefined,
    );
  }
  row(
    "highest rate delivered without loss",
    `${(lossless / 1000).toFixed(0)}k events/s`,
    "target ≥ 200k/s",
    lossless >= 200_000,
  );

  // 5. esr.disk_filter: what the loader's and the locale's opens are of a session's disk events.
  const filterDir = mkdtempSync(join(tmpdir(), "esr-bench-filter-"));
  const filterData = join(filterDir, "data");
  const filterConfig = join(filterDir, "esr.yaml");
  const prefixes = ["/usr/lib/", "/etc/ld.so.cache"];
  await Bun.write(filterConfig, `esr:\n  disk_filter:\n    ignore_path_prefixes: ${JSON.stringify(prefixes)}\n`);
  const filterRow = async (name: string, run: (flags: string[]) => Promise<Sample>) => {
    const runs = { off: [] as Summary[], on: [] as Summary[] };
    const time = { off: [] as number[], on: [] as number[] };
    for (let r = 0; r < ROUNDS; r++)
      for (const side of r % 2 ? (["on", "off"] as const) : (["off", "on"] as const)) {
        const s = await run(side === "on" ? ["--config", filterConfig] : []);
        runs[side].push(sessionSummary(filterData, s.sid!));
        time[side].push(s.nsPerOp);
      }
    const off = median(runs.off.map((s) => s.events));
    const on = median(runs.on.map((s) => s.events));
    const filtered = median(runs.on.map((s) => s.filtered.disk ?? 0));
    row(
      `disk filter ${prefixes.join(" ")}, ${name}: disk events per run`,
      `${off} → ${on} (+${filtered} filtered), ${ratio(on / off)}`,
    );
    if (time.off.every((t) => Number.isFinite(t)))
      row(`disk filter, ${name}: filtered / unfiltered time`, ratio(median(time.on) / median(time.off)));
  };
  // As root, the command alone in its session (a --login session starts with setpriv's own opens).
  await filterRow("cat /etc/hostname", async (flags) => {
    const err = sh(
      [ESR, "record", "--data-dir", filterData, "--events", "disk", ...flags, "--", "/bin/cat", "/etc/hostname"],
      {
        stderr: true,
      },
    );
    return { nsPerOp: NaN, sid: /session (\S+)/.exec(err)?.[1] };
  });
  await filterRow("mixed shell workload", (flags) => recorded(["bash", MIXED], "disk", filterData, flags));
  rmSync(filterDir, { recursive: true, force: true });

  rmSync(dataDir, { recursive: true, force: true });
  const missed = rows.filter((r) => r.met === false).length;
  console.log(`\n${rows.filter((r) => r.met !== undefined).length - missed} targets met, ${missed} missed`);
}

await main();
