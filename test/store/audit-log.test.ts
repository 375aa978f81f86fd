/** On-disk layout and permissions (docs/contract.md §4), through AuditLog and SessionWriter. */
import { describe, expect, test } from "bun:test";
import { lstatSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { AuditLog } from "../../lib/store/file/audit-log.ts";
import { SessionWriter } from "../../lib/store/file/session-writer.ts";
import { partialEvent } from "../support/fields.ts";
import { tempDir } from "../support/harness.ts";
import { TeleportSessionReader } from "../support/teleport-reader.ts";

const mode = (p: string) => statSync(p).mode & 0o777;

describe("AuditLog", () => {
  test("host_uuid is created once and kept", () => {
    const dir = tempDir();
    const a = AuditLog.open(dir);
    const b = AuditLog.open(dir);
    expect(a.serverId).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.serverId).toBe(a.serverId);
    expect(readFileSync(join(dir, "host_uuid"), "utf8").trim()).toBe(a.serverId);
    expect(mode(join(dir, "host_uuid"))).toBe(0o600);
  });

  test("events.log is a relative symlink to today's dated file", () => {
    const dir = tempDir();
    const log = AuditLog.open(dir);
    log.append('{"a":1}\n');
    log.append('{"a":2}\n');
    const link = join(dir, "log", "events.log");
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    const day = new Date().toISOString().slice(0, 10);
    expect(readlinkSync(link)).toBe(`${log.serverId}/${day}.00:00:00.log`);
    expect(readFileSync(link, "utf8")).toBe('{"a":1}\n{"a":2}\n');
    expect(mode(readFileSync(link) && join(dir, "log", log.serverId, `${day}.00:00:00.log`))).toBe(0o600);
  });

  test("a data dir holding something else than a UUID in host_uuid is refused", () => {
    const dir = tempDir();
    Bun.write(join(dir, "host_uuid"), "garbage\n");
    expect(() => AuditLog.open(dir)).toThrow(/does not hold a UUID/);
  });
});

describe("SessionWriter", () => {
  const sid = "11111111-2222-3333-4444-555555555555";

  test("Teleport's layout: one -0 file per type, indexed 0, events in ei order; .completed at close; 0600 files in 0700 directories", () => {
    const dir = tempDir();
    const log = AuditLog.open(dir);
    const w = new SessionWriter(log, sid);
    w.write(partialEvent({ event: "session.start", code: "T2000I", ei: w.index() }));
    w.write(partialEvent({ event: "session.command", code: "T4000I", ei: w.index() }));
    w.write(partialEvent({ event: "session.command", code: "T4000I", ei: w.index() }));
    w.write(partialEvent({ event: "session.network", code: "T4002I", ei: w.index() }));
    w.write(partialEvent({ event: "session.command", code: "T4000I", ei: w.index() }));
    w.write(partialEvent({ event: "exec", code: "T3002I", ei: w.index() }));
    w.write(partialEvent({ event: "session.end", code: "T2004I", ei: w.index() }));
    const sessions = log.sessionsDir;
    expect(new TeleportSessionReader(sessions, sid).completed).toBe(false);
    w.close();
    expect(sessions).toBe(join(dir, "log", log.serverId, "sessions", "default"));
    const teleport = new TeleportSessionReader(sessions, sid);
    expect(teleport.entries.map((e) => [e.file_name, e.type, e.index, e.offset])).toEqual([
      [`${sid}-0.events.gz`, "events", 0, 0],
      [`${sid}-0.session.command-events.gz`, "session.command", 0, 0],
      [`${sid}-0.session.network-events.gz`, "session.network", 0, 0],
    ]);
    expect(teleport.eventsAfter("events", 0).map((e) => e.event)).toEqual(["session.start", "exec", "session.end"]);
    expect(teleport.eventsAfter("session.command", 0).map((e) => e.ei)).toEqual([1, 2, 4]);
    expect(teleport.completed).toBe(true);
    for (const name of [...teleport.entries.map((e) => e.file_name), `${sid}.index`, `${sid}.completed`])
      expect(mode(join(sessions, name))).toBe(0o600);
    for (const d of [dir, join(dir, "log"), join(dir, "log", log.serverId), sessions]) expect(mode(d)).toBe(0o700);
  });
});
