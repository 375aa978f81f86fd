/**
 * The kernel side of recording: one set of BPF programs and ring buffers, and the sessions they
 * record. Adding a session is a map update; `esr record` holds one session, `esr daemon` many.
 */
import type { AnyEventKind, EventKind, KernelEventHeader } from "../events/kinds/index.ts";
import type { HostView } from "../events/kinds/kind.ts";
import { kindNamed } from "../events/kinds/index.ts";
import { type CgroupRoot, prepareCgroupRoot, removeStaleSlices } from "../sys/cgroup-slice.ts";
import { hostView } from "./host-view.ts";
import { bootTimeNs } from "../sys/libc.ts";
import { ProgramSet } from "./program-set.ts";
import type { SessionCounts } from "./session-map.ts";
import { RingReader } from "./ring-reader.ts";
import { cgroupRootOf, type SessionCgroup, type SessionTracer } from "./session-tracer.ts";

/** Where the session slices go and how large the rings are (the ssh_service.enhanced_recording block). */
export interface TracerConfig {
  cgroupPath: string;
  rootPath: string;
  /** Ring buffer size per kind, in pages (Teleport's *_buffer_size). */
  bufferPages: Record<EventKind, number>;
  /** esr.disk_filter: paths whose read-only opens are counted as filtered, not recorded. */
  diskFilter?: { ignorePathPrefixes: readonly string[] };
}

export interface TracerOptions {
  config: TracerConfig;
  /** Kinds the programs are loaded for: the union of what the sessions will record. */
  kinds: readonly EventKind[];
  /** Called when events cannot be handled (a sink failed, e.g. disk full). */
  onFailure(err: unknown): void;
  /**
   * Depths below the cgroup2 root of cgroups made by others that sessions will adopt (logind's
   * session scopes), besides this recorder's own slices.
   */
  adoptedLevels?: readonly number[];
}

/** Where a session's events go: each as its kind decoded it, with the time the kernel saw it. */
export type SessionSink = (kind: AnyEventKind, record: KernelEventHeader, time: Date) => void;

interface KernelEvent {
  kind: AnyEventKind;
  rec: KernelEventHeader;
}

function byKernelTime(a: KernelEvent, b: KernelEvent): number {
  return a.rec.ktimeNs < b.rec.ktimeNs ? -1 : a.rec.ktimeNs > b.rec.ktimeNs ? 1 : 0;
}

function inKernelTimeOrder(events: KernelEvent[]): boolean {
  for (let i = 1; i < events.length; i++) if (events[i - 1]!.rec.ktimeNs > events[i]!.rec.ktimeNs) return false;
  return true;
}

/** How often the rings are drained, and how much per ring per drain before yielding the loop. */
const DRAIN_INTERVAL_MS = 10;
const DRAIN_BUDGET = 4096;
/** Events handed out in one turn after which the garbage they left is collected. */
const COLLECT_AFTER = 1024;

export class KernelTracer implements SessionTracer {
  private readonly sinks = new Map<bigint, SessionSink>();
  private readonly readers: RingReader[] = [];
  /** Decoded, not yet handed to sessions: merged across rings in kernel-time order. */
  private pending: KernelEvent[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;
  private readonly host: HostView = hostView();

  private constructor(
    /** Where this recorder's session slices are created. */
    readonly root: CgroupRoot,
    readonly programs: ProgramSet,
    private readonly onFailure: (err: unknown) => void,
    /** Slices of dead recorders this one removed when it started. */
    readonly staleSlicesRemoved: string[],
    /** The paths whose read-only opens the disk program does not record; empty: it records them all. */
    readonly ignoredPathPrefixes: readonly string[],
  ) {
    for (const [kind, fd] of programs.ringFds) this.readers.push(new RingReader(fd, this.decoder(kind)));
    this.timer = setInterval(() => this.drainSome(), DRAIN_INTERVAL_MS);
  }

  /**
   * Mounts cgroup2 if needed, cleans slices of dead recorders, loads and attaches the programs. On a
   * systemd host the sessions' own cgroups are transient scopes in esr.slice, which systemd knows.
   */
  static start({ config, kinds, onFailure, adoptedLevels = [] }: TracerOptions): KernelTracer {
    const root = cgroupRootOf(config);
    const sessionLevels = [...new Set([prepareCgroupRoot(root), ...adoptedLevels])];
    const stale = removeStaleSlices(root);
    const ignorePathPrefixes = config.diskFilter?.ignorePathPrefixes ?? [];
    const programs = ProgramSet.load({ kinds, sessionLevels, bufferPages: config.bufferPages, ignorePathPrefixes });
    return new KernelTracer(root, programs, onFailure, stale, ignorePathPrefixes);
  }

  add(slice: SessionCgroup, kinds: readonly EventKind[], sink: SessionSink) {
    this.sinks.set(slice.id, sink);
    this.programs.addSession(slice.id, kinds);
  }

  /** Reads every event still buffered, then stops recording the session; returns what was lost and filtered. */
  remove(slice: SessionCgroup): SessionCounts {
    this.drainAll();
    const counts = this.programs.counts(slice.id);
    this.programs.removeSession(slice.id);
    this.sinks.delete(slice.id);
    return counts;
  }

  /** Drains every ring until it is empty, and hands everything to the sessions. */
  drainAll() {
    for (const reader of this.readers) while (reader.drain(DRAIN_BUDGET) === DRAIN_BUDGET);
    this.dispatch(undefined);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const reader of this.readers) reader.close();
    this.programs.close();
  }

  private drainSome() {
    try {
      // Anything the kernel stamped before this instant is in a ring by now, unless a ring is too
      // full to empty in one turn: then its unread events may be older than what the others gave.
      let cutoff = bootTimeNs();
      let more = false;
      for (const reader of this.readers) {
        if (reader.drain(DRAIN_BUDGET) < DRAIN_BUDGET) continue;
        more = true;
        // Rings are drained one after the other: the last pending event is this ring's newest.
        const last = this.pending[this.pending.length - 1]!.rec.ktimeNs;
        if (last < cutoff) cutoff = last;
      }
      // A busy turn leaves thousands of short-lived objects: collecting them now, while they are
      // few MB, keeps the heap from growing under a storm (peak RSS of an open storm 117–120 ->
      // 94–105 MB, recorder CPU unchanged).
      if (this.dispatch(cutoff) >= COLLECT_AFTER) Bun.gc(false);
      // A full batch means a busy ring: come back at once, after letting the loop breathe.
      if (more && !this.closed) setImmediate(() => this.drainSome());
    } catch (err) {
      this.onFailure(err);
    }
  }

  /** Hands pending events stamped before `cutoff` (all, if undefined) to their sessions, oldest first. */
  private dispatch(cutoff: bigint | undefined): number {
    const pending = this.pending;
    if (pending.length === 0) return 0;
    // Mostly in order already (one busy ring): checking is linear, sorting is not.
    if (!inKernelTimeOrder(pending)) pending.sort(byKernelTime);
    let n = pending.length;
    if (cutoff !== undefined) while (n > 0 && pending[n - 1]!.rec.ktimeNs >= cutoff) n--;
    const ready = n === pending.length ? pending : pending.slice(0, n);
    this.pending = n === pending.length ? [] : pending.slice(n);
    const wallMinusBootNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) - bootTimeNs();
    for (const e of ready) {
      const sink = this.sinks.get(e.rec.sessionId);
      if (!sink) continue;
      const time = new Date(Number((e.rec.ktimeNs + wallMinusBootNs) / 1_000_000n));
      sink(e.kind, e.rec, time);
    }
    return ready.length;
  }

  private decoder(name: EventKind): (bytes: Uint8Array) => void {
    const kind = kindNamed(name);
    // Checked as soon as read: the host's files may change later.
    const check = kind.checkOnHost?.bind(kind);
    return (bytes) => {
      const rec = kind.decode(bytes);
      this.pending.push({ kind, rec: check ? check(rec, this.host) : rec });
    };
  }
}
