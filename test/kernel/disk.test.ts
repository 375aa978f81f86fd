/**
 * Disk events (docs/contract.md §3 session.disk): every open, openat, openat2 and creat of a session's
 * processes, with the file opened (path, dev, ino), the path and flags as passed and the return
 * code; nothing from outside. test/e2e/truth-path.test.ts attacks the difference between the two paths.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PATH_TRUNCATED_MARKER, type AuditEvent } from "../../lib/events/audit-events.ts";
import type { SessionDiskEvent } from "../../lib/events/kinds/index.ts";
import { deviceText } from "../../lib/kernel/host-view.ts";
import { ESR_COMMON_FIELDS, fieldTypes } from "../support/fields.ts";
import { FIXTURES, ofType, record, replayEvents, tempDir } from "../support/harness.ts";
import { i386Abi, SHELL_STATUS_SIGSEGV } from "../support/i386-abi.ts";

const O_WRONLY = 0o1;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_CLOEXEC = 0o2000000;
const ENOENT = 2;
const ENAMETOOLONG = 36;

/** Longer than PATH_MAX: the kernel refuses it, esr keeps its first 4096 bytes and says so. */
const LONG_PATH = `${"./".repeat(2100)}F`;
/** 4095 bytes, the longest path the kernel accepts: recorded whole. */
const LONGEST_PATH = `${"./".repeat(2047)}F`;

/** x86-64 numbers of the syscalls glibc no longer uses for open(3) and fopen(3). */
const PERL_OPENS = [
  `my ($f, $new, $how) = ("F", "NEW64", pack("QQQ", ${O_CLOEXEC}, 0, 0));`, // syscall() passes writable strings only
  `syscall(2, $f, 0) >= 0 or die "open: $!";`,
  `syscall(85, $new, 0644) >= 0 or die "creat: $!";`,
  `syscall(437, -100, $f, $how, 24) >= 0 or die "openat2: $!";`,
].join(" ");

function requireX86_64(what: string) {
  if (process.arch !== "x64")
    throw new Error(`${what} is written for x86-64 syscall numbers; this host is ${process.arch}`);
}

describe("session.disk", () => {
  let dir: string;
  let events: AuditEvent[];
  let disk: SessionDiskEvent[];
  let outsideOpens = 0;

  beforeAll(async () => {
    requireX86_64("this test");
    dir = tempDir("esr-disk-");
    writeFileSync(join(dir, "F"), "content\n");
    writeFileSync(join(dir, "OUTSIDE"), "");
    const build = Bun.spawnSync([
      "clang",
      "-m32",
      "-nostdlib",
      "-static",
      "-o",
      join(dir, "open32"),
      join(FIXTURES, "disk", "open-i386.S"),
    ]);
    if (build.exitCode !== 0)
      throw new Error(`cannot build the i386 test program (clang -m32): ${build.stderr.toString()}`);

    // Same uid as the session, opening all along: none of it may be recorded.
    const outsider = Bun.spawn(["bash", "-c", `while :; do cat ${dir}/OUTSIDE; echo; sleep 0.01; done`], {
      stdout: "pipe",
    });
    const lines = (async () => {
      for await (const chunk of outsider.stdout) outsideOpens += new TextDecoder().decode(chunk).split("\n").length - 1;
    })();
    const script = [
      `cd ${dir}`,
      "cat F >/dev/null",
      "touch NEW",
      "echo hi | tee OUT >/dev/null",
      "cat MISSING 2>/dev/null",
      `cat ${LONG_PATH} 2>/dev/null`,
      `cat ${LONGEST_PATH} >/dev/null`,
      `perl -e '${PERL_OPENS}'`,
      './open32; echo "$?" > open32.status',
      "sleep 0.5",
    ].join("\n");
    try {
      const before = outsideOpens;
      const rec = await record(["bash", "-c", script], { flags: ["--events", "command,disk"] });
      outsideOpens -= before;
      if (rec.exitCode !== 0) throw new Error(`session failed (${rec.exitCode}): ${rec.stderr}`);
      events = await replayEvents(rec.dataDir, rec.sid);
    } finally {
      outsider.kill();
      await outsider.exited;
      await lines;
    }
    disk = ofType(events, "session.disk");
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The name as passed: requested_path where it differs from the file opened, else path. */
  const requested = (e: SessionDiskEvent) => e.requested_path ?? e.path;
  const opens = (program: string, path?: string) =>
    disk.filter((e) => e.program === program && (path === undefined || requested(e) === path));
  const execPid = (program: string) => ofType(events, "session.command").find((e) => e.program === program)?.pid;

  test("cat F: read-only, an fd, the file opened and the path as passed, the pid of cat's exec", () => {
    const [open, ...more] = opens("cat", "F");
    expect(more).toEqual([]);
    const st = statSync(join(dir, "F"), { bigint: true });
    expect(open).toMatchObject({
      path: join(realpathSync(dir), "F"),
      requested_path: "F",
      from_caller_memory: ["requested_path"],
      ino: String(st.ino),
      dev: deviceText(st.dev),
    });
    expect({ flags: open?.flags, fd: (open?.return_code ?? -1) >= 3, pid: open?.pid }).toEqual({
      flags: 0,
      fd: true,
      pid: execPid("cat"),
    });
  });

  test("touch NEW creates it", () => {
    const [open] = opens("touch", "NEW");
    expect((open?.flags ?? 0) & (O_CREAT | O_WRONLY)).toBe(O_CREAT | O_WRONLY);
    expect(open?.return_code).toBeGreaterThanOrEqual(0);
  });

  test("echo … | tee OUT: write, create, truncate", () => {
    const [open] = opens("tee", "OUT");
    expect((open?.flags ?? 0) & (O_CREAT | O_WRONLY | O_TRUNC)).toBe(O_CREAT | O_WRONLY | O_TRUNC);
    expect(open?.return_code).toBeGreaterThanOrEqual(0);
  });

  test("a failed open returns -ENOENT, its path the caller's", () => {
    expect(opens("cat", "MISSING").map((e) => [e.path, e.return_code, e.from_caller_memory])).toEqual([
      ["MISSING", -ENOENT, ["path"]],
    ]);
  });

  test("a path longer than PATH_MAX: its first 4096 bytes, a visible marker, path_truncated", () => {
    const open = disk.find((e) => e.path_truncated);
    expect(
      open && {
        program: open.program,
        path: open.path,
        path_truncated: open.path_truncated,
        return_code: open.return_code,
      },
    ).toEqual({
      program: "cat",
      path: `${LONG_PATH.slice(0, 4096)} ${PATH_TRUNCATED_MARKER}`,
      path_truncated: true,
      return_code: -ENAMETOOLONG,
    });
    expect(disk.filter((e) => e.path_truncated).length).toBe(1);
  });

  test("the longest path the kernel accepts (4095 bytes) is recorded whole", () => {
    const [open] = opens("cat", LONGEST_PATH);
    expect(
      open && {
        truncated: "path_truncated" in open || "requested_path_truncated" in open,
        ok: open.return_code >= 0,
        path: open.path,
      },
    ).toEqual({ truncated: false, ok: true, path: join(realpathSync(dir), "F") });
  });

  test("open(2), creat(2) and openat2(2), called directly", () => {
    const mine = opens("perl").filter((e) => requested(e) === "F" || requested(e) === "NEW64");
    expect(mine.map((e) => ({ path: requested(e), flags: e.flags }))).toEqual([
      { path: "F", flags: 0 },
      { path: "NEW64", flags: O_CREAT | O_WRONLY | O_TRUNC },
      { path: "F", flags: O_CLOEXEC },
    ]);
    for (const e of mine) expect(e.return_code).toBeGreaterThanOrEqual(3);
  });

  const abi = i386Abi();
  if (abi.available) {
    test("a 32-bit program's opens through the i386 ABI (open, openat, creat)", () => {
      expect(opens("open32").map((e) => ({ path: requested(e), flags: e.flags, return_code: e.return_code }))).toEqual([
        { path: "F", flags: 0, return_code: 3 },
        { path: "F", flags: O_CLOEXEC, return_code: 4 },
        { path: "NEW32", flags: O_CREAT | O_WRONLY | O_TRUNC, return_code: 5 },
      ]);
    });
  } else {
    test(`no i386 ABI on this host (${abi.detail}): a 32-bit program cannot open anything through int 0x80`, () => {
      const status = Number(readFileSync(join(dir, "open32.status"), "utf8"));
      expect({
        exec: execPid("open32") !== undefined,
        opens: opens("open32"),
        created: existsSync(join(dir, "NEW32")),
      }).toEqual({ exec: true, opens: [], created: false });
      if (abi.how === "killed") expect(status).toBe(SHELL_STATUS_SIGSEGV);
      else expect(status).not.toBe(0);
    });
  }

  test("opens by a process outside the session, at the same time, are not recorded", () => {
    expect(outsideOpens).toBeGreaterThan(5);
    expect(disk.filter((e) => String(e.path).includes("OUTSIDE"))).toEqual([]);
    const sessionPids = new Set(ofType(events, "session.command").map((e) => e.pid));
    expect(disk.filter((e) => !sessionPids.has(e.pid))).toEqual([]);
  });

  test("every field of docs/contract.md §3, with its JSON type, and only esr's own beside them", () => {
    const expected = { ...ESR_COMMON_FIELDS, path: "string", flags: "number", return_code: "number" } as const;
    const file = { dev: "string", ino: "string", fs_type: "string" } as const;
    const optional = new Set([
      "path_truncated",
      "requested_path",
      "requested_path_truncated",
      "from_caller_memory",
      "path_deleted",
      "path_anonymous",
      "path_outside_namespace",
    ]);
    for (const e of disk) {
      expect(fieldTypes(e, expected)).toEqual(expected);
      expect({ event: e.event, code: e.code }).toEqual({ event: "session.disk", code: "T4001I" });
      // A successful open names its file; a failed one has none, and says its path is the caller's.
      if (e.return_code >= 0) expect(fieldTypes(e, file)).toEqual(file);
      else expect(e.from_caller_memory).toEqual(["path"]);
      expect(Object.keys(e).filter((k) => !(k in expected) && !(k in file) && !optional.has(k))).toEqual([]);
    }
  });

  test("no open was lost", () => {
    expect(ofType(events, "session.end")[0]?.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  });
});
