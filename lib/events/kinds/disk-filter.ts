/**
 * The paths whose read-only opens the disk program does not record (`esr.disk_filter`, bpf/disk.bpf.c
 * open_ignored): checked by the config, encoded by the recorder into the programs' load config as
 * put_file writes a file's path, components leaf first, each NUL-terminated.
 */
import { esr_ignore_prefix, esr_load_config } from "./kernel-layout.generated.ts";

/** How many prefixes the programs hold (ESR_DISK_IGNORE_PREFIXES). */
export const DISK_IGNORE_PREFIXES = esr_load_config.disk_ignore.size / esr_ignore_prefix.sizeof;
/** Bytes of a prefix, its trailing "/" left out (ESR_DISK_IGNORE_PREFIX_MAX). */
export const DISK_IGNORE_PREFIX_MAX = esr_ignore_prefix.components.size;

export interface IgnoredPrefix {
  /** its components, the root side last, each followed by a NUL: "/usr/lib/" is "lib\0usr\0" */
  components: Uint8Array;
  /** true: what lies below that directory (written with a trailing "/"); false: that path itself */
  subtree: boolean;
}

/** Why a path cannot be an ignored prefix, or undefined when it can. */
export function ignoredPrefixProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "must be an absolute path";
  if (path.includes("\0")) return "must not contain a NUL byte";
  const names = componentsOf(path);
  if (names.length === 0)
    return `must name a file or directory below "/" (to record no disk events, leave disk out of the roles)`;
  if (names.some((n) => n === "")) return 'must not have empty components ("//")';
  if (names.some((n) => n === "." || n === ".."))
    return 'must not have "." or ".." components: the kernel\'s path, which it is compared with, has none';
  const bytes = new TextEncoder().encode(path.replace(/\/$/, "")).length;
  if (bytes > DISK_IGNORE_PREFIX_MAX) return `must be at most ${DISK_IGNORE_PREFIX_MAX} bytes long, is ${bytes}`;
  return undefined;
}

/** A checked prefix (ignoredPrefixProblem found nothing) as the programs compare it. */
export function encodeIgnoredPrefix(path: string): IgnoredPrefix {
  const text = componentsOf(path)
    .reverse()
    .map((n) => `${n}\0`)
    .join("");
  return { components: new TextEncoder().encode(text), subtree: path.endsWith("/") };
}

/** "/usr/lib/" → ["usr", "lib"]: one trailing "/" says "a directory", and is no component. */
function componentsOf(path: string): string[] {
  const inner = path.slice(1).replace(/\/$/, "");
  return inner === "" ? [] : inner.split("/");
}
