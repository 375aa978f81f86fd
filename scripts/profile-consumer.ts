#!/usr/bin/env bun
/**
 * Where the recorder's CPU per disk event goes (README "Performance", the consumer): records the
 * kernel produced for an open storm in a real slice, then each stage of the consumer in a loop
 * over them, alone, and the whole path as the recorder runs it (decode, the event, its line, the
 * session writer with its hash chain, gzip and events.log). CPU time per event, median of rounds.
 * Numbers only.
 *
 *   bun scripts/profile-consumer.ts [--records 3000] [--loops 100] [--rounds 5]
 */
import { appendFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { diskKind, type KernelOpen } from "../lib/events/kinds/disk.ts";
import { ProgramSet } from "../lib/kernel/program-set.ts";
import { RingReader } from "../lib/kernel/ring-reader.ts";
import { CgroupSlice, prepareCgroupRoot, slicesParent } from "../lib/sys/cgroup-slice.ts";
import { FileEventStore } from "../lib/store/file/file-store.ts";
import { defaultConfig } from "../lib/config/config.ts";
import type { SessionIdentity } from "../lib/events/audit-events.ts";
import { tempDir } from "../test/support/harness.ts";

const { values } = parseArgs({
  options: {
    records: { type: "string", default: "3000" },
    loops: { type: "string", default: "100" },
    rounds: { type: "string", default: "5" },
  },
});
const RECORDS = Number(values.records);
const LOOPS = Number(values.loops);
const ROUNDS = Number(values.rounds);
const WORKLOAD = join(import.meta.dir, "..", "build", "bench-workload");

/** Raw ring records of an open storm (and the loader's opens before it), copied out of the ring. */
async function capture(): Promise<Uint8Array[]> {
  const root = { cgroupPath: "/cgroup2", rootPath: `/esr-profile-${process.pid}` };
  const level = prepareCgroupRoot(root);
  const programs = ProgramSet.load({
    kinds: ["disk"],
    sessionLevels: [level],
    bufferPages: { command: 8, disk: 1024, network: 8 },
  });
  const raw: Uint8Array[] = [];
  const reader = new RingReader(programs.ringFds.get("disk")!, (bytes) => raw.push(bytes.slice()));
  const slice = await CgroupSlice.create(root, "profile");
  try {
    programs.addSession(slice.id, ["disk"]);
    const proc = Bun.spawn([WORKLOAD, "open", String(RECORDS)], { cgroup: slice.path, stdout: "ignore" });
    await proc.exited;
    reader.drain(1 << 30);
  } finally {
    reader.close();
    programs.close();
    slice.remove();
    Bun.spawnSync(["rmdir", slicesParent(root)]);
  }
  return raw;
}

const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** ns of CPU per call of `body(i)`, over LOOPS passes of `n` calls. */
function perCall(n: number, body: (i: number) => void, setup?: () => void): number {
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    setup?.();
    Bun.gc(true);
    const t0 = cpuNs();
    for (let l = 0; l < LOOPS; l++) for (let i = 0; i < n; i++) body(i);
    samples.push((cpuNs() - t0) / (LOOPS * n));
  }
  return median(samples);
}

async function main() {
  const raw = await capture();
  const n = raw.length;
  const recs = raw.map((b) => diskKind.decode(b));
  const dataDir = tempDir("esr-profile-consumer-");
  const store = FileEventStore.open(dataDir, defaultConfig().integrity);
  const id: SessionIdentity = {
    sid: crypto.randomUUID(),
    user: "root",
    login: "root",
    serverId: store.serverId,
    serverHostname: "vm",
    clusterName: "vm",
  };
  const time = new Date();
  const events = recs.map((r, i) => diskKind.build(id, i, r, time));
  const lines = events.map((e) => JSON.stringify(e));
  const bytesPerLine = lines.reduce((s, l) => s + l.length + 1, 0) / n;
  const batch = Buffer.from(lines.slice(0, Math.round((256 << 10) / bytesPerLine)).join("\n") + "\n");
  const perBatch = batch.length / bytesPerLine;
  let sink: unknown;

  const rows: [string, number][] = [];
  const row = (name: string, ns: number) => {
    rows.push([name, ns]);
    console.log(`  ${name.padEnd(52)} ${(ns / 1000).toFixed(3)} µs`);
  };
  console.log(`${n} records of an open storm, ${bytesPerLine.toFixed(0)} B per line; CPU per event:`);
  row(
    "decode (diskKind.decode)",
    perCall(n, (i) => (sink = diskKind.decode(raw[i]!))),
  );
  row(
    "build the audit event (diskKind.build)",
    perCall(n, (i) => (sink = diskKind.build(id, i, recs[i]!, time))),
  );
  row(
    "  of which crypto.randomUUID",
    perCall(n, () => (sink = crypto.randomUUID())),
  );
  row(
    "JSON.stringify",
    perCall(n, (i) => (sink = JSON.stringify(events[i]))),
  );
  row(
    "dispatch: the event's Date from ktime (BigInt)",
    perCall(n, (i) => (sink = new Date(Number((recs[i]!.ktimeNs + 1_700_000_000_000_000_000n) / 1_000_000n)))),
  );
  const buf = Buffer.allocUnsafe(1 << 20);
  let at = 0;
  row(
    "a line UTF-8 into a batch buffer (each of 2)",
    perCall(n, (i) => {
      if (at > buf.length - 4096) at = 0;
      at += buf.write(lines[i]!, at, "utf8");
    }),
  );
  row(
    "gzip level 2, 256 KiB members (per event)",
    perCall(1, () => (sink = Bun.gzipSync(batch, { level: 2 }))) / perBatch,
  );
  row(
    "SHA-256 of the stored bytes (per event)",
    perCall(1, () => (sink = new Bun.CryptoHasher("sha256").update(batch).digest())) / perBatch,
  );
  const logFile = join(dataDir, "append.log");
  row(
    "events.log append, 256 KiB writes (per event)",
    perCall(
      1,
      () => appendFileSync(logFile, batch),
      () => writeFileSync(logFile, ""),
    ) / perBatch,
  );
  // The writer as the recorder drives it: flushes every 0.5 s of a 200k/s storm.
  const writer = store.openSession(id.sid);
  let written = 0;
  const flushEvery = 100_000;
  row(
    "session writer.write (chain, gzip, events.log; flushes)",
    perCall(n, (i) => {
      writer.write(events[i]!);
      if (++written % flushEvery === 0) writer.flush();
    }),
  );
  row(
    "all of it, as the recorder does: decode + build + write",
    perCall(n, (i) => {
      const rec = diskKind.decode(raw[i]!) as KernelOpen;
      writer.write(diskKind.build(id, writer.index(), rec, time));
      if (++written % flushEvery === 0) writer.flush();
    }),
  );
  writer.close();
  void sink;
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
