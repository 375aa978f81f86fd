/**
 * The audit events esr writes: Teleport's Enhanced Session Recording events, with the same names,
 * codes, keys and JSON types, so Teleport-aware tooling reads them unchanged. `AuditEvent` is their
 * union, told apart by `event`; the enhanced kinds' events are defined with their kind, in
 * lib/events/kinds/.
 */
import type { EventKind, KindEvent, LostCounts } from "./kinds/index.ts";
import type { KernelFile } from "./kinds/kind.ts";

/** Who and where: the fields every event of a session repeats. */
export interface SessionIdentity {
  sid: string;
  user: string;
  login: string;
  serverId: string;
  serverHostname: string;
  clusterName: string;
}

/** The fields every audit event but `print` has. */
export interface CommonFields<Event extends string, Code extends string> {
  event: Event;
  code: Code;
  /** 0, 1, 2 … per session, across all kinds, in the order the recorder wrote them */
  ei: number;
  /** a fresh UUID per event */
  uid: string;
  /** RFC 3339 UTC, milliseconds */
  time: string;
  sid: string;
  user: string;
  login: string;
  namespace: "default";
  server_id: string;
  server_hostname: string;
  cluster_name: string;
}

/** What esr adds to every enhanced event: the process, as the kernel reported it. */
export interface ProcessFields {
  pid: number;
  /**
   * The kernel's audit session id of the process (auditd's `ses=`, set at login by pam_loginuid and
   * inherited): 4294967295 when never set, 0 on a kernel built without audit support.
   */
  audit_session_id: number;
  cgroup_id: number;
  /** the kernel's comm (up to 15 bytes): any process can set its own */
  program: string;
}

export function commonFields<Event extends string, Code extends string>(
  id: SessionIdentity,
  event: Event,
  code: Code,
  ei: number,
  time: Date,
): CommonFields<Event, Code> {
  return {
    cluster_name: id.clusterName,
    code,
    ei,
    event,
    login: id.login,
    namespace: "default",
    server_hostname: id.serverHostname,
    server_id: id.serverId,
    sid: id.sid,
    time: isoTime(time),
    uid: crypto.randomUUID(),
    user: id.user,
  };
}

let lastTimeMs = NaN;
let lastTimeText = "";

/** time.toISOString(), remembered: a storm's events share their millisecond by the hundred. */
function isoTime(time: Date): string {
  const ms = time.getTime();
  if (ms !== lastTimeMs) {
    lastTimeMs = ms;
    lastTimeText = time.toISOString();
  }
  return lastTimeText;
}

export const ARGV_TRUNCATED_MARKER = "[esr: argv truncated]";
export const PATH_TRUNCATED_MARKER = "[esr: path truncated]";

/** A path under `key`, visibly marked when the kernel side had to cut it, and `key`_truncated saying so. */
export function pathFields<Key extends string>(key: Key, path: string, truncated: boolean): PathFields<Key> {
  const fields = {} as PathFields<Key>;
  addPathFields(fields, fileKeys(key, ""), path, truncated);
  return fields;
}

/** The keys of a file's fields (fileFields), spelled once per kind rather than once per event. */
export interface FileKeys {
  path: string;
  truncated: string;
  deleted: string;
  anonymous: string;
  outsideNamespace: string;
  dev: string;
  ino: string;
  fsType: string;
}

export function fileKeys(key: string, idPrefix: string): FileKeys {
  return {
    path: key,
    truncated: `${key}_truncated`,
    deleted: `${key}_deleted`,
    anonymous: `${key}_anonymous`,
    outsideNamespace: `${key}_outside_namespace`,
    dev: `${idPrefix}dev`,
    ino: `${idPrefix}ino`,
    fsType: `${idPrefix}fs_type`,
  };
}

/** pathFields, set on `event`. */
export function addPathFields(event: object, keys: FileKeys, path: string, truncated: boolean) {
  const fields = event as Record<string, string | true>;
  if (truncated) {
    fields[keys.path] = `${path} ${PATH_TRUNCATED_MARKER}`;
    fields[keys.truncated] = true;
  } else fields[keys.path] = path;
}
/**
 * Teleport's `session_recording`: where the session was recorded. esr records on the host that runs
 * the session, which is Teleport's "node" mode.
 */
export type SessionRecordingMode = "node";
export const SESSION_RECORDING_MODE: SessionRecordingMode = "node";

export type PathFields<Key extends string> = Record<Key, string> & Partial<Record<`${Key}_truncated`, true>>;

/**
 * A file as the kernel named it (KernelFile): its path under `key`, with `key`_deleted,
 * `key`_anonymous and `key`_outside_namespace when they hold, and its device, inode and filesystem
 * under `idPrefix`dev, ino and fs_type (the inode as a decimal string: it may not fit a JSON number).
 */
export function fileFields<Key extends string, Id extends string>(
  key: Key,
  idPrefix: Id,
  file: KernelFile,
): FileFields<Key, Id> {
  const fields = {} as FileFields<Key, Id>;
  addFileFields(fields, fileKeys(key, idPrefix), file);
  return fields;
}

/** fileFields, set on `event`: this runs for every open of an open storm. */
export function addFileFields(event: object, keys: FileKeys, file: KernelFile) {
  const fields = event as Record<string, string | true>;
  addPathFields(fields, keys, file.path, file.truncated);
  if (file.deleted) fields[keys.deleted] = true;
  if (file.anonymous) fields[keys.anonymous] = true;
  if (file.outsideNamespace) fields[keys.outsideNamespace] = true;
  fields[keys.dev] = file.dev;
  fields[keys.ino] = String(file.ino);
  fields[keys.fsType] = file.fsType;
}

export type FileFields<Key extends string, Id extends string> = PathFields<Key> &
  Partial<Record<`${Key}_deleted` | `${Key}_anonymous` | `${Key}_outside_namespace`, true>> &
  Record<`${Id}dev` | `${Id}ino` | `${Id}fs_type`, string>;

export interface SessionStartEvent extends CommonFields<"session.start", "T2000I"> {
  enhanced_recording: boolean;
  /** the kinds recorded for this session */
  enhanced_recording_events: EventKind[];
  initial_command: string[];
  /** "W:H" when on a terminal */
  size?: string;
  /**
   * esr's, only when esr.disk_filter is configured and disk events are recorded: the paths whose
   * read-only opens are counted in session.end's filtered_events rather than recorded.
   */
  ignored_path_prefixes?: string[];
  /** An SSH login's, from sshd's own socket and SSH_AUTH_INFO_0. */
  "addr.local"?: string;
  "addr.remote"?: string;
  proto?: "ssh";
  ssh_auth_info?: string[];
  ssh_key_fingerprint?: string;
  session_recording: SessionRecordingMode;
}

/** What a session's start says beyond who and where: some of it known only to the front end. */
export type SessionStartFields = Partial<
  Pick<SessionStartEvent, "addr.local" | "addr.remote" | "proto" | "ssh_auth_info" | "ssh_key_fingerprint">
>;

export interface SessionEndEvent extends CommonFields<"session.end", "T2004I"> {
  enhanced_recording: boolean;
  exit_code: number;
  initial_command: string[];
  interactive: boolean;
  lost_events: LostCounts;
  /** esr's, only when esr.disk_filter is configured: events left out as configured, per kind; never part of lost_events */
  filtered_events?: LostCounts;
  participants: string[];
  session_start: string;
  session_stop: string;
  session_recording: SessionRecordingMode;
}

/**
 * Teleport's record of a command session's outcome (T3002I when it exited 0, T3002E otherwise),
 * written before session.end of a session that ran a command rather than a login shell.
 */
export interface ExecEvent extends CommonFields<"exec", "T3002I" | "T3002E"> {
  /** the command as one line that sh runs as the same argv */
  command: string;
  /** Teleport's: the exit status as a string; "-1" when a signal killed the command */
  exitCode: string;
  /** Teleport's (Go's os/exec words): "exit status 3", "signal: killed"; absent on success */
  exitError?: string;
}

export interface ResizeEvent extends CommonFields<"resize", "T2002I"> {
  size: string;
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

/** Every event esr writes, told apart by `event`. */
export type AuditEvent = SessionStartEvent | SessionEndEvent | ExecEvent | ResizeEvent | PrintEvent | KindEvent;
export type EventName = AuditEvent["event"];
/** The event of a name: `EventOf<"session.command">` is a SessionCommandEvent. */
export type EventOf<Name extends EventName> = Extract<AuditEvent, { event: Name }>;

export interface SessionStartInfo {
  initialCommand: string[];
  /** "W:H" when the session runs on a terminal */
  size?: string;
  events: EventKind[];
  enhancedRecording: boolean;
  /** esr.disk_filter's prefixes, when they apply to this session */
  ignoredPathPrefixes?: readonly string[];
}

export function sessionStartEvent(
  id: SessionIdentity,
  ei: number,
  info: SessionStartInfo,
  time = new Date(),
): SessionStartEvent {
  return {
    ...commonFields(id, "session.start", "T2000I", ei, time),
    enhanced_recording: info.enhancedRecording,
    enhanced_recording_events: info.events,
    initial_command: info.initialCommand,
    ...(info.size ? { size: info.size } : {}),
    ...(info.ignoredPathPrefixes?.length ? { ignored_path_prefixes: [...info.ignoredPathPrefixes] } : {}),
    session_recording: SESSION_RECORDING_MODE,
  };
}

export interface SessionEndInfo {
  initialCommand: string[];
  interactive: boolean;
  enhancedRecording: boolean;
  start: Date;
  exitCode: number;
  lost: LostCounts;
  filtered?: LostCounts;
}

export function sessionEndEvent(
  id: SessionIdentity,
  ei: number,
  info: SessionEndInfo,
  time = new Date(),
): SessionEndEvent {
  return {
    ...commonFields(id, "session.end", "T2004I", ei, time),
    enhanced_recording: info.enhancedRecording,
    exit_code: info.exitCode,
    initial_command: info.initialCommand,
    interactive: info.interactive,
    lost_events: info.lost,
    ...(info.filtered ? { filtered_events: info.filtered } : {}),
    participants: [id.user],
    session_start: info.start.toISOString(),
    session_stop: time.toISOString(),
    session_recording: SESSION_RECORDING_MODE,
  };
}

/** How a command ended: its exit status, or the signal that killed it, described as strsignal(3) does. */
export type CommandExit = { status: number } | { signal: string };

/** One argument as sh needs it typed to get it back unchanged: plain words as they are, others in '…'. */
export function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

export function execEvent(id: SessionIdentity, ei: number, argv: string[], exit: CommandExit, time: Date): ExecEvent {
  const failed = "signal" in exit || exit.status !== 0;
  return {
    ...commonFields(id, "exec", failed ? "T3002E" : "T3002I", ei, time),
    command: argv.map(shellWord).join(" "),
    // Go's os/exec, which Teleport's exec events come from, says -1 and "signal: <strsignal>".
    exitCode: "signal" in exit ? "-1" : String(exit.status),
    ...("signal" in exit
      ? { exitError: `signal: ${goSignalText(exit.signal)}` }
      : failed
        ? { exitError: `exit status ${exit.status}` }
        : {}),
  };
}

/** Go words a signal as strsignal(3) does with its first letter lower-cased, unless that starts an acronym ("CPU", "I/O"). */
function goSignalText(description: string): string {
  return /^[A-Z][a-z ]/.test(description) ? description[0]!.toLowerCase() + description.slice(1) : description;
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
): ResizeEvent {
  return { ...commonFields(id, "resize", "T2002I", ei, time), size: terminalSizeText(size) };
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
