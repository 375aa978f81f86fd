import { expect, test } from "bun:test";
import { ESR, runEsr } from "../support/harness.ts";

test("esr check reports each requirement and each hook, and passes on this host", async () => {
  const r = await runEsr(["check"]);
  const lines = r.stdout.trimEnd().split("\n");
  for (const item of ["kernel", "BTF", "root", "cgroup v2", "stale slices"])
    expect(lines.some((l) => l.startsWith("ok") && l.includes(item))).toBe(true);
  expect(lines).toContainEqual(expect.stringMatching(/^ok +command hook +tp_btf\/sched_process_exec/));
  expect(lines).toContainEqual(expect.stringMatching(/^ok +command hook +tp_btf\/sys_exit/));
  expect({ failing: lines.filter((l) => l.startsWith("FAIL")), exit: r.exitCode }).toEqual({ failing: [], exit: 0 });
});

test("esr check fails, naming the item, when it cannot record", async () => {
  const r = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ESR, "check"]);
  expect(r.exitCode).toBe(1);
  expect(r.stdout.toString()).toMatch(/^FAIL +root +esr must run as root/m);
});
