/**
 * The kernel side of a recorder: the BPF object of every event kind (linked into one at build
 * time), loaded from the executable with the programs of the recorded kinds, attached once.
 * Sessions come and go as entries of that map, so adding
 * a session costs a map update, never a program load (docs/contract.md §7).
 */
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { KINDS, EVENT_KINDS, kindNamed, noLoss, type EventKind } from "../events/kinds/index.ts";
import { bpfObject } from "./embedded.ts";
import { EsrError } from "../errors.ts";
import {
  check,
  checkPtr,
  clearLibbpfLog,
  cString,
  libbpf,
  libbpfLogSummary,
  NO_RING_BUFFERS,
  refusedProgram,
  ringBuffersAvailable,
} from "./libbpf.ts";
import { strerror } from "../sys/libc.ts";
import { SESSION_VALUE_SIZE, decodeSessionValue, encodeSessionValue, type SessionCounts } from "./session-map.ts";
import { esr_ignore_prefix, esr_load_config } from "../events/kinds/kernel-layout.generated.ts";
import { DISK_IGNORE_PREFIXES, encodeIgnoredPrefix, ignoredPrefixProblem } from "../events/kinds/disk-filter.ts";

export interface ProgramSetOptions {
  /** Kinds whose programs are loaded; a session can record only those. */
  kinds: readonly EventKind[];
  /**
   * Depths below the cgroup2 root at which a session's cgroup may sit (esr's slices, systemd
   * scopes): each costs every process of the host one map lookup per hook.
   */
  sessionLevels: readonly number[];
  /** Ring buffer size per kind, in pages (Teleport's *_buffer_size). */
  bufferPages: Record<EventKind, number>;
  /**
   * Whether the programs find a task's session with bpf_get_current_ancestor_cgroup_id (true) or
   * by reading the task's cgroup (false). Default: the helper where the kernel allows it.
   */
  ancestorHelper?: boolean;
  /**
   * How programs that have twins read the kernel's objects (bpf/esr.h enum esr_reads): the twin
   * of that way is loaded, or the next slower one a program has. Default: the cheapest way the
   * kernel allows.
   */
  reads?: KernelReads;
  /**
   * Paths (esr.disk_filter.ignore_path_prefixes, checked by the config) whose read-only opens the
   * disk program counts as filtered instead of recording; none by default.
   */
  ignorePathPrefixes?: readonly string[];
}

const PAGE_SIZE = 4096;
/** A ring must hold a few of the largest events (an exec with 32 KiB of argv) whatever is configured. */
const MIN_RING_BYTES = 256 * 1024;

/** Ring size in bytes: the configured pages for each CPU, a power of two, never below the minimum. */
export function ringBytes(pages: number, cpus: number): number {
  let bytes = MIN_RING_BYTES;
  while (bytes < pages * PAGE_SIZE * cpus) bytes *= 2;
  return bytes;
}

export interface AttachedProgram {
  kind: EventKind;
  name: string;
  /** libbpf section, e.g. tp_btf/sched_process_exec: the hook it runs at */
  section: string;
}

export class ProgramSet {
  private constructor(
    private obj: Pointer | null,
    private links: Pointer[],
    readonly sessionsFd: number,
    readonly recordingFd: number,
    readonly ringFds: Map<EventKind, number>,
    readonly attached: AttachedProgram[],
    /** How the programs find a task's session (see ProgramSetOptions.ancestorHelper). */
    readonly ancestorHelper: boolean,
    /** Which twins of programs that have them are loaded (see ProgramSetOptions.reads). */
    readonly reads: KernelReads,
  ) {}

  /** Loads the object with the programs of `opts.kinds` enabled, and attaches them. */
  static load(opts: ProgramSetOptions): ProgramSet {
    const bpf = libbpf();
    if (!ringBuffersAvailable()) throw new EsrError(NO_RING_BUFFERS);
    const cpus = check(bpf.libbpf_num_possible_cpus(), "cannot count CPUs");
    const wanted = new Set(opts.kinds);
    const image = readFileSync(bpfObject);
    clearLibbpfLog();
    const obj = checkPtr(bpf.bpf_object__open_mem(image, image.length, null), "cannot open the BPF object");
    const ancestorHelper = opts.ancestorHelper ?? helperAllowed(BPF_FUNC_get_current_ancestor_cgroup_id);
    const reads = opts.reads ?? cheapestReads();
    const set = new ProgramSet(obj, [], -1, -1, new Map(), [], ancestorHelper, reads);
    try {
      for (const map of maps(obj)) {
        const name = cString(bpf.bpf_map__name(map));
        const ringOf = KINDS.find((k) => name === k.ring)?.name;
        // The ring of a kind nobody records still exists (its programs reference it): keep it small.
        if (ringOf)
          check(
            bpf.bpf_map__set_max_entries(
              map,
              wanted.has(ringOf) ? ringBytes(opts.bufferPages[ringOf], cpus) : PAGE_SIZE,
            ),
            `cannot size the ${ringOf} ring buffer`,
          );
        else if (name === "per_cpu_scratch")
          check(bpf.bpf_map__set_max_entries(map, cpus), "cannot size the scratch map");
        else if (name.endsWith(".rodata.esr"))
          setLoadConfig(map, opts.sessionLevels, ancestorHelper, opts.ignorePathPrefixes ?? []);
      }
      const enabled: { prog: Pointer; name: string; kind: EventKind }[] = [];
      const all = [...programs(obj)].map((prog) => ({ prog, name: cString(bpf.bpf_program__name(prog)) }));
      const chosen = twinsToLoad(
        all.map((p) => p.name),
        reads,
      );
      for (const { prog, name } of all) {
        const kind = kindOf(name);
        const load = wanted.has(kind) && chosen.has(name);
        check(bpf.bpf_program__set_autoload(prog, load), "cannot select the BPF programs");
        if (load) enabled.push({ prog, name, kind });
      }
      for (const kind of wanted)
        if (!enabled.some((p) => p.kind === kind)) throw new EsrError(`${kind} events are not built into this esr`);
      const loadErr = bpf.bpf_object__load(obj);
      if (loadErr < 0) throw loadError(opts.kinds, -loadErr);
      for (const map of maps(obj)) {
        const name = cString(bpf.bpf_map__name(map));
        if (name === "sessions") (set as { sessionsFd: number }).sessionsFd = bpf.bpf_map__fd(map);
        if (name === "recording") (set as { recordingFd: number }).recordingFd = bpf.bpf_map__fd(map);
        const ring = KINDS.find((k) => k.ring === name && wanted.has(k.name));
        if (ring) set.ringFds.set(ring.name, bpf.bpf_map__fd(map));
      }
      for (const { prog, name, kind } of enabled) {
        const section = cString(bpf.bpf_program__section_name(prog));
        set.links.push(checkPtr(bpf.bpf_program__attach(prog), `cannot attach BPF program ${name} (${section})`));
        set.attached.push({ kind, name, section });
      }
    } catch (err) {
      set.close();
      throw err;
    }
    return set;
  }

  /** Sessions by id with the kinds they record, mirrored in the kernel's `recording` counts. */
  private readonly sessions = new Map<bigint, readonly EventKind[]>();

  addSession(sessionId: bigint, kinds: readonly EventKind[]) {
    if (this.sessions.has(sessionId)) this.removeSession(sessionId);
    // Counted before the entry exists, uncounted after it is gone: no event falls in between.
    this.sessions.set(sessionId, kinds);
    this.countRecorders(kinds);
    const key = new BigUint64Array([sessionId]);
    const ret = libbpf().bpf_map_update_elem(this.sessionsFd, key, encodeSessionValue(kinds), 0);
    check(ret, "cannot register the session with the kernel");
  }

  /** What the kernel could not deliver so far for a session, and what it left out as configured, per kind. */
  counts(sessionId: bigint): SessionCounts {
    const value = new Uint8Array(SESSION_VALUE_SIZE);
    const ret = libbpf().bpf_map_lookup_elem(this.sessionsFd, new BigUint64Array([sessionId]), value);
    if (ret < 0) return { lost: noLoss(), filtered: noLoss() };
    return decodeSessionValue(value);
  }

  removeSession(sessionId: bigint) {
    libbpf().bpf_map_delete_elem(this.sessionsFd, new BigUint64Array([sessionId]));
    const kinds = this.sessions.get(sessionId);
    this.sessions.delete(sessionId);
    if (kinds) this.countRecorders(kinds);
  }

  /** Sets the kernel's count of the sessions recording each of `kinds`. */
  private countRecorders(kinds: readonly EventKind[]) {
    const all = [...this.sessions.values()].flat();
    for (const kind of new Set(kinds)) {
      const key = new Uint32Array([kindNamed(kind).index]);
      const count = new Uint32Array([all.filter((k) => k === kind).length]);
      check(libbpf().bpf_map_update_elem(this.recordingFd, key, count, 0), "cannot count the sessions of a kind");
    }
  }

  close() {
    const bpf = libbpf();
    for (const link of this.links) bpf.bpf_link__destroy(link);
    if (this.obj) bpf.bpf_object__close(this.obj);
    this.links = [];
    this.obj = null;
  }
}

/** Walks a libbpf iterator (next(obj, prev) until NULL). */
function* walk(obj: Pointer, next: (obj: Pointer, prev: Pointer | null) => unknown): Generator<Pointer> {
  for (let item = next(obj, null) as Pointer | null; item; item = next(obj, item) as Pointer | null) yield item;
}

const maps = (obj: Pointer) => walk(obj, libbpf().bpf_object__next_map);
const programs = (obj: Pointer) => walk(obj, libbpf().bpf_object__next_program);

/** Session cgroups deeper than this are not found by the programs (ESR_SESSION_LEVELS of bpf/esr.h). */
export const SESSION_LEVELS = 16;

/** Fills bpf/esr.h's struct esr_load_config. */
function setLoadConfig(
  map: Pointer,
  sessionLevels: readonly number[],
  ancestorHelper: boolean,
  ignorePathPrefixes: readonly string[],
) {
  const deepest = Math.max(...sessionLevels);
  if (deepest >= SESSION_LEVELS || sessionLevels.some((l) => !Number.isInteger(l) || l < 1))
    throw new EsrError(
      `session cgroups at depth ${deepest} below the cgroup2 root cannot be recorded (at most ${SESSION_LEVELS - 1}): shorten root_path`,
    );
  if (ignorePathPrefixes.length > DISK_IGNORE_PREFIXES)
    throw new EsrError(`at most ${DISK_IGNORE_PREFIXES} ignored path prefixes, got ${ignorePathPrefixes.length}`);
  const size = new BigUint64Array(1);
  const data = checkPtr(libbpf().bpf_map__initial_value(map, size), "cannot configure the BPF programs");
  if (size[0]! < BigInt(esr_load_config.sizeof))
    throw new EsrError("BPF object has no room for its load configuration");
  const bytes = new Uint8Array(toArrayBuffer(data, 0, esr_load_config.sizeof));
  const config = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const L = esr_load_config;
  config.setUint32(L.session_levels.offset, sessionLevels.reduce((mask, level) => mask | (1 << level), 0) >>> 0, true);
  config.setUint32(L.ancestor_helper.offset, ancestorHelper ? 1 : 0, true);
  config.setUint32(L.disk_ignore_count.offset, ignorePathPrefixes.length, true);
  bytes.fill(0, L.disk_ignore.offset, L.disk_ignore.offset + L.disk_ignore.size);
  for (const [i, path] of ignorePathPrefixes.entries()) {
    const problem = ignoredPrefixProblem(path);
    if (problem) throw new EsrError(`ignored path prefix ${JSON.stringify(path)}: ${problem}`);
    const { components, subtree } = encodeIgnoredPrefix(path);
    const at = L.disk_ignore.offset + i * esr_ignore_prefix.sizeof;
    config.setUint32(at + esr_ignore_prefix.len.offset, components.length, true);
    config.setUint32(at + esr_ignore_prefix.subtree.offset, subtree ? 1 : 0, true);
    bytes.set(components, at + esr_ignore_prefix.components.offset);
  }
}

const BPF_PROG_TYPE_RAW_TRACEPOINT = 17;
const BPF_FUNC_get_current_ancestor_cgroup_id = 123; // Linux 5.14 on, or a backport

const BPF_FUNC_get_current_task_btf = 158; // Linux 5.11 on

/**
 * The ways a program can read the kernel's objects (bpf/esr.h enum esr_reads), slowest first, and
 * the name suffix of a program's twin built for each: `helper` works everywhere, `task` reads the
 * current task with plain loads (bpf_get_current_task_btf, Linux 5.11 on), `cast` a file and its
 * path too (the bpf_rdonly_cast kfunc, Linux 6.2 on).
 */
const READS = [
  { reads: "helper", suffix: "" },
  { reads: "task", suffix: "_typed" },
  { reads: "cast", suffix: "_cast" },
] as const;
export type KernelReads = (typeof READS)[number]["reads"];

/** The cheapest way this kernel lets programs read its objects: asked from the kernel, never guessed from its version. */
function cheapestReads(): KernelReads {
  if (!helperAllowed(BPF_FUNC_get_current_task_btf)) return "helper";
  return kernelHasFunction("bpf_rdonly_cast") ? "cast" : "task";
}

/**
 * Of each program's twins (`x`, `x_typed`, `x_cast`), the one to load: that of `reads`, or the
 * next slower one the program has. A program without twins is its own.
 */
export function twinsToLoad(names: readonly string[], reads: KernelReads): Set<string> {
  const rank = READS.findIndex((r) => r.reads === reads);
  const baseOf = (name: string) => {
    const twin = READS.find((r) => r.suffix && name.endsWith(r.suffix));
    return twin ? name.slice(0, -twin.suffix.length) : name;
  };
  const chosen = new Set<string>();
  for (const base of new Set(names.map(baseOf))) {
    const twin = READS.slice(0, rank + 1)
      .reverse()
      .map((r) => base + r.suffix)
      .find((name) => names.includes(name));
    if (twin) chosen.add(twin);
  }
  return chosen;
}

/**
 * Whether the kernel's BTF names a function (a kfunc such as bpf_rdonly_cast): its name among the
 * BTF strings, which hold only the names of the kernel's types, functions and their members. No
 * BTF, no kfuncs.
 */
function kernelHasFunction(name: string): boolean {
  try {
    return readFileSync("/sys/kernel/btf/vmlinux").includes(`\0${name}\0`);
  } catch {
    return false;
  }
}

/**
 * Whether tracing programs may call a helper: the kernel is asked by loading a probe program,
 * never guessed from its version. Raw tracepoint and tp_btf programs share one helper list. When
 * the probe itself cannot run, the programs take the slower path that works everywhere.
 */
function helperAllowed(helper: number): boolean {
  return libbpf().libbpf_probe_bpf_helper(BPF_PROG_TYPE_RAW_TRACEPOINT, helper, null) === 1;
}

/** A program's event kind: the prefix of its name (scripts/build.ts checks every program has one). */
function kindOf(program: string): EventKind {
  const kind = EVENT_KINDS.find((k) => program.startsWith(`${k}_`));
  if (!kind) throw new EsrError(`BPF program ${program} belongs to no event kind`);
  return kind;
}

function loadError(kinds: readonly EventKind[], err: number): EsrError {
  // The verifier refuses a program with EACCES too: its log tells the two apart.
  const refused = refusedProgram();
  if ((err === 1 || err === 13) && !refused)
    return new EsrError(`cannot load the BPF programs: ${strerror(err)} (esr must run as root, with BPF allowed)`);
  if (refused) {
    const kind = EVENT_KINDS.find((k) => refused.name.startsWith(`${k}_`));
    return new EsrError(
      `this kernel (${release()}) refused esr's BPF program ${refused.name}${kind ? ` (${kind} events)` : ""}: ${refused.reason}; esr cannot record here`,
    );
  }
  const detail = libbpfLogSummary();
  return new EsrError(
    `cannot load the BPF programs for ${kinds.join(", ")} events: ${strerror(err)}${detail ? `; libbpf: ${detail}` : ""}`,
  );
}
