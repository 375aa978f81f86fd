/**
 * The fleet store keeps the chain (README "Tamper-evident recordings"): sessions recorded by the real esr,
 * shipped by `esr ship` into a real PostgreSQL, then changed as a database administrator could change them;
 * `esr verify --from postgresql://…` (as the read-only role) must find and locate each change.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ESR, record, runEsr, sessionsDir, tempDir } from "../support/harness.ts";
import { waitFor } from "../support/adversary.ts";
import { PtySession } from "../support/pty-session.ts";
import { hostConfig, shipOnce, TestPostgres } from "../support/postgres.ts";
import { chainFilePath, editGzipBytes, resignEnd, strangerKey, verifyFrom } from "../support/tamper.ts";

/** Checkpoints every second, a new key epoch every second: several of each per session. */
const FAST = `esr:\n  integrity:\n    checkpoint_interval: 1s\n    epoch_length: 1s\n`;
const KEY_NOTE = "checked against the key stored in the database (pass --key with the host's own key for a real check)";

let pg: TestPostgres;
let config: string;
/** One host: a terminal session left clean, and one session per change made in the database. */
const host = { dataDir: tempDir(), clean: "", tampered: [] as string[] };

async function commandSession(): Promise<string> {
  const r = await record(["sh", "-c", "/bin/true one; /bin/echo two > /dev/null; /bin/true three four"], {
    dataDir: host.dataDir,
    flags: ["--config", config, "--events", "command"],
  });
  expect(r.exitCode).toBe(0);
  return r.sid;
}

const rowsOf = (query: string, params: unknown[] = []) => pg.rows(query, params);

const serverId = (dataDir: string) => readFileSync(join(dataDir, "host_uuid"), "utf8").trim();

/** A session on a terminal, with checkpoints between its outputs. */
async function terminalSession(): Promise<string> {
  const term = new PtySession(
    [ESR, "record", "--data-dir", host.dataDir, "--config", config, "--events", "command", "--", "sh", "-c"].concat(
      "echo out-one; sleep 0.6; /bin/echo out-two; sleep 0.6; printf 'done\\n'",
    ),
    { cols: 80, rows: 24 },
  );
  expect(await term.exited()).toBe(0);
  return term.sid();
}

beforeAll(async () => {
  pg = new TestPostgres();
  await pg.init();
  config = join(tempDir(), "esr.yaml");
  writeFileSync(config, FAST);
  host.clean = await terminalSession();
  for (let i = 0; i < 5; i++) host.tampered.push(await commandSession());
  await shipOnce(pg, host.dataDir);
}, 90_000);

afterAll(async () => {
  await pg?.destroy();
});

/** `verify --from` as the reader; expects one broken line for `sid` matching `pattern`. */
async function expectBroken(sid: string, pattern: RegExp) {
  const v = await verifyFrom(pg.uri("auditor"), sid);
  expect(v.stderr).toBe("");
  expect(v.stdout).toStartWith(`${sid}  broken`);
  expect(v.stdout.trim().split("\n").length).toBe(1);
  expect(v.stdout).toMatch(pattern);
  expect(v.exitCode).toBe(1);
  return v.stdout;
}

/** The stored command events of a session, by ei. */
async function commandRows(sid: string) {
  return rowsOf(
    `SELECT event_id::text AS id, event_data FROM events WHERE session_id = $1::uuid AND event_type = 'session.command'
     ORDER BY (event_data->>'ei')::int`,
    [sid],
  );
}

describe("esr verify --from the fleet store", () => {
  test("a shipped session verifies whole, as on the host, and says whose key it trusted; the store holds chain and journal", async () => {
    const sid = host.clean;
    const local = await runEsr(["verify", sid, "--data-dir", host.dataDir]);
    expect(local.exitCode).toBe(0);
    const localDetail = local.stdout.trim().slice(`${sid}  whole      `.length);
    const rows = await rowsOf("SELECT count(*)::int AS n FROM events WHERE session_id = $1::uuid", [sid]);
    const v = await verifyFrom(pg.uri("auditor"), sid);
    expect(v.stderr).toBe("");
    expect(v.stdout).toBe(`${sid}  whole      ${localDetail}; its ${rows[0]!.n} event rows match; ${KEY_NOTE}\n`);
    expect(v.exitCode).toBe(0);
    // With the host's own key (kept off the host), the line no longer says it trusted the store.
    const keyFile = join(tempDir(), "host.pub");
    writeFileSync(keyFile, readFileSync(join(host.dataDir, "integrity", "host.pub")));
    const keyed = await verifyFrom(pg.uri("auditor"), sid, ["--key", keyFile]);
    expect(keyed.stdout).toBe(`${sid}  whole      ${localDetail}; its ${rows[0]!.n} event rows match\n`);
    // What the store keeps: the chain with the files, the journal line for line.
    const files = await rowsOf("SELECT file_name FROM recordings WHERE session_id = $1::uuid", [sid]);
    expect(files.map((f) => f.file_name)).toContain(`${sid}.chain`);
    const journal = await rowsOf("SELECT entry FROM host_journal WHERE server_id = $1::uuid ORDER BY line", [
      serverId(host.dataDir),
    ]);
    expect(journal.map((r) => `${r.entry}\n`).join("")).toBe(
      readFileSync(join(host.dataDir, "integrity", "journal"), "utf8"),
    );
  });

  test("a row of the events table deleted: which ei", async () => {
    const sid = host.tampered[0]!;
    const victim = (await commandRows(sid))[1]!;
    await rowsOf("DELETE FROM events WHERE event_id = $1::uuid", [victim.id]);
    await expectBroken(
      sid,
      new RegExp(
        `the recording verifies whole \\(\\d+ items\\), the events table does not: the row of ei ${victim.event_data.ei} \\(session\\.command\\) is deleted; ${KEY_NOTE.replace(/[()]/g, "\\$&")}\n$`,
      ),
    );
  });

  test("one field of a row's JSON changed: which ei, which field, what it was", async () => {
    const sid = host.tampered[1]!;
    const victim = (await commandRows(sid)).find((r) => r.event_data.argv?.includes("three"))!;
    await rowsOf(
      `UPDATE events SET event_data = jsonb_set(event_data, '{argv}', '["thrEE","four"]') WHERE event_id = $1::uuid`,
      [victim.id],
    );
    await expectBroken(
      sid,
      new RegExp(
        `the row of ei ${victim.event_data.ei} \\(session\\.command\\) is changed: argv is \\["thrEE","four"\\], recorded \\["three","four"\\]; `,
      ),
    );
  });

  test("a row inserted into a session: named as not in the recording", async () => {
    const sid = host.tampered[2]!;
    const [model] = await commandRows(sid);
    const forged = { ...model!.event_data, uid: crypto.randomUUID(), argv: ["/bin/rm", "-rf", "/evidence"] };
    await rowsOf(
      `INSERT INTO events (event_time, event_id, event_type, session_id, event_data)
       VALUES ($1::timestamptz, $2::uuid, 'session.command', $3::uuid, $4::text::jsonb)`,
      [forged.time, forged.uid, sid, JSON.stringify(forged)],
    );
    await expectBroken(
      sid,
      new RegExp(
        `a row the recording does not hold is added: event_id ${forged.uid} \\(session\\.command, ei ${forged.ei}\\)`,
      ),
    );
  });

  test("a stored recording file changed (valid gzip): the chain breaks there; a file's row deleted: that file", async () => {
    const sid = host.tampered[3]!;
    const [file] = await rowsOf(
      "SELECT file_name, data FROM recordings WHERE session_id = $1::uuid AND file_name LIKE '%command-events.gz'",
      [sid],
    );
    const edited = editGzipBytes(file!.data, (t) => t.replace('"three"', '"thrEE"'));
    await rowsOf("UPDATE recordings SET data = $1 WHERE session_id = $2::uuid AND file_name = $3", [
      edited,
      sid,
      file!.file_name,
    ]);
    await expectBroken(sid, /verified up to item \d+; items \d+–\d+ are not what was recorded \(changed in place\)/);
    await rowsOf("DELETE FROM recordings WHERE session_id = $1::uuid AND file_name = $2", [sid, file!.file_name]);
    await expectBroken(
      sid,
      new RegExp(
        `\\(session\\.command ei \\d+\\) not in postgresql://auditor@\\S+ recording ${sid}/${file!.file_name}: cannot read \\(not stored\\) \\(removed\\?\\)`,
      ),
    );
  });

  test("a checkpoint re-signed with another key: a bad signature; another host's key with --key: wrong key", async () => {
    const sid = host.tampered[4]!;
    const name = `${sid}.chain`;
    const [chain] = await rowsOf("SELECT data FROM recordings WHERE session_id = $1::uuid AND file_name = $2", [
      sid,
      name,
    ]);
    const resigned = Buffer.from(resignEnd(Buffer.from(chain!.data).toString("utf8")));
    await rowsOf("UPDATE recordings SET data = $1 WHERE session_id = $2::uuid AND file_name = $3", [
      resigned,
      sid,
      name,
    ]);
    await expectBroken(sid, /the end checkpoint at item \d+ has a bad signature for epoch \d+'s key/);
    const wrong = await verifyFrom(pg.uri("auditor"), host.clean, ["--key", strangerKey()]);
    expect(wrong.stdout).toMatch(new RegExp(`^${host.clean}  wrong-key  the journal's root key is ed25519:\\S+\\n$`));
    expect(wrong.exitCode).toBe(1);
  });

  test("a whole session deleted from the store: verify --all names it as a gap in its host's sequence", async () => {
    const dataDir = tempDir();
    const sids: string[] = [];
    for (let i = 0; i < 3; i++)
      sids.push((await record(["/bin/true"], { dataDir, flags: ["--config", config, "--events", "command"] })).sid);
    await shipOnce(pg, dataDir);
    // The fleet's keys kept elsewhere, one a line: each host's journal is checked against its own.
    const keys = join(tempDir(), "fleet-keys");
    writeFileSync(
      keys,
      [host.dataDir, dataDir].map((d) => readFileSync(join(d, "integrity", "host.pub"), "utf8")).join(""),
    );
    const before = await verifyFrom(pg.uri("auditor"), "--all", ["--key", keys]);
    for (const sid of [...sids, host.clean])
      expect(before.stdout).toMatch(new RegExp(`^${sid}  whole .* rows match$`, "m"));
    await rowsOf("DELETE FROM recordings WHERE session_id = $1::uuid", [sids[1]]);
    await rowsOf("DELETE FROM events WHERE session_id = $1::uuid", [sids[1]]);
    const after = await verifyFrom(pg.uri("auditor"), "--all");
    const lines = after.stdout.trim().split("\n");
    const mine = lines.filter((l) => sids.some((sid) => l.startsWith(sid)));
    expect(mine[0]).toStartWith(`${sids[0]}  whole`);
    expect(mine[1]).toMatch(
      new RegExp(
        `^${sids[1]}  missing    session seq 1 of host ${serverId(dataDir)} missing from the store \\(the host journal records its start at \\S+ and its seal at \\S+; 0 of its event rows are stored\\)`,
      ),
    );
    expect(mine[2]).toStartWith(`${sids[2]}  whole`);
    // Every session of the first host is there too, each with its own verdict.
    for (const sid of host.tampered) expect(lines.some((l) => l.startsWith(`${sid}  broken`))).toBe(true);
    expect(after.exitCode).toBe(1);
    const one = await verifyFrom(pg.uri("auditor"), sids[1]!);
    expect(one.stdout).toStartWith(`${sids[1]}  missing    session seq 1 of host`);
    expect(one.exitCode).toBe(1);
    // A line of the stored journal deleted (to hide what it recorded): the later epochs lose their certificate.
    await rowsOf("DELETE FROM host_journal WHERE server_id = $1::uuid AND line = 1", [serverId(dataDir)]);
    const cut = await verifyFrom(pg.uri("auditor"), sids[2]!);
    expect(cut.stdout).toMatch(
      new RegExp(
        `^${sids[2]}  broken     verified up to item 0; the start checkpoint at item 1 is signed in epoch \\d+, which the host journal does not certify \\(\\S+ host_journal of host ${serverId(dataDir)} line 3: holds epoch 2 where epoch 1 belongs \\(lines removed or inserted\\)\\)`,
      ),
    );
  }, 60_000);

  test("sessions ending while esr ship runs: each recording is shipped sealed, and verifies whole", async () => {
    const dataDir = tempDir();
    const shipper = Bun.spawn(
      [ESR, "ship", "--interval", "0.05", "--config", hostConfig(pg, dataDir, FAST), "--data-dir", dataDir],
      { stderr: "pipe" },
    );
    const sids: string[] = [];
    try {
      for (let i = 0; i < 8; i++)
        sids.push((await record(["/bin/true"], { dataDir, flags: ["--config", config, "--events", "command"] })).sid);
      await waitFor(
        "every recording shipped",
        async () => {
          const [row] = await rowsOf(
            "SELECT count(DISTINCT session_id)::int AS n FROM recordings WHERE session_id = ANY($1::uuid[])",
            [sids],
          );
          return row!.n === sids.length;
        },
        20_000,
        200,
      );
    } finally {
      shipper.kill("SIGTERM");
      await shipper.exited;
    }
    for (const sid of sids) {
      const v = await verifyFrom(pg.uri("auditor"), sid);
      expect(v.stdout).toStartWith(`${sid}  whole`);
    }
    expect(await new Response(shipper.stderr).text()).not.toContain("never marked completed");
  }, 60_000);

  test("a session.end shipped before the recorder has sealed its chain: the shipper waits for the seal", async () => {
    const dataDir = tempDir();
    const { sid } = await record(["/bin/true"], { dataDir, flags: ["--config", config, "--events", "command"] });
    // The moment between the recorder writing session.end and sealing: no end checkpoint, not completed.
    const chain = chainFilePath(dataDir, sid);
    const sealed = readFileSync(chain, "utf8");
    writeFileSync(chain, sealed.slice(0, sealed.trimEnd().lastIndexOf("\n") + 1));
    const completed = join(sessionsDir(dataDir), `${sid}.completed`);
    rmSync(completed);
    const shipping = shipOnce(pg, dataDir);
    await Bun.sleep(1000);
    writeFileSync(chain, sealed);
    writeFileSync(completed, "completed");
    await shipping;
    expect((await verifyFrom(pg.uri("auditor"), sid)).stdout).toStartWith(`${sid}  whole`);
  });

  test("a database that cannot be reached: one clear line, non-zero exit", async () => {
    const v = await verifyFrom("postgresql://auditor@127.0.0.1:1/esr_audit?sslmode=disable&connect_timeout=2", "--all");
    expect(v.stdout).toBe("");
    const lines = v.stderr.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(
      /^esr: fleet store postgresql:\/\/auditor@127\.0\.0\.1:1\/esr_audit\S*: .*Failed to connect/,
    );
    expect(v.exitCode).toBe(1);
    const unknown = await verifyFrom(pg.uri("auditor"), crypto.randomUUID());
    expect(unknown.stderr).toMatch(/^esr: unknown session \S+ \(not in postgresql:\/\/auditor@/);
    expect(unknown.exitCode).not.toBe(0);
  });
});

/** `esr ls --from` as the reader: each session's row, its JSON object, and what the table says below it. */
async function listed(sids: string[]) {
  const from = ["--from", pg.uri("auditor")];
  const [table, json] = await Promise.all([runEsr(["ls", ...from]), runEsr(["ls", "--json", ...from])]);
  for (const r of [table, json])
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
  const lines = table.stdout.trimEnd().split("\n");
  const objects = json.stdout
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l));
  return {
    rows: sids.map((sid) => lines.find((l) => l.startsWith(`${sid}  `))!),
    objects: sids.map((sid) => objects.find((o) => o.sid === sid)),
    footnote: lines.at(-1)!,
  };
}

/** The detail `esr verify --from` prints for a session, and its verdict. */
async function verifyLine(sid: string) {
  const v = await verifyFrom(pg.uri("auditor"), sid);
  const [, status, detail] = /^\S+  (\S+) +(.*)\n$/.exec(v.stdout)!;
  return { status, detail };
}

/** `esr <args> --from` as the reader with stdout and stderr into one file, to see what comes after what. */
async function runInOrder(args: string[]) {
  const file = join(tempDir(), "out");
  const fd = openSync(file, "w");
  try {
    const proc = Bun.spawn([ESR, ...args, "--from", pg.uri("auditor")], { stdout: fd, stderr: fd });
    expect(await proc.exited).toBe(0);
  } finally {
    closeSync(fd);
  }
  return readFileSync(file, "utf8");
}

describe("the readers show the fleet store's verdicts unasked", () => {
  test("ls, replay and play --from: verify --from's verdict, that it trusted the stored key; a row deleted shows", async () => {
    const sid = await terminalSession();
    await shipOnce(pg, host.dataDir);
    const clean = await verifyLine(sid);
    expect(clean.status).toBe("whole");
    let ls = await listed([sid]);
    expect(ls.rows[0]).toMatch(/  whole\*  /);
    expect(ls.objects[0]).toMatchObject({ verify: "whole", verifyDetail: clean.detail });
    expect(ls.footnote).toBe(`* esr verify --from: ${KEY_NOTE}`);
    const replayed = await runInOrder(["replay", sid]);
    expect(replayed).toContain("/bin/echo out-two");
    expect(replayed).not.toContain("esr:");

    const victim = (await commandRows(sid))[1]!;
    await rowsOf("DELETE FROM events WHERE event_id = $1::uuid", [victim.id]);
    const broken = await verifyLine(sid);
    expect(broken.status).toBe("broken");
    expect(broken.detail).toContain(`the row of ei ${victim.event_data.ei} (session.command) is deleted; ${KEY_NOTE}`);
    ls = await listed([sid]);
    expect(ls.rows[0]).toMatch(/  broken\*  /);
    expect(ls.objects[0]).toMatchObject({ verify: "broken", verifyDetail: broken.detail });
    // The recording itself reads whole: replay and play print it all, then say it does not verify.
    const notice = `esr: verify: broken: ${broken.detail}\n`;
    expect(await runInOrder(["replay", sid])).toBe(replayed + notice);
    const played = await runInOrder(["play", sid, "--speed", "1000"]);
    expect(played).toEndWith(notice);
    expect(played.length).toBeGreaterThan(notice.length);
  });

  test("a database error while verifying: that host's sessions show an error, the others their verdicts", async () => {
    // Another host whose stored journal cannot be read: a policy that fails reading its rows.
    const other = tempDir();
    const { sid: failing } = await record(["/bin/true"], {
      dataDir: other,
      flags: ["--config", config, "--events", "command"],
    });
    await shipOnce(pg, other);
    const fine = host.clean;
    await rowsOf(`
      CREATE FUNCTION esr_test_unreadable(host uuid) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN
        IF host = '${serverId(other)}' THEN RAISE EXCEPTION 'could not read block 7 of relation host_journal'; END IF;
        RETURN true;
      END $$;
      ALTER TABLE host_journal ENABLE ROW LEVEL SECURITY;
      CREATE POLICY esr_test_unreadable ON host_journal FOR SELECT USING (esr_test_unreadable(server_id));`);
    try {
      const ls = await listed([fine, failing]);
      expect(ls.rows[0]).toMatch(/  whole\*  /);
      expect(ls.rows[1]).toMatch(/  error  /);
      expect(ls.objects[1].verify).toBe("error");
      expect(ls.objects[1].verifyDetail).toMatch(
        new RegExp(
          `^cannot verify: fleet store postgresql://auditor@\\S+: reading the journal of host ${serverId(other)}: could not read block 7`,
        ),
      );
      // Replay still prints the session, then says why it could not say more.
      const replayed = await runInOrder(["replay", failing]);
      expect(replayed).toEndWith(`esr: verify: error: ${ls.objects[1].verifyDetail}\n`);
    } finally {
      await rowsOf(`
        DROP POLICY esr_test_unreadable ON host_journal;
        ALTER TABLE host_journal DISABLE ROW LEVEL SECURITY;
        DROP FUNCTION esr_test_unreadable(uuid);`);
    }
    expect((await listed([failing])).rows[0]).toMatch(/  whole\*  /);
  });
});
