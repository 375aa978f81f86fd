/**
 * The fleet store's schema, created and migrated by `esr store migrate` with an owner's credential
 * (never the hosts'). Versioned: `esr_schema_version` holds the last migration applied, and each
 * migration runs once, in a transaction.
 *
 * `events` is shaped like Teleport's PostgreSQL audit backend, partitioned by month of
 * `event_time` so that retention drops whole partitions. Recordings are a session's files, cut in
 * parts, stored once: hosts may insert, nobody is granted UPDATE or DELETE.
 *
 * `host_journal` copies each host's integrity journal (lib/store/integrity/host-key.ts), a row
 * per line, insert-only like the rest.
 *
 * Roles: `esr_writer` (granted to each host's login role) may INSERT and nothing else;
 * `esr_reader` (granted to people and `esr serve`) may SELECT and nothing else.
 */
import type { SQL } from "bun";

export const WRITER_ROLE = "esr_writer";
export const READER_ROLE = "esr_reader";

const MIGRATIONS: string[] = [
  `
  CREATE TABLE events (
    event_time timestamptz NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    session_id uuid,
    event_data jsonb NOT NULL,
    creation_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_time, event_id)
  ) PARTITION BY RANGE (event_time);
  -- Rows outside every monthly partition (a clock far off) still land somewhere.
  CREATE TABLE events_default PARTITION OF events DEFAULT;
  CREATE INDEX events_session ON events (session_id, event_time, event_id) WHERE session_id IS NOT NULL;
  CREATE INDEX events_type_time ON events (event_type, event_time DESC);
  CREATE INDEX events_user_time ON events ((event_data->>'user'), event_time DESC);
  CREATE INDEX events_login_time ON events ((event_data->>'login'), event_time DESC);
  CREATE INDEX events_host_time ON events ((event_data->>'server_hostname'), event_time DESC);
  CREATE INDEX events_program_time ON events ((event_data->>'program'), event_time DESC);
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
  CREATE INDEX events_text ON events USING gin (
    (coalesce(event_data->>'path', '') || ' ' || coalesce(event_data->>'argv', '')) gin_trgm_ops
  );

  CREATE TABLE recordings (
    session_id uuid NOT NULL,
    file_name text NOT NULL,
    part integer NOT NULL,
    parts integer NOT NULL,
    data bytea NOT NULL,
    server_id uuid NOT NULL,
    creation_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, file_name, part)
  );

  DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${WRITER_ROLE}') THEN CREATE ROLE ${WRITER_ROLE} NOLOGIN; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${READER_ROLE}') THEN CREATE ROLE ${READER_ROLE} NOLOGIN; END IF;
  END $$;
  GRANT USAGE ON SCHEMA public TO ${WRITER_ROLE}, ${READER_ROLE};
  -- Privileges of a partitioned table cover its partitions, including ones made later.
  GRANT INSERT ON events, recordings TO ${WRITER_ROLE};
  GRANT SELECT ON events, recordings TO ${READER_ROLE};
  `,
  // The hosts' integrity journals, line by line as each host's file holds them: what
  // `esr verify --from` checks the stored chains and the hosts' sequences of sessions against.
  `
  CREATE TABLE host_journal (
    server_id uuid NOT NULL,
    line integer NOT NULL,
    entry text NOT NULL,
    creation_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, line)
  );
  GRANT INSERT ON host_journal TO ${WRITER_ROLE};
  GRANT SELECT ON host_journal TO ${READER_ROLE};
  `,
];

/** The text search expression, exactly as indexed (the index is used only for the same expression). */
export const SEARCH_TEXT = `(coalesce(event_data->>'path', '') || ' ' || coalesce(event_data->>'argv', ''))`;

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Months ahead for which partitions exist, so the default partition stays empty. */
const MONTHS_AHEAD = 3;

export interface MigrateResult {
  from: number;
  to: number;
  partitionsCreated: string[];
  partitionsDropped: string[];
}

/**
 * Brings the schema to the current version, makes the monthly partitions from the retention cut
 * to a few months ahead, and drops partitions wholly older than the retention period.
 */
export async function migrate(sql: SQL, retentionMs: number, now = new Date()): Promise<MigrateResult> {
  return sql.begin(async (tx) => {
    // One migrator at a time.
    await tx`SELECT pg_advisory_xact_lock(7265727)`;
    await tx`CREATE TABLE IF NOT EXISTS esr_schema_version (version integer NOT NULL)`;
    const rows = await tx`SELECT version FROM esr_schema_version`;
    const from: number = rows[0]?.version ?? 0;
    if (from > SCHEMA_VERSION)
      throw new Error(`the database has schema version ${from}, newer than this esr's ${SCHEMA_VERSION}: upgrade esr`);
    for (let v = from; v < SCHEMA_VERSION; v++) await tx.unsafe(MIGRATIONS[v]!);
    if (from === 0) await tx`INSERT INTO esr_schema_version VALUES (${SCHEMA_VERSION})`;
    else await tx`UPDATE esr_schema_version SET version = ${SCHEMA_VERSION}`;

    const cut = new Date(now.getTime() - retentionMs);
    const existing = new Set<string>(
      (
        await tx`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'events'::regclass`
      ).map((r: { relname: string }) => r.relname),
    );
    const partitionsCreated: string[] = [];
    for (let m = monthStart(cut); m < addMonths(monthStart(now), MONTHS_AHEAD + 1); m = addMonths(m, 1)) {
      const name = partitionName(m);
      if (existing.has(name)) continue;
      await tx.unsafe(
        `CREATE TABLE ${name} PARTITION OF events FOR VALUES FROM ('${m.toISOString()}') TO ('${addMonths(m, 1).toISOString()}')`,
      );
      partitionsCreated.push(name);
    }
    const partitionsDropped: string[] = [];
    for (const name of existing) {
      const start = partitionStart(name);
      if (start && addMonths(start, 1) <= cut) {
        await tx.unsafe(`DROP TABLE ${name}`);
        partitionsDropped.push(name);
      }
    }
    await tx`DELETE FROM events_default WHERE event_time < ${cut}`;
    return { from, to: SCHEMA_VERSION, partitionsCreated, partitionsDropped };
  });
}

function monthStart(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

function addMonths(d: Date, n: number): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1));
}

function partitionName(month: Date): string {
  return `events_${month.toISOString().slice(0, 7).replace("-", "_")}`;
}

function partitionStart(name: string): Date | undefined {
  const m = /^events_(\d{4})_(\d{2})$/.exec(name);
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1)) : undefined;
}
