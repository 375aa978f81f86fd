/** scripts/bench.ts, shortened: every row prints a number. Timing is never asserted here. */
import { expect, test } from "bun:test";
import { join } from "node:path";
import { ROOT } from "../support/harness.ts";

test("the benchmark runs every workload and prints every row", async () => {
  const proc = Bun.spawn({
    cmd: [process.execPath, join(ROOT, "scripts", "bench.ts"), "--quick"],
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect({ code, err }).toEqual({ code: 0, err: "" });
  for (const row of [
    /exec storm .*: esr \/ unrecorded +\d+\.\d{3}×/,
    /exec storm .*: auditd \/ unrecorded +\d+\.\d{3}×/,
    /open storm, disk events .*: esr \/ unrecorded +\d+\.\d{3}×/,
    /open storm, disk events .*: auditd \/ unrecorded +\d+\.\d{3}×/,
    /connect storm on loopback, network events: esr \/ unrecorded +\d+\.\d{3}×/,
    /mixed shell workload, all events: esr \/ unrecorded +\d+\.\d{3}×/,
    /outside any session, 1 sessions of one esr daemon recording: exec storm +\d+\.\d{3}×/,
    /kernel time per disk event \(disk_open\w* \d+ ns × \d+.*\) +\d+\.\d{2} µs/,
    /outside any session, empty programs at esr's hooks .*: the floor: open storm +\d+\.\d{3}×/,
    /outside any session, an idle esr daemon .*: open storm +\d+\.\d{3}×/,
    /outside any session, 1 esr record sessions through one esr daemon: open storm +\d+\.\d{3}×/,
    /outside any session, 1 standalone \(--no-daemon\) esr record sessions recording: open storm +\d+\.\d{3}×/,
    /esr --version, wall time .* +\d+\.\d ms/,
    /esr record -- true through a running esr daemon, wall time +\d+\.\d ms \(\d+\.\d\d× esr --version\)/,
    /esr record -- true, standalone \(--no-daemon\), wall time +\d+\.\d ms \(\d+\.\d\d× esr --version\)/,
    /recorder peak RSS .* +\d+\.\d MB/,
    /bytes per event on disk .* +\d+\.\d B/,
    /recorder CPU per event +\d+\.\d+ µs/,
    /open events at 50k\/s .* +\d+ written, \d+ lost/,
    /highest rate delivered without loss +\d+k events\/s/,
    /disk filter .*, cat \/etc\/hostname: disk events per run +\d+ → \d+ \(\+\d+ filtered\), \d+\.\d{3}×/,
    /disk filter .*, mixed shell workload: disk events per run +\d+ → \d+ \(\+\d+ filtered\), \d+\.\d{3}×/,
    /disk filter, mixed shell workload: filtered \/ unfiltered time +\d+\.\d{3}×/,
    /^\d+ targets met, \d+ missed$/m,
  ])
    expect(out).toMatch(row);
}, 180_000);
