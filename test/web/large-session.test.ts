/**
 * A session of 100k events in the browser: the page opens and seeks with the events fetched a
 * page at a time; then the same session shipped to the fleet store and served from there, and the
 * audit log searched over both. Prints what it measured (the README's figures); speed itself is not
 * asserted, the answers are.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { ESR, tempDir } from "../support/harness.ts";
import { launchBrowser, waitUntil } from "../support/browser.ts";
import { PtySession } from "../support/pty-session.ts";
import { shipOnce, TestPostgres } from "../support/postgres.ts";
import { loggedInPage, startServe, startServeOf, type WebServer } from "../support/web-server.ts";

const OPENS = 100_000;
const dataDir = tempDir();
let sid: string;
let server: WebServer;
let browser: BrowserContext;
let pg: TestPostgres;
const pageErrors: string[] = [];

beforeAll(async () => {
  // Opens by a shell builtin redirection: 100k events in seconds, no fork per event, into a disk
  // ring large enough that the storm loses none (the default is sized for sessions, not storms).
  const config = join(dataDir, "esr.yaml");
  writeFileSync(config, "ssh_service:\n  enhanced_recording:\n    disk_buffer_size: 8192\n");
  const pty = new PtySession([
    ESR,
    "record",
    "--config",
    config,
    "--data-dir",
    dataDir,
    "--events",
    "command,disk",
    "--",
    "bash",
    "--norc",
    "-c",
    `for ((i=0;i<${OPENS};i++)); do : < /etc/hostname; if ((i%2000==0)); then echo progress $i; /bin/true $i; fi; done; echo all-done`,
  ]);
  expect(await pty.exited(120000)).toBe(0);
  sid = pty.sid();
  server = await startServe(dataDir);
  browser = await launchBrowser();
  pg = new TestPostgres();
  await pg.init();
}, 180000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await pg?.destroy();
  expect(pageErrors).toEqual([]);
});

/** A GET of the JSON API with its wall time. */
async function timed(on: WebServer, path: string): Promise<{ ms: number; body: any }> {
  const t0 = performance.now();
  const res = await fetch(`${on.url}${path}`, {
    headers: { Authorization: `Bearer ${on.token}`, "Accept-Encoding": "gzip" },
  });
  expect(res.status).toBe(200);
  const body = await res.json();
  return { ms: performance.now() - t0, body };
}

test("a session of 100k events opens and seeks", async () => {
  const auth = { headers: { Authorization: `Bearer ${server.token}`, "Accept-Encoding": "gzip" } };
  let t0 = performance.now();
  const index = await fetch(`${server.url}/api/sessions/${sid}`, auth);
  const indexText = await index.text();
  const indexBytes = Buffer.byteLength(indexText);
  const view = JSON.parse(indexText) as { index: { ms: number[] }; meta: { durationMs: number } };
  const firstOpenMs = performance.now() - t0;

  const page = await loggedInPage(browser, server, pageErrors);
  t0 = performance.now();
  await page.goto(`${server.url}/sessions/${sid}`);
  await page.waitForSelector(".event-list .row .what:not(:text-is('…'))");
  const openMs = performance.now() - t0;
  const total = (await page.locator(".event-list .rows").boundingBox())!.height / 20;
  expect(total).toBeGreaterThan(OPENS);
  // Only the rows in view are in the page.
  expect(await page.locator(".event-list .row").count()).toBeLessThan(200);

  // Longest main-thread task while seeking: what a reviewer would feel as a freeze.
  // Page functions run in the browser: given as text, they need no DOM types here.
  await page.evaluate(`window.longest = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longest = Math.max(window.longest, e.duration);
    }).observe({ type: "longtask" });`);
  const seeks: number[] = [];
  for (const fraction of [0.5, 0.9, 0.1]) {
    const box = (await page.locator("canvas.timeline").boundingBox())!;
    const before = await page.locator(".event-list .row.current").getAttribute("data-position");
    t0 = performance.now();
    await page.mouse.click(box.x + 64 + (box.width - 64) * fraction, box.y + 5);
    const current = page.locator(".event-list .row.current");
    await waitUntil(`the list follows the seek to ${fraction}`, async () => {
      if ((await current.getAttribute("data-position")) === before) return false;
      return !(await current.locator(".what").textContent())?.startsWith("…");
    });
    seeks.push(performance.now() - t0);
    // The timeline is time: the event now current is the one at the clicked moment of the session
    // (the storm's rate varies, so its position in the list need not be that fraction of the events).
    const at = Number(await current.getAttribute("data-position"));
    expect(Math.abs(view.index.ms[at]! / view.meta.durationMs - fraction)).toBeLessThan(0.1);
  }
  const longest = (await page.evaluate("window.longest")) as number;
  console.log(
    `100k-event session: ${Math.round(total)} events; first open on the server ${Math.round(firstOpenMs)} ms ` +
      `(index ${Math.round(indexBytes / 1024)} KiB before gzip); page open ${Math.round(openMs)} ms (cached); ` +
      `seeks ${seeks.map((s) => Math.round(s)).join(", ")} ms; longest main-thread task while seeking ${Math.round(longest)} ms`,
  );
  await page.close();
}, 120000);

test("the same session from the fleet store; the audit log over both stores", async () => {
  let t0 = performance.now();
  await shipOnce(pg, dataDir);
  const shipMs = performance.now() - t0;
  const fleet = await startServeOf(["--from", pg.uri("auditor")]);
  try {
    const first = await timed(fleet, `/api/sessions/${sid}`);
    const local = await timed(server, `/api/sessions/${sid}`);
    expect(first.body).toEqual(local.body);
    const page = await loggedInPage(browser, fleet, pageErrors);
    t0 = performance.now();
    await page.goto(`${fleet.url}/sessions/${sid}`);
    await page.waitForSelector(".event-list .row .what:not(:text-is('…'))");
    const openMs = performance.now() - t0;
    await page.close();

    const searches = [
      "",
      "type=command",
      "type=disk&q=HOSTNAME",
      "program=true",
      "user=root&type=command",
      `sid=${sid}`,
    ];
    const lines: string[] = [];
    for (const query of searches) {
      const [files, stored] = [await timed(server, `/api/search?${query}`), await timed(fleet, `/api/search?${query}`)];
      expect(stored.body.events.length).toBeGreaterThan(0);
      expect(stored.body.events).toEqual(files.body.events);
      expect(stored.body.next).toEqual(files.body.next);
      lines.push(`${query || "(none)"}: data dir ${Math.round(files.ms)} ms, fleet store ${Math.round(stored.ms)} ms`);
    }
    console.log(
      `fleet store: shipped ${OPENS}+ events in ${Math.round(shipMs)} ms; first open on the server ${Math.round(first.ms)} ms; ` +
        `page open ${Math.round(openMs)} ms (cached)\naudit log, 100 a page: ${lines.join("; ")}`,
    );
  } finally {
    await fleet.stop();
  }
}, 300000);
