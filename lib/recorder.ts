/**
 * A recorder: one set of BPF programs and ring buffers, and the sessions it records. Adding a
 * session is a map update; `esr record` holds one session, `esr daemon` many (SPEC §7).
 */
import { closeSync, openSync } from "node:fs";
import type { EventKind } from "./config.ts";
import { type CgroupRoot, type CgroupSlice, prepareCgroupRoot, removeStaleSlices, slicesParent } from "./cgroup-slice.ts";
import { decodeConnect, decodeExec, decodeOpen, type ConnectRecord, type ExecRecord, type LostCounts, type OpenRecord } from "./kernel-events.ts";
import { ProbeSet } from "./probes.ts";
import { RingReader } from "./ring-reader.ts";

export interface RecorderOptions extends CgroupRoot {
  /** Kinds the programs are loaded for: the union of what the sessions will record. */
  kinds: EventKind[];
  bufferPages: Record<EventKind, number>;
  /** Called when events cannot be handled (a sink failed, e.g. disk full). */
  onFailure(err: unknown): void;
}

/** Where a session's events go. */
export interface SessionSink {
  command(rec: ExecRecord): void;
  disk(rec: OpenRecord): void;
  network(rec: ConnectRecord): void;
}

/** How often the rings are drained, and how much per ring per drain before yielding the loop. */
const DRAIN_INTERVAL_MS = 10;
const DRAIN_BUDGET = 4096;

export class Recorder {
  private readonly sinks = new Map<bigint, SessionSink>();
  private readonly readers: RingReader[] = [];
  private readonly timer: ReturnType<typeof setInterval>;
  private closed = false;

  private constructor(
    readonly probes: ProbeSet,
    private readonly parentFd: number,
    private readonly onFailure: (err: unknown) => void,
    /** Slices of dead recorders this one removed when it started. */
    readonly staleSlicesRemoved: string[],
  ) {
    for (const [kind, fd] of probes.ringFds) this.readers.push(new RingReader(fd, this.dispatcher(kind)));
    this.timer = setInterval(() => this.drainSome(), DRAIN_INTERVAL_MS);
  }

  /** Mounts cgroup2 if needed, cleans slices of dead recorders, loads and attaches the programs. */
  static start(opts: RecorderOptions): Recorder {
    const sliceLevel = prepareCgroupRoot(opts);
    const stale = removeStaleSlices(opts);
    const parentFd = openSync(slicesParent(opts), "r");
    try {
      const probes = ProbeSet.load({ kinds: opts.kinds, sliceLevel, bufferPages: opts.bufferPages, slicesParentFd: parentFd });
      return new Recorder(probes, parentFd, opts.onFailure, stale);
    } catch (err) {
      closeSync(parentFd);
      throw err;
    }
  }

  add(slice: CgroupSlice, kinds: EventKind[], sink: SessionSink) {
    this.sinks.set(slice.id, sink);
    this.probes.addSession(slice.id, kinds);
  }

  /** Reads every event still buffered, then stops recording the session; returns what was lost. */
  remove(slice: CgroupSlice): LostCounts {
    this.drainAll();
    const lost = this.probes.lost(slice.id);
    this.probes.removeSession(slice.id);
    this.sinks.delete(slice.id);
    return lost;
  }

  /** What the kernel could not deliver so far for a session. */
  lost(slice: CgroupSlice): LostCounts {
    return this.probes.lost(slice.id);
  }

  /** Drains every ring until it is empty. */
  drainAll() {
    for (const reader of this.readers) while (reader.drain(DRAIN_BUDGET) === DRAIN_BUDGET);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const reader of this.readers) reader.close();
    this.probes.close();
    closeSync(this.parentFd);
  }

  private drainSome() {
    try {
      let more = false;
      for (const reader of this.readers) if (reader.drain(DRAIN_BUDGET) === DRAIN_BUDGET) more = true;
      // A full batch means a busy ring: come back at once, after letting the loop breathe.
      if (more && !this.closed) setImmediate(() => this.drainSome());
    } catch (err) {
      this.onFailure(err);
    }
  }

  private dispatcher(kind: EventKind): (bytes: Uint8Array) => void {
    switch (kind) {
      case "command":
        return (bytes) => {
          const rec = decodeExec(bytes);
          this.sinks.get(rec.sessionId)?.command(rec);
        };
      case "disk":
        return (bytes) => {
          const rec = decodeOpen(bytes);
          this.sinks.get(rec.sessionId)?.disk(rec);
        };
      case "network":
        return (bytes) => {
          const rec = decodeConnect(bytes);
          this.sinks.get(rec.sessionId)?.network(rec);
        };
    }
  }
}
