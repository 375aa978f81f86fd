/**
 * Playing a terminal recording back (`esr play`) and reading it next to the events
 * (`esr replay --tty`): recorded with the real dist/esr on a real pty, played back by it.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { ScreenText } from "../../lib/replay/screen-text.ts";
import { ESR, record, runEsr } from "../support/harness.ts";
import { sessionsDir } from "../support/harness.ts";
import { PtySession, recordOnPty, sessionFile, sessionIndex } from "../support/pty-session.ts";

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
});

/** `esr play`'s stdout as bytes, and how long it took. */
async function play(sid: string, dataDir: string, flags: string[] = []) {
  const started = performance.now();
  const proc = Bun.spawn([ESR, "play", sid, "--data-dir", dataDir, ...flags], { stdout: "pipe", stderr: "pipe" });
  const [out, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).arrayBuffer(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { bytes: Buffer.from(out), stderr, exitCode, seconds: (performance.now() - started) / 1000 };
}

describe("esr play", () => {
  let sid: string;
  let dataDir: string;
  let seen: Buffer;
  let chunks: Buffer;

  beforeAll(async () => {
    // Two pauses of 1.2 s between three bursts of output, one with colours.
    const r = recordOnPty(
      ["bash", "-c", "/bin/echo one; sleep 1.2; /bin/echo two; sleep 1.2; printf 'three \\033[31mred\\033[0m\\n'"],
      { flags: ["--events", "command"], cols: 100, rows: 30 },
    );
    expect(await r.session.exited()).toBe(0);
    sid = r.session.sid();
    dataDir = r.dataDir;
    seen = r.session.bytes.subarray(`esr: session ${sid}\r\n`.length);
    chunks = sessionFile(dataDir, sid, "chunks");
  });

  test("reproduces what the terminal showed, byte for byte", async () => {
    expect(seen.toString()).toBe("one\r\ntwo\r\nthree \x1b[31mred\x1b[0m\r\n");
    expect(chunks.equals(seen)).toBe(true);
    const fast = await play(sid, dataDir, ["--speed", "1000"]);
    expect(fast.exitCode).toBe(0);
    expect(fast.stderr).toBe("");
    expect(fast.bytes.equals(seen)).toBe(true);
    // The recording holds two 1.2 s pauses: at 1000× the whole play is the executable's start alone.
    expect(fast.seconds).toBeLessThan(1.2);
  });

  test("at recorded speed, N times faster, and with idle time cut", async () => {
    const [normal, faster, skipIdle] = await Promise.all([
      play(sid, dataDir),
      play(sid, dataDir, ["--speed", "4"]),
      play(sid, dataDir, ["--skip-idle"]),
    ]);
    for (const p of [normal, faster, skipIdle]) expect(p.bytes.equals(seen)).toBe(true);
    expect(normal.seconds).toBeGreaterThan(2.3);
    expect(faster.seconds).toBeGreaterThan(0.55);
    // Bounds relative to the normal play of the same run, so a slow host shifts all three alike.
    expect(faster.seconds).toBeLessThan(normal.seconds - 1.2);
    // Each 1.2 s pause plays as 0.5 s: 1.4 s less than the normal play.
    expect(skipIdle.seconds).toBeGreaterThan(0.95);
    expect(skipIdle.seconds).toBeLessThan(normal.seconds - 1.0);
  });

  test("megabytes of output, played into a pipe, byte for byte", async () => {
    const r = recordOnPty(["seq", "1", "400000"], { flags: ["--events", "command"] });
    expect(await r.session.exited()).toBe(0);
    const big = sessionFile(r.dataDir, r.session.sid(), "chunks");
    expect(big.length).toBeGreaterThan(2_000_000);
    const played = await play(r.session.sid(), r.dataDir, ["--speed", "1000"]);
    expect(played.exitCode).toBe(0);
    expect(played.bytes.length).toBe(big.length);
    expect(played.bytes.equals(big)).toBe(true);
    // A reader that stops early ends playback quietly.
    const head = Bun.spawnSync([
      "bash",
      "-c",
      `${ESR} play ${r.session.sid()} --data-dir ${r.dataDir} --speed 1000 | head -c 7; echo " esr=\${PIPESTATUS[0]}"`,
    ]);
    expect(head.stdout.toString()).toBe("1\r\n2\r\n3 esr=0\n");
    expect(head.stderr.toString()).toBe("");
  });

  test("on a terminal: the output shows, with a note when the sizes differ", async () => {
    const tty = new PtySession([ESR, "play", sid, "--data-dir", dataDir, "--speed", "100"], { cols: 80, rows: 24 });
    expect(await tty.exited()).toBe(0);
    expect(tty.screen).toStartWith("esr: recorded on a 100x30 terminal, this one is 80x24\r\n");
    // This terminal adds a CR before each LF: the recorded CR LF arrive as CR CR LF.
    expect(tty.screen.replaceAll("\r\r\n", "\r\n")).toEndWith(seen.toString());
  });

  test("bad input: one line on stderr, non-zero exit", async () => {
    const cases: [string[], number, string][] = [
      [["play", "--data-dir", dataDir], 2, "esr: play: which session? (esr play <sid>; esr ls lists them)\n"],
      [
        ["play", "not-a-session", "--data-dir", dataDir],
        1,
        'esr: invalid session id "not-a-session": expected a UUID such as 86aca627-971d-4883-854d-d309ba04c658\n',
      ],
      [
        ["play", "0f0f0f0f-0000-4000-8000-000000000000", "--data-dir", dataDir],
        1,
        `esr: unknown session 0f0f0f0f-0000-4000-8000-000000000000 (not in ${dataDir})\n`,
      ],
      [
        ["play", sid, "--data-dir", dataDir, "--speed", "0"],
        2,
        'esr: play: --speed must be a positive number, not "0"\n',
      ],
      [
        ["play", sid, "--data-dir", dataDir, "--speed", "fast"],
        2,
        'esr: play: --speed must be a positive number, not "fast"\n',
      ],
      [["play", sid, "--data-dir", dataDir, "--pause"], 2, "esr: play: unknown option --pause (see esr play --help)\n"],
    ];
    for (const [args, exitCode, stderr] of cases) {
      const r = await runEsr(args);
      expect({ args, exitCode: r.exitCode, stderr: r.stderr, stdout: r.stdout }).toEqual({
        args,
        exitCode,
        stderr,
        stdout: "",
      });
    }
  });

  // Last: it damages the recording.
  test("a damaged chunks file plays up to the damage, then warns and exits 3", async () => {
    const entry = sessionIndex(dataDir, sid).find((e) => e.type === "chunks")!;
    const path = join(sessionsDir(dataDir), entry.file_name);
    truncateSync(path, statSync(path).size - 5);
    const r = await play(sid, dataDir, ["--speed", "1000"]);
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toMatch(
      new RegExp(
        `^esr: warning: ${path}: damaged at byte \\d+ \\(gzip member \\d+\\): .*; showing the output before it\\n`,
      ),
    );
    expect(r.bytes.length).toBeGreaterThan(0);
    expect(r.bytes.length).toBeLessThan(seen.length);
    expect(seen.subarray(0, r.bytes.length).equals(r.bytes)).toBe(true);
  });
});

describe("esr replay --tty", () => {
  test("what the user saw, and what actually ran: a decoded pipeline, a command typed with echo off", async () => {
    const PROMPT = "prompt$ ";
    const { session: tty, dataDir } = recordOnPty(["bash", "--norc", "--noprofile", "-i"], {
      flags: ["--events", "command"],
      env: { PS1: PROMPT },
    });
    await tty.waitFor(PROMPT);
    const encoded = Buffer.from("/bin/echo decoded-secret\n").toString("base64");
    await tty.run(`echo ${encoded} | base64 -d | sh`, PROMPT);
    await tty.run("stty -echo", PROMPT);
    await tty.run("/bin/echo typed-blind", PROMPT);
    await tty.run("stty echo", PROMPT);
    tty.keys("exit\r");
    expect(await tty.exited()).toBe(0);

    const r = await runEsr(["replay", tty.sid(), "--data-dir", dataDir, "--tty"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain("\x1b");
    const lines = r.stdout.trimEnd().split("\n");
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const output = lines.filter((l) => l.startsWith("|"));
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} +start +login=root .* size=100:30$/);
    expect(lines.at(-1)).toMatch(/ end +exit=0 /);
    // The screen showed an opaque pipeline and its output; the events show what it decoded to.
    const pipeline = at(new RegExp(`^\\| prompt\\$ echo ${encoded} \\| base64 -d \\| sh$`));
    expect(pipeline).toBeGreaterThan(0);
    expect(output).toContain("| decoded-secret");
    expect(at(/^\S+ +\d+ +exec +\/bin\/echo decoded-secret  \[ppid \d+, echo\] = 0$/)).toBeGreaterThan(pipeline);
    // With echo off the command line never reached the screen; its exec did happen.
    const blind = at(/ exec +\/bin\/echo typed-blind /);
    expect(blind).toBeGreaterThan(at(/^\| prompt\$ stty -echo$/));
    expect(output.filter((l) => l.includes("/bin/echo typed-blind"))).toEqual([]);
    expect(output).toContain("| typed-blind");

    // --type limits the events shown between the output, not the output.
    const onlyCommands = await runEsr(["replay", tty.sid(), "--data-dir", dataDir, "--tty", "--type", "command"]);
    const kinds = onlyCommands.stdout
      .trimEnd()
      .split("\n")
      .filter((l) => !l.startsWith("|"))
      .map((l) => l.split(/ +/)[2]);
    expect(new Set(kinds)).toEqual(new Set(["exec"]));
    expect(onlyCommands.stdout).toContain("| decoded-secret\n");
  });

  test("a session recorded without a terminal has no --tty view", async () => {
    const recorded = await record(["/bin/true"], { flags: ["--events", "command"] });
    const r = await runEsr(["replay", recorded.sid, "--data-dir", recorded.dataDir, "--tty"]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(`esr: session ${recorded.sid} has no terminal recording\n`);
  });
});

describe("terminal output as text (ScreenText)", () => {
  const text = (...writes: (string | Uint8Array)[]) => {
    const screen = new ScreenText();
    const lines = writes.flatMap((w) => screen.write(typeof w === "string" ? Buffer.from(w) : w));
    return [...lines, ...screen.flush()];
  };

  test("line editing as readline draws it: carriage returns, backspaces, erase to end of line", () => {
    expect(text("\x1b[?2004hprompt$ \r\x1b[K\rprompt$ lx\b \bs -l\r\n")).toEqual(["prompt$ ls -l"]);
    expect(text("abcdef\rXY\r\n")).toEqual(["XYcdef"]);
    expect(text("long line\x1b[7D\x1b[Kng\r\n\r\n")).toEqual(["long", ""]);
    expect(text("old text\r\x1b[2Knew\r\n")).toEqual(["new"]);
  });

  test("colours, titles and other escape sequences are dropped, even split across writes", () => {
    expect(
      text("\x1b]0;evil title\x07\x1b[1;31mred\x1b[0m", " \x1b]52;c;Y2xpcA==\x1b\\plain\x1b[", "32mgreen\r\n"),
    ).toEqual(["red plaingreen"]);
    expect(text("bell\x07 and \x0eshift\x0f and \x9bC1\r\n")).toEqual(["bell and shift and C1"]);
  });

  test("UTF-8 split across writes is kept whole", () => {
    const bytes = Buffer.from("naïve ✓\r\n");
    expect(text(bytes.subarray(0, 3), bytes.subarray(3, 9), bytes.subarray(9))).toEqual(["naïve ✓"]);
  });

  test("a full-screen program comes out one line per screen row it draws", () => {
    expect(text("\x1b[?1049h\x1b[H\x1b[2J\x1b[1;1Htitle\x1b[2;1Hbody\x1b[2;10Hmore\x1b[24;1H:wq")).toEqual([
      "title",
      "body     more",
      ":wq",
    ]);
  });
});
