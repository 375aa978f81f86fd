/** The recorder's own view of the host (HostView of lib/events/kinds/kind.ts): its namespaces, its files. */
import { statSync } from "node:fs";
import type { HostView } from "../events/kinds/kind.ts";
import { EsrError } from "../errors.ts";

/** The kernel's major:minor of a stat st_dev (glibc's encoding of dev_t). */
export function deviceText(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function namespaceInode(kind: "mnt" | "user"): number {
  try {
    return Number(statSync(`/proc/self/ns/${kind}`, { bigint: true }).ino);
  } catch (err) {
    throw new EsrError(`cannot read the recorder's own ${kind} namespace (/proc/self/ns/${kind}): ${String(err)}`);
  }
}

export function hostView(): HostView {
  return {
    mountNs: namespaceInode("mnt"),
    userNs: namespaceInode("user"),
    fileAt(path) {
      try {
        const st = statSync(path, { bigint: true });
        return { dev: deviceText(st.dev), ino: st.ino };
      } catch {
        return undefined; // no such file here, or none that could be reached (ENOTDIR, ELOOP)
      }
    },
  };
}
