import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { buildProcessTree, formatProcessTree } from "../lib/replay/process-tree.ts";
import { formatEventLines, formatTtyReplay, painter } from "../lib/replay/text-format.ts";
import { KINDS } from "../lib/events/kinds/index.ts";
import { safeLine } from "../lib/events/safe-text.ts";
import { readTerminalRecording } from "../lib/replay/terminal-frames.ts";
import { cliConfig, configArg, dataDirArg, eventSource, fromArg, requireSid, sidArg, verdictNotice } from "./common.ts";

/** --type values and the index types they select. */
const TYPE_FILES: Record<string, string> = {
  session: "events",
  ...Object.fromEntries(KINDS.map((k) => [k.name, k.event])),
};

export const replay = defineCommand({
  meta: { name: "replay", description: "Print every recorded event of a session, in order" },
  args: {
    ...sidArg,
    ...configArg,
    ...dataDirArg,
    ...fromArg,
    format: {
      type: "string",
      valueHint: "text|json",
      description: "text: one aligned line per event; json: the events as stored (default text)",
    },
    type: { type: "string", valueHint: "KINDS", description: "only these kinds: command,disk,network,session" },
    tty: {
      type: "boolean",
      description: "what the terminal showed, as text, with the events between its lines where they happened",
    },
    tree: {
      type: "boolean",
      description: "the session's processes as a tree: pid, argv, return code, connects and opens",
    },
  },
  async run({ args }) {
    const sid = requireSid("replay", args);
    const format = args.format ?? "text";
    if (format !== "text" && format !== "json")
      throw new EsrError(`replay: --format must be text or json, not ${JSON.stringify(format)}`, 2);
    if (args.tty && args.tree) throw new EsrError("replay: --tty and --tree are two different views; choose one", 2);
    if ((args.tty || args.tree) && args.format !== undefined)
      throw new EsrError(`replay: --format is for the event list, not for --${args.tty ? "tty" : "tree"}`, 2);
    let types: Set<string> | undefined;
    if (args.type !== undefined) {
      types = new Set(
        args.type.split(",").map((t) => {
          const file = TYPE_FILES[t.trim()];
          if (!file)
            throw new EsrError(
              `replay: unknown --type ${JSON.stringify(t)} (expected ${Object.keys(TYPE_FILES).join(", ")})`,
              2,
            );
          return file;
        }),
      );
    }
    const config = cliConfig(process.argv, args["data-dir"]);
    const source = eventSource(config, args);
    const recording = await source.session(sid);
    const events = await recording.events({ streams: types });
    const paint = painter(Boolean(process.stdout.isTTY) && !process.env.NO_COLOR);
    let lines: string[];
    if (args.tree) lines = formatProcessTree(buildProcessTree(events), paint);
    else if (args.tty) {
      // The events already read hold the print events, unless --type left the session's file out.
      const terminal = await readTerminalRecording(recording, types && !types.has("events") ? undefined : events);
      lines = formatTtyReplay(events, terminal.frames, paint);
    } else lines = format === "json" ? events.map((e) => JSON.stringify(e)) : formatEventLines(events);
    const out = lines.join("\n");
    if (out) process.stdout.write(`${out}\n`);
    const notice = await verdictNotice(source, sid, recording.warnings);
    await source.close();
    if (notice) process.stderr.write(notice);
    for (const w of recording.warnings) process.stderr.write(`esr: warning: ${safeLine(w)}\n`);
    if (recording.warnings.length) process.exitCode = 3;
  },
});
