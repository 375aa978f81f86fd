import { expect, test } from "bun:test";
import { returnCodeText, shellQuote } from "../../lib/replay/text-format.ts";

test("shellQuote: plain words bare, others quoted so a shell would read them back the same", () => {
  const cases = [
    "ls",
    "-la",
    "two words",
    "it's",
    "",
    "line1\nline2",
    "tab\there",
    "esc\x1b[31m",
    "back\\slash'\n",
    "naïve ünïcode",
    "csi\u009b2J",
    "invoice\u202eexe.pdf",
    "zero\u200bwidth\u2028sep",
    "tag\u{e0041}",
  ];
  const quoted = shellQuote(cases);
  expect(quoted.startsWith("ls -la 'two words' 'it'\\''s' '' $'line1\\nline2' $'tab\\there' $'esc\\x1b[31m'")).toBe(
    true,
  );
  expect(
    quoted.endsWith("$'csi\\u009b2J' $'invoice\\u202eexe.pdf' $'zero\\u200bwidth\\u2028sep' $'tag\\U000e0041'"),
  ).toBe(true);
  // bash parses the quoted form back into exactly the original arguments
  const r = Bun.spawnSync(["bash", "-c", `for a in ${quoted}; do printf '%s\\0' "$a"; done`]);
  expect(r.stdout.toString().split("\0").slice(0, -1)).toEqual(cases);
});

test("returnCodeText names negative errnos", () => {
  expect(returnCodeText(0)).toBe("0");
  expect(returnCodeText(3)).toBe("3");
  expect(returnCodeText(-2)).toBe("-2 ENOENT");
  expect(returnCodeText(-13)).toBe("-13 EACCES");
});
