/**
 * The daemon's unix socket. Only root may talk to it: the socket is 0600 in a root-only directory,
 * and every caller's credentials are checked with SO_PEERCRED as well, because a mode is one chmod
 * away from wrong and the daemon needs the caller's pid anyway (its parent is the sshd to record;
 * for `esr record`, whose namespaces it compares with its own).
 *
 * A PAM request gets one reply and the connection closes. A record request turns the connection
 * into a stream for the session's life: lines from the recorder go to its handler, and what the
 * daemon sends is queued here and written as the recorder reads (a Bun socket does not buffer).
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import {
  encodeLine,
  LineBuffer,
  parseRequest,
  type DaemonReply,
  type HookRequest,
  type RecordReply,
  type RecordRequest,
} from "./protocol.ts";
import { EsrError, errorMessage } from "../errors.ts";
import { peerCredentials, type PeerCredentials } from "../sys/libc.ts";

/** A caller that connects and says nothing is dropped after this long. */
const REQUEST_TIMEOUT_S = 5;

export interface RequestHandlers {
  hook(request: HookRequest, peer: PeerCredentials): DaemonReply | Promise<DaemonReply>;
  /** Accepts the stream (throws to refuse it): called once, then lines and the close go to what it returns. */
  record(request: RecordRequest, peer: PeerCredentials, stream: StreamConnection): StreamHandler;
}

/** The daemon's end of a recorder's connection. */
export interface StreamConnection {
  /** Bytes queued and not yet taken by the kernel. */
  readonly queued: number;
  /** Queues the bytes; they are written as the peer reads. */
  send(bytes: Uint8Array): void;
  /** Closes the connection once everything queued is written. */
  end(): void;
}

export interface StreamHandler {
  line(text: string): void;
  /** The connection is gone, whoever closed it. */
  closed(): void;
}

export interface ControlSocket {
  readonly path: string;
  close(): void;
}

interface Conn {
  lines: LineBuffer;
  /** The caller, or why it is turned away. */
  peer: PeerCredentials | Error;
  answered: boolean;
  stream?: Stream;
}

class Stream implements StreamConnection {
  handler?: StreamHandler;
  private readonly out: Uint8Array[] = [];
  queued = 0;
  private ending = false;

  constructor(private readonly socket: Bun.Socket<Conn>) {}

  send(bytes: Uint8Array) {
    if (this.ending) return;
    this.out.push(bytes);
    this.queued += bytes.length;
    this.flush();
  }

  end() {
    this.ending = true;
    this.flush();
  }

  /** Writes what the kernel takes now; the socket's drain calls again for the rest. */
  flush() {
    while (this.out.length) {
      const head = this.out[0]!;
      const n = this.socket.write(head);
      if (n < 0) {
        this.out.length = 0;
        this.queued = 0;
        break;
      }
      this.queued -= n;
      if (n < head.length) {
        this.out[0] = head.subarray(n);
        return;
      }
      this.out.shift();
    }
    if (this.ending) this.socket.end();
  }
}

export async function listenControlSocket(path: string, handlers: RequestHandlers): Promise<ControlSocket> {
  await prepareSocketPath(path);
  const reply = (socket: Bun.Socket<Conn>, message: DaemonReply | RecordReply) => {
    socket.data.answered = true;
    socket.end(encodeLine(message));
  };
  const startStream = (socket: Bun.Socket<Conn>, request: RecordRequest, peer: PeerCredentials) => {
    const stream = new Stream(socket);
    try {
      stream.handler = handlers.record(request, peer, stream);
    } catch (err) {
      return reply(socket, { ok: false, error: errorMessage(err) });
    }
    socket.data.stream = stream;
    socket.timeout(0);
    stream.send(new TextEncoder().encode(encodeLine({ ok: true })));
    // The recorder may have sent more lines with its request.
    readStream(socket);
  };
  const readStream = (socket: Bun.Socket<Conn>) => {
    const { lines, stream } = socket.data;
    try {
      for (let line = lines.line(); line !== undefined; line = lines.line()) stream!.handler!.line(line);
    } catch {
      // a recorder that says something else is not esr: dropping it ends its session (closed())
      socket.end();
    }
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
          if (data.stream) {
            data.lines.push(chunk);
            return readStream(socket);
          }
          if (data.answered) return;
          let request: HookRequest | RecordRequest;
          // Even a refused caller is answered only once its request is read: closing a socket with
          // unread data resets the connection, and the caller would never see why.
          try {
            data.lines.push(chunk);
            const line = data.lines.line();
            if (line === undefined) return;
            if (data.peer instanceof Error) throw data.peer;
            request = parseRequest(line);
          } catch (err) {
            return reply(socket, { ok: false, error: errorMessage(err) });
          }
          const peer = data.peer;
          data.answered = true;
          if (request.type === "record") return startStream(socket, request, peer);
          Promise.resolve()
            .then(() => handlers.hook(request, peer))
            .catch((err): DaemonReply => ({ ok: false, error: errorMessage(err) }))
            .then((message) => reply(socket, message));
        },
        drain(socket) {
          socket.data.stream?.flush();
        },
        close(socket) {
          socket.data.stream?.handler?.closed();
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
