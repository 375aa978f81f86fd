/**
 * `esr pam`: what `session required pam_exec.so /usr/local/sbin/esr pam` runs at open_session and
 * close_session. It asks the daemon to record the login and returns only once the daemon says the
 * login is in its slice and recorded. Any failure throws: pam_exec then fails the session and sshd
 * runs nothing for the login (fail closed).
 */
import { readFileSync } from "node:fs";
import {
  encodeLine,
  HOOK_TIMEOUT_MS,
  LineBuffer,
  parseReply,
  PAM_TYPES,
  type DaemonReply,
  type HookRequest,
  type PamType,
} from "./protocol.ts";
import { EsrError, errorMessage } from "../errors.ts";

/**
 * The request from the hook's environment as pam_exec built it. pam_exec puts the PAM environment
 * first and its own PAM_* items after it, and `~/.pam_environment` can add a second PAM_USER to
 * the former (pam_env user_readenv=1 earlier in the stack): the last definition is pam_exec's.
 */
export function hookRequest(environ: string[]): HookRequest {
  const env = new Map<string, string>();
  for (const entry of environ) {
    const eq = entry.indexOf("=");
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const type = env.get("PAM_TYPE");
  if (type === undefined)
    throw new EsrError(
      "PAM_TYPE is not set: esr pam is run by pam_exec in a PAM session stack (see README, Recording SSH logins)",
      2,
    );
  if (!(PAM_TYPES as readonly string[]).includes(type))
    throw new EsrError(
      `PAM_TYPE ${JSON.stringify(type)}: esr pam belongs in the session stack (session required pam_exec.so …/esr pam)`,
      2,
    );
  const user = env.get("PAM_USER");
  if (!user) throw new EsrError("PAM_USER is not set", 2);
  return { type: type as PamType, user, authInfo: env.get("SSH_AUTH_INFO_0") ?? "" };
}

/** This process's environment as the kernel holds it, duplicates and order included. */
export function ownEnviron(): string[] {
  return readFileSync("/proc/self/environ", "latin1")
    .split("\0")
    .filter(Boolean)
    .map((e) => Buffer.from(e, "latin1").toString("utf8"));
}

/** Sends the request and returns the daemon's session id; throws when the daemon refuses, fails or is too slow. */
export async function askDaemon(
  socketPath: string,
  request: HookRequest,
  timeoutMs = HOOK_TIMEOUT_MS,
): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new EsrError(`the esr daemon at ${socketPath} did not answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  });
  try {
    const reply = await Promise.race([exchange(socketPath, request), timeout]);
    if (!reply.ok)
      throw new EsrError(
        `esr daemon refused to record ${request.type === "open_session" ? "the login" : "the logout"}: ${reply.error}`,
      );
    return reply.sid;
  } finally {
    clearTimeout(timer);
  }
}

function exchange(socketPath: string, request: HookRequest): Promise<DaemonReply> {
  return new Promise((resolve, reject) => {
    const lines = new LineBuffer();
    let settled = false;
    const settle = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    Bun.connect({
      unix: socketPath,
      socket: {
        open(socket) {
          socket.write(encodeLine(request));
        },
        data(socket, chunk) {
          // Settled before end(), which may run close() at once.
          try {
            lines.push(chunk);
            const line = lines.line();
            if (line === undefined) return;
            const reply = parseReply(line);
            settle(() => resolve(reply));
          } catch (err) {
            settle(() => reject(err));
          }
          socket.end();
        },
        close() {
          settle(() => reject(new EsrError(`the esr daemon at ${socketPath} closed the connection without an answer`)));
        },
        error(_socket, err) {
          settle(() => reject(new EsrError(`cannot talk to the esr daemon at ${socketPath}: ${errorMessage(err)}`)));
        },
      },
    }).catch((err) =>
      settle(() => reject(new EsrError(`cannot reach the esr daemon at ${socketPath}: ${connectFailure(err)}`))),
    );
  });
}

function connectFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (!code) return errorMessage(err);
  return code === "ENOENT" || code === "ECONNREFUSED" ? `${code} (is esr daemon running?)` : code;
}
