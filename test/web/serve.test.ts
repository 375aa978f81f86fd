/**
 * `esr serve` end to end: sessions recorded by the real recorder on a terminal, shipped by `esr ship`
 * to a real PostgreSQL, served by the real executable from the data dir and from the fleet store,
 * read in a real browser (Debian's chromium through playwright-core). Every test of the UI runs
 * against both stores.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import type { BrowserContext, Page } from "playwright-core";
import { ESR, runEsr, tempDir } from "../support/harness.ts";
import { launchBrowser, waitUntil } from "../support/browser.ts";
import { HOST_PASSWORD, shipOnce, TestPostgres } from "../support/postgres.ts";
import { SQL } from "bun";
import { PtySession, sessionFilePath } from "../support/pty-session.ts";
import { copyDataDir, editGzipLines } from "../support/tamper.ts";
import { loggedInPage, startServeOf, type WebServer } from "../support/web-server.ts";

const PROMPT = "prompt$ ";
const KEY_NOTE = "checked against the key stored in the database (pass --key with the host's own key for a real check)";
const dataDir = tempDir();
let pg: TestPostgres;
/** The server of the store whose tests are running. */
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

/** A page of the browser, logged in to the server of the store being tested. */
function loggedIn(): Promise<Page> {
  return loggedInPage(browser, server, pageErrors);
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
  pg = new TestPostgres();
  await pg.init();
  await shipOnce(pg, dataDir);
  browser = await launchBrowser();
}, 180000);

afterAll(async () => {
  await browser?.close();
  await pg?.destroy();
  expect(pageErrors).toEqual([]);
});

/** How `esr serve` is told which store to read, for each store. */
const STORES = [
  { name: "the data dir", args: () => ["--data-dir", dataDir] },
  { name: "the fleet store", args: () => ["--from", pg.uri("auditor")] },
];

for (const store of STORES)
  describe(`esr serve from ${store.name}`, () => {
    beforeAll(async () => {
      server = await startServeOf(store.args());
    });
    afterAll(async () => {
      await server?.stop();
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
        const tls = await startServeOf(store.args(), ["--tls-cert", `${dir}/cert.pem`, "--tls-key", `${dir}/key.pem`]);
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
        const bad = Bun.spawnSync([ESR, "serve", ...store.args(), "--listen", "nowhere"]);
        expect(bad.exitCode).toBe(2);
        expect(bad.stderr.toString().trim().split("\n")).toHaveLength(1);
        const port = new URL(server.url).port;
        const taken = Bun.spawnSync([
          ESR,
          "serve",
          ...store.args(),
          "--listen",
          `127.0.0.1:${port}`,
          "--token-file",
          server.tokenFile,
        ]);
        expect(taken.exitCode).toBe(1);
        expect(taken.stderr.toString()).toMatch(/^esr: serve: cannot listen on 127\.0\.0\.1:\d+: .*\n$/);
        expect((await Bun.file(server.tokenFile).text()).trim()).toBe(server.token);
        const half = Bun.spawnSync([ESR, "serve", ...store.args(), "--tls-cert", "/etc/hostname"]);
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
        expect(await page.locator(".event-list .row.selected .what").textContent()).toContain(
          "/bin/echo decoded-secret",
        );

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
  });

/** The JSON API's answer for `path`, as the page's code gets it. */
async function api(on: WebServer, path: string): Promise<any> {
  const res = await fetch(`${on.url}${path}`, { headers: { Authorization: `Bearer ${on.token}` } });
  expect(res.status).toBe(200);
  return path.endsWith("/output") ? Buffer.from(await res.arrayBuffer()) : res.json();
}

describe("esr serve: the fleet store answers as the data dir does", () => {
  let files: WebServer;
  let fleet: WebServer;
  beforeAll(async () => {
    files = await startServeOf(STORES[0]!.args());
    fleet = await startServeOf(STORES[1]!.args());
  });
  afterAll(async () => {
    await Promise.all([files?.stop(), fleet?.stop()]);
  });

  test("sessions list, audit log searches and each session's view, terminal and tree are equal", async () => {
    const same = async (path: string) => {
      const [a, b] = await Promise.all([api(files, path), api(fleet, path)]);
      delete a.ms;
      delete b.ms;
      expect({ path, answer: b }).toEqual({ path, answer: a });
      return a;
    };
    // Both stores keep each session's hash chain and say whether it verifies; the fleet store's
    // verdict is `esr verify --from`'s, its rows checked too, against the key the store holds.
    const [filesList, fleetList] = await Promise.all([api(files, "/api/sessions"), api(fleet, "/api/sessions")]);
    expect(filesList.sessions.map((s: { verify?: string }) => s.verify)).toEqual(["whole", "whole"]);
    expect(fleetList.sessions.map((s: { verify?: string }) => s.verify)).toEqual(["whole", "whole"]);
    for (const [i, s] of fleetList.sessions.entries()) {
      const v = await runEsr(["verify", s.sid, "--from", pg.uri("auditor")]);
      expect(v.stdout).toBe(`${s.sid}  whole      ${s.verifyDetail}\n`);
      expect(s.verifyDetail).toStartWith(`${filesList.sessions[i].verifyDetail}; its `);
      expect(s.verifyDetail).toEndWith(`; ${KEY_NOTE}`);
      expect(s.verifyStoredKey).toBe(true);
    }
    expect(fleetList.verifyNote).toBe(`* esr verify --from: ${KEY_NOTE}`);
    expect(filesList.verifyNote).toBeUndefined();
    for (const l of [filesList, fleetList]) {
      delete l.verifyNote;
      for (const s of l.sessions) for (const k of ["verify", "verifyDetail", "verifyStoredKey"]) delete s[k];
    }
    delete filesList.ms;
    delete fleetList.ms;
    expect(fleetList).toEqual(filesList);
    const list = filesList;
    expect(list.sessions.map((s: { sid: string }) => s.sid).sort()).toEqual([shellSid, hostileSid].sort());
    expect(list.sessions.find((s: { sid: string }) => s.sid === shellSid).unseen).toBeGreaterThan(0);
    for (const query of [
      "",
      "type=command",
      "type=command&q=DECODED-secret",
      `sid=${hostileSid}`,
      "type=session",
      "program=base64",
      "login=root&type=command&q=marker",
    ])
      expect((await same(`/api/search?${query}`)).events.length).toBeGreaterThan(0);
    // Paging by key: a page of the first answer's events, then the next from its key.
    const first = await same("/api/search");
    expect(first.events.length).toBeGreaterThan(10);
    const middle = first.events[9].event;
    const rest = await same(`/api/search?after=${encodeURIComponent(`${middle.time}|${middle.uid}`)}`);
    expect(rest.events.map((h: { event: { uid: string } }) => h.event.uid)).toEqual(
      first.events
        .slice(10)
        .map((h: { event: { uid: string } }) => h.event.uid)
        .slice(0, rest.events.length),
    );
    for (const sid of [shellSid, hostileSid]) {
      const view = await same(`/api/sessions/${sid}`);
      expect(view.meta.terminal).toBe(true);
      expect(view.index.flags.some((f: number) => f & 1)).toBe(true);
      await same(`/api/sessions/${sid}/events?offset=0&limit=500`);
      await same(`/api/sessions/${sid}/tree`);
      await same(`/api/sessions/${sid}/output`);
    }
  });
});

describe("esr serve: each session's verification", () => {
  test("a session whose file was edited behind the recorder's back is marked, on the page too; the others verified", async () => {
    const tampered = copyDataDir(dataDir);
    editGzipLines(sessionFilePath(tampered, shellSid, "session.command"), (lines) =>
      lines.map((l) => l.replace("second-marker", "innocent-text")),
    );
    const on = await startServeOf(["--data-dir", tampered]);
    try {
      const rows = (await api(on, "/api/sessions")).sessions as { sid: string; verify?: string }[];
      expect(Object.fromEntries(rows.map((r) => [r.sid, r.verify]))).toEqual({
        [shellSid]: "broken",
        [hostileSid]: "whole",
      });
      const page = await loggedInPage(browser, on, pageErrors);
      await expect(
        page.locator(`tr.session-row[data-sid="${shellSid}"] .flag.not-verified`).textContent(),
      ).resolves.toBe("verify: broken");
      await expect(page.locator(`tr.session-row[data-sid="${hostileSid}"] .flag.verified`).textContent()).resolves.toBe(
        "verified",
      );
      await page.close();
    } finally {
      await on.stop();
    }
  });
});

describe("esr serve --from: each session's verification", () => {
  /** A query as the database's administrator. */
  async function asAdmin(query: string) {
    const sql = pg.admin("esr_audit");
    try {
      return await sql.unsafe(query);
    } finally {
      await sql.close();
    }
  }

  test("a row changed in the database is marked broken with verify --from's line, on the page too", async () => {
    const [row] = await asAdmin(
      `SELECT event_id::text AS id, event_data FROM events WHERE session_id = '${hostileSid}'::uuid
       AND event_type = 'session.command' ORDER BY event_time LIMIT 1`,
    );
    await asAdmin(
      `UPDATE events SET event_data = jsonb_set(event_data, '{argv}', '["innocent"]') WHERE event_id = '${row.id}'::uuid`,
    );
    const on = await startServeOf(["--from", pg.uri("auditor")]);
    try {
      const list = await api(on, "/api/sessions");
      const rows = Object.fromEntries(list.sessions.map((r: { sid: string }) => [r.sid, r]));
      expect(rows[shellSid].verify).toBe("whole");
      expect(rows[hostileSid].verify).toBe("broken");
      const v = await runEsr(["verify", hostileSid, "--from", pg.uri("auditor")]);
      expect(v.stdout).toBe(`${hostileSid}  broken     ${rows[hostileSid].verifyDetail}\n`);
      expect(rows[hostileSid].verifyDetail).toContain(`is changed: argv is ["innocent"], recorded `);
      const page = await loggedInPage(browser, on, pageErrors);
      try {
        const flag = page.locator(`tr.session-row[data-sid="${hostileSid}"] .flag.not-verified`);
        expect(await flag.textContent()).toBe("verify: broken*");
        expect(await flag.getAttribute("title")).toContain("is changed: argv is");
        expect(await page.locator(`tr.session-row[data-sid="${shellSid}"] .flag.verified`).textContent()).toBe(
          "verified*",
        );
        expect(await page.locator("p.verify-note").textContent()).toBe(`* esr verify --from: ${KEY_NOTE}`);
      } finally {
        await page.close();
      }
    } finally {
      await on.stop();
      await asAdmin(
        `UPDATE events SET event_data = '${JSON.stringify(row.event_data).replace(/'/g, "''")}'::jsonb WHERE event_id = '${row.id}'::uuid`,
      );
    }
  });

  test("the database refusing what verify reads: each verdict says so, the list is served", async () => {
    await asAdmin("REVOKE SELECT ON host_journal FROM esr_reader");
    const on = await startServeOf(["--from", pg.uri("auditor")]);
    try {
      const list = await api(on, "/api/sessions");
      expect(list.sessions.map((s: { sid: string }) => s.sid).sort()).toEqual([shellSid, hostileSid].sort());
      for (const s of list.sessions) {
        expect(s.verify).toBe("error");
        expect(s.verifyDetail).toMatch(
          /^cannot verify: fleet store postgresql:\/\/auditor@\S+: reading the journal of host \S+: permission denied/,
        );
      }
      const page = await loggedInPage(browser, on, pageErrors);
      try {
        expect(await page.locator(`tr.session-row[data-sid="${shellSid}"] .flag.verify-error`).textContent()).toBe(
          "verify: error",
        );
      } finally {
        await page.close();
      }
      // Verified again at the next listing, once the database answers.
      await asAdmin("GRANT SELECT ON host_journal TO esr_reader");
      const again = await api(on, "/api/sessions");
      expect(again.sessions.map((s: { verify: string }) => s.verify)).toEqual(["whole", "whole"]);
    } finally {
      await on.stop();
      await asAdmin("GRANT SELECT ON host_journal TO esr_reader");
    }
  });
});

describe("esr serve --from: errors", () => {
  test("both stores, a bad URI, an unreachable database: one line and a non-zero exit at start", async () => {
    const both = await runEsr(["serve", "--from", pg.uri("auditor"), "--data-dir", dataDir]);
    expect(both.exitCode).toBe(2);
    expect(both.stderr).toMatch(/^esr: serve: --from or --data-dir, not both[^\n]*\n$/);
    const bad = await runEsr(["serve", "--from", "http://example.com/"]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^esr: --from must be a postgresql:\/\/[^\n]*\n$/);
    const password = await runEsr(["serve", "--from", `postgresql://auditor:secret@127.0.0.1:${pg.port}/esr_audit`]);
    expect(password.exitCode).not.toBe(0);
    expect(password.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(password.stderr).not.toContain("secret");
    // Port 1: nothing listens there.
    const closed = pg.uri("auditor").replace(`:${pg.port}/`, ":1/");
    const unreachable = await runEsr(["serve", "--from", closed, "--listen", "127.0.0.1:0"]);
    expect(unreachable.exitCode).toBe(1);
    expect(unreachable.stderr).toMatch(/^esr: fleet store postgresql:\/\/auditor@127\.0\.0\.1:1\/esr_audit[^\n]*\n$/);
  });

  test("rows a compromised host forged into the events table are left out; every page still works", async () => {
    // As the hosts' insert-only role: what any one host's credential can do.
    const host = new SQL({
      hostname: "127.0.0.1",
      port: pg.port,
      username: "host1",
      password: HOST_PASSWORD,
      database: "esr_audit",
      max: 1,
    });
    const forgedSid = crypto.randomUUID();
    const now = new Date().toISOString();
    const common = { code: "T4000I", uid: crypto.randomUUID(), login: "root", user: "root", time: now };
    const forged: [string, string, unknown][] = [
      ["session.start", forgedSid, null],
      ["session.start", forgedSid, ["session.start"]],
      ["session.start", forgedSid, { event: "session.start", sid: forgedSid, ei: 0, time: 5, initial_command: "x" }],
      ["session.start", shellSid, { event: "session.start", sid: shellSid, ei: 0, time: now, login: { a: 1 } }],
      ["session.command", shellSid, { ...common, event: "session.command", sid: shellSid, ei: "y", argv: ["a"] }],
      ["session.command", shellSid, { ...common, event: "session.command", sid: shellSid, ei: 1e6, argv: { a: 1 } }],
      ["session.command", forgedSid, { ...common, event: { nested: 1 }, sid: forgedSid, ei: 1 }],
      ["session.disk", forgedSid, { ...common, event: "session.disk", sid: forgedSid, ei: 2.5, path: null }],
      ["session.end", forgedSid, { ...common, event: "session.end", sid: forgedSid, ei: 3, lost_events: "all" }],
    ];
    try {
      for (const [type, sid, data] of forged)
        await host.unsafe(
          `INSERT INTO events (event_time, event_id, event_type, session_id, event_data)
           VALUES (now(), gen_random_uuid(), $1, $2::uuid, $3::text::jsonb)`,
          [type, sid, JSON.stringify(data)],
        );
    } finally {
      await host.close();
    }
    const served = await startServeOf(["--from", pg.uri("auditor")]);
    try {
      const list = await api(served, "/api/sessions");
      expect(list.sessions.map((s: { sid: string }) => s.sid).sort()).toEqual([shellSid, hostileSid].sort());
      for (const query of ["", "type=command", `sid=${shellSid}`, `sid=${forgedSid}`, "type=session"]) {
        const { events } = await api(served, `/api/search?${query}`);
        expect(events.every((h: { event: { uid: string } }) => h.event.uid !== common.uid)).toBe(true);
        expect(events.every((h: { event: { sid: string } }) => h.event.sid !== forgedSid)).toBe(true);
      }
      const forgedView = await api(served, `/api/sessions/${forgedSid}`);
      expect(forgedView.index.ms).toEqual([]);
      expect(forgedView.meta.warnings.join()).toContain("not in");
      expect((await api(served, `/api/sessions/${forgedSid}/events`)).events).toEqual([]);
      const page = await loggedInPage(browser, served, pageErrors);
      try {
        await page.waitForSelector(`tr.session-row[data-sid="${shellSid}"]`);
        await page.goto(`${served.url}/search`);
        await page.waitForSelector("tr.hit");
        await page.goto(`${served.url}/sessions/${forgedSid}`);
        await page.waitForSelector(".event-list");
        expect(await page.locator("p.error").count()).toBe(0);
      } finally {
        await page.close();
      }
      // esr ls and search read through the same reader.
      for (const args of [["ls"], ["search", "--limit", "100000"]]) {
        const r = await runEsr([...args, "--from", pg.uri("auditor")]);
        expect({ args, exitCode: r.exitCode, stderr: r.stderr }).toEqual({ args, exitCode: 0, stderr: "" });
      }
    } finally {
      await served.stop();
    }
  });

  test("the database going away while serving: that request shows an error, the server keeps running", async () => {
    const served = await startServeOf(["--from", pg.uri("auditor")]);
    const page = await loggedInPage(browser, served, pageErrors);
    try {
      await page.waitForSelector(`tr.session-row[data-sid="${shellSid}"]`);
      pg.stop();
      try {
        const res = await fetch(`${served.url}/api/search?type=command`, {
          headers: { Authorization: `Bearer ${served.token}` },
        });
        expect(res.status).toBe(503);
        expect(((await res.json()) as { error: string }).error).toMatch(
          /^fleet store postgresql:\/\/auditor@.*: searching: /,
        );
        await page.goto(`${served.url}/search?type=command`);
        await page.waitForSelector("p.error");
        expect(await page.locator("p.error").textContent()).toContain("fleet store");
        expect(served.proc.exitCode).toBeNull();
      } finally {
        pg.start();
      }
      // Back once the database is: the next request reconnects.
      await page.goto(`${served.url}/search?type=command&q=decoded-secret`);
      await page.waitForSelector("tr.hit");
      expect(await page.locator("tr.hit").count()).toBe(1);
    } finally {
      await page.close();
      await served.stop();
    }
  });
});
