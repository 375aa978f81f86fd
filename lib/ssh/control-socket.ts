/**
 * The daemon's unix socket. Only root may talk to it: the socket is 0600 in a root-only directory,
 * and every caller's credentials are checked with SO_PEERCRED as well, because a mode is one chmod
 * away from wrong and the daemon needs the caller's pid anyway (its parent is the sshd to record).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { encodeLine, LineBuffer, parseRequest, type DaemonReply, type HookRequest } from "./protocol.ts";
import { EsrError, errorMessage } from "../errors.ts";
import { peerCredentials, type PeerCredentials } from "../sys/libc.ts";

/** A caller that connects and says nothing is dropped after this long. */
const REQUEST_TIMEOUT_S = 5;

export type RequestHandler = (request: HookRequest, peer: PeerCredentials) => DaemonReply | Promise<DaemonReply>;

export interface ControlSocket {
  readonly path: string;
  close(): void;
}

interface Conn {
  lines: LineBuffer;
  /** The caller, or why it is turned away. */
  peer: PeerCredentials | Error;
  answered: boolean;
}

export async function listenControlSocket(path: string, handle: RequestHandler): Promise<ControlSocket> {
  await prepareSocketPath(path);
  const reply = (socket: Bun.Socket<Conn>, message: DaemonReply) => {
    socket.data.answered = true;
    socket.end(encodeLine(message));
  };
  const previousUmask = process.umask(0o077);
  let listener: Bun.UnixSocketListener<Conn>;
  try {
    listener = Bun.listen<Conn>({
      unix: path,
      socket: {
        open(socket) {
          let peer: PeerCredentials | Error;
          try {
            peer = callerOf(socket);
          } catch (err) {
            peer = err instanceof Error ? err : new Error(String(err));
          }
          socket.data = { lines: new LineBuffer(), peer, answered: false };
          socket.timeout(REQUEST_TIMEOUT_S);
        },
        data(socket, chunk) {
          const { data } = socket;
          if (data.answered) return;
          let request: HookRequest;
          // Even a refused caller is answered only once its request is read: closing a socket with
          // unread data resets the connection, and the caller would never see why.
          try {
            const line = data.lines.push(chunk);
            if (line === undefined) return;
            if (data.peer instanceof Error) throw data.peer;
            request = parseRequest(line);
          } catch (err) {
            return reply(socket, { ok: false, error: errorMessage(err) });
          }
          const peer = data.peer;
          data.answered = true;
          Promise.resolve()
            .then(() => handle(request, peer))
            .catch((err): DaemonReply => ({ ok: false, error: errorMessage(err) }))
            .then((message) => reply(socket, message));
        },
        timeout(socket) {
          if (!socket.data.answered) reply(socket, { ok: false, error: `no request within ${REQUEST_TIMEOUT_S} s` });
        },
        error() {
          // the caller went away; nothing to answer
        },
      },
    });
  } catch (err) {
    throw new EsrError(`cannot listen on ${path}: ${errorMessage(err)}`);
  } finally {
    process.umask(previousUmask);
  }
  chmodSync(path, 0o600);
  return {
    path,
    close() {
      listener.stop(true);
      if (existsSync(path)) unlinkSync(path);
    },
  };
}

/**
 * The connecting process, from the kernel. Bun does not document a socket's fd, but has it; without
 * it the caller cannot be checked, so nobody is let in.
 */
function callerOf(socket: Bun.Socket<Conn>): PeerCredentials {
  const fd = (socket as unknown as { fd?: unknown }).fd;
  if (typeof fd !== "number" || fd < 0)
    throw new EsrError("cannot check the caller: this Bun does not expose the socket's fd");
  const peer = peerCredentials(fd);
  if (peer.uid !== 0) throw new EsrError(`caller uid ${peer.uid} (pid ${peer.pid}) is not root`);
  if (peer.pid <= 0) throw new EsrError("the caller's pid is unknown (connected from another pid namespace?)");
  return peer;
}

/**
 * A root-only directory for the socket (anyone who may write there could replace the socket), and
 * no live daemon on the path already: a stale socket file is removed, a live one is left alone.
 */
async function prepareSocketPath(path: string) {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new EsrError(
      `${dir} must be owned by root and writable only by root (it holds the daemon socket; mode ${(st.mode & 0o7777).toString(8)}, owner uid ${st.uid})`,
    );
  }
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new EsrError(`${path} exists and is not a socket`);
  if (await answers(path)) throw new EsrError(`another esr daemon is listening on ${path}`);
  unlinkSync(path);
}

async function answers(path: string): Promise<boolean> {
  try {
    const socket = await Bun.connect({ unix: path, socket: { data() {} } });
    socket.end();
    return true;
  } catch {
    return false;
  }
}
