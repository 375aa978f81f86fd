import { expect, test } from "bun:test";
import { ESR, runEsr } from "../support/harness.ts";

test("esr check reports each requirement and each hook, and passes on this host", async () => {
  const r = await runEsr(["check"]);
  const lines = r.stdout.trimEnd().split("\n");
  for (const item of ["kernel", "BTF", "root", "ring buffer", "cgroup v2", "session filter", "stale slices"])
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

/** Runs esr where /sys/kernel/btf is an empty tmpfs: a private mount namespace, as on a kernel without BTF. */
function withoutBtf(args: string[]) {
  return Bun.spawnSync([
    "unshare",
    "-m",
    "sh",
    "-c",
    'mount -t tmpfs none /sys/kernel/btf && exec "$@"',
    "sh",
    ESR,
    ...args,
  ]);
}

test("without kernel BTF: check names the missing requirement and fails; record refuses in one line", () => {
  const check = withoutBtf(["check"]);
  expect(check.exitCode).toBe(1);
  expect(check.stdout.toString()).toMatch(
    /^FAIL +BTF +\/sys\/kernel\/btf\/vmlinux is missing: .*CONFIG_DEBUG_INFO_BTF=y/m,
  );
  const record = withoutBtf(["record", "--", "/bin/true"]);
  expect(record.exitCode).not.toBe(0);
  expect(record.stderr.toString().trimEnd().split("\n")).toEqual([expect.stringMatching(/^esr: .*BTF/)]);
});
