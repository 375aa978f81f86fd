/**
 * The kernel side `esr record` uses: a running `esr daemon`'s, when one listens on the control socket
 * and can record the session, else programs of its own (a KernelTracer), as before there was a
 * daemon. Through the daemon, N recorders cost the host one program set; the recorder still writes
 * its session (files, chain, terminal) itself, from the events the daemon decodes and sends back.
 */
import { EsrError, errorMessage } from "../errors.ts";
import { kindNamed, type EventKind } from "../events/kinds/index.ts";
import type { SessionCounts } from "../kernel/session-map.ts";
import { cgroupRootOf, type SessionCgroup, type SessionTracer } from "../kernel/session-tracer.ts";
import { KernelTracer, type SessionSink, type TracerConfig } from "../kernel/tracer.ts";
import { prepareCgroupRoot, removeStaleSlices, slicesParent, type CgroupRoot } from "../sys/cgroup-slice.ts";
import { peerCredentials } from "../sys/libc.ts";
import {
  encodeLine,
  FrameBuffer,
  LineBuffer,
  parseRecordReply,
  type DaemonFrame,
  type RecorderMessage,
  type RecordReply,
} from "./protocol.ts";

/** The daemon answers a record request at once; past this the recorder does without it. */
const ANSWER_TIMEOUT_MS = 2000;

export interface TracerChoice {
  config: TracerConfig;
  kinds: readonly EventKind[];
  /** The daemon's socket; undefined: programs of its own (--no-daemon). */
  socket?: string;
  /** Called when events cannot be handled, or the daemon stops recording the session. */
  onFailure(err: unknown): void;
  /** One line for the operator when a daemon listens but the recorder does without it. */
  warn(line: string): void;
}

/** The daemon's kernel side when it can record this session, else a KernelTracer of its own. */
export async function startSessionTracer(choice: TracerChoice): Promise<SessionTracer> {
  if (choice.socket !== undefined) {
    const tracer = await DaemonTracer.connect(choice.socket, choice);
    if (tracer instanceof DaemonTracer) return tracer;
    if (tracer.refused)
      choice.warn(
        `esr: the esr daemon at ${choice.socket} cannot record this session (${tracer.refused}); loading programs of its own`,
      );
  }
  return KernelTracer.start({ config: choice.config, kinds: choice.kinds, onFailure: choice.onFailure });
}

/** Why the daemon was not used: `refused` says why when one answered (none listening is no news). */
interface NoDaemon {
  refused?: string;
}

interface Pending<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
}

export class DaemonTracer implements SessionTracer {
  private readonly frames = new FrameBuffer();
  private sink?: SessionSink;
  private adding?: Pending<void>;
  private ending?: Pending<SessionCounts>;
  private over = false;

  private constructor(
    readonly root: CgroupRoot,
    /** The daemon's disk filter, which it checked is this recorder's own (esr.disk_filter). */
    readonly ignoredPathPrefixes: readonly string[],
    private readonly socketPath: string,
    private readonly socket: Bun.Socket<undefined>,
    private readonly onFailure: (err: unknown) => void,
  ) {}

  static async connect(socketPath: string, choice: TracerChoice): Promise<DaemonTracer | NoDaemon> {
    const root = cgroupRootOf(choice.config);
    const lines = new LineBuffer();
    let tracer: DaemonTracer | undefined;
    let answered: Pending<RecordReply> | undefined;
    const reply = new Promise<RecordReply>((resolve, reject) => (answered = { resolve, reject }));
    reply.catch(() => {}); // awaited below, once the request is sent
    let socket: Bun.Socket<undefined>;
    try {
      socket = await Bun.connect({
        unix: socketPath,
        socket: {
          data(_socket, chunk) {
            if (tracer) return tracer.received(chunk);
            try {
              lines.push(chunk);
              const line = lines.line();
              if (line !== undefined) answered!.resolve(parseRecordReply(line));
            } catch (err) {
              answered!.reject(err);
            }
          },
          close() {
            if (tracer) tracer.lost("it closed the connection");
            else answered!.reject(new EsrError("it closed the connection without an answer"));
          },
          error(_socket, err) {
            if (tracer) tracer.lost(`cannot talk to it: ${errorMessage(err)}`);
            else answered!.reject(err);
          },
        },
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException)?.code;
      return code === "ENOENT" || code === "ECONNREFUSED"
        ? {}
        : { refused: `cannot connect: ${code ?? errorMessage(err)}` };
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // Only root's daemon records root's sessions: the socket's path alone does not say whose it is.
      const fd = (socket as unknown as { fd?: unknown }).fd;
      if (typeof fd !== "number")
        throw new EsrError("cannot check who listens: this Bun does not expose the socket's fd");
      const server = peerCredentials(fd);
      if (server.uid !== 0) throw new EsrError(`it runs as uid ${server.uid}, not root`);
      const ignorePathPrefixes = [...(choice.config.diskFilter?.ignorePathPrefixes ?? [])];
      socket.write(
        encodeLine({ type: "record", slices: slicesParent(root), kinds: [...choice.kinds], ignorePathPrefixes }),
      );
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new EsrError(`no answer within ${ANSWER_TIMEOUT_MS / 1000} s`)),
          ANSWER_TIMEOUT_MS,
        );
      });
      const answer = await Promise.race([reply, timeout]);
      if (!answer.ok) throw new EsrError(answer.error);
    } catch (err) {
      socket.end();
      return { refused: errorMessage(err) };
    } finally {
      clearTimeout(timer);
    }
    // As a recorder of its own would: the slices' parent exists, and dead recorders' slices are gone.
    prepareCgroupRoot(root);
    removeStaleSlices(root);
    tracer = new DaemonTracer(
      root,
      choice.config.diskFilter?.ignorePathPrefixes ?? [],
      socketPath,
      socket,
      choice.onFailure,
    );
    const rest = lines.rest();
    if (rest.length) tracer.received(rest);
    return tracer;
  }

  /** Resolves once the daemon has the cgroup in its kernel map; rejects when it refuses. */
  add(slice: SessionCgroup, kinds: readonly EventKind[], sink: SessionSink): Promise<void> {
    if (this.over) return Promise.reject(this.gone());
    this.sink = sink;
    return new Promise<void>((resolve, reject) => {
      // Nothing runs in the cgroup yet: a daemon that does not answer fails the session before it starts.
      const timer = setTimeout(() => this.lost(`no answer within ${ANSWER_TIMEOUT_MS / 1000} s`), ANSWER_TIMEOUT_MS);
      this.adding = {
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.send({ type: "add", path: slice.path, kinds: [...kinds] });
    });
  }

  /** Resolves once the daemon has sent every buffered event of the session, with what was lost and filtered. */
  remove(): Promise<SessionCounts> {
    if (this.over) return Promise.reject(this.gone());
    return new Promise((resolve, reject) => {
      this.ending = { resolve, reject };
      this.send({ type: "end" });
    });
  }

  close() {
    this.over = true;
    this.socket.end();
  }

  private send(message: RecorderMessage) {
    // A write to a closed connection fails before its close is seen, and the daemon's last frame
    // (why it stopped) may be unread yet: the close, which comes after it, settles what waits.
    this.socket.write(encodeLine(message));
  }

  private gone(): EsrError {
    return new EsrError(`the esr daemon at ${this.socketPath} no longer records the session`);
  }

  private received(chunk: Uint8Array) {
    try {
      for (const frame of this.frames.push(chunk)) this.handle(frame);
    } catch (err) {
      this.lost(errorMessage(err));
    }
  }

  private handle(frame: DaemonFrame) {
    switch (frame.type) {
      case "events":
        // As the KernelTracer does: a sink that fails (the disk is full) fails the session, not the stream.
        try {
          for (const [kind, rec, timeMs] of frame.events) this.sink!(kindNamed(kind), rec as never, new Date(timeMs));
        } catch (err) {
          this.onFailure(err);
        }
        return;
      case "added":
        this.adding?.resolve();
        this.adding = undefined;
        return;
      case "ended":
        this.over = true;
        this.ending?.resolve({ lost: frame.lost, filtered: frame.filtered });
        this.ending = undefined;
        return;
      case "failed":
        return this.lost(frame.error);
    }
  }

  /** The daemon does not record the session (any more): whatever waits on it fails, and so does the session. */
  private lost(why: string) {
    if (this.over) return;
    this.over = true;
    const daemon = `the esr daemon at ${this.socketPath}`;
    // Refused before the session's first process: nothing ran, nothing to kill.
    if (this.adding) this.adding.reject(new EsrError(`${daemon} did not record the session: ${why}`));
    else {
      const err = new EsrError(
        `${daemon} stopped recording the session (${why}); its processes were killed so that nothing runs unrecorded`,
      );
      this.ending?.reject(err);
      this.onFailure(err);
    }
    this.adding = this.ending = undefined;
    this.socket.end();
  }
}
