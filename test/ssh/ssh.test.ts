/**
 * Every OpenSSH login recorded: a real sshd on 127.0.0.1 with Debian's PAM stack plus the esr line
 * README prescribes, a real esr daemon, a test user logging in with a key. Interactive logins,
 * commands, sftp, port forwards, concurrent logins, what a login leaves behind, a killed sshd, a
 * stopped daemon and a user forging the environment.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lookupAccount } from "../../lib/sys/accounts.ts";
import { daemonSetup, removeSlicesParent, TestDaemon, type DaemonSetup } from "../support/daemon-harness.ts";
import { ESR, execLines, freePort, ofType, replayEvents, runEsr, tempDir } from "../support/harness.ts";
import { TestSshd } from "../support/ssh-server.ts";

// Real logins, real sshd: several seconds for a test is normal; bun's 5 s default is not enough.
setDefaultTimeout(30_000);

let setup: DaemonSetup;
let daemon: TestDaemon;
let sshd: TestSshd;
let fingerprint: string;

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("these tests run sshd and load BPF programs: run them as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
  // The test user records every kind, so that sftp's file writes show too.
  setup = daemonSetup(
    `kind: role\nversion: v8\nmetadata: { name: everything }\nspec: { options: { enhanced_recording: [command, disk, network] } }\n---\nkind: user\nmetadata: { name: ${TestSshd.user} }\nspec: { roles: [everything] }\n`,
  );
  daemon = await TestDaemon.start(setup);
  sshd = new TestSshd(setup.socket);
  await sshd.start();
  fingerprint = Bun.spawnSync(["ssh-keygen", "-l", "-E", "sha256", "-f", `${sshd.clientKey}.pub`])
    .stdout.toString()
    .split(" ")[1]!;
});

afterAll(async () => {
  // The daemon first: stopping it kills whatever a failed test left in a login's slice.
  await daemon?.stop();
  await sshd?.stop();
  if (setup) removeSlicesParent(setup);
});

/** The session id a login reads from its own /proc/self/cgroup: proof that it runs in the slice. */
function sidOf(output: string): string {
  const sid = new RegExp(`0::${setup.rootPath}/([0-9a-f-]{36})`).exec(output)?.[1];
  if (!sid) throw new Error(`the login is not in a slice under ${setup.rootPath}; it printed: ${output}`);
  return sid;
}

function execTime(events: Awaited<ReturnType<typeof replayEvents>>, line: string): number {
  const e = ofType(events, "session.command").find((c) => [c.path, ...c.argv].join(" ") === line);
  if (!e) throw new Error(`no exec ${line}`);
  return Date.parse(e.time);
}

describe("every kind of login is recorded", () => {
  test("ssh host 'cmd': the command, the login, both addresses from sshd's socket, and the key", async () => {
    const encoded = Buffer.from("/bin/echo decoded-over-ssh --flag value\n").toString("base64");
    const r = await sshd.ssh(
      [],
      `cat /proc/self/cgroup; echo "conn=$SSH_CONNECTION"; echo ${encoded} | base64 -d | sh`,
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("decoded-over-ssh --flag value");
    const sid = sidOf(r.stdout);
    const clientPort = /conn=127\.0\.0\.1 (\d+) 127\.0\.0\.1 \d+/.exec(r.stdout)?.[1];
    await daemon.waitForEnd(sid);
    const events = await replayEvents(setup.dataDir, sid);
    const start = ofType(events, "session.start")[0]!;
    expect(start).toMatchObject({
      proto: "ssh",
      login: sshd.user,
      user: sshd.user,
      "addr.remote": `127.0.0.1:${clientPort}`,
      "addr.local": `127.0.0.1:${sshd.port}`,
      ssh_key_fingerprint: fingerprint,
      enhanced_recording_events: ["command", "disk", "network"],
    });
    expect(start.ssh_auth_info).toEqual([
      `publickey ${readFileSync(`${sshd.clientKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}`,
    ]);
    // The same key and client port sshd itself logged.
    expect(sshd.log).toContain(
      `Accepted publickey for ${sshd.user} from 127.0.0.1 port ${clientPort} ssh2: ED25519 ${fingerprint}`,
    );
    const execs = execLines(events);
    expect(execs).toContain("/bin/echo decoded-over-ssh --flag value");
    expect(execs.some((l) => /base64 -d$/.test(l))).toBe(true);
    expect(ofType(events, "session.end")).toHaveLength(1);
    // No pty was asked for: Teleport writes such a session as not interactive.
    expect(ofType(events, "session.end")[0]!.interactive).toBe(false);
    const listed = (await runEsr(["ls", "--data-dir", setup.dataDir, "--json"])).stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(listed.find((s) => s.sid === sid)).toMatchObject({ login: sshd.user, counts: { command: execs.length } });
  });

  test("an interactive ssh -tt login: what is typed, including an obfuscated pipeline", async () => {
    const encoded = Buffer.from("/bin/echo typed-and-decoded --x\n").toString("base64");
    const typed = [
      "cat /proc/self/cgroup",
      `echo ${encoded} | base64 -d | bash`,
      "/bin/echo typed-plainly",
      "exit 3",
      "",
    ].join("\n");
    const r = await sshd.ssh(["-tt"], undefined, typed);
    expect(r.exitCode).toBe(3);
    const sid = sidOf(r.stdout);
    await daemon.waitForEnd(sid);
    const events = await replayEvents(setup.dataDir, sid);
    const execs = execLines(events);
    expect(execs).toContain("/bin/echo typed-and-decoded --x");
    expect(execs).toContain("/bin/echo typed-plainly");
    // The login shell itself, started by sshd inside the slice.
    expect(
      ofType(events, "session.command").some(
        (e) => e.program === "bash" && e.path.endsWith("/bash") && e.argv.length === 0,
      ),
    ).toBe(true);
    const text = (await runEsr(["replay", sid, "--data-dir", setup.dataDir])).stdout;
    expect(text).toContain("/bin/echo typed-plainly");
    // sshd allocated the login's pty: interactive, as Teleport writes a session with a terminal.
    expect(ofType(events, "session.end")[0]!.interactive).toBe(true);
  });

  test("a command that gives itself a pty (script) does not make its login interactive", async () => {
    const r = await sshd.ssh([], "cat /proc/self/cgroup; script -qc 'tty; sleep 0.3' /dev/null");
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    const sid = sidOf(r.stdout);
    await daemon.waitForEnd(sid);
    const events = await replayEvents(setup.dataDir, sid);
    expect(execLines(events).some((l) => l.endsWith("/script -qc tty; sleep 0.3 /dev/null"))).toBe(true);
    expect(ofType(events, "session.end")[0]!.interactive).toBe(false);
  });

  test("an sftp upload: sftp-server and the file it writes", async () => {
    const local = join(tempDir(), "payload.txt");
    const content = `uploaded ${crypto.randomUUID()}\n`;
    writeFileSync(local, content);
    const remote = join(sshd.home, `upload-${process.pid}.txt`);
    const batch = join(tempDir(), "batch");
    writeFileSync(batch, `put ${local} ${remote}\n`);
    const mark = daemon.log.length;
    const sftp = Bun.spawn(["sftp", "-b", batch, ...sshd.sshArgs("-P"), `${sshd.user}@127.0.0.1`], {
      stdout: "ignore",
      stderr: "pipe",
    });
    const [stderr, exitCode] = await Promise.all([new Response(sftp.stderr).text(), sftp.exited]);
    expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(readFileSync(remote, "utf8")).toBe(content);
    const [sid, ...others] = await daemon.waitForLogins(mark, 1);
    expect(others).toEqual([]);
    await daemon.waitForEnd(sid!);
    const events = await replayEvents(setup.dataDir, sid!);
    expect(execLines(events).some((l) => l.startsWith("/usr/lib/openssh/sftp-server"))).toBe(true);
    const O_WRONLY = 0o1;
    const O_CREAT = 0o100;
    const write = ofType(events, "session.disk").find((e) => e.path === remote && e.program === "sftp-server");
    expect(write).toBeDefined();
    expect(write!.flags & (O_WRONLY | O_CREAT)).toBe(O_WRONLY | O_CREAT);
    expect(write!.return_code).toBeGreaterThanOrEqual(0);
  });

  test("ssh -N -L: the forwarded connection is a network event of the login", async () => {
    const target = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: { open: (s) => void s.end("pong\n"), data() {} },
    });
    const localPort = freePort();
    const mark = daemon.log.length;
    const forward = sshd.spawnSsh(["-N", "-L", `${localPort}:127.0.0.1:${target.port}`]);
    try {
      let answer = "";
      for (let i = 0; i < 200 && answer !== "pong\n"; i++) {
        answer = await throughForward(localPort).catch(() => "");
        if (answer !== "pong\n") await Bun.sleep(25);
      }
      expect(answer).toBe("pong\n");
    } finally {
      forward.kill();
      await forward.exited;
      target.stop(true);
    }
    const [sid, ...others] = await daemon.waitForLogins(mark, 1);
    expect(others).toEqual([]);
    await daemon.waitForEnd(sid!);
    const events = await replayEvents(setup.dataDir, sid!);
    const connect = ofType(events, "session.network").find((e) => e.dst_port === target.port);
    expect(connect).toMatchObject({ dst_addr: "127.0.0.1", version: 4 });
    expect(connect!.program).toStartWith("sshd"); // the user's sshd process connects
  });

  test("two logins at once: each session has its own commands and nothing of the other's", async () => {
    const cmd = (name: string) => `cat /proc/self/cgroup; sleep 0.4; /bin/echo only-in-${name}; sleep 0.4`;
    const [a, b] = await Promise.all([sshd.ssh([], cmd("A")), sshd.ssh([], cmd("B"))]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    const [sidA, sidB] = [sidOf(a.stdout), sidOf(b.stdout)];
    expect(sidA).not.toBe(sidB);
    await Promise.all([daemon.waitForEnd(sidA), daemon.waitForEnd(sidB)]);
    const [eventsA, eventsB] = await Promise.all([
      replayEvents(setup.dataDir, sidA),
      replayEvents(setup.dataDir, sidB),
    ]);
    const marks = (events: typeof eventsA) => execLines(events).filter((l) => l.startsWith("/bin/echo only-in-"));
    expect(marks(eventsA)).toEqual(["/bin/echo only-in-A"]);
    expect(marks(eventsB)).toEqual(["/bin/echo only-in-B"]);
    // They overlapped in time.
    const span = (events: typeof eventsA) => [
      Date.parse(ofType(events, "session.start")[0]!.time),
      Date.parse(ofType(events, "session.end")[0]!.time),
    ];
    const [[startA, endA], [startB, endB]] = [span(eventsA), span(eventsB)];
    expect(startA! < endB! && startB! < endA!).toBe(true);
  });
});

describe("when a login ends", () => {
  test("a setsid nohup process left behind stays recorded until it exits", async () => {
    const r = await sshd.ssh(
      [],
      `cat /proc/self/cgroup; setsid nohup sh -c 'sleep 1.5; /bin/echo left-behind-marker' >/dev/null 2>&1 </dev/null &`,
    );
    const loggedOut = Date.now();
    expect(r.exitCode).toBe(0);
    const sid = sidOf(r.stdout);
    await daemon.waitForLog(
      new RegExp(`session ${sid}: logout of ${sshd.user}; recording until its last process exits`),
    );
    expect(daemon.log).not.toContain(`session ${sid}: ended`);
    expect(existsSync(`/cgroup2${setup.rootPath}/${sid}`)).toBe(true);
    await daemon.waitForEnd(sid);
    const events = await replayEvents(setup.dataDir, sid);
    const echoed = execTime(events, "/bin/echo left-behind-marker");
    expect(echoed).toBeGreaterThan(loggedOut);
    expect(Date.parse(ofType(events, "session.end")[0]!.time)).toBeGreaterThanOrEqual(echoed);
    expect(existsSync(`/cgroup2${setup.rootPath}/${sid}`)).toBe(false);
  });

  test("a SIGKILLed sshd: no close_session, and the session still ends cleanly once the slice is empty", async () => {
    const login = sshd.spawnSsh(["-tt"], "cat /proc/self/cgroup; exec sleep 600", "pipe");
    let out = "";
    const reader = login.stdout.getReader();
    while (!/0::\S+\/[0-9a-f-]{36}/.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const sid = sidOf(out);
    const slice = `/cgroup2${setup.rootPath}/${sid}`;
    const pids = readFileSync(join(slice, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
    const sshdPids = pids.filter((pid) => readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("sshd"));
    expect(sshdPids.length).toBeGreaterThanOrEqual(2); // [priv] and the user's sshd
    for (const pid of sshdPids) process.kill(pid, "SIGKILL");
    await daemon.waitForEnd(sid);
    expect(await login.exited).not.toBe(0);
    expect(daemon.log).not.toContain(`session ${sid}: logout`);
    const events = await replayEvents(setup.dataDir, sid);
    expect(ofType(events, "session.end")).toHaveLength(1);
    expect(existsSync(slice)).toBe(false);
    expect(pids.filter(running)).toEqual([]);
  });
});

describe("no way around it", () => {
  // A test that stops the daemon may be cut off by its timeout before it starts it again: the next
  // test must not inherit a stopped daemon.
  afterEach(async () => {
    if (daemon.proc.exitCode !== null || daemon.proc.signalCode !== null) daemon = await TestDaemon.start(setup);
  });

  test(
    "daemon down: the login runs nothing",
    async () => {
      // On a loaded machine one of these steps once took most of 30 s: say which, if it happens again.
      let at = Date.now();
      const slow = (step: string) => {
        if (Date.now() - at > 5000) console.warn(`daemon down: ${step} took ${Date.now() - at} ms`);
        at = Date.now();
      };
      await daemon.stop();
      slow("stopping the daemon");
      const trace = join(sshd.home, "should-never-run");
      const r = await sshd.ssh([], `/bin/echo should-never-run > ${trace}; /bin/echo should-never-run`);
      slow("the refused login");
      expect(r.stdout).not.toContain("should-never-run");
      expect(r.exitCode).toBe(254);
      expect(existsSync(trace)).toBe(false);
      // Port forwarding too: sshd refuses the channel, the target never sees a connection.
      let reached = 0;
      const target = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: { open: (s) => void (reached++, s.end("pong\n")), data() {} },
      });
      const localPort = freePort();
      const forward = sshd.spawnSsh(["-N", "-L", `${localPort}:127.0.0.1:${target.port}`]);
      try {
        // Until ssh listens on the local port (or exits): bounded by time, not by tries, since each
        // try can take up to throughForward's own limit on a loaded machine.
        const deadline = Date.now() + 20_000;
        let tried = false;
        while (!tried && forward.exitCode === null && Date.now() < deadline) {
          tried = await throughForward(localPort).then(
            (answer) => (expect(answer).toBe(""), true),
            () => false,
          );
          if (!tried) await Bun.sleep(25);
        }
        // Either ssh listened and the channel was refused, or the refused login ended ssh first.
        if (!tried) expect(forward.exitCode ?? 0).not.toBe(0);
        expect(tried || forward.exitCode !== null).toBe(true);
        expect(reached).toBe(0);
        slow("the refused forward");
      } finally {
        forward.kill("SIGKILL");
        await forward.exited;
        target.stop(true);
      }
    },
    // Stopping the daemon, a refused login and a refused forward, each bounded on its own.
    90_000,
  );

  test("a user forging SSH_CONNECTION (and PAM_USER) through ~/.pam_environment: the real address and login are recorded", async () => {
    // A weak stack on purpose: the esr line after a pam_env that reads the user's file, with a
    // witness hook showing what the user managed to put into the hooks' environment.
    const witness = join(sshd.dir, "witness.sh");
    const witnessLog = join(sshd.dir, "witness.log");
    writeFileSync(
      witness,
      `#!/bin/sh\n{ echo "$SSH_CONNECTION"; tr '\\0' '\\n' < /proc/$$/environ | grep '^PAM_USER='; } >> ${witnessLog}\n`,
    );
    chmodSync(witness, 0o755);
    const weak = sshd
      .readmeStack()
      .replace(`${sshd.esrLine}\n`, "")
      .replace(
        /^(session\s+required\s+pam_env\.so user_readenv=1.*)$/m,
        `$1\nsession optional pam_exec.so ${witness}\n${sshd.esrLine}`,
      );
    expect(weak).toContain(`${witness}\n${sshd.esrLine}`);
    const pamEnvironment = join(sshd.home, ".pam_environment");
    writeFileSync(pamEnvironment, 'SSH_CONNECTION OVERRIDE="6.6.6.6 1111 7.7.7.7 22"\nPAM_USER OVERRIDE=root\n');
    const account = lookupAccount(sshd.user);
    chownSync(pamEnvironment, account.uid, account.gid);
    sshd.setPamStack(weak);
    try {
      const r = await sshd.ssh([], `cat /proc/self/cgroup; echo "conn=$SSH_CONNECTION"`);
      expect(r.exitCode).toBe(0);
      // The forged values reached the hooks; getenv("PAM_USER") would even say root.
      expect(readFileSync(witnessLog, "utf8")).toBe(`6.6.6.6 1111 7.7.7.7 22\nPAM_USER=root\nPAM_USER=${sshd.user}\n`);
      const sid = sidOf(r.stdout);
      const clientPort = /conn=127\.0\.0\.1 (\d+) /.exec(r.stdout)?.[1];
      await daemon.waitForEnd(sid);
      const start = ofType(await replayEvents(setup.dataDir, sid), "session.start")[0]!;
      expect(start).toMatchObject({
        "addr.remote": `127.0.0.1:${clientPort}`,
        "addr.local": `127.0.0.1:${sshd.port}`,
        login: sshd.user,
        user: sshd.user,
      });
      const check = await runEsr([
        "check",
        "--sshd",
        sshd.binary,
        "--sshd-config",
        sshd.config,
        "--socket",
        setup.socket,
      ]);
      expect(check.stdout).toMatch(/^warn +sshd PAM env +\S+ reads ~\/\.pam_environment before the esr line/m);
    } finally {
      sshd.setPamStack(sshd.readmeStack());
      rmSync(pamEnvironment, { force: true });
    }
  });
});

describe("esr check on this sshd", () => {
  const check = (config = sshd.config) =>
    runEsr(["check", "--sshd", sshd.binary, "--sshd-config", config, "--socket", setup.socket]);
  const sshdLines = (stdout: string) => stdout.split("\n").filter((l) => /^\S+ +(sshd|esr daemon)/.test(l));

  test("set up as README says: every sshd item passes", async () => {
    const r = await check();
    expect(sshdLines(r.stdout)).toEqual([
      `ok    sshd UsePAM     yes (PAM service ${sshd.service})`,
      `ok    sshd PAM hook   ${sshd.pamFile}:${sshd.readmeStack().split("\n").indexOf(sshd.esrLine) + 1}: ${sshd.esrLine}`,
      "ok    sshd Match      no Match block sends logins to another PAM service",
      `ok    esr daemon      listening on ${setup.socket}`,
    ]);
    expect(r.exitCode).toBe(0);
  });

  test("UsePAM no, a stack without the line, an optional line, a line before pam_systemd: each fails", async () => {
    const noPam = join(sshd.dir, "sshd_config.nopam");
    writeFileSync(noPam, sshd.configText().replace("UsePAM yes", "UsePAM no"));
    const r1 = await check(noPam);
    expect(r1.exitCode).toBe(1);
    expect(r1.stdout).toMatch(/^FAIL +sshd UsePAM +UsePAM no: sshd never runs the PAM session stack/m);
    try {
      sshd.setPamStack(readFileSync("/etc/pam.d/sshd", "utf8"));
      const r2 = await check();
      expect(r2.exitCode).toBe(1);
      expect(r2.stdout).toContain(
        `FAIL  sshd PAM hook   ${sshd.pamFile} has no "session required pam_exec.so /usr/local/sbin/esr pam" line: logins bypass esr`,
      );
      sshd.setPamStack(sshd.readmeStack().replace(sshd.esrLine, sshd.esrLine.replace("required", "optional")));
      const r3 = await check();
      expect(r3.exitCode).toBe(1);
      expect(r3.stdout).toMatch(
        /^FAIL +sshd PAM hook +\S+: session optional: a failed hook lets the login run unrecorded/m,
      );
      // Before common-session: pam_systemd would move the login out of its slice on a systemd host.
      const early = readFileSync("/etc/pam.d/sshd", "utf8").replace(
        /^(session\s+required\s+pam_loginuid\.so.*)$/m,
        `$1\n${sshd.esrLine}`,
      );
      sshd.setPamStack(early);
      const r4 = await check();
      expect(r4.exitCode).toBe(1);
      expect(r4.stdout).toMatch(
        /^FAIL +sshd PAM hook +\/etc\/pam\.d\/common-session:\d+: pam_systemd runs after the esr line/m,
      );
    } finally {
      sshd.setPamStack(sshd.readmeStack());
    }
  });
});

/** Connects to a local port and returns everything it says before closing (or within 3 s). */
function throughForward(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => void setTimeout(() => s.end(), 3000),
        data: (_s, chunk) => void (text += chunk.toString()),
        close: () => resolve(text),
        error: (_s, err) => reject(err),
        connectError: (_s, err) => reject(err),
      },
    }).catch(reject);
  });
}

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}
