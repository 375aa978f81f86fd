/**
 * disk_open has two twins at the same hook (bpf/disk.bpf.c): one reads the current task through
 * bpf_get_current_task_btf with plain loads (Linux 5.11 on), one with helper reads (5.8–5.10). The
 * recorder loads the first where the kernel allows it; this kernel allows both, so both are loaded
 * here, one after the other, and must name the same files the same way: the kernel matrix runs
 * only the helper twin on 5.10 and only the typed one on newer kernels.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../../lib/sys/cgroup-slice.ts";
import { diskKind, type KernelOpen } from "../../lib/events/kinds/disk.ts";
import { ProgramSet } from "../../lib/kernel/program-set.ts";
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
async function opensWith(typedTask: boolean): Promise<{ attached: string[]; opens: KernelOpen[] }> {
  prepareCgroupRoot(root);
  const programs = ProgramSet.load({
    kinds: ["disk"],
    sessionLevels: [2],
    bufferPages: { command: 8, disk: 64, network: 8 },
    typedTask,
  });
  const records: KernelOpen[] = [];
  const reader = new RingReader(programs.ringFds.get("disk")!, (bytes) => records.push(diskKind.decode(bytes)));
  const slice = await CgroupSlice.create(root, `typed-${typedTask}`);
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

describe("disk_open's typed and helper twins", () => {
  test("each loads its own twin, and both name every file the same way", async () => {
    const typed = await opensWith(true);
    const helper = await opensWith(false);
    expect(typed.attached).toEqual(["disk_open_typed"]);
    expect(helper.attached).toEqual(["disk_open"]);
    const ours = (r: KernelOpen[]) =>
      r.filter((o) => o.requestedPath.includes(dir) || o.requestedPath.startsWith("/proc/self/fd"));
    const a = ours(typed.opens).map(named);
    const b = ours(helper.opens).map(named);
    // Deleted file, symlink, hard link, failed and pipe opens: a run that saw none would prove nothing.
    expect(a.length).toBeGreaterThanOrEqual(7);
    expect(a).toEqual(b);
  });
});
