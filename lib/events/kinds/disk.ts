/** Disk events: every open(2), openat(2), openat2(2) and creat(2) of a session's processes (bpf/disk.bpf.c). */
import {
  commonFields,
  pathFields,
  type CommonFields,
  type ProcessFields,
  type SessionIdentity,
} from "../audit-events.ts";
import { decodeHeader, eventView, utf8Text, type EventKindSpec, type KernelEventHeader } from "./kind.ts";
import { esr_kind, esr_open_event, esr_open_flag } from "./kernel-layout.generated.ts";

/** struct esr_open_event */
export interface KernelOpen extends KernelEventHeader {
  /** fd, or -errno */
  returnCode: number;
  /** the open flags as passed (creat(2): O_CREAT|O_WRONLY|O_TRUNC) */
  openFlags: number;
  /** as passed: relative paths stay relative */
  path: string;
  /** the path was longer than ESR_PATH_MAX bytes; `path` holds the first ESR_PATH_MAX */
  pathTruncated: boolean;
}

export interface SessionDiskEvent extends CommonFields<"session.disk", "T4001I">, ProcessFields {
  path: string;
  path_truncated?: true;
  /** the open flags as passed */
  flags: number;
  /** fd, or -errno */
  return_code: number;
}

const L = esr_open_event;

function decode(bytes: Uint8Array): KernelOpen {
  const view = eventView(bytes);
  const pathEnd = Math.min(L.path.offset + view.getUint32(L.path_len.offset, true), bytes.length);
  return {
    ...decodeHeader(view, bytes),
    returnCode: view.getInt32(L.return_code.offset, true),
    pathTruncated: (view.getUint32(L.flags.offset, true) & esr_open_flag.ESR_OPEN_PATH_TRUNCATED) !== 0,
    openFlags: Number(view.getBigUint64(L.open_flags.offset, true)),
    path: utf8Text(bytes, L.path.offset, pathEnd),
  };
}

function build(id: SessionIdentity, ei: number, rec: KernelOpen, time: Date): SessionDiskEvent {
  return {
    ...commonFields(id, "session.disk", "T4001I", ei, time),
    audit_session_id: rec.auditSessionId,
    cgroup_id: Number(rec.cgroupId),
    flags: rec.openFlags,
    ...pathFields(rec.path, rec.pathTruncated),
    pid: rec.pid,
    program: rec.comm,
    return_code: rec.returnCode,
  };
}

export const diskKind = {
  name: "disk",
  index: esr_kind.ESR_KIND_DISK,
  ring: "disk_events",
  bufferSizeKey: "disk_buffer_size",
  defaultBufferPages: 128,
  event: "session.disk",
  code: "T4001I",
  decode,
  build,
} as const satisfies EventKindSpec<"disk", KernelOpen, SessionDiskEvent>;
