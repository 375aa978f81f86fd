/**
 * Network events (docs/contract.md §3 session.network, §5): every TCP connect of a session's processes, IPv4 and
 * IPv6, with the real source address; every listen of theirs and every connection accepted on one, from
 * inside or outside the session; nothing from processes outside the session.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { formatIPv4, formatIPv6 } from "../../lib/events/ip-address.ts";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import type { SessionNetworkEvent } from "../../lib/events/kinds/index.ts";
import { NETWORK_OPERATION } from "../../lib/events/kinds/network.ts";
import { formatEventLines } from "../../lib/replay/text-format.ts";
import { waitFor } from "../support/adversary.ts";
import { ESR_COMMON_FIELDS, fieldTypes, teleportFieldTypes, type JsonType } from "../support/fields.ts";
import { ofType, record, replayEvents, tempDir } from "../support/harness.ts";

type Listener = { port: number; accepted: number; stop(): void };

/** A TCP listener that accepts and counts connections; throws naming the family if it cannot bind. */
function listen(hostname: string): Listener {
  const state = { accepted: 0 };
  try {
    const server = Bun.listen({ hostname, port: 0, socket: { open: () => void state.accepted++, data() {} } });
    return {
      port: server.port,
      get accepted() {
        return state.accepted;
      },
      stop: () => server.stop(true),
    };
  } catch (err) {
    throw new Error(
      `cannot listen on ${hostname} (${hostname.includes(":") ? "IPv6" : "IPv4"} loopback missing?): ${err}`,
    );
  }
}

/** A port nothing listens on: bound, then released. */
function closedPort(): number {
  const l = listen("127.0.0.1");
  l.stop();
  return l.port;
}

describe("session.network", () => {
  let v4: Listener, v6: Listener, outside: Listener;
  let http: ReturnType<typeof Bun.serve>;
  let httpPort: number;
  let events: AuditEvent[];
  let network: SessionNetworkEvent[];
  let closed: number;
  let outsideDuringSession = 0;

  beforeAll(async () => {
    v4 = listen("127.0.0.1");
    v6 = listen("::1");
    outside = listen("127.0.0.1");
    http = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
    httpPort = http.port!;
    closed = closedPort();
    // Same uid as the session, connecting all along: none of it may be recorded.
    const outsider = Bun.spawn([
      "bash",
      "-c",
      `while :; do exec 3<>/dev/tcp/127.0.0.1/${outside.port}; exec 3>&-; sleep 0.01; done`,
    ]);
    const script = [
      `exec 3<>/dev/tcp/127.0.0.1/${v4.port}`,
      `exec 4<>/dev/tcp/::1/${v6.port}`,
      // A UDP "connect" sends nothing and is not a TCP connect.
      `exec 5<>/dev/udp/127.0.0.1/${v4.port}`,
      `curl -sS -o /dev/null http://127.0.0.1:${httpPort}/`,
      // An IPv6 socket reaching an IPv4 address (IPv4-mapped): IPv4 on the wire.
      `curl -sS -g -o /dev/null 'http://[::ffff:127.0.0.1]:${httpPort}/'`,
      `curl -s -o /dev/null http://127.0.0.1:${closed}/ || true`,
      "sleep 0.5",
    ].join("\n");
    const before = outside.accepted;
    try {
      const rec = await record(["bash", "-c", script], { flags: ["--events", "command,network"] });
      outsideDuringSession = outside.accepted - before;
      if (rec.exitCode !== 0) throw new Error(`session failed (${rec.exitCode}): ${rec.stderr}`);
      events = await replayEvents(rec.dataDir, rec.sid);
    } finally {
      outsider.kill();
      await outsider.exited;
    }
    network = ofType(events, "session.network");
  });

  afterAll(() => {
    for (const l of [v4, v6, outside]) l?.stop();
    http?.stop(true);
  });

  const to = (port: number) => network.filter((e) => e.dst_port === port);

  test("an IPv4 connect: version 4, loopback source and destination, the port", () => {
    expect(to(v4.port).map(({ version, src_addr, dst_addr }) => ({ version, src_addr, dst_addr }))).toEqual([
      { version: 4, src_addr: "127.0.0.1", dst_addr: "127.0.0.1" },
    ]);
  });

  test("an IPv6 connect: version 6, addresses in RFC 5952 form", () => {
    expect(to(v6.port).map(({ version, src_addr, dst_addr }) => ({ version, src_addr, dst_addr }))).toEqual([
      { version: 6, src_addr: "::1", dst_addr: "::1" },
    ]);
  });

  test("curl to a local HTTP server: its exec and its connects, same pid, plus the IPv4-mapped one as version 4", () => {
    const curls = ofType(events, "session.command").filter((e) => e.program === "curl");
    expect(curls.length).toBe(3);
    const httpConnects = to(httpPort);
    expect(httpConnects.map((e) => e.pid)).toEqual([curls[0]!.pid, curls[1]!.pid]);
    for (const e of httpConnects) {
      expect({
        program: e.program,
        version: e.version,
        src_addr: e.src_addr,
        dst_addr: e.dst_addr,
        cgroup_id: e.cgroup_id,
      }).toEqual({
        program: "curl",
        version: 4,
        src_addr: "127.0.0.1",
        dst_addr: "127.0.0.1",
        cgroup_id: curls[0]!.cgroup_id,
      });
    }
  });

  test("a refused connect is recorded: its SYN was sent", () => {
    expect(to(closed).map((e) => e.program)).toEqual(["curl"]);
  });

  test("only TCP: the UDP connect to the same port is not an event", () => {
    expect(to(v4.port).length).toBe(1);
  });

  test("connects by a process outside the session, at the same time, are not recorded", () => {
    expect(outsideDuringSession).toBeGreaterThan(5);
    expect(to(outside.port)).toEqual([]);
    expect(network.length).toBe(5);
  });

  test("every field of docs/contract.md §3, with the JSON types of Teleport's session.network", () => {
    const teleport = teleportFieldTypes("session.network");
    const expected = {
      ...ESR_COMMON_FIELDS,
      ...teleport,
      src_addr: "string",
      dst_addr: "string",
      dst_port: "number",
      version: "number",
      operation: "number",
      action: "number",
    } as const;
    for (const e of network) {
      expect(fieldTypes(e, expected)).toEqual(expected);
      expect({ event: e.event, code: e.code, operation: e.operation, action: e.action }).toEqual({
        event: "session.network",
        code: "T4002I",
        operation: 0,
        action: 0,
      });
      expect(Object.keys(e).sort()).toEqual([...Object.keys(teleport), "audit_session_id"].sort());
    }
  });

  test("connecting to listeners outside the session records no listen and no accept", () => {
    // On loopback the listener's side of the handshake runs on the connecting task: scoped by the
    // task, those accepts would land in this session.
    expect(network.map((e) => e.operation)).toEqual(network.map(() => NETWORK_OPERATION.connect));
  });

  test("no connect was lost", () => {
    expect(ofType(events, "session.end")[0]?.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
  });
});

/** A client outside any session: connects, reads the greeting, answers, and says which port it had. */
async function talkTo(host: string, port: number): Promise<{ localPort: number; greeting: string }> {
  const socket: Socket = connect({ host, port });
  const greeting = await new Promise<string>((resolve, reject) => {
    socket.once("data", (d) => resolve(d.toString()));
    socket.once("error", reject);
  });
  const localPort = socket.localPort!;
  socket.end("x");
  return { localPort, greeting };
}

/**
 * A bind shell in a recorded session: it listens on 127.0.0.1, ::1 and :: (both families), and
 * serves one connection on each from a client outside any session; then a listener outside the
 * session is connected to, from outside, while it runs.
 */
describe("session.network: listen and accept", () => {
  const hosts = ["127.0.0.1", "::1", "::"];
  let ports: number[];
  let clients: { localPort: number; greeting: string }[];
  let network: SessionNetworkEvent[];
  let events: AuditEvent[];
  let outsidePort: number;

  beforeAll(async () => {
    const dir = tempDir();
    const portsFile = join(dir, "ports");
    const shell = join(dir, "bind-shell.ts");
    writeFileSync(
      shell,
      `const [portsFile, ...hosts] = process.argv.slice(2);
let open = hosts.length;
const servers = hosts.map((hostname) =>
  Bun.listen({
    hostname,
    port: 0,
    socket: {
      open: (s) => void s.write("hi\\n"),
      data(s) {
        s.end();
        if (--open === 0) for (const server of servers) server.stop();
      },
    },
  }),
);
require("node:fs").writeFileSync(portsFile, servers.map((s) => s.port).join(" "));
`,
    );
    const outside = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    outsidePort = outside.port;
    const session = record([process.execPath, shell, portsFile, ...hosts], {
      flags: ["--events", "command,network"],
    });
    try {
      await waitFor("the bind shell's ports", () => existsSync(portsFile) && readFileSync(portsFile, "utf8") !== "");
      ports = readFileSync(portsFile, "utf8").split(" ").map(Number);
      const outsider = connect({ host: "127.0.0.1", port: outsidePort });
      await new Promise((resolve) => outsider.once("connect", resolve));
      outsider.destroy();
      // The dual-stack listener is reached over IPv4: an IPv4-mapped peer.
      clients = [];
      for (const [i, port] of ports.entries()) clients.push(await talkTo(i === 1 ? "::1" : "127.0.0.1", port));
    } finally {
      outside.stop(true);
    }
    const rec = await session;
    if (rec.exitCode !== 0) throw new Error(`session failed (${rec.exitCode}): ${rec.stderr}`);
    events = await replayEvents(rec.dataDir, rec.sid);
    network = ofType(events, "session.network");
  });

  const ofOperation = (operation: number) => network.filter((e) => e.operation === operation);

  test("the session read and wrote on each connection", () => {
    expect(clients.map((c) => c.greeting)).toEqual(["hi\n", "hi\n", "hi\n"]);
  });

  test("a listen per socket: the listener's own address and port as dst, any peer as src, the listening process", () => {
    const listener = ofType(events, "session.command").at(-1)!;
    expect(
      ofOperation(NETWORK_OPERATION.listen).map(({ version, src_addr, dst_addr, dst_port, pid, program }) => ({
        version,
        src_addr,
        dst_addr,
        dst_port,
        pid,
        program,
      })),
    ).toEqual([
      {
        version: 4,
        src_addr: "0.0.0.0",
        dst_addr: "127.0.0.1",
        dst_port: ports[0]!,
        pid: listener.pid,
        program: listener.program,
      },
      {
        version: 6,
        src_addr: "::",
        dst_addr: "::1",
        dst_port: ports[1]!,
        pid: listener.pid,
        program: listener.program,
      },
      { version: 6, src_addr: "::", dst_addr: "::", dst_port: ports[2]!, pid: listener.pid, program: listener.program },
    ]);
  });

  test("an accept per connection from outside: the peer and its port as src, the listener as dst, no process", () => {
    const listener = ofType(events, "session.command").at(-1)!;
    expect(
      ofOperation(NETWORK_OPERATION.accept).map(
        ({ version, src_addr, src_port, dst_addr, dst_port, pid, program, cgroup_id }) => ({
          version,
          src_addr,
          src_port,
          dst_addr,
          dst_port,
          pid,
          program,
          cgroup_id,
        }),
      ),
    ).toEqual([
      {
        version: 4,
        src_addr: "127.0.0.1",
        src_port: clients[0]!.localPort,
        dst_addr: "127.0.0.1",
        dst_port: ports[0]!,
        pid: 0,
        program: "",
        cgroup_id: listener.cgroup_id,
      },
      {
        version: 6,
        src_addr: "::1",
        src_port: clients[1]!.localPort,
        dst_addr: "::1",
        dst_port: ports[1]!,
        pid: 0,
        program: "",
        cgroup_id: listener.cgroup_id,
      },
      {
        version: 4,
        src_addr: "127.0.0.1",
        src_port: clients[2]!.localPort,
        dst_addr: "127.0.0.1",
        dst_port: ports[2]!,
        pid: 0,
        program: "",
        cgroup_id: listener.cgroup_id,
      },
    ]);
  });

  test("a connection to a listener outside any session, from outside, is not recorded", () => {
    expect(network.filter((e) => e.dst_port === outsidePort || e.src_port === outsidePort)).toEqual([]);
    expect(network.length).toBe(6);
  });

  test("Teleport's keys with their JSON types, and esr's src_port on an accept only", () => {
    const teleport = teleportFieldTypes("session.network");
    for (const e of network) {
      const expected: Record<string, JsonType> = {
        ...ESR_COMMON_FIELDS,
        ...teleport,
        ...(e.operation === NETWORK_OPERATION.accept ? { src_port: "number" as const } : {}),
      };
      expect(fieldTypes(e, expected)).toEqual(expected);
      expect(Object.keys(e).sort()).toEqual(Object.keys(expected).sort());
    }
  });

  test("replay text names the operation and shows both ends", () => {
    const lines = formatEventLines(network);
    expect(lines[0]).toContain(`listen   ${network[0]!.program} 127.0.0.1:${ports[0]}`);
    expect(lines[1]).toContain(`listen   ${network[0]!.program} [::1]:${ports[1]}`);
    expect(lines.find((l) => l.includes("accept") && l.includes(`[::1]:${ports[1]}`))).toContain(
      `      0  accept   (kernel) [::1]:${clients[1]!.localPort} -> [::1]:${ports[1]}`,
    );
  });
});

describe("address text", () => {
  const v6 = (text: string) => {
    const groups = text.split(":").map((g) => parseInt(g, 16));
    return new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff]));
  };

  test("IPv4 is a dotted quad", () => {
    expect(formatIPv4(new Uint8Array([10, 0, 255, 1, 9, 9]))).toBe("10.0.255.1");
  });

  test.each([
    ["0:0:0:0:0:0:0:1", "::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["2001:db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["FE80:0:0:0:ABCD:0:0:0", "fe80::abcd:0:0:0"],
    ["1:0:0:0:0:0:0:0", "1::"],
  ])("RFC 5952: %s is %s", (full, text) => {
    expect(formatIPv6(v6(full))).toBe(text);
  });
});
