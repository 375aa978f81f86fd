#!/usr/bin/env bun
/** esr: the command line. Each command only parses its options and calls lib/. */
import { defineCommand } from "citty";
import pkg from "../package.json" with { type: "json" };
import { check } from "./check.ts";
import { daemon } from "./daemon.ts";
import { ls } from "./ls.ts";
import { pam } from "./pam.ts";
import { play } from "./play.ts";
import { record } from "./record.ts";
import { replay } from "./replay.ts";
import { runCli } from "./run.ts";

const main = defineCommand({
  meta: { name: "esr", version: pkg.version, description: "Enhanced session recorder: records every exec, connect and open of a session, as the kernel sees them" },
  subCommands: { record, replay, ls, check, daemon, pam, play },
});

// No top-level await: `bun build --bytecode` (faster start) compiles to CommonJS.
void runCli(main, process.argv.slice(2));
