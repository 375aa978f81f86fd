/**
 * `esr serve` end to end: sessions recorded by the real recorder on a terminal, served by the real
 * executable, read in a real browser (Debian's chromium through playwright-core).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import type { BrowserContext, Page } from "playwright-core";
import { ESR, tempDir } from "../support/harness.ts";
import { launchBrowser, waitUntil } from "../support/browser.ts";
import { PtySession } from "../support/pty-session.ts";
import { startServe, type WebServer } from "../support/web-server.ts";

const PROMPT = "prompt$ ";
const dataDir = tempDir();
let server: WebServer;
let browser: BrowserContext;
let shellSid: string;
let hostileSid: string;

/** What a hostile session writes into argv, output and its metadata, each trying to run `window.__pwned = N`. */
const HOSTILE_SCRIPT = String.raw`
/bin/echo '<script>window.__pwned=1</script>' '"><img src=x onerror="window.__pwned=2">'
printf '\033]52;c;%s\007' "$(printf pwned-clipboard | base64)"
printf '\033]8;;javascript:window.__pwned=3\033\\click-me\033]8;;\033\\\n'
printf '\033]0;PWNED-TITLE\007\033]2;PWNED-TITLE\033\\'
printf 'c1-osc:\302\23552;c;cHduZWQ=\302\234:after\n'
printf 'bad-utf8:\377\376:end\n'
/bin/echo "$(printf 'argv-\377-\033]0;T\007-x')"
/bin/echo "$(printf 'bidi-\342\200\256-txt')"
`;

async function recordShell(lines: string[], flags: string[] = []): Promise<string> {
  const pty = new PtySession([ESR, "record", "--data-dir", dataDir, ...flags, "--", "bash", "--norc", "-i"], {
    env: { PS1: PROMPT },
  });
  await pty.waitFor(PROMPT);
  for (const line of lines) await pty.run(line, PROMPT);
  pty.keys("exit\r");
  expect(await pty.exited()).toBe(0);
  return pty.sid();
}

const pageErrors: string[] = [];

/** A page of the browser, logged in (the profile keeps the cookie once the form was used). */
async function loggedIn(): Promise<Page> {
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

/** Waits until the terminal widget shows `text`; says what it shows instead. */
async function screenShows(page: Page, text: string) {
  const screen = page.locator(".xterm-rows");
  try {
    await waitUntil(`the terminal shows ${text}`, async () => Boolean((await screen.textContent())?.includes(text)));
  } catch {
    throw new Error(
      `the terminal never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(await screen.textContent())}`,
    );
  }
}

beforeAll(async () => {
  shellSid = await recordShell([
    "/bin/echo first-marker",
    "sleep 0.4",
    "/bin/echo second-marker",
    "sleep 0.4",
    "echo L2Jpbi9lY2hvIGRlY29kZWQtc2VjcmV0Cg== | base64 -d | sh",
    "stty -echo",
    "/bin/echo typed-blind",
    "stty echo",
    "/bin/echo last-marker",
  ]);
  const dir = tempDir();
  await Bun.write(`${dir}/hostile.sh`, HOSTILE_SCRIPT);
  await Bun.write(`${dir}/esr.yaml`, `teleport:\n  nodename: '"><script>window.__pwned=6</script>'\n`);
  hostileSid = await recordShell(
    [`bash ${dir}/hostile.sh`],
    ["--config", `${dir}/esr.yaml`, "--user", "<img src=x onerror=window.__pwned=7>"],
  );
  server = await startServe(dataDir);
  browser = await launchBrowser();
}, 120000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

describe("esr serve: access", () => {
  test("the token file is root's alone; the API refuses requests without the token", async () => {
    expect(statSync(server.tokenFile).mode & 0o777).toBe(0o600);
    expect((await fetch(`${server.url}/api/sessions`)).status).toBe(401);
    const wrong = await fetch(`${server.url}/api/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: "guess" }),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const ok = await fetch(`${server.url}/api/sessions`, { headers: { Authorization: `Bearer ${server.token}` } });
    expect(ok.status).toBe(200);
  });

  test("read-only, with a CSP that allows no inline script and no other origin", async () => {
    const put = await fetch(`${server.url}/api/sessions`, {
      method: "DELETE",
      headers: { Authorization: `Bearer ${server.token}` },
    });
    expect(put.status).toBe(405);
    const page = await fetch(`${server.url}/`);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await page.text()).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });

  test("with a certificate and key it serves HTTPS, and the cookie is Secure", async () => {
    const dir = tempDir();
    const openssl = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"].concat([
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ]),
    );
    expect(openssl.exitCode).toBe(0);
    const tls = await startServe(dataDir, ["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`]);
    try {
      expect(tls.url).toStartWith("https://");
      const res = await fetch(`${tls.url}/api/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: tls.token }),
        tls: { rejectUnauthorized: false },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("set-cookie")).toMatch(/; HttpOnly; SameSite=Strict;.*; Secure$/);
      expect(res.headers.get("strict-transport-security")).toContain("max-age=");
    } finally {
      await tls.stop();
    }
  });

  test("bad options are one line and a usage exit", async () => {
    const bad = Bun.spawnSync([ESR, "serve", "--data-dir", dataDir, "--listen", "nowhere"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.toString().trim().split("\n")).toHaveLength(1);
    const port = new URL(server.url).port;
    const taken = Bun.spawnSync([
      ESR,
      "serve",
      "--data-dir",
      dataDir,
      "--listen",
      `127.0.0.1:${port}`,
      "--token-file",
      server.tokenFile,
    ]);
    expect(taken.exitCode).toBe(1);
    expect(taken.stderr.toString()).toMatch(/^esr: serve: cannot listen on 127\.0\.0\.1:\d+: .*\n$/);
    expect((await Bun.file(server.tokenFile).text()).trim()).toBe(server.token);
    const half = Bun.spawnSync([ESR, "serve", "--data-dir", dataDir, "--tls-cert", "/etc/hostname"]);
    expect(half.exitCode).toBe(2);
    expect(half.stderr.toString()).toContain("--tls-cert and --tls-key go together");
  });
});

describe("esr serve: in the browser", () => {
  test("list → session → click a command: the terminal shows that moment", async () => {
    const page = await loggedIn();
    const row = page.locator(`tr.session-row[data-sid="${shellSid}"]`);
    await expect(row.locator(".flag.unseen").textContent()).resolves.toContain("never shown");
    await row.locator("a.sid").click();
    await page.waitForSelector(".event-list .row");
    const command = page.locator(".event-list .row", { hasText: "/bin/echo second-marker" });
    await command.click();
    // The command line was typed (shown) before it ran; its output and later commands are not there yet.
    await screenShows(page, "echo second-marker");
    const screen = (await page.locator(".xterm-rows").textContent())!;
    expect(screen).toContain("first-marker");
    expect(screen).not.toContain("last-marker");
    expect(screen).not.toContain("decoded-secret");
    await expect(page.locator("#event-json").textContent()).resolves.toContain('"second-marker"');
    expect(new URL(page.url()).searchParams.get("t")).toMatch(/^\d+\.\d{3}$/);

    // Blind spots are marked: the decoded pipeline and what was typed with echo off.
    const unseen = await page.locator(".event-list .row.unseen .what").allTextContents();
    expect(unseen.some((t) => t.includes("/bin/echo decoded-secret"))).toBe(true);
    expect(unseen.some((t) => t.includes("/bin/echo typed-blind"))).toBe(true);
    expect(unseen.some((t) => t.includes("second-marker") || t.includes("base64"))).toBe(false);

    // A deep link to that instant opens the same screen.
    const link = page.url();
    const again = await browser.newPage();
    await again.goto(link);
    await screenShows(again, "first-marker");
    expect(await again.locator(".xterm-rows").textContent()).not.toContain("last-marker");

    // The process tree is the same session as a tree; clicking an exec seeks.
    await page.click("#tab-tree");
    await page.locator(".tree .exec", { hasText: "/bin/echo last-marker" }).click();
    await screenShows(page, "echo last-marker");
    await page.close();
    await again.close();
  });

  test("audit log: filtered on the server, full JSON on click, open in session", async () => {
    const page = await loggedIn();
    await page.goto(`${server.url}/search?type=command&q=decoded-secret`);
    await page.waitForSelector("table.search");
    const hits = page.locator("tr.hit");
    expect(await hits.count()).toBe(1);
    await hits.first().click();
    const json = JSON.parse((await page.locator("tr.detail pre.json").first().textContent())!);
    expect(json).toMatchObject({ event: "session.command", sid: shellSid, argv: ["decoded-secret"] });
    await page.locator("a.open-in-session").first().click();
    await waitUntil("the selected event is shown", async () =>
      Boolean((await page.locator("#event-json").textContent())?.includes("decoded-secret")),
    );
    expect(await page.locator(".event-list .row.selected .what").textContent()).toContain("/bin/echo decoded-secret");

    await page.goto(`${server.url}/search?type=network&q=decoded-secret`);
    await page.waitForSelector("table.search");
    expect(await page.locator("tr.hit").count()).toBe(0);
    await page.close();
  });
});

describe("esr serve: hostile sessions", () => {
  /** Nothing ran, nothing was added to the page, and the title is the page's own. */
  async function untouched(page: Page) {
    expect(await page.evaluate("window.__pwned")).toBeUndefined();
    expect(await page.title()).toBe("esr");
    expect(await page.locator("img").count()).toBe(0);
    expect(await page.locator('a[href^="javascript"]').count()).toBe(0);
    for (const src of await page.locator("script").evaluateAll((els) => els.map((e) => e.getAttribute("src"))))
      expect(src).toMatch(/^\/chunk-[\w-]+\.js$/);
  }

  test("markup in argv, user and host names is shown as text on every page", async () => {
    const page = await loggedIn();
    const row = page.locator(`tr.session-row[data-sid="${hostileSid}"]`);
    expect(await row.textContent()).toContain('"><script>window.__pwned=6</script>');
    expect(await row.textContent()).toContain("<img src=x onerror=window.__pwned=7>");
    await untouched(page);

    await page.goto(`${server.url}/search?sid=${hostileSid}&type=command`);
    await page.waitForSelector("table.search");
    const texts = (await page.locator("tr.hit td.text").allTextContents()).join("\n");
    expect(texts).toContain("<script>window.__pwned=1</script>");
    expect(texts).toContain('"><img src=x onerror="window.__pwned=2">');
    // Control characters and invalid bytes stay visible, not live.
    expect(texts).toContain("$'argv-\\ufffd-\\x1b]0;T\\x07-x'");
    expect(texts).toContain("$'bidi-\\u202e-txt'");
    await page.locator("tr.hit").first().click();
    await untouched(page);

    await page.goto(`${server.url}/sessions/${hostileSid}?t=9999`);
    await page.waitForSelector(".event-list .row");
    await screenShows(page, "bad-utf8:");
    await untouched(page);
    await page.click("#tab-tree");
    await page.waitForSelector(".tree .exec");
    await untouched(page);
    await page.close();
  });

  test("the terminal gets no clipboard, link or title sequence, in 7-bit or 8-bit form", async () => {
    const res = await fetch(`${server.url}/api/sessions/${hostileSid}/output`, {
      headers: { Authorization: `Bearer ${server.token}` },
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.includes("click-me")).toBe(true);
    for (const introducer of ["\x1b]", "\xc2\x9d", "\x1bP", "\x1b_"])
      expect(bytes.includes(Buffer.from(introducer, "latin1"))).toBe(false);
    expect(bytes.includes("PWNED-TITLE")).toBe(false);
    expect(bytes.includes("cHduZWQ")).toBe(false);

    const page = await loggedIn();
    await page.goto(`${server.url}/sessions/${hostileSid}?t=9999`);
    await screenShows(page, "click-me");
    const screen = (await page.locator(".xterm-rows").textContent())!;
    expect(screen).toContain("c1-osc::after");
    // xterm.js drops bytes that are not UTF-8; the text around them stays as it was.
    expect(screen).toContain("bad-utf8::end");
    expect(screen).not.toContain("PWNED-TITLE");
    expect(await page.title()).toBe("esr");
    await page.close();
  });
});
