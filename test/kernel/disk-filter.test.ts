/**
 * esr.disk_filter (bpf/disk.bpf.c open_ignored): read-only opens of files the kernel resolved under
 * an ignored prefix are counted in session.end's filtered_events and not recorded; everything a
 * session could use to hide an open that way (writes, a requested path that names the prefix, `..`,
 * symlinks, a name that only starts like the prefix, failures, openat2) is recorded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import type { SessionDiskEvent } from "../../lib/events/kinds/index.ts";
import { ofType, record, replayEvents, runEsr, tempDir } from "../support/harness.ts";

const O_RDONLY = 0;
const O_RDWR = 0o2;
const O_TRUNC = 0o1000;
const ENOENT = 2;

/** The workload of issue #14: one interesting open, the rest the loader's and the locale's. */
const CAT_HOSTNAME = ["/bin/cat", "/etc/hostname"];

interface Session {
  events: AuditEvent[];
  disk: SessionDiskEvent[];
  dataDir: string;
  sid: string;
}

async function recorded(command: string[], config?: string): Promise<Session> {
  const flags = ["--events", "command,disk", ...(config ? ["--config", config] : [])];
  const rec = await record(command, { flags, env: { LANG: "C.UTF-8" } });
  if (rec.exitCode !== 0) throw new Error(`session failed (${rec.exitCode}): ${rec.stderr}`);
  const events = await replayEvents(rec.dataDir, rec.sid);
  return { events, disk: ofType(events, "session.disk"), dataDir: rec.dataDir, sid: rec.sid };
}

const end = (s: Session) => ofType(s.events, "session.end")[0]!;
const under = (prefix: string) => (e: SessionDiskEvent) => String(e.path).startsWith(prefix);

describe("esr.disk_filter", () => {
  let dir: string;
  let config: string;
  let plain: Session;
  let filtered: Session;
  let attacks: Session;

  beforeAll(async () => {
    if (process.arch !== "x64") throw new Error(`openat2 is called by its x86-64 number; this host is ${process.arch}`);
    dir = realpathSync(tempDir("esr-disk-filter-"));
    for (const d of ["lib", "lib64x", "xlib", "usr/lib", "exact"]) mkdirSync(join(dir, d), { recursive: true });
    for (const f of ["lib/r", "lib/rw", "lib/trunc", "lib64x/f", "xlib/f", "usr/lib/f", "exact/inner", "secret"])
      writeFileSync(join(dir, f), "content\n");
    symlinkSync(join(dir, "secret"), join(dir, "lib", "link"));
    config = join(dir, "esr.yaml");
    writeFileSync(
      config,
      [
        "esr:",
        "  disk_filter:",
        "    ignore_path_prefixes:",
        "      - /usr/lib/",
        "      - /etc/ld.so.cache",
        `      - ${dir}/lib/`,
        `      - ${dir}/exact`,
        "",
      ].join("\n"),
    );
    const perl = (open: string) => `perl -e '${open}'`;
    const script = [
      `cd ${dir}`,
      `cat lib/r >/dev/null`, // filtered
      `exec 3<${dir}/exact; exec 3<&-`, // the path itself: filtered
      `echo x >> lib/w`, // O_WRONLY|O_CREAT|O_APPEND
      `exec 4<>lib/rw; exec 4<&-`, // O_RDWR
      perl(`sysopen(F, "lib/trunc", ${O_RDONLY | O_TRUNC}) or die "trunc: $!"`), // read-only flags that truncate
      `cat /usr/lib/../..${dir}/secret >/dev/null`, // names the prefix, resolves elsewhere
      `cat lib/link >/dev/null`, // a symlink in the prefix to a file outside
      `cat ${dir}/usr/lib/f >/dev/null`, // "/usr/lib/" inside a path that is not under it
      `cat lib64x/f xlib/f exact/inner >/dev/null`, // start like a prefix, are not under it
      `cat lib/missing /usr/lib/esr-missing 2>/dev/null`, // failed: no kernel path
      perl(`my ($f, $h) = ("lib/r", pack("QQQ", 0, 0, 0)); syscall(437, -100, $f, $h, 24) >= 0 or die "openat2: $!"`), // openat2 (syscall passes writable strings only)
      // another thread shares the fd table: it could swap the fd for a filtered file before the exit hook
      perl(
        `use threads; my $t = threads->create(sub { sleep 1 }); open(my $f, "<", "lib/r") or die "open: $!"; $t->join`,
      ),
      "true",
    ].join("\n");
    plain = await recorded(CAT_HOSTNAME);
    filtered = await recorded(CAT_HOSTNAME, config);
    attacks = await recorded(["bash", "-c", script], config);
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("off by default: every open recorded, no filtered_events, session.start as Teleport's", () => {
    expect(plain.disk.filter(under("/usr/lib/")).length).toBeGreaterThan(0);
    expect(end(plain).filtered_events).toBeUndefined();
    expect(ofType(plain.events, "session.start")[0]!.ignored_path_prefixes).toBeUndefined();
  });

  test("cat /etc/hostname: the file recorded, the loader's opens filtered, counted exactly", () => {
    const paths = filtered.disk.map((e) => e.path);
    expect(paths).toContain("/etc/hostname");
    const opened = filtered.disk.filter((e) => e.return_code >= 0);
    expect(opened.filter(under("/usr/lib/"))).toEqual([]);
    expect(opened.map((e) => e.path)).not.toContain("/etc/ld.so.cache");
    // A failed open has no kernel path: what it asked for under /usr/lib/ is still recorded.
    const failed = (s: Session) => s.disk.filter((e) => e.return_code < 0).map((e) => e.path);
    expect(failed(filtered)).toEqual(failed(plain));
    expect(failed(filtered).some((p) => String(p).startsWith("/usr/lib/"))).toBe(true);
    const counts = end(filtered).filtered_events!;
    expect(counts.disk).toBeGreaterThan(0);
    expect({ command: counts.command, network: counts.network }).toEqual({ command: 0, network: 0 });
    // The same command unfiltered: what was left out is exactly what the filter counted.
    expect(filtered.disk.length + counts.disk).toBe(plain.disk.length);
    const left = plain.disk.filter((e) => !filtered.disk.some((f) => f.path === e.path && f.flags === e.flags));
    expect(left.length).toBe(counts.disk);
    expect(left.every((e) => e.flags === 0 || e.flags === 0o2000000)).toBe(true); // O_RDONLY (|O_CLOEXEC)
    expect(left.every((e) => String(e.path).startsWith("/usr/lib/") || e.path === "/etc/ld.so.cache")).toBe(true);
  });

  test("filtered is never lost, and the session says what it did not record", () => {
    expect(end(filtered).lost_events).toEqual({ command: 0, disk: 0, network: 0 });
    expect(ofType(filtered.events, "session.start")[0]!.ignored_path_prefixes).toEqual([
      "/usr/lib/",
      "/etc/ld.so.cache",
      `${dir}/lib/`,
      `${dir}/exact`,
    ]);
  });

  test("esr replay and esr ls show filtered beside lost, never in it", async () => {
    const text = await runEsr(["replay", "--data-dir", filtered.dataDir, filtered.sid]);
    const disk = end(filtered).filtered_events!.disk;
    expect(text.stdout).toContain(`lost=0 filtered=disk=${disk}`);
    const ls = await runEsr(["ls", "--data-dir", filtered.dataDir]);
    const [header, row] = ls.stdout.split("\n");
    const column = (line: string, name: string) => line.split(/\s{2,}/)[header!.split(/\s{2,}/).indexOf(name)];
    expect([column(row!, "LOST"), column(row!, "FILTERED")]).toEqual(["0", String(disk)]);
    const json = JSON.parse((await runEsr(["ls", "--json", "--data-dir", filtered.dataDir])).stdout.split("\n")[0]!);
    expect(json.filtered.disk).toBe(disk);
    expect(json.lost.disk).toBe(0);
  });

  const opensOf = (path: string) => attacks.disk.filter((e) => e.path === path);

  test("a read-only open under the prefix is filtered; the prefix itself only with no trailing /", () => {
    expect(opensOf(join(dir, "lib", "r")).filter((e) => e.program !== "perl")).toEqual([]); // cat's
    expect(opensOf(join(dir, "exact"))).toEqual([]);
    expect(opensOf(join(dir, "exact", "inner")).length).toBe(1);
  });

  test("opens for writing are recorded: append, read-write, read-only with O_TRUNC", () => {
    expect(opensOf(join(dir, "lib", "w")).length).toBe(1);
    expect(opensOf(join(dir, "lib", "rw")).map((e) => e.flags & 3)).toEqual([O_RDWR]);
    expect(opensOf(join(dir, "lib", "trunc")).map((e) => e.flags & (3 | O_TRUNC))).toEqual([O_TRUNC]);
    expect(readFileSync(join(dir, "lib", "trunc"), "utf8")).toBe(""); // it did write
  });

  test("the kernel's path decides: .. out of the prefix, a symlink out of it, the prefix's name elsewhere", () => {
    const secret = opensOf(join(dir, "secret"));
    expect(secret.map((e) => e.requested_path).sort()).toEqual([`/usr/lib/../..${dir}/secret`, "lib/link"].sort());
    expect(opensOf(join(dir, "usr", "lib", "f")).length).toBe(1);
  });

  test("a prefix ends at a component boundary: lib64x/ and xlib/ are not lib/", () => {
    expect(opensOf(join(dir, "lib64x", "f")).length).toBe(1);
    expect(opensOf(join(dir, "xlib", "f")).length).toBe(1);
  });

  test("failed opens under a prefix are recorded (there is no kernel path to match)", () => {
    const failed = attacks.disk.filter((e) => e.return_code === -ENOENT).map((e) => e.path);
    expect(failed).toContain("lib/missing");
    expect(failed).toContain("/usr/lib/esr-missing");
  });

  test("openat2 is never filtered (its flags are in the caller's memory), nor an open by a threaded process", () => {
    const openat2Flags = 0; // pack("QQQ", 0, …): O_RDONLY, as passed
    const perlOpens = opensOf(join(dir, "lib", "r")).map((e) => [e.program, e.flags & ~0o2000000]);
    expect(perlOpens).toEqual([
      ["perl", openat2Flags],
      ["perl", 0],
    ]);
  });

  test("and none of it lost", () => {
    expect(end(attacks).lost_events).toEqual({ command: 0, disk: 0, network: 0 });
    expect(end(attacks).filtered_events!.disk).toBeGreaterThan(0);
  });
});
