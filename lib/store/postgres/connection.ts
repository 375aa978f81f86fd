/**
 * A connection to the fleet store through Bun's built-in PostgreSQL client (`Bun.sql`): it is in
 * the runtime, so the single executable needs no driver; it speaks TLS with every libpq sslmode,
 * unix sockets, SCRAM, and can run without named prepared statements (`prepare: false`), which is
 * what PgBouncer in transaction mode needs. It has no COPY, which esr does not need: a multi-row
 * `INSERT … ON CONFLICT DO NOTHING` is what makes a retried batch a no-op.
 */
import { SQL } from "bun";
import { EsrError, errorMessage } from "../../errors.ts";
import { lookupPassword, parsePgUri, type PgTarget } from "./uri.ts";

export interface PgOptions {
  /** Seconds a connection may sit unused before it is closed (batch-and-disconnect). */
  idleTimeoutS?: number;
  /** Connections this client may open at once. */
  max?: number;
}

export function connect(uriOrTarget: string | PgTarget, opts: PgOptions = {}): SQL {
  const t = typeof uriOrTarget === "string" ? parsePgUri(uriOrTarget) : uriOrTarget;
  return new SQL({
    adapter: "postgres",
    hostname: t.host,
    path: t.socketDir,
    port: t.port,
    username: t.user,
    password: lookupPassword(t),
    database: t.database,
    tls: tlsOf(t),
    connectionTimeout: t.connectTimeoutS,
    idleTimeout: opts.idleTimeoutS ?? 0,
    max: opts.max ?? 1,
    // Works the same directly and behind PgBouncer in transaction mode.
    prepare: false,
    connection: { application_name: t.applicationName },
  });
}

function tlsOf(t: PgTarget): SQL.PostgresOrMySQLOptions["tls"] {
  if (t.socketDir) return false;
  const files = {
    ...(t.sslRootCert && { ca: Bun.file(t.sslRootCert) }),
    ...(t.sslCert && { cert: Bun.file(t.sslCert) }),
    ...(t.sslKey && { key: Bun.file(t.sslKey) }),
  };
  if (t.sslMode === "verify-full") return { ...files, rejectUnauthorized: true };
  // The chain is checked, the host name is not: what verify-ca means.
  if (t.sslMode === "verify-ca") return { ...files, rejectUnauthorized: true, checkServerIdentity: () => undefined };
  if (t.sslMode === "require") return { ...files, rejectUnauthorized: false };
  return t.sslMode;
}

/** One line for an error of the fleet store: what failed, where, and the server's reason. */
export function storeError(uri: string, what: string, err: unknown): EsrError {
  if (err instanceof EsrError) return err;
  const code = (err as { code?: string; errno?: string }).errno ?? (err as { code?: string }).code;
  const detail = errorMessage(err).split("\n")[0];
  return new EsrError(`fleet store ${uri}: ${what}: ${detail}${code ? ` (${code})` : ""}`);
}
