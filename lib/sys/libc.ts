/** The few libc calls Bun has no API for. */
import { dlopen, read, type Pointer } from "bun:ffi";
import { EsrError } from "../errors.ts";

/**
 * Opens libc for these symbols, or throws one line naming what this host lacks: the executable
 * must run, or say why not, on every glibc from 2.17 on, so only symbols libc.so.6 has exported
 * since 2.17 are asked for (wrappers added later, like memfd_create in 2.27, are system calls).
 */
function openLibc<const T extends Parameters<typeof dlopen>[1]>(symbols: T) {
  try {
    return dlopen("libc.so.6", symbols).symbols;
  } catch (err) {
    throw new EsrError(`this host's C library cannot run esr: ${err instanceof Error ? err.message : err}`);
  }
}

const libc = openLibc({
  syscall: { args: ["i64", "cstring", "u32"], returns: "i64" },
  mount: { args: ["cstring", "cstring", "cstring", "u64", "ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "cstring" },
  strsignal: { args: ["i32"], returns: "cstring" },
  vsnprintf: { args: ["ptr", "u64", "ptr", "ptr"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  tcgetattr: { args: ["i32", "ptr"], returns: "i32" },
  tcsetattr: { args: ["i32", "i32", "ptr"], returns: "i32" },
  cfmakeraw: { args: ["ptr"], returns: "void" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  flock: { args: ["i32", "i32"], returns: "i32" },
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: "ptr" },
  munmap: { args: ["ptr", "u64"], returns: "i32" },
  sysconf: { args: ["i32"], returns: "i64" },
});

const SYS_memfd_create = process.arch === "arm64" ? 279 : 319;

export const MFD_CLOEXEC = 1;

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`);
}

export function errno(): number {
  return read.i32(libc.__errno_location()!, 0);
}

export function strerror(err: number): string {
  return String(libc.strerror(Math.abs(err)));
}

/** What a signal is called in words ("Killed", "Terminated"). */
export function strsignal(signal: number): string {
  return String(libc.strsignal(signal));
}

/** memfd_create(2); -1 on failure (see errno()). */
export function memfdCreate(name: string): number {
  return Number(libc.syscall(SYS_memfd_create, cstr(name), MFD_CLOEXEC));
}

/** mount(2) of a pseudo filesystem with no options; throws with strerror on failure. */
export function mountFs(fstype: string, target: string) {
  if (libc.mount(cstr(fstype), cstr(target), cstr(fstype), 0, null) !== 0) throw new Error(strerror(errno()));
}

export const vsnprintf = libc.vsnprintf;

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = -1;
const _SC_PAGESIZE = 30;

export function pageSize(): number {
  return Number(libc.sysconf(_SC_PAGESIZE));
}

/** mmap(2) of `length` bytes of `fd` at `offset`, shared; throws with strerror on failure. */
export function mapShared(fd: number, length: number, offset: number, writable: boolean): Pointer {
  const ptr = libc.mmap(null, length, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, offset);
  if (ptr === null || Number(ptr) === MAP_FAILED) throw new Error(`mmap: ${strerror(errno())}`);
  return ptr as Pointer;
}

export function unmap(ptr: Pointer, length: number) {
  libc.munmap(ptr, length);
}

const LOCK_EX = 2;
const LOCK_UN = 8;
const EINTR = 4;

/** Runs `use` holding flock(2)'s exclusive lock on an open file; the lock is released however it ends. */
export function withFileLock<T>(fd: number, use: () => T): T {
  while (libc.flock(fd, LOCK_EX) !== 0) {
    const err = errno();
    if (err !== EINTR) throw new Error(`flock: ${strerror(err)}`);
  }
  try {
    return use();
  } finally {
    libc.flock(fd, LOCK_UN);
  }
}

const CLOCK_BOOTTIME = 7;
const timespec = new BigInt64Array(2);

/** CLOCK_BOOTTIME in ns: the clock of bpf_ktime_get_boot_ns(). */
export function bootTimeNs(): bigint {
  libc.clock_gettime(CLOCK_BOOTTIME, timespec);
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

/** Who connected to a unix socket, as the kernel recorded it at connect(2). */
export interface PeerCredentials {
  pid: number;
  /** effective uid */
  uid: number;
  gid: number;
}

/** getsockopt(SO_PEERCRED) on a connected unix socket; throws with strerror on failure. */
export function peerCredentials(fd: number): PeerCredentials {
  const ucred = new Int32Array(3);
  const len = new Uint32Array([ucred.byteLength]);
  if (libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, len) !== 0) throw new Error(strerror(errno()));
  return { pid: ucred[0]!, uid: ucred[1]! >>> 0, gid: ucred[2]! >>> 0 };
}

/** A terminal's settings (struct termios, 60 bytes on Linux), kept opaque to be put back as they were. */
export type Termios = Uint8Array;
const TERMIOS_SIZE = 64;
const TCSADRAIN = 1;

/** tcgetattr(3); undefined when fd is not a terminal. */
export function getTermios(fd: number): Termios | undefined {
  const termios = new Uint8Array(TERMIOS_SIZE);
  return libc.tcgetattr(fd, termios) === 0 ? termios : undefined;
}

/** tcsetattr(3) once pending output is written, keeping input already typed. */
export function setTermios(fd: number, termios: Termios): boolean {
  return libc.tcsetattr(fd, TCSADRAIN, termios) === 0;
}

/**
 * cfmakeraw(3) of a copy: no echo, no line editing, no signal keys, and no output processing (what
 * ssh and script(1) use; Bun's setRawMode keeps OPOST, which turns the bare line feeds of a
 * full-screen program relayed from a pty into CR LF).
 */
export function rawTermios(termios: Termios): Termios {
  const raw = termios.slice();
  libc.cfmakeraw(raw);
  return raw;
}

const TIOCGWINSZ = 0x5413;

/** The window size of the terminal on fd; undefined when it is not a terminal or has no size. */
export function windowSize(fd: number): { cols: number; rows: number } | undefined {
  const ws = new Uint16Array(4); // ws_row, ws_col, ws_xpixel, ws_ypixel
  if (libc.ioctl(fd, TIOCGWINSZ, ws) !== 0 || !ws[0] || !ws[1]) return undefined;
  return { cols: ws[1], rows: ws[0] };
}
