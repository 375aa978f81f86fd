import { defineCommand } from "citty";
import { EsrError } from "../lib/errors.ts";
import { safeLine } from "../lib/events/safe-text.ts";
import { hostChecks } from "../lib/check/host-checks.ts";
import { cliConfig, configArg } from "./common.ts";
import { socketArg } from "./pam.ts";
import { hostKeyItem } from "../lib/store/integrity/host-key.ts";

export const check = defineCommand({
  meta: { name: "check", description: "Say, item by item, whether this host can record" },
  args: {
    ...configArg,
    sshd: {
      type: "string",
      valueHint: "PATH",
      description: "the sshd binary as started (its name is the PAM service on OpenSSH < 9.8; default /usr/sbin/sshd)",
    },
    "sshd-config": {
      type: "string",
      valueHint: "FILE",
      description: "the sshd_config it runs with (default sshd's own)",
    },
    ...socketArg,
  },
  run({ args }) {
    if (args._.length) throw new EsrError(`check: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    const items = hostChecks(cliConfig(process.argv), {
      sshd: args.sshd,
      config: args["sshd-config"],
      socketPath: args.socket,
    });
    items.push(hostKeyItem(cliConfig(process.argv)));
    for (const item of items)
      // Details quote what they found (sshd's config, PAM files, paths), which need not be plain text.
      console.log(
        safeLine(`${item.ok ? (item.warn ? "warn" : "ok  ") : "FAIL"}  ${item.name.padEnd(14)}  ${item.detail}`),
      );
    if (!items.every((i) => i.ok)) process.exitCode = 1;
  },
});
