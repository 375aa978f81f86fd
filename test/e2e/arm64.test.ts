/**
 * dist/esr-linux-arm64 records on an arm64 kernel: Debian's, booted under qemu-system-aarch64
 * (software emulation, ≈ 2–3 min) by scripts/arm64-smoke.sh, which checks the replay it prints.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "../support/harness.ts";

test("the arm64 executable records a session under qemu-system-aarch64", () => {
  const r = Bun.spawnSync(["bash", join(ROOT, "scripts", "arm64-smoke.sh")], { stderr: "pipe" });
  const out = r.stdout.toString();
  expect({ exit: r.exitCode, verdict: out.trim().split("\n").at(-1), stderr: r.stderr.toString() }).toEqual({
    exit: 0,
    verdict: "arm64-smoke: ok",
    stderr: "",
  });
  expect(out).toMatch(/exec +\/no\/such .*= -2 ENOENT/);
}, 900_000);
