/**
 * The libbpf binding: only the calls esr uses, over bun:ffi. libbpf (with libelf and zlib linked
 * in) comes from inside the esr executable and is loaded from a memory file, so the host needs no
 * libbpf package.
 *
 * libbpf 1.x conventions: calls returning int give a negative errno on failure; calls returning a
 * pointer give NULL and set errno.
 */
import { dlopen, JSCallback, type Pointer } from "bun:ffi";
import { closeSync, readFileSync, writeSync } from "node:fs";
import { libbpfLibrary } from "./embedded.ts";
import { EsrError } from "../errors.ts";
import { errno, memfdCreate, strerror, vsnprintf } from "../sys/libc.ts";

/**
 * Loads the library held in the executable by copying it to an anonymous memory file and
 * dlopen'ing its /proc/self/fd path (glibc has no way to load a library from memory).
 */
function openEmbedded<T>(soname: string, path: string, open: (fdPath: string) => T): T {
  const bytes = readFileSync(path);
  const fd = memfdCreate(soname);
  if (fd < 0) throw new EsrError(`cannot load ${soname}: memfd_create failed (${strerror(errno())})`);
  try {
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off);
    return open(`/proc/self/fd/${fd}`);
  } catch (err) {
    throw new EsrError(`cannot load the embedded ${soname}: ${err instanceof Error ? err.message : err}`);
  } finally {
    closeSync(fd);
  }
}

const libbpfSymbols = {
  libbpf_set_print: { args: ["function"], returns: "ptr" },
  libbpf_num_possible_cpus: { args: [], returns: "i32" },
  libbpf_probe_bpf_helper: { args: ["u32", "u32", "ptr"], returns: "i32" },
  libbpf_probe_bpf_map_type: { args: ["u32", "ptr"], returns: "i32" },
  bpf_object__open_mem: { args: ["ptr", "u64", "ptr"], returns: "ptr" },
  bpf_object__load: { args: ["ptr"], returns: "i32" },
  bpf_object__close: { args: ["ptr"], returns: "void" },
  bpf_object__next_map: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_object__next_program: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_map__name: { args: ["ptr"], returns: "cstring" },
  bpf_map__fd: { args: ["ptr"], returns: "i32" },
  bpf_map__set_max_entries: { args: ["ptr", "u32"], returns: "i32" },
  bpf_map__initial_value: { args: ["ptr", "ptr"], returns: "ptr" },
  bpf_program__name: { args: ["ptr"], returns: "cstring" },
  bpf_program__section_name: { args: ["ptr"], returns: "cstring" },
  bpf_program__attach: { args: ["ptr"], returns: "ptr" },
  bpf_program__set_autoload: { args: ["ptr", "bool"], returns: "i32" },
  bpf_link__destroy: { args: ["ptr"], returns: "i32" },
  bpf_map_update_elem: { args: ["i32", "ptr", "ptr", "u64"], returns: "i32" },
  bpf_map_lookup_elem: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  bpf_map_delete_elem: { args: ["i32", "ptr"], returns: "i32" },
} as const;

type Libbpf = ReturnType<typeof dlopen<typeof libbpfSymbols>>["symbols"];

let loaded: Libbpf | undefined;
/** The last lines libbpf logged (verifier output, CO-RE failures): shown when a load fails. */
const logTail: string[] = [];
const LOG_TAIL_LINES = 40;
// A refused program's whole verifier log arrives in one call; its reason is at the end.
const logBuffer = new Uint8Array(64 * 1024);

// libbpf calls this synchronously, inside whichever libbpf call logs; it must outlive every call.
const printCallback = new JSCallback(
  (level: number, format: Pointer, args: Pointer) => {
    const n = vsnprintf(logBuffer, logBuffer.length, format, args);
    const line = new TextDecoder()
      .decode(logBuffer.subarray(0, Math.min(Math.max(n, 0), logBuffer.length - 1)))
      .trimEnd();
    if (process.env.ESR_DEBUG) process.stderr.write(`libbpf: ${line}\n`);
    for (const part of line.split("\n")) {
      if (level <= 1 || logTail.length < LOG_TAIL_LINES) logTail.push(part);
      if (logTail.length > LOG_TAIL_LINES) logTail.shift();
    }
    return 0;
  },
  { args: ["i32", "ptr", "ptr"], returns: "i32" },
);

/** libbpf, loaded once from the executable. */
export function libbpf(): Libbpf {
  if (loaded) return loaded;
  const { soname, path } = libbpfLibrary;
  loaded = openEmbedded(soname, path, (fdPath) => dlopen(fdPath, libbpfSymbols)).symbols;
  loaded.libbpf_set_print(printCallback.ptr);
  return loaded;
}

const BPF_MAP_TYPE_RINGBUF = 27;
export const NO_RING_BUFFERS =
  "this kernel cannot create BPF ring buffers (BPF_MAP_TYPE_RINGBUF, Linux 5.8+): boot a newer kernel";

/** Asks the kernel (it needs root): a distribution kernel may have ring buffers backported, or not. */
export function ringBuffersAvailable(): boolean {
  return libbpf().libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, null) === 1;
}

/** The most recent libbpf warnings, one line, for an error message. */
export function libbpfLogSummary(): string {
  const interesting = logTail.filter((l) => /error|fail|invalid|denied|not found|unknown/i.test(l));
  return (interesting.length ? interesting : logTail).slice(-3).join(" | ");
}

/**
 * The program the kernel refused in the last load, and the verifier's reason (the last line of
 * its log before the statistics), from what libbpf logged.
 */
export function refusedProgram(): { name: string; reason: string } | undefined {
  const failed = logTail.findLastIndex((l) => /prog '\w+': BPF program load failed/.test(l));
  if (failed < 0) return undefined;
  const name = /prog '(\w+)'/.exec(logTail[failed]!)![1]!;
  const end = logTail.findIndex((l, i) => i > failed && l.includes("-- END PROG LOAD LOG --"));
  const verifier = logTail.slice(failed + 1, end < 0 ? undefined : end);
  const reason = verifier.findLast(
    (l) => l.trim() && !/BEGIN PROG LOAD LOG|^verification time|^stack depth|^processed \d+ insns/.test(l),
  );
  return { name, reason: (reason ?? logTail[failed]!).trim() };
}

export function clearLibbpfLog() {
  logTail.length = 0;
}

/** Text of a `cstring` return (bun:ffi hands back a CString, or null). */
export function cString(value: unknown): string {
  return value ? String(value) : "";
}

/** Throws an EsrError for a negative libbpf return code; returns it otherwise. */
export function check(ret: number, what: string): number {
  if (ret < 0) throw new EsrError(`${what}: ${strerror(-ret)}`);
  return ret;
}

/** Throws an EsrError for a NULL libbpf pointer, with errno. */
export function checkPtr(p: unknown, what: string): Pointer {
  if (!p) throw new EsrError(`${what}: ${strerror(errno())}`);
  return p as Pointer;
}
