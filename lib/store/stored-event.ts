/**
 * Whether an event read back from a store has the JSON types esr writes. What a store holds was
 * sent by a host, and a host can be compromised: the fleet store takes any jsonb a host's role
 * inserts, and a session's stored files are bytes that host sent. Readers leave out an event whose
 * fields have other types rather than hand it to the code that lists and formats events, so that
 * one forged row cannot break the fleet's listing, search or a session page. Fields not named here
 * are passed on as they are: they are shown, never formatted.
 */
import type { AuditEvent } from "../events/audit-events.ts";

type FieldType = "string" | "number" | "boolean" | "strings" | "counts";

const FIELD_TYPES: Record<string, FieldType> = {
  time: "string",
  code: "string",
  uid: "string",
  sid: "string",
  user: "string",
  login: "string",
  namespace: "string",
  server_id: "string",
  server_hostname: "string",
  cluster_name: "string",
  program: "string",
  path: "string",
  exe: "string",
  interpreter: "string",
  src_addr: "string",
  dst_addr: "string",
  size: "string",
  pid: "number",
  ppid: "number",
  cgroup_id: "number",
  return_code: "number",
  exit_code: "number",
  flags: "number",
  dst_port: "number",
  version: "number",
  operation: "number",
  action: "number",
  bytes: "number",
  ms: "number",
  offset: "number",
  ci: "number",
  argv_truncated: "boolean",
  path_truncated: "boolean",
  argv: "strings",
  initial_command: "strings",
  lost_events: "counts",
  filtered_events: "counts",
  ignored_path_prefixes: "strings",
};

function hasType(value: unknown, type: FieldType): boolean {
  switch (type) {
    case "strings":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "counts":
      return (
        typeof value === "object" &&
        value !== null &&
        !Array.isArray(value) &&
        Object.values(value).every((v) => typeof v === "number")
      );
    default:
      return typeof value === type;
  }
}

export function isStoredEvent(e: unknown): e is AuditEvent {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return false;
  const fields = e as Record<string, unknown>;
  if (typeof fields.event !== "string" || !Number.isSafeInteger(fields.ei) || (fields.ei as number) < 0) return false;
  return Object.entries(FIELD_TYPES).every(([name, type]) => fields[name] === undefined || hasType(fields[name], type));
}
