/** Disk events: every open(2), openat(2), openat2(2) and creat(2) of a session's processes (bpf/disk.bpf.c). */
import {
  addFileFields,
  addPathFields,
  commonFields,
  fileKeys,
  type CommonFields,
  type FileFields,
  type PathFields,
  type ProcessFields,
  type SessionIdentity,
} from "../audit-events.ts";
import {
  decodeFile,
  decodeHeader,
  eventView,
  filePathBytes,
  utf8Text,
  type EventKindSpec,
  type KernelEventHeader,
  type KernelFile,
} from "./kind.ts";
import { esr_kind, esr_open_event, esr_open_flag } from "./kernel-layout.generated.ts";

/** struct esr_open_event */
export interface KernelOpen extends KernelEventHeader {
  /** fd, or -errno */
  returnCode: number;
  /** the open flags as passed (creat(2): O_CREAT|O_WRONLY|O_TRUNC) */
  openFlags: number;
  /** the file the returned fd refers to; undefined when the open failed */
  file?: KernelFile;
  /** the path as passed, read back from the caller's memory at syscall exit: relative paths stay relative */
  requestedPath: string;
  /** the requested path was longer than ESR_PATH_MAX bytes; `requestedPath` holds the first ESR_PATH_MAX */
  requestedPathTruncated: boolean;
}

export type SessionDiskEvent = CommonFields<"session.disk", "T4001I"> &
  ProcessFields &
  PathFields<"path"> &
  Partial<FileFields<"path", "">> &
  Partial<PathFields<"requested_path">> & {
    /** the open flags as passed */
    flags: number;
    /** fd, or -errno */
    return_code: number;
    /**
     * esr's: the fields read from the caller's memory rather than from the kernel's objects: `path`
     * of a failed open (there is no file), `requested_path` of one that did not name the file opened
     * in so many words.
     */
    from_caller_memory?: ("path" | "requested_path")[];
  };

const L = esr_open_event;

// Both run for every open of an open storm: fields are set on one object, not spread from several.
function decode(bytes: Uint8Array): KernelOpen {
  const view = eventView(bytes);
  const flags = view.getUint32(L.flags.offset, true);
  const requestedStart = Math.min(L.data.offset + filePathBytes(view, L.file.offset), bytes.length);
  const requestedEnd = Math.min(requestedStart + view.getUint32(L.path_len.offset, true), bytes.length);
  const rec = decodeHeader(view, bytes) as KernelOpen;
  rec.returnCode = view.getInt32(L.return_code.offset, true);
  rec.openFlags = Number(view.getBigUint64(L.open_flags.offset, true));
  if ((flags & esr_open_flag.ESR_OPEN_RESOLVED) !== 0) rec.file = decodeFile(view, bytes, L.file.offset, L.data.offset);
  rec.requestedPath = utf8Text(bytes, requestedStart, requestedEnd);
  rec.requestedPathTruncated = (flags & esr_open_flag.ESR_OPEN_PATH_TRUNCATED) !== 0;
  return rec;
}

/** `path` is what was opened; what the caller asked for is kept beside it when it says something else. */
function build(id: SessionIdentity, ei: number, rec: KernelOpen, time: Date): SessionDiskEvent {
  const { file, requestedPath, requestedPathTruncated } = rec;
  const requestedDiffers = file !== undefined && (requestedPath !== file.path || requestedPathTruncated);
  const event = commonFields(id, "session.disk", "T4001I", ei, time) as SessionDiskEvent;
  event.audit_session_id = rec.auditSessionId;
  event.cgroup_id = Number(rec.cgroupId);
  event.flags = rec.openFlags;
  if (file) addFileFields(event, PATH_KEYS, file);
  else addPathFields(event, PATH_KEYS, requestedPath, requestedPathTruncated);
  if (requestedDiffers) addPathFields(event, REQUESTED_KEYS, requestedPath, requestedPathTruncated);
  if (!file) event.from_caller_memory = ["path"];
  else if (requestedDiffers) event.from_caller_memory = ["requested_path"];
  event.pid = rec.pid;
  event.program = rec.comm;
  event.return_code = rec.returnCode;
  return event;
}

const PATH_KEYS = fileKeys("path", "");
const REQUESTED_KEYS = fileKeys("requested_path", "");

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
