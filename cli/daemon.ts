import { defineCommand } from "citty";
import { runDaemon } from "../lib/ssh/daemon.ts";
import { DEFAULT_SOCKET } from "../lib/ssh/protocol.ts";
import { EsrError } from "../lib/errors.ts";
import { safeLine } from "../lib/events/safe-text.ts";
import { requireRecordingHost } from "../lib/check/host-checks.ts";
import { cliConfig, configArg, dataDirArg } from "./common.ts";
import { socketArg } from "./pam.ts";

export const daemon = defineCommand({
  meta: {
    name: "daemon",
    description: "Record every OpenSSH login of this host, in the foreground (esr pam asks it; see README)",
  },
  args: { ...configArg, ...dataDirArg, ...socketArg },
  async run({ args }) {
    if (args._.length) throw new EsrError(`daemon: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    requireRecordingHost();
    const config = cliConfig(process.argv, args["data-dir"]);
    await runDaemon({
      config,
      socketPath: args.socket ?? DEFAULT_SOCKET,
      // Lines name logins, users and remote hosts (a reverse-DNS name is the client's to choose).
      log: (line) => process.stderr.write(`esr daemon: ${safeLine(line)}\n`),
    });
    process.exit(0);
  },
});
