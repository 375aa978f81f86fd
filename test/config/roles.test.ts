/**
 * Which kinds a session records (docs/contract.md §2): `--events`, or the union of the user's roles from the
 * config (`--user`, `--roles`), default [command, network]; `enabled: false` records no kernel
 * events and loads no BPF. Each session does all three things, so any kind too many or too few shows.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SessionEndEvent, SessionStartEvent } from "../../lib/events/audit-events.ts";
import { EVENT_KINDS, KINDS, type EventKind } from "../../lib/events/kinds/index.ts";
import { ofType, record, replayEvents, tempDir } from "../support/harness.ts";

/** Every non-empty set of kinds, in EVENT_KINDS order. */
const SUBSETS: EventKind[][] = Array.from({ length: 7 }, (_, i) => EVENT_KINDS.filter((_, k) => (i + 1) & (1 << k)));

const roleName = (kind: EventKind) => `only-${kind}`;
const userName = (kinds: EventKind[]) => `user-${kinds.join("-")}`;

/** One role per kind, a user per subset holding one role per kind in it, and overlapping roles. */
const ROLES_YAML = [
  ...EVENT_KINDS.map(
    (k) =>
      `kind: role\nversion: v8\nmetadata: { name: ${roleName(k)} }\nspec: { options: { enhanced_recording: [${k}] } }\n`,
  ),
  "kind: role\nversion: v8\nmetadata: { name: command-disk }\nspec: { options: { enhanced_recording: [command, disk] } }\n",
  "kind: role\nversion: v8\nmetadata: { name: disk-network }\nspec: { options: { enhanced_recording: [disk, network] } }\n",
  "kind: role\nversion: v8\nmetadata: { name: no-options }\nspec: { options: {} }\n",
  ...SUBSETS.map(
    (s) => `kind: user\nmetadata: { name: ${userName(s)} }\nspec: { roles: [${s.map(roleName).join(", ")}] }\n`,
  ),
  "kind: user\nmetadata: { name: overlapping }\nspec: { roles: [command-disk, disk-network] }\n",
  "kind: user\nmetadata: { name: defaulted }\nspec: { roles: [no-options] }\n",
].join("---\n");

const DISABLED_YAML = "ssh_service:\n  enhanced_recording:\n    enabled: false\n";

interface Outcome {
  /** session.start's enhanced_recording_events */
  declared: unknown;
  /** the kinds of the enhanced events actually recorded */
  recorded: EventKind[];
  start: SessionStartEvent;
  end: SessionEndEvent;
  /** what the recorder (the command's parent) had open while the session ran */
  recorderFds: string;
}

describe("recorded kinds", () => {
  let dir: string;
  let rolesFile: string;
  let disabledFile: string;
  let listener: Bun.TCPSocketListener;

  beforeAll(() => {
    dir = tempDir("esr-roles-");
    rolesFile = join(dir, "roles.yaml");
    disabledFile = join(dir, "disabled.yaml");
    writeFileSync(rolesFile, ROLES_YAML);
    writeFileSync(disabledFile, DISABLED_YAML);
    listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  });

  afterAll(() => {
    listener?.stop(true);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A session that execs, opens a file and connects, then lists the recorder's fds (the recorder
   * opens and closes some while it runs, its host key's lock among them: one gone between ls's
   * readdir and readlink is not an error here; the assertions read what was listed).
   */
  async function session(flags: string[]): Promise<Outcome> {
    const script = `cat /etc/hostname >/dev/null; exec 3<>/dev/tcp/127.0.0.1/${listener.port}; ls -l /proc/$PPID/fd 2>/dev/null; true`;
    const rec = await record(["bash", "-c", script], { flags });
    if (rec.exitCode !== 0) throw new Error(`esr record ${flags.join(" ")} failed (${rec.exitCode}): ${rec.stderr}`);
    const events = await replayEvents(rec.dataDir, rec.sid);
    const start = ofType(events, "session.start")[0]!;
    return {
      declared: start.enhanced_recording_events,
      recorded: KINDS.filter((k) => ofType(events, k.event).length > 0).map((k) => k.name),
      start,
      end: ofType(events, "session.end")[0]!,
      recorderFds: rec.stdout,
    };
  }

  const expectKinds = (o: Outcome, kinds: EventKind[]) =>
    expect({ declared: o.declared, recorded: o.recorded }).toEqual({ declared: kinds, recorded: kinds });

  test.each(SUBSETS.map((s) => [s.join(","), s]))("--events %s", async (_, kinds) => {
    expectKinds(await session(["--events", kinds.join(",")]), kinds);
  });

  test.each(SUBSETS.map((s) => [s.join(","), s]))("--config with a user whose roles give %s", async (_, kinds) => {
    expectKinds(await session(["--config", rolesFile, "--user", userName(kinds)]), kinds);
  });

  test.each(SUBSETS.map((s) => [s.join(","), s]))("--config --roles giving %s", async (_, kinds) => {
    expectKinds(
      await session(["--config", rolesFile, "--user", "defaulted", "--roles", kinds.map(roleName).join(",")]),
      kinds,
    );
  });

  test("the default is command and network, with BPF loaded", async () => {
    const o = await session([]);
    expectKinds(o, ["command", "network"]);
    expect(o.recorderFds).toContain("anon_inode:bpf-prog");
    expect(o.end.enhanced_recording).toBe(true);
  });

  test("a user without a user resource, or whose roles set no events, gets the default", async () => {
    expectKinds(await session(["--config", rolesFile, "--user", "stranger"]), ["command", "network"]);
    expectKinds(await session(["--config", rolesFile, "--user", "defaulted"]), ["command", "network"]);
  });

  test("two roles' sets are united", async () => {
    expectKinds(await session(["--config", rolesFile, "--user", "overlapping"]), ["command", "disk", "network"]);
  });

  test("--events wins over the roles", async () => {
    expectKinds(await session(["--config", rolesFile, "--user", "overlapping", "--events", "network"]), ["network"]);
  });

  test("enabled: false: session.start and session.end only, enhanced_recording false, no BPF loaded", async () => {
    const o = await session(["--config", disabledFile, "--events", "command,disk,network"]);
    expect({ declared: o.declared, recorded: o.recorded }).toEqual({ declared: [], recorded: [] });
    expect({ start: o.start.enhanced_recording, end: o.end.enhanced_recording }).toEqual({ start: false, end: false });
    expect(o.recorderFds).not.toContain("anon_inode:bpf");
  });
});
