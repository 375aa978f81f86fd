import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { shipTargets } from "../lib/store/postgres/ship-service.ts";
import { Shipper } from "../lib/store/postgres/shipper.ts";
import { maskPassword } from "../lib/store/postgres/uri.ts";
import { cliConfig, configArg, dataDirArg } from "./common.ts";

export const status = defineCommand({
  meta: { name: "status", description: "What this host has recorded but not yet shipped to the fleet store" },
  args: { ...configArg, ...dataDirArg, json: { type: "boolean", description: "one JSON object per target" } },
  run({ args }) {
    if (args._.length) throw new EsrError(`status: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const config = cliConfig(process.argv, args["data-dir"]);
    const targets = shipTargets(config.storage);
    if (targets.length === 0) {
      console.log("no fleet store configured (teleport.storage): recordings stay in the data dir");
      return;
    }
    for (const target of targets) {
      const { events, bytes, cursor } = new Shipper(config.dataDir, target).backlog();
      const uri = maskPassword(target.uri);
      if (args.json) {
        console.log(JSON.stringify({ ...cursor, uri, backlog_events: events, backlog_bytes: bytes }));
        continue;
      }
      const state = cursor.lastError ? `FAILING: ${cursor.lastError}` : events ? "behind" : "up to date";
      console.log(
        `${uri}  backlog ${events} events (${bytes} bytes)  shipped ${cursor.shippedEvents} events, ${cursor.shippedRecordings} recordings  last ${cursor.lastShipped ?? "never"}  ${state}`,
      );
    }
  },
});
