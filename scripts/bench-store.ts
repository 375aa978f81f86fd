#!/usr/bin/env bun
/**
 * The fleet store's benchmark (not CI): N simulated hosts, each with its own data dir written by
 * esr's own SessionWriter, shipped concurrently by esr's Shipper (batch-and-disconnect, one
 * connection per host while it ships) into one PostgreSQL started here. Prints sustained events/s
 * ingested, lag (row creation_time − event time) p50/p99, the most server connections seen, table
 * size per million events, and search latency once the table is grown with bulk rows: `esr search`'s
 * (the store's query) and the web UI's audit log (`esr serve --from`, the real dist/esr, over HTTP).
 *
 *   bun scripts/bench-store.ts [--hosts 100] [--seconds 30] [--rate 200] [--bulk 2000000]
 *
 * --rate is events/s per host. The defaults fit this 2-core VM in about two minutes; say which
 * scale you ran when quoting the figures.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { SQL } from "bun";
import type { AuditEvent } from "../lib/events/audit-events.ts";
import { defaultConfig } from "../lib/config/config.ts";
import { FileEventStore } from "../lib/store/file/file-store.ts";
import { connect } from "../lib/store/postgres/connection.ts";
import { Shipper } from "../lib/store/postgres/shipper.ts";
import { PostgresEventSource } from "../lib/store/postgres/source.ts";
import { TestPostgres } from "../test/support/postgres.ts";
import { tempDir } from "../test/support/harness.ts";
import { startServeOf } from "../test/support/web-server.ts";

const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "100" },
    seconds: { type: "string", default: "30" },
    rate: { type: "string", default: "200" },
    bulk: { type: "string", default: "2000000" },
  },
});
const HOSTS = Number(values.hosts);
const SECONDS = Number(values.seconds);
const RATE = Number(values.rate);
const BULK = Number(values.bulk);

const pg = new TestPostgres();
await pg.init();
const uri = pg.uri("host1");
const admin = pg.admin("esr_audit");
console.log(`PostgreSQL on 127.0.0.1:${pg.port}; ${HOSTS} hosts × ${RATE} events/s for ${SECONDS} s`);

function commandEvent(serverId: string, host: number, sid: string, ei: number): AuditEvent {
  return {
    ei,
    event: "session.command",
    code: "T4000I",
    uid: crypto.randomUUID(),
    time: new Date().toISOString(),
    sid,
    user: `user${host % 17}`,
    login: "deploy",
    namespace: "default",
    server_id: serverId,
    server_hostname: `host-${host}`,
    cluster_name: "bench",
    pid: 1000 + ei,
    cgroup_id: 4242,
    program: ei % 10 === 0 ? "curl" : "bash",
    ppid: 999,
    path: ei % 10 === 0 ? "/usr/bin/curl" : "/usr/bin/ls",
    argv: ei % 10 === 0 ? ["-s", `https://example.com/${ei}`] : ["-la", `/srv/app/${ei % 100}`],
    return_code: 0,
  } as unknown as AuditEvent;
}

let maxConnections = 0;
const sampler = setInterval(async () => {
  const [row] = await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'host1'`;
  maxConnections = Math.max(maxConnections, row.n);
}, 100);

const started = performance.now();
const deadline = started + SECONDS * 1000;
let written = 0;
await Promise.all(
  Array.from({ length: HOSTS }, async (_, host) => {
    const dataDir = tempDir("esr-bench-host-");
    const store = FileEventStore.open(dataDir, defaultConfig().integrity);
    const sink = store.openSession(crypto.randomUUID());
    const shipper = new Shipper(dataDir, { uri, events: true, recordings: false });
    // Spread the hosts' ticks over the second, as a fleet's would be.
    await Bun.sleep(Math.random() * 1000);
    while (performance.now() < deadline) {
      for (let i = 0; i < RATE; i++) sink.write(commandEvent(store.serverId, host, sink.sid, sink.index()));
      sink.flush();
      written += RATE;
      const sql: SQL = connect(uri);
      try {
        await shipper.shipAll(sql);
      } finally {
        await sql.close();
      }
      await Bun.sleep(1000);
    }
    sink.close();
  }),
);
const elapsed = (performance.now() - started) / 1000;
clearInterval(sampler);

const [ingest] = await admin`
  SELECT count(*)::int AS n,
         extract(epoch FROM max(creation_time) - min(creation_time))::float AS span,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM creation_time - event_time)) AS p50,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM creation_time - event_time)) AS p99
  FROM events`;
console.log(
  `ingested ${ingest.n} of ${written} events in ${elapsed.toFixed(1)} s: ${Math.round(ingest.n / ingest.span)} events/s sustained`,
);
console.log(
  `lag (event written → row created): p50 ${(ingest.p50 * 1000).toFixed(0)} ms, p99 ${(ingest.p99 * 1000).toFixed(0)} ms (the hosts ship right after writing: add about half of esr ship --interval for a real host)`,
);
console.log(`server connections of the hosts' role: at most ${maxConnections} at once (of ${HOSTS} hosts)`);

if (BULK > 0) {
  const t0 = performance.now();
  // Rows shaped like the shipped ones, spread over 30 days, made by the server itself.
  await admin.unsafe(`
    INSERT INTO events (event_time, event_id, event_type, session_id, event_data)
    SELECT t, gen_random_uuid(), 'session.command', s, jsonb_build_object(
      'event', 'session.command', 'code', 'T4000I', 'ei', g, 'time', to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'sid', s, 'user', 'user' || (g % 500), 'login', 'deploy', 'server_hostname', 'host-' || (g % 5000),
      'program', CASE WHEN g % 1000 = 0 THEN 'curl' ELSE 'bash' END,
      'path', CASE WHEN g % 1000 = 0 THEN '/usr/bin/curl' ELSE '/usr/bin/ls' END,
      'argv', jsonb_build_array('-la', '/srv/app/' || (g % 100000)), 'pid', g % 32768, 'return_code', 0)
    FROM (SELECT g, now() - (g % 2592000) * interval '1 second' AS t,
                 ('00000000-0000-4000-8000-' || lpad(to_hex(g / 2000), 12, '0'))::uuid AS s
          FROM generate_series(1, ${BULK}) g) x`);
  await admin`ANALYZE events`;
  console.log(`bulk: ${BULK} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const [size] = await admin`
  SELECT sum(pg_total_relation_size(c.oid))::float AS bytes, (SELECT count(*) FROM events)::float AS rows
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass`;
console.log(
  `size: ${(size.bytes / 2 ** 20).toFixed(0)} MiB for ${size.rows} events = ${(((size.bytes / size.rows) * 1e6) / 2 ** 30).toFixed(2)} GiB per million (table + indexes)`,
);

const reader = new PostgresEventSource(pg.uri("auditor"));
const searches: [string, Parameters<PostgresEventSource["search"]>[0]][] = [
  ["newest 100", {}],
  ["one user, last 7 days", { user: "user42", since: new Date(Date.now() - 7 * 86_400_000).toISOString() }],
  ["one host", { host: "host-1234" }],
  ["program curl", { program: "curl" }],
  ["text 'app/4242'", { text: "app/4242" }],
  ["one session", { sid: "00000000-0000-4000-8000-000000000010" }],
];
for (const [name, query] of searches) {
  const times: number[] = [];
  let n = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    n = (await reader.search(query)).events.length;
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(`search ${name}: median ${times[2]!.toFixed(1)} ms (${n} events)`);
}
await reader.close();

/** Median of five wall times of `run`, in ms, with what the last run returned. */
async function median<T>(run: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const times: number[] = [];
  let result!: T;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    result = await run();
    times.push(performance.now() - t);
  }
  return { ms: times.sort((a, b) => a - b)[2]!, result };
}

const web = await startServeOf(["--from", pg.uri("auditor")]);
const weekAgo = new Date(Date.now() - 7 * 86_400_000).toISOString().slice(0, 19);
const dayAgo = new Date(Date.now() - 86_400_000).toISOString().slice(0, 19);
const pages: [string, string][] = [
  ["newest 100", ""],
  ["type command", "type=command"],
  ["one user, last 7 days", `user=user42&from=${weekAgo}`],
  ["one host", "host=host-1234"],
  ["program curl, last day", `program=curl&from=${dayAgo}`],
  ["text 'app/4242'", "q=app/4242"],
  ["one session", "sid=00000000-0000-4000-8000-000000000010"],
  ["one session, type command, text", "sid=00000000-0000-4000-8000-000000000010&type=command&q=srv"],
];
const [{ n: total }] = await admin`SELECT count(*)::int AS n FROM events`;
console.log(`web audit log (esr serve --from, GET /api/search, 100 a page) over ${total} events:`);
for (const [name, query] of pages) {
  const { ms, result } = await median(async () => {
    const res = await fetch(`${web.url}/api/search?${query}`, { headers: { Authorization: `Bearer ${web.token}` } });
    if (!res.ok) throw new Error(`GET /api/search?${query}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { events: unknown[]; next?: string };
  });
  console.log(`  ${name}: median ${ms.toFixed(1)} ms (${result.events.length} events${result.next ? ", more" : ""})`);
}
await web.stop();
await admin.close();
await pg.destroy();
console.log(`(data dirs and the cluster are under ${join(pg.dir, "..")})`);
