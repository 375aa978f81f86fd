/**
 * Whether this host offers the i386 syscall ABI (int $0x80 from any process), found out at run time:
 * CONFIG_IA32_EMULATION says nothing about the VM host, which may kill every int $0x80 with SIGSEGV.
 * Tests of i386 evasions assert the full recording where the ABI works, and that the evasion is
 * impossible (the attempt is killed or refused, nothing runs) where it does not.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export type I386Abi = { available: true } | { available: false; how: "killed" | "refused"; detail: string };

let probed: I386Abi | undefined;

export function i386Abi(): I386Abi {
  if (probed) return probed;
  if (process.arch !== "x64")
    return (probed = { available: false, how: "refused", detail: `no i386 ABI on ${process.arch}` });
  const out = join(mkdtempSync(join(tmpdir(), "esr-int80-")), "int80-getpid");
  const cc = Bun.spawnSync(
    ["clang", "-O1", "-o", out, join(import.meta.dir, "..", "fixtures", "abi", "int80-getpid.c")],
    { stderr: "pipe" },
  );
  if (cc.exitCode !== 0) throw new Error(`cannot build the i386 ABI probe with clang: ${cc.stderr.toString()}`);
  const run = Bun.spawnSync([out], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode === 0) return (probed = { available: true });
  if (run.signalCode)
    return (probed = { available: false, how: "killed", detail: `int $0x80 killed the probe with ${run.signalCode}` });
  return (probed = { available: false, how: "refused", detail: `int $0x80 returned ${run.stdout.toString().trim()}` });
}

/** The exit status a shell reports for a process killed with SIGSEGV. */
export const SHELL_STATUS_SIGSEGV = 139;
