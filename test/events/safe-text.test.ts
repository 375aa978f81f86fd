import { describe, expect, test } from "bun:test";
import { isPlainText, safeLine, safeText } from "../../lib/events/safe-text.ts";

/**
 * What must never reach a terminal raw, listed here from the Unicode ranges themselves rather than
 * from the categories the implementation uses, so that a gap in one is not hidden by the other.
 */
const MUST_ESCAPE: [string, number, number][] = [
  ["C0", 0x00, 0x1f],
  ["DEL", 0x7f, 0x7f],
  ["C1 (0x9b is the 8-bit CSI)", 0x80, 0x9f],
  ["no-break space", 0xa0, 0xa0],
  ["soft hyphen", 0xad, 0xad],
  ["Arabic letter mark", 0x61c, 0x61c],
  ["zero-width space, joiners, LRM, RLM", 0x200b, 0x200f],
  ["line and paragraph separators", 0x2028, 0x2029],
  ["bidi embeddings and overrides", 0x202a, 0x202e],
  ["word joiner, invisible operators", 0x2060, 0x2064],
  ["bidi isolates", 0x2066, 0x2069],
  ["variation selectors", 0xfe00, 0xfe0f],
  ["byte order mark", 0xfeff, 0xfeff],
  ["replacement character (bytes that were not UTF-8)", 0xfffd, 0xfffd],
  ["tag characters", 0xe0000, 0xe007f],
];

const chars = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));

describe("safeText", () => {
  for (const [name, from, to] of MUST_ESCAPE)
    test(`escapes ${name}`, () => {
      for (const ch of chars(from, to)) {
        const out = safeText(`a${ch}b`);
        expect(out).toMatch(/^a\\(x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[ntr])b$/);
        expect(isPlainText(ch)).toBe(false);
      }
    });

  test("the forms: named, \\xNN, \\uNNNN, \\UNNNNNNNN, backslash doubled", () => {
    expect(safeText("prog\x1b[4A\x1b[J")).toBe("prog\\x1b[4A\\x1b[J");
    expect(safeText("a\nb\tc\rd\x00\x7f")).toBe("a\\nb\\tc\\rd\\x00\\x7f");
    expect(safeText("\u009b2J")).toBe("\\u009b2J");
    expect(safeText("invoice\u202eexe.pdf")).toBe("invoice\\u202eexe.pdf");
    expect(safeText("\u{e0041}")).toBe("\\U000e0041");
    expect(safeText("\ud800")).toBe("\\ud800");
    expect(safeText("C:\\x1b")).toBe("C:\\\\x1b");
  });

  test("an escape in the output always stands for the character, never for text that looks like one", () => {
    expect(safeText("\x1b")).not.toBe(safeText("\\x1b"));
    expect(safeText("\u202e")).not.toBe(safeText("\\u202e"));
  });

  test("printable text of any script passes unchanged", () => {
    for (const s of ["ls -la /etc", "naïve ünïcode", "日本語のファイル", "файл", "emoji 😀", "tab-less ~!@#$%^&*()"]) {
      expect(safeText(s)).toBe(s);
      expect(isPlainText(s)).toBe(true);
    }
  });

  test("no code point comes out raw if it is in a listed range", () => {
    const all = MUST_ESCAPE.flatMap(([, from, to]) => chars(from, to)).join("");
    const out = safeText(all);
    for (const [, from, to] of MUST_ESCAPE) for (const ch of chars(from, to)) expect(out.includes(ch)).toBe(false);
  });
});

describe("safeLine", () => {
  test("escapes the same characters but leaves backslashes as the line has them", () => {
    const message = `unknown user ${JSON.stringify("a\\b\u009b2J\u202e")}`;
    expect(safeLine(message)).toBe('unknown user "a\\\\b\\u009b2J\\u202e"');
  });
});
