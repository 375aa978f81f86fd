/**
 * `esr record` end to end: the real executable, real processes in a real cgroup slice, events
 * from the real kernel. Each test records its own session in its own data dir.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESR, execLines, ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";
import { sessionFilePath } from "../support/pty-session.ts";

const COMMAND_ONLY = ["--events", "command"];

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
});

describe("what terminal recordings miss", () => {
  test("an obfuscated pipeline yields the decoded command with its arguments", async () => {
    // base64 of: /bin/echo decoded-secret-marker --flag value
    const encoded = Buffer.from("/bin/echo decoded-secret-marker --flag value\n").toString("base64");
    const r = await record(["bash", "-c", `echo ${encoded} | base64 -d | sh`], { flags: COMMAND_ONLY });
    expect(r.exitCode).toBe(0);
    const execs = execLines(await replayEvents(r.dataDir, r.sid));
    expect(execs).toContain("/bin/echo decoded-secret-marker --flag value");
    expect(execs.some((l) => /base64 -d$/.test(l))).toBe(true);
  });

  test("the commands inside an executed script file", async () => {
    const dir = tempDir();
    const script = join(dir, "payload.sh");
    writeFileSync(
      script,
      "#!/bin/sh\n/bin/echo from-inside-the-script 1\nid -u >/dev/null\n/bin/echo from-inside-the-script 2\n",
    );
    chmodSync(script, 0o755);
    const r = await record([script], { flags: COMMAND_ONLY });
    const execs = execLines(await replayEvents(r.dataDir, r.sid));
    // For a script the kernel runs the interpreter with the script's path as its first argument.
    expect(execs[0]).toBe(`${script} ${script}`);
    expect(execs).toContain("/bin/echo from-inside-the-script 1");
    expect(execs).toContain("/bin/echo from-inside-the-script 2");
    expect(execs.some((l) => /\/id -u$/.test(l))).toBe(true);
  });

  test("a command typed after stty -echo on a pty", async () => {
    const dataDir = tempDir();
    let screen = "";
    const proc = Bun.spawn(
      [ESR, "record", "--data-dir", dataDir, ...COMMAND_ONLY, "--", "bash", "--norc", "--noprofile", "-i"],
      {
        terminal: { cols: 100, rows: 30, data: (_t, bytes) => (screen += new TextDecoder().decode(bytes)) },
        env: { ...process.env, PS1: "prompt$ " },
      },
    );
    const term = proc.terminal!;
    const waitFor = async (text: string) => {
      for (let i = 0; i < 200 && !screen.includes(text); i++) await Bun.sleep(25);
      if (!screen.includes(text))
        throw new Error(`never saw ${JSON.stringify(text)} on the terminal; saw ${JSON.stringify(screen)}`);
    };
    await waitFor("prompt$ ");
    term.write("stty -echo\r");
    await Bun.sleep(200);
    term.write("/bin/echo typed-while-echo-was-off\r");
    await waitFor("typed-while-echo-was-off\r\n");
    term.write("stty echo; exit 5\r");
    expect(await proc.exited).toBe(5);
    // The command line itself was never echoed: only its output reached the screen.
    expect(screen).not.toContain("/bin/echo typed-while-echo-was-off");
    const sid = /esr: session ([0-9a-f-]{36})/.exec(screen)?.[1];
    expect(sid).toBeDefined();
    const execs = execLines(await replayEvents(dataDir, sid!));
    expect(execs).toContain("/bin/echo typed-while-echo-was-off");
    expect(execs.some((l) => /stty -echo$/.test(l))).toBe(true);
  });
});

describe("execs", () => {
  test("a failed exec is recorded with -ENOENT", async () => {
    const r = await record(["bash", "-c", "exec /no/such/program arg1 'arg two'"], { flags: COMMAND_ONLY });
    expect(r.exitCode).toBe(127);
    const failed = ofType(await replayEvents(r.dataDir, r.sid), "session.command").find(
      (e) => e.path === "/no/such/program",
    );
    expect(failed).toBeDefined();
    expect(failed!.return_code).toBe(-2);
    expect(failed!.argv).toEqual(["arg1", "arg two"]);
  });

  test("COMMAND's own first exec is recorded", async () => {
    const r = await record(["/bin/echo", "very-first-exec"], { flags: COMMAND_ONLY });
    const cmds = ofType(await replayEvents(r.dataDir, r.sid), "session.command");
    expect(cmds[0]?.path).toBe("/bin/echo");
    expect(cmds[0]?.argv).toEqual(["very-first-exec"]);
    expect(cmds[0]?.ppid).toBeGreaterThan(1);
  });

  test("a process outside the session, running at the same time, is not recorded", async () => {
    const outside = Bun.spawn([
      "bash",
      "-c",
      "for i in $(seq 1 60); do /bin/echo outside-marker >/dev/null; sleep 0.01; done",
    ]);
    const r = await record(
      ["bash", "-c", "for i in $(seq 1 20); do /bin/echo inside-marker >/dev/null; sleep 0.01; done"],
      { flags: COMMAND_ONLY },
    );
    await outside.exited;
    const execs = execLines(await replayEvents(r.dataDir, r.sid));
    expect(execs.filter((l) => l.endsWith("inside-marker")).length).toBe(20);
    expect(execs.filter((l) => l.includes("outside-marker"))).toEqual([]);
  });

  test("arguments with spaces, newlines, empty strings and quotes come back exactly", async () => {
    const args = ["", "two words", "line1\nline2", `quote'"`, "-", "--x=y"];
    const r = await record(["/bin/true", ...args], { flags: COMMAND_ONLY });
    const first = ofType(await replayEvents(r.dataDir, r.sid), "session.command")[0];
    expect(first?.argv).toEqual(args);
  });

  test("argv beyond 32 KiB is cut with a visible marker, never silently", async () => {
    const big = Array.from({ length: 3000 }, (_, i) => `argument-${i}`); // ≈ 40 KiB
    const r = await record(["/bin/true", ...big], { flags: COMMAND_ONLY });
    const first = ofType(await replayEvents(r.dataDir, r.sid), "session.command")[0]!;
    const argv = first.argv;
    expect(first.argv_truncated).toBe(true);
    expect(argv[argv.length - 1]).toMatch(/^\[esr: argv truncated\] \d+ bytes in all$/);
    expect(argv.slice(0, 100)).toEqual(big.slice(0, 100));
    expect(argv.join(" ").length).toBeGreaterThan(32 * 1024 - 100);
  });
});

describe("exit status", () => {
  test("COMMAND's exit status is esr's", async () => {
    expect((await record(["bash", "-c", "exit 7"], { flags: COMMAND_ONLY })).exitCode).toBe(7);
    expect((await record(["true"], { flags: COMMAND_ONLY })).exitCode).toBe(0);
  });

  test("a command killed by signal N exits 128+N, and session.end says so", async () => {
    const r = await record(["bash", "-c", "kill -TERM $$"], { flags: COMMAND_ONLY });
    expect(r.exitCode).toBe(143);
    const end = ofType(await replayEvents(r.dataDir, r.sid), "session.end")[0];
    expect(end?.exit_code).toBe(143);
  });
});

describe("the session", () => {
  test("ESR_SESSION_ID is exported to the command", async () => {
    const dir = tempDir();
    const out = join(dir, "sid");
    const r = await record(["bash", "-c", `echo -n "$ESR_SESSION_ID" > ${out}`], { flags: COMMAND_ONLY });
    expect(readFileSync(out, "utf8")).toBe(r.sid);
  });

  test("--login runs the command as that user, with that user's groups", async () => {
    const dir = tempDir();
    chmodSync(dir, 0o777);
    const r = await record(["bash", "-c", `id -u > ${dir}/uid; id -G > ${dir}/groups; echo $HOME > ${dir}/home`], {
      flags: [...COMMAND_ONLY, "--login", "nobody"],
    });
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(dir, "uid"), "utf8").trim()).toBe("65534");
    expect(readFileSync(join(dir, "groups"), "utf8").trim()).toBe("65534");
    const events = await replayEvents(r.dataDir, r.sid);
    expect(ofType(events, "session.start")[0]?.login).toBe("nobody");
    expect(execLines(events).some((l) => /bash -c id -u/.test(l))).toBe(true);
  });

  test("processes left running are recorded until they exit; --kill-on-exit kills them", async () => {
    const lingering = ["bash", "-c", "(sleep 0.7; /bin/echo left-behind) & exit 0"];
    const waited = await record(lingering, { flags: COMMAND_ONLY });
    expect(execLines(await replayEvents(waited.dataDir, waited.sid))).toContain("/bin/echo left-behind");
    expect(waited.stderr).toContain("recording what it left running");

    const killed = await record(lingering, { flags: [...COMMAND_ONLY, "--kill-on-exit"] });
    expect(execLines(await replayEvents(killed.dataDir, killed.sid))).not.toContain("/bin/echo left-behind");
  });

  test("--quiet prints no session id", async () => {
    const dataDir = tempDir();
    const r = await runEsr(["record", "--quiet", "--data-dir", dataDir, ...COMMAND_ONLY, "--", "true"]);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe("");
  });

  test("session.end is in events.log, after every event of the session", async () => {
    const r = await record(["bash", "-c", "/bin/echo one; /bin/echo two"], { flags: COMMAND_ONLY });
    const log = readFileSync(join(r.dataDir, "log", "events.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const mine = log.filter((e) => e.sid === r.sid);
    expect(mine[0].event).toBe("session.start");
    expect(mine[mine.length - 1].event).toBe("session.end");
    expect(mine.map((e) => e.ei)).toEqual(mine.map((_, i) => i));
  });
});

describe("recorder killed with SIGKILL", () => {
  test("leaves .gz files that zcat and esr replay read, and the next run removes its slice", async () => {
    const dataDir = tempDir();
    const proc = Bun.spawn(
      [
        ESR,
        "record",
        "--data-dir",
        dataDir,
        ...COMMAND_ONLY,
        "--",
        "bash",
        "-c",
        "for i in $(seq 1 400); do /bin/echo tick-$i >/dev/null; sleep 0.01; done",
      ],
      { stderr: "pipe" },
    );
    const reader = proc.stderr.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const sid = /session ([0-9a-f-]{36})/.exec(first)![1]!;
    await Bun.sleep(2000);
    proc.kill("SIGKILL");
    await proc.exited;

    const commandFile = sessionFilePath(dataDir, sid, "session.command");
    // Never finalized: no Teleport `.completed` marker tells a reader the files are whole.
    expect(existsSync(commandFile.replace(/-\d+\.session\.command-events\.gz$/, ".completed"))).toBe(false);
    const zcat = Bun.spawnSync(["zcat", commandFile]);
    expect(zcat.exitCode).toBe(0);
    const lines = zcat.stdout.toString().split("\n").filter(Boolean);
    // 2 s of a loop that execs every ~15 ms, flushed every 0.5 s: well over 50 must have reached disk.
    expect(lines.length).toBeGreaterThan(50);

    const replay = await runEsr(["replay", sid, "--data-dir", dataDir]);
    expect(replay.exitCode).toBe(0);
    expect(replay.stdout).toContain("tick-1");

    const slice = `/cgroup2/esr/${sid}`;
    expect(existsSync(slice)).toBe(true);
    await record(["true"], { flags: COMMAND_ONLY });
    expect(existsSync(slice)).toBe(false);
  });
});

describe("replay", () => {
  test("text replay: one aligned line per event with time, pid, kind, argv and return code", async () => {
    const r = await record(["bash", "-c", "/bin/echo hello world; exec /nope"], { flags: COMMAND_ONLY });
    const out = await runEsr(["replay", r.sid, "--data-dir", r.dataDir]);
    expect(out.exitCode).toBe(0);
    const lines = out.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} +start +login=root user=root command=bash -c /);
    expect(lines.some((l) => /^\d\d:\d\d:\d\d\.\d{3} +\d+ +exec +\/bin\/echo hello world .* = 0$/.test(l))).toBe(true);
    expect(lines.some((l) => / exec +\/nope .* = -2 ENOENT$/.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/ end +exit=127 lost=0 enhanced_recording=true$/);
  });

  test("json replay: the events exactly as stored, in ei order", async () => {
    const r = await record(["/bin/echo", "json"], { flags: COMMAND_ONLY });
    const events = await replayEvents(r.dataDir, r.sid);
    expect(events.map((e) => e.ei)).toEqual(events.map((_, i) => i));
    const sessions = readdirSync(join(r.dataDir, "log"), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith("command-events.gz"));
    expect(sessions.length).toBe(1);
    const stored = Bun.spawnSync(["zcat", join(r.dataDir, "log", sessions[0]!)])
      .stdout.toString()
      .trim()
      .split("\n");
    expect(stored).toEqual(ofType(events, "session.command").map((e) => JSON.stringify(e)));
  });
});

describe("Teleport's exec event: a command session's outcome", () => {
  const execOf = async (r: { dataDir: string; sid: string }) => {
    const events = await replayEvents(r.dataDir, r.sid);
    const execs = ofType(events, "exec");
    expect(execs).toHaveLength(1);
    // Written last before session.end, after every event of the command.
    expect(events.at(-2)).toBe(execs[0]!);
    return execs[0]!;
  };

  test('exit 0: T3002I, exitCode "0" as a string, no exitError', async () => {
    const r = await record(["/bin/true"], { flags: COMMAND_ONLY });
    expect(await execOf(r)).toMatchObject({ code: "T3002I", command: "/bin/true", exitCode: "0" });
    expect("exitError" in (await execOf(r))).toBe(false);
  });

  test('exit 3: T3002E, exitCode "3", exitError "exit status 3"; session.end keeps exit_code 3', async () => {
    const r = await record(["sh", "-c", "exit 3"], { flags: COMMAND_ONLY });
    expect(r.exitCode).toBe(3);
    expect(await execOf(r)).toMatchObject({ code: "T3002E", exitCode: "3", exitError: "exit status 3" });
    const [end] = ofType(await replayEvents(r.dataDir, r.sid), "session.end");
    expect(end!.exit_code).toBe(3);
  });

  test('killed by a signal: exitCode "-1", exitError in Go\'s words ("signal: killed"), esr exits 128+9', async () => {
    const r = await record(["sh", "-c", "kill -KILL $$"], { flags: COMMAND_ONLY });
    expect(r.exitCode).toBe(137);
    expect(await execOf(r)).toMatchObject({ code: "T3002E", exitCode: "-1", exitError: "signal: killed" });
  });

  test("command is one line that sh turns back into the same argv, whatever the arguments hold", async () => {
    const argv = ["printf", "%s|", "two words", "it's", "$HOME `id`", "new\nline", ""];
    const r = await record(argv, { flags: COMMAND_ONLY });
    const { command } = await execOf(r);
    const parsed = Bun.spawnSync(["sh", "-c", `eval "set -- $1"; printf '%s\\0' "$@"`, "sh", command]);
    expect(parsed.stdout.toString().split("\0").slice(0, -1)).toEqual(argv);
  });

  test("a login shell (no command) gets none, as Teleport writes none for a shell session", async () => {
    const r = await record([], { flags: COMMAND_ONLY, stdin: "exit 0\n" });
    const events = await replayEvents(r.dataDir, r.sid);
    expect(ofType(events, "session.end")).toHaveLength(1);
    expect(ofType(events, "exec")).toEqual([]);
  });
});
