import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { fieldText, shellQuote } from "../lib/replay/text-format.ts";
import { shownVerdicts, verdictFootnote, verdictWord } from "../lib/store/verdicts.ts";
import { cliConfig, configArg, dataDirArg, eventSource, fromArg } from "./common.ts";

export const ls = defineCommand({
  meta: { name: "ls", description: "List recorded sessions, newest first" },
  args: {
    ...configArg,
    ...dataDirArg,
    ...fromArg,
    json: { type: "boolean", description: "one JSON object per session" },
    verify: {
      type: "boolean",
      default: true,
      description:
        "verify each session for the VERIFY column (--no-verify: skip it, `-`; a listing reads every recording)",
    },
  },
  async run({ args }) {
    if (args._.length) throw new EsrError(`ls: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const config = cliConfig(process.argv, args["data-dir"]);
    const source = eventSource(config, args);
    const { sessions } = await source.sessions();
    const verdicts = args.verify
      ? await shownVerdicts(
          source,
          sessions.map((s) => s.sid),
        )
      : [];
    await source.close();
    if (args.json) {
      for (const [i, s] of sessions.entries()) {
        const v = verdicts[i];
        console.log(JSON.stringify({ ...s, verify: v?.status, verifyDetail: v?.detail }));
      }
      return;
    }
    const rows = sessions.map((s, i) => [
      fieldText(s.sid),
      s.start?.slice(0, 19).replace("T", " ") ?? "?",
      s.end?.slice(11, 19) ?? "running",
      fieldText(s.login ?? "?"),
      String(s.counts.command),
      String(s.counts.network),
      String(s.counts.disk),
      String(s.lost.command + s.lost.network + s.lost.disk),
      String(s.filtered.command + s.filtered.network + s.filtered.disk),
      verdictWord(verdicts[i]),
      shellQuote(s.command),
    ]);
    const header = [
      "SESSION",
      "START (UTC)",
      "END",
      "LOGIN",
      "EXEC",
      "NET",
      "DISK",
      "LOST",
      "FILTERED",
      "VERIFY",
      "COMMAND",
    ];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows])
      console.log(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "));
    const footnote = verdictFootnote(verdicts);
    if (footnote) console.log(footnote);
  },
});
