/** KernelTracer: events of every kind, from three rings, written in the order the kernel saw them. */
import { expect, test } from "bun:test";
import { record, replayEvents } from "../support/harness.ts";

test("ei follows kernel time across command, disk and network events", async () => {
  const r = await record(
    [
      "bash",
      "-c",
      "/bin/cat /etc/hostname >/dev/null; (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; /bin/cat /etc/os-release >/dev/null",
    ],
    {
      flags: ["--events", "command,disk,network"],
    },
  );
  const events = await replayEvents(r.dataDir, r.sid);
  const times = events.map((e) => Date.parse(e.time));
  expect(times).toEqual([...times].sort((a, b) => a - b));
  const at = (pred: (e: (typeof events)[number]) => boolean) => events.findIndex(pred);
  const firstCat = at((e) => e.event === "session.command" && e.argv[0] === "/etc/hostname");
  const hostnameOpen = at((e) => e.event === "session.disk" && e.path === "/etc/hostname");
  const connect = at((e) => e.event === "session.network" && e.dst_port === 9);
  const secondCat = at((e) => e.event === "session.command" && e.argv[0] === "/etc/os-release");
  expect([firstCat, hostnameOpen, connect, secondCat].every((i) => i > 0)).toBe(true);
  expect(firstCat).toBeLessThan(hostnameOpen);
  expect(hostnameOpen).toBeLessThan(connect);
  expect(connect).toBeLessThan(secondCat);
});
