/**
 * The daemon's side of `esr record` sessions it records for their recorders: the recorder makes the
 * session's cgroup, writes the session's files and chain; the daemon puts the cgroup in its kernel
 * map and streams the session's decoded events back on the recorder's connection, so that every
 * recorder of the host shares the daemon's one program set (a ring has one reader: the daemon).
 *
 * What the daemon checks is the kernel's, not the recorder's word: the cgroup is a directory right
 * below the daemon's own slices parent (so at the depth its programs watch), not a session already
 * recorded, and the recorder sees the host as the daemon does (same mount and user namespaces, so the
 * daemon's checks of files on the host are the recorder's). A slow recorder never holds up the
 * drain: what is queued for it is bounded, and what does not fit is counted as lost for its session.
 */
import { realpathSync, statSync } from "node:fs";
import { basename, dirname, posix } from "node:path";
import { EsrError, errorMessage } from "../errors.ts";
import { noLoss, type EventKind, type LostCounts } from "../events/kinds/index.ts";
import type { KernelEventHeader } from "../events/kinds/kind.ts";
import type { KernelTracer } from "../kernel/tracer.ts";
import type { SessionCgroup } from "../kernel/session-tracer.ts";
import type { SessionCounts } from "../kernel/session-map.ts";
import { killCgroup, slicesParent } from "../sys/cgroup-slice.ts";
import type { PeerCredentials } from "../sys/libc.ts";
import type { StreamConnection, StreamHandler } from "./control-socket.ts";
import { encodeFrame, parseRecorderMessage, type RecordRequest, type StreamedEvent } from "./protocol.ts";

/**
 * What may wait for one recorder to read, beyond what its socket holds: ≈ 20 000 events (0.3 s of an
 * open storm); past it a batch is dropped and counted as lost, per kind.
 */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** Events per frame: a drain of a busy ring is sent in pieces, each checked against the bound. */
const FRAME_EVENTS = 1024;

export interface RecorderSessionsOptions {
  tracer: KernelTracer | undefined;
  /** Whether a cgroup id is already a session of the daemon (one of its logins). */
  isLogin(id: bigint): boolean;
  log(line: string): void;
}

export class RecorderSessions {
  private readonly sessions = new Map<bigint, RecorderSession>();
  private readonly open = new Set<RecorderSession>();
  private readonly loaded: ReadonlySet<EventKind>;
  private readonly ownNamespaces: string;

  constructor(private readonly opts: RecorderSessionsOptions) {
    this.loaded = new Set(opts.tracer?.programs.attached.map((p) => p.kind));
    this.ownNamespaces = namespacesOf("self");
  }

  /** A recorder's request: refused (throws) when the daemon cannot record what a standalone recorder would. */
  accept(request: RecordRequest, peer: PeerCredentials, conn: StreamConnection): StreamHandler {
    const { tracer } = this.opts;
    if (!tracer) throw new EsrError("enhanced recording is disabled in the esr daemon");
    const parent = slicesParent(tracer.root);
    if (posix.normalize(request.slices) !== parent)
      throw new EsrError(`its sessions go to ${parent}, not ${request.slices}`);
    this.checkKinds(request.kinds);
    const same = (a: readonly string[], b: readonly string[]) => [...a].sort().join("\0") === [...b].sort().join("\0");
    if (!same(request.ignorePathPrefixes, tracer.ignoredPathPrefixes))
      throw new EsrError(
        `its disk filter (esr.disk_filter: ${tracer.ignoredPathPrefixes.join(", ") || "none"}) is not this recorder's (${request.ignorePathPrefixes.join(", ") || "none"})`,
      );
    if (namespacesOf(String(peer.pid)) !== this.ownNamespaces)
      throw new EsrError(`pid ${peer.pid} is in other mount or user namespaces than the daemon`);
    const session = new RecorderSession(this, tracer, peer.pid, conn);
    this.open.add(session);
    return session;
  }

  checkKinds(kinds: readonly EventKind[]) {
    const missing = kinds.filter((k) => !this.loaded.has(k));
    if (missing.length)
      throw new EsrError(`it has no programs for ${missing.join(", ")} events (no role of its config selects them)`);
  }

  /** The cgroup a recorder made for its session, checked on the host: its key in the kernel map. */
  checkCgroup(path: string): SessionCgroup {
    const parent = slicesParent(this.opts.tracer!.root);
    let real: string;
    let id: bigint;
    try {
      real = realpathSync(path);
      const st = statSync(real, { bigint: true });
      if (!st.isDirectory()) throw new Error("not a directory");
      id = st.ino;
    } catch (err) {
      throw new EsrError(`cannot record the cgroup ${path}: ${errorMessage(err)}`);
    }
    if (dirname(real) !== realpathSync(parent) || basename(real).startsWith("."))
      throw new EsrError(`${path} is not a session cgroup in ${parent}`);
    if (this.sessions.has(id) || this.opts.isLogin(id)) throw new EsrError(`${path} is already recorded`);
    return { id, path: real };
  }

  registered(session: RecorderSession) {
    this.sessions.set(session.cgroup!.id, session);
  }

  forget(session: RecorderSession) {
    this.open.delete(session);
    if (session.cgroup && this.sessions.get(session.cgroup.id) === session) this.sessions.delete(session.cgroup.id);
  }

  log(line: string) {
    this.opts.log(line);
  }

  /**
   * Recording failed, or the daemon stops: each recorder is told, kills its session's processes
   * (nothing may go on unrecorded) and closes; resolves once all have, or the daemon killed them.
   */
  failAll(reason: string): Promise<void> {
    return Promise.all([...this.open].map((session) => session.fail(reason))).then(() => {});
  }
}

/**
 * How long a recorder told that its session cannot be recorded has to kill it and close, while the
 * daemon still records it; then the daemon kills what runs in it.
 */
const FAIL_GRACE_MS = 2000;

/** asked → recording → over, or recording → failing (told, not yet closed) → over */
type Phase = "asked" | "recording" | "failing" | "over";

class RecorderSession implements StreamHandler {
  cgroup?: SessionCgroup;
  private phase: Phase = "asked";
  private batch: StreamedEvent[] = [];
  private flushing = false;
  private readonly overflow: LostCounts = noLoss();
  private failing?: { timer: ReturnType<typeof setTimeout>; done(): void };

  constructor(
    private readonly sessions: RecorderSessions,
    private readonly tracer: KernelTracer,
    private readonly pid: number,
    private readonly conn: StreamConnection,
  ) {}

  line(text: string) {
    const message = parseRecorderMessage(text);
    if (message.type === "add") return this.add(message.path, message.kinds);
    if (this.phase !== "recording") throw new EsrError("end before add");
    this.end();
  }

  private add(path: string, kinds: EventKind[]) {
    if (this.phase !== "asked") throw new EsrError("a second add");
    try {
      this.sessions.checkKinds(kinds);
      this.cgroup = this.sessions.checkCgroup(path);
      this.tracer.add(this.cgroup, kinds, (kind, rec, time) => this.queue(kind.name, rec, time));
    } catch (err) {
      this.phase = "over";
      this.cgroup = undefined;
      this.sessions.forget(this);
      this.conn.send(encodeFrame({ type: "failed", error: errorMessage(err) }));
      this.conn.end();
      return;
    }
    this.phase = "recording";
    this.sessions.registered(this);
    this.conn.send(encodeFrame({ type: "added" }));
    this.sessions.log(`recording ${this.cgroup.path} for esr record pid ${this.pid}`);
  }

  /** The recorder's session is over: everything still buffered, then what was lost. */
  private end() {
    const { lost, filtered } = this.stop();
    for (const kind of Object.keys(lost) as EventKind[]) lost[kind] += this.overflow[kind];
    this.conn.send(encodeFrame({ type: "ended", lost, filtered }));
    this.conn.end();
    this.sessions.log(
      `stopped recording ${this.cgroup!.path} for esr record pid ${this.pid} (lost events: ${lostText(lost)})`,
    );
  }

  /** The connection is gone: a recorder gone mid-session leaves nobody to write its events, so its processes are killed. */
  closed() {
    if (this.phase === "failing") return this.failed();
    if (this.phase !== "recording") return this.sessions.forget(this);
    this.killAndStop();
    this.sessions.log(`killed what ran in ${this.cgroup!.path}: its esr record (pid ${this.pid}) went away`);
  }

  /**
   * The daemon cannot go on recording the session: the recorder is told, and kills what runs in it
   * (it knows why its command ends that way). Until it closes, the session stays recorded.
   */
  fail(reason: string): Promise<void> {
    if (this.phase === "over" || this.phase === "failing") return Promise.resolve();
    this.conn.send(encodeFrame({ type: "failed", error: reason }));
    if (this.phase === "asked") {
      this.phase = "over";
      this.sessions.forget(this);
      this.conn.end();
      return Promise.resolve();
    }
    this.phase = "failing";
    return new Promise((done) => {
      this.failing = { timer: setTimeout(() => this.failed(), FAIL_GRACE_MS), done };
    });
  }

  private failed() {
    const { timer, done } = this.failing!;
    clearTimeout(timer);
    this.killAndStop();
    this.conn.end();
    done();
  }

  private killAndStop() {
    try {
      killCgroup(this.cgroup!.path);
    } catch {
      // already gone with its processes
    }
    this.stop();
  }

  private stop(): SessionCounts {
    this.phase = "over";
    let counts: SessionCounts;
    try {
      counts = this.tracer.remove(this.cgroup!);
    } finally {
      this.sessions.forget(this);
    }
    this.flush();
    return counts;
  }

  private queue(kind: EventKind, rec: KernelEventHeader, time: Date) {
    this.batch.push([kind, rec, time.getTime()]);
    if (!this.flushing) {
      this.flushing = true;
      // The tracer hands over a drain's events in one loop: they leave as one frame (or a few).
      queueMicrotask(() => this.flush());
    }
  }

  private flush() {
    this.flushing = false;
    const { batch } = this;
    this.batch = [];
    for (let at = 0; at < batch.length; at += FRAME_EVENTS) {
      const events = batch.slice(at, at + FRAME_EVENTS);
      if (this.conn.queued >= MAX_QUEUED_BYTES) for (const [kind] of events) this.overflow[kind]++;
      else this.conn.send(encodeFrame({ type: "events", events }));
    }
  }
}

/** The mount and user namespaces of a process ("self" or a pid), as the kernel names them. */
function namespacesOf(pid: string): string {
  try {
    return (["mnt", "user"] as const).map((ns) => statSync(`/proc/${pid}/ns/${ns}`).ino).join(":");
  } catch (err) {
    throw new EsrError(`cannot read the namespaces of pid ${pid}: ${errorMessage(err)}`);
  }
}

export function lostText(lost: LostCounts): string {
  return Object.entries(lost)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(", ");
}
