/**
 * Bad input: every case is one line on stderr, a non-zero exit, no stack trace, and nothing
 * already recorded is lost.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESR, record, runEsr, tempDir, type RunResult } from "../support/harness.ts";
import { sessionsDir } from "../support/harness.ts";
import { sessionFilePath } from "../support/pty-session.ts";

function expectOneLineError(r: RunResult, pattern: RegExp) {
  expect(r.exitCode).not.toBe(0);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines.length).toBe(1);
  expect(lines[0]).toMatch(/^esr: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\bat .*\.(ts|js):\d+/);
}

/** A finished session with a few command events, and its files. */
async function recordedSession() {
  const r = await record(["bash", "-c", "for i in 1 2 3 4 5 6; do /bin/echo event-$i; done"], {
    flags: ["--events", "command"],
  });
  return {
    ...r,
    commandFile: sessionFilePath(r.dataDir, r.sid, "session.command"),
    sessions: sessionsDir(r.dataDir),
  };
}

describe("bad command lines", () => {
  const cases: [string, string[], RegExp][] = [
    ["unknown command", ["frobnicate"], /unknown command "frobnicate"/],
    ["unknown flag", ["record", "--bogus", "--", "true"], /unknown option --bogus/],
    ["unknown flag of replay", ["replay", "--since", "x"], /unknown option --since/],
    ["replay without a session id", ["replay"], /which session\?/],
    ["replay of a malformed session id", ["replay", "../../etc/passwd"], /invalid session id/],
    [
      "bad --format",
      ["replay", "11111111-2222-3333-4444-555555555555", "--format", "xml"],
      /--format must be text or json/,
    ],
    ["unknown event kind", ["record", "--events", "command,bogus", "--", "true"], /unknown event kind "bogus"/],
    ["unknown login", ["record", "--login", "no-such-user-here", "--", "true"], /no such user: no-such-user-here/],
    [
      "missing config file",
      ["record", "--config", "/nonexistent/esr.yaml", "--", "true"],
      /\/nonexistent\/esr.yaml:0: .*cannot read/,
    ],
    ["extra argument to ls", ["ls", "extra"], /unexpected argument "extra"/],
    ["extra argument to check", ["check", "extra"], /check: unexpected argument "extra"/],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, async () => expectOneLineError(await runEsr(args), pattern));
  }

  test("a command that does not exist exits 127", async () => {
    const r = await runEsr(["record", "--data-dir", tempDir(), "--events", "command", "--", "/no/such/cmd"]);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toBe("esr: /no/such/cmd: command not found\n");
  });

  test("--help works on every command and stops at --", async () => {
    for (const cmd of ["record", "replay", "ls", "check"]) {
      const r = await runEsr([cmd, "--help"]);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain(`esr ${cmd}`);
    }
    // After --, --help belongs to COMMAND.
    const r = await runEsr(["record", "--data-dir", tempDir(), "--events", "command", "--", "bash", "--help"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain("GNU bash");
  });
});

describe("bad environment", () => {
  test("not root", async () => {
    const r = Bun.spawnSync(
      ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ESR, "record", "--", "true"],
      { stderr: "pipe" },
    );
    expectOneLineError({ exitCode: r.exitCode, stdout: "", stderr: r.stderr.toString() }, /must run as root/);
  });

  test("a data dir that cannot be written", async () => {
    expectOneLineError(
      await runEsr(["record", "--data-dir", "/etc/passwd/esr", "--events", "command", "--", "true"]),
      /cannot use data dir \/etc\/passwd\/esr/,
    );
  });

  test("cgroup_path on a filesystem that is not cgroup v2", async () => {
    const config = join(tempDir(), "esr.yaml");
    writeFileSync(config, "ssh_service:\n  enhanced_recording:\n    cgroup_path: /proc\n");
    expectOneLineError(
      await runEsr(["record", "--config", config, "--data-dir", tempDir(), "--events", "command", "--", "true"]),
      /\/proc is a proc mount, not cgroup v2/,
    );
  });

  test("replay from a data dir with no recordings", async () => {
    expectOneLineError(
      await runEsr(["replay", "11111111-2222-3333-4444-555555555555", "--data-dir", tempDir()]),
      /no recordings in/,
    );
  });

  test("replay of an unknown session", async () => {
    const { dataDir } = await recordedSession();
    expectOneLineError(
      await runEsr(["replay", "11111111-2222-3333-4444-555555555555", "--data-dir", dataDir]),
      /unknown session 11111111-/,
    );
  });
});

describe("damaged recordings", () => {
  test("a truncated .gz: replay prints what is readable, then warns, and exits non-zero", async () => {
    const s = await recordedSession();
    const bytes = readFileSync(s.commandFile);
    writeFileSync(s.commandFile, bytes.subarray(0, bytes.length - 7));
    const r = await runEsr(["replay", s.sid, "--data-dir", s.dataDir]);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/ start /);
    expect(r.stdout).toMatch(/ end /);
    expect(r.stderr).toMatch(/^esr: warning: .*command-events\.gz: damaged at byte \d+ .*unexpected end of file/);
  });

  test("a corrupt byte in the middle: events before it are shown, the damage is named", async () => {
    const s = await recordedSession();
    const bytes = readFileSync(s.commandFile);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(s.commandFile, bytes);
    const r = await runEsr(["replay", s.sid, "--data-dir", s.dataDir]);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/ start /);
    expect(r.stderr).toMatch(/esr: warning: .*command-events\.gz: damaged at byte \d+/);
  });

  test("a file that is not gzip at all, and garbage in the index", async () => {
    const s = await recordedSession();
    writeFileSync(s.commandFile, "this is not gzip\n");
    writeFileSync(
      join(s.sessions, `${s.sid}.index`),
      `${readFileSync(join(s.sessions, `${s.sid}.index`), "utf8")}{not json\n{"file_name":"../../../etc/shadow","type":"events"}\n`,
    );
    const r = await runEsr(["replay", s.sid, "--data-dir", s.dataDir]);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toMatch(/ end /);
    expect(r.stderr).toMatch(/incorrect header check/);
    expect(r.stderr).toMatch(/unreadable index line/);
    expect(r.stdout + r.stderr).not.toContain("root:");
  });

  test("ls still lists a session with a damaged file", async () => {
    const s = await recordedSession();
    writeFileSync(s.commandFile, "junk");
    const r = await runEsr(["ls", "--data-dir", s.dataDir]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(s.sid);
    expect(readdirSync(s.sessions).length).toBeGreaterThan(0);
  });
});
