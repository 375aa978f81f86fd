/**
 * The kernel side of a recorder: one BPF object per event kind, loaded from the executable,
 * sharing one `sessions` map, attached once. Sessions come and go as entries of that map, so adding
 * a session costs a map update, never a program load (SPEC §7).
 */
import { readFileSync } from "node:fs";
import { toArrayBuffer, type Pointer } from "bun:ffi";
import type { EventKind } from "./config.ts";
import { bpfObjects } from "./embedded.ts";
import { EsrError } from "./errors.ts";
import { check, checkPtr, clearLibbpfLog, cString, libbpf, libbpfLogSummary } from "./libbpf.ts";
import { strerror } from "./libc.ts";
import { SESSION_VALUE_SIZE, decodeSessionValue, encodeSessionValue, type LostCounts } from "./kernel-events.ts";

export interface ProbeOptions {
  /** Kinds whose programs are loaded; a session can record only those. */
  kinds: EventKind[];
  /** Depth of the session slices below the cgroup2 root. */
  sliceLevel: number;
  /** Ring buffer size per kind, in pages (Teleport's *_buffer_size). */
  bufferPages: Record<EventKind, number>;
  /** Open fd of the cgroup that holds every session slice, for programs attached to a cgroup. */
  slicesParentFd: number;
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

export class ProbeSet {
  private constructor(
    private readonly objects: Pointer[],
    private links: Pointer[],
    readonly sessionsFd: number,
    readonly ringFds: Map<EventKind, number>,
    readonly attached: AttachedProgram[],
  ) {}

  static load(opts: ProbeOptions): ProbeSet {
    const bpf = libbpf();
    const cpus = check(bpf.libbpf_num_possible_cpus(), "cannot count CPUs");
    const objects: Pointer[] = [];
    const links: Pointer[] = [];
    const ringFds = new Map<EventKind, number>();
    const attached: AttachedProgram[] = [];
    let sessionsFd = -1;
    try {
      for (const kind of opts.kinds) {
        const path = bpfObjects[kind];
        if (!path) throw new EsrError(`${kind} events are not built into this esr`);
        const image = readFileSync(path);
        clearLibbpfLog();
        const obj = checkPtr(bpf.bpf_object__open_mem(image, image.length, null), `cannot open the ${kind} BPF object`);
        objects.push(obj);
        for (const map of maps(obj)) {
          const name = cString(bpf.bpf_map__name(map));
          if (name === "sessions" && sessionsFd >= 0) check(bpf.bpf_map__reuse_fd(map, sessionsFd), "cannot share the sessions map");
          else if (name === `${kind}_events`) check(bpf.bpf_map__set_max_entries(map, ringBytes(opts.bufferPages[kind], cpus)), `cannot size the ${kind} ring buffer`);
          else if (name === "per_cpu_scratch") check(bpf.bpf_map__set_max_entries(map, cpus), "cannot size the scratch map");
          else if (name.endsWith(".rodata.esr")) setSliceLevel(map, opts.sliceLevel);
        }
        const loadErr = bpf.bpf_object__load(obj);
        if (loadErr < 0) throw loadError(kind, -loadErr);
        for (const map of maps(obj)) {
          const name = cString(bpf.bpf_map__name(map));
          if (name === "sessions") sessionsFd = bpf.bpf_map__fd(map);
          if (name === `${kind}_events`) ringFds.set(kind, bpf.bpf_map__fd(map));
        }
        for (const prog of programs(obj)) {
          links.push(attach(prog, opts.slicesParentFd));
          attached.push({ kind, name: cString(libbpf().bpf_program__name(prog)), section: cString(libbpf().bpf_program__section_name(prog)) });
        }
      }
    } catch (err) {
      new ProbeSet(objects, links, sessionsFd, ringFds, attached).close();
      throw err;
    }
    return new ProbeSet(objects, links, sessionsFd, ringFds, attached);
  }

  addSession(sessionId: bigint, kinds: EventKind[]) {
    const key = new BigUint64Array([sessionId]);
    const ret = libbpf().bpf_map_update_elem(this.sessionsFd, key, encodeSessionValue(kinds), 0);
    check(ret, "cannot register the session with the kernel");
  }

  /** What the kernel could not deliver so far for a session, per kind. */
  lost(sessionId: bigint): LostCounts {
    const value = new Uint8Array(SESSION_VALUE_SIZE);
    const ret = libbpf().bpf_map_lookup_elem(this.sessionsFd, new BigUint64Array([sessionId]), value);
    if (ret < 0) return { command: 0, disk: 0, network: 0 };
    return decodeSessionValue(value);
  }

  removeSession(sessionId: bigint) {
    libbpf().bpf_map_delete_elem(this.sessionsFd, new BigUint64Array([sessionId]));
  }

  close() {
    const bpf = libbpf();
    for (const link of this.links) bpf.bpf_link__destroy(link);
    for (const obj of this.objects) bpf.bpf_object__close(obj);
    this.links = [];
    this.objects.length = 0;
  }
}

/** Walks a libbpf iterator (next(obj, prev) until NULL). */
function* walk(obj: Pointer, next: (obj: Pointer, prev: Pointer | null) => unknown): Generator<Pointer> {
  for (let item = next(obj, null) as Pointer | null; item; item = next(obj, item) as Pointer | null) yield item;
}

const maps = (obj: Pointer) => walk(obj, libbpf().bpf_object__next_map);
const programs = (obj: Pointer) => walk(obj, libbpf().bpf_object__next_program);

function setSliceLevel(map: Pointer, level: number) {
  const size = new BigUint64Array(1);
  const data = checkPtr(libbpf().bpf_map__initial_value(map, size), "cannot set the slice level");
  if (size[0]! < 4n) throw new EsrError("BPF object has no room for the slice level");
  new DataView(toArrayBuffer(data, 0, 4)).setUint32(0, level, true);
}

function attach(prog: Pointer, slicesParentFd: number): Pointer {
  const bpf = libbpf();
  const section = cString(bpf.bpf_program__section_name(prog));
  const name = cString(bpf.bpf_program__name(prog));
  const link = section.startsWith("cgroup/") ? bpf.bpf_program__attach_cgroup(prog, slicesParentFd) : bpf.bpf_program__attach(prog);
  return checkPtr(link, `cannot attach BPF program ${name} (${section})`);
}

function loadError(kind: EventKind, err: number): EsrError {
  const why = strerror(err);
  const detail = libbpfLogSummary();
  if (err === 1 || err === 13) {
    return new EsrError(`cannot load the ${kind} BPF programs: ${why} (esr must run as root, with BPF allowed)${detail ? `; libbpf: ${detail}` : ""}`);
  }
  return new EsrError(`cannot load the ${kind} BPF programs: ${why}${detail ? `; libbpf: ${detail}` : ""}`);
}
