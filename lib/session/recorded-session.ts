/**
 * One recorded session, whatever started it (`esr record` spawning a command, `esr daemon` adopting
 * a login): its slice registered with the recorder, session.start, events flushed at least every
 * 0.5 s, and at the end a final drain, session.end and the slice removed (docs/contract.md §5).
 */
import type { EventStore, SessionSink } from "../store/store.ts";
import { CgroupSlice } from "../sys/cgroup-slice.ts";
import type { EsrConfig } from "../config/config.ts";
import { EsrError, errorMessage } from "../errors.ts";
import { noLoss, type EventKind, type LostCounts } from "../events/kinds/index.ts";
import type { SessionTracer } from "../kernel/session-tracer.ts";
import {
  execEvent,
  sessionEndEvent,
  sessionStartEvent,
  type CommandExit,
  type SessionIdentity,
  type SessionStartFields,
} from "../events/audit-events.ts";

export interface SessionOptions {
  /** Where the session is written. */
  store: EventStore;
  config: EsrConfig;
  /** The recorder that records the slice; none when enhanced recording is off. */
  tracer?: SessionTracer;
  /**
   * The cgroup2 path of a cgroup made for the session by someone else (logind's scope of an SSH
   * login), recorded where it is; without it the session gets a new slice of its own.
   */
  adoptCgroup?: string;
  /** Teleport user name. */
  user: string;
  /** Local account the session runs as. */
  login: string;
  events: EventKind[];
  initialCommand: string[];
  /** "W:H" when on a terminal */
  size?: string;
  /** More session.start fields, e.g. the addresses of an SSH login. */
  startFields?: SessionStartFields;
}

export interface EndOptions {
  exitCode: number;
  /**
   * Whether the session had a terminal (Teleport's UI plays back only interactive sessions), asked
   * once the slice is empty: a login's pty may show only while it runs.
   */
  interactive(): boolean;
  /** The session ran this command (not a login shell): its `exec` event, dated when it exited. */
  command?: { argv: string[]; exit: CommandExit; time: Date };
  /** Kill what is left in the slice instead of recording it until it exits. */
  killOnExit?: boolean;
  /** Called when processes remain in the slice and the session waits for them. */
  onLingering?(): void;
  /** Called once the slice is empty, before session.end: the last moment to write the session's own events. */
  beforeEnd?(): Promise<void>;
}

/** Flushes at least this often, so a killed recorder loses at most this much (docs/contract.md §4). */
const FLUSH_INTERVAL_MS = 500;
/** Errors of a write to the data dir: disk full, quota, read-only, I/O. */
const WRITE_FAILURES = new Set(["ENOSPC", "EDQUOT", "EROFS", "EIO", "EFBIG"]);

export class RecordedSession {
  readonly identity: SessionIdentity;
  readonly writer: SessionSink;
  readonly start = new Date();
  private readonly flushTimer: ReturnType<typeof setInterval>;
  private failure: unknown;

  private constructor(
    readonly sid: string,
    private readonly opts: SessionOptions,
    /** Where the session's processes must run; undefined when enhanced recording is off. */
    readonly slice: CgroupSlice | undefined,
  ) {
    const { config, store } = opts;
    this.identity = {
      sid: this.sid,
      user: opts.user,
      login: opts.login,
      serverId: store.serverId,
      serverHostname: config.nodename,
      clusterName: config.clusterName,
    };
    this.writer = store.openSession(this.sid);
    this.flushTimer = setInterval(() => {
      try {
        this.writer.flush();
      } catch (err) {
        this.fail(err);
      }
    }, FLUSH_INTERVAL_MS);
  }

  /** Whether some of this session's disk events are left out (esr.disk_filter): then its events say so. */
  get diskFiltered(): boolean {
    return !!this.opts.tracer?.ignoredPathPrefixes.length && this.opts.events.includes("disk");
  }

  /** Whether BPF records this session (a recorder was given). */
  get enhanced(): boolean {
    return this.opts.tracer !== undefined;
  }

  /** Creates (or adopts) the slice, registers it and writes session.start; processes may then enter the slice. */
  static async begin(opts: SessionOptions): Promise<RecordedSession> {
    const sid = crypto.randomUUID();
    const { tracer } = opts;
    const slice = !tracer
      ? undefined
      : opts.adoptCgroup !== undefined
        ? CgroupSlice.adopt(tracer.root.cgroupPath, opts.adoptCgroup)
        : await CgroupSlice.create(tracer.root, sid);
    const session = new RecordedSession(sid, opts, slice);
    try {
      if (tracer && slice) {
        const { identity, writer } = session;
        await tracer.add(slice, opts.events, (kind, rec, time) =>
          writer.write(kind.build(identity, writer.index(), rec, time)),
        );
      }
      const { enhanced } = session;
      session.writer.write({
        ...sessionStartEvent(
          session.identity,
          session.writer.index(),
          {
            initialCommand: opts.initialCommand,
            size: opts.size,
            events: enhanced ? opts.events : [],
            enhancedRecording: enhanced,
            ignoredPathPrefixes: session.diskFiltered ? tracer!.ignoredPathPrefixes : undefined,
          },
          session.start,
        ),
        ...opts.startFields,
      });
      session.writer.flush();
    } catch (err) {
      session.fail(err);
      session.close();
      throw session.error();
    }
    return session;
  }

  /**
   * Something went wrong that makes recording unreliable (a write failed, the ring could not be
   * read): nothing may keep running unrecorded, so the session's processes are killed.
   */
  fail(err: unknown) {
    this.failure ??= err;
    try {
      this.slice?.kill();
    } catch {
      // the slice is already gone
    }
  }

  /** Waits for the slice to empty (or kills it), reads the last events, writes session.end. */
  async end(opts: EndOptions): Promise<LostCounts> {
    if (this.slice && this.failure === undefined) {
      if (opts.killOnExit) this.slice.kill();
      else if (this.slice.isPopulated()) opts.onLingering?.();
      await this.slice.waitEmpty();
    }
    let lost = noLoss();
    let filtered = noLoss();
    try {
      if (this.opts.tracer && this.slice) ({ lost, filtered } = await this.opts.tracer.remove(this.slice));
    } catch (err) {
      this.fail(err);
    }
    try {
      await opts.beforeEnd?.();
    } catch (err) {
      this.fail(err);
    }
    try {
      const { command } = opts;
      if (command)
        this.writer.write(execEvent(this.identity, this.writer.index(), command.argv, command.exit, command.time));
      this.writer.write(
        sessionEndEvent(this.identity, this.writer.index(), {
          initialCommand: this.opts.initialCommand,
          interactive: opts.interactive(),
          enhancedRecording: this.enhanced,
          start: this.start,
          exitCode: opts.exitCode,
          lost,
          filtered: this.diskFiltered ? filtered : undefined,
        }),
      );
    } catch (err) {
      this.fail(err);
    }
    this.close();
    if (this.failure !== undefined) throw this.error();
    return lost;
  }

  private close() {
    clearInterval(this.flushTimer);
    try {
      this.writer.close();
    } catch (err) {
      this.failure ??= err;
    }
    try {
      this.slice?.remove();
    } catch (err) {
      this.failure ??= err;
    }
  }

  private error(): EsrError {
    if (this.failure instanceof EsrError) return this.failure;
    const code = (this.failure as NodeJS.ErrnoException)?.code;
    if (code && WRITE_FAILURES.has(code)) {
      // Say where, and that nothing was left running unrecorded (docs/contract.md §5).
      const killed = this.slice ? "; the session's processes were killed so that nothing runs unrecorded" : "";
      return new EsrError(
        `session ${this.sid}: cannot write the recording in ${this.opts.store.location}: ${errorMessage(this.failure)}${killed}`,
      );
    }
    return new EsrError(`session ${this.sid}: ${errorMessage(this.failure)}`);
  }
}
