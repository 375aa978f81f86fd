/**
 * A real PostgreSQL server for the fleet store tests: Debian's `postgresql` binaries, a cluster
 * made with initdb in a temp dir, run as the `postgres` account (the server refuses root) on
 * 127.0.0.1 at a free high port, with SCRAM passwords. The schema is made with `esr migrate`; host
 * and reader roles are made as the README tells an operator to.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SQL } from "bun";
import { freePort, runEsr, tempDir } from "./harness.ts";

const PG_LIB = "/usr/lib/postgresql";

function pgBin(name: string): string {
  const versions = existsSync(PG_LIB) ? readdirSync(PG_LIB).sort((a, b) => Number(b) - Number(a)) : [];
  const path = versions.map((v) => join(PG_LIB, v, "bin", name)).find(existsSync);
  if (!path)
    throw new Error(`PostgreSQL's ${name} not found under ${PG_LIB}: install Debian's postgresql (scripts/setup.sh)`);
  return path;
}

function accountIds(name: string): { uid: number; gid: number } {
  const out = Bun.spawnSync(["id", "-u", name]).stdout.toString().trim();
  const gid = Bun.spawnSync(["id", "-g", name]).stdout.toString().trim();
  if (!out) throw new Error(`no ${name} account: install Debian's postgresql (scripts/setup.sh)`);
  return { uid: Number(out), gid: Number(gid) };
}

export const ADMIN_PASSWORD = "admin-secret";
export const HOST_PASSWORD = "host-secret";
export const READER_PASSWORD = "reader-secret";

export class TestPostgres {
  readonly dir = tempDir("esr-pg-");
  /** Kept across stop() and start(): clients of an outage test reconnect to the same address. */
  private chosenPort = freePort();
  private readonly ids = accountIds("postgres");

  private asPostgres(cmd: string[]) {
    const r = Bun.spawnSync({
      cmd,
      uid: this.ids.uid,
      gid: this.ids.gid,
      stdout: "pipe",
      stderr: "pipe",
      cwd: this.dir,
    });
    if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}${r.stdout.toString()}`);
  }

  get port(): number {
    return this.chosenPort;
  }

  get dataDir() {
    return join(this.dir, "data");
  }

  /** initdb and start; then the schema and the roles. */
  async init() {
    chownSync(this.dir, this.ids.uid, this.ids.gid);
    const pw = join(this.dir, "pw");
    writeFileSync(pw, `${ADMIN_PASSWORD}\n`, { mode: 0o600 });
    chownSync(pw, this.ids.uid, this.ids.gid);
    this.asPostgres([pgBin("initdb"), "-D", this.dataDir, "-U", "admin", "-A", "scram-sha-256", `--pwfile=${pw}`]);
    // Another process can take the free port between choosing it and the server binding it.
    for (let attempt = 1; ; attempt++) {
      try {
        this.start();
        break;
      } catch (err) {
        if (attempt === 3) throw err;
        this.chosenPort = freePort();
      }
    }
    this.writePassFile("admin", ADMIN_PASSWORD);
    const sql = this.admin();
    await sql.unsafe("CREATE DATABASE esr_audit");
    await sql.close();
    const migrated = await runEsr(["migrate", "--uri", this.uri("admin")]);
    if (migrated.exitCode !== 0) throw new Error(`esr migrate failed: ${migrated.stderr}`);
    const db = this.admin("esr_audit");
    await db.unsafe(`CREATE ROLE host1 LOGIN PASSWORD '${HOST_PASSWORD}' IN ROLE esr_writer`);
    await db.unsafe(`CREATE ROLE auditor LOGIN PASSWORD '${READER_PASSWORD}' IN ROLE esr_reader`);
    await db.close();
    this.writePassFile("host1", HOST_PASSWORD);
    this.writePassFile("auditor", READER_PASSWORD);
  }

  start() {
    this.asPostgres([
      pgBin("pg_ctl"),
      "-D",
      this.dataDir,
      "-l",
      join(this.dir, "server.log"),
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "-w",
      "start",
    ]);
  }

  stop() {
    this.asPostgres([pgBin("pg_ctl"), "-D", this.dataDir, "-m", "fast", "-w", "stop"]);
  }

  /** A libpq password file for one role, 0600, root's (esr runs as root). */
  passFile(user: string): string {
    return join(this.dir, `${user}.pgpass`);
  }

  private writePassFile(user: string, password: string) {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(this.passFile(user), `127.0.0.1:${this.port}:*:${user}:${password}\n`, { mode: 0o600 });
  }

  uri(user: string, database = "esr_audit"): string {
    return `postgresql://${user}@127.0.0.1:${this.port}/${database}?sslmode=disable&passfile=${this.passFile(user)}`;
  }

  /** The rows of a query on the audit database, as its administrator. */
  async rows(query: string, params: unknown[] = []): Promise<Record<string, any>[]> {
    const sql = this.admin("esr_audit");
    try {
      return await sql.unsafe(query, params);
    } finally {
      await sql.close();
    }
  }

  admin(database = "postgres"): SQL {
    return new SQL({
      hostname: "127.0.0.1",
      port: this.port,
      username: "admin",
      password: ADMIN_PASSWORD,
      database,
      max: 1,
    });
  }

  async destroy() {
    try {
      this.stop();
    } catch {
      // already stopped
    }
  }
}

/** A config file that ships to the store as `host1`, recording into `dataDir`. */
export function hostConfig(pg: TestPostgres, dataDir: string, extra = ""): string {
  const file = join(tempDir("esr-cfg-"), "esr.yaml");
  writeFileSync(
    file,
    `teleport:\n  nodename: web-1\n  data_dir: ${dataDir}\n  storage:\n    audit_events_uri: ['${pg.uri("host1")}']\n${extra}`,
  );
  return file;
}

/** Ships everything `dataDir` holds into the store as `host1` (`esr ship --once`); throws with esr's words if it cannot. */
export async function shipOnce(pg: TestPostgres, dataDir: string): Promise<void> {
  const r = await runEsr(["ship", "--once", "--config", hostConfig(pg, dataDir), "--data-dir", dataDir]);
  if (r.exitCode !== 0 || r.stderr.includes("error")) throw new Error(`esr ship failed: ${r.stderr}`);
}
