import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { runShipping, shipTargets } from "../lib/store/postgres/ship-service.ts";
import { cliConfig, configArg, dataDirArg } from "./common.ts";

export const ship = defineCommand({
  meta: {
    name: "ship",
    description:
      "Ship this host's events and finished recordings to the fleet store (teleport.storage), in the foreground",
  },
  args: {
    ...configArg,
    ...dataDirArg,
    once: { type: "boolean", description: "ship what is recorded so far, then exit (non-zero if a target failed)" },
    interval: { type: "string", valueHint: "SECONDS", description: "how often to look for new events (default 2)" },
  },
  async run({ args }) {
    if (args._.length) throw new EsrError(`ship: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const interval = args.interval === undefined ? 2 : Number(args.interval);
    if (!(interval > 0 && interval <= 3600))
      throw new EsrError(
        `ship: --interval must be a number of seconds up to 3600, not ${JSON.stringify(args.interval)}`,
        2,
      );
    const config = cliConfig(process.argv, args["data-dir"]);
    const targets = shipTargets(config.storage);
    if (targets.length === 0)
      throw new EsrError("ship: no postgresql:// URI in teleport.storage.audit_events_uri or audit_sessions_uri", 2);
    const log = (line: string) => process.stderr.write(`esr ship: ${line}\n`);
    const stopped = new Promise<void>((resolve) => {
      for (const signal of ["SIGTERM", "SIGINT"] as const)
        process.once(signal, () => {
          log(`${signal}: stopping after the batch in flight`);
          resolve();
        });
    });
    const ok = await runShipping({
      dataDir: config.dataDir,
      targets,
      intervalMs: interval * 1000,
      once: Boolean(args.once),
      log,
      stopped,
    });
    process.exit(ok ? 0 : 1);
  },
});
