/**
 * What `esr pam` and `esr daemon` say to each other over the daemon's unix socket: one JSON line
 * each way, then the connection closes. The request carries only what PAM knows; everything the
 * user could influence (addresses, the process to record) the daemon finds out from the kernel.
 */
import { EsrError } from "../errors.ts";

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

export type DaemonReply = { ok: true; sid: string } | { ok: false; error: string };

export function encodeLine(message: HookRequest | DaemonReply): string {
  return `${JSON.stringify(message)}\n`;
}

export function parseRequest(line: string): HookRequest {
  const value = parseObject(line, "request");
  const { type, user, authInfo } = value;
  if (!(PAM_TYPES as readonly unknown[]).includes(type))
    throw new EsrError(`bad request: type must be one of ${PAM_TYPES.join(", ")}`);
  if (typeof user !== "string" || user === "") throw new EsrError("bad request: user must be a non-empty string");
  if (typeof authInfo !== "string") throw new EsrError("bad request: authInfo must be a string");
  return { type: type as PamType, user, authInfo };
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

/** Collects chunks until the first newline; the line without it, or undefined while incomplete. */
export class LineBuffer {
  private text = "";
  private readonly decoder = new TextDecoder();

  push(chunk: Uint8Array): string | undefined {
    this.text += this.decoder.decode(chunk, { stream: true });
    const end = this.text.indexOf("\n");
    if (end >= 0) return this.text.slice(0, end);
    if (this.text.length > MAX_LINE_BYTES) throw new EsrError(`message longer than ${MAX_LINE_BYTES} bytes`);
    return undefined;
  }
}
