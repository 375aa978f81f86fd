/**
 * A real browser for the web UI's tests: Debian's chromium, driven by playwright-core, with a
 * fresh profile each time. Never downloads a browser: a missing chromium is a failure naming it.
 */
import { existsSync } from "node:fs";
import { chromium, type BrowserContext } from "playwright-core";
import { tempDir } from "./harness.ts";

export const CHROMIUM = "/usr/bin/chromium";

export async function launchBrowser(): Promise<BrowserContext> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `${CHROMIUM} is missing: the web UI tests need Debian's chromium (bash scripts/setup.sh installs it)`,
    );
  return chromium.launchPersistentContext(tempDir("esr-chromium-"), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Polls `check` from the test until it holds. Not page.waitForFunction: the UI's CSP forbids
 * evaluating strings in the page, and functions would need the DOM library's types here.
 */
export async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await Bun.sleep(50);
  }
}
