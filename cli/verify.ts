import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { safeLine } from "../lib/events/safe-text.ts";
import { parsePublicKey } from "../lib/store/integrity/host-key.ts";
import { verifyDataDir } from "../lib/store/integrity/verify.ts";
import { checkSessionId } from "../lib/store/file/session-files.ts";
import { isPostgresUri, maskPassword } from "../lib/store/postgres/uri.ts";
import { cliConfig, configArg, dataDirArg, requireSid, sidArg } from "./common.ts";

export const verify = defineCommand({
  meta: { name: "verify", description: "Check sessions' hash chains, signatures and seals against the host key" },
  args: {
    ...sidArg,
    ...configArg,
    ...dataDirArg,
    all: { type: "boolean", description: "every session of the data dir, and those its host journal says are gone" },
    from: { type: "string", valueHint: "URI", description: "a copy of a data dir: file://DIR" },
    key: {
      type: "string",
      valueHint: "KEY|FILE",
      description:
        "the host's public key (ed25519:…, as esr check prints it) or a file holding it; default the data dir's",
    },
  },
  run({ args }) {
    const sids = args.all ? "all" : [requireSid("verify", args)];
    if (args.all && args.sid) throw new EsrError("verify: give a session id or --all, not both", 2);
    if (sids !== "all") checkSessionId(sids[0]!);
    const config = cliConfig(process.argv, args["data-dir"]);
    const verdicts = verifyDataDir(dataDirOf(args.from) ?? config.dataDir, sids, args.key && keyOf(args.key));
    for (const v of verdicts) console.log(safeLine(`${v.sid}  ${v.status.padEnd(9)}  ${v.detail}`));
    if (!verdicts.every((v) => v.status === "whole")) process.exitCode = 1;
  },
});

function dataDirOf(from: string | undefined): string | undefined {
  if (from === undefined) return undefined;
  if (isPostgresUri(from))
    throw new EsrError("verify: the fleet store does not keep the chain yet; verify a host's data dir (file://DIR)", 2);
  const file = /^file:\/\/(.+)$/i.exec(from);
  if (!file) throw new EsrError(`verify: --from must be a file:// URI, not ${JSON.stringify(maskPassword(from))}`, 2);
  return resolve(decodeURIComponent(file[1]!));
}

function keyOf(text: string): string {
  const key = parsePublicKey(text) ?? (existsSync(text) ? parsePublicKey(readFileSync(text, "utf8")) : undefined);
  if (!key)
    throw new EsrError(
      `verify: --key must be ed25519:<base64> or a file holding it, not ${JSON.stringify(text.slice(0, 80))}`,
      2,
    );
  return key;
}
