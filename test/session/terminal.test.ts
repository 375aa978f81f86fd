/**
 * `esr record` on a terminal (issue 6): the command gets its own pty, keys and window size reach
 * it, the output with its timing is recorded in Teleport's format (chunks file + print events), and
 * the user's terminal comes back as it was. Every session here runs the real dist/esr on a real
 * pseudo-terminal, typed at like a user would.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ESR, execLines, ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";
import { PtySession, recordOnPty, sessionFile, sessionIndex } from "../support/pty-session.ts";

const COMMAND_ONLY = ["--events", "command"];
const PROMPT = "prompt$ ";
const BASH = ["bash", "--norc", "--noprofile", "-i"];

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
});

describe("an interactive bash session on a terminal", () => {
  test("typed input, a resize and Ctrl-C reach bash; output, sizes and timing are recorded", async () => {
    const { session: tty, dataDir } = recordOnPty(BASH, {
      flags: COMMAND_ONLY,
      env: { PS1: PROMPT },
      cols: 100,
      rows: 30,
    });
    const terminalBefore = termios(tty.terminal);
    await tty.waitFor(PROMPT);
    // In raw mode: no echo, no signal keys, no output processing (the pty of bash does all that).
    expect(tty.terminal.localFlags & (ECHO | ICANON | ISIG)).toBe(0);
    expect(tty.terminal.outputFlags & OPOST).toBe(0);

    expect(await tty.run("stty size", PROMPT)).toContain("30 100\r\n");
    tty.terminal.resize(120, 40);
    await Bun.sleep(200);
    expect(await tty.run("stty size", PROMPT)).toContain("40 120\r\n");

    const from = tty.screen.length;
    tty.keys("sleep 30\r");
    await tty.waitFor("sleep 30\r\n", from);
    await Bun.sleep(300);
    tty.keys("\x03");
    await tty.waitFor(`^C\r\n`, from);
    expect(await tty.run("echo rc=$?", PROMPT)).toContain("rc=130\r\n");
    tty.keys("exit 3\r");
    expect(await tty.exited()).toBe(3);
    const sid = tty.sid();

    // The user's terminal is back as it was.
    expect(termios(tty.terminal)).toEqual(terminalBefore);

    // What the user's terminal showed is esr's own line, then exactly the recorded output.
    const chunks = sessionFile(dataDir, sid, "chunks");
    expect(tty.bytes.equals(Buffer.concat([Buffer.from(`esr: session ${sid}\r\n`), chunks]))).toBe(true);

    const events = await replayEvents(dataDir, sid);
    expect(ofType(events, "session.start")[0]?.size).toBe("100:30");
    const resizes = ofType(events, "resize");
    expect(resizes.map((e) => [e.code, e.size, e.sid, typeof e.uid, typeof e.time])).toEqual([
      ["T2002I", "120:40", sid, "string", "string"],
    ]);
    expect(execLines(events).some((l) => / 30$/.test(l) && l.includes("sleep"))).toBe(true);
    expect(ofType(events, "session.end")[0]).toMatchObject({ exit_code: 3, interactive: true });

    // Print events tile the chunks stream in order, batched, timed since session start.
    const prints = ofType(events, "print");
    expect(prints.length).toBeGreaterThan(3);
    expect(prints.length).toBeLessThan(chunks.length / 4);
    let offset = 0;
    let ms = 0;
    for (const [ci, p] of prints.entries()) {
      expect(Object.keys(p).sort()).toEqual(["bytes", "ci", "ei", "event", "ms", "offset", "time"]);
      expect(p.ci).toBe(ci);
      expect(p.offset).toBe(offset);
      expect(p.ms).toBeGreaterThanOrEqual(ms);
      offset += p.bytes;
      ms = p.ms;
    }
    expect(offset).toBe(chunks.length);
    expect(ms).toBeGreaterThan(500); // the 300 ms of sleep and more

    expect(sessionIndex(dataDir, sid).find((e) => e.type === "chunks")?.file_name).toBe(`${sid}-0.chunks.gz`);
    // The host's log (the SIEM feed) has the resize but not the print events.
    const log = readFileSync(join(dataDir, "log", "events.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(log.filter((e) => e.event === "resize").length).toBe(1);
    expect(log.filter((e) => e.event === "print")).toEqual([]);
  });

  test("full-screen programs and job control work: vim saves, less pages, Ctrl-Z stops and fg resumes", async () => {
    const dir = tempDir();
    const file = join(dir, "typed-in-vim.txt");
    const { session: tty } = recordOnPty(BASH, { flags: COMMAND_ONLY, env: { PS1: PROMPT } });
    await tty.waitFor(PROMPT);

    let from = tty.screen.length;
    tty.keys(`vim -u NONE -N ${file}\r`);
    await tty.waitFor('typed-in-vim.txt" [New]', from);
    tty.keys("ihello from vim\x1b:wq\r");
    await tty.waitFor(PROMPT, from + 10);
    expect(readFileSync(file, "utf8")).toBe("hello from vim\n");

    from = tty.screen.length;
    tty.keys("seq 1 500 | less\r");
    await tty.waitFor("\r\n29\r\n", from);
    tty.keys("G");
    await tty.waitFor("500", from);
    tty.keys("q");
    await tty.waitFor(PROMPT, from + 10);

    from = tty.screen.length;
    tty.keys("sleep 30\r");
    await tty.waitFor("sleep 30\r\n", from);
    await Bun.sleep(300);
    tty.keys("\x1a");
    await tty.waitFor("Stopped", from);
    await tty.waitFor(PROMPT, from + 10);
    expect(await tty.run("jobs -l", PROMPT)).toMatch(/\[1\]\+ +\d+ Stopped +sleep 30/);
    from = tty.screen.length;
    tty.keys("fg\r");
    await tty.waitFor("sleep 30\r\n", from);
    await Bun.sleep(300);
    tty.keys("\x03");
    await tty.waitFor(PROMPT, from + 5);
    expect(await tty.run("echo rc=$?", PROMPT)).toContain("rc=130\r\n");
    tty.keys("exit\r");
    expect(await tty.exited()).toBe(0);
  }, 20_000);

  test("--login: the pty belongs to the user the command runs as", async () => {
    const { session: tty } = recordOnPty(["bash", "--norc", "--noprofile", "-i"], {
      flags: [...COMMAND_ONLY, "--login", "nobody"],
    });
    await tty.waitFor("$ ");
    const out = await tty.run("echo user=$(id -un) owner=$(stat -c %U $(tty)) term=$TERM", "$ ");
    expect(out).toContain("user=nobody owner=nobody term=xterm\r\n");
    tty.keys("exit\r");
    expect(await tty.exited()).toBe(0);
  });

  test("the recorder neither dies of SIGINT nor stops on SIGTSTP; keys are for the command", async () => {
    const { session: tty } = recordOnPty(BASH, { flags: COMMAND_ONLY, env: { PS1: PROMPT } });
    await tty.waitFor(PROMPT);
    for (const sig of ["SIGINT", "SIGTSTP", "SIGQUIT"] as const) tty.proc.kill(sig);
    await Bun.sleep(200);
    expect(readFileSync(`/proc/${tty.proc.pid}/stat`, "utf8").split(") ")[1]?.[0]).not.toBe("T");
    expect(await tty.run("echo still-here", PROMPT)).toContain("still-here\r\n");
    tty.keys("exit 0\r");
    expect(await tty.exited()).toBe(0);
  });

  test("output of what the command left running is recorded until it exits, and reaches the terminal", async () => {
    const { session: tty, dataDir } = recordOnPty(
      ["bash", "-c", "setsid sh -c 'sleep 0.4; echo late-output' & sleep 0.1; echo first-output"],
      { flags: COMMAND_ONLY },
    );
    expect(await tty.exited()).toBe(0);
    expect(tty.screen).toContain("late-output");
    expect(sessionFile(dataDir, tty.sid(), "chunks").toString()).toBe("first-output\r\nlate-output\r\n");
  });

  test("when what reads esr's output goes away (a closed pipe), the command's pty hangs up and the session ends cleanly", async () => {
    const dataDir = tempDir();
    const tty = new PtySession([
      "bash",
      "-c",
      `${ESR} record --data-dir ${dataDir} --events command -- yes | head -1; echo "esr=\${PIPESTATUS[0]}"`,
    ]);
    expect(await tty.exited()).toBe(0);
    expect(tty.screen).toContain("y\r\nesr=129\r\n");
    const end = ofType(await replayEvents(dataDir, tty.sid()), "session.end")[0];
    expect(end?.exit_code).toBe(129);
  });
});

describe("not on a terminal", () => {
  test("plain pipes: no pty, no chunks, no size; play says there is no terminal recording", async () => {
    const r = await record(["bash", "-c", "test -t 0 || test -t 1 || echo no-terminal"], {
      flags: COMMAND_ONLY,
      stdin: "",
    });
    expect(r.stdout).toBe("no-terminal\n");
    expect(sessionIndex(r.dataDir, r.sid).map((e) => e.type)).not.toContain("chunks");
    const events = await replayEvents(r.dataDir, r.sid);
    expect(ofType(events, "session.start")[0]?.size).toBeUndefined();
    expect(ofType(events, "session.end")[0]?.interactive).toBe(false);
    const play = await runEsr(["play", r.sid, "--data-dir", r.dataDir]);
    expect(play.exitCode).toBe(1);
    expect(play.stderr).toBe(`esr: session ${r.sid} has no terminal recording\n`);
  });
});

/** termios flags, from <termios.h> (Linux). */
const ECHO = 0o10;
const ICANON = 0o2;
const ISIG = 0o1;
const OPOST = 0o1;

function termios(t: Bun.Terminal) {
  return { iflag: t.inputFlags, oflag: t.outputFlags, lflag: t.localFlags, cflag: t.controlFlags };
}
