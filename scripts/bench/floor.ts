/**
 * scripts/bench/floor.bpf.c's programs, attached by the benchmarks: empty programs at esr's hooks
 * (and at the hooks it could use instead), whose cost is what the kernel charges for the hook alone.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Pointer } from "bun:ffi";
import { check, checkPtr, cString, libbpf } from "../../lib/kernel/libbpf.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SOURCE = join(ROOT, "scripts", "bench", "floor.bpf.c");
const OBJECT = join(ROOT, "build", "bench-floor.bpf.o");

/** Loads and attaches the programs of floor.bpf.c named `names`; returns the detach. */
export function attachFloorPrograms(names: string[]): () => void {
  if (!existsSync(OBJECT) || statSync(OBJECT).mtimeMs < statSync(SOURCE).mtimeMs) {
    const include = `-I${join(ROOT, "build", process.arch)}`;
    const cc = Bun.spawnSync(["clang", "-O2", "-g", "-target", "bpf", include, "-c", SOURCE, "-o", OBJECT]);
    if (cc.exitCode !== 0) throw new Error(`cannot build ${SOURCE}: ${cc.stderr.toString().trim()}`);
  }
  const bpf = libbpf();
  const image = readFileSync(OBJECT);
  const obj = checkPtr(bpf.bpf_object__open_mem(image, image.length, null), "cannot open the floor object");
  const links: Pointer[] = [];
  const detach = () => {
    for (const l of links) bpf.bpf_link__destroy(l);
    bpf.bpf_object__close(obj);
  };
  try {
    const programs: Pointer[] = [];
    for (
      let p = bpf.bpf_object__next_program(obj, null) as Pointer | null;
      p;
      p = bpf.bpf_object__next_program(obj, p) as Pointer | null
    ) {
      const wanted = names.includes(cString(bpf.bpf_program__name(p)));
      check(bpf.bpf_program__set_autoload(p, wanted), "cannot select the floor programs");
      if (wanted) programs.push(p);
    }
    if (programs.length !== names.length) throw new Error(`floor.bpf.c has no program among ${names.join(", ")}`);
    check(bpf.bpf_object__load(obj), "cannot load the floor programs");
    for (const p of programs) links.push(checkPtr(bpf.bpf_program__attach(p), "cannot attach a floor program"));
    return detach;
  } catch (err) {
    detach();
    throw err;
  }
}
