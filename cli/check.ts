import { defineCommand } from "citty";
import { hostChecks } from "../lib/host-checks.ts";
import { cliConfig, configArg } from "./common.ts";

export const check = defineCommand({
  meta: { name: "check", description: "Say, item by item, whether this host can record" },
  args: { ...configArg },
  run() {
    const items = hostChecks(cliConfig(process.argv));
    for (const item of items) console.log(`${item.ok ? "ok  " : "FAIL"}  ${item.name.padEnd(14)}  ${item.detail}`);
    if (!items.every((i) => i.ok)) process.exitCode = 1;
  },
});
