#!/usr/bin/env bun
/** esr: the command line. Each command only parses its options and calls lib/. */
import { defineCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { runCli } from "./run.ts";

// Loaded on use: `esr record` and `esr pam` start faster without the other commands' modules.
const main = defineCommand({
  meta: {
    name: "esr",
    version: pkg.version,
    description:
      "Enhanced session recorder: records every exec, connect and open of a session, as the kernel sees them",
  },
  subCommands: {
    record: () => import("./record.ts").then((m) => m.record),
    replay: () => import("./replay.ts").then((m) => m.replay),
    ls: () => import("./ls.ts").then((m) => m.ls),
    check: () => import("./check.ts").then((m) => m.check),
    daemon: () => import("./daemon.ts").then((m) => m.daemon),
    pam: () => import("./pam.ts").then((m) => m.pam),
    play: () => import("./play.ts").then((m) => m.play),
    serve: () => import("./serve.ts").then((m) => m.serve),
    search: () => import("./search.ts").then((m) => m.search),
    ship: () => import("./ship.ts").then((m) => m.ship),
    status: () => import("./status.ts").then((m) => m.status),
    migrate: () => import("./migrate.ts").then((m) => m.migrateCommand),
    verify: () => import("./verify.ts").then((m) => m.verify),
  },
});

// No top-level await: `bun build --bytecode` (faster start) compiles to CommonJS.
void runCli(main, process.argv.slice(2));
