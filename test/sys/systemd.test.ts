/** lib/sys/systemd.ts on this host: logind scope names as an attacker might shape them, the kernel's cgroup of a process, and a scope that cannot be started. */
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { logindScope, processCgroup, startTransientScope, systemdBooted } from "../../lib/sys/systemd.ts";

describe("logindScope", () => {
  test("names logind's session scope, its uid and session", () => {
    expect(logindScope("/user.slice/user-1000.slice/session-3.scope")).toEqual({
      path: "/user.slice/user-1000.slice/session-3.scope",
      uid: 1000,
      session: "3",
    });
    expect(logindScope("/user.slice/user-0.slice/session-c12.scope")?.session).toBe("c12");
  });

  test("nothing else: a child of a scope, the user manager, another slice, look-alikes", () => {
    for (const path of [
      "/",
      "/user.slice/user-1000.slice/session-3.scope/child",
      "/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope",
      "/system.slice/ssh.service",
      "/esr.slice/esr-1.scope",
      "/x/user.slice/user-1000.slice/session-3.scope",
      "/user.slice/user-1000.slice/session-3.scope\n",
      "/user.slice/user-1000.slice/session-../.scope",
      "/user.slice/user-10x0.slice/session-3.scope",
    ])
      expect(logindScope(path)).toBeUndefined();
  });
});

test("processCgroup is the kernel's 0:: line; a process that is gone is one line", () => {
  expect(processCgroup(process.pid)).toMatch(/^\//);
  expect(() => processCgroup(999999999)).toThrow("cannot read the cgroup of process 999999999");
});

test("systemdBooted follows /run/systemd/system", () => {
  expect(systemdBooted()).toBe(existsSync("/run/systemd/system"));
});

// On a systemd host the scope starts; elsewhere the refusal is one line naming the unit and
// systemd-run's own reason.
test("a scope systemd cannot start is one line", async () => {
  const unit = `esr-test-${process.pid}.scope`;
  if (systemdBooted()) {
    const holder = await startTransientScope(unit, "esr.slice", "test");
    expect(holder.path).toBe(`/esr.slice/${unit}`);
    return holder.release();
  }
  const err = await startTransientScope(unit, "esr.slice", "test").catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toStartWith(`cannot start the systemd scope ${unit}: systemd-run: `);
  expect((err as Error).message).not.toContain("\n");
});
