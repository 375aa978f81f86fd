/**
 * What one enhanced event kind is, from the kernel's ring buffer to the audit event it becomes: the
 * one definition a kind needs besides its BPF program (bpf/<name>.bpf.c). The table of all kinds is
 * lib/events/kinds/index.ts. Pure code: the browser-side UI reads these types too.
 */
import type { SessionIdentity } from "../audit-events.ts";
import { esr_event_header, esr_file, esr_file_flag } from "./kernel-layout.generated.ts";

export interface EventKindSpec<Name extends string, Record extends KernelEventHeader, Event extends { event: string }> {
  /** The kind's name in configuration (`enhanced_recording: [command, …]`, `--events`) and file names. */
  name: Name;
  /** `enum esr_kind`: its bit in the session map's `kinds`, its slot in `lost[]`. */
  index: number;
  /** The BPF ring buffer map the kind's programs write to. */
  ring: string;
  /** ssh_service.enhanced_recording key of its ring size, in pages (Teleport's), and the default. */
  bufferSizeKey: string;
  defaultBufferPages: number;
  /** The audit event it becomes, and Teleport's code for it. */
  event: Event["event"];
  code: string;
  /** One ring buffer record → what the kernel reported. */
  decode(bytes: Uint8Array): Record;
  /** What the kernel reported → the audit event, numbered `ei` and dated `time`. */
  build(id: SessionIdentity, ei: number, record: Record, time: Date): Event;
  /** What the recorder adds from its own view of the host, as soon as a record is read. */
  checkOnHost?(record: Record, host: HostView): Record;
}

/** The recorder's own namespaces and files, to set a record's beside (lib/kernel/host-view.ts is the real one). */
export interface HostView {
  /** inode numbers of the recorder's mount and user namespaces */
  mountNs: number;
  userNs: number;
  /** the device ("MAJOR:MINOR") and inode of the file at `path` in the recorder's namespace, if any */
  fileAt(path: string): { dev: string; ino: bigint } | undefined;
}

/** struct esr_event_header: the start of every ring buffer record. */
export interface KernelEventHeader {
  /** cgroup id of the session slice (its key in the kernel's session map) */
  sessionId: bigint;
  /** the task's own cgroup id: the slice or a child of it */
  cgroupId: bigint;
  /** CLOCK_BOOTTIME when the kernel saw it */
  ktimeNs: bigint;
  pid: number;
  /** the task's audit session id (auditd's ses=): 4294967295 unset, 0 on a kernel without audit */
  auditSessionId: number;
  comm: string;
}

const utf8 = new TextDecoder();

/** A NUL-terminated string in bytes[start, end). */
export function cString(bytes: Uint8Array, start: number, end: number): string {
  const nul = bytes.indexOf(0, start);
  return utf8.decode(bytes.subarray(start, nul >= 0 && nul < end ? nul : end));
}

export function utf8Text(bytes: Uint8Array, start: number, end: number): string {
  return utf8.decode(bytes.subarray(start, end));
}

export function eventView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A short field that most records repeat (a storm's comm, a filesystem's name): decoded once, and
 * again only when its bytes differ from the last record's. Decoding costs more than comparing.
 */
class RepeatedText {
  private readonly last: Uint8Array;
  private length = -1;
  private text = "";

  constructor(size: number) {
    this.last = new Uint8Array(size);
  }

  /** {@link cString} of bytes[start, end), at most `size` bytes. */
  cString(bytes: Uint8Array, start: number, end: number): string {
    let stop = start;
    while (stop < end && bytes[stop] !== 0) stop++;
    const length = stop - start;
    let same = length === this.length;
    for (let i = 0; same && i < length; i++) same = bytes[start + i] === this.last[i];
    if (same) return this.text;
    this.last.set(bytes.subarray(start, stop));
    this.length = length;
    this.text = utf8.decode(bytes.subarray(start, stop));
    return this.text;
  }
}

const lastComm = new RepeatedText(esr_event_header.comm.size);
const lastFsType = new RepeatedText(esr_file.fs_type.size);

/** The header's fields, on a new object that a kind's decoder adds its own fields to. */
export function decodeHeader(view: DataView, bytes: Uint8Array): KernelEventHeader {
  const h = esr_event_header;
  return {
    sessionId: view.getBigUint64(h.session_id.offset, true),
    cgroupId: view.getBigUint64(h.cgroup_id.offset, true),
    ktimeNs: view.getBigUint64(h.ktime_ns.offset, true),
    pid: view.getUint32(h.pid.offset, true),
    auditSessionId: view.getUint32(h.audit_session_id.offset, true),
    comm: lastComm.cString(bytes, h.comm.offset, h.comm.offset + h.comm.size),
  };
}

/** struct esr_file: a file as the kernel holds it (an open's fd, an exec's bprm->file), never the caller's words. */
export interface KernelFile {
  /**
   * Absolute from the root of the task's mount namespace (symlinks, relative names, dirfds,
   * /proc/self/fd/N and chroots resolved); for an anonymous file see anonymousName; relative (its
   * leading directories missing) when cut at the walk's bound.
   */
  path: string;
  truncated: boolean;
  deleted: boolean;
  anonymous: boolean;
  /** its mount is not in the task's mount namespace: `path` is from the root of its filesystem */
  outsideNamespace: boolean;
  /** "MAJOR:MINOR", as ls -l and /proc/PID/mountinfo write it */
  dev: string;
  ino: bigint;
  fsType: string;
}

/** The esr_file at `at` in bytes, its path components (leaf first, NUL-terminated) at `pathStart`. */
export function decodeFile(view: DataView, bytes: Uint8Array, at: number, pathStart: number): KernelFile {
  const F = esr_file_flag;
  const flags = view.getUint32(at + esr_file.flags.offset, true);
  const dev = view.getUint32(at + esr_file.dev.offset, true);
  const ino = view.getBigUint64(at + esr_file.ino.offset, true);
  const fsType = lastFsType.cString(
    bytes,
    at + esr_file.fs_type.offset,
    at + esr_file.fs_type.offset + esr_file.fs_type.size,
  );
  const pathEnd = Math.min(pathStart + view.getUint32(at + esr_file.path_len.offset, true), bytes.length);
  const truncated = (flags & F.ESR_FILE_TRUNCATED) !== 0;
  const anonymous = (flags & F.ESR_FILE_ANONYMOUS) !== 0;
  const path = anonymous
    ? anonymousName(fsType, cString(bytes, pathStart, pathEnd), ino)
    : pathOf(bytes, pathStart, pathEnd, truncated);
  return {
    path,
    truncated,
    deleted: (flags & F.ESR_FILE_DELETED) !== 0,
    anonymous,
    outsideNamespace: (flags & F.ESR_FILE_OUTSIDE_NAMESPACE) !== 0,
    dev: deviceName(dev),
    ino,
    fsType,
  };
}

let lastDev = -1;
let lastDevName = "";

/** "MAJOR:MINOR" of the kernel's dev_t; most records repeat the last one's. */
function deviceName(dev: number): string {
  if (dev !== lastDev) {
    lastDev = dev;
    lastDevName = `${dev >>> 20}:${dev & 0xfffff}`;
  }
  return lastDevName;
}

/** Where a path is put together, components in reading order: one decode per path. */
let pathScratch = new Uint8Array(4096);

/**
 * The leaf-first, NUL-terminated components in bytes[start, end) as a path. Cut short, it lacks
 * its leading directories: then it is left relative rather than made up. Components are reordered
 * as bytes (a NUL never falls inside a UTF-8 sequence), then decoded once.
 */
function pathOf(bytes: Uint8Array, start: number, end: number, truncated: boolean): string {
  if (end > start && bytes[end - 1] === 0) end--;
  if (pathScratch.length < end - start + 1) pathScratch = new Uint8Array(2 * (end - start + 1));
  const out = pathScratch;
  let n = 0;
  if (!truncated) out[n++] = 0x2f;
  let componentEnd = end;
  for (let i = end - 1; i >= start - 1; i--) {
    if (i >= start && bytes[i] !== 0) continue;
    for (let j = i + 1; j < componentEnd; j++) out[n++] = bytes[j]!;
    if (i >= start) out[n++] = 0x2f;
    componentEnd = i;
  }
  return utf8.decode(out.subarray(0, n));
}

/**
 * A file with no directory entry, named as the kernel's d_dname would: its dentry holds only a part
 * of that name. pipefs and sockfs keep none ("pipe:[INO]"), anon_inodefs its kind
 * ("anon_inode:[eventfd]"), pseudo files of other filesystems (memfds) their own ("/memfd:NAME").
 */
function anonymousName(fsType: string, name: string, ino: bigint): string {
  if (!name) return `${fsType}:[${ino}]`;
  return fsType === "anon_inodefs" ? `anon_inode:${name}` : `/${name}`;
}

/** The path components' length of the esr_file at `at`. */
export function filePathBytes(view: DataView, at: number): number {
  return view.getUint32(at + esr_file.path_len.offset, true);
}
