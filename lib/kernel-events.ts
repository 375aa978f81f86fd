/**
 * Decoders for the structs of bpf/esr.h, the one place that knows their layout. The offsets here
 * are the ones esr.h asserts at compile time; test/kernel-events.test.ts checks them against events
 * the real kernel produced.
 */
import { EVENT_KINDS, type EventKind } from "./config.ts";
import { formatIPv4, formatIPv6 } from "./ip-address.ts";

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
  pid: number;
  comm: string;
}

const COMM_OFFSET = 24;
const COMM_LEN = 16;

const utf8 = new TextDecoder();

function cstr(bytes: Uint8Array, start: number, end: number): string {
  const nul = bytes.indexOf(0, start);
  return utf8.decode(bytes.subarray(start, nul >= 0 && nul < end ? nul : end));
}

function header(view: DataView, bytes: Uint8Array): EventHeader {
  return {
    sessionId: view.getBigUint64(0, true),
    cgroupId: view.getBigUint64(8, true),
    pid: view.getUint32(16, true),
    comm: cstr(bytes, COMM_OFFSET, COMM_OFFSET + COMM_LEN),
  };
}

/** struct esr_exec_event */
export interface ExecRecord extends EventHeader {
  ppid: number;
  returnCode: number;
  path: string;
  pathTruncated: boolean;
  /** argv[0] included */
  argv: string[];
  /** argv had more than ESR_ARGV_MAX bytes (or a failed exec more arguments than read) */
  argvTruncated: boolean;
  /** bytes of argv the process had */
  argvBytes: number;
}

const EXEC_PATH_TRUNCATED = 1;
const EXEC_ARGV_TRUNCATED = 2;
const EXEC_DATA_OFFSET = 64;

export function decodeExec(bytes: Uint8Array): ExecRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pathLen = view.getUint32(48, true);
  const argvLen = view.getUint32(52, true);
  const flags = view.getUint32(60, true);
  const pathStart = EXEC_DATA_OFFSET;
  const argvStart = pathStart + pathLen;
  const argvEnd = Math.min(argvStart + argvLen, bytes.length);
  const argv = utf8.decode(bytes.subarray(argvStart, argvEnd)).split("\0");
  // A complete block ends with a NUL, which leaves one empty string after the split.
  if (argv.length > 0 && argv[argv.length - 1] === "") argv.pop();
  return {
    ...header(view, bytes),
    ppid: view.getUint32(40, true),
    returnCode: view.getInt32(44, true),
    path: utf8.decode(bytes.subarray(pathStart, argvStart)),
    pathTruncated: (flags & EXEC_PATH_TRUNCATED) !== 0,
    argv,
    argvTruncated: (flags & EXEC_ARGV_TRUNCATED) !== 0,
    argvBytes: view.getUint32(56, true),
  };
}

/** struct esr_open_event */
export interface OpenRecord extends EventHeader {
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
const OPEN_PATH_OFFSET = 64;

export function decodeOpen(bytes: Uint8Array): OpenRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const pathEnd = Math.min(OPEN_PATH_OFFSET + view.getUint32(56, true), bytes.length);
  return {
    ...header(view, bytes),
    returnCode: view.getInt32(40, true),
    pathTruncated: (view.getUint32(44, true) & OPEN_PATH_TRUNCATED) !== 0,
    openFlags: Number(view.getBigUint64(48, true)),
    path: utf8.decode(bytes.subarray(OPEN_PATH_OFFSET, pathEnd)),
  };
}

/** struct esr_connect_event */
export interface ConnectRecord extends EventHeader {
  /** 4 also for an IPv6 socket connecting to an IPv4-mapped address: the addresses are IPv4 */
  version: 4 | 6;
  srcAddr: string;
  dstAddr: string;
  dstPort: number;
}

const CONNECT_SRC_OFFSET = 48;
const CONNECT_DST_OFFSET = 64;
const IP_ADDR_LEN = 16;

export function decodeConnect(bytes: Uint8Array): ConnectRecord {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(40, true) === 6 ? 6 : 4;
  const format = version === 6 ? formatIPv6 : formatIPv4;
  const addr = (at: number) => format(bytes.subarray(at, at + IP_ADDR_LEN));
  return {
    ...header(view, bytes),
    version,
    dstPort: view.getUint16(42, true),
    srcAddr: addr(CONNECT_SRC_OFFSET),
    dstAddr: addr(CONNECT_DST_OFFSET),
  };
}
