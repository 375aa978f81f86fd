/**
 * `esr replay --tree`: the processes of a real recorded session (the real dist/esr, the real
 * kernel) as a tree, with what each one ran, its return code, and its connects and opens.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { buildProcessTree, formatProcessTree, type ProcessNode } from "../../lib/replay/process-tree.ts";
import { painter, shellQuote } from "../../lib/replay/text-format.ts";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import type { SessionCommandEvent } from "../../lib/events/kinds/index.ts";
import { partialEvent } from "../support/fields.ts";
import { ESR, ofType, record, replayEvents, runEsr } from "../support/harness.ts";
import { PtySession } from "../support/pty-session.ts";

let listener: Bun.TCPSocketListener;
let sid: string;
let dataDir: string;
let events: AuditEvent[];

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error("these tests load BPF programs and must run as root");
  if (!existsSync(ESR)) throw new Error(`${ESR} is missing: run bun scripts/build.ts first`);
  listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  // bash runs: a shell with a two-command pipeline, a program that does not exist, a file read, a
  // connect of its own and one from a forked subshell that never execs, then replaces itself.
  const script = [
    "sh -c '/bin/echo a | /usr/bin/tr a b'",
    "/no/such/program --flag",
    "/bin/cat /etc/hostname >/dev/null",
    `exec 3<>/dev/tcp/127.0.0.1/${listener.port}`,
    `( exec 4<>/dev/tcp/127.0.0.1/${listener.port} )`,
    "exec /bin/true",
  ].join("\n");
  const r = await record(["bash", "-c", script], { flags: ["--events", "command,network,disk"] });
  expect(r.exitCode).toBe(0);
  ({ sid, dataDir } = r);
  events = await replayEvents(dataDir, sid);
});

afterAll(() => listener?.stop(true));

/** The one exec (by path) in the session; throws if there is not exactly one. */
function execOf(path: string): SessionCommandEvent {
  const found = ofType(events, "session.command").filter((e) => e.path === path);
  if (found.length !== 1) throw new Error(`${found.length} execs of ${path}`);
  return found[0]!;
}

describe("the tree of a known session", () => {
  test("parents, children, exec chains, return codes, connects and opens", () => {
    const roots = buildProcessTree(events);
    const bash = execOf("/usr/bin/bash");
    const root = roots.find((n) => n.pid === bash.pid)!;
    expect(root).toBeDefined();
    expect(root.ppid).toBe(bash.ppid);
    // bash replaced itself with /bin/true: one process, two execs.
    expect(root.execs.map((e) => e.path)).toEqual(["/usr/bin/bash", "/bin/true"]);
    const children = new Map(root.children.map((c) => [c.execs[0]?.path, c]));
    expect([...children.keys()].sort()).toEqual(["/bin/cat", "/no/such/program", "/usr/bin/sh"].sort());
    const sh = children.get("/usr/bin/sh")!;
    expect(sh.children.map((c) => c.execs[0]?.path).sort()).toEqual(["/bin/echo", "/usr/bin/tr"]);
    expect(children.get("/no/such/program")!.execs[0]?.return_code).toBe(-2);
    const connects = (n: ProcessNode) => n.activity.filter((e) => e.event === "session.network").map((e) => e.dst_port);
    expect(connects(root)).toEqual([listener.port]);
    expect(
      children.get("/bin/cat")!.activity.some((e) => e.event === "session.disk" && e.path === "/etc/hostname"),
    ).toBe(true);
    // The subshell forked but never exec'd: its connect is shown under its own pid, as a root.
    const subshell = roots.find((n) => n.execs.length === 0 && connects(n).length === 1);
    expect(subshell).toBeDefined();
  });

  test("esr replay --tree prints it as an indented tree, without colour when not on a terminal", async () => {
    const r = await runEsr(["replay", sid, "--data-dir", dataDir, "--tree"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).not.toContain("\x1b");
    const lines = r.stdout.trimEnd().split("\n");
    const line = (pid: unknown) => lines.findIndex((l) => new RegExp(`^[│├└─ ]*${pid} `).test(l));
    const bash = execOf("/usr/bin/bash");
    const sh = execOf("/usr/bin/sh");
    const depth = (i: number) => lines[i]!.search(/\d/);
    expect(lines[line(bash.pid)]).toBe(
      `${bash.pid} ${shellQuote([String(bash.path), ...bash.argv])} = 0  (ppid ${bash.ppid})`,
    );
    expect(lines[line(bash.pid) + 1]).toMatch(/^│ +↳ \/bin\/true = 0$/);
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^│ +connect 127\\.0\\.0\\.1 -> 127\\.0\\.0\\.1:${listener.port}$`)),
    );
    expect(depth(line(sh.pid))).toBe(4);
    for (const path of ["/bin/echo", "/usr/bin/tr"]) {
      const i = line(execOf(path).pid);
      expect(depth(i)).toBe(8);
      expect(i).toBeGreaterThan(line(sh.pid));
    }
    expect(lines[line(execOf("/no/such/program").pid)]).toMatch(
      /^[├└]── \d+ \/no\/such\/program --flag \[path and argv as requested, from the caller's memory\] = -2 ENOENT$/,
    );
    expect(lines).toContainEqual(expect.stringMatching(/^ +open \/etc\/hostname flags=0x[0-9a-f]+ = \d+$/));
  });

  test("colour on a terminal, none with NO_COLOR", async () => {
    const coloured = new PtySession([ESR, "replay", sid, "--data-dir", dataDir, "--tree"]);
    expect(await coloured.exited()).toBe(0);
    expect(coloured.screen).toContain(`\x1b[31m/no/such/program --flag\x1b[0m`);
    const plain = new PtySession([ESR, "replay", sid, "--data-dir", dataDir, "--tree"], { env: { NO_COLOR: "1" } });
    expect(await plain.exited()).toBe(0);
    expect(plain.screen).not.toContain("\x1b");
    expect(plain.screen).toContain(
      "/no/such/program --flag [path and argv as requested, from the caller's memory] = -2 ENOENT",
    );
  });
});

test("pure tree building: an exec chain stays one process; a pid loop (reused pids) becomes roots, nothing is lost", () => {
  const exec = (ei: number, pid: number, ppid: number, path: string) =>
    partialEvent({ event: "session.command", code: "T4000I", ei, pid, ppid, path, argv: [], return_code: 0 });
  const plain = painter(false);
  expect(
    formatProcessTree(buildProcessTree([exec(0, 10, 1, "/a"), exec(1, 20, 10, "/b"), exec(2, 10, 20, "/c")]), plain),
  ).toEqual(["10 /a = 0  (ppid 1)", "│  ↳ /c = 0", "└── 20 /b = 0"]);
  expect(formatProcessTree(buildProcessTree([exec(0, 10, 20, "/a"), exec(1, 20, 10, "/b")]), plain)).toEqual([
    "10 /a = 0  (ppid 20)",
    "20 /b = 0  (ppid 10)",
  ]);
});
