/**
 * The executable is meant to be copied to hosts older than the one it was built on: it records
 * inside a Debian 11 root (glibc 2.31, older than the 2.33/2.34 that the build host's own libbpf
 * and dlopen need) on the host kernel, and what it embeds asks glibc for nothing newer than 2.17.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ESR, ROOT } from "../support/harness.ts";

/** The GLIBC_x.y versions a shared object's dynamic symbols name. */
function glibcVersions(so: string): string[] {
  const r = Bun.spawnSync(["readelf", "--dyn-syms", "-W", so]);
  if (r.exitCode !== 0) throw new Error(`readelf ${so}: ${r.stderr}`);
  return [
    ...new Set(
      r.stdout
        .toString()
        .match(/@GLIBC_[0-9.]+/g)
        ?.map((v) => v.slice(1)),
    ),
  ];
}

test.each(["x64", "arm64"])("the %s libbpf library imports no glibc symbol newer than 2.17", (arch) => {
  const so = join(ROOT, "build", arch, "native", "libesrbpf.so");
  expect(existsSync(so) ? so : `${so} missing: run bun scripts/build.ts`).toBe(so);
  const versions = glibcVersions(so);
  // The base version of glibc on the architecture: proof that readelf read the versions at all.
  expect(versions).toContain(arch === "x64" ? "GLIBC_2.2.5" : "GLIBC_2.17");
  const newer = versions.filter((v) => {
    const [major, minor] = v.slice("GLIBC_".length).split(".").map(Number);
    return major! > 2 || (major === 2 && minor! > 17);
  });
  expect(newer).toEqual([]);
});

// Long enough for a first debootstrap (≈ 1–4 min); later runs reuse the cached root.
test("records a session inside a Debian 11 root (glibc 2.31)", () => {
  const made = Bun.spawnSync(["bash", join(ROOT, "scripts", "bullseye-root.sh")], { stderr: "pipe" });
  expect(made.exitCode === 0 ? "" : `scripts/bullseye-root.sh failed: ${made.stderr}`).toBe("");
  const rootDir = made.stdout.toString().trim();
  // A private mount namespace: every mount below goes away with the script, however it ends.
  const script = `
    set -e
    R=$1
    mount --rbind /proc "$R/proc"; mount --rbind /sys "$R/sys"; mount --rbind /dev "$R/dev"
    mount -t tmpfs tmpfs "$R/tmp"
    touch "$R/tmp/esr"; mount --bind "$2" "$R/tmp/esr"
    chroot "$R" /usr/bin/ldd --version | head -1
    status=0
    chroot "$R" /tmp/esr record --data-dir /tmp/data --quiet -- sh -c '/bin/true; /no/such; exit 3' || status=$?
    echo "record exit $status"
    sid=$(chroot "$R" /tmp/esr ls --data-dir /tmp/data | awk 'NR == 2 { print $1 }')
    chroot "$R" /tmp/esr replay --data-dir /tmp/data "$sid"`;
  const r = Bun.spawnSync(["unshare", "--mount", "--propagation", "private", "bash", "-c", script, "sh", rootDir, ESR]);
  const out = r.stdout.toString();
  expect({ exit: r.exitCode, stderr: r.stderr.toString().replace(/.*\/no\/such: not found\n/, "") }).toEqual({
    exit: 0,
    stderr: "",
  });
  expect(out).toMatch(/GLIBC 2\.31/);
  expect(out).toContain("record exit 3");
  expect(out).toMatch(/exec +\/bin\/true .*= 0/);
  expect(out).toMatch(/exec +\/no\/such .*= -2 ENOENT/);
  expect(out).toMatch(/end +exit=3 lost=0 enhanced_recording=true/);
}, 600_000);
