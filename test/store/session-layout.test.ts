/**
 * A recorded session's files read as Teleport's file-session reader reads them (index semantics,
 * events after N, the `.completed` marker), and a session written in esr's earlier layout (one `-0`
 * file per type, every index line 0) still read by esr's own readers: replay, ls and the data-dir
 * store the web UI and the fleet shipper read through.
 */
import { beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

test("Teleport's reader: every file starts at its index with consecutive events, events after N for every N, .completed", async () => {
  const r = await recordInterleaved();
  expect(r.exitCode).toBe(3);
  const stored = await replayEvents(r.dataDir, r.sid);
  const teleport = new TeleportSessionReader(sessionsDir(r.dataDir), r.sid);
  expect(teleport.completed).toBe(true);
  expect(teleport.files("session.command").length).toBeGreaterThan(1);
  for (const entry of teleport.entries) {
    const prefix = `${r.sid}-${entry.index}.`;
    expect(entry.file_name.startsWith(prefix)).toBe(true);
    expect(teleport.lines(entry).map((e) => e.ei)).toEqual(teleport.lines(entry).map((_, i) => entry.index + i));
  }
  const typeOf = (event: string) => (kindOfEvent(event) ? event : "events");
  const lastEi = stored.at(-1)!.ei;
  for (const type of new Set(teleport.entries.map((e) => e.type)))
    for (let n = teleport.files(type)[0]!.index; n <= lastEi + 1; n++)
      expect({ type, n, events: teleport.eventsAfter(type, n) }).toEqual({
        type,
        n,
        events: stored.filter((e) => typeOf(e.event) === type && e.ei >= n).map(jsonFields),
      });
});

test("a session in the earlier layout (one -0 file per type, all indexed 0) replays, lists and reads the same", async () => {
  const r = await recordInterleaved();
  const dir = sessionsDir(r.dataDir);
  const before = {
    json: (await runEsr(["replay", r.sid, "--data-dir", r.dataDir, "--format", "json"])).stdout,
    text: (await runEsr(["replay", r.sid, "--data-dir", r.dataDir])).stdout,
    ls: (await runEsr(["ls", "--data-dir", r.dataDir, "--json"])).stdout,
  };
  // Rewrite it as the earlier writer did: each type's files joined into one (gzip members concatenate).
  const teleport = new TeleportSessionReader(dir, r.sid);
  const oldName = (type: string) => `${r.sid}-0.${type === "events" ? "events.gz" : `${type}-events.gz`}`;
  const index: string[] = [];
  for (const type of new Set(teleport.entries.map((e) => e.type))) {
    const files = teleport.files(type);
    const bytes = Buffer.concat(files.map((e) => readFileSync(join(dir, e.file_name))));
    for (const e of files) rmSync(join(dir, e.file_name));
    writeFileSync(join(dir, oldName(type)), bytes, { mode: 0o600 });
    index.push(JSON.stringify({ file_name: oldName(type), type, index: 0, offset: 0 }));
  }
  writeFileSync(join(dir, `${r.sid}.index`), `${index.join("\n")}\n`);
  rmSync(join(dir, `${r.sid}.completed`));

  expect((await runEsr(["replay", r.sid, "--data-dir", r.dataDir, "--format", "json"])).stdout).toBe(before.json);
  expect((await runEsr(["replay", r.sid, "--data-dir", r.dataDir])).stdout).toBe(before.text);
  expect((await runEsr(["ls", "--data-dir", r.dataDir, "--json"])).stdout).toBe(before.ls);
  const recording = await new FileEventSource(r.dataDir).session(r.sid);
  expect((await recording.events()).map((e) => JSON.stringify(e)).join("\n")).toBe(before.json.trim());
  expect(recording.warnings).toEqual([]);
});
