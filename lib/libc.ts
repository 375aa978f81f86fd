/** The few libc calls Bun has no API for. */
import { dlopen, read } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  memfd_create: { args: ["cstring", "u32"], returns: "i32" },
  mount: { args: ["cstring", "cstring", "cstring", "u64", "ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
  strerror: { args: ["i32"], returns: "cstring" },
  vsnprintf: { args: ["ptr", "u64", "ptr", "ptr"], returns: "i32" },
  dlopen: { args: ["cstring", "i32"], returns: "ptr" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  dlerror: { args: [], returns: "cstring" },
}).symbols;

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

/** memfd_create(2); -1 on failure (see errno()). */
export function memfdCreate(name: string): number {
  return libc.memfd_create(cstr(name), MFD_CLOEXEC);
}

/** mount(2) of a pseudo filesystem with no options; throws with strerror on failure. */
export function mountFs(fstype: string, target: string) {
  if (libc.mount(cstr(fstype), cstr(target), cstr(fstype), 0, null) !== 0) throw new Error(strerror(errno()));
}

export const vsnprintf = libc.vsnprintf;

const CLOCK_BOOTTIME = 7;
const timespec = new BigInt64Array(2);

/** CLOCK_BOOTTIME in ns: the clock of bpf_ktime_get_boot_ns(). */
export function bootTimeNs(): bigint {
  libc.clock_gettime(CLOCK_BOOTTIME, timespec);
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}

const RTLD_NOW = 2;
const RTLD_GLOBAL = 0x100;

/** dlopen(3) for a library whose symbols JS does not call, only the libraries loaded after it. */
export function dlopenGlobal(path: string) {
  if (!libc.dlopen(cstr(path), RTLD_NOW | RTLD_GLOBAL)) throw new Error(String(libc.dlerror()));
}
