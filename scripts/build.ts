#!/usr/bin/env bun
/**
 * Builds one executable per architecture, dist/esr-linux-x64 and dist/esr-linux-arm64 (dist/esr
 * is the build host's): compiles bpf/<kind>.bpf.c (CO-RE, clang) for each architecture's syscall
 * ABI and links them into one object, builds libbpf with libelf and zlib as one library needing
 * only glibc ≥ 2.17 (native/build.sh), and compiles the CLI with both embedded. One BPF object,
 * because libbpf parses the kernel's BTF once per object (≈ 15 ms).
 *   bun scripts/build.ts            everything
 *   bun scripts/build.ts --no-exe   only build/ for the host (what `bun test` needs)
 */
import { $ } from "bun";
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { kernelLayoutSource } from "./kernel-layout.ts";

const root = join(import.meta.dir, "..");
const build = join(root, "build");

interface Target {
  /** Bun's and Node's name, used in dist/esr-linux-<name>. */
  name: "x64" | "arm64";
  /** Debian's and libbpf's names for it. */
  deb: string;
  bpfArch: string;
  runtime: string;
}
const targets: Target[] = [
  { name: "x64", deb: "amd64", bpfArch: "x86", runtime: "@oven/bun-linux-x64" },
  { name: "arm64", deb: "arm64", bpfArch: "arm64", runtime: "@oven/bun-linux-aarch64" },
];
function hostTarget(): Target {
  const t = targets.find((t) => t.name === process.arch);
  if (!t) throw new Error(`esr builds on x64 or arm64 Linux, not ${process.arch}`);
  return t;
}
const host = hostTarget();

/**
 * The BTF of a raw kernel image (arm64's Image carries .BTF uncompressed): the first BTF header
 * (magic 0xeb9f, version 1, 24-byte header) whose sections lie inside the file.
 */
function btfOfImage(image: Uint8Array): Uint8Array {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  for (let i = 0; i + 24 <= image.length; i += 4) {
    if (view.getUint32(i, true) !== 0x0001eb9f || view.getUint32(i + 4, true) !== 24) continue;
    const end =
      i +
      24 +
      Math.max(
        view.getUint32(i + 8, true) + view.getUint32(i + 12, true),
        view.getUint32(i + 16, true) + view.getUint32(i + 20, true),
      );
    if (end <= image.length) return image.subarray(i, end);
  }
  throw new Error("no BTF in the kernel image");
}

/**
 * vmlinux.h only provides type definitions (CO-RE relocates field offsets to the running kernel),
 * but they are per architecture (struct pt_regs): the host's come from its own kernel, arm64's
 * from Debian's arm64 kernel image.
 */
async function vmlinuxHeader(t: Target, dir: string): Promise<string> {
  const header = join(dir, "vmlinux.h");
  if (existsSync(header)) return header;
  let btf = "/sys/kernel/btf/vmlinux";
  if (t !== host) {
    if (t.name !== "arm64") throw new Error(`cannot build for ${t.name} on ${host.name}`);
    const debs = (await $`bash ${join(root, "scripts", "debian-arm64.sh")}`.text()).trim();
    btf = join(dir, "vmlinux.btf");
    await Bun.write(btf, btfOfImage(new Uint8Array(await Bun.file(join(debs, "vmlinuz")).arrayBuffer())));
  }
  await $`bpftool btf dump file ${btf} format c > ${header}`;
  return header;
}

/** build/<name>/{bpf/esr.bpf.o,native/libesrbpf.so}: what the executable for t embeds. */
async function buildAssets(t: Target): Promise<string> {
  const dir = join(build, t.name);
  mkdirSync(join(dir, "bpf"), { recursive: true });
  await vmlinuxHeader(t, dir);
  const kindObjects: string[] = [];
  for (const file of readdirSync(join(root, "bpf")).filter((f) => f.endsWith(".bpf.c"))) {
    const kind = file.slice(0, -".bpf.c".length);
    const out = join(dir, "bpf", `${kind}.o`);
    await $`clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${t.bpfArch} -I${dir} -I${join(root, "bpf")} -c ${join(root, "bpf", file)} -o ${out}`;
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
  // The boundary's layout, generated from the same header compiled for the same target: the
  // host's is the one committed (build/bpf/layout.o, what its test reads), and every other
  // target's must be the same, since one decoder reads them all.
  const layoutObject = join(t === host ? join(build, "bpf") : join(dir, "bpf"), "layout.o");
  mkdirSync(join(build, "bpf"), { recursive: true });
  await $`clang -g -O2 -target bpf -D__TARGET_ARCH_${t.bpfArch} -I${dir} -I${join(root, "bpf")} -c ${join(root, "bpf", "layout.c")} -o ${layoutObject}`;
  const layoutFile = join(root, "lib", "events", "kinds", "kernel-layout.generated.ts");
  const layout = await kernelLayoutSource(layoutObject);
  if (!existsSync(layoutFile) || readFileSync(layoutFile, "utf8") !== layout) {
    if (t !== host) throw new Error(`bpf/esr.h compiles to another layout for ${t.name} than for ${host.name}`);
    writeFileSync(layoutFile, layout);
    console.log(`regenerated ${layoutFile} from bpf/esr.h: commit it with the header`);
  }

  const linked = join(dir, "bpf", "esr.bpf.o");
  await $`bpftool gen object ${linked} ${kindObjects}`;
  console.log(`built ${linked} (${statSync(linked).size} bytes) from ${kindObjects.length} event kinds`);
  await $`bash ${join(root, "native", "build.sh")} ${t.deb} ${join(dir, "native", "libesrbpf.so")}`;
  return dir;
}

/** Makes build/{bpf,native}, the paths lib/kernel/embedded.ts imports, t's assets. */
function stage(assets: string) {
  for (const [sub, file] of [
    ["bpf", "esr.bpf.o"],
    ["native", "libesrbpf.so"],
  ] as const) {
    mkdirSync(join(build, sub), { recursive: true });
    copyFileSync(join(assets, sub, file), join(build, sub, file));
  }
}

const exe = !process.argv.includes("--no-exe");
// The host's assets go last, so that build/ is the host's for `bun test` afterwards.
for (const t of exe ? [...targets.filter((t) => t !== host), host] : [host]) {
  stage(await buildAssets(t));
  if (!exe) break;
  // A root audit tool must not pick up a .env or bunfig.toml from whatever directory it is run in;
  // --smol: a smaller heap (peak RSS under an open storm 112 -> 104 MB, no loss at 200k events/s).
  const out = join(root, "dist", `esr-linux-${t.name}`);
  const runtime = join(root, "node_modules", t.runtime, "bin", "bun");
  if (!existsSync(runtime)) throw new Error(`${runtime} missing (bash scripts/setup.sh installs it)`);
  mkdirSync(join(root, "dist"), { recursive: true });
  await $`${process.execPath} build --compile --target=bun-linux-${t.name} --compile-executable-path=${runtime} --minify --bytecode --sourcemap=none --no-compile-autoload-dotenv --no-compile-autoload-bunfig --compile-exec-argv=--smol ${join(root, "cli", "main.ts")} --outfile ${out}`.quiet();
  console.log(`built dist/esr-linux-${t.name} (${(statSync(out).size / 1e6).toFixed(1)} MB)`);
  if (t === host) {
    rmSync(join(root, "dist", "esr"), { force: true });
    linkSync(out, join(root, "dist", "esr"));
  }
}
