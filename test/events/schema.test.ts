/**
 * Every field of docs/contract.md §3 with the right JSON type, on events esr really recorded, and the same
 * keys and types as a real Teleport node's events of the same kind.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import { jsonFields } from "../support/fields.ts";
import { FIXTURES, ofType, record, replayEvents } from "../support/harness.ts";

const teleport = readFileSync(join(FIXTURES, "teleport-events.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((l) => JSON.parse(l));
const jsonType = (v: unknown) => (Array.isArray(v) ? "array" : v === null ? "null" : typeof v);

function expectFields(event: AuditEvent, fields: Record<string, string>) {
  for (const [key, type] of Object.entries(fields)) {
    expect({ key, type: jsonType(jsonFields(event)[key]) }).toEqual({ key, type });
  }
}

const COMMON = {
  event: "string",
  code: "string",
  ei: "number",
  uid: "string",
  time: "string",
  sid: "string",
  user: "string",
  login: "string",
  namespace: "string",
  server_id: "string",
  server_hostname: "string",
  cluster_name: "string",
};

test("session.start, session.command, session.end carry every field with its type", async () => {
  const r = await record(["bash", "-c", "/bin/echo x"], { flags: ["--events", "command"] });
  const events = await replayEvents(r.dataDir, r.sid);
  const [start] = ofType(events, "session.start");
  const [cmd] = ofType(events, "session.command");
  const [end] = ofType(events, "session.end");
  expectFields(start!, { ...COMMON, initial_command: "array", enhanced_recording_events: "array" });
  expectFields(cmd!, {
    ...COMMON,
    pid: "number",
    cgroup_id: "number",
    program: "string",
    ppid: "number",
    path: "string",
    argv: "array",
    return_code: "number",
  });
  expectFields(end!, {
    ...COMMON,
    enhanced_recording: "boolean",
    interactive: "boolean",
    participants: "array",
    session_start: "string",
    session_stop: "string",
    initial_command: "array",
    exit_code: "number",
    lost_events: "object",
  });
  expect(start!.code).toBe("T2000I");
  expect(cmd!.code).toBe("T4000I");
  expect(end!.code).toBe("T2004I");
  expect(end!.enhanced_recording).toBe(true);
  expect(end!.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  expect(cmd!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  expect(new Set(events.map((e) => ("uid" in e ? e.uid : undefined))).size).toBe(events.length);
  expect(cmd!.namespace).toBe("default");

  for (const ref of teleport.filter((e) => e.event === "session.command" || e.event === "session.end")) {
    const ours = ofType(events, ref.event)[0]!;
    for (const [key, value] of Object.entries(ref))
      expect({ event: ref.event, key, type: jsonType(jsonFields(ours)[key]) }).toEqual({
        event: ref.event,
        key,
        type: jsonType(value),
      });
  }
});
