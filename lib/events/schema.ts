/**
 * The audit events esr writes (SPEC §3): Teleport's Enhanced Session Recording events, with the
 * same names, codes, keys and JSON types, so Teleport-aware tooling reads them unchanged.
 */
import type { EventKind } from "../config/config.ts";
import type { KernelConnect, KernelExec, LostCounts, KernelOpen } from "../kernel/decode.ts";

/** Who and where: the fields every event of a session repeats. */
export interface SessionIdentity {
  sid: string;
  user: string;
  login: string;
  serverId: string;
  serverHostname: string;
  clusterName: string;
}

export type AuditEvent = { event: string; code: string; ei: number; [key: string]: unknown };

export const EVENT_CODES = {
  "session.start": "T2000I",
  "session.end": "T2004I",
  "session.command": "T4000I",
  "session.disk": "T4001I",
  "session.network": "T4002I",
  resize: "T2002I",
} as const;

export type EventName = keyof typeof EVENT_CODES;

/** The event name of each enhanced kind, which is also its file and index type. */
export const KIND_EVENT: Record<EventKind, EventName> = {
  command: "session.command",
  disk: "session.disk",
  network: "session.network",
};

function common(id: SessionIdentity, event: EventName, ei: number, time: Date) {
  return {
    cluster_name: id.clusterName,
    code: EVENT_CODES[event],
    ei,
    event,
    login: id.login,
    namespace: "default",
    server_hostname: id.serverHostname,
    server_id: id.serverId,
    sid: id.sid,
    time: time.toISOString(),
    uid: crypto.randomUUID(),
    user: id.user,
  };
}

export const ARGV_TRUNCATED_MARKER = "[esr: argv truncated]";
export const PATH_TRUNCATED_MARKER = "[esr: path truncated]";

/** A path as recorded, visibly marked when the kernel side had to cut it, and the key saying so. */
function pathFields(path: string, truncated: boolean) {
  return truncated ? { path: `${path} ${PATH_TRUNCATED_MARKER}`, path_truncated: true } : { path };
}

/**
 * What the kernel executed beyond `path` (esr's own keys; Teleport tooling ignores unknown keys):
 * `exe`, the file itself as /proc/PID/exe names it (symlinks, /dev/fd/N and memfds resolved), with
 * `exe_deleted` when it had no link left; `interpreter`, what the kernel ran for a script.
 */
function executedFields(rec: KernelExec) {
  return {
    ...(rec.exe !== undefined
      ? rec.exeTruncated
        ? { exe: `${rec.exe} ${PATH_TRUNCATED_MARKER}`, exe_truncated: true }
        : { exe: rec.exe }
      : {}),
    ...(rec.exeDeleted ? { exe_deleted: true } : {}),
    ...(rec.interpreter !== undefined
      ? rec.interpreterTruncated
        ? { interpreter: `${rec.interpreter} ${PATH_TRUNCATED_MARKER}`, interpreter_truncated: true }
        : { interpreter: rec.interpreter }
      : {}),
  };
}

export function commandEvent(id: SessionIdentity, ei: number, rec: KernelExec, time = new Date()): AuditEvent {
  const argv = rec.argv.slice(1);
  if (rec.argvTruncated) argv.push(`${ARGV_TRUNCATED_MARKER} ${rec.argvBytes} bytes in all`);
  return {
    ...common(id, "session.command", ei, time),
    argv,
    ...(rec.argvTruncated ? { argv_truncated: true } : {}),
    cgroup_id: Number(rec.cgroupId),
    ...executedFields(rec),
    ...pathFields(rec.path, rec.pathTruncated),
    pid: rec.pid,
    ppid: rec.ppid,
    program: rec.comm,
    return_code: rec.returnCode,
  };
}

export function diskEvent(id: SessionIdentity, ei: number, rec: KernelOpen, time = new Date()): AuditEvent {
  return {
    ...common(id, "session.disk", ei, time),
    cgroup_id: Number(rec.cgroupId),
    flags: rec.openFlags,
    ...pathFields(rec.path, rec.pathTruncated),
    pid: rec.pid,
    program: rec.comm,
    return_code: rec.returnCode,
  };
}

/** Teleport's codes: operation 0 is a connect, action 0 means observed (not denied). */
const NETWORK_OPERATION_CONNECT = 0;
const NETWORK_ACTION_OBSERVED = 0;

export function networkEvent(id: SessionIdentity, ei: number, rec: KernelConnect, time = new Date()): AuditEvent {
  return {
    ...common(id, "session.network", ei, time),
    action: NETWORK_ACTION_OBSERVED,
    cgroup_id: Number(rec.cgroupId),
    dst_addr: rec.dstAddr,
    dst_port: rec.dstPort,
    operation: NETWORK_OPERATION_CONNECT,
    pid: rec.pid,
    program: rec.comm,
    src_addr: rec.srcAddr,
    version: rec.version,
  };
}

export interface SessionStartInfo {
  initialCommand: string[];
  /** "W:H" when the session runs on a terminal */
  size?: string;
  events: EventKind[];
  enhancedRecording: boolean;
}

export function sessionStartEvent(
  id: SessionIdentity,
  ei: number,
  info: SessionStartInfo,
  time = new Date(),
): AuditEvent {
  return {
    ...common(id, "session.start", ei, time),
    enhanced_recording: info.enhancedRecording,
    enhanced_recording_events: info.events,
    initial_command: info.initialCommand,
    ...(info.size ? { size: info.size } : {}),
  };
}

export interface SessionEndInfo {
  initialCommand: string[];
  interactive: boolean;
  enhancedRecording: boolean;
  start: Date;
  exitCode: number;
  lost: LostCounts;
}

export function sessionEndEvent(id: SessionIdentity, ei: number, info: SessionEndInfo, time = new Date()): AuditEvent {
  return {
    ...common(id, "session.end", ei, time),
    enhanced_recording: info.enhancedRecording,
    exit_code: info.exitCode,
    initial_command: info.initialCommand,
    interactive: info.interactive,
    lost_events: info.lost,
    participants: [id.user],
    session_start: info.start.toISOString(),
    session_stop: time.toISOString(),
  };
}

/** A terminal size as Teleport writes it: "W:H". */
export function terminalSizeText(size: { cols: number; rows: number }): string {
  return `${size.cols}:${size.rows}`;
}

export function resizeEvent(
  id: SessionIdentity,
  ei: number,
  size: { cols: number; rows: number },
  time = new Date(),
): AuditEvent {
  return { ...common(id, "resize", ei, time), size: terminalSizeText(size) };
}

/**
 * Timing of a piece of terminal output, whose bytes are in the session's chunks file. Teleport's
 * print event as its recordings store it: no code, no identity, only what playback needs.
 */
export interface PrintEvent {
  event: "print";
  ei: number;
  /** How many bytes of output. */
  bytes: number;
  /** When it was shown, in ms since session start. */
  ms: number;
  /** Where its bytes start in the chunks stream. */
  offset: number;
  /** Chunk index: 0, 1, 2 … per print event. */
  ci: number;
  time: string;
}

export function printEvent(
  ei: number,
  chunk: { bytes: number; ms: number; offset: number; ci: number },
  time: Date,
): PrintEvent {
  return {
    event: "print",
    bytes: chunk.bytes,
    ms: chunk.ms,
    offset: chunk.offset,
    ei,
    ci: chunk.ci,
    time: time.toISOString(),
  };
}
