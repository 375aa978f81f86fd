#!/usr/bin/env bun
/**
 * The cost of tamper evidence on the recorder's hot path (README "Tamper-evident recordings"): the
 * same open-storm-shaped events written through SessionWriter with and without the session's hash
 * chain and signed checkpoints, rounds alternating, flushing every 0.5 s of events as the recorder
 * does. Prints events/s and the RSS growth of each side (medians). Numbers only.
 *
 *   bun scripts/bench-chain.ts [--events 300000] [--rounds 5]
 */
import { parseArgs } from "node:util";
import type { AuditEvent } from "../lib/events/audit-events.ts";
import { defaultConfig } from "../lib/config/config.ts";
import { AuditLog } from "../lib/store/file/audit-log.ts";
import { SessionWriter } from "../lib/store/file/session-writer.ts";
import { SessionChain } from "../lib/store/integrity/chain.ts";
import { HostKey } from "../lib/store/integrity/host-key.ts";
import { tempDir } from "../test/support/harness.ts";

const { values } = parseArgs({
  options: { events: { type: "string", default: "300000" }, rounds: { type: "string", default: "5" } },
});
const EVENTS = Number(values.events);
const ROUNDS = Number(values.rounds);
/** Events per flush: the consumer's rate of about 100k/s, flushed every 0.5 s. */
const PER_FLUSH = 50_000;

function diskEvent(sid: string, ei: number): AuditEvent {
  return {
    ei,
    event: "session.disk",
    code: "T4001I",
    uid: crypto.randomUUID(),
    time: new Date().toISOString(),
    sid,
    user: "root",
    login: "root",
    namespace: "default",
    server_id: "bench",
    server_hostname: "bench",
    cluster_name: "bench",
    pid: 4242,
    cgroup_id: 63,
    program: "workload",
    path: `/srv/app/file-${ei % 100}`,
    flags: 0,
    return_code: 3,
  } as unknown as AuditEvent;
}

function run(chained: boolean): { perSecond: number; rssMiB: number } {
  const dataDir = tempDir("esr-bench-chain-");
  const log = AuditLog.open(dataDir);
  const sid = crypto.randomUUID();
  const integrity = defaultConfig().integrity;
  const chain = chained
    ? new SessionChain(HostKey.open(dataDir, log.serverId, integrity.epochMs), sid, log.sessionsDir, integrity)
    : undefined;
  const writer = new SessionWriter(log, sid, chain);
  Bun.gc(true);
  const rss = process.memoryUsage.rss();
  const start = Bun.nanoseconds();
  for (let ei = 0; ei < EVENTS; ei++) {
    writer.write(diskEvent(sid, writer.index()));
    if (ei % PER_FLUSH === PER_FLUSH - 1) writer.flush();
  }
  writer.close();
  const seconds = (Bun.nanoseconds() - start) / 1e9;
  return { perSecond: EVENTS / seconds, rssMiB: (process.memoryUsage.rss() - rss) / 2 ** 20 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const sides = { plain: [] as ReturnType<typeof run>[], chained: [] as ReturnType<typeof run>[] };
for (let r = 0; r < ROUNDS; r++)
  for (const side of r % 2 ? (["chained", "plain"] as const) : (["plain", "chained"] as const))
    sides[side].push(run(side === "chained"));
const plain = median(sides.plain.map((s) => s.perSecond));
const chained = median(sides.chained.map((s) => s.perSecond));
console.log(`${EVENTS} disk events per run, ${ROUNDS} rounds, medians`);
console.log(
  `without the chain: ${Math.round(plain)} events/s, RSS +${median(sides.plain.map((s) => s.rssMiB)).toFixed(1)} MiB`,
);
console.log(
  `with the chain:    ${Math.round(chained)} events/s, RSS +${median(sides.chained.map((s) => s.rssMiB)).toFixed(1)} MiB`,
);
console.log(`ratio (with / without): ${(chained / plain).toFixed(3)}`);
