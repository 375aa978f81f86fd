/**
 * Command events: every execve/execveat of a session's processes (bpf/command.bpf.c), successful
 * (read in the new image) or failed (read at syscall exit).
 */
import {
  ARGV_TRUNCATED_MARKER,
  commonFields,
  pathFields,
  PATH_TRUNCATED_MARKER,
  type CommonFields,
  type ProcessFields,
} from "../audit-events.ts";
import { decodeHeader, eventView, utf8Text, type EventKindSpec, type KernelEventHeader } from "./kind.ts";
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
  /** the interpreter the kernel ran for a script or binfmt_misc file, if any (successful execs only) */
  interpreter?: string;
  interpreterTruncated: boolean;
  /**
   * The file the kernel executed, as /proc/PID/exe names it: symlinks and fds resolved, relative to
   * the root of the process's mount namespace; a memfd is "/memfd:NAME". Successful execs only.
   */
  exe?: string;
  /** more components than the kernel side walks: `exe` lacks its leading directories (and its leading "/") */
  exeTruncated: boolean;
  /** the file had no link left: a memfd, or a file unlinked before its fd was executed */
  exeDeleted: boolean;
}

export interface SessionCommandEvent extends CommonFields<"session.command", "T4000I">, ProcessFields {
  ppid: number;
  /** the executable as the exec call named it */
  path: string;
  path_truncated?: true;
  /** the arguments without argv[0] */
  argv: string[];
  argv_truncated?: true;
  /** 0, or the negative errno of a failed exec */
  return_code: number;
  /** esr's: the file that ran (symlinks, /dev/fd/N and memfds resolved) */
  exe?: string;
  exe_truncated?: true;
  exe_deleted?: true;
  /** esr's: what the kernel ran for a script */
  interpreter?: string;
  interpreter_truncated?: true;
}

const L = esr_exec_event;
const F = esr_exec_flag;

function decode(bytes: Uint8Array): KernelExec {
  const view = eventView(bytes);
  const u32 = (field: { offset: number }) => view.getUint32(field.offset, true);
  const pathLen = u32(L.path_len);
  const interpLen = u32(L.interp_len);
  const exeLen = u32(L.exe_len);
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
  // exe comes leaf first, one NUL-terminated name per component.
  const components = utf8Text(bytes, exeStart, argvStart).split("\0");
  if (components[components.length - 1] === "") components.pop();
  const exeTruncated = (flags & F.ESR_EXEC_EXE_TRUNCATED) !== 0;
  // Cut short, it lacks its leading directories: then it is left relative rather than made up.
  const exe = exeLen > 0 ? `${exeTruncated ? "" : "/"}${components.reverse().join("/")}` : undefined;
  return {
    ...decodeHeader(view, bytes),
    ppid: u32(L.ppid),
    returnCode: view.getInt32(L.return_code.offset, true),
    path: utf8Text(bytes, pathStart, interpStart),
    pathTruncated: (flags & F.ESR_EXEC_PATH_TRUNCATED) !== 0,
    argv,
    argvTruncated: (flags & F.ESR_EXEC_ARGV_TRUNCATED) !== 0,
    argvBytes: u32(L.argv_total),
    ...(interpLen > 0 ? { interpreter: utf8Text(bytes, interpStart, exeStart) } : {}),
    interpreterTruncated: (flags & F.ESR_EXEC_INTERP_TRUNCATED) !== 0,
    ...(exe !== undefined ? { exe } : {}),
    exeTruncated,
    exeDeleted: (flags & F.ESR_EXEC_EXE_DELETED) !== 0,
  };
}

/** A path esr adds beyond Teleport's keys (Teleport tooling ignores unknown keys), marked when cut. */
function extraPath<K extends string>(key: K, value: string | undefined, truncated: boolean) {
  if (value === undefined) return {};
  return truncated
    ? ({ [key]: `${value} ${PATH_TRUNCATED_MARKER}`, [`${key}_truncated`]: true } as Record<K, string>)
    : ({ [key]: value } as Record<K, string>);
}

function build(id: Parameters<typeof commonFields>[0], ei: number, rec: KernelExec, time: Date): SessionCommandEvent {
  const argv = rec.argv.slice(1);
  if (rec.argvTruncated) argv.push(`${ARGV_TRUNCATED_MARKER} ${rec.argvBytes} bytes in all`);
  return {
    ...commonFields(id, "session.command", "T4000I", ei, time),
    argv,
    ...(rec.argvTruncated ? { argv_truncated: true } : {}),
    audit_session_id: rec.auditSessionId,
    cgroup_id: Number(rec.cgroupId),
    ...extraPath("exe", rec.exe, rec.exeTruncated),
    ...(rec.exeDeleted ? { exe_deleted: true } : {}),
    ...extraPath("interpreter", rec.interpreter, rec.interpreterTruncated),
    ...pathFields(rec.path, rec.pathTruncated),
    pid: rec.pid,
    ppid: rec.ppid,
    program: rec.comm,
    return_code: rec.returnCode,
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
} as const satisfies EventKindSpec<"command", KernelExec, SessionCommandEvent>;
