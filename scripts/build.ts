#!/usr/bin/env bun
/**
 * Builds dist/esr: compiles bpf/<kind>.bpf.c (CO-RE, clang) and links them into one object,
 * copies libbpf and its dependencies next to it, and compiles the CLI with all of it embedded into
 * one executable. One object, because libbpf parses the kernel's BTF once per object (≈ 15 ms).
 *   bun scripts/build.ts            everything
 *   bun scripts/build.ts --no-exe   only build/ (what `bun test` needs)
 */
import { $ } from "bun";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { kernelLayoutSource } from "./kernel-layout.ts";

const root = join(import.meta.dir, "..");
const build = join(root, "build");
const arch = process.arch === "arm64" ? "arm64" : "x86";
const libDir = process.arch === "arm64" ? "/usr/lib/aarch64-linux-gnu" : "/usr/lib/x86_64-linux-gnu";

mkdirSync(join(build, "bpf"), { recursive: true });
mkdirSync(join(build, "native"), { recursive: true });

// vmlinux.h only provides type definitions; CO-RE relocates field offsets to the target kernel.
const vmlinux = join(build, "vmlinux.h");
if (!existsSync(vmlinux)) {
  await $`bpftool btf dump file /sys/kernel/btf/vmlinux format c > ${vmlinux}`;
}

const kindObjects: string[] = [];
for (const file of readdirSync(join(root, "bpf")).filter((f) => f.endsWith(".bpf.c"))) {
  const kind = file.slice(0, -".bpf.c".length);
  const out = join(build, "bpf", `${kind}.o`);
  await $`clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${arch} -I${build} -I${join(root, "bpf")} -c ${join(root, "bpf", file)} -o ${out}`;
  // Keep BTF (CO-RE needs it), drop DWARF.
  await $`llvm-strip -g ${out}`;
  // The recorder enables a kind's programs by their name prefix (lib/probes.ts).
  const programs = (await $`llvm-nm --defined-only ${out}`.text())
    .split("\n")
    .filter((l) => / T /.test(l))
    .map((l) => l.split(" ").pop()!);
  const stray = programs.filter((p) => !p.startsWith(`${kind}_`));
  if (stray.length) throw new Error(`${file}: program ${stray[0]} must be named ${kind}_…`);
  kindObjects.push(out);
}
// The boundary's layout, generated from the same header compiled for the same target.
const layoutObject = join(build, "bpf", "layout.o");
await $`clang -g -O2 -target bpf -D__TARGET_ARCH_${arch} -I${build} -I${join(root, "bpf")} -c ${join(root, "bpf", "layout.c")} -o ${layoutObject}`;
const layoutFile = join(root, "lib", "events", "kinds", "kernel-layout.generated.ts");
const layout = await kernelLayoutSource(layoutObject);
if (!existsSync(layoutFile) || readFileSync(layoutFile, "utf8") !== layout) {
  writeFileSync(layoutFile, layout);
  console.log(`regenerated ${layoutFile} from bpf/esr.h: commit it with the header`);
}

const linked = join(build, "bpf", "esr.bpf.o");
await $`bpftool gen object ${linked} ${kindObjects}`;
console.log(`built ${linked} (${statSync(linked).size} bytes) from ${kindObjects.length} event kinds`);

for (const soname of ["libz.so.1", "libelf.so.1", "libbpf.so.1"]) {
  const candidates = [join(libDir, soname), join("/lib", libDir.replace(/^\/usr\/lib\//, ""), soname)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${soname} not found (apt-get install libbpf-dev libelf-dev zlib1g-dev)`);
  copyFileSync(realpathSync(found), join(build, "native", soname));
}

// A root audit tool must not pick up a .env or bunfig.toml from whatever directory it is run in;
// --smol: a smaller heap (peak RSS under an open storm 112 -> 104 MB, no loss at 200k events/s).
if (!process.argv.includes("--no-exe")) {
  mkdirSync(join(root, "dist"), { recursive: true });
  await $`${process.execPath} build --compile --minify --bytecode --sourcemap=none --no-compile-autoload-dotenv --no-compile-autoload-bunfig --compile-exec-argv=--smol ${join(root, "cli", "main.ts")} --outfile ${join(root, "dist", "esr")}`.quiet();
  console.log(`built dist/esr (${(statSync(join(root, "dist", "esr")).size / 1e6).toFixed(1)} MB)`);
}
