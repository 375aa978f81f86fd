/**
 * The decoders of lib/events/kinds/ against events the real kernel produced: the programs are
 * loaded and attached, processes run in a real slice, and each decoded field is compared with
 * what the test knows about those processes.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../../lib/sys/cgroup-slice.ts";
import { KINDS, type KernelExec } from "../../lib/events/kinds/index.ts";
import { ProgramSet } from "../../lib/kernel/program-set.ts";
import { RingReader } from "../../lib/kernel/ring-reader.ts";

const root = { cgroupPath: "/cgroup2", rootPath: `/esr-test-decoder-${process.pid}` };
let probes: ProgramSet;
let reader: RingReader;
let slice: CgroupSlice;
const records: KernelExec[] = [];

beforeAll(async () => {
  const sliceLevel = prepareCgroupRoot(root);
  probes = ProgramSet.load({
    kinds: ["command"],
    sessionLevels: [sliceLevel],
    bufferPages: { command: 8, disk: 8, network: 8 },
  });
  reader = new RingReader(probes.ringFds.get("command")!, (bytes) => records.push(KINDS[0].decode(bytes)));
  slice = await CgroupSlice.create(root, "decoder");
  probes.addSession(slice.id, ["command"]);
});

afterAll(() => {
  reader?.close();
  probes?.close();
  slice?.remove();
  Bun.spawnSync(["rmdir", slicesParent(root)]);
});

async function run(cmd: string[], cgroup = slice.path): Promise<{ pid: number; recs: KernelExec[] }> {
  records.length = 0;
  const proc = Bun.spawn(cmd, { cgroup, stdout: "ignore", stderr: "ignore" });
  await proc.exited;
  reader.drain(1 << 20);
  return { pid: proc.pid, recs: [...records] };
}

test("a successful exec: every header and exec field", async () => {
  const { pid, recs } = await run(["/bin/echo", "alpha", "", "gamma delta"]);
  expect(recs.length).toBe(1);
  const r = recs[0]!;
  expect(r.sessionId).toBe(slice.id);
  expect(r.cgroupId).toBe(slice.id);
  expect(r.pid).toBe(pid);
  expect(r.ppid).toBe(process.pid);
  expect(r.comm).toBe("echo");
  expect(r.path).toBe("/bin/echo");
  expect(r.argv).toEqual(["/bin/echo", "alpha", "", "gamma delta"]);
  expect(r.returnCode).toBe(0);
  expect(r.argvTruncated).toBe(false);
  expect(r.pathTruncated).toBe(false);
  expect(r.argvBytes).toBe(Buffer.byteLength("/bin/echo\0alpha\0\0gamma delta\0"));
});

test("a failed exec: the path and argv as passed, and -errno", async () => {
  const { recs } = await run(["bash", "-c", "exec /nonexistent/prog one two"]);
  const failed = recs.find((r) => r.returnCode !== 0)!;
  expect(failed.path).toBe("/nonexistent/prog");
  expect(failed.argv).toEqual(["/nonexistent/prog", "one", "two"]);
  expect(failed.returnCode).toBe(-2);
  expect(failed.comm).toBe("bash");
});

test("a process in a child cgroup of the slice: the session is the slice, cgroup_id its own", async () => {
  const child = join(slice.path, "nested");
  mkdirSync(child);
  const { recs } = await run(["/bin/true", "nested"], child);
  expect(recs[0]?.sessionId).toBe(slice.id);
  expect(recs[0]?.cgroupId).toBe(statSync(child, { bigint: true }).ino);
  Bun.spawnSync(["rmdir", child]);
});

test("argv over 32 KiB: the first 32 KiB, flagged, with the real size", async () => {
  const args = Array.from({ length: 5000 }, (_, i) => `argument-${i}`); // ≈ 64 KiB
  const { recs } = await run(["/bin/true", ...args]);
  const r = recs[0]!;
  expect(r.argvTruncated).toBe(true);
  expect(r.argvBytes).toBe(Buffer.byteLength(["/bin/true", ...args].join("\0") + "\0"));
  expect(r.argv.slice(0, 1000)).toEqual(["/bin/true", ...args.slice(0, 999)]);
  expect(r.argv.join("\0").length).toBeLessThanOrEqual(32 * 1024);
});

test("a session that does not record commands, and a process outside any session, produce nothing", async () => {
  probes.addSession(slice.id, ["disk"]);
  expect((await run(["/bin/true"])).recs).toEqual([]);
  probes.addSession(slice.id, ["command"]);
  records.length = 0;
  await Bun.spawn(["/bin/true", "outside"]).exited;
  reader.drain(1 << 20);
  expect(records).toEqual([]);
});

test("lost events are zero when the ring keeps up, and none are filtered without a filter", () => {
  expect(probes.counts(slice.id)).toEqual({
    lost: { command: 0, disk: 0, network: 0 },
    filtered: { command: 0, disk: 0, network: 0 },
  });
});
