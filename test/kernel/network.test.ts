/**
 * Network events (docs/contract.md §3 session.network, §5): every TCP connect of a session's processes, IPv4 and
 * IPv6, with the real source address; nothing from processes outside the session.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { formatIPv4, formatIPv6 } from "../../lib/events/ip-address.ts";
import type { AuditEvent } from "../../lib/events/audit-events.ts";
import type { SessionNetworkEvent } from "../../lib/events/kinds/index.ts";
import { ESR_COMMON_FIELDS, fieldTypes, teleportFieldTypes } from "../support/fields.ts";
import { ofType, record, replayEvents } from "../support/harness.ts";

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
      expect(Object.keys(e).sort()).toEqual(Object.keys(teleport).sort());
    }
  });

  test("no connect was lost", () => {
    expect(ofType(events, "session.end")[0]?.lost_events).toEqual({ command: 0, disk: 0, network: 0 });
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
