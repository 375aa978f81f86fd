/** `esr serve` (the real dist/esr) on a free port, with the token it printed. */
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { ESR, tempDir } from "./harness.ts";

export interface WebServer {
  url: string;
  token: string;
  tokenFile: string;
  proc: Bun.Subprocess;
  stop(): Promise<void>;
}

export function startServe(dataDir: string, extra: string[] = []): Promise<WebServer> {
  return startServeOf(["--data-dir", dataDir], extra);
}

/** `esr serve` reading the store that `storeArgs` name (`--data-dir DIR` or `--from URI`). */
export async function startServeOf(storeArgs: string[], extra: string[] = []): Promise<WebServer> {
  const tokenFile = join(tempDir("esr-serve-"), "token");
  const proc = Bun.spawn({
    cmd: [ESR, "serve", ...storeArgs, "--listen", "127.0.0.1:0", "--token-file", tokenFile, ...extra],
    stdout: "ignore",
    stderr: "pipe",
  });
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + 15000;
  while (!/access token[^\n]*: (\S+)\n/.test(text)) {
    const chunk = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (!chunk || chunk.done) {
      proc.kill();
      throw new Error(`esr serve did not start: ${text}`);
    }
    text += decoder.decode(chunk.value);
  }
  reader.releaseLock();
  const url = /serving \S+ on (\S+?)\/?\n/.exec(text)![1]!;
  const token = /access token[^\n]*: (\S+)\n/.exec(text)![1]!;
  return {
    url,
    token,
    tokenFile,
    proc,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

/**
 * A new page showing `server`'s sessions list, logged in with its token (a profile that has the
 * cookie already goes straight there); `pageErrors` collects what the page's scripts throw.
 */
export async function loggedInPage(browser: BrowserContext, server: WebServer, pageErrors: string[]): Promise<Page> {
  const page = await browser.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  await page.goto(`${server.url}/`);
  await page.waitForSelector("#token, table.sessions");
  if (await page.locator("#token").count()) {
    await page.fill("#token", server.token);
    await page.click("#login button");
    await page.waitForSelector("table.sessions");
  }
  return page;
}
