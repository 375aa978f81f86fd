import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { safeLine } from "../lib/events/safe-text.ts";
import { parsePublicKey } from "../lib/store/integrity/host-key.ts";
import { verifyDataDir, type Verdict } from "../lib/store/integrity/verify.ts";
import { checkSessionId } from "../lib/store/file/session-files.ts";
import { isPostgresUri, maskPassword } from "../lib/store/postgres/uri.ts";
import { PostgresEventSource } from "../lib/store/postgres/source.ts";
import { verifyStore } from "../lib/store/postgres/verify-store.ts";
import { cliConfig, configArg, dataDirArg, requireSid, sidArg } from "./common.ts";

export const verify = defineCommand({
  meta: { name: "verify", description: "Check sessions' hash chains, signatures and seals against the host key" },
  args: {
    ...sidArg,
    ...configArg,
    ...dataDirArg,
    all: { type: "boolean", description: "every session of the data dir, and those its host journal says are gone" },
    from: {
      type: "string",
      valueHint: "URI",
      description: "the fleet store (postgresql://…) or a copy of a data dir (file://DIR)",
    },
    key: {
      type: "string",
      valueHint: "KEY|FILE",
      description:
        "the host's public key (ed25519:…, as esr check prints it) or a file of hosts' keys, one a line; default the data dir's (or the store's)",
    },
  },
  async run({ args }) {
    const sids = args.all ? "all" : [requireSid("verify", args)];
    if (args.all && args.sid) throw new EsrError("verify: give a session id or --all, not both", 2);
    if (sids !== "all") checkSessionId(sids[0]!);
    const rootKeys = args.key === undefined ? undefined : keysOf(args.key);
    let verdicts: Verdict[];
    if (args.from !== undefined && isPostgresUri(args.from)) {
      const source = new PostgresEventSource(args.from);
      try {
        verdicts = await verifyStore(source, sids, rootKeys);
      } finally {
        await source.close();
      }
    } else {
      const config = cliConfig(process.argv, args["data-dir"]);
      verdicts = verifyDataDir(dataDirOf(args.from) ?? config.dataDir, sids, rootKeys);
    }
    for (const v of verdicts) console.log(safeLine(`${v.sid}  ${v.status.padEnd(9)}  ${v.detail}`));
    if (!verdicts.every((v) => v.status === "whole")) process.exitCode = 1;
  },
});

function dataDirOf(from: string | undefined): string | undefined {
  if (from === undefined) return undefined;
  const file = /^file:\/\/(.+)$/i.exec(from);
  if (!file)
    throw new EsrError(
      `verify: --from must be a postgresql:// or file:// URI, not ${JSON.stringify(maskPassword(from))}`,
      2,
    );
  return resolve(decodeURIComponent(file[1]!));
}

/** One key, or a file of them, one a line (a fleet's hosts' keys): each host's journal must chain to one. */
function keysOf(text: string): string[] {
  const key = parsePublicKey(text);
  if (key) return [key];
  const lines = existsSync(text)
    ? readFileSync(text, "utf8")
        .split("\n")
        .filter((l) => l.trim())
    : [];
  const keys = lines.map(parsePublicKey);
  if (keys.length === 0 || keys.includes(undefined))
    throw new EsrError(
      `verify: --key must be ed25519:<base64> or a file holding such keys, one a line, not ${JSON.stringify(text.slice(0, 80))}`,
      2,
    );
  return keys as string[];
}
