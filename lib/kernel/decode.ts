/**
 * Decoders for the structs of bpf/esr.h, the one place that knows their layout. The offsets here
 * are the ones esr.h asserts at compile time; test/kernel-events.test.ts checks them against events
 * the real kernel produced.
 */
import { EVENT_KINDS, type EventKind } from "../config/config.ts";
import { formatIPv4, formatIPv6 } from "../sys/ip-address.ts";

export type LostCounts = Record<EventKind, number>;

/** enum esr_kind */
export const KIND_INDEX: Record<EventKind, number> = { command: 0, disk: 1, network: 2 };

/** struct esr_session: kinds bitmask, padding, lost[3] */
export const SESSION_VALUE_SIZE = 8 + 8 * EVENT_KINDS.length;

export function encodeSessionValue(kinds: EventKind[]): Uint8Array {
  const value = new Uint8Array(SESSION_VALUE_SIZE);
  const mask = kinds.reduce((m, k) => m | (1 << KIND_INDEX[k]), 0);
  new DataView(value.buffer).setUint32(0, mask, true);
  return value;
}

export function decodeSessionValue(value: Uint8Array): LostCounts {
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const lost = (k: EventKind) => Number(view.getBigUint64(8 + 8 * KIND_INDEX[k], true));
  return { command: lost("command"), disk: lost("disk"), network: lost("network") };
}

/** struct esr_event_header */
export interface EventHeader {
  /** cgroup id of the session slice */
  sessionId: bigint;
  /** the task's own cgroup id */
  cgroupId: bigint;
  /** CLOCK_BOOTTIME when the kernel saw it */
  ktimeNs: bigint;
  pid: number;
  comm: string;
}

const COMM_OFFSET = 32;
const COMM_LEN = 16;
/** sizeof(struct esr_event_header): the offsets below are relative to it, as in esr.h */
const H = 48;

const utf8 = new TextDecoder();

function cstr(bytes: Uint8Array, start: number, end: number): string {
  const nul = bytes.indexOf(0, start);
  return utf8.decode(bytes.subarray(start, nul >= 0 && nul < end ? nul : end));
}

function header(view: DataView, bytes: Uint8Array): EventHeader {
  return {
    sessionId: view.getBigUint64(0, true),
    cgroupId: view.getBigUint64(8, true),
    ktimeNs: view.getBigUint64(16, true),
    pid: view.getUint32(24, true),
    comm: cstr(bytes, COMM_OFFSET, COMM_OFFSET + COMM_LEN),
  };
}

/** struct esr_exec_event */
export interface KernelExec extends EventHeader {
  ppid: number;
  returnCode: number;
  /** the path as the exec call named it (bprm->filename: "/dev/fd/3" for an fd) */
  path: string;
  pathTruncated: boolean;
  /** argv[0] included */
  argv: string[];
  /** argv had more than ESR_ARGV_MAX bytes (or a failed exec more arguments than read) */
  argvTruncated: boolean;
  /** bytes of argv the process had */
  argvBytes: number;
  /** the interpreter the kernel ran for a script or binfmt_misc file, if any (successful execs only) */
  interpreter?: string;
  interpreterTruncated: boolean;
  /**
   * The file the kernel executed, as /proc/PID/exe names it: symlinks and fds resolved, relative to
   * the root of the process's mount namespace; a memfd is "/memfd:NAME". Successful execs only.
   */
  exe?: string;
  /** more components than the kernel side walks: `exe` lacks its leading directories (and its leading "/") */
  exeTruncated: boolean;
  /** the file had no link left: a memfd, or a file unlinked before its fd was executed */
  exeDeleted: boolean;
}

const EXEC_PATH_TRUNCATED = 1;
const EXEC_ARGV_TRUNCATED = 2;
const EXEC_EXE_TRUNCATED = 4;
const EXEC_EXE_DELETED = 8;
const EXEC_INTERP_TRUNCATED = 16;
const EXEC_DATA_OFFSET = H + 32;

export function decodeExec(bytes: Uint8Array): KernelExec {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pathLen = view.getUint32(H + 8, true);
  const argvLen = view.getUint32(H + 12, true);
  const flags = view.getUint32(H + 20, true);
  const interpLen = view.getUint32(H + 24, true);
  const exeLen = view.getUint32(H + 28, true);
  const end = (at: number, len: number) => Math.min(at + len, bytes.length);
  const pathStart = EXEC_DATA_OFFSET;
  const interpStart = end(pathStart, pathLen);
  const exeStart = end(interpStart, interpLen);
  const argvStart = end(exeStart, exeLen);
  const argvEnd = end(argvStart, argvLen);
  const argv = utf8.decode(bytes.subarray(argvStart, argvEnd)).split("\0");
  // A complete block ends with a NUL, which leaves one empty string after the split.
  if (argv.length > 0 && argv[argv.length - 1] === "") argv.pop();
  // exe comes leaf first, one NUL-terminated name per component.
  const components = utf8.decode(bytes.subarray(exeStart, argvStart)).split("\0");
  if (components[components.length - 1] === "") components.pop();
  const exeTruncated = (flags & EXEC_EXE_TRUNCATED) !== 0;
  // Cut short, it lacks its leading directories: then it is left relative rather than made up.
  const exe = exeLen > 0 ? `${exeTruncated ? "" : "/"}${components.reverse().join("/")}` : undefined;
  return {
    ...header(view, bytes),
    ppid: view.getUint32(H, true),
    returnCode: view.getInt32(H + 4, true),
    path: utf8.decode(bytes.subarray(pathStart, interpStart)),
    pathTruncated: (flags & EXEC_PATH_TRUNCATED) !== 0,
    argv,
    argvTruncated: (flags & EXEC_ARGV_TRUNCATED) !== 0,
    argvBytes: view.getUint32(H + 16, true),
    ...(interpLen > 0 ? { interpreter: utf8.decode(bytes.subarray(interpStart, exeStart)) } : {}),
    interpreterTruncated: (flags & EXEC_INTERP_TRUNCATED) !== 0,
    ...(exe !== undefined ? { exe } : {}),
    exeTruncated,
    exeDeleted: (flags & EXEC_EXE_DELETED) !== 0,
  };
}

/** struct esr_open_event */
export interface KernelOpen extends EventHeader {
  /** fd, or -errno */
  returnCode: number;
  /** the open flags as passed (creat(2): O_CREAT|O_WRONLY|O_TRUNC) */
  openFlags: number;
  /** as passed: relative paths stay relative */
  path: string;
  /** the path was longer than ESR_PATH_MAX bytes; `path` holds the first ESR_PATH_MAX */
  pathTruncated: boolean;
}

const OPEN_PATH_TRUNCATED = 1;
const OPEN_PATH_OFFSET = H + 24;

export function decodeOpen(bytes: Uint8Array): KernelOpen {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pathEnd = Math.min(OPEN_PATH_OFFSET + view.getUint32(H + 16, true), bytes.length);
  return {
    ...header(view, bytes),
    returnCode: view.getInt32(H, true),
    pathTruncated: (view.getUint32(H + 4, true) & OPEN_PATH_TRUNCATED) !== 0,
    openFlags: Number(view.getBigUint64(H + 8, true)),
    path: utf8.decode(bytes.subarray(OPEN_PATH_OFFSET, pathEnd)),
  };
}

/** struct esr_connect_event */
export interface KernelConnect extends EventHeader {
  /** 4 also for an IPv6 socket connecting to an IPv4-mapped address: the addresses are IPv4 */
  version: 4 | 6;
  srcAddr: string;
  dstAddr: string;
  dstPort: number;
}

const CONNECT_SRC_OFFSET = H + 8;
const CONNECT_DST_OFFSET = H + 24;
const IP_ADDR_LEN = 16;

export function decodeConnect(bytes: Uint8Array): KernelConnect {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(H, true) === 6 ? 6 : 4;
  const format = version === 6 ? formatIPv6 : formatIPv4;
  const addr = (at: number) => format(bytes.subarray(at, at + IP_ADDR_LEN));
  return {
    ...header(view, bytes),
    version,
    dstPort: view.getUint16(H + 2, true),
    srcAddr: addr(CONNECT_SRC_OFFSET),
    dstAddr: addr(CONNECT_DST_OFFSET),
  };
}
