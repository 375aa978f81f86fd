/**
 * Issue #19, items 1-4: disk and exec events name the file the kernel used, not what the caller's
 * memory says (docs/contract.md §3; README "Where each field comes from: files and programs").
 * Each attack runs for real, in a session of the unprivileged user `nobody` where that is what an
 * attacker would be, through dist/esr; test/fixtures/truth/truth-path.c does what a shell cannot.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdirSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PATH_TRUNCATED_MARKER, type AuditEvent } from "../../lib/events/audit-events.ts";
import type { SessionCommandEvent, SessionDiskEvent } from "../../lib/events/kinds/index.ts";
import { deviceText } from "../../lib/kernel/host-view.ts";
import { fixtureProgram, requireRootAndEsr } from "../support/adversary.ts";
import { ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

const NOBODY = 65534;
const O_RDWR = 0o2;
const ENOEXEC = 8;
let TRUTH: string;

beforeAll(() => {
  requireRootAndEsr();
  TRUTH = fixtureProgram("truth/truth-path.c", "gcc");
});

/** A directory `nobody` may use, and in it a file of `nobody`'s (leases need the file's owner). */
function nobodysFile(name: string, content: string, mode = 0o600): { dir: string; file: string } {
  const dir = tempDir("esr-truth-");
  chmodSync(dir, 0o755);
  const file = join(dir, name);
  writeFileSync(file, content);
  chmodSync(file, mode);
  chownSync(file, NOBODY, NOBODY);
  return { dir, file };
}

interface Session {
  events: AuditEvent[];
  stdout: string;
  exitCode: number;
  dataDir: string;
  sid: string;
}

async function session(script: string, login?: string): Promise<Session> {
  const flags = ["--events", "command,disk", ...(login ? ["--login", login] : [])];
  const r = await record(["sh", "-c", script], { flags });
  return { ...r, events: await replayEvents(r.dataDir, r.sid) };
}

/** The file's identity as an event gives it: "MAJOR:MINOR" and the inode in decimal. */
function identity(path: string): { dev: string; ino: string } {
  const st = statSync(path, { bigint: true });
  return { dev: deviceText(st.dev), ino: String(st.ino) };
}

/** The last exec with argument `marker`, and the opens of its process after it. */
function opensAfter(events: AuditEvent[], marker: string): SessionDiskEvent[] {
  const exec = ofType(events, "session.command").findLast((e) => e.argv.includes(marker));
  if (!exec) throw new Error(`no exec with argument ${marker}`);
  return ofType(events, "session.disk").filter((e) => e.pid === exec.pid && e.ei > exec.ei);
}

/** The opens of `path` (what was opened) in the session. */
const opensOf = (events: AuditEvent[], path: string) => ofType(events, "session.disk").filter((e) => e.path === path);

describe("1. the path buffer rewritten while the open waits on the caller's own lease", () => {
  test("path is the file the fd reads; the decoy is only requested_path, marked as the caller's memory", async () => {
    const { dir, file } = nobodysFile("secret", "the-secret\n");
    const decoy = join(dir, "decoy");
    const s = await session(`${TRUTH} lease-open ${file} ${decoy}`, "nobody");
    expect({ exit: s.exitCode, read: s.stdout }).toEqual({ exit: 0, read: "the-secret\n" });
    const open = opensAfter(s.events, "lease-open").find((e) => e.flags === O_RDWR && e.return_code >= 0);
    expect(open).toMatchObject({
      path: realpathSync(file),
      requested_path: decoy,
      from_caller_memory: ["requested_path"],
      ...identity(file),
    });
    // Before this, the event named the decoy: no event may name it as what was opened.
    expect(opensOf(s.events, decoy)).toEqual([]);
  });
});

describe("2. indirect opens name the file that was read", () => {
  let secret: string;
  let s: Session;
  let s0: Session;

  beforeAll(async () => {
    const { dir, file } = nobodysFile("secret", "indirect\n", 0o644);
    secret = realpathSync(file);
    const deep = join(dir, ...Array.from({ length: 60 }, (_, i) => `d${i}`));
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(deep, "deep-file"), "");
    chmodSync(dir, 0o777);
    s = await session(
      [
        `ln -s ${file} ${dir}/innocent; cat ${dir}/innocent; echo symlink-done`,
        `cd ${dir} && cat secret && cd / && echo relative-done`,
        `${TRUTH} open-tree ${dir} secret`,
        `exec 3<${file}; cat /proc/self/fd/3; exec 3<&-; echo procfd-done`,
        `cp ${file} ${dir}/gone; exec 4<${dir}/gone; rm ${dir}/gone; cat /proc/self/fd/4; exec 4<&-; echo deleted-done`,
        `echo piped | cat /dev/stdin; echo pipe-done`,
        `cat ${join(deep, "deep-file")}; echo deep-done`,
      ].join("\n"),
      "nobody",
    );
    // What only root can do: a detached copy of a mount (open_tree(OPEN_TREE_CLONE)), a chroot.
    s0 = await session([`${TRUTH} open-tree ${dir} secret clone`, `${TRUTH} chroot-open ${dir} /secret`].join("\n"));
  });

  const catOf = (requested: string) =>
    ofType(s.events, "session.disk").find((e) => e.program === "cat" && e.requested_path === requested);

  test("a symlink: path is its target, requested_path the link", () => {
    expect(catOf(`${join(secret, "..")}/innocent`)).toMatchObject({ path: secret, ...identity(secret) });
  });

  test("a relative name after chdir: the absolute path", () => {
    expect(catOf("secret")).toMatchObject({ path: secret, ...identity(secret) });
  });

  test("a directory fd from open_tree(2): the absolute path", () => {
    expect(opensAfter(s.events, "open-tree").find((e) => e.requested_path === "secret")).toMatchObject({
      path: secret,
      ...identity(secret),
    });
  });

  test("/proc/self/fd/N: the file the fd is", () => {
    expect(catOf("/proc/self/fd/3")).toMatchObject({ path: secret, ...identity(secret) });
  });

  test("an unlinked file reopened through /proc/self/fd: its old path, marked deleted", () => {
    const e = catOf("/proc/self/fd/4");
    expect(e).toMatchObject({ path: `${join(secret, "..")}/gone`, path_deleted: true });
  });

  test("a pipe: named as the kernel's pipe, marked anonymous", () => {
    const e = catOf("/dev/stdin");
    expect(e?.path).toMatch(/^pipefs:\[\d+\]$/);
    expect(e?.path_anonymous).toBe(true);
  });

  test("a path deeper than the walk's bound: the innermost components, marked cut, never passed off as whole", () => {
    const e = ofType(s.events, "session.disk").find((x) => x.path.includes("deep-file"));
    expect(e?.path_truncated).toBe(true);
    expect(e?.path).toMatch(new RegExp(`^d\\d+/.*/d59/deep-file \\${PATH_TRUNCATED_MARKER.replace("]", "\\]")}$`));
  });

  test("a detached mount (open_tree(OPEN_TREE_CLONE), root): the path within its filesystem, marked as outside the namespace", () => {
    const e = opensAfter(s0.events, "clone").find((x) => x.requested_path === "secret");
    expect(e).toMatchObject({ path_outside_namespace: true, ...identity(secret) });
    // Its filesystem's root is the mount's source, wherever that is mounted: the path ends the same.
    expect(secret.endsWith(e!.path)).toBe(true);
  });

  test("a chroot (root): the path from the mount namespace's root, not the process's", () => {
    const e = opensAfter(s0.events, "chroot-open").find((x) => x.requested_path === "/secret");
    expect(e).toMatchObject({ path: secret, ...identity(secret) });
  });
});

describe("3. a program bind-mounted over a system binary in a private mount namespace", () => {
  let fake: string;

  beforeAll(() => {
    const dir = tempDir("esr-truth-");
    chmodSync(dir, 0o755);
    fake = join(dir, "not-id");
    copyFileSync(realpathSync("/bin/echo"), fake);
    chmodSync(fake, 0o755);
  });

  /** The exec of /usr/bin/id the fixture makes, and the same session's replay text and tree. */
  async function bindExec(login?: string) {
    const s = await session(`${TRUTH} bind-exec ${fake} /usr/bin/id bind-marker; /usr/bin/id -u`, login);
    const ids = ofType(s.events, "session.command").filter((e) => e.path === "/usr/bin/id");
    const text = await runEsr(["replay", s.sid, "--data-dir", s.dataDir]);
    const tree = await runEsr(["replay", s.sid, "--data-dir", s.dataDir, "--tree"]);
    return { s, ids, text: text.stdout, tree: tree.stdout };
  }

  function expectUnmasked(exec: SessionCommandEvent | undefined, text: string, tree: string) {
    const { dev, ino } = identity(fake);
    expect(exec).toMatchObject({ exe: "/usr/bin/id", exe_dev: dev, exe_ino: ino, other_mount_ns: true });
    expect(exec?.exe_on_host).toBe("different");
    const note = `[other mount namespace: file is dev ${dev} ino ${ino}, not /usr/bin/id`;
    expect(text).toContain(`/usr/bin/id bind-marker ${note}`);
    expect(tree).toContain(`/usr/bin/id bind-marker ${note}`);
  }

  function expectRealId(exec: SessionCommandEvent | undefined) {
    expect(exec).toMatchObject({ exe: realpathSync("/usr/bin/id"), ...prefixed(identity("/usr/bin/id")) });
    expect(exec?.other_mount_ns).toBeUndefined();
    expect(exec?.exe_on_host).toBeUndefined();
  }

  const prefixed = (id: { dev: string; ino: string }) => ({ exe_dev: id.dev, exe_ino: id.ino });

  test("as nobody, through a user namespace if this kernel allows one: the event says it is not the host's id", async () => {
    const { s, ids, text, tree } = await bindExec("nobody");
    const real = ids.find((e) => e.argv.includes("-u"));
    expectRealId(real);
    if (s.stdout.startsWith("userns-refused")) {
      // The host refuses unprivileged user namespaces: the fake never ran as /usr/bin/id.
      expect(ids.filter((e) => e.argv.includes("bind-marker"))).toEqual([]);
      return;
    }
    expect(s.stdout).toStartWith("bind-marker\n");
    const fakeExec = ids.find((e) => e.argv.includes("bind-marker"));
    expect(fakeExec?.other_user_ns).toBe(true);
    expectUnmasked(fakeExec, text, tree);
  });

  test("as root, with a mount namespace alone", async () => {
    const { s, ids, text, tree } = await bindExec();
    expect(s.stdout).toStartWith("bind-marker\n");
    const fakeExec = ids.find((e) => e.argv.includes("bind-marker"));
    expect(fakeExec?.other_user_ns).toBeUndefined();
    expectUnmasked(fakeExec, text, tree);
    expectRealId(ids.find((e) => e.argv.includes("-u")));
  });
});

describe("4. a failed exec whose path buffer is rewritten while the exec waits on the caller's own lease", () => {
  test("the impossible pair (a missing path, ENOEXEC) is marked as the caller's memory, in the event and in replay", async () => {
    const { dir, file } = nobodysFile("garbage", "not a program\n", 0o755);
    const decoy = join(dir, "no-such-program");
    const s = await session(`${TRUTH} lease-exec ${file} ${decoy}`, "nobody");
    expect(s.stdout).toBe("exec failed: Exec format error\n");
    const failed = ofType(s.events, "session.command").filter((e) => e.return_code < 0);
    expect(failed.map((e) => ({ path: e.path, rc: e.return_code, from: e.from_caller_memory }))).toEqual([
      { path: decoy, rc: -ENOEXEC, from: ["path", "argv"] },
    ]);
    expect(failed[0]?.exe).toBeUndefined();
    const text = await runEsr(["replay", s.sid, "--data-dir", s.dataDir]);
    expect(text.stdout).toContain(`${decoy} [path and argv as requested, from the caller's memory]`);
  });
});
