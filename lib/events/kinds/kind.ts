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

export function decodeHeader(view: DataView, bytes: Uint8Array): KernelEventHeader {
  const h = esr_event_header;
  return {
    sessionId: view.getBigUint64(h.session_id.offset, true),
    cgroupId: view.getBigUint64(h.cgroup_id.offset, true),
    ktimeNs: view.getBigUint64(h.ktime_ns.offset, true),
    pid: view.getUint32(h.pid.offset, true),
    auditSessionId: view.getUint32(h.audit_session_id.offset, true),
    comm: cString(bytes, h.comm.offset, h.comm.offset + h.comm.size),
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
  const fsType = cString(bytes, at + esr_file.fs_type.offset, at + esr_file.fs_type.offset + esr_file.fs_type.size);
  const pathEnd = Math.min(pathStart + view.getUint32(at + esr_file.path_len.offset, true), bytes.length);
  const components = utf8Text(bytes, pathStart, pathEnd).split("\0");
  if (components[components.length - 1] === "") components.pop();
  const truncated = (flags & F.ESR_FILE_TRUNCATED) !== 0;
  const anonymous = (flags & F.ESR_FILE_ANONYMOUS) !== 0;
  const path = anonymous ? anonymousName(fsType, components[0] ?? "", ino) : pathOf(components, truncated);
  return {
    path,
    truncated,
    deleted: (flags & F.ESR_FILE_DELETED) !== 0,
    anonymous,
    outsideNamespace: (flags & F.ESR_FILE_OUTSIDE_NAMESPACE) !== 0,
    dev: `${dev >>> 20}:${dev & 0xfffff}`,
    ino,
    fsType,
  };
}

/**
 * Leaf-first components as a path. Cut short, it lacks its leading directories: then it is left
 * relative rather than made up.
 */
function pathOf(leafFirst: string[], truncated: boolean): string {
  return `${truncated ? "" : "/"}${[...leafFirst].reverse().join("/")}`;
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
