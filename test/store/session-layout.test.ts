/**
 * A recorded session's files read as Teleport's file-session reader reads them (index semantics,
 * events after 0 — what its callers ask —, the `.completed` marker), and a session an earlier esr
 * wrote (no `.completed`) still read the same by esr's own readers: replay, ls and the data-dir
 * store the web UI and the fleet shipper read through.
 */
import { beforeAll, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { kindOfEvent } from "../../lib/events/kinds/index.ts";
import { FileEventSource } from "../../lib/store/file/file-store.ts";
import { jsonFields } from "../support/fields.ts";
import { ESR, record, replayEvents, runEsr } from "../support/harness.ts";
import { sessionsDir } from "../support/harness.ts";
import { TeleportSessionReader } from "../support/teleport-reader.ts";

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
});

/** Execs and opens interleave, so each kind's events come in many runs. */
const recordInterleaved = () =>
  record(["sh", "-c", "/bin/true; /bin/true; exit 3"], { flags: ["--events", "command,disk"] });

test("Teleport's reader: one file per type at index 0, each type's events in ei order, .completed", async () => {
  const r = await recordInterleaved();
  expect(r.exitCode).toBe(3);
  const stored = await replayEvents(r.dataDir, r.sid);
  const teleport = new TeleportSessionReader(sessionsDir(r.dataDir), r.sid);
  expect(teleport.completed).toBe(true);
  const typeOf = (event: string) => (kindOfEvent(event) ? event : "events");
  const types = [...new Set(stored.filter((e) => e.event !== "print").map((e) => typeOf(e.event)))];
  expect(types.sort()).toEqual(["events", "session.command", "session.disk"]);
  for (const type of types) {
    expect(teleport.files(type).map((e) => [e.file_name, e.index, e.offset])).toEqual([
      [`${r.sid}-0.${type === "events" ? "events.gz" : `${type}-events.gz`}`, 0, 0],
    ]);
    expect(teleport.eventsAfter(type, 0)).toEqual(stored.filter((e) => typeOf(e.event) === type).map(jsonFields));
  }
});

test("a session an earlier esr wrote (no .completed) replays, lists and reads the same", async () => {
  const r = await recordInterleaved();
  const before = {
    json: (await runEsr(["replay", r.sid, "--data-dir", r.dataDir, "--format", "json"])).stdout,
    text: (await runEsr(["replay", r.sid, "--data-dir", r.dataDir])).stdout,
    ls: (await runEsr(["ls", "--data-dir", r.dataDir, "--json"])).stdout,
  };
  rmSync(join(sessionsDir(r.dataDir), `${r.sid}.completed`));

  expect((await runEsr(["replay", r.sid, "--data-dir", r.dataDir, "--format", "json"])).stdout).toBe(before.json);
  expect((await runEsr(["replay", r.sid, "--data-dir", r.dataDir])).stdout).toBe(before.text);
  expect((await runEsr(["ls", "--data-dir", r.dataDir, "--json"])).stdout).toBe(before.ls);
  const recording = await new FileEventSource(r.dataDir).session(r.sid);
  expect((await recording.events()).map((e) => JSON.stringify(e)).join("\n")).toBe(before.json.trim());
  expect(recording.warnings).toEqual([]);
});
