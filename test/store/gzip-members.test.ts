import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { GzipMemberFile, gunzipMembers } from "../../lib/store/file/gzip-members.ts";
import { tempDir } from "../support/harness.ts";

/** n members of one line each; `bytes` are those members, without the empty member a new file starts with. */
function writeMembers(n: number): { path: string; bytes: Buffer } {
  const path = join(tempDir(), "f.gz");
  const file = new GzipMemberFile(path);
  const created = readFileSync(path).length;
  for (let i = 0; i < n; i++) {
    file.append(`{"n":${i}}\n`);
    file.flush();
  }
  file.close();
  return { path, bytes: readFileSync(path).subarray(created) };
}

describe("GzipMemberFile", () => {
  test("each flush is a complete gzip member that zcat reads", () => {
    const { path } = writeMembers(3);
    const out = Bun.spawnSync(["zcat", path]);
    expect(out.exitCode).toBe(0);
    expect(out.stdout.toString()).toBe('{"n":0}\n{"n":1}\n{"n":2}\n');
  });

  test("a new file is an empty gzip stream that zcat reads; nothing more is written until a flush, and an empty flush writes nothing", () => {
    const path = join(tempDir(), "f.gz");
    const file = new GzipMemberFile(path);
    const created = readFileSync(path).length;
    expect(created).toBeGreaterThan(0);
    expect(Bun.spawnSync(["zcat", path]).exitCode).toBe(0);
    expect(gunzipMembers(readFileSync(path))).toEqual({ text: "" });
    file.append("x\n");
    expect(readFileSync(path).length).toBe(created);
    file.flush();
    const size = readFileSync(path).length;
    file.flush();
    expect(readFileSync(path).length).toBe(size);
    file.close();
  });

  test("the file appears whole (written aside, linked into place); opened again it is appended to, not restarted", () => {
    const dir = tempDir();
    const path = join(dir, "f.gz");
    new GzipMemberFile(path).close();
    expect(readdirSync(dir)).toEqual(["f.gz"]);
    const again = new GzipMemberFile(path);
    again.appendLine("second");
    again.close();
    expect(gunzipMembers(readFileSync(path))).toEqual({ text: "second\n" });
    expect(readdirSync(dir)).toEqual(["f.gz"]);
  });

  test("files are created 0600", () => {
    const { path } = writeMembers(1);
    expect(Bun.spawnSync(["stat", "-c", "%a", path]).stdout.toString().trim()).toBe("600");
  });
});

describe("gunzipMembers", () => {
  test("reads every member", () => {
    expect(gunzipMembers(writeMembers(5).bytes)).toEqual({ text: [0, 1, 2, 3, 4].map((n) => `{"n":${n}}\n`).join("") });
  });

  test("a truncated last member: the members before it, and where it broke", () => {
    const { bytes } = writeMembers(4);
    const r = gunzipMembers(bytes.subarray(0, bytes.length - 3));
    expect(r.text).toBe('{"n":0}\n{"n":1}\n{"n":2}\n');
    expect(r.error).toMatch(/damaged at byte \d+ \(gzip member 4\): unexpected end of file/);
  });

  test("a flipped bit is caught by the CRC, not passed off as data", () => {
    const { bytes } = writeMembers(3);
    const memberSize = bytes.length / 3;
    const damaged = Buffer.from(bytes);
    damaged[memberSize + memberSize - 6]! ^= 0x01; // inside member 2's CRC32
    const r = gunzipMembers(damaged);
    expect(r.text).toBe('{"n":0}\n');
    expect(r.error).toMatch(/gzip member 2/);
  });

  test("not gzip at all", () => {
    expect(gunzipMembers(Buffer.from("plain text")).error).toMatch(/damaged at byte 0/);
  });

  test("an empty file is an empty stream", () => {
    expect(gunzipMembers(new Uint8Array())).toEqual({ text: "" });
  });
});

test("counting the lines of a large file holds one member at a time, not the file (an esr ls of large sessions was killed at 24 GB)", () => {
  // 512 members of 256 KiB: 128 MiB of lines in ≈ 0.5 MiB of gzip. Peak RSS of a process of its own.
  const script = `
    const { countLines } = await import(${JSON.stringify(join(import.meta.dir, "../../lib/store/file/gzip-members.ts"))});
    const member = Bun.gzipSync(Buffer.from(("x".repeat(1023) + "\\n").repeat(256)), { level: 2 });
    const file = Buffer.concat(Array.from({ length: 512 }, () => member));
    const before = process.resourceUsage().maxRSS;
    const { lines, error } = countLines(file);
    console.log(JSON.stringify({ lines, error, grewKiB: process.resourceUsage().maxRSS - before }));
  `;
  const r = Bun.spawnSync([process.execPath, "-e", script], { stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  const out = JSON.parse(r.stdout.toString());
  expect(out).toMatchObject({ lines: 512 * 256 });
  expect(out.error).toBeUndefined();
  // Less than the file: it was never held whole (before the fix: ≈ 245 MiB; now ≈ 52, the members' garbage).
  expect(out.grewKiB).toBeLessThan(96 * 1024);
});

test("fuzz: random damage never throws and never invents events", () => {
  const { bytes } = writeMembers(20);
  const full = gunzipMembers(bytes).text;
  let seed = 42;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  for (let i = 0; i < 500; i++) {
    const damaged = Buffer.from(bytes.subarray(0, rand(bytes.length + 1)));
    for (let k = rand(4); k > 0 && damaged.length; k--) damaged[rand(damaged.length)]! ^= 1 << rand(8);
    const r = gunzipMembers(damaged);
    expect(full.startsWith(r.text)).toBe(true);
  }
});
