/**
 * The per-CPU scratch slots where exec and open events are built (bpf/esr.h claim_slot): many
 * processes of one session exec'ing and opening at once, on every CPU, under the kernel's own
 * preemption model. Every event must carry one process's data: its header (pid, comm) and its body
 * (path, argv) from the same exec or open. A slot shared by two runs would mix them.
 *
 * This cannot be made to fail on demand: the window (between a run's test of the slot and its claim,
 * with the old test-then-set) is a few instructions, and only a preemption inside it shows. What it
 * checks holds whichever way the claim is made, so it guards the claim against regressions that mix.
 */
import { expect, test } from "bun:test";
import { ofType, record, replayEvents } from "../support/harness.ts";

const WORKERS = 8;
const ROUNDS = 150;

test("concurrent execs and opens of one session never mix two processes' data", async () => {
  // Worker i runs as w<i> (a link to bash: its comm), opens o<i>-<k> and execs t<i> (a link to
  // true: its comm) with the argument w<i>-<k>.
  const script = `d=$(mktemp -d)
for i in $(seq ${WORKERS}); do ln -s /bin/true $d/t$i; ln -s /bin/bash $d/w$i; done
for i in $(seq ${WORKERS}); do
  $d/w$i -c "for k in \\$(seq ${ROUNDS}); do : 2>/dev/null < $d/o$i-\\$k; $d/t$i w$i-\\$k; done" &
done
wait`;
  const rec = await record(["bash", "-c", script], { flags: ["--events", "command,disk"] });
  expect({ exitCode: rec.exitCode, stderr: rec.stderr.replace(/^esr: session .*\n/, "") }).toEqual({
    exitCode: 0,
    stderr: "",
  });
  const events = await replayEvents(rec.dataDir, rec.sid);
  const execs = ofType(events, "session.command");
  const workerPid = new Map<string, number>();
  for (const e of execs) {
    const worker = /\/(w\d+)$/.exec(e.path)?.[1];
    if (worker) workerPid.set(worker, e.pid);
  }
  expect(workerPid.size).toBe(WORKERS);

  const mixed: unknown[] = [];
  let execsSeen = 0;
  for (const e of execs) {
    const i = /\/t(\d+)$/.exec(e.path)?.[1];
    if (!i) continue;
    execsSeen++;
    const ok =
      e.program === `t${i}` &&
      e.argv.length === 1 &&
      e.argv[0]!.startsWith(`w${i}-`) &&
      e.ppid === workerPid.get(`w${i}`);
    if (!ok) mixed.push(e);
  }
  let opensSeen = 0;
  for (const e of ofType(events, "session.disk")) {
    const i = /\/o(\d+)-\d+$/.exec(e.path)?.[1];
    if (!i) continue;
    opensSeen++;
    if (e.program !== `w${i}` || e.pid !== workerPid.get(`w${i}`) || e.return_code !== -2) mixed.push(e);
  }
  expect(mixed).toEqual([]);
  // What a claim refused is counted as lost, never silently gone: seen and lost add up.
  const lost = ofType(events, "session.end")[0]!.lost_events;
  expect({
    execs: execsSeen + lost.command >= WORKERS * ROUNDS,
    opens: opensSeen + lost.disk >= WORKERS * ROUNDS,
  }).toEqual({
    execs: true,
    opens: true,
  });
  expect(execsSeen).toBeGreaterThan(WORKERS * ROUNDS * 0.9);
}, 120_000);
