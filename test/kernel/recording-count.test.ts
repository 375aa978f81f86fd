/**
 * The kernel's `recording` counts (bpf/esr.h): the hooks of a kind return at once while no session
 * records it, so a wrong count either records nothing (too low) or makes outsiders pay (too high).
 * Checked here as the map holds them and by what a session records after others came and went.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../../lib/sys/cgroup-slice.ts";
import { commandKind, type KernelExec } from "../../lib/events/kinds/command.ts";
import type { EventKind } from "../../lib/events/kinds/index.ts";
import { libbpf } from "../../lib/kernel/libbpf.ts";
import { ProgramSet } from "../../lib/kernel/program-set.ts";
import { RingReader } from "../../lib/kernel/ring-reader.ts";

const root = { cgroupPath: "/cgroup2", rootPath: `/esr-test-count-${process.pid}` };
let programs: ProgramSet;
let reader: RingReader;
const slices: CgroupSlice[] = [];
const execs: KernelExec[] = [];

beforeAll(() => {
  programs = ProgramSet.load({
    kinds: ["command", "disk"],
    sessionLevels: [prepareCgroupRoot(root)],
    bufferPages: { command: 8, disk: 8, network: 8 },
  });
  reader = new RingReader(programs.ringFds.get("command")!, (bytes) => execs.push(commandKind.decode(bytes)));
});

afterAll(() => {
  reader?.close();
  programs?.close();
  for (const s of slices) s.remove();
  Bun.spawnSync(["rmdir", slicesParent(root)]);
});

/** The count the kernel holds for a kind (command 0, disk 1, network 2). */
function counted(index: number): number {
  const value = new Uint32Array(1);
  expect(libbpf().bpf_map_lookup_elem(programs.recordingFd, new Uint32Array([index]), value)).toBe(0);
  return value[0]!;
}

async function slice(name: string, kinds: EventKind[]): Promise<CgroupSlice> {
  const s = await CgroupSlice.create(root, name);
  slices.push(s);
  programs.addSession(s.id, kinds);
  return s;
}

async function recordedExecs(s: CgroupSlice, marker: string): Promise<number> {
  execs.length = 0;
  await Bun.spawn(["/bin/true", marker], { cgroup: s.path, stdout: "ignore" }).exited;
  reader.drain(1 << 20);
  return execs.filter((e) => e.argv[1] === marker).length;
}

test("the counts follow the sessions, and a session records after others came and went", async () => {
  expect([counted(0), counted(1), counted(2)]).toEqual([0, 0, 0]);
  const a = await slice("a", ["command"]);
  const b = await slice("b", ["command", "disk"]);
  expect([counted(0), counted(1), counted(2)]).toEqual([2, 1, 0]);
  programs.addSession(b.id, ["disk"]); // registered again with other kinds: replaced, not counted twice
  expect([counted(0), counted(1)]).toEqual([1, 1]);
  programs.removeSession(b.id);
  programs.removeSession(b.id); // a second removal changes nothing
  expect([counted(0), counted(1)]).toEqual([1, 0]);
  expect(await recordedExecs(a, "count-a1")).toBe(1);
  programs.removeSession(a.id);
  expect(counted(0)).toBe(0);
  expect(await recordedExecs(a, "count-a2")).toBe(0);
  programs.addSession(a.id, ["command"]);
  expect(await recordedExecs(a, "count-a3")).toBe(1);
});
