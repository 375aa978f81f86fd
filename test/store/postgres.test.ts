/**
 * The fleet store against a real PostgreSQL (docs/contract.md §8): sessions recorded by the real esr, shipped
 * by `esr ship` as an insert-only host role, read back by a read-only role.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { ESR, record, runEsr, tempDir } from "../support/harness.ts";
import { PtySession } from "../support/pty-session.ts";
import { hostConfig, HOST_PASSWORD, READER_PASSWORD, TestPostgres } from "../support/postgres.ts";

let pg: TestPostgres;

beforeAll(async () => {
  pg = new TestPostgres();
  await pg.init();
}, 60_000);

afterAll(async () => {
  await pg?.destroy();
});

/** Every event line of a data dir's daily files (what must reach the store), parsed. */
function spooled(dataDir: string): Record<string, unknown>[] {
  const serverId = readFileSync(join(dataDir, "host_uuid"), "utf8").trim();
  const dir = join(dataDir, "log", serverId);
  return readdirSync(dir)
    .filter((n) => n.endsWith(".log"))
    .sort()
    .flatMap((n) => readFileSync(join(dir, n), "utf8").split("\n").filter(Boolean))
    .map((l) => JSON.parse(l));
}

async function ship(config: string, dataDir: string) {
  const r = await runEsr(["ship", "--once", "--config", config, "--data-dir", dataDir]);
  expect(r.stderr).not.toContain("error");
  expect(r.exitCode).toBe(0);
  return r;
}

const rowsOf = (query: string, params: unknown[] = []) => pg.rows(query, params);

/** Connects as a role with its password, as a person or host would. */
function as(user: string, password: string): SQL {
  return new SQL({ hostname: "127.0.0.1", port: pg.port, username: user, password, database: "esr_audit", max: 1 });
}

async function sqlState(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
    return undefined;
  } catch (err) {
    return (err as { errno?: string }).errno ?? String(err);
  }
}

describe("fleet store (PostgreSQL)", () => {
  test("a terminal session arrives with every field; ls, replay and play from the store equal the files byte for byte", async () => {
    const dataDir = tempDir();
    const term = new PtySession(
      [
        ESR,
        "record",
        "--data-dir",
        dataDir,
        "--events",
        "command,disk,network",
        "--",
        "sh",
        "-c",
        "echo hello-store; ls / >/dev/null; curl -s http://127.0.0.1:9/; printf '\\033[1mbold\\033[0m\\n'",
      ],
      { cols: 90, rows: 25 },
    );
    expect(await term.exited()).toBe(0);
    const sid = term.sid();
    const config = hostConfig(pg, dataDir);
    await ship(config, dataDir);

    const local = spooled(dataDir).filter((e) => e.sid === sid);
    const rows = await rowsOf(
      "SELECT event_time, event_id::text, event_type, session_id::text, event_data FROM events WHERE session_id = $1::uuid",
      [sid],
    );
    expect(rows.length).toBe(local.length);
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    for (const e of local) {
      const row = byId.get(e.uid)!;
      expect(row).toBeDefined();
      expect(row.event_data).toEqual(e);
      expect(row.event_type).toBe(e.event as string);
      expect(row.session_id).toBe(sid);
      expect(new Date(row.event_time).toISOString()).toBe(new Date(e.time as string).toISOString());
    }
    expect(new Set(local.map((e) => e.event))).toEqual(
      new Set(["session.start", "session.command", "session.disk", "session.network", "exec", "session.end"]),
    );

    // Read as the read-only role, from a machine that has none of the files (an empty data dir).
    const elsewhere = ["--from", pg.uri("auditor"), "--data-dir", tempDir()];
    const here = ["--data-dir", dataDir];
    for (const args of [
      ["replay", sid],
      ["replay", sid, "--format", "json"],
      ["replay", sid, "--tree"],
      ["replay", sid, "--tty"],
      ["replay", sid, "--type", "network,session"],
      ["play", sid, "--speed", "1000"],
    ]) {
      const [fromStore, fromFiles] = await Promise.all([runEsr([...args, ...elsewhere]), runEsr([...args, ...here])]);
      expect(fromStore.stderr).toBe("");
      expect(fromFiles.exitCode).toBe(0);
      expect(fromStore.exitCode).toBe(0);
      expect(Buffer.from(fromStore.stdout)).toEqual(Buffer.from(fromFiles.stdout));
    }
    // ls shows each session's verdict from either store; the store's is `esr verify --from`'s
    // (test/store/postgres-verify.test.ts), against the key it holds itself.
    const fromStore = await runEsr(["ls", "--json", ...elsewhere]);
    const fromFiles = await runEsr(["ls", "--json", ...here]);
    const { verifyDetail: localDetail, ...listed } = JSON.parse(fromFiles.stdout);
    const { verifyDetail: storeDetail, ...listedFromStore } = JSON.parse(fromStore.stdout);
    expect(listed.verify).toBe("whole");
    expect(listedFromStore).toEqual(listed);
    expect(storeDetail).toStartWith(`${localDetail}; its `);
    const table = (await runEsr(["ls", ...elsewhere])).stdout;
    expect(table).toMatch(new RegExp(`VERIFY[^\\n]*\\n${sid}.*  whole\\*  `));
  }, 60_000);

  test("search: every filter, newest first, pages by a stable key; the same answers as the local files", async () => {
    const dataDir = tempDir();
    const alice = await record(["sh", "-c", "/bin/echo needle-alpha; ls /tmp >/dev/null"], {
      dataDir,
      flags: ["--user", "alice"],
    });
    const bob = await record(["sh", "-c", "/bin/echo other; cat /etc/hostname >/dev/null"], {
      dataDir,
      flags: ["--user", "bob"],
    });
    const config = hostConfig(pg, dataDir);
    await ship(config, dataDir);
    const from = ["--from", pg.uri("auditor")];
    const search = async (args: string[], source = from) => {
      const r = await runEsr(["search", ...source, "--format", "json", "--limit", "1000", ...args]);
      expect(r.stderr).toBe("");
      expect(r.exitCode).toBe(0);
      return r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    };
    const mine = (events: any[]) => events.filter((e) => e.sid === alice.sid || e.sid === bob.sid);

    const byUser = mine(await search(["--user", "alice"]));
    expect(byUser.length).toBeGreaterThan(2);
    expect(byUser.every((e) => e.user === "alice" && e.sid === alice.sid)).toBe(true);
    const text = await search(["--text", "NEEDLE-ALPHA"]);
    // sh and the echo it runs can exec in the same millisecond, and then their uids order them.
    expect(text.map((e) => [e.event, e.path, e.argv]).sort()).toEqual([
      ["session.command", "/bin/echo", ["needle-alpha"]],
      ["session.command", "/usr/bin/sh", ["-c", "/bin/echo needle-alpha; ls /tmp >/dev/null"]],
    ]);
    const textKeys = text.map((e) => `${e.time}|${e.uid}`);
    expect([...textKeys].sort().reverse()).toEqual(textKeys);
    const program = mine(await search(["--program", "cat", "--type", "command"]));
    expect(program.map((e) => [e.sid, e.path])).toEqual([[bob.sid, "/usr/bin/cat"]]);
    const sessionEvents = await search(["--sid", bob.sid, "--type", "session"]);
    expect(sessionEvents.map((e) => e.event)).toEqual(["session.end", "session.start"]);
    const login = mine(await search(["--login", "root", "--host", hostname(), "--since", "1h"]));
    expect(login.length).toBe(spooled(dataDir).length);
    expect(await search(["--host", `not-${hostname()}`])).toEqual([]);
    expect(mine(await search(["--until", "2000-01-01T00:00:00Z"]))).toEqual([]);
    expect(mine(await search(["--since", "2100-01-01"]))).toEqual([]);

    const all = await search(["--sid", alice.sid]);
    const keys = all.map((e) => `${e.time}|${e.uid}`);
    expect([...keys].sort().reverse()).toEqual(keys);
    // Page by page with --after: the same events, each once, in the same order.
    const paged: string[] = [];
    let after: string | undefined;
    for (;;) {
      const r = await runEsr([
        "search",
        ...from,
        "--sid",
        alice.sid,
        "--format",
        "json",
        "--limit",
        "2",
        ...(after ? ["--after", after] : []),
      ]);
      paged.push(
        ...r.stdout
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l).uid),
      );
      after = /--after '([^']+)'/.exec(r.stderr)?.[1];
      if (!after) break;
    }
    expect(paged).toEqual(all.map((e) => e.uid));

    const local = ["--data-dir", dataDir, "--config", "/dev/null"];
    for (const args of [
      ["--user", "alice"],
      ["--text", "needle"],
      ["--program", "ls"],
      ["--sid", bob.sid],
    ])
      expect(await search(args, local)).toEqual(mine(await search(args)));
  }, 60_000);

  test("the host credential can only insert; the reader can only read", async () => {
    const host = as("host1", HOST_PASSWORD);
    const reader = as("auditor", READER_PASSWORD);
    try {
      for (const table of ["events", "recordings", "host_journal"]) {
        expect(await sqlState(() => host.unsafe(`SELECT * FROM ${table} LIMIT 1`))).toBe("42501");
        expect(await sqlState(() => host.unsafe(`UPDATE ${table} SET creation_time = now()`))).toBe("42501");
        expect(await sqlState(() => host.unsafe(`DELETE FROM ${table}`))).toBe("42501");
        expect(await sqlState(() => host.unsafe(`TRUNCATE ${table}`))).toBe("42501");
        expect(await sqlState(() => reader.unsafe(`SELECT count(*) FROM ${table}`))).toBeUndefined();
        expect(await sqlState(() => reader.unsafe(`DELETE FROM ${table}`))).toBe("42501");
      }
      expect(await sqlState(() => host.unsafe("SELECT * FROM events_default LIMIT 1"))).toBe("42501");
      expect(await sqlState(() => host.unsafe("DROP TABLE events"))).toBe("42501");
      expect(
        await sqlState(() =>
          reader.unsafe(
            "INSERT INTO events (event_time, event_id, event_type, event_data) VALUES (now(), gen_random_uuid(), 'x', '{}')",
          ),
        ),
      ).toBe("42501");
    } finally {
      await host.close();
      await reader.close();
    }
  });

  test("esr killed in the middle of shipping resumes where it was: every event exactly once", async () => {
    const dataDir = tempDir();
    await record(["sh", "-c", "for i in $(seq 1500); do cat /etc/hostname; done >/dev/null"], {
      dataDir,
      flags: ["--events", "command,disk"],
    });
    const total = spooled(dataDir);
    const config = hostConfig(pg, dataDir);
    const uids = total.map((e) => e.uid as string);
    const countShipped = async () =>
      Number((await rowsOf("SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[])", [uids]))[0]!.n);

    const proc = Bun.spawn([ESR, "ship", "--config", config, "--data-dir", dataDir], { stderr: "pipe" });
    let atKill = 0;
    for (let i = 0; i < 2000 && atKill === 0; i++) {
      await Bun.sleep(5);
      atKill = await countShipped();
    }
    proc.kill("SIGKILL");
    await proc.exited;
    atKill = await countShipped();
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(total.length);

    await ship(config, dataDir);
    expect(await countShipped()).toBe(total.length);
    // A cursor lost altogether ships everything again: the uid makes every row a no-op.
    for (const name of readdirSync(join(dataDir, "ship"))) writeFileSync(join(dataDir, "ship", name), "{}");
    await ship(config, dataDir);
    const rows = await rowsOf(
      "SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM events WHERE event_id = ANY($1::uuid[])",
      [uids],
    );
    expect(rows[0]).toEqual({ n: total.length, d: total.length });
  }, 120_000);

  test("wrong password, unreachable server, bad URI: one clear line; recording goes on locally; nothing lost", async () => {
    const dataDir = tempDir();
    const wrongPass = join(tempDir(), "pgpass");
    writeFileSync(wrongPass, `127.0.0.1:${pg.port}:*:host1:not-the-password\n`, { mode: 0o600 });
    const cases: [string, string, RegExp, number][] = [
      [
        "wrong password",
        pg.uri("host1").replace(/passfile=[^&]*/, `passfile=${wrongPass}`),
        /password authentication failed for user "host1"/,
        1,
      ],
      [
        "unreachable",
        `postgresql://host1@127.0.0.1:1/esr_audit?sslmode=disable&connect_timeout=2`,
        /Failed to connect/,
        1,
      ],
      ["no user", `postgresql://127.0.0.1:${pg.port}/esr_audit`, /no user name/, 2],
      [
        "password in the URI",
        `postgresql://host1:${HOST_PASSWORD}@127.0.0.1/esr_audit`,
        /a password does not belong in a URI/,
        2,
      ],
      ["unknown parameter", `postgresql://host1@127.0.0.1/esr_audit?sslmod=disable`, /unknown parameter "sslmod"/, 2],
    ];
    for (const [what, uri, message, exitCode] of cases) {
      const config = join(tempDir(), "esr.yaml");
      writeFileSync(config, `teleport:\n  data_dir: ${dataDir}\n  storage:\n    audit_events_uri: ['${uri}']\n`);
      const rec = await record(["sh", "-c", "/bin/true"], { dataDir, flags: ["--config", config] });
      expect(rec.exitCode, what).toBe(0);
      const shipped = await runEsr(["ship", "--once", "--config", config]);
      expect(shipped.exitCode, what).toBe(exitCode);
      const lines = shipped.stderr.trim().split("\n");
      expect(lines.length, `${what}: ${shipped.stderr}`).toBe(1);
      expect(lines[0], what).toMatch(message);
      expect(shipped.stderr, what).not.toContain(HOST_PASSWORD);
      expect(shipped.stderr, what).not.toMatch(/\n\s+at /);
      if (exitCode === 1) {
        const status = await runEsr(["status", "--config", config]);
        expect(status.stdout, what).toMatch(/backlog [1-9]\d* events .* FAILING: /);
      }
    }
    // With the right credential, everything recorded meanwhile arrives.
    const good = hostConfig(pg, dataDir);
    await ship(good, dataDir);
    const uids = spooled(dataDir).map((e) => e.uid as string);
    const [row] = await rowsOf("SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1::uuid[])", [uids]);
    expect(row!.n).toBe(uids.length);
    const status = await runEsr(["status", "--config", good, "--data-dir", dataDir]);
    expect(status.stdout).toMatch(/backlog 0 events .* up to date/);
  }, 60_000);

  test("server stopped mid-session and restarted 30 s later: every event arrives exactly once, no connection held when idle", async () => {
    const dataDir = tempDir();
    const config = hostConfig(pg, dataDir);
    const shipper = Bun.spawn([ESR, "ship", "--interval", "1", "--config", config, "--data-dir", dataDir], {
      stderr: "pipe",
    });
    try {
      const session = record(["sh", "-c", "for i in $(seq 80); do /bin/true $i; sleep 0.5; done"], { dataDir });
      await Bun.sleep(4000);
      pg.stop();
      await Bun.sleep(30_000);
      pg.start();
      const { sid } = await session;
      const uids = spooled(dataDir).map((e) => e.uid as string);
      expect(uids.length).toBeGreaterThan(80);
      let shipped = 0;
      for (let i = 0; i < 300 && shipped < uids.length; i++) {
        await Bun.sleep(200);
        shipped = Number(
          (await rowsOf("SELECT count(*)::int AS n FROM events WHERE session_id = $1::uuid", [sid]))[0]!.n,
        );
      }
      const [row] = await rowsOf(
        "SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d, count(*) FILTER (WHERE event_id = ANY($2::uuid[]))::int AS known FROM events WHERE session_id = $1::uuid",
        [sid, uids],
      );
      expect(row).toEqual({ n: uids.length, d: uids.length, known: uids.length });
      const [rec] = await rowsOf("SELECT count(*)::int AS n FROM recordings WHERE session_id = $1::uuid", [sid]);
      expect(rec!.n).toBeGreaterThan(1);
      // Batch-and-disconnect: once caught up, the host holds no server connection.
      await Bun.sleep(1500);
      const [held] = await rowsOf("SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'host1'");
      expect(held!.n).toBe(0);
    } finally {
      shipper.kill("SIGTERM");
      await shipper.exited;
    }
    const log = await new Response(shipper.stderr).text();
    expect(log).toMatch(/will retry, nothing is lost/);
    expect(log).toMatch(/shipping again/);
  }, 150_000);
});
