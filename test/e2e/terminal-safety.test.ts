/**
 * Issue #19, item 5: a recorded session must not be able to drive, reorder or hide what a reviewer
 * reads. An ordinary login (nobody) plants terminal controls, C1, bidi and invisible characters
 * and bytes that are not UTF-8 in everything it can influence — its comm (prctl PR_SET_NAME), exec
 * paths, argv, opened paths, terminal output — and every text view of its record is checked for a
 * single raw one, while the JSON keeps each value exactly.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync } from "node:fs";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import { evade, requireRootAndEsr } from "../support/adversary.ts";
import { ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";
import { recordOnPty } from "../support/pty-session.ts";

setDefaultTimeout(120_000);

/**
 * What must not reach a reviewer's terminal raw, written out here independently of
 * lib/events/safe-text.ts: C0 but the line feed, DEL, C1, bidi controls, zero-width and other
 * format characters, line and paragraph separators, and U+FFFD (the trace of bytes that were not
 * UTF-8, which must be shown as such).
 */
const RAW_UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufffd]/u;

function expectTerminalSafe(what: string, text: string) {
  const bad = [...text].findIndex((c) => RAW_UNSAFE.test(c));
  if (bad >= 0)
    throw new Error(
      `${what} prints a raw ${JSON.stringify([...text][bad])} at ${bad}: ${JSON.stringify([...text].slice(Math.max(0, bad - 40), bad + 20).join(""))}`,
    );
}

const ERASE_ABOVE = "\x1b[4A\x1b[J";
const CSI8 = "\u009b2J";
const RLO = "\u202e";
const LRI = "\u2066";
const ZWSP = "\u200b";
const LS = "\u2028";

let EVADE: string;
let dataDir: string;
let sid: string;
let events: AuditEvent[];

beforeAll(async () => {
  requireRootAndEsr();
  EVADE = evade();
  const dir = tempDir("esr-hostile-");
  chmodSync(dir, 0o777);
  // Names the session makes for itself: the invalid byte \377 only a shell's printf can produce.
  const script = `
    d="$1"; evade="$2"
    "$evade" comm "$3" "$d/$4" || true
    f="$d/$(printf 'a\\302\\2332Jb\\342\\200\\213c\\377')"
    : > "$f"; cat "$f"
    /bin/echo "$5" "$(printf 'bad\\377byte')"
  `;
  const r = await record(
    [
      "sh",
      "-c",
      script,
      "sh",
      dir,
      EVADE,
      ERASE_ABOVE,
      `invoice${RLO}fdp.exe`,
      `x${CSI8}y${RLO}z${LRI}w${ZWSP}v${LS}u`,
    ],
    { flags: ["--events", "command,disk,network", "--login", "nobody", "--user", `eve${RLO}\x1b]0;t\x07`] },
  );
  expect(r.exitCode).toBe(0);
  ({ dataDir, sid } = r);
  events = await replayEvents(dataDir, sid);
});

describe("a session's hostile strings", () => {
  test("are stored exactly in JSON", () => {
    const commands = ofType(events, "session.command");
    const failed = commands.find((e) => e.program === ERASE_ABOVE);
    expect(failed?.path).toEndWith(`/invoice${RLO}fdp.exe`);
    expect(failed?.return_code).toBe(-2);
    const echo = commands.find((e) => e.path === "/bin/echo");
    expect(echo?.argv).toEqual([`x${CSI8}y${RLO}z${LRI}w${ZWSP}v${LS}u`, "bad\ufffdbyte"]);
    const opens = ofType(events, "session.disk").filter((e) => String(e.path).endsWith(`a${CSI8}b${ZWSP}c\ufffd`));
    expect(opens.length).toBe(2);
    expect(ofType(events, "session.start")[0]?.user).toBe(`eve${RLO}\x1b]0;t\x07`);
  });

  test("replay text escapes every one of them, visibly", async () => {
    const out = await runEsr(["replay", sid, "--data-dir", dataDir]);
    expect(out.exitCode).toBe(0);
    expectTerminalSafe("replay text", out.stdout);
    expect(out.stdout).toContain("\\x1b[4A\\x1b[J] = -2 ENOENT");
    expect(out.stdout).toContain(`invoice\\u202efdp.exe`);
    expect(out.stdout).toContain(`/bin/echo $'x\\u009b2Jy\\u202ez\\u2066w\\u200bv\\u2028u' $'bad\\ufffdbyte'`);
    expect(out.stdout).toContain(`a\\u009b2Jb\\u200bc\\ufffd`);
    expect(out.stdout).toContain(`user=eve\\u202e\\x1b]0;t\\x07`);
  });

  test("replay --tree escapes them", async () => {
    const out = await runEsr(["replay", sid, "--data-dir", dataDir, "--tree"]);
    expect(out.exitCode).toBe(0);
    expectTerminalSafe("replay --tree", out.stdout);
    expect(out.stdout).toContain(`invoice\\u202efdp.exe`);
    expect(out.stdout).toContain(`a\\u009b2Jb\\u200bc\\ufffd`);
  });

  test("ls escapes them", async () => {
    const out = await runEsr(["ls", "--data-dir", dataDir]);
    expect(out.exitCode).toBe(0);
    expectTerminalSafe("ls", out.stdout);
    expect(out.stdout).toContain(`invoice\\u202efdp.exe`);
  });

  test("error messages that name a value escape it", async () => {
    for (const args of [
      ["replay", `${RLO}${CSI8}`, "--data-dir", dataDir],
      ["record", "--data-dir", dataDir, "--login", `x${ERASE_ABOVE}${RLO}`, "--", "true"],
      ["replay", sid, "--data-dir", dataDir, "--type", `disk${ZWSP}`],
    ]) {
      const out = await runEsr(args);
      expect(out.exitCode).not.toBe(0);
      expectTerminalSafe(`esr ${args[0]}'s error`, out.stderr.trimEnd());
      expect(out.stderr).toContain("\\u");
      expect(out.stderr.trimEnd().split("\n")).toHaveLength(1);
    }
  });
});

test("replay --tty escapes bidi and invisible characters in what the terminal showed, and the events between", async () => {
  const { session, dataDir: ttyDir } = recordOnPty(
    [
      "sh",
      "-c",
      `printf 'shown ${RLO}txt.exe ${ZWSP}${LS}x\\n'; "$0" comm "$1" /nonexistent || true`,
      EVADE,
      ERASE_ABOVE,
    ],
    { flags: ["--events", "command", "--login", "nobody"] },
  );
  expect(await session.exited()).toBe(0);
  const out = await runEsr(["replay", session.sid(), "--data-dir", ttyDir, "--tty"]);
  expect(out.exitCode).toBe(0);
  expectTerminalSafe("replay --tty", out.stdout);
  expect(out.stdout).toContain("| shown \\u202etxt.exe \\u200b\\u2028x");
  expect(out.stdout).toContain("\\x1b[4A\\x1b[J] = -2 ENOENT");
});
