#!/usr/bin/env bun
/**
 * Soak: one long session under a fast exec loop (and, with --opens, an open loop), sampling the
 * recorder's memory. Prints a line per sample and a summary: execs/s, events written, lost, RSS at
 * the start and the end and its slope. test/faults.test.ts runs a 16 s version in CI.
 *   bun scripts/soak.ts [--minutes 120] [--every 30] [--events command,network] [--opens]
 * With --ls, the session is Teleport's lossy case instead, `while sleep .5; do ls; done` (command,
 * disk and network recorded), while the rest of the host runs an exec storm and an open storm;
 * test/load.test.ts runs a short version.
 *   bun scripts/soak.ts --ls [--minutes 30]
 * Run as root, after bun scripts/build.ts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { evade, rssKiB, startRecording } from "../test/support/adversary.ts";
import { replayEvents, tempDir } from "../test/support/harness.ts";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const minutes = Number(arg("minutes", "120"));
const every = Number(arg("every", "30"));
// Teleport's default set; with disk too, a fast exec loop writes ≈ 1.7 MB/s of compressed events.
const events = arg("events", "command,network");
const opens = process.argv.includes("--opens");
const seconds = Math.round(minutes * 60);

const bin = evade();
const dataDir = tempDir("esr-soak-");
const lsMode = process.argv.includes("--ls");
const script = lsMode
  ? `end=$((SECONDS + ${seconds})); while [ $SECONDS -lt $end ]; do sleep .5; ls / >/dev/null; done`
  : opens
    ? `${bin} openstorm ${seconds} /etc/hostname >/dev/null & ${bin} execstorm ${seconds} /bin/true; wait`
    : `${bin} execstorm ${seconds} /bin/true`;
const storms = lsMode
  ? [
      Bun.spawn([bin, "execstorm", String(seconds + 5), "/bin/true"], { stdout: "pipe" }),
      Bun.spawn([bin, "openstorm", String(seconds + 5), "/etc/hostname"], { stdout: "pipe" }),
    ]
  : [];
const rec = await startRecording([
  "--data-dir",
  dataDir,
  "--events",
  lsMode ? "command,disk,network" : events,
  "--",
  "bash",
  "-c",
  script,
]);
console.log(
  `soak: session ${rec.sid}, ${minutes} min, events ${events}${opens ? ", with an open loop" : ""}; data in ${dataDir}`,
);
console.log("elapsed_s  rss_mib  cpu_s");
const cpuSeconds = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
};
const samples: { t: number; kib: number }[] = [];
const t0 = performance.now();
const done = rec.proc.exited;
let finished = false;
done.then(() => (finished = true));
while (!finished) {
  await Promise.race([Bun.sleep(every * 1000), done]);
  const kib = rssKiB(rec.proc.pid);
  if (kib === undefined) break;
  const t = (performance.now() - t0) / 1000;
  samples.push({ t, kib });
  console.log(
    `${t.toFixed(0).padStart(9)}  ${(kib / 1024).toFixed(1).padStart(7)}  ${cpuSeconds(rec.proc.pid).toFixed(1).padStart(5)}`,
  );
}
const code = await done;
const stdout = await rec.stdout();
// Only session.start/end through replay; the (large) event files are counted streaming, by zcat.
const end = (await replayEvents(dataDir, rec.sid, ["--type", "session"])).find((e) => e.event === "session.end");
const sessions = join(dataDir, "log", readFileSync(join(dataDir, "host_uuid"), "utf8").trim(), "sessions", "default");
const written = readdirSync(sessions)
  .filter((f) => f.startsWith(rec.sid) && f.endsWith(".gz"))
  .reduce(
    (n, f) =>
      n +
      Number(
        Bun.spawnSync(["sh", "-c", `zcat '${join(sessions, f)}' | wc -l`])
          .stdout.toString()
          .trim(),
      ),
    0,
  );
const execs = Number(/execs (\d+)/.exec(stdout)?.[1] ?? NaN);
if (lsMode) {
  // Every command file: a new one starts wherever another kind's event came between.
  const cmds = Bun.spawnSync(["sh", "-c", `zcat '${join(sessions, rec.sid)}'-*.session.command-events.gz`])
    .stdout.toString()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const count = (path: string) => cmds.filter((e) => e.path === path).length;
  const stormText = await Promise.all(storms.map((p) => new Response(p.stdout).text()));
  console.log(
    `ls under storms: ${count("/usr/bin/ls")} ls and ${count("/usr/bin/sleep")} sleep recorded (they must be equal, give or take the last round); lost ${JSON.stringify(end?.lost_events)}; ` +
      `host storms: ${stormText.map((t) => t.trim()).join(", ")} in ${seconds + 5} s`,
  );
}
// Least-squares slope of RSS over the second half (after warm-up), in MiB per hour.
const tail = samples.slice(Math.floor(samples.length / 2));
const n = tail.length;
const mt = tail.reduce((s, x) => s + x.t, 0) / n;
const mk = tail.reduce((s, x) => s + x.kib, 0) / n;
const slope =
  tail.reduce((s, x) => s + (x.t - mt) * (x.kib - mk), 0) /
  Math.max(
    1e-9,
    tail.reduce((s, x) => s + (x.t - mt) ** 2, 0),
  );
console.log(
  `soak: exit ${code}; ${written} events written; execs ${execs} (${(execs / seconds).toFixed(0)}/s); lost ${JSON.stringify(end?.lost_events)}; ` +
    `RSS first ${((samples[0]?.kib ?? 0) / 1024).toFixed(1)} MiB, max ${(Math.max(...samples.map((s) => s.kib)) / 1024).toFixed(1)} MiB, last ${((samples[samples.length - 1]?.kib ?? 0) / 1024).toFixed(1)} MiB; ` +
    `slope over the second half ${((slope * 3600) / 1024).toFixed(2)} MiB/h`,
);
