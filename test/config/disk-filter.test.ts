/** esr.disk_filter: the paths whose read-only opens are filtered, checked where the file and line are known. */
import { describe, expect, test } from "bun:test";
import { errorOf, parse } from "../support/config-parse.ts";
import { encodeIgnoredPrefix } from "../../lib/events/kinds/disk-filter.ts";

const withPrefixes = (...items: string[]) =>
  `esr:\n  disk_filter:\n    ignore_path_prefixes:\n${items.map((i) => `      - ${i}\n`).join("")}`;

describe("esr.disk_filter.ignore_path_prefixes", () => {
  test("off unless asked: no key, an empty block or an empty list filter nothing", () => {
    expect(parse("").enhancedRecording.diskFilter).toEqual({ ignorePathPrefixes: [] });
    expect(parse("esr:\n  disk_filter: {}\n").enhancedRecording.diskFilter).toEqual({ ignorePathPrefixes: [] });
    expect(parse("esr:\n  disk_filter:\n    ignore_path_prefixes: []\n").enhancedRecording.diskFilter).toEqual({
      ignorePathPrefixes: [],
    });
  });

  test("directories (a trailing /) and files, kept as written", () => {
    const cfg = parse(withPrefixes("/usr/lib/", "/etc/ld.so.cache", "'/usr/share/locale/'"));
    expect(cfg.enhancedRecording.diskFilter.ignorePathPrefixes).toEqual([
      "/usr/lib/",
      "/etc/ld.so.cache",
      "/usr/share/locale/",
    ]);
  });

  test("encoded as the kernel's path components, leaf first, each NUL-terminated", () => {
    const text = (path: string) => {
      const { components, subtree } = encodeIgnoredPrefix(path);
      return { text: new TextDecoder().decode(components), subtree };
    };
    expect(text("/usr/lib/")).toEqual({ text: "lib\0usr\0", subtree: true });
    expect(text("/etc/ld.so.cache")).toEqual({ text: "ld.so.cache\0etc\0", subtree: false });
    expect(text("/opt")).toEqual({ text: "opt\0", subtree: false });
  });

  test("each bad path is one line naming the file, the line and the key", () => {
    const cases: [string, string][] = [
      ["usr/lib/", '"usr/lib/" must be an absolute path'],
      ["/usr/../etc/", '"/usr/../etc/" must not have "." or ".." components'],
      ["/usr/./lib", '"/usr/./lib" must not have "." or ".." components'],
      ["/usr//lib/", '"/usr//lib/" must not have empty components ("//")'],
      ["/usr/lib//", '"/usr/lib//" must not have empty components ("//")'],
      ["/", '"/" must name a file or directory below "/"'],
      [`/${"a".repeat(128)}`, "must be at most 128 bytes long, is 129"],
      ["''", 'must be a non-empty string, got string ""'],
      ["17", "must be a non-empty string, got number 17 (quote it)"],
    ];
    for (const [item, message] of cases) {
      const err = errorOf(() => parse(withPrefixes("/etc/ld.so.cache", item)));
      expect(err).toStartWith("f.yaml:5: esr.disk_filter.ignore_path_prefixes: ");
      expect(err).toContain(message);
      expect(err).not.toContain("\n");
    }
    expect(parse(withPrefixes(`/${"a".repeat(127)}/`)).enhancedRecording.diskFilter.ignorePathPrefixes).toHaveLength(1);
  });

  test("not a list, or more paths than the BPF program holds", () => {
    expect(errorOf(() => parse("esr:\n  disk_filter:\n    ignore_path_prefixes: /usr/lib/\n"))).toBe(
      'f.yaml:3: esr.disk_filter.ignore_path_prefixes: must be a list of absolute paths, got string "/usr/lib/"',
    );
    const many = Array.from({ length: 17 }, (_, i) => `/p${i}/`);
    expect(errorOf(() => parse(withPrefixes(...many)))).toBe(
      "f.yaml:4: esr.disk_filter.ignore_path_prefixes: at most 16 paths (the BPF program's bound), got 17",
    );
    expect(parse(withPrefixes(...many.slice(0, 16))).enhancedRecording.diskFilter.ignorePathPrefixes).toHaveLength(16);
  });
});
