#!/usr/bin/env bun
/**
 * What each way of hooking the syscall exit costs processes outside any session (#14 item 1): an
 * open storm and a getppid storm (the cheapest syscall), pinned to one CPU, with each option
 * attached and with nothing, alternating, medians of the rounds, ratios against nothing in the same
 * run; and what attaching and detaching each takes. Numbers only.
 *   bun scripts/bench-hooks.ts [--rounds N]
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { attachFloorPrograms } from "./bench/floor.ts";
import { ProgramSet } from "../lib/kernel/program-set.ts";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../lib/sys/cgroup-slice.ts";

const ROOT = join(import.meta.dir, "..");
const WORKLOAD = join(ROOT, "build", "bench-workload");
const at = process.argv.indexOf("--rounds");
const ROUNDS = at > 0 ? Number(process.argv[at + 1]) : 7;

function run(args: string[]): number {
  const r = Bun.spawnSync(["taskset", "-c", "1", WORKLOAD, ...args], { stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`workload ${args.join(" ")} failed`);
  return Number(r.stdout.toString().trim().split("\n").pop()!.split(" ")[2]);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const root = { cgroupPath: "/cgroup2", rootPath: `/esr-bench-hooks-${process.pid}` };
/** esr's own programs (command and disk: both sys_exit programs), with `sessions` sessions elsewhere. */
async function esrPrograms(sessions: number): Promise<() => void> {
  const programs = ProgramSet.load({
    kinds: ["command", "disk"],
    sessionLevels: [prepareCgroupRoot(root)],
    bufferPages: { command: 64, disk: 64, network: 64 },
  });
  const slices: CgroupSlice[] = [];
  for (let i = 0; i < sessions; i++) {
    const s = await CgroupSlice.create(root, `hooks-${i}`);
    programs.addSession(s.id, ["command", "disk"]);
    slices.push(s);
  }
  return () => {
    programs.close();
    for (const s of slices) s.remove();
  };
}

const options: { name: string; attach: () => Promise<() => void> }[] = [
  {
    name: "tp_btf/sys_exit, 1 empty program (esr's floor)",
    attach: async () => attachFloorPrograms(["floor_sys_exit"]),
  },
  {
    name: "tp_btf/sys_exit, 2 empty programs",
    attach: async () => attachFloorPrograms(["floor_sys_exit", "floor_sys_exit_second"]),
  },
  { name: "raw_tracepoint/sys_exit, 1 empty program", attach: async () => attachFloorPrograms(["floor_raw_sys_exit"]) },
  {
    name: "tracepoint/syscalls/sys_exit_openat (classic), 1 empty",
    attach: async () => {
      if (!existsSync("/sys/kernel/tracing/events")) {
        mkdirSync("/sys/kernel/tracing", { recursive: true });
        Bun.spawnSync(["mount", "-t", "tracefs", "tracefs", "/sys/kernel/tracing"]);
      }
      return attachFloorPrograms(["floor_sys_exit_openat"]);
    },
  },
  { name: "esr command+disk programs, no session", attach: () => esrPrograms(0) },
  { name: "esr command+disk programs, 1 session elsewhere", attach: () => esrPrograms(1) },
];

async function main() {
  if (process.getuid?.() !== 0) throw new Error("the benchmark runs as root");
  const source = join(ROOT, "scripts", "bench", "workload.c");
  if (!existsSync(WORKLOAD) || statSync(WORKLOAD).mtimeMs < statSync(source).mtimeMs)
    Bun.spawnSync(["clang", "-O2", "-Wall", "-Werror", "-o", WORKLOAD, source]);
  console.log(`hook options, outside any session — ${ROUNDS} rounds, medians, ratio to nothing attached`);
  for (const option of options) {
    const base = { open: [] as number[], getppid: [] as number[] };
    const hooked = {
      open: [] as number[],
      getppid: [] as number[],
      attachMs: [] as number[],
      detachMs: [] as number[],
    };
    let skipped: string | undefined;
    for (let r = 0; r < ROUNDS && !skipped; r++) {
      base.open.push(run(["open", "200000"]));
      base.getppid.push(run(["getppid", "1000000"]));
      let t = performance.now();
      let detach: () => void;
      try {
        detach = await option.attach();
      } catch (err) {
        skipped = err instanceof Error ? err.message : String(err);
        break;
      }
      hooked.attachMs.push(performance.now() - t);
      hooked.open.push(run(["open", "200000"]));
      hooked.getppid.push(run(["getppid", "1000000"]));
      t = performance.now();
      detach();
      hooked.detachMs.push(performance.now() - t);
    }
    if (skipped) {
      console.log(`  ${option.name.padEnd(52)} not available here: ${skipped}`);
      continue;
    }
    const ratio = (k: "open" | "getppid") => (median(hooked[k]) / median(base[k])).toFixed(3);
    const delta = (k: "open" | "getppid") => (median(hooked[k]) - median(base[k])).toFixed(0);
    console.log(
      `  ${option.name.padEnd(52)} open+close ${ratio("open")}× (${delta("open")} ns), getppid ${ratio("getppid")}× (${delta("getppid")} ns), attach ${median(hooked.attachMs).toFixed(1)} ms, detach ${median(hooked.detachMs).toFixed(1)} ms`,
    );
  }
  Bun.spawnSync(["rmdir", slicesParent(root)]);
}

await main();
