/**
 * disk_open has three twins at the same hook (bpf/disk.bpf.c, enum esr_reads in bpf/esr.h): one
 * reads the current task and the opened file's path with helper reads (5.8–5.10), one the task
 * with plain loads through bpf_get_current_task_btf (5.11 on), one the file and its path too,
 * made BTF pointers with bpf_rdonly_cast (6.2 on). The recorder loads the cheapest the kernel
 * allows; this kernel allows all three, so each is loaded here, one after the other, and all
 * must name the same files the same way: the kernel matrix runs each kernel's own twin only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../../lib/sys/cgroup-slice.ts";
import { diskKind, type KernelOpen } from "../../lib/events/kinds/disk.ts";
import { ProgramSet, twinsToLoad, type KernelReads } from "../../lib/kernel/program-set.ts";
import { RingReader } from "../../lib/kernel/ring-reader.ts";

const root = { cgroupPath: "/cgroup2", rootPath: `/esr-test-typed-${process.pid}` };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "esr-typed-"));
  mkdirSync(join(dir, "sub"));
  writeFileSync(join(dir, "sub", "file"), "x");
  symlinkSync(join(dir, "sub", "file"), join(dir, "link"));
  linkSync(join(dir, "sub", "file"), join(dir, "hard"));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  Bun.spawnSync(["rmdir", slicesParent(root)]);
});

/**
 * The opens a shell makes in a recorded slice, decoded: a plain file, through a symlink, through
 * /proc/self/fd, a hard link, a file deleted while open, a failed open, a pipe.
 */
async function opensWith(reads: KernelReads): Promise<{ attached: string[]; opens: KernelOpen[] }> {
  prepareCgroupRoot(root);
  const programs = ProgramSet.load({
    kinds: ["disk"],
    sessionLevels: [2],
    bufferPages: { command: 8, disk: 64, network: 8 },
    reads,
  });
  const records: KernelOpen[] = [];
  const reader = new RingReader(programs.ringFds.get("disk")!, (bytes) => records.push(diskKind.decode(bytes)));
  const slice = await CgroupSlice.create(root, `reads-${reads}`);
  writeFileSync(join(dir, "gone"), "x");
  try {
    programs.addSession(slice.id, ["disk"]);
    const script = [
      `cat ${dir}/sub/file ${dir}/link ${dir}/hard`,
      `exec 3<${dir}/gone; rm ${dir}/gone; cat /proc/self/fd/3; exec 3<&-`,
      `cat ${dir}/missing 2>/dev/null`,
      `echo x | cat /proc/self/fd/0`,
      `echo x > ${dir}/out; rm ${dir}/out`,
    ].join("; ");
    await Bun.spawn(["/bin/sh", "-c", script], { cgroup: slice.path, stdout: "ignore" }).exited;
    reader.drain(1 << 20);
    return { attached: programs.attached.map((p) => p.name), opens: records };
  } finally {
    reader.close();
    programs.close();
    slice.remove();
  }
}

/**
 * What an open names, without what differs from run to run: pid, time, fd numbers, and the inode
 * of the files each run makes anew (the deleted one, the pipe), which must still be present.
 */
function named(o: KernelOpen) {
  if (!o.file) return { returned: o.returnCode, requested: o.requestedPath };
  const { ino, path, ...file } = o.file;
  const madeAnew = !path.startsWith(join(dir, "sub"));
  return {
    returned: "fd",
    requested: o.requestedPath,
    file: { ...file, ino: madeAnew ? ino > 0n : ino, path: path.replace(`[${ino}]`, "[ino]") },
  };
}

describe("disk_open's twins", () => {
  test("each way of reading loads its own twin, and all three name every file the same way", async () => {
    const cast = await opensWith("cast");
    const task = await opensWith("task");
    const helper = await opensWith("helper");
    expect(cast.attached).toEqual(["disk_open_cast"]);
    expect(task.attached).toEqual(["disk_open_typed"]);
    expect(helper.attached).toEqual(["disk_open"]);
    const ours = (r: KernelOpen[]) =>
      r.filter((o) => o.requestedPath.includes(dir) || o.requestedPath.startsWith("/proc/self/fd"));
    const a = ours(helper.opens).map(named);
    // Deleted file, symlink, hard link, failed and pipe opens: a run that saw none would prove nothing.
    expect(a.length).toBeGreaterThanOrEqual(7);
    expect(ours(task.opens).map(named)).toEqual(a);
    expect(ours(cast.opens).map(named)).toEqual(a);
  });

  test("a way a program has no twin for loads its next slower twin; a program without twins is its own", () => {
    const names = [
      "disk_open",
      "disk_open_typed",
      "disk_open_cast",
      "command_exec",
      "command_exit_typed",
      "command_exit",
    ];
    expect([...twinsToLoad(names, "cast")].sort()).toEqual(["command_exec", "command_exit_typed", "disk_open_cast"]);
    expect([...twinsToLoad(names, "task")].sort()).toEqual(["command_exec", "command_exit_typed", "disk_open_typed"]);
    expect([...twinsToLoad(names, "helper")].sort()).toEqual(["command_exec", "command_exit", "disk_open"]);
  });
});
