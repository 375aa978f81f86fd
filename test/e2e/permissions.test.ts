/**
 * Permissions (docs/contract.md §4): recordings are root's alone. Files 0600, directories 0700, all owned by
 * root; the user a session runs as cannot read, alter, remove or replace any recording, its own
 * included, nor reach the recorder's bookkeeping or its slice's controls.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { requireRootAndEsr, walk } from "../support/adversary.ts";
import { sessionsDir } from "../support/harness.ts";
import { ESR, execLines, ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";

// Real processes on a shared 2-core machine: a busy host makes them slow, never wrong.
setDefaultTimeout(120_000);

beforeAll(requireRootAndEsr);

/** A data dir under a directory everyone may traverse, as /var/lib/esr is, created by esr itself. */
function openDataDir(): string {
  const parent = tempDir();
  chmodSync(parent, 0o755);
  return join(parent, "data");
}

describe("modes and owners", () => {
  test("every file 0600 and every directory 0700, owned by root:root", async () => {
    const dataDir = openDataDir();
    const r = await record(
      ["bash", "-c", "/bin/echo perms; (: 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; cat /etc/hostname >/dev/null"],
      { flags: ["--events", "command,disk,network"], dataDir },
    );
    expect(r.exitCode).toBe(0);
    const paths = walk(dataDir);
    expect(paths.filter((p) => p.endsWith(".gz")).length).toBe(4);
    for (const p of paths) {
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        expect(p).toEndWith("events.log"); // the only link, to the day's file
        continue;
      }
      expect({ p, uid: st.uid, gid: st.gid }).toEqual({ p, uid: 0, gid: 0 });
      expect({ p, mode: (st.mode & 0o777).toString(8) }).toEqual({ p, mode: st.isDirectory() ? "700" : "600" });
    }
  });

  test("the recorder's slice-owner files are root's alone too", async () => {
    const r = await record(["bash", "-c", "ls /run/esr/slices > /dev/null"], { flags: ["--events", "command"] });
    expect(r.exitCode).toBe(0);
    const st = statSync("/run/esr/slices");
    expect((st.mode & 0o777).toString(8)).toBe("700");
    expect(st.uid).toBe(0);
  });

  test("a pre-existing data dir others may write is tightened to 0700", async () => {
    const dataDir = openDataDir();
    mkdirSync(dataDir, { mode: 0o777 });
    chmodSync(dataDir, 0o777);
    const r = await record(["true"], { flags: ["--events", "command"], dataDir });
    expect(r.exitCode).toBe(0);
    expect((statSync(dataDir).mode & 0o777).toString(8)).toBe("700");
  });

  test("a data dir owned by another user is refused, before the command runs", async () => {
    const dataDir = openDataDir();
    mkdirSync(dataDir, { mode: 0o700 });
    chownSync(dataDir, 65534, 65534);
    const out = join(tempDir(), "ran");
    const r = await runEsr(["record", "--data-dir", dataDir, "--events", "command", "--", "touch", out]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^esr: cannot use data dir: .* is owned by uid 65534, not root/);
    expect(r.stderr.trimEnd().split("\n").length).toBe(1);
    expect(() => statSync(out)).toThrow();
  });
});

describe("a session recorded --login nobody against the recordings", () => {
  test("cannot read, alter, remove, rename or add to any recording, its own included", async () => {
    const dataDir = openDataDir();
    // An earlier session, and its files, for the user to go after.
    const earlier = await record(["/bin/echo", "earlier-secret"], { flags: ["--events", "command"], dataDir });
    const dir = sessionsDir(dataDir);
    const files = readdirSync(dir).map((f) => join(dir, f));
    const before = files.map((f) => readFileSync(f));
    const logTarget = join(dataDir, "log", readFileSync(join(dataDir, "host_uuid"), "utf8").trim());
    const out = tempDir();
    chmodSync(out, 0o777);
    const tries = [
      ...files.flatMap((f) => [
        `cat ${f}`,
        `echo x >> ${f}`,
        `rm -f ${f}`,
        `mv ${f} ${f}.x`,
        `chmod 666 ${f}`,
        `truncate -s 0 ${f}`,
      ]),
      `ls ${dir}`,
      `touch ${dir}/forged.index`,
      `cat ${dataDir}/host_uuid`,
      `cat ${dataDir}/log/events.log`,
      `ls ${logTarget}`,
      `ln -sf /tmp/x ${dataDir}/log/events.log`,
      `mv ${dataDir}/log ${dataDir}/log.old`,
      `mkdir ${dataDir}/log2`,
      `ESR_DEBUG=1 zcat ${files.find((f) => f.endsWith(".gz"))}`,
      // …and the session being recorded now: its own files, by their session id.
      `cat ${dir}/$ESR_SESSION_ID-0.events.gz`,
      `rm -f ${dir}/$ESR_SESSION_ID.index`,
    ];
    const script = tries
      .map((t, i) => `if ${t} >/dev/null 2>&1; then echo "ALLOWED ${i}: ${t.replace(/"/g, "")}"; fi`)
      .join("\n");
    const r = await record(["bash", "-c", `${script} > ${out}/result 2>&1; /bin/echo done-trying`], {
      flags: ["--events", "command", "--login", "nobody"],
      dataDir,
    });
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(out, "result"), "utf8")).toBe("");
    // Nothing changed, and both sessions read back whole.
    expect(files.map((f) => readFileSync(f))).toEqual(before);
    expect(execLines(await replayEvents(dataDir, earlier.sid))).toEqual(["/bin/echo earlier-secret"]);
    const mine = await replayEvents(dataDir, r.sid);
    expect(execLines(mine)).toContain("/bin/echo done-trying");
    expect(ofType(mine, "session.end").length).toBe(1);
  });

  test("cannot use esr itself to read recordings", async () => {
    const dataDir = openDataDir();
    const earlier = await record(["/bin/echo", "earlier-secret"], { flags: ["--events", "command"], dataDir });
    const out = tempDir();
    chmodSync(out, 0o777);
    const esrCopy = join(out, "esr");
    Bun.spawnSync(["cp", ESR, esrCopy]);
    chmodSync(esrCopy, 0o755);
    const r = await record(
      [
        "bash",
        "-c",
        `${esrCopy} replay ${earlier.sid} --data-dir ${dataDir} > ${out}/replay 2>&1; echo "replay $?" >> ${out}/replay; ${esrCopy} ls --data-dir ${dataDir} > ${out}/ls 2>&1; echo "ls $?" >> ${out}/ls`,
      ],
      { flags: ["--events", "command", "--login", "nobody"], dataDir },
    );
    expect(r.exitCode).toBe(0);
    const replay = readFileSync(join(out, "replay"), "utf8");
    expect(replay).not.toContain("earlier-secret");
    expect(replay).toMatch(/^esr: .*\nreplay [1-9]\d*\n$/);
    const ls = readFileSync(join(out, "ls"), "utf8");
    expect(ls).not.toContain(earlier.sid);
    expect(ls).toMatch(/ls [1-9]\d*\n$/);
  });

  test("cannot touch its slice's controls: freeze, kill, move, limits", async () => {
    const out = tempDir();
    chmodSync(out, 0o777);
    const r = await record(
      [
        "bash",
        "-c",
        `d=/cgroup2$(sed -n "s/^0:://p" /proc/self/cgroup); for f in cgroup.freeze cgroup.kill cgroup.procs cgroup.subtree_control pids.max; do if [ -e $d/$f ] && echo 1 > $d/$f 2>/dev/null; then echo "ALLOWED $f"; fi; done > ${out}/result; /bin/echo still-here`,
      ],
      { flags: ["--events", "command", "--login", "nobody"] },
    );
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(out, "result"), "utf8")).toBe("");
    expect(execLines(await replayEvents(r.dataDir, r.sid))).toContain("/bin/echo still-here");
  });
});
