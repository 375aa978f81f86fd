/**
 * `esr daemon` and `esr pam` without sshd: a bash holding a real TCP connection stands in for the
 * sshd `[priv]` process and runs the hook as its child, the way pam_exec does. What sshd adds is
 * covered by ssh.test.ts.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readlinkSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { daemonSetup, removeSlicesParent, TestDaemon, type DaemonSetup } from "../support/daemon-harness.ts";
import { ESR, execLines, ofType, replayEvents, runEsr, tempDir } from "../support/harness.ts";

// Real logins, real sshd: several seconds for a test is normal; bun's 5 s default is not enough.
setDefaultTimeout(30_000);

let setup: DaemonSetup;
let daemon: TestDaemon;
/** The "remote end" of the fake logins' TCP connections, and the ports they connected from. */
let peer: Bun.TCPSocketListener;
const peerSawPorts = new Set<number>();

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
  peer = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { open: (s) => void peerSawPorts.add(s.remotePort), data() {} },
  });
  setup = daemonSetup();
  daemon = await TestDaemon.start(setup);
});

afterAll(async () => {
  await daemon?.stop();
  peer?.stop(true);
  if (setup) removeSlicesParent(setup);
});

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

interface FakeLogin {
  env?: Record<string, string>;
  socket?: string;
  /** Runs before the open_session hook, e.g. what pam_loginuid does. */
  prelude?: string;
  /** false: no TCP connection, so the parent is no login */
  connect?: boolean;
}

/**
 * Runs `body` in a bash that holds a TCP connection to `peer`, between the open_session and
 * close_session hooks it runs as its children (exit 91/92 when a hook fails).
 */
async function fakeLogin(body: string, opts: FakeLogin = {}): Promise<Run> {
  const script = [
    opts.connect === false ? "" : `exec 3<>/dev/tcp/127.0.0.1/${peer.port} || exit 90`,
    opts.prelude ?? "",
    `PAM_TYPE=open_session "$ESR" pam --socket "$SOCK" || exit 91`,
    body,
    `PAM_TYPE=close_session "$ESR" pam --socket "$SOCK" || exit 92`,
    "exit 0",
  ].join("\n");
  const proc = Bun.spawn(["bash", "-c", script], {
    env: {
      PATH: "/usr/bin:/bin:/usr/sbin:/sbin",
      ESR,
      SOCK: opts.socket ?? setup.socket,
      PAM_USER: "root",
      PAM_SERVICE: "sshd",
      ...opts.env,
    },
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

/** The session id a process inside a slice reads from its own /proc/self/cgroup. */
function sidFromCgroup(output: string): string {
  const sid = new RegExp(`^0::${setup.rootPath}/([0-9a-f-]{36})$`, "m").exec(output)?.[1];
  if (!sid) throw new Error(`not in a slice under ${setup.rootPath}: ${output}`);
  return sid;
}

describe("a login", () => {
  test("is in its slice when the hook returns, and session.start has the addresses of its own TCP connection", async () => {
    const keyDir = tempDir();
    Bun.spawnSync(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(keyDir, "k")]);
    const publicKey = readFileSync(join(keyDir, "k.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    const fingerprint = Bun.spawnSync(["ssh-keygen", "-l", "-E", "sha256", "-f", join(keyDir, "k.pub")])
      .stdout.toString()
      .split(" ")[1];
    const mark = daemon.log.length;
    const r = await fakeLogin("cat /proc/self/cgroup; /bin/echo inside-the-fake-login", {
      // SSH_CONNECTION is what a user could forge; the daemon must not believe it.
      env: { SSH_CONNECTION: "6.6.6.6 1111 7.7.7.7 22", SSH_AUTH_INFO_0: `publickey ${publicKey}\n` },
    });
    expect(r.exitCode).toBe(0);
    const sid = sidFromCgroup(r.stdout);
    expect(daemon.loginsSince(mark)).toEqual([sid]);
    await daemon.waitForEnd(sid);
    const events = await replayEvents(setup.dataDir, sid);
    const start = ofType(events, "session.start")[0]!;
    expect(start).toMatchObject({
      proto: "ssh",
      login: "root",
      user: "root",
      "addr.remote": `127.0.0.1:${peer.port}`,
      ssh_auth_info: [`publickey ${publicKey}`],
      ssh_key_fingerprint: fingerprint,
    });
    const localPort = Number(/^127\.0\.0\.1:(\d+)$/.exec(start["addr.local"] ?? "")?.[1]);
    expect(peerSawPorts.has(localPort)).toBe(true);
    expect(execLines(events)).toContain("/bin/echo inside-the-fake-login");
    expect(ofType(events, "session.end")).toHaveLength(1);
  });

  test("adding logins adds no BPF program to the daemon", async () => {
    // An fd may close between readdir and readlink: that one is not a program.
    const link = (fd: string) => {
      try {
        return readlinkSync(`/proc/${daemon.proc.pid}/fd/${fd}`);
      } catch {
        return "";
      }
    };
    const programs = () =>
      readdirSync(`/proc/${daemon.proc.pid}/fd`).filter((fd) => link(fd) === "anon_inode:bpf-prog").length;
    const before = programs();
    expect(before).toBeGreaterThan(0);
    const runs = await Promise.all(
      [1, 2, 3].map((i) => fakeLogin(`cat /proc/self/cgroup; sleep 0.3; /bin/echo login-${i}`)),
    );
    expect(runs.map((r) => r.exitCode)).toEqual([0, 0, 0]);
    expect(programs()).toBe(before);
    const sids = runs.map((r) => sidFromCgroup(r.stdout));
    expect(new Set(sids).size).toBe(3);
    for (const [i, sid] of sids.entries()) {
      await daemon.waitForEnd(sid);
      const execs = execLines(await replayEvents(setup.dataDir, sid)).filter((l) => l.startsWith("/bin/echo login-"));
      expect(execs).toEqual([`/bin/echo login-${i + 1}`]);
    }
  });
});

describe("refused logins (the hook exits non-zero, so the login runs nothing)", () => {
  test("a parent without a TCP connection is not a login", async () => {
    const mark = daemon.log.length;
    const r = await fakeLogin("echo unreachable", { connect: false, prelude: "trap 'cat /proc/self/cgroup' EXIT" });
    expect(r.exitCode).toBe(91);
    expect(r.stdout).toMatch(/^0::\/$/m); // left where it was
    expect(r.stderr).toMatch(
      /^esr: esr daemon refused to record the login: process \d+ holds no established TCP connection: it is not an sshd login process\n$/,
    );
    expect(daemon.loginsSince(mark)).toEqual([]);
  });

  test("a PAM_USER that is not the login uid pam_loginuid set", async () => {
    const r = await fakeLogin("echo unreachable", { prelude: "echo 65534 > /proc/self/loginuid || exit 80" });
    expect(r.exitCode).toBe(91);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /^esr: esr daemon refused to record the login: PAM_USER root \(uid 0\) is not the login uid 65534 of sshd pid \d+\n$/,
    );
  });

  test("close_session for a login the daemon never adopted", async () => {
    const proc = Bun.spawnSync(
      [
        "bash",
        "-c",
        `exec 3<>/dev/tcp/127.0.0.1/${peer.port}; PAM_TYPE=close_session "${ESR}" pam --socket "${setup.socket}"; echo "hook=$?"`,
      ],
      { env: { PAM_USER: "root" } },
    );
    expect(proc.stdout.toString()).toContain("hook=1");
    expect(proc.stderr.toString()).toMatch(
      /^esr: esr daemon refused to record the logout: no recorded login of root for sshd pid \d+\n$/,
    );
  });

  test("no daemon on the socket", async () => {
    const started = performance.now();
    const r = await fakeLogin("echo unreachable", { socket: join(tempDir(), "esr.sock") });
    expect(r.exitCode).toBe(91);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^esr: cannot reach the esr daemon at \S+: ENOENT \(is esr daemon running\?\)\n$/);
    expect(performance.now() - started).toBeLessThan(4000); // refused at once, not after the 5 s timeout
  });

  test("a daemon that does not answer within 5 s", async () => {
    const sock = join(tempDir(), "silent.sock");
    const silent = Bun.listen({ unix: sock, socket: { data() {} } });
    try {
      const started = performance.now();
      const r = await fakeLogin("echo unreachable", { socket: sock });
      const elapsed = performance.now() - started;
      expect(r.exitCode).toBe(91);
      expect(r.stderr).toMatch(/^esr: the esr daemon at \S+ did not answer within 5 s\n$/);
      expect(elapsed).toBeGreaterThan(4900);
      expect(elapsed).toBeLessThan(8000);
    } finally {
      silent.stop(true);
    }
  });

  test("esr pam outside a PAM session stack", async () => {
    const r = await runEsr(["pam", "--socket", setup.socket], { env: { PAM_TYPE: "" } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^esr: PAM_TYPE "": esr pam belongs in the session stack/);
    const auth = await runEsr(["pam", "--socket", setup.socket], { env: { PAM_TYPE: "auth", PAM_USER: "root" } });
    expect(auth.exitCode).toBe(2);
  });
});

describe("the socket", () => {
  test("is root-only by its mode, and the daemon checks the caller's uid itself (SO_PEERCRED)", async () => {
    expect(statSync(setup.socket).mode & 0o777).toBe(0o600);
    expect(statSync(join(setup.dir, "run")).mode & 0o777).toBe(0o700);
    const asNobody = [
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      ESR,
      "pam",
      "--socket",
      setup.socket,
    ];
    const env = { PAM_TYPE: "open_session", PAM_USER: "nobody" };
    const denied = Bun.spawnSync(asNobody, { env });
    expect(denied.exitCode).toBe(1);
    expect(denied.stderr.toString()).toMatch(/^esr: cannot reach the esr daemon at \S+: .*EACCES\n$/);
    // Loosen every mode on the way: the daemon must still turn a non-root caller away.
    for (const p of [setup.dir, join(setup.dir, "run")]) chmodSync(p, 0o755);
    chmodSync(setup.socket, 0o666);
    try {
      const r = Bun.spawnSync(asNobody, { env });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.toString()).toMatch(
        /^esr: esr daemon refused to record the login: caller uid 65534 \(pid \d+\) is not root\n$/,
      );
    } finally {
      chmodSync(setup.socket, 0o600);
      for (const p of [join(setup.dir, "run"), setup.dir]) chmodSync(p, 0o700);
    }
  });

  test("answers a malformed request with an error and keeps serving", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      let text = "";
      Bun.connect({
        unix: setup.socket,
        socket: {
          open: (s) => void s.write("this is not json\n"),
          data: (_s, chunk) => void (text += chunk.toString()),
          close: () => resolve(text),
          error: (_s, err) => reject(err),
        },
      }).catch(reject);
    });
    expect(JSON.parse(reply)).toEqual({ ok: false, error: "bad request: not JSON" });
    const r = await fakeLogin("cat /proc/self/cgroup");
    expect(r.exitCode).toBe(0);
  });

  test("a second daemon on the same socket refuses to start; a world-writable socket directory is refused", async () => {
    const second = await runEsr([
      "daemon",
      "--config",
      setup.configFile,
      "--data-dir",
      setup.dataDir,
      "--socket",
      setup.socket,
    ]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toBe(`esr: another esr daemon is listening on ${setup.socket}\n`);
    const open = tempDir();
    chmodSync(open, 0o1777);
    const loose = await runEsr([
      "daemon",
      "--config",
      setup.configFile,
      "--data-dir",
      setup.dataDir,
      "--socket",
      join(open, "esr.sock"),
    ]);
    expect(loose.exitCode).toBe(1);
    expect(loose.stderr).toMatch(/^esr: \S+ must be owned by root and writable only by root .*mode 1777/);
  });
});

test("with enhanced recording disabled: session.start and session.end only, the end when the sshd process exits", async () => {
  const own = daemonSetup("", "    enabled: false\n");
  const d = await TestDaemon.start(own);
  try {
    expect(d.log).toContain("enhanced recording is disabled");
    const r = await fakeLogin("/bin/echo not-recorded; cat /proc/self/cgroup", { socket: own.socket });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^0::\/$/m); // no slice
    const [, sid] = await d.waitForLog(/session (\S+): login /);
    await d.waitForEnd(sid!);
    const events = await replayEvents(own.dataDir, sid!);
    expect(events.map((e) => e.event)).toEqual(["session.start", "session.end"]);
    expect(events[0]).toMatchObject({
      enhanced_recording: false,
      proto: "ssh",
      "addr.remote": `127.0.0.1:${peer.port}`,
    });
  } finally {
    await d.stop();
  }
});

describe("stopping", () => {
  test("SIGTERM ends every login in progress: its processes are killed and session.end is written", async () => {
    const own = daemonSetup();
    const d = await TestDaemon.start(own);
    const login = fakeLogin("sleep 60; echo unreachable", { socket: own.socket });
    const [, sid] = await d.waitForLog(/session (\S+): login /);
    expect(await d.stop("SIGTERM")).toBe(0);
    const r = await login;
    expect(r.stdout).toBe("");
    expect(r.exitCode).not.toBe(0);
    expect(existsSync(own.socket)).toBe(false);
    expect(d.log).toContain(`session ${sid}: ended after a failure: esr daemon stopped`);
    expect(ofType(await replayEvents(own.dataDir, sid!), "session.end")).toHaveLength(1);
    removeSlicesParent(own);
  });

  test("after a SIGKILL, the next daemon removes the dead one's slices and kills what ran in them", async () => {
    const own = daemonSetup();
    const d = await TestDaemon.start(own);
    const r = await fakeLogin(`setsid sleep 60 </dev/null >/dev/null 2>&1 & echo "left=$!"`, { socket: own.socket });
    expect(r.exitCode).toBe(0);
    const [, sid] = await d.waitForLog(/session (\S+): logout /);
    const left = Number(/left=(\d+)/.exec(r.stdout)?.[1]);
    await d.stop("SIGKILL");
    expect(running(left)).toBe(true); // nobody records it now, until a daemon starts
    const next = await TestDaemon.start(own);
    expect(next.log).toContain(`killed what ran in /cgroup2${own.rootPath}/${sid}, left by a recorder that is gone`);
    for (let i = 0; i < 50 && running(left); i++) await Bun.sleep(20);
    expect(running(left)).toBe(false);
    expect(await next.stop()).toBe(0);
    removeSlicesParent(own);
  });
});

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("--help for both commands", async () => {
  for (const cmd of ["daemon", "pam"]) {
    const r = await runEsr([cmd, "--help"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("--socket");
  }
});
