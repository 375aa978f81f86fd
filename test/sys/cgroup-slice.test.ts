/** CgroupSlice on the real cgroup2 hierarchy, under a root_path of its own. */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { processStat } from "../../lib/sys/proc.ts";
import {
  CgroupSlice,
  OWNERS_DIR,
  prepareCgroupRoot,
  removeStaleSlices,
  slicesParent,
} from "../../lib/sys/cgroup-slice.ts";

const root = { cgroupPath: "/cgroup2", rootPath: `/esr-test-slices-${process.pid}` };

afterAll(() => {
  if (existsSync(slicesParent(root))) rmdirSync(slicesParent(root));
});

describe("prepareCgroupRoot", () => {
  test("mounts cgroup2 if needed and gives the slice depth below the hierarchy root", () => {
    expect(prepareCgroupRoot(root)).toBe(2);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).toMatch(/ \/cgroup2 .* - cgroup2 /);
    expect(prepareCgroupRoot({ cgroupPath: "/cgroup2", rootPath: "/a/b" })).toBe(3);
    rmdirSync("/cgroup2/a/b");
    rmdirSync("/cgroup2/a");
  });
});

describe("CgroupSlice", () => {
  test("its id is the cgroup's inode number, and it records its owner", async () => {
    prepareCgroupRoot(root);
    const slice = await CgroupSlice.create(root, "s1");
    expect(slice.id).toBe(statSync(slice.path, { bigint: true }).ino);
    expect(readFileSync(join(OWNERS_DIR, String(slice.id)), "utf8")).toStartWith(`${process.pid} `);
    slice.remove();
    expect(existsSync(slice.path)).toBe(false);
    expect(existsSync(join(OWNERS_DIR, String(slice.id)))).toBe(false);
  });

  test("populated while a process runs in it or a child cgroup; waitEmpty resolves when all are gone", async () => {
    prepareCgroupRoot(root);
    const slice = await CgroupSlice.create(root, "s2");
    expect(slice.isPopulated()).toBe(false);
    const child = join(slice.path, "child");
    mkdirSync(child);
    const proc = Bun.spawn(["sleep", "0.3"], { cgroup: child });
    expect(slice.isPopulated()).toBe(true);
    const t0 = performance.now();
    await slice.waitEmpty();
    expect(performance.now() - t0).toBeGreaterThan(150);
    await proc.exited;
    slice.remove();
    expect(existsSync(slice.path)).toBe(false);
  });

  test("kill ends every process of the slice, child cgroups included", async () => {
    prepareCgroupRoot(root);
    const slice = await CgroupSlice.create(root, "s3");
    mkdirSync(join(slice.path, "nested"));
    const a = Bun.spawn(["sleep", "30"], { cgroup: slice.path });
    const b = Bun.spawn(["sleep", "30"], { cgroup: join(slice.path, "nested") });
    slice.kill();
    expect(await a.exited).not.toBe(0);
    expect(await b.exited).not.toBe(0);
    await slice.waitEmpty();
    slice.remove();
  });

  test("an adopted cgroup (someone else's, e.g. logind's scope) is owned while recorded and never removed", () => {
    const made = join("/cgroup2", `esr-test-adopted-${process.pid}`);
    mkdirSync(made);
    try {
      const slice = CgroupSlice.adopt("/cgroup2", `/esr-test-adopted-${process.pid}`);
      expect(slice.path).toBe(made);
      expect(slice.id).toBe(statSync(made, { bigint: true }).ino);
      expect(readFileSync(join(OWNERS_DIR, String(slice.id)), "utf8")).toBe(
        `${process.pid} ${processStat(process.pid)?.startTime} ${made} adopted\n`,
      );
      slice.remove();
      expect(existsSync(made)).toBe(true);
      expect(existsSync(join(OWNERS_DIR, String(slice.id)))).toBe(false);
      expect(() => CgroupSlice.adopt("/cgroup2", "/no-such-cgroup")).toThrow("cannot find the cgroup /no-such-cgroup");
    } finally {
      rmdirSync(made);
    }
  });
});

describe("removeStaleSlices", () => {
  test("kills what runs in an adopted cgroup whose recorder is dead, and leaves the cgroup to its maker", async () => {
    prepareCgroupRoot(root);
    const made = join("/cgroup2", `esr-test-stale-adopted-${process.pid}`);
    mkdirSync(made);
    try {
      const slice = CgroupSlice.adopt("/cgroup2", `/esr-test-stale-adopted-${process.pid}`);
      const orphan = Bun.spawn(["sleep", "30"], { cgroup: made });
      writeFileSync(join(OWNERS_DIR, String(slice.id)), `999999999 1 ${made} adopted\n`);
      expect(removeStaleSlices(root)).toEqual([made]);
      expect(await orphan.exited).not.toBe(0);
      expect(existsSync(made)).toBe(true);
      expect(existsSync(join(OWNERS_DIR, String(slice.id)))).toBe(false);
    } finally {
      rmdirSync(made);
    }
  });

  test("removes slices whose recorder is dead, killing what runs there; keeps live ones", async () => {
    prepareCgroupRoot(root);
    const live = await CgroupSlice.create(root, "live");
    const stale = await CgroupSlice.create(root, "stale");
    // A recorder that died: its owner file names a process that no longer exists.
    writeFileSync(join(OWNERS_DIR, String(stale.id)), `999999999 1 ${stale.path}\n`);
    const orphan = Bun.spawn(["sleep", "30"], { cgroup: stale.path });
    const unowned = join(slicesParent(root), "unowned");
    mkdirSync(unowned);

    const removed = removeStaleSlices(root).sort();
    expect(removed).toEqual([stale.path, unowned].sort());
    expect(await orphan.exited).not.toBe(0);
    expect(existsSync(live.path)).toBe(true);
    expect(existsSync(stale.path)).toBe(false);
    live.remove();
  });

  test("an adopted cgroup of a dead recorder that cannot be killed (read-only mount) stops the cleanup with one line", async () => {
    prepareCgroupRoot(root);
    const made = join("/cgroup2", `esr-test-unkillable-${process.pid}`);
    const readOnly = mkdtempSync(join(tmpdir(), "esr-ro-cgroup2-"));
    mkdirSync(made);
    expect(Bun.spawnSync(["mount", "-t", "cgroup2", "-o", "ro", "cgroup2", readOnly]).exitCode).toBe(0);
    const orphan = Bun.spawn(["sleep", "30"], { cgroup: made });
    const seenReadOnly = join(readOnly, basename(made));
    const ownerFile = join(OWNERS_DIR, String(statSync(made, { bigint: true }).ino));
    try {
      writeFileSync(ownerFile, `999999999 1 ${seenReadOnly} adopted\n`);
      expect(() => removeStaleSlices(root)).toThrow(
        `cannot kill what runs in ${seenReadOnly}, recorded by a recorder that is gone:`,
      );
      expect(existsSync(ownerFile)).toBe(true); // the next recorder tries again
      expect(orphan.exitCode).toBeNull();
    } finally {
      rmSync(ownerFile, { force: true });
      orphan.kill("SIGKILL");
      await orphan.exited;
      Bun.spawnSync(["umount", readOnly]);
      rmdirSync(readOnly);
      rmdirSync(made);
    }
  });

  test("a slice another recorder is creating (claimed, no owner by id yet) is not taken for a dead one's", () => {
    prepareCgroupRoot(root);
    // The state between a recorder's mkdir and its owner file: only the claim names it.
    const creating = join(slicesParent(root), "being-created");
    const claim = join(OWNERS_DIR, "creating-being-created");
    writeFileSync(claim, `${process.pid} ${processStat(process.pid)?.startTime} ${creating}\n`);
    mkdirSync(creating);
    try {
      expect(removeStaleSlices(root)).toEqual([]);
      expect(existsSync(creating)).toBe(true);
    } finally {
      rmSync(claim);
    }
    // Once the claim is gone and no owner file appeared, it is an abandoned slice.
    expect(removeStaleSlices(root)).toEqual([creating]);
  });

  test("never looks outside its own root_path", () => {
    prepareCgroupRoot(root);
    const other = { cgroupPath: "/cgroup2", rootPath: `${root.rootPath}-other` };
    prepareCgroupRoot(other);
    mkdirSync(join(slicesParent(other), "foreign"));
    removeStaleSlices(root);
    expect(existsSync(join(slicesParent(other), "foreign"))).toBe(true);
    rmdirSync(join(slicesParent(other), "foreign"));
    rmdirSync(slicesParent(other));
  });
});
