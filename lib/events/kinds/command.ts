/**
 * Command events: every execve/execveat of a session's processes (bpf/command.bpf.c), successful
 * (read in the new image) or failed (read at syscall exit).
 */
import {
  ARGV_TRUNCATED_MARKER,
  commonFields,
  fileFields,
  pathFields,
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
  type HostView,
  type KernelEventHeader,
  type KernelFile,
} from "./kind.ts";
import { esr_exec_event, esr_exec_flag, esr_kind } from "./kernel-layout.generated.ts";

/** struct esr_exec_event */
export interface KernelExec extends KernelEventHeader {
  ppid: number;
  returnCode: number;
  /** the path as the exec call named it (bprm->filename: "/dev/fd/3" for an fd) */
  path: string;
  pathTruncated: boolean;
  /** argv[0] included */
  argv: string[];
  /** argv had more than ESR_ARGV_MAX bytes (or a failed exec more arguments than read) */
  argvTruncated: boolean;
  /** bytes of argv the process had */
  argvBytes: number;
  /** path and argv were read from the caller's memory at syscall exit (a failed exec), not from the kernel's copy */
  fromCallerMemory: boolean;
  /** the interpreter the kernel ran for a script or binfmt_misc file, if any (successful execs only) */
  interpreter?: string;
  interpreterTruncated: boolean;
  /** The file the kernel executed (bprm->file), as /proc/PID/exe names it. Successful execs only. */
  exe?: KernelFile;
  /** inode numbers of the task's mount and user namespaces */
  mountNs: number;
  userNs: number;
  /** set by checkOnHost */
  host?: ExecOnHost;
}

/** An exec beside the recorder's own namespaces and files. */
export interface ExecOnHost {
  otherMountNs: boolean;
  otherUserNs: boolean;
  /**
   * In another mount namespace, `exe` names a path there: whether the recorder's file at that path
   * is the one that ran (same device and inode), another one, or none. Unset in the recorder's own
   * namespace, where `exe` is the host's path.
   */
  exeOnHost?: ExeOnHost;
}

export type ExeOnHost = "same" | "different" | "missing";

export type SessionCommandEvent = CommonFields<"session.command", "T4000I"> &
  ProcessFields &
  PathFields<"path"> &
  Partial<FileFields<"exe", "exe_">> &
  Partial<PathFields<"interpreter">> & {
    ppid: number;
    /** the arguments without argv[0] */
    argv: string[];
    argv_truncated?: true;
    /** 0, or the negative errno of a failed exec */
    return_code: number;
    /** esr's: the fields read from the caller's memory rather than from the kernel's objects */
    from_caller_memory?: ("path" | "argv")[];
    /** esr's: inode numbers of the process's mount and user namespaces */
    mount_ns: number;
    user_ns: number;
    /** esr's: namespaces other than the recorder's */
    other_mount_ns?: true;
    other_user_ns?: true;
    /** esr's: in another mount namespace, what the recorder's file at `exe` is (ExecOnHost.exeOnHost) */
    exe_on_host?: ExeOnHost;
  };

const L = esr_exec_event;
const F = esr_exec_flag;

function decode(bytes: Uint8Array): KernelExec {
  const view = eventView(bytes);
  const u32 = (field: { offset: number }) => view.getUint32(field.offset, true);
  const pathLen = u32(L.path_len);
  const interpLen = u32(L.interp_len);
  const exeLen = filePathBytes(view, L.exe.offset);
  const argvLen = u32(L.argv_len);
  const flags = u32(L.flags);
  // data holds path, interpreter, exe components and argv, one after the other.
  const end = (at: number, len: number) => Math.min(at + len, bytes.length);
  const pathStart = L.data.offset;
  const interpStart = end(pathStart, pathLen);
  const exeStart = end(interpStart, interpLen);
  const argvStart = end(exeStart, exeLen);
  const argvEnd = end(argvStart, argvLen);
  const argv = utf8Text(bytes, argvStart, argvEnd).split("\0");
  // A complete block ends with a NUL, which leaves one empty string after the split.
  if (argv.length > 0 && argv[argv.length - 1] === "") argv.pop();
  return {
    ...decodeHeader(view, bytes),
    ppid: u32(L.ppid),
    returnCode: view.getInt32(L.return_code.offset, true),
    path: utf8Text(bytes, pathStart, interpStart),
    pathTruncated: (flags & F.ESR_EXEC_PATH_TRUNCATED) !== 0,
    argv,
    argvTruncated: (flags & F.ESR_EXEC_ARGV_TRUNCATED) !== 0,
    argvBytes: u32(L.argv_total),
    fromCallerMemory: (flags & F.ESR_EXEC_FROM_CALLER) !== 0,
    ...(interpLen > 0 ? { interpreter: utf8Text(bytes, interpStart, exeStart) } : {}),
    interpreterTruncated: (flags & F.ESR_EXEC_INTERP_TRUNCATED) !== 0,
    ...(exeLen > 0 ? { exe: decodeFile(view, bytes, L.exe.offset, exeStart) } : {}),
    mountNs: u32(L.mnt_ns),
    userNs: u32(L.user_ns),
  };
}

function checkOnHost(rec: KernelExec, host: HostView): KernelExec {
  const otherMountNs = rec.mountNs !== host.mountNs;
  const exe = rec.exe;
  // A path cut short, made up for an anonymous file, or from outside the namespace names nothing here.
  const comparable = otherMountNs && exe && !exe.truncated && !exe.anonymous && !exe.outsideNamespace;
  const found = comparable ? host.fileAt(exe.path) : undefined;
  const exeOnHost: ExeOnHost | undefined = !comparable
    ? undefined
    : !found
      ? "missing"
      : found.dev === exe.dev && found.ino === exe.ino
        ? "same"
        : "different";
  return {
    ...rec,
    host: { otherMountNs, otherUserNs: rec.userNs !== host.userNs, ...(exeOnHost ? { exeOnHost } : {}) },
  };
}

function build(id: SessionIdentity, ei: number, rec: KernelExec, time: Date): SessionCommandEvent {
  const argv = rec.argv.slice(1);
  if (rec.argvTruncated) argv.push(`${ARGV_TRUNCATED_MARKER} ${rec.argvBytes} bytes in all`);
  return {
    ...commonFields(id, "session.command", "T4000I", ei, time),
    argv,
    ...(rec.argvTruncated ? { argv_truncated: true } : {}),
    audit_session_id: rec.auditSessionId,
    cgroup_id: Number(rec.cgroupId),
    ...(rec.exe ? fileFields("exe", "exe_", rec.exe) : {}),
    ...(rec.host?.exeOnHost ? { exe_on_host: rec.host.exeOnHost } : {}),
    ...(rec.fromCallerMemory ? { from_caller_memory: ["path", "argv"] } : {}),
    ...(rec.interpreter !== undefined ? pathFields("interpreter", rec.interpreter, rec.interpreterTruncated) : {}),
    mount_ns: rec.mountNs,
    ...(rec.host?.otherMountNs ? { other_mount_ns: true } : {}),
    ...(rec.host?.otherUserNs ? { other_user_ns: true } : {}),
    ...pathFields("path", rec.path, rec.pathTruncated),
    pid: rec.pid,
    ppid: rec.ppid,
    program: rec.comm,
    return_code: rec.returnCode,
    user_ns: rec.userNs,
  };
}

export const commandKind = {
  name: "command",
  index: esr_kind.ESR_KIND_COMMAND,
  ring: "command_events",
  bufferSizeKey: "command_buffer_size",
  defaultBufferPages: 8,
  event: "session.command",
  code: "T4000I",
  decode,
  build,
  checkOnHost,
} as const satisfies EventKindSpec<"command", KernelExec, SessionCommandEvent>;
