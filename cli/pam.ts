import { defineCommand } from "citty";
import { DEFAULT_SOCKET } from "../lib/ssh/protocol.ts";
import { EsrError } from "../lib/errors.ts";
import { askDaemon, hookRequest, ownEnviron } from "../lib/ssh/pam-hook.ts";

/** Shared with esr daemon and esr check; defined here so that the hook, run at every login, loads no more than it needs. */
export const socketArg = {
  socket: { type: "string", valueHint: "PATH", description: `the daemon's unix socket (default ${DEFAULT_SOCKET})` },
} as const;

export const pam = defineCommand({
  meta: {
    name: "pam",
    description: "Have the esr daemon record this login (run by pam_exec at open_session and close_session)",
  },
  args: { ...socketArg },
  async run({ args }) {
    if (args._.length) throw new EsrError(`pam: unexpected argument ${JSON.stringify(args._[0])}`, 2);
    await askDaemon(args.socket ?? DEFAULT_SOCKET, hookRequest(ownEnviron()));
    process.exit(0);
  },
});
