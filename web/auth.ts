/**
 * Access to `esr serve`: one random token per start, printed once and kept in a root-only file.
 * The browser trades it for a cookie (HttpOnly, SameSite=Strict) at the login form; scripts send
 * it as `Authorization: Bearer …`. Nothing else is accepted.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export const COOKIE = "esr_session";
const SESSION_MS = 12 * 3600 * 1000;
/** Bounds memory however often someone logs in. */
const MAX_SESSIONS = 1000;

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export class Access {
  readonly token = randomBytes(32).toString("base64url");
  private readonly tokenDigest = digest(this.token);
  private readonly sessions = new Map<string, number>();

  /** Writes the token to `file` (0600, in a 0700 directory), replacing what was there. */
  saveToken(file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, `${this.token}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }

  checkToken(candidate: unknown): boolean {
    return typeof candidate === "string" && timingSafeEqual(digest(candidate), this.tokenDigest);
  }

  /** A new browser session for a correct token; its cookie value. */
  login(): string {
    const key = randomBytes(32).toString("base64url");
    const now = Date.now();
    for (const [k, expires] of this.sessions) if (expires < now) this.sessions.delete(k);
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(key, now + SESSION_MS);
    return key;
  }

  allows(req: Request): boolean {
    const auth = req.headers.get("authorization");
    if (auth?.startsWith("Bearer ")) return this.checkToken(auth.slice(7));
    const key = cookieValue(req.headers.get("cookie"), COOKIE);
    const expires = key === undefined ? undefined : this.sessions.get(key);
    return expires !== undefined && expires >= Date.now();
  }
}

function cookieValue(header: string | null, name: string): string | undefined {
  for (const part of header?.split(";") ?? []) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}
