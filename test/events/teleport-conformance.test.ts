/**
 * esr's events beside Teleport's for the same action (test/fixtures/teleport-conformance.jsonl:
 * the events a Teleport node writes for it, keyed as Teleport's events.proto tags them), compared
 * key by key and JSON type by JSON type on a real recording; and audit_session_id checked against
 * the kernel's own value for the process.
 */
import { beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { jsonFields, jsonType } from "../support/fields.ts";
import { ESR, FIXTURES, ofType, record, replayEvents } from "../support/harness.ts";

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
});

const [header, ...teleportEvents] = readFileSync(join(FIXTURES, "teleport-conformance.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l) as Record<string, unknown>);

/**
 * What Teleport writes that `esr record` cannot (README, "Compatibility with Teleport"): the SSH
 * connection of a session esr did not receive over SSH, and Teleport's own server address.
 */
const TELEPORT_ONLY = new Set(["addr.local", "addr.remote", "proto", "server_addr"]);

test("every key of Teleport's events for the same action, with the same JSON type", async () => {
  const action = ["sh", "-c", "/bin/true; exit 3"];
  expect(header!.action).toBe("sh -c '/bin/true; exit 3'");
  const r = await record(action, { flags: ["--events", "command,disk"] });
  const ours = await replayEvents(r.dataDir, r.sid);
  for (const theirs of teleportEvents) {
    const mine = ours.find((e) => e.event === theirs.event);
    expect({ event: theirs.event, found: mine !== undefined }).toEqual({ event: theirs.event, found: true });
    const fields = jsonFields(mine!);
    for (const [key, value] of Object.entries(theirs)) {
      if (TELEPORT_ONLY.has(key)) continue;
      expect({ event: theirs.event, key, type: key in fields ? jsonType(fields[key]) : "missing" }).toEqual({
        event: theirs.event,
        key,
        type: jsonType(value),
      });
    }
  }
  // The values a consumer branches on, as Teleport writes them for this action.
  // The values a consumer branches on, as Teleport writes them for this action.
  const exec = jsonFields(ofType(ours, "exec")[0]!);
  const teleportExec = teleportEvents.find((e) => e.event === "exec")!;
  for (const key of ["code", "command", "exitCode", "exitError"])
    expect({ key, value: exec[key] }).toEqual({ key, value: teleportExec[key] });
  for (const name of ["session.start", "session.end"] as const)
    expect(jsonFields(ofType(ours, name)[0]!).session_recording).toBe("node");
});

test("audit_session_id is the kernel's audit session id of each process, also after it changes", async () => {
  const own = Number(readFileSync("/proc/self/sessionid", "utf8"));
  // Setting the login uid starts a new audit session, where the kernel allows it (CAP_AUDIT_CONTROL, loginuid not immutable).
  const r = await record(["sh", "-c", "echo 0 > /proc/self/loginuid; exec cat /proc/self/sessionid"], {
    flags: ["--events", "command"],
  });
  const execs = ofType(await replayEvents(r.dataDir, r.sid), "session.command");
  const sh = execs.find((e) => e.program === "sh" || e.path.endsWith("/sh"))!;
  const cat = execs.filter((e) => e.return_code === 0).at(-1)!;
  expect(sh.audit_session_id).toBe(own);
  const printed = Number(r.stdout.trim());
  expect(cat.audit_session_id).toBe(printed);
  if (r.stderr.includes("loginuid"))
    expect(printed).toBe(own); // refused: the session id stayed
  else expect(printed).not.toBe(own);
});
