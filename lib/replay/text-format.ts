/**
 * `esr replay --format text`: one aligned line per event, with what a reviewer needs first; and
 * `--tty`: the terminal's output as text with those lines between, where they happened.
 */
import { constants } from "node:os";
import { shellWord, type AuditEvent } from "../events/audit-events.ts";
import type { SessionCommandEvent, SessionDiskEvent, SessionNetworkEvent } from "../events/kinds/index.ts";
import { NETWORK_OPERATION, networkOperationName } from "../events/kinds/network.ts";
import { isPlainText, safeLine, safeText } from "../events/safe-text.ts";
import { ScreenText } from "./screen-text.ts";
import type { TerminalFrame } from "./terminal-frames.ts";

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n as number, name]));

/** `0`, or `-2 ENOENT` for a negative errno. */
export function returnCodeText(rc: unknown): string {
  if (typeof rc !== "number" || rc >= 0) return fieldText(rc);
  const name = errnoNames.get(-rc);
  return name ? `${rc} ${name}` : String(rc);
}

/** An exec as it would be typed: the path and the arguments. */
export function commandText(e: SessionCommandEvent): string {
  return shellQuote([e.path, ...(e.argv ?? [])]);
}

/** An open: the path, what it does not say by itself (openNotes), the flags and what it returned. */
export function openText(e: SessionDiskEvent): string {
  return `open ${shellQuote([e.path])}${notesText(openNotes(e))} flags=0x${Number(e.flags).toString(16)} = ${returnCodeText(e.return_code)}`;
}

const CALLER_MEMORY = "from the caller's memory";

/** What an open's path does not say: what the caller asked for, and whether the path is only that. */
export function openNotes(e: SessionDiskEvent): string[] {
  const notes: string[] = [];
  if (e.requested_path !== undefined) notes.push(`requested ${shellQuote([e.requested_path])}, ${CALLER_MEMORY}`);
  if (e.from_caller_memory?.includes("path")) notes.push(`as requested, ${CALLER_MEMORY}`);
  if (e.path_deleted) notes.push("deleted");
  if (e.path_outside_namespace) notes.push(`not in the mount namespace: path within its filesystem, dev ${e.dev}`);
  return notes;
}

/**
 * What an exec's path does not say: that the process sees another mount namespace, where a path
 * may name another file than the host's (ExecOnHost), and what was only the caller's memory.
 */
export function execNotes(e: SessionCommandEvent): string[] {
  const notes: string[] = [];
  const file = `dev ${e.exe_dev} ino ${e.exe_ino}`;
  if (e.exe_outside_namespace) notes.push(`file not in the mount namespace: ${e.exe} within its filesystem, ${file}`);
  if (e.other_mount_ns) {
    const onHost =
      e.exe_on_host === "different"
        ? `: file is ${file}, not ${e.exe}`
        : e.exe_on_host === "missing"
          ? `: file is ${file}, the host has no ${e.exe}`
          : "";
    notes.push(`other mount namespace${onHost}`);
  }
  if (e.other_user_ns) notes.push("other user namespace");
  if (e.exe_deleted) notes.push(`file ${e.exe} deleted`);
  if (e.from_caller_memory) notes.push(`${e.from_caller_memory.join(" and ")} as requested, ${CALLER_MEMORY}`);
  return notes;
}

/** Notes as one bracket after what they are about, or nothing. */
export function notesText(notes: string[]): string {
  return notes.length ? ` [${fieldText(notes.join("; "))}]` : "";
}

/**
 * An argument list as a shell would need it typed, so spaces, quotes and control characters stay
 * visible: plain words as they are, others in '…', and any with a character that would not print
 * as itself in $'…' with the escapes of safeText (which bash reads back).
 */
export function shellQuote(args: string[]): string {
  return args.map(quoteArg).join(" ");
}

function quoteArg(a: string): string {
  if (isPlainText(a)) return shellWord(a);
  return `$'${safeText(a).replaceAll("'", "\\'")}'`;
}

/** A field of an event as text a terminal prints as it is (see safeText). */
export function fieldText(value: unknown): string {
  return safeText(String(value));
}

/** An address and port: `1.2.3.4:80`, `[::1]:80`. */
function endpointText(e: SessionNetworkEvent, addr: string, port: unknown): string {
  const text = fieldText(addr);
  return `${e.version === 6 ? `[${text}]` : text}:${fieldText(port)}`;
}

/** A network event's destination: `1.2.3.4:80`, `[::1]:80`. */
export function destinationText(e: SessionNetworkEvent): string {
  return endpointText(e, e.dst_addr, e.dst_port);
}

/** A network event's operation: `connect`, `listen`, `accept`. */
export function networkOperationText(e: SessionNetworkEvent): string {
  return fieldText(networkOperationName(Number(e.operation)));
}

/**
 * The addresses of a network event: a connect's `src -> dst:port` (its source port is chosen
 * after it is recorded), a listen's `addr:port`, an accept's `peer:port -> listener:port`.
 */
export function networkAddressText(e: SessionNetworkEvent): string {
  switch (Number(e.operation)) {
    case NETWORK_OPERATION.listen:
      return destinationText(e);
    case NETWORK_OPERATION.accept:
      return `${endpointText(e, e.src_addr, e.src_port)} -> ${destinationText(e)}`;
    default:
      return `${fieldText(e.src_addr)} -> ${destinationText(e)}`;
  }
}

/** A network event as one phrase: `connect 10.0.0.1 -> 1.2.3.4:80`, `listen 0.0.0.0:4444`, `accept …`. */
export function networkText(e: SessionNetworkEvent): string {
  return `${networkOperationText(e)} ${networkAddressText(e)}`;
}

/** Per-kind counts as `disk=3,network=1`, the kinds with none left out; "0" when all are. */
function countsText(counts: Record<string, number>): string {
  return (
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k}=${n}`)
      .join(",") || "0"
  );
}

function timeOfDay(time: unknown): string {
  return typeof time === "string" ? time.slice(11, 23) : "";
}

function details(e: AuditEvent): string {
  switch (e.event) {
    case "session.start":
      return `login=${fieldText(e.login)} user=${fieldText(e.user)} command=${shellQuote(e.initial_command ?? [])} events=${(e.enhanced_recording_events ?? []).join(",") || "-"}${e.size ? ` size=${fieldText(e.size)}` : ""}`;
    case "session.end": {
      const filtered = e.filtered_events ? ` filtered=${countsText(e.filtered_events)}` : "";
      return `exit=${e.exit_code} lost=${countsText(e.lost_events ?? {})}${filtered} enhanced_recording=${e.enhanced_recording}`;
    }
    case "exec":
      return `${fieldText(e.command)} exitCode=${fieldText(e.exitCode)}${e.exitError ? ` (${fieldText(e.exitError)})` : ""}`;
    case "session.command":
      return `${commandText(e)}${notesText(execNotes(e))}  [ppid ${fieldText(e.ppid)}, ${fieldText(e.program)}] = ${returnCodeText(e.return_code)}`;
    case "session.network":
      // An accept has no process: the kernel completed it (a process may name itself anything, even "").
      return `${Number(e.operation) === NETWORK_OPERATION.accept ? "(kernel)" : fieldText(e.program)} ${networkAddressText(e)}`;
    case "session.disk":
      return `${fieldText(e.program)} ${openText(e)}`;
    case "resize":
      return `size=${fieldText(e.size)}`;
    case "print":
      return `${e.bytes} bytes`;
    default:
      return safeLine(JSON.stringify(e));
  }
}

const KIND_LABEL: Record<string, string> = {
  "session.start": "start",
  "session.end": "end",
  exec: "exit",
  "session.command": "exec",
  "session.disk": "open",
  resize: "resize",
  print: "output",
};

/**
 * One event as a line. The values a session influences are escaped where they are put in; the
 * whole line goes through safeLine too, for the fields that are not (names, numbers and times
 * the recorder wrote), so that nothing read from a session's files reaches the terminal raw.
 */
export function formatEventLine(e: AuditEvent): string {
  const pid = "pid" in e ? String(e.pid) : "";
  const label = e.event === "session.network" ? networkOperationText(e) : (KIND_LABEL[e.event] ?? e.event);
  return safeLine(`${timeOfDay(e.time)}  ${pid.padStart(7)}  ${label.padEnd(7)}  ${details(e)}`);
}

/**
 * Text lines for a session's events. Print events only time the terminal output, so each run of
 * them is one line saying how much was shown (`--tty` shows what).
 */
export function formatEventLines(events: AuditEvent[]): string[] {
  const shown: AuditEvent[] = [];
  for (const e of events) {
    const last = shown.at(-1);
    if (e.event === "print" && last?.event === "print") last.bytes = Number(last.bytes) + Number(e.bytes);
    else shown.push(e.event === "print" ? { ...e } : e);
  }
  return shown.map(formatEventLine);
}

export type Style = "bold" | "dim" | "red" | "green" | "yellow" | "magenta" | "cyan";
export type Paint = (style: Style, text: string) => string;

const SGR: Record<Style, string> = {
  bold: "1",
  dim: "2",
  red: "31",
  green: "32",
  yellow: "33",
  magenta: "35",
  cyan: "36",
};

/** Colours text with ANSI sequences, or leaves it as it is. */
export function painter(color: boolean): Paint {
  return color ? (style, text) => (text ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text) : (_style, text) => text;
}

const TTY_STYLE: Record<string, Style> = {
  "session.command": "yellow",
  "session.network": "magenta",
  "session.disk": "cyan",
  "session.start": "green",
  "session.end": "green",
  exec: "green",
};
/** Marks terminal output in `--tty`, so that no output can pass for an event line. */
const OUTPUT_GUTTER = "|";

/**
 * `esr replay --tty`: what the terminal showed, as text (see ScreenText), with the events between
 * its lines in the order they happened: what the user saw next to what actually ran. Output is
 * timed per burst (a print event), so an event goes after the burst it happened in, and after the
 * lines that burst completed: a command's line and its quick output come first, then its execs.
 */
export function formatTtyReplay(events: AuditEvent[], frames: TerminalFrame[], paint: Paint): string[] {
  const at = (time: unknown) => Date.parse(String(time)) || 0;
  const items = [
    ...frames.map((frame) => ({ at: at(frame.time), order: 0, ei: frame.ei, frame })),
    ...events
      .filter((e) => e.event !== "print")
      .map((event) => ({ at: at(event.time), order: 1, ei: event.ei, event })),
  ].sort((a, b) => a.at - b.at || a.order - b.order || a.ei - b.ei);
  const screen = new ScreenText();
  const lines: string[] = [];
  // ScreenText keeps no control character, but bidi and other invisible characters in the output
  // would still reorder or hide what the reviewer reads.
  const output = (texts: string[]) =>
    lines.push(...texts.map((t) => paint("dim", OUTPUT_GUTTER) + (t ? ` ${safeLine(t)}` : "")));
  for (const item of items) {
    if ("frame" in item) output(screen.write(item.frame.bytes));
    else lines.push(paint(TTY_STYLE[item.event.event] ?? "dim", formatEventLine(item.event)));
  }
  output(screen.flush());
  return lines;
}

/** One line of `esr search`: date and time, host, login and session, then the event as replay shows it. */
export function formatSearchLine(e: AuditEvent): string {
  const date = typeof e.time === "string" ? e.time.slice(0, 10) : "";
  const where = e.event === "print" ? "" : `  host=${e.server_hostname} login=${e.login} sid=${e.sid}`;
  return `${date} ${formatEventLine(e)}${where}`;
}
