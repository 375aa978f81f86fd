/**
 * Field checks shared by the event tests: docs/contract.md §3's fields of an ESR event, and the shape of
 * Teleport's own events (test/fixtures/teleport-events.jsonl is a byte-for-byte copy of the reference
 * examples/teleport-events.jsonl), which esr's events of the same kind must match key for key.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AuditEvent, EventName, EventOf } from "../../lib/events/audit-events.ts";

export type JsonType = "string" | "number" | "boolean" | "array" | "object" | "null";

export function jsonType(value: unknown): JsonType {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value as JsonType;
}

/** docs/contract.md §3: the fields every ESR event (command, disk, network) carries. */
export const ESR_COMMON_FIELDS: Record<string, JsonType> = {
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
  pid: "number",
  cgroup_id: "number",
  program: "string",
  /** the kernel's audit session id (Teleport's proto has it; the example events predate it) */
  audit_session_id: "number",
};

/** An event with only the fields a unit test needs: the writer and readers treat it like a full one. */
export function partialEvent<Name extends EventName>(
  fields: Partial<EventOf<Name>> & { event: Name; ei: number },
): EventOf<Name> {
  return fields as EventOf<Name>;
}

/** An event as the JSON object it is stored as, for tests that compare keys by name with Teleport's. */
export function jsonFields(event: AuditEvent): Record<string, unknown> {
  return event as unknown as Record<string, unknown>;
}

/** Each key of `event` that `expected` names, with its JSON type, or `missing`. */
export function fieldTypes(
  event: AuditEvent,
  expected: Record<string, JsonType>,
): Record<string, JsonType | "missing"> {
  const fields = jsonFields(event);
  return Object.fromEntries(Object.keys(expected).map((k) => [k, k in fields ? jsonType(fields[k]) : "missing"]));
}

/** The keys and JSON types of the first event named `name` that a real Teleport node wrote. */
export function teleportFieldTypes(name: string): Record<string, JsonType> {
  const lines = readFileSync(join(import.meta.dir, "..", "fixtures", "teleport-events.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean);
  const event = lines.map((l) => JSON.parse(l) as AuditEvent).find((e) => e.event === name);
  if (!event) throw new Error(`no ${name} event in the Teleport examples`);
  return Object.fromEntries(Object.entries(event).map(([k, v]) => [k, jsonType(v)]));
}
