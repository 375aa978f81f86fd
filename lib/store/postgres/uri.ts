/**
 * PostgreSQL connection URIs in libpq's syntax (`postgresql://user@host:port/db?sslmode=…`), and
 * the password looked up the way libpq does (`passfile=`, `PGPASSFILE`, `~/.pgpass`), never taken
 * from the URI: a URI is shown in messages and may come from a command line.
 */
import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { EsrError, errorMessage } from "../../errors.ts";

const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** The libpq parameters esr understands; any other one is refused rather than silently ignored. */
const PARAMETERS = new Set([
  "host",
  "port",
  "user",
  "dbname",
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "passfile",
  "connect_timeout",
  "application_name",
]);

export interface PgTarget {
  /** The URI as given, for messages (it never holds a password). */
  uri: string;
  /** A TCP host name or address; undefined for a unix socket. */
  host?: string;
  /** The unix socket directory, when `host` is a path. */
  socketDir?: string;
  port: number;
  user: string;
  database: string;
  sslMode: SslMode;
  sslRootCert?: string;
  sslCert?: string;
  sslKey?: string;
  passFile?: string;
  connectTimeoutS: number;
  applicationName: string;
}

export function isPostgresUri(uri: string): boolean {
  return /^postgres(ql)?:\/\//i.test(uri);
}

/** Parses a URI; an EsrError that names what is wrong (with the URI shown without any password). */
export function parsePgUri(uri: string): PgTarget {
  const bad = (why: string): never => {
    throw new EsrError(`fleet store ${JSON.stringify(maskPassword(uri))}: ${why}`, 2);
  };
  const m = /^(postgres(?:ql)?):\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?$/i.exec(uri);
  if (!m) return bad("not a postgresql://[user@]host[:port]/database[?param=value…] URI");
  const [, , userinfo, netloc, path, query] = m;
  if (userinfo?.includes(":"))
    bad("a password does not belong in a URI (it would show in process lists and logs): use ~/.pgpass or passfile=");
  const params = new Map<string, string>();
  for (const pair of (query ?? "").split("&").filter(Boolean)) {
    const eq = pair.indexOf("=");
    const key = decode(eq < 0 ? pair : pair.slice(0, eq), bad);
    if (!PARAMETERS.has(key))
      bad(`unknown parameter ${JSON.stringify(key)} (esr understands ${[...PARAMETERS].join(", ")})`);
    params.set(key, decode(eq < 0 ? "" : pair.slice(eq + 1), bad));
  }
  if (netloc!.includes(",")) bad("several hosts in one URI are not supported: give one host per URI");
  const hostPort = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(netloc!)!;
  const host = params.get("host") ?? (decode(hostPort[1]!, bad).replace(/^\[(.*)\]$/, "$1") || "localhost");
  const portText = params.get("port") ?? hostPort[2] ?? "5432";
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) bad(`port must be 1 to 65535, not ${portText}`);
  const user = params.get("user") ?? (userinfo ? decode(userinfo, bad) : "");
  if (!user) bad("no user name: write postgresql://USER@host/database");
  const database = params.get("dbname") ?? decode(path ?? "", bad);
  if (!database) bad("no database name: write postgresql://user@host/DATABASE");
  const sslMode = (params.get("sslmode") ?? "prefer") as SslMode;
  if (!SSL_MODES.includes(sslMode)) bad(`sslmode must be one of ${SSL_MODES.join(", ")}, not ${sslMode}`);
  const timeoutText = params.get("connect_timeout") ?? "10";
  if (!/^\d+$/.test(timeoutText)) bad(`connect_timeout must be a number of seconds, not ${timeoutText}`);
  const socket = host.startsWith("/");
  return {
    uri,
    host: socket ? undefined : host,
    socketDir: socket ? host : undefined,
    port,
    user,
    database,
    sslMode,
    sslRootCert: params.get("sslrootcert"),
    sslCert: params.get("sslcert"),
    sslKey: params.get("sslkey"),
    passFile: params.get("passfile"),
    connectTimeoutS: Math.max(1, Number(timeoutText)),
    applicationName: params.get("application_name") ?? "esr",
  };
}

function decode(text: string, bad: (why: string) => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return bad(`bad percent-encoding in ${JSON.stringify(text)}`);
  }
}

/** A URI fit for a message: whatever stands between `:` and `@` in the user part is hidden. */
export function maskPassword(uri: string): string {
  return uri.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, "$1:…@");
}

/**
 * The password for a target from a libpq password file (`host:port:database:user:password`, `*`
 * matching anything, `\` escaping), or undefined. Like libpq, a file that others may read is not
 * used; unlike libpq, that is an error rather than a warning, since the next step would be a
 * confusing authentication failure.
 */
export function lookupPassword(t: PgTarget, env = process.env): string | undefined {
  const explicit = t.passFile ?? env.PGPASSFILE;
  const file = explicit ?? `${env.HOME ?? homedir()}/.pgpass`;
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new EsrError(`password file ${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0)
      throw new EsrError(
        `password file ${file} may be read by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`,
      );
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof EsrError) throw err;
    if (explicit === undefined && (err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new EsrError(`cannot read password file ${file}: ${errorMessage(err)}`);
  }
  // libpq matches a socket connection as "localhost".
  const wanted = [t.host ?? "localhost", String(t.port), t.database, t.user];
  for (const line of text.split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const fields = splitPassLine(line);
    if (fields.length < 5) continue;
    if (wanted.every((value, i) => fields[i] === "*" || fields[i] === value)) return fields.slice(4).join(":");
  }
  return undefined;
}

function splitPassLine(line: string): string[] {
  const fields: string[] = [];
  let field = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ":") {
      fields.push(field);
      field = "";
    } else field += c === "\\" && i + 1 < line.length ? line[++i] : c;
  }
  fields.push(field);
  return fields;
}
