/**
 * Making a value that a recorded session can influence (program, argv, paths, user names, hosts,
 * terminal output) safe to print on a reviewer's terminal or page. A session controls those
 * strings, so printed raw they could drive the reviewer's terminal (ESC [4A ESC [J erases the
 * lines above; an 8-bit CSI, U+009B, does the same on terminals that honour C1), reorder what is
 * shown (bidi overrides and isolates), or hide characters (zero-width and other format
 * characters), making one value look like another. Every such character is shown as an escape a
 * reader can tell apart and type back: `\x1b`, `\n`, `\u202e`, `\U000e0041`, the forms bash's
 * `$'…'` reads. JSON output does not go through here: it stays exact.
 *
 * Pure, with no Node or Bun import: the web UI uses the same function.
 */

/**
 * Characters never printed as themselves: C0, DEL and C1 controls (Cc); format characters such as
 * bidi controls, zero-width spaces and joiners, the BOM and tag characters (Cf); the line and
 * paragraph separators (Zl, Zp), which break a line the way \n does; every other default-ignorable
 * code point (variation selectors, Hangul fillers, combining grapheme joiner), which terminals
 * draw as nothing; surrogates that are not part of a pair, private-use and unassigned code points,
 * whose look depends on the reader's font; spaces other than U+0020, which pass for it (one
 * argument `rm\u00a0-rf` would look like two); and U+FFFD, which stands for bytes that were not
 * UTF-8 in what the kernel recorded, so the reader sees that they were there.
 */
const INVISIBLE = String.raw`\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\p{Cs}\p{Co}\p{Cn}\ufffd`;
const UNSAFE_VALUE = new RegExp(String.raw`[\\${INVISIBLE}]|(?! )\p{Zs}`, "gu");
const UNSAFE_IN_LINE = new RegExp(String.raw`[${INVISIBLE}]|(?! )\p{Zs}`, "gu");

const NAMED: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r" };

function escapeChar(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const cp = ch.codePointAt(0)!;
  if (cp < 0x80) return `\\x${cp.toString(16).padStart(2, "0")}`;
  if (cp <= 0xffff) return `\\u${cp.toString(16).padStart(4, "0")}`;
  return `\\U${cp.toString(16).padStart(8, "0")}`;
}

/**
 * One value, terminal-safe. Backslashes are doubled, so an escape in the result always stands for
 * the character it names and never for text the session wrote to look like one.
 */
export function safeText(value: string): string {
  return value.replace(UNSAFE_VALUE, escapeChar);
}

/** Whether `value` prints as itself (nothing in it would be escaped by safeText, backslash aside). */
export function isPlainText(value: string): boolean {
  UNSAFE_IN_LINE.lastIndex = 0;
  return !UNSAFE_IN_LINE.test(value);
}

/**
 * A line that carries its own backslash quoting — a message whose values were quoted with
 * JSON.stringify (which escapes backslashes and C0 but leaves C1, bidi and format characters raw),
 * or terminal output as ScreenText rendered it (which keeps no controls) — made terminal-safe
 * without doubling the backslashes already there.
 */
export function safeLine(line: string): string {
  return line.replace(UNSAFE_IN_LINE, escapeChar);
}
