/**
 * What `esr pam`, `esr record` and `esr daemon` say to each other over the daemon's unix socket.
 * PAM: one JSON line each way, then the connection closes; the request carries only what PAM knows,
 * and everything the user could influence (addresses, the process to record) the daemon finds out
 * from the kernel. `esr record` keeps its connection for the whole session: JSON lines from the
 * recorder (record, add, end), a JSON reply line and then length-prefixed frames from the daemon
 * (the session's decoded events, which hold bigints, as `bun:jsc` serializes them).
 */
import { deserialize, serialize } from "bun:jsc";
import { EsrError } from "../errors.ts";
import { EVENT_KINDS, isEventKind, type EventKind, type LostCounts } from "../events/kinds/index.ts";

export const DEFAULT_SOCKET = "/run/esr/esr.sock";
/** A login waits at most this long for the daemon before it is refused. */
export const HOOK_TIMEOUT_MS = 5000;
/** Far more than any request or reply; a peer sending more is not esr. */
export const MAX_LINE_BYTES = 64 * 1024;

export const PAM_TYPES = ["open_session", "close_session"] as const;
export type PamType = (typeof PAM_TYPES)[number];

export interface HookRequest {
  type: PamType;
  /** PAM_USER: the account logging in */
  user: string;
  /** PAM_SERVICE */
  /** SSH_AUTH_INFO_0 as sshd put it in the PAM environment; empty when it did not */
  authInfo: string;
}

/** `esr record` asks the daemon to record its session: whether it can, before the session's cgroup exists. */
export interface RecordRequest {
  type: "record";
  /** where the recorder's session cgroups go (slicesParent of its cgroup root) */
  slices: string;
  kinds: EventKind[];
  /** its esr.disk_filter prefixes: the daemon's programs filter with theirs, which must be the same */
  ignorePathPrefixes: string[];
}

/** Then, on the same connection: the session's cgroup, once made; and at the end, the last events. */
export type RecorderMessage = { type: "add"; path: string; kinds: EventKind[] } | { type: "end" };

export type DaemonReply = { ok: true; sid: string } | { ok: false; error: string };
export type RecordReply = { ok: true } | { ok: false; error: string };

/** A decoded record as the daemon's tracer handed it over: its kind, what the kernel reported, when (ms since the epoch). */
export type StreamedEvent = [kind: EventKind, record: unknown, timeMs: number];

/** The daemon's frames to a recorder, after its reply line. */
export type DaemonFrame =
  /** the cgroup is in the kernel's map: its processes are recorded from now on */
  | { type: "added" }
  | { type: "events"; events: StreamedEvent[] }
  /** after `end`: every event was sent; what the kernel, or the connection's bound, could not deliver, and what the kernel filtered */
  | { type: "ended"; lost: LostCounts; filtered: LostCounts }
  /** the daemon cannot record the session (any more): the add was refused, recording failed, it stops */
  | { type: "failed"; error: string };

export function encodeLine(message: HookRequest | RecordRequest | RecorderMessage | DaemonReply | RecordReply): string {
  return `${JSON.stringify(message)}\n`;
}

export function parseRequest(line: string): HookRequest | RecordRequest {
  const value = parseObject(line, "request");
  const { type, user, authInfo } = value;
  if (type === "record") {
    if (typeof value.slices !== "string" || !value.slices.startsWith("/"))
      throw new EsrError("bad request: slices must be an absolute path");
    const prefixes = value.ignorePathPrefixes;
    if (!Array.isArray(prefixes) || !prefixes.every((p) => typeof p === "string"))
      throw new EsrError("bad request: ignorePathPrefixes must be a list of strings");
    return { type, slices: value.slices, kinds: parseKinds(value.kinds), ignorePathPrefixes: prefixes };
  }
  if (!(PAM_TYPES as readonly unknown[]).includes(type))
    throw new EsrError(`bad request: type must be one of ${[...PAM_TYPES, "record"].join(", ")}`);
  if (typeof user !== "string" || user === "") throw new EsrError("bad request: user must be a non-empty string");
  if (typeof authInfo !== "string") throw new EsrError("bad request: authInfo must be a string");
  return { type: type as PamType, user, authInfo };
}

export function parseRecorderMessage(line: string): RecorderMessage {
  const value = parseObject(line, "message");
  if (value.type === "end") return { type: "end" };
  if (value.type === "add" && typeof value.path === "string")
    return { type: "add", path: value.path, kinds: parseKinds(value.kinds) };
  throw new EsrError("bad message: expected add (with a path) or end");
}

function parseKinds(kinds: unknown): EventKind[] {
  if (!Array.isArray(kinds) || !kinds.every((k) => typeof k === "string" && isEventKind(k)))
    throw new EsrError(`bad request: kinds must be a list of ${EVENT_KINDS.join(", ")}`);
  return kinds as EventKind[];
}

export function parseRecordReply(line: string): RecordReply {
  const value = parseObject(line, "reply");
  if (value.ok === true) return { ok: true };
  if (value.ok === false && typeof value.error === "string") return { ok: false, error: value.error };
  throw new EsrError("bad reply from the esr daemon");
}

export function parseReply(line: string): DaemonReply {
  const value = parseObject(line, "reply");
  if (value.ok === true && typeof value.sid === "string") return { ok: true, sid: value.sid };
  if (value.ok === false && typeof value.error === "string") return { ok: false, error: value.error };
  throw new EsrError("bad reply from the esr daemon");
}

function parseObject(line: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new EsrError(`bad ${what}: not JSON`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new EsrError(`bad ${what}: not a JSON object`);
  return value as Record<string, unknown>;
}

const NEWLINE = 0x0a;

/** Collects chunks and hands out complete lines, one at a time; what follows a line stays as bytes. */
export class LineBuffer {
  private bytes: Uint8Array = new Uint8Array(0);
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array) {
    this.bytes = Buffer.concat([this.bytes, chunk]);
  }

  /** The next complete line received, without its newline; undefined while incomplete. */
  line(): string | undefined {
    const end = this.bytes.indexOf(NEWLINE);
    if (end < 0) {
      if (this.bytes.length > MAX_LINE_BYTES) throw new EsrError(`message longer than ${MAX_LINE_BYTES} bytes`);
      return undefined;
    }
    const line = this.decoder.decode(this.bytes.subarray(0, end));
    this.bytes = this.bytes.subarray(end + 1);
    return line;
  }

  /** What was received after the lines handed out: the frames that follow a reply line. */
  rest(): Uint8Array {
    return this.bytes;
  }
}

/** Length (u32, little-endian) then `bun:jsc` serialization; the daemon's frames never come near this. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;

export function encodeFrame(frame: DaemonFrame): Uint8Array {
  const body = serialize(frame, { binaryType: "nodebuffer" });
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** Collects chunks and hands out the daemon's frames, decoded, as they complete. */
export class FrameBuffer {
  private bytes: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): DaemonFrame[] {
    this.bytes = this.bytes.length ? Buffer.concat([this.bytes, chunk]) : Buffer.from(chunk);
    const frames: DaemonFrame[] = [];
    while (this.bytes.length >= 4) {
      const size = this.bytes.readUInt32LE(0);
      if (size > MAX_FRAME_BYTES) throw new EsrError(`a frame of ${size} bytes from the esr daemon: not esr`);
      if (this.bytes.length < 4 + size) break;
      frames.push(deserialize(this.bytes.subarray(4, 4 + size)) as DaemonFrame);
      this.bytes = this.bytes.subarray(4 + size);
    }
    return frames;
  }
}
