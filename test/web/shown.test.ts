/** "Shown vs ran" on terminal output shaped like a shell's: which execs never had their line on screen. */
import { describe, expect, test } from "bun:test";
import type { SessionCommandEvent } from "../../lib/events/kinds/index.ts";
import { neverShown } from "../../web/shown.ts";

const START = Date.parse("2026-12-01T10:00:00.000Z");

const exec = (ei: number, ms: number, path: string, argv: string[], extra: object = {}): SessionCommandEvent => ({
  event: "session.command",
  code: "T4000I",
  ei,
  uid: crypto.randomUUID(),
  time: new Date(START + ms).toISOString(),
  sid: "0f0e0d0c-0b0a-4908-8706-050403020100",
  user: "alice",
  login: "alice",
  namespace: "default",
  server_id: "00000000-0000-4000-8000-000000000000",
  server_hostname: "web-1",
  cluster_name: "web-1",
  pid: 100 + ei,
  audit_session_id: 4294967295,
  cgroup_id: 1,
  program: path.slice(path.lastIndexOf("/") + 1),
  ppid: 100,
  path,
  argv,
  return_code: 0,
  mount_ns: 4026531841,
  user_ns: 4026531837,
  ...extra,
});
const frame = (ms: number, text: string) => ({ ms, bytes: Buffer.from(text) });
const unseen = (execs: SessionCommandEvent[], frames: ReturnType<typeof frame>[]) =>
  [...neverShown(execs, frames, (e) => Date.parse(e.time) - START)].sort((a, b) => a - b);

describe("neverShown", () => {
  test("a typed pipeline is shown; what it decoded and ran is not", () => {
    const frames = [frame(10, "$ echo L2Jpbg== | base64 -d | sh\r\n"), frame(30, "decoded-secret\r\n$ ")];
    const execs = [
      exec(1, 20, "/usr/bin/base64", ["-d"]),
      exec(2, 21, "/usr/bin/sh", []),
      exec(3, 22, "/bin/echo", ["decoded-secret"]),
    ];
    expect(unseen(execs, frames)).toEqual([3]);
  });

  test("the command's own later output does not count as showing it", () => {
    const frames = [frame(10, "$ ./run.sh\r\n"), frame(500, "/bin/echo hidden\r\n")];
    expect(unseen([exec(1, 100, "/bin/echo", ["hidden"])], frames)).toEqual([1]);
  });

  test("quoting and paths as typed still match; a script runs as its own argv", () => {
    const frames = [frame(5, "$ /usr/bin/printf '%s\\n' \"a b\"\r\n$ ./x.sh arg\r\n")];
    const execs = [
      exec(1, 20, "/usr/bin/printf", ["%s\\n", "a b"]),
      exec(2, 21, "./x.sh", ["./x.sh", "arg"], { interpreter: "/bin/sh" }),
    ];
    expect(unseen(execs, frames)).toEqual([]);
  });

  test("typed with echo off: the prompt comes back, the line never does", () => {
    const frames = [frame(5, "$ stty -echo\r\n"), frame(20, "$ \r\n"), frame(40, "typed-blind\r\n$ ")];
    const execs = [exec(1, 10, "/usr/bin/stty", ["-echo"]), exec(2, 30, "/bin/echo", ["typed-blind"])];
    expect(unseen(execs, frames)).toEqual([2]);
  });

  test("cursor-edited lines are compared as the screen shows them", () => {
    const frames = [frame(5, "$ lx\b\x1b[Ks -l /etc\r\n")];
    expect(unseen([exec(1, 10, "/bin/ls", ["-l", "/etc"])], frames)).toEqual([]);
  });
});
