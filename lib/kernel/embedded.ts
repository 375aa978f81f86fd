/**
 * Everything esr carries inside its executable: the CO-RE BPF object (all event kinds) and the
 * libbpf it loads them with, plus libbpf's own dependencies, so a host needs neither clang nor a
 * libbpf package. scripts/build.ts puts these files in build/ before anything imports this module.
 */
import bpfObjectPath from "../../build/bpf/esr.bpf.o" with { type: "file" };
import libz from "../../build/native/libz.so.1" with { type: "file" };
import libelf from "../../build/native/libelf.so.1" with { type: "file" };
import libbpf from "../../build/native/libbpf.so.1" with { type: "file" };

/** The programs of every event kind, linked into one object; each program's name starts with its kind. */
export const bpfObject = bpfObjectPath;

/** libbpf and, in load order, the libraries it needs: each one's DT_NEEDED is met by those before it. */
export const nativeLibraries = {
  dependencies: [
    { soname: "libz.so.1", path: libz },
    { soname: "libelf.so.1", path: libelf },
  ],
  libbpf: { soname: "libbpf.so.1", path: libbpf },
};
