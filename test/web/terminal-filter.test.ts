/** The control strings removed from terminal output before it reaches the browser, in every form. */
import { describe, expect, test } from "bun:test";
import { TerminalFilter } from "../../web/terminal-filter.ts";

const enc = (s: string) => Buffer.from(s, "latin1");
const filter = (...pieces: string[]) => {
  const f = new TerminalFilter();
  return Buffer.concat(pieces.map((p) => f.write(enc(p)))).toString("latin1");
};

describe("TerminalFilter", () => {
  test("keeps text, colours and cursor moves as recorded", () => {
    const s = "a\x1b[31mred\x1b[0m\r\n\x1b[2J\x1b[H\x1b7\x1b8é\xc2\xa0x";
    expect(filter(s)).toBe(s);
  });

  test("removes OSC 52, OSC 8, titles and DCS, ended by BEL or ST", () => {
    expect(filter("a\x1b]52;c;ZXZpbA==\x07b")).toBe("ab");
    expect(filter("\x1b]8;;javascript:alert(1)\x1b\\link\x1b]8;;\x1b\\")).toBe("link");
    expect(filter("\x1b]0;title\x07\x1b]2;t2\x1b\\x")).toBe("x");
    expect(filter("\x1bP+q544e\x1b\\\x1b_apc\x07\x1b^pm\x07\x1bXsos\x07y")).toBe("y");
  });

  test("removes the 8-bit C1 forms (UTF-8 C2 9D … C2 9C)", () => {
    expect(filter("a\xc2\x9d52;c;ZXZpbA==\xc2\x9cb")).toBe("ab");
    expect(filter("\xc2\x908;;x\x07z")).toBe("z");
  });

  test("a sequence split across pieces is still removed", () => {
    expect(filter("a\x1b", "]52;c;Z", "XZpbA==\x1b", "\\b")).toBe("ab");
    expect(filter("a\xc2", "\x9d8;;u\x07b")).toBe("ab");
  });

  test("CAN and SUB abort a string; ESC starts the next sequence", () => {
    expect(filter("\x1b]52;c;x\x18text")).toBe("text");
    expect(filter("\x1b]52;c;x\x1b[31mred")).toBe("\x1b[31mred");
    expect(filter("\x1b]0;t\x1b\x1b]52;c;x\x07ok")).toBe("ok");
  });

  test("an unterminated string hides nothing after the recording's end but itself", () => {
    expect(filter("before\x1b]52;c;never-ended")).toBe("before");
  });
});
