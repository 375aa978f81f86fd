/**
 * Everything esr carries inside its executable: the CO-RE BPF object (all event kinds) and the
 * libbpf it loads them with (libelf and zlib linked into it), so a host needs neither clang nor a
 * libbpf package. scripts/build.ts puts these files, built for the executable's architecture, in
 * build/ before anything imports this module.
 */
import bpfObjectPath from "../../build/bpf/esr.bpf.o" with { type: "file" };
import libbpfPath from "../../build/native/libesrbpf.so" with { type: "file" };

/** The programs of every event kind, linked into one object; each program's name starts with its kind. */
export const bpfObject = bpfObjectPath;

/** libbpf with libelf and zlib inside, needing nothing from the host but glibc ≥ 2.17 (native/build.sh). */
export const libbpfLibrary = { soname: "libesrbpf.so", path: libbpfPath };
