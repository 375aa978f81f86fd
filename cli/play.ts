import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { playFrames, TERMINAL_RESET } from "../lib/replay/play.ts";
import { terminalSizeText } from "../lib/events/audit-events.ts";
import { safeLine, safeText } from "../lib/events/safe-text.ts";
import { readTerminalRecording } from "../lib/replay/terminal-frames.ts";
import { cliConfig, configArg, dataDirArg, eventSource, fromArg, requireSid, sidArg, verdictNotice } from "./common.ts";
import { fail } from "./run.ts";

export const play = defineCommand({
  meta: { name: "play", description: "Play a session's terminal output at the pace it was recorded" },
  args: {
    ...sidArg,
    ...configArg,
    ...dataDirArg,
    ...fromArg,
    speed: { type: "string", valueHint: "N", description: "play N times as fast (default 1)" },
    "skip-idle": { type: "boolean", description: "shorten pauses longer than 0.5 s to 0.5 s" },
  },
  async run({ args }) {
    const sid = requireSid("play", args);
    const speed = args.speed === undefined ? 1 : Number(args.speed);
    if (!(speed > 0 && Number.isFinite(speed)))
      throw new EsrError(`play: --speed must be a positive number, not ${JSON.stringify(args.speed)}`, 2);
    const config = cliConfig(process.argv, args["data-dir"]);
    const source = eventSource(config, args);
    const { frames, size, warnings } = await readTerminalRecording(await source.session(sid));
    const notice = await verdictNotice(source, sid, warnings);
    await source.close();
    if (process.stdout.isTTY) {
      const here = terminalSizeText({ cols: process.stdout.columns, rows: process.stdout.rows });
      if (size && size !== here)
        process.stderr.write(
          `esr: recorded on a ${safeText(size.replace(":", "x"))} terminal, this one is ${here.replace(":", "x")}\n`,
        );
      // Stopped half-way, a full-screen program's modes would stay on in the reviewer's terminal.
      process.once("SIGINT", () => {
        process.stdout.write(TERMINAL_RESET);
        process.exit(130);
      });
    }
    // Failed writes are handled where each write reports them.
    process.stdout.on("error", () => {});
    await playFrames(frames, { speed, skipIdle: Boolean(args["skip-idle"]), write: writeStdout });
    if (notice) process.stderr.write(notice);
    for (const w of warnings) process.stderr.write(`esr: warning: ${safeLine(w)}\n`);
    if (warnings.length) process.exitCode = 3;
  },
});

/**
 * Writes to stdout, resolving once the bytes are out. Not Bun.write(Bun.stdout): once
 * process.stdout exists, that corrupts output into a pipe that fills up (Bun 1.4). A reader that
 * stops reading (`esr play … | head`) ends playback quietly, as it would end `cat`.
 */
function writeStdout(bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) =>
    process.stdout.write(bytes, (err) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === "EPIPE") process.exit(0);
      fail(err);
    }),
  );
}
