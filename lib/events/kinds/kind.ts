/**
 * What one enhanced event kind is, from the kernel's ring buffer to the audit event it becomes: the
 * one definition a kind needs besides its BPF program (bpf/<name>.bpf.c). The table of all kinds is
 * lib/events/kinds/index.ts. Pure code: the browser-side UI reads these types too.
 */
import type { SessionIdentity } from "../audit-events.ts";
import { esr_event_header } from "./kernel-layout.generated.ts";

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
