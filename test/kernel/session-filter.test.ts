/**
 * A session's cgroup is found at each configured depth (esr's slices at one, logind's scopes one
 * deeper), and both ways the programs find a task's session give the same answer on this kernel: the helper
 * (bpf_get_current_ancestor_cgroup_id) and the task-cgroup read that kernels before 5.14 need,
 * forced here so the ancestors[] layout of 6.x kernels is exercised too (the kernel matrix, in
 * scripts/kernel-matrix.sh, covers the ancestor_ids[] layout on 5.10).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../../lib/sys/cgroup-slice.ts";
import { commandKind, type KernelExec } from "../../lib/events/kinds/command.ts";
import { ProgramSet } from "../../lib/kernel/program-set.ts";
import { RingReader } from "../../lib/kernel/ring-reader.ts";

for (const ancestorHelper of [true, false]) {
  describe(ancestorHelper ? "with the ancestor helper" : "reading the task's cgroup", () => {
    const root = { cgroupPath: "/cgroup2", rootPath: `/esr-test-filter-${ancestorHelper}-${process.pid}` };
    let programs: ProgramSet;
    let reader: RingReader;
    let slice: CgroupSlice;
    /** An unrecorded cgroup beside the slice, with a recorded one inside: user-UID.slice/session-N.scope. */
    let userSlice: string;
    let scope: CgroupSlice;
    const records: KernelExec[] = [];

    beforeAll(async () => {
      const sliceLevel = prepareCgroupRoot(root);
      programs = ProgramSet.load({
        kinds: ["command"],
        // esr's slices, and scopes one deeper, as logind's are below user-UID.slice.
        sessionLevels: [sliceLevel, sliceLevel + 1],
        bufferPages: { command: 8, disk: 8, network: 8 },
        ancestorHelper,
      });
      reader = new RingReader(programs.ringFds.get("command")!, (bytes) => records.push(commandKind.decode(bytes)));
      slice = await CgroupSlice.create(root, "filter");
      programs.addSession(slice.id, ["command"]);
      userSlice = join(slicesParent(root), "user-slice");
      mkdirSync(join(userSlice, "scope"), { recursive: true });
      scope = CgroupSlice.adopt(root.cgroupPath, join(root.rootPath, "user-slice", "scope"));
      programs.addSession(scope.id, ["command"]);
    });

    afterAll(() => {
      reader?.close();
      programs?.close();
      slice?.remove();
      scope?.remove();
      Bun.spawnSync(["rmdir", join(userSlice, "scope"), userSlice, slicesParent(root)]);
    });

    async function execsIn(cgroup: string | undefined, marker: string): Promise<KernelExec[]> {
      records.length = 0;
      await Bun.spawn(["/bin/true", marker], { cgroup, stdout: "ignore" }).exited;
      reader.drain(1 << 20);
      return records.filter((r) => r.argv[1] === marker);
    }

    test("the load uses the requested filter", () => {
      expect(programs.ancestorHelper).toBe(ancestorHelper);
    });

    test("an exec in the slice belongs to the session", async () => {
      const recs = await execsIn(slice.path, "in-slice");
      expect(recs.map((r) => [r.sessionId, r.cgroupId])).toEqual([[slice.id, slice.id]]);
    });

    test("an exec two cgroups below the slice still belongs to the session", async () => {
      const deep = join(slice.path, "a", "b");
      mkdirSync(deep, { recursive: true });
      const recs = await execsIn(deep, "nested");
      expect(recs.map((r) => [r.sessionId, r.cgroupId])).toEqual([[slice.id, statSync(deep, { bigint: true }).ino]]);
      Bun.spawnSync(["rmdir", deep, join(slice.path, "a")]);
    });

    test("an exec in a session cgroup one level deeper belongs to that session", async () => {
      const recs = await execsIn(scope.path, "in-scope");
      expect(recs.map((r) => [r.sessionId, r.cgroupId])).toEqual([[scope.id, scope.id]]);
    });

    test("an exec in the unrecorded parent of such a session belongs to no session", async () => {
      expect(await execsIn(userSlice, "in-user-slice")).toEqual([]);
    });

    test("an exec outside the slice belongs to no session", async () => {
      expect(await execsIn(undefined, "outside")).toEqual([]);
    });
  });
}
