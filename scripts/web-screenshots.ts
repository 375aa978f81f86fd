#!/usr/bin/env bun
/**
 * Makes the README's screenshots of `esr serve` (docs/web-*.png): records a terminal session
 * with the blind spots esr exists for, serves it, and photographs the three pages in chromium.
 *   bun scripts/web-screenshots.ts      (after scripts/setup.sh)
 */
import { join } from "node:path";
import { ESR, ROOT, tempDir } from "../test/support/harness.ts";
import { launchBrowser } from "../test/support/browser.ts";
import { PtySession } from "../test/support/pty-session.ts";
import { startServe } from "../test/support/web-server.ts";

const PROMPT = "alice@web-1:~$ ";
const dataDir = tempDir();
const work = tempDir();
await Bun.write(
  join(work, "deploy.sh"),
  "#!/bin/sh\nid -un\nuname -r\n/usr/bin/curl -s -o /dev/null http://127.0.0.1:9/upload\n",
);
await Bun.write(join(work, "esr.yaml"), "teleport:\n  nodename: web-1\n");

async function recordSession(lines: string[]) {
  const pty = new PtySession(
    [ESR, "record", "--data-dir", dataDir, "--config", join(work, "esr.yaml"), "--user", "alice@example.com"].concat([
      "--events",
      "command,network,disk",
      "--",
      "bash",
      "--norc",
      "-i",
    ]),
    { env: { PS1: PROMPT }, cols: 90, rows: 22 },
  );
  await pty.waitFor(PROMPT);
  for (const line of lines) {
    // Not pty.run: with echo off the line never shows, and the prompt may come back within its length.
    const from = pty.screen.length;
    pty.keys(`${line}\r`);
    await pty.waitFor(PROMPT, from);
    await Bun.sleep(300);
  }
  pty.keys("exit\r");
  await pty.exited();
}

await recordSession(["uptime", "ls /etc | head -3"]);
await recordSession([
  "cat /etc/hostname",
  "echo Y3VybCAtcyAtbyAvZGV2L251bGwgaHR0cDovLzEyNy4wLjAuMTo5L3NlY3JldAo= | base64 -d | sh",
  `sh ${work}/deploy.sh`,
  "stty -echo",
  "/bin/cat /etc/shadow > /dev/null",
  "stty echo",
  "date",
]);

const server = await startServe(dataDir);
const browser = await launchBrowser();
const page = await browser.newPage();
await page.setViewportSize({ width: 1400, height: 860 });
await page.goto(`${server.url}/`);
await page.fill("#token", server.token);
await page.click("#login button");
await page.waitForSelector("table.sessions");
await page.screenshot({ path: join(ROOT, "docs", "web-sessions.png") });

await page.goto(`${server.url}/search?type=command&user=alice@example.com`);
await page.waitForSelector("tr.hit");
await page.locator("tr.hit", { hasText: "/usr/bin/curl" }).first().click();
await page.screenshot({ path: join(ROOT, "docs", "web-audit-log.png") });

// The decoded command behind the base64 pipeline, opened from the audit log at its instant.
await page.goto(`${server.url}/search?type=command&q=secret`);
await page.locator("tr.hit").first().click();
await page.locator("a.open-in-session").first().click();
await page.waitForSelector(".event-list .row.selected");
await page.waitForTimeout(500);
await page.screenshot({ path: join(ROOT, "docs", "web-session.png") });

await browser.close();
await server.stop();
console.log("wrote docs/web-sessions.png, docs/web-audit-log.png, docs/web-session.png");
