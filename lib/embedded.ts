/**
 * Everything esr carries inside its executable: the CO-RE BPF objects (one per event kind) and the
 * libbpf it loads them with, plus libbpf's own dependencies, so a host needs neither clang nor a
 * libbpf package. scripts/build.ts puts these files in build/ before anything imports this module.
 */
import commandObject from "../build/bpf/command.bpf.o" with { type: "file" };
import diskObject from "../build/bpf/disk.bpf.o" with { type: "file" };
import networkObject from "../build/bpf/network.bpf.o" with { type: "file" };
import libz from "../build/native/libz.so.1" with { type: "file" };
import libelf from "../build/native/libelf.so.1" with { type: "file" };
import libbpf from "../build/native/libbpf.so.1" with { type: "file" };
import type { EventKind } from "./config.ts";

export const bpfObjects: Record<EventKind, string | undefined> = {
  command: commandObject,
  disk: diskObject,
  network: networkObject,
};

/** libbpf and, in load order, the libraries it needs: each one's DT_NEEDED is met by those before it. */
export const nativeLibraries = {
  dependencies: [
    { soname: "libz.so.1", path: libz },
    { soname: "libelf.so.1", path: libelf },
  ],
  libbpf: { soname: "libbpf.so.1", path: libbpf },
};
