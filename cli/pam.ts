import { defineCommand } from "citty";
import { DEFAULT_SOCKET } from "../lib/daemon-protocol.ts";
import { EsrError } from "../lib/errors.ts";
import { askDaemon, hookRequest, ownEnviron } from "../lib/pam.ts";
import { socketArg } from "./daemon.ts";

export const pam = defineCommand({
  meta: { name: "pam", description: "Have the esr daemon record this login (run by pam_exec at open_session and close_session)" },
  args: { ...socketArg },
  async run({ args }) {
    if (args._.length) throw new EsrError(`pam: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    await askDaemon(args.socket ?? DEFAULT_SOCKET, hookRequest(ownEnviron()));
    process.exit(0);
  },
});
