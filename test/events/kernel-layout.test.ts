/**
 * The kernel/user boundary is generated, never edited: the committed layout is what bpf/esr.h
 * compiles to (scripts/build.ts regenerates it from the BTF of build/bpf/layout.o at every build).
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { kernelLayoutSource } from "../../scripts/kernel-layout.ts";
import { ROOT } from "../support/harness.ts";

type Layout = { sizeof: number } & Record<string, { offset: number; size: number }>;

const GENERATED = join(ROOT, "lib", "events", "kinds", "kernel-layout.generated.ts");

test("the committed layout is the one bpf/esr.h compiles to", async () => {
  const fresh = await kernelLayoutSource(join(ROOT, "build", "bpf", "layout.o"));
  expect(readFileSync(GENERATED, "utf8")).toBe(fresh);
  const diff = Bun.spawnSync(["git", "-C", ROOT, "diff", "--stat", "HEAD", "--", GENERATED]);
  expect({ uncommitted: diff.stdout.toString().trim() }).toEqual({ uncommitted: "" });
});

test("every kind's record starts with the shared header, and its fields lie inside the struct", async () => {
  const layout = await import(GENERATED);
  for (const name of ["esr_exec_event", "esr_open_event", "esr_network_event"]) {
    const { sizeof, ...fields } = layout[name] as Layout;
    expect(fields.hdr).toEqual({ offset: 0, size: layout.esr_event_header.sizeof });
    for (const [field, at] of Object.entries(fields))
      expect({ field, end: at.offset + at.size <= sizeof }).toEqual({ field, end: true });
  }
});
