/** `esr replay --format text`: one aligned line per event, with what a reviewer needs first. */
import { constants } from "node:os";
import type { AuditEvent } from "./schema.ts";

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n as number, name]));

/** `0`, or `-2 ENOENT` for a negative errno. */
export function returnCodeText(rc: unknown): string {
  if (typeof rc !== "number" || rc >= 0) return String(rc);
  const name = errnoNames.get(-rc);
  return name ? `${rc} ${name}` : String(rc);
}

/**
 * An argument list as a shell would need it typed, so spaces, quotes and control characters stay
 * visible: plain words as they are, others in '…', and any with control characters in $'…'.
 */
export function shellQuote(args: string[]): string {
  return args.map(quoteArg).join(" ");
}

function quoteArg(a: string): string {
  if (/^[\w@%+=:,./-]+$/.test(a)) return a;
  if (!/[\x00-\x1f\x7f]/.test(a)) return `'${a.replaceAll("'", "'\\''")}'`;
  const escaped = a.replace(/[\\'\x00-\x1f\x7f]/g, (c) => CONTROL_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `$'${escaped}'`;
}

const CONTROL_ESCAPES: Record<string, string> = { "\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e" };

function timeOfDay(time: unknown): string {
  return typeof time === "string" ? time.slice(11, 23) : "";
}

function details(e: AuditEvent): string {
  switch (e.event) {
    case "session.start":
      return `login=${e.login} user=${e.user} command=${shellQuote((e.initial_command as string[]) ?? [])} events=${((e.enhanced_recording_events as string[]) ?? []).join(",") || "-"}${e.size ? ` size=${e.size}` : ""}`;
    case "session.end": {
      const lost = (e.lost_events ?? {}) as Record<string, number>;
      const lostText = Object.entries(lost).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(",") || "0";
      return `exit=${e.exit_code} lost=${lostText} enhanced_recording=${e.enhanced_recording}`;
    }
    case "session.command":
      return `${shellQuote([String(e.path), ...((e.argv as string[]) ?? [])])}  [ppid ${e.ppid}, ${e.program}] = ${returnCodeText(e.return_code)}`;
    case "session.network":
      return `${e.program} ${e.src_addr} -> ${e.version === 6 ? `[${e.dst_addr}]` : e.dst_addr}:${e.dst_port}`;
    case "session.disk":
      return `${e.program} open ${shellQuote([String(e.path)])} flags=0x${Number(e.flags).toString(16)} = ${returnCodeText(e.return_code)}`;
    default:
      return JSON.stringify(e);
  }
}

const KIND_LABEL: Record<string, string> = {
  "session.start": "start",
  "session.end": "end",
  "session.command": "exec",
  "session.network": "connect",
  "session.disk": "open",
};

export function formatEventLine(e: AuditEvent): string {
  const pid = e.pid === undefined ? "" : String(e.pid);
  return `${timeOfDay(e.time)}  ${pid.padStart(7)}  ${(KIND_LABEL[e.event] ?? e.event).padEnd(7)}  ${details(e)}`;
}
