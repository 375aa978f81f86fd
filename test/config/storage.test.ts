/** teleport.storage (docs/contract.md §8): Teleport's keys, and the URIs esr accepts. */
import { describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lookupPassword, parsePgUri } from "../../lib/store/postgres/uri.ts";
import { errorOf, parse } from "../support/config-parse.ts";
import { tempDir } from "../support/harness.ts";

describe("teleport.storage", () => {
  test("a list, a single string, the sessions URI and the retention period", () => {
    const list = parse(`teleport:
  storage:
    audit_events_uri: ['postgresql://esr_host@db.example.com/esr_audit?sslmode=verify-full', 'file:///var/lib/esr']
    audit_sessions_uri: 'postgresql://esr_host@db.example.com/esr_audit?sslmode=verify-full'
    retention_period: 8760h
`).storage;
    expect(list).toEqual({
      auditEventsUris: ["postgresql://esr_host@db.example.com/esr_audit?sslmode=verify-full", "file:///var/lib/esr"],
      auditSessionsUri: "postgresql://esr_host@db.example.com/esr_audit?sslmode=verify-full",
      retentionMs: 8760 * 3_600_000,
    });
    expect(parse("teleport:\n  storage:\n    audit_events_uri: postgres://h@db/x\n").storage.auditEventsUris).toEqual([
      "postgres://h@db/x",
    ]);
    expect(parse("teleport: {}\n").storage).toEqual({ auditEventsUris: [], retentionMs: 365 * 86_400_000 });
    expect(parse("teleport:\n  storage:\n    retention_period: 1h30m\n").storage.retentionMs).toBe(5_400_000);
  });

  test("another scheme or a bad duration: file, line and key, and no password shown", () => {
    expect(errorOf(() => parse("teleport:\n  storage:\n    audit_events_uri: ['mysql://u:hunter2@db/x']\n"))).toBe(
      'f.yaml:3: teleport.storage.audit_events_uri: must be a postgresql://, postgres:// or file:// URI, got "mysql://u:…@db/x"',
    );
    expect(errorOf(() => parse("teleport:\n  storage:\n\n    retention_period: 1y\n"))).toBe(
      'f.yaml:4: teleport.storage.retention_period: must be a duration such as 8760h or 365d, got string "1y"',
    );
  });
});

describe("PostgreSQL URIs", () => {
  test("libpq's forms: host, port, socket directory, parameters", () => {
    expect(parsePgUri("postgresql://esr_host@db.example.com/esr_audit?sslmode=verify-full")).toMatchObject({
      host: "db.example.com",
      port: 5432,
      user: "esr_host",
      database: "esr_audit",
      sslMode: "verify-full",
    });
    expect(parsePgUri("postgres://u@[::1]:6432/d")).toMatchObject({ host: "::1", port: 6432 });
    expect(parsePgUri("postgresql://u@%2Frun%2Fpostgresql/d")).toMatchObject({
      host: undefined,
      socketDir: "/run/postgresql",
    });
    expect(parsePgUri("postgresql:///d?host=/tmp&user=u&port=5433")).toMatchObject({ socketDir: "/tmp", port: 5433 });
  });

  test("what is refused, in one line each", () => {
    for (const [uri, why] of [
      ["postgresql://u:secret@db/d", /a password does not belong in a URI/],
      ["postgresql://db/d", /no user name/],
      ["postgresql://u@db/", /no database name/],
      ["postgresql://u@db:99999/d", /port must be 1 to 65535/],
      ["postgresql://u@db/d?sslmode=sure", /sslmode must be one of/],
      ["postgresql://u@a,b/d", /several hosts/],
      ["postgresql://u@db/d?password=x", /unknown parameter "password"/],
    ] as const) {
      const message = errorOf(() => parsePgUri(uri));
      expect(message).toMatch(why);
      expect(message).not.toContain("secret");
      expect(message).not.toContain("\n");
    }
  });

  test("the password comes from a libpq password file: first match wins, * matches anything, escapes", () => {
    const dir = tempDir();
    const file = join(dir, "pgpass");
    writeFileSync(
      file,
      "# comment\nother:5432:*:u:wrong\ndb:5432:d:u:a\\:b\\\\c\n*:*:*:u:fallback\nlocalhost:5432:*:s:sock\n",
      { mode: 0o600 },
    );
    const t = (uri: string) => parsePgUri(`${uri}${uri.includes("?") ? "&" : "?"}passfile=${file}`);
    expect(lookupPassword(t("postgresql://u@db/d"))).toBe("a:b\\c");
    expect(lookupPassword(t("postgresql://u@db/other"))).toBe("fallback");
    expect(lookupPassword(t("postgresql://s@%2Ftmp/d"))).toBe("sock");
    expect(lookupPassword(t("postgresql://nobody@db/d"))).toBeUndefined();
    chmodSync(file, 0o644);
    expect(errorOf(() => lookupPassword(t("postgresql://u@db/d")))).toMatch(/may be read by others .*chmod 600/);
    expect(lookupPassword(parsePgUri("postgresql://u@db/d"), { HOME: dir })).toBeUndefined();
  });
});
