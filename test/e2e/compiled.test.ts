/**
 * dist/esr is all a host needs: it records with the host's libbpf, libelf and libz hidden, and
 * with nothing on PATH (no bun, node, clang).
 */
import { expect, test } from "bun:test";
import { existsSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { ESR, tempDir } from "../support/harness.ts";

test("records on a host without libbpf, libelf, libz, and with an empty PATH", () => {
  const libs = ["libbpf.so.1", "libelf.so.1", "libz.so.1"]
    .map((l) => `/usr/lib/x86_64-linux-gnu/${l}`)
    .filter(existsSync)
    .map((l) => realpathSync(l));
  expect(libs.length).toBe(3);
  const dataDir = tempDir();
  // In a private mount namespace each library is covered by an empty file, for this script only.
  const script = [
    ...libs.map((l) => `mount --bind /dev/null ${l}`),
    ...libs.map((l) => `test ! -s ${l}`),
    `env -i PATH=/nonexistent ${ESR} record --data-dir ${dataDir} --events command -- /bin/echo compiled-ok`,
    `env -i PATH=/nonexistent ${ESR} ls --data-dir ${dataDir}`,
  ].join(" && ");
  const r = Bun.spawnSync(["unshare", "--mount", "--propagation", "private", "bash", "-c", script]);
  expect({ exit: r.exitCode, stderr: r.stderr.toString().replace(/esr: session \S+\n/, "") }).toEqual({
    exit: 0,
    stderr: "",
  });
  expect(r.stdout.toString()).toContain("compiled-ok");
  expect(r.stdout.toString()).toMatch(/root +1 +0 +0 +0 +0 +whole +\/bin\/echo compiled-ok/);
});

test("a .env or bunfig.toml in the directory esr runs from is not loaded", () => {
  const dir = tempDir();
  Bun.write(join(dir, ".env"), "ESR_PLANTED=from-dotenv\n");
  Bun.write(join(dir, "bunfig.toml"), 'preload = ["./evil.ts"]\n');
  Bun.write(join(dir, "evil.ts"), 'console.log("PRELOADED");\n');
  const r = Bun.spawnSync(
    [
      ESR,
      "record",
      "-q",
      "--data-dir",
      tempDir(),
      "--events",
      "command",
      "--",
      "bash",
      "-c",
      "echo planted=${ESR_PLANTED:-no}",
    ],
    { cwd: dir },
  );
  expect(r.exitCode).toBe(0);
  expect(r.stdout.toString()).toBe("planted=no\n");
});
