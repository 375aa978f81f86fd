/**
 * What a recorded session needs of the kernel side, whoever reads the rings: the recorder's own
 * KernelTracer (lib/kernel/tracer.ts), or a running `esr daemon` that records the session with the
 * programs it already has (lib/ssh/daemon-tracer.ts), so that N recorders cost the host one program set.
 */
import type { EventKind } from "../events/kinds/index.ts";
import type { SessionCounts } from "./session-map.ts";
import type { CgroupRoot } from "../sys/cgroup-slice.ts";
import { systemdBooted, ESR_SYSTEMD_SLICE } from "../sys/systemd.ts";
import type { SessionSink, TracerConfig } from "./tracer.ts";

/** A session's cgroup (a CgroupSlice, or one the daemon checked): its id is the session's key in the kernel. */
export interface SessionCgroup {
  readonly id: bigint;
  /** its directory below cgroup_path */
  readonly path: string;
}

export interface SessionTracer {
  /** Where sessions' slices are created. */
  readonly root: CgroupRoot;
  /** The paths whose read-only opens the kernel counts as filtered instead of recording them (esr.disk_filter). */
  readonly ignoredPathPrefixes: readonly string[];
  /** Records the cgroup's processes from the moment this settles: nothing may run in it before. */
  add(slice: SessionCgroup, kinds: readonly EventKind[], sink: SessionSink): void | Promise<void>;
  /** Hands over every event still buffered, then stops recording the session; returns what was lost and filtered. */
  remove(slice: SessionCgroup): SessionCounts | Promise<SessionCounts>;
  close(): void;
}

/** Where the sessions of this config go: root_path below cgroup_path, or on a systemd host esr.slice. */
export function cgroupRootOf(config: TracerConfig): CgroupRoot {
  return {
    cgroupPath: config.cgroupPath,
    rootPath: config.rootPath,
    ...(systemdBooted() ? { systemdSlice: ESR_SYSTEMD_SLICE } : {}),
  };
}
