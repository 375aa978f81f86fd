/**
 * Bad input through the real CLI: malformed config files, flags, session ids and damaged session
 * files. Each gives exactly one line on stderr (`esr: …`, no stack trace, never "internal error")
 * and a non-zero exit, and never runs the command. test/errors.test.ts has the first cases; these
 * are the others. Then a fuzz run of the config parser and the .gz reader (scripts/fuzz.ts runs the
 * long version).
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { configInput, fuzzConfig, fuzzGzip, rng } from "../../scripts/fuzz.ts";
import { requireRootAndEsr } from "../support/adversary.ts";
import { sessionsDir } from "../support/harness.ts";
import { ESR, record, runEsr, tempDir, type RunResult } from "../support/harness.ts";
import { sessionFilePath } from "../support/pty-session.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

beforeAll(requireRootAndEsr);

function expectOneLineError(r: RunResult, pattern: RegExp) {
  expect(r.exitCode).not.toBe(0);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^esr: /);
  expect(lines[0]).not.toMatch(/internal error/);
  expect(lines[0]).toMatch(pattern);
}

let canary: string;
/** `esr record --config FILE -- touch CANARY`: a config error must stop it before the command. */
async function recordWithConfig(text: string | null, file?: string) {
  const path = file ?? join(tempDir(), "esr.yaml");
  if (text !== null) writeFileSync(path, text);
  const r = await runEsr([
    "record",
    "--config",
    path,
    "--data-dir",
    tempDir(),
    "--events",
    "command",
    "--",
    "touch",
    canary,
  ]);
  expect(existsSync(canary)).toBe(false);
  return r;
}

beforeAll(() => {
  canary = join(tempDir(), "command-ran");
});

const er = (line: string) => `ssh_service:\n  enhanced_recording:\n    ${line}\n`;

describe("malformed config files", () => {
  const cases: [string, string, RegExp][] = [
    ["an unclosed flow sequence", "teleport:\n  data_dir: [\n", /:3: yaml: /],
    [
      "a negative buffer size",
      er("command_buffer_size: -3"),
      /:3: ssh_service\.enhanced_recording\.command_buffer_size: must be a whole number.*-3/,
    ],
    ["a non-numeric buffer size", er("disk_buffer_size: lots"), /:3: .*disk_buffer_size: .*"lots"/],
    ["a zero buffer size", er("network_buffer_size: 0"), /:3: .*network_buffer_size: .*got number 0/],
    [
      "a buffer size beyond 4 GiB of ring",
      er("command_buffer_size: 99999999999"),
      /:3: .*command_buffer_size: .*99999999999/,
    ],
    ["a fractional buffer size", er("disk_buffer_size: 1.5"), /:3: .*got number 1\.5/],
    ["a quoted number", er('network_buffer_size: "8"'), /:3: .*got string "8"/],
    ["enabled that is not a boolean", er("enabled: maybe"), /:3: .*enabled: must be true or false/],
    ["a relative cgroup_path", er("cgroup_path: relative/path"), /:3: .*cgroup_path: must be an absolute path/],
    ["root_path /", er("root_path: /"), /:3: .*root_path: must not be "\/"/],
    ["root_path climbing out", er("root_path: ../../etc"), /:3: .*root_path: must be an absolute path/],
    ["data_dir a number", "teleport:\n  data_dir: 42\n", /:2: teleport\.data_dir: must be a non-empty string/],
    ["data_dir relative", "teleport:\n  data_dir: relative\n", /:2: teleport\.data_dir: must be an absolute path/],
    ["nodename a list", "teleport:\n  nodename: [a, b]\n", /:2: teleport\.nodename: .*got a list/],
    [
      "cluster_name a mapping",
      "auth_service:\n  cluster_name: {a: 1}\n",
      /:2: auth_service\.cluster_name: .*got a mapping/,
    ],
    [
      "enhanced_recording a scalar",
      "ssh_service:\n  enhanced_recording: yes please\n",
      /:2: ssh_service\.enhanced_recording: must be a mapping/,
    ],
    [
      "a role with an unknown kind",
      "kind: role\nmetadata: { name: r }\nspec: { options: { enhanced_recording: [command, exec] } }\n",
      /:3: .*unknown event kind "exec"/,
    ],
    [
      "a role's kinds as a string",
      "kind: role\nmetadata: { name: r }\nspec: { options: { enhanced_recording: command } }\n",
      /:3: .*must be a list of event kinds/,
    ],
    [
      "a user's roles as a string",
      "kind: user\nmetadata: { name: u }\nspec: { roles: auditors }\n",
      /:3: spec\.roles: must be a list/,
    ],
    [
      "a user with a role no file defines",
      "kind: user\nmetadata: { name: u }\nspec: { roles: [ghost] }\n",
      /:3: spec\.roles: user "u" has role "ghost", which no loaded file defines/,
    ],
    [
      "an alias bomb under a real key",
      `a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nteleport:\n  nodename: *e\n`,
      /teleport\.nodename: .*got a list/,
    ],
    ["nesting 100000 deep", `teleport:\n  nodename: ${"[".repeat(100_000)}${"]".repeat(100_000)}\n`, /:2: yaml: /],
    ["tabs for indentation", "ssh_service:\n\tenhanced_recording: {}\n", /:2: yaml: Tabs/],
    ["a duplicate key", er("enabled: true\n    enabled: false"), /:4: yaml: Map keys must be unique/],
    [
      "binary garbage",
      Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 256)).toString("latin1"),
      /esr\.yaml:\d+: /,
    ],
    ["UTF-16 text", "\uFEFFb\0a\0d\0:\0 \0x\0", /esr\.yaml:\d+: /],
    ["a top-level list", "- just\n- a list\n", /:1: document: must be a mapping .*got a list/],
  ];
  for (const [name, text, pattern] of cases) {
    test(name, async () => expectOneLineError(await recordWithConfig(text), pattern));
  }

  test("a directory given as config", async () => {
    const dir = tempDir();
    expectOneLineError(await recordWithConfig(null, dir), /:0: file: cannot read: illegal operation on a directory/);
  });

  test("/dev/zero given as config (would be read forever)", async () => {
    expectOneLineError(
      await recordWithConfig(null, "/dev/zero"),
      /\/dev\/zero:0: file: cannot read: not a regular file/,
    );
  });

  test("a config file of 20 MiB", async () => {
    const path = join(tempDir(), "huge.yaml");
    writeFileSync(path, `# ${"x".repeat(20 << 20)}\n`);
    expectOneLineError(await recordWithConfig(null, path), /huge\.yaml:0: file: cannot read: \d+ bytes is too large/);
  });

  test("/dev/null and a pipe are fine (an empty config; --config <(…))", async () => {
    const dataDir = tempDir();
    const viaNull = await runEsr(["ls", "--config", "/dev/null", "--data-dir", dataDir]);
    expect(viaNull.stderr).not.toMatch(/config|regular/);
    const viaPipe = Bun.spawnSync(
      [
        "bash",
        "-c",
        `${ESR} check --config <(printf 'ssh_service:\\n  enhanced_recording:\\n    command_buffer_size: -1\\n')`,
      ],
      { stderr: "pipe" },
    );
    expect(viaPipe.stderr.toString()).toMatch(/^esr: \/dev\/fd\/\d+:3: .*command_buffer_size/);
  });
});

describe("malformed flags", () => {
  const cases: [string, string[], RegExp][] = [
    ["--config without a value", ["ls", "--config"], /ls: --config needs a value/],
    ["--data-dir without a value", ["ls", "--data-dir"], /ls: --data-dir needs a value/],
    ["--data-dir empty", ["ls", "--data-dir", ""], /--data-dir needs a value/],
    ["--data-dir= empty", ["ls", "--data-dir="], /--data-dir needs a value/],
    ["--login empty", ["record", "--login", "", "--", "true"], /record: --login needs a value/],
    ["--login followed by another option", ["record", "--login", "--quiet", "--", "true"], /--login needs a value/],
    ["--events empty of kinds", ["record", "--events", ",", "--", "true"], /--events: empty event kind/],
    ["--login a uid that does not exist", ["record", "--login", "99999", "--", "true"], /no such user: 99999/],
    ["--roles naming an undefined role", ["record", "--roles", "ghost", "--", "true"], /unknown role "ghost"/],
    [
      "--format without a value",
      ["replay", "11111111-2222-3333-4444-555555555555", "--format"],
      /--format needs a value/,
    ],
    [
      "--type of an unknown kind",
      ["replay", "11111111-2222-3333-4444-555555555555", "--type", "exec"],
      /unknown --type "exec"/,
    ],
    ["an unknown top-level option", ["--bogus"], /unknown command "--bogus"/],
  ];
  for (const [name, args, pattern] of cases) {
    test(name, async () => expectOneLineError(await runEsr(args), pattern));
  }
});

describe("malformed session ids", () => {
  const cases: [string, string, RegExp][] = [
    ["empty", "", /which session\?/],
    ["too short", "1234", /invalid session id "1234"/],
    ["a character outside hex", "11111111-2222-3333-4444-55555555555g", /invalid session id/],
    [
      "a trailing newline",
      "11111111-2222-3333-4444-555555555555\n",
      /invalid session id "11111111-2222-3333-4444-555555555555\\n"/,
    ],
    ["a glob", "*", /invalid session id "\*"/],
    ["an encoded traversal", "..%2f..%2fetc%2fshadow", /invalid session id/],
    ["a UUID with braces", "{11111111-2222-3333-4444-555555555555}", /invalid session id/],
  ];
  for (const [name, sid, pattern] of cases) {
    test(name, async () => expectOneLineError(await runEsr(["replay", sid, "--data-dir", tempDir()]), pattern));
  }
});

describe("corrupted or truncated session files", () => {
  /** A fresh finished session, and the paths of its files. */
  async function session() {
    const r = await record(["bash", "-c", "/bin/echo one; /bin/echo two"], { flags: ["--events", "command"] });
    const dir = sessionsDir(r.dataDir);
    return {
      ...r,
      dir,
      command: sessionFilePath(r.dataDir, r.sid, "session.command"),
      events: sessionFilePath(r.dataDir, r.sid, "events"),
      index: join(dir, `${r.sid}.index`),
    };
  }
  const replay = (s: { sid: string; dataDir: string }) => runEsr(["replay", s.sid, "--data-dir", s.dataDir]);

  test("host_uuid that is not a UUID", async () => {
    const s = await session();
    writeFileSync(join(s.dataDir, "host_uuid"), "not-a-uuid\n");
    expectOneLineError(await replay(s), /host_uuid does not hold a UUID/);
  });

  test("host_uuid empty", async () => {
    const s = await session();
    writeFileSync(join(s.dataDir, "host_uuid"), "");
    expectOneLineError(await runEsr(["ls", "--data-dir", s.dataDir]), /host_uuid does not hold a UUID/);
  });

  test("the index gone, the files still there", async () => {
    const s = await session();
    rmSync(s.index);
    expectOneLineError(await replay(s), /unknown session/);
  });

  test("a .gz holding a line that is not JSON", async () => {
    const s = await session();
    writeFileSync(s.command, gzipSync("this is not json\n"));
    const r = await replay(s);
    expect(r.exitCode).toBe(3);
    expectOneLineError(r, /command-events\.gz: line 1: /);
  });

  test("a .gz holding JSON that is not an event", async () => {
    const s = await session();
    writeFileSync(s.command, gzipSync("[1, 2, 3]\n"));
    expectOneLineError(await replay(s), /line 1: not an audit event/);
  });

  test("a .gz whose last line has no end", async () => {
    const s = await session();
    writeFileSync(s.command, gzipSync('{"ei": 1, "event": "session.command"}\n{"ei": 2, "ev'));
    expectOneLineError(await replay(s), /last line is incomplete; skipped/);
  });

  test("a session file replaced by a directory", async () => {
    const s = await session();
    rmSync(s.command);
    mkdirSync(s.command);
    expectOneLineError(await replay(s), /command-events\.gz: cannot read/);
  });

  test("an index line cut in the middle", async () => {
    const s = await session();
    writeFileSync(s.index, `${readFileSync(s.index, "utf8")}{"file_name":"x`);
    expectOneLineError(await replay(s), /\.index:\d+: unreadable index line/);
  });

  test("a .gz cut to its first 5 bytes", async () => {
    const s = await session();
    writeFileSync(s.events, readFileSync(s.events).subarray(0, 5));
    const r = await replay(s);
    expectOneLineError(r, /events\.gz: damaged at byte 0/);
    expect(r.stdout).toContain("/bin/echo one"); // the other files are still shown
  });
});

describe("fuzz (shortened; scripts/fuzz.ts runs 200000 of each)", () => {
  test("the config parser: 3000 generated documents, each accepted or one ConfigError line", () => {
    const report = fuzzConfig(3000, 20251123);
    expect(report.failures).toEqual([]);
    expect(report.accepted).toBeGreaterThan(100);
    expect(report.rejected).toBeGreaterThan(100);
  });

  test("the .gz reader: 3000 damaged files, never a throw, never an event that was not written", () => {
    const report = fuzzGzip(3000, 20251123);
    expect(report.failures).toEqual([]);
    expect(report.damaged).toBeGreaterThan(100);
  });

  test("generated configs through the real CLI: exit 0, or one line and exit 1", async () => {
    const r = rng(4242);
    const dataDir = tempDir();
    await record(["true"], { flags: ["--events", "command"], dataDir });
    let rejected = 0;
    for (let i = 0; i < 25; i++) {
      const path = join(tempDir(), "fuzz.yaml");
      writeFileSync(path, configInput(r));
      const out = await runEsr(["ls", "--config", path, "--data-dir", dataDir]);
      if (out.exitCode === 0) continue;
      rejected++;
      expect(out.exitCode).toBe(1);
      expectOneLineError(out, /fuzz\.yaml:\d+: |unknown role/);
    }
    expect(rejected).toBeGreaterThan(5);
  });

  test("damaged session files through the real CLI: what is readable, then one warning per damage, exit 3", async () => {
    const r = rng(99);
    const s = await record(["bash", "-c", "for i in $(seq 1 30); do /bin/echo fuzz-$i; sleep 0.02; done"], {
      flags: ["--events", "command"],
    });
    const file = join(
      sessionsDir(s.dataDir),
      readdirSync(sessionsDir(s.dataDir)).find((f) => f.includes("command-events"))!,
    );
    const original = readFileSync(file);
    for (let i = 0; i < 15; i++) {
      const bytes = Buffer.from(original.subarray(0, r.int(original.length)));
      if (bytes.length) bytes[r.int(bytes.length)]! ^= 1 << r.int(8);
      writeFileSync(file, bytes);
      const out = await runEsr(["replay", s.sid, "--data-dir", s.dataDir, "--format", "json"]);
      expect([0, 3]).toContain(out.exitCode);
      expect(out.stderr).not.toMatch(/internal error/);
      const events = out.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      expect(events[0].event).toBe("session.start");
      expect(events[events.length - 1].event).toBe("session.end");
    }
  });
});
