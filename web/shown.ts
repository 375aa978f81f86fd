/**
 * "Shown vs ran": which execs of a terminal session had their command line on the screen before
 * they ran. The rest — a script's commands, the pipeline behind `base64 -d | sh`, what was typed
 * after `stty -echo` — are the blind spots of a terminal recording, and the reviewer's first read.
 *
 * An exec counts as shown when one screen line completed before the exec holds the program's name
 * as a word and then every argument, in order (a command the terminal wrapped is still one line:
 * the shell relies on the terminal's own wrapping). Quoting is thus ignored; what the shell rewrote before running
 * (globs, aliases, variables) is not matched and shows as "never shown": the flag says "look",
 * not "malicious".
 */
import type { SessionCommandEvent } from "../lib/events/kinds/index.ts";
import { ScreenText } from "../lib/replay/screen-text.ts";
import { OUTPUT_LAG_MS } from "./timeline-codes.ts";

/** Lines looked at per exec, newest first: bounds the work on a session that prints one word a million times. */
const MAX_CANDIDATES = 64;

export interface TimedBytes {
  ms: number;
  bytes: Uint8Array;
}

/** The words of a screen line, under which it is found: each word, and a path's last part. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const w of line.split(/[\s|;&()<>'"`$=]+/)) {
    if (!w) continue;
    out.push(w);
    const base = w.slice(w.lastIndexOf("/") + 1);
    if (base && base !== w) out.push(base);
  }
  return out;
}

/** What a user would have typed for an exec: the program then its arguments. */
export function typedForm(e: SessionCommandEvent): string[] {
  // Read from disk: the shapes are checked, not assumed.
  const argv = Array.isArray(e.argv) ? e.argv.map(String) : [];
  // A script runs as its interpreter with the script's path first: argv already starts with it.
  if (typeof e.interpreter === "string" && argv.length) return argv;
  const path = String(e.path ?? "");
  return [path.slice(path.lastIndexOf("/") + 1), ...argv];
}

function holdsInOrder(text: string, from: number, args: string[]): boolean {
  let at = from;
  for (const a of args) {
    if (!a) continue;
    const found = text.indexOf(a, at);
    if (found < 0) return false;
    at = found + a.length;
  }
  return true;
}

/**
 * The `ei` of every exec among `execs` whose command line never appeared on the screen before it
 * ran. `msOf` places an event on the output's clock; the session's own command (started by the
 * recorder, never typed) is left out by the caller.
 */
export function neverShown(
  execs: SessionCommandEvent[],
  frames: TimedBytes[],
  msOf: (e: SessionCommandEvent) => number,
): Set<number> {
  const screen = new ScreenText();
  const lines: string[] = [];
  const byWord = new Map<string, number[]>();
  const addLines = (completed: string[]) => {
    for (const line of completed) {
      const i = lines.push(line) - 1;
      for (const w of new Set(words(line))) {
        let list = byWord.get(w);
        if (!list) byWord.set(w, (list = []));
        list.push(i);
      }
    }
  };
  const unseen = new Set<number>();
  const sorted = [...execs].sort((a, b) => msOf(a) - msOf(b));
  let f = 0;
  for (const e of sorted) {
    const until = msOf(e) + OUTPUT_LAG_MS;
    while (f < frames.length && frames[f]!.ms <= until) addLines(screen.write(frames[f++]!.bytes));
    const [program, ...args] = typedForm(e);
    const candidates = (program && byWord.get(program)) || [];
    let shown = false;
    for (let k = candidates.length - 1; k >= Math.max(0, candidates.length - MAX_CANDIDATES) && !shown; k--) {
      const i = candidates[k]!;
      const text = lines[i]!;
      shown = holdsInOrder(text, text.indexOf(program!), args);
    }
    if (!shown) unseen.add(e.ei);
  }
  return unseen;
}
