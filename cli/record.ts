import { defineCommand } from "citty";
import { currentAccount, lookupAccount } from "../lib/sys/accounts.ts";
import { eventsForUser, parseEventKinds } from "../lib/config/config.ts";
import { requireRecordingHost } from "../lib/check/host-checks.ts";
import { runCommandSession } from "../lib/session/command-session.ts";
import { startSessionTracer } from "../lib/ssh/daemon-tracer.ts";
import { DEFAULT_SOCKET } from "../lib/ssh/protocol.ts";
import { cliConfig, configArg, dataDirArg } from "./common.ts";
import { socketArg } from "./pam.ts";

export const record = defineCommand({
  meta: { name: "record", description: "Run COMMAND in a new session and record what the kernel sees it do" },
  args: {
    ...configArg,
    ...dataDirArg,
    ...socketArg,
    daemon: {
      type: "boolean",
      default: true,
      negativeDescription: "load programs of its own instead of having a running esr daemon record the session",
    },
    login: {
      type: "string",
      valueHint: "USER",
      description: "run COMMAND as this local user, with its groups (default: the invoking user)",
    },
    user: {
      type: "string",
      valueHint: "NAME",
      description: "user name recorded in the events, selects roles (default: the login)",
    },
    roles: { type: "string", valueHint: "R1,R2", description: "roles to use instead of the user's" },
    events: {
      type: "string",
      valueHint: "KINDS",
      description: "event kinds to record instead of the roles' (command,disk,network)",
    },
    quiet: { type: "boolean", alias: "q", description: "do not print the session id" },
    "kill-on-exit": {
      type: "boolean",
      description: "when COMMAND exits, kill what it left running instead of recording it until it exits",
    },
  },
  async run({ args }) {
    const command = args._;
    requireRecordingHost();
    const config = cliConfig(process.argv, args["data-dir"]);
    const login = args.login ? lookupAccount(args.login) : currentAccount();
    const user = args.user ?? login.name;
    const events = eventsForUser(config, user, {
      roles: args.roles
        ?.split(",")
        .map((r) => r.trim())
        .filter(Boolean),
      events: args.events === undefined ? undefined : parseEventKinds(args.events, "--events"),
    });
    const { exitCode } = await runCommandSession({
      config,
      command,
      login,
      user,
      events,
      killOnExit: Boolean(args["kill-on-exit"]),
      // A running daemon's programs record the session; a recorder alone loads its own.
      startTracer: (onFailure) =>
        startSessionTracer({
          config: config.enhancedRecording,
          kinds: events,
          socket: args.daemon ? (args.socket ?? DEFAULT_SOCKET) : undefined,
          onFailure,
          warn: (line) => process.stderr.write(`${line}\n`),
        }),
      onStart: (sid) => args.quiet || process.stderr.write(`esr: session ${sid}\n`),
      onLingering: () =>
        args.quiet ||
        process.stderr.write(
          "esr: command exited; recording what it left running until it exits (--kill-on-exit to kill it instead)\n",
        ),
    });
    process.exit(exitCode);
  },
});
