import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { formatSearchLine } from "../lib/replay/text-format.ts";
import { DEFAULT_SEARCH_LIMIT, type SearchQuery } from "../lib/store/store.ts";
import { KINDS } from "../lib/events/kinds/index.ts";
import { cliConfig, configArg, dataDirArg, eventSource, fromArg } from "./common.ts";

const TYPES: Record<string, string[]> = {
  ...Object.fromEntries(KINDS.map((k) => [k.name, [k.event]])),
  session: ["session.start", "session.end"],
};

/** The events that reach the audit log (print events only time a terminal recording). */
const EVENT_NAMES = new Set<string>([...KINDS.map((k) => k.event), "session.start", "session.end", "resize"]);

export const search = defineCommand({
  meta: {
    name: "search",
    description: "Find events of every session (the fleet's, from the fleet store), newest first",
  },
  args: {
    ...configArg,
    ...dataDirArg,
    ...fromArg,
    since: { type: "string", valueHint: "TIME", description: "from this time on: RFC 3339, or an age such as 24h, 7d" },
    until: { type: "string", valueHint: "TIME", description: "before this time (same forms)" },
    user: { type: "string", description: "Teleport user" },
    login: { type: "string", description: "local account" },
    host: { type: "string", description: "server_hostname" },
    type: {
      type: "string",
      valueHint: "TYPES",
      description: "event types, comma-separated: command, disk, network, session or event names (session.end…)",
    },
    program: { type: "string", description: "the process's comm (program field)" },
    text: { type: "string", description: "text in the path or the arguments, any case" },
    sid: { type: "string", description: "one session" },
    limit: { type: "string", valueHint: "N", description: `at most N events (default ${DEFAULT_SEARCH_LIMIT})` },
    after: { type: "string", valueHint: "KEY", description: "the next page: the key the previous page printed" },
    format: { type: "string", valueHint: "text|json", description: "text: one line per event; json: the events" },
  },
  async run({ args }) {
    if (args._.length) throw new EsrError(`search: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const format = args.format ?? "text";
    if (format !== "text" && format !== "json")
      throw new EsrError(`search: --format must be text or json, not ${JSON.stringify(format)}`, 2);
    const limit = args.limit === undefined ? undefined : Number(args.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0 && limit <= 100_000))
      throw new EsrError(
        `search: --limit must be a whole number from 1 to 100000, not ${JSON.stringify(args.limit)}`,
        2,
      );
    const query: SearchQuery = {
      since: args.since === undefined ? undefined : timeArg("since", args.since),
      until: args.until === undefined ? undefined : timeArg("until", args.until),
      user: args.user,
      login: args.login,
      host: args.host,
      types: args.type?.split(",").flatMap((t) => {
        const names = TYPES[t.trim()] ?? [t.trim()];
        if (!names.every((name) => EVENT_NAMES.has(name)))
          throw new EsrError(
            `search: unknown --type ${JSON.stringify(t)} (expected ${Object.keys(TYPES).join(", ")} or an event name)`,
            2,
          );
        return names;
      }),
      program: args.program,
      text: args.text,
      sid: args.sid,
      limit,
      after: args.after,
    };
    const config = cliConfig(process.argv, args["data-dir"]);
    const source = eventSource(config, args);
    const page = await source.search(query);
    await source.close();
    const lines = page.events.map((e) => (format === "json" ? JSON.stringify(e) : formatSearchLine(e)));
    if (lines.length) process.stdout.write(`${lines.join("\n")}\n`);
    // On stderr, so that the output stays the events alone.
    if (page.next) process.stderr.write(`esr: more: esr search … --after '${page.next}'\n`);
  },
});

const AGE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** RFC 3339, or an age before now (`24h`), as an RFC 3339 UTC time. */
function timeArg(name: string, value: string): string {
  const age = /^(\d+)([smhd])$/.exec(value);
  if (age) return new Date(Date.now() - Number(age[1]) * AGE_UNITS[age[2]!]!).toISOString();
  if (/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(value) && !Number.isNaN(Date.parse(value)))
    return new Date(value).toISOString();
  throw new EsrError(
    `search: --${name} must be an RFC 3339 time or an age such as 24h, not ${JSON.stringify(value)}`,
    2,
  );
}
