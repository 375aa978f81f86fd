import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { connect, storeError } from "../lib/store/postgres/connection.ts";
import { migrate } from "../lib/store/postgres/schema.ts";
import { isPostgresUri, maskPassword } from "../lib/store/postgres/uri.ts";
import { cliConfig, configArg } from "./common.ts";

export const migrateCommand = defineCommand({
  meta: {
    name: "migrate",
    description:
      "Create or upgrade the fleet store's schema, make its monthly partitions and drop those past retention_period (run as the database owner, e.g. daily)",
  },
  args: {
    ...configArg,
    uri: { type: "string", valueHint: "URI", description: "the owner's URI (default: the first audit_events_uri)" },
  },
  async run({ args }) {
    if (args._.length) throw new EsrError(`migrate: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const config = cliConfig(process.argv);
    const uri = args.uri ?? config.storage.auditEventsUris.find(isPostgresUri);
    if (!uri)
      throw new EsrError("migrate: which database? (--uri postgresql://… or teleport.storage.audit_events_uri)", 2);
    if (!isPostgresUri(uri)) throw new EsrError(`migrate: --uri must be a postgresql:// URI`, 2);
    const sql = connect(uri);
    try {
      const r = await migrate(sql, config.storage.retentionMs);
      console.log(
        `schema version ${r.from} -> ${r.to}; partitions created: ${r.partitionsCreated.length}, dropped: ${r.partitionsDropped.join(", ") || "none"}`,
      );
    } catch (err) {
      throw storeError(maskPassword(uri), "migrating", err);
    } finally {
      await sql.close();
    }
  },
});
