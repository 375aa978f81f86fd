/**
 * The parts of `esr check`'s sshd section that read files: PAM stacks (includes, controls, where
 * the esr line is) and sshd_config Match blocks (OpenSSH ≥ 9.8 PAMServiceName, which this host's
 * 9.2 sshd rejects, so ssh.test.ts cannot run it end to end).
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isEsrHook, matchServices, sessionStack } from "../../lib/check/sshd-checks.ts";
import { tempDir } from "../support/harness.ts";

describe("sessionStack", () => {
  test("follows @include, include and substack, in order, and keeps only session lines", () => {
    const pam = tempDir();
    writeFileSync(join(pam, "common-session"), "session required pam_unix.so\n-session optional pam_systemd.so\n");
    writeFileSync(join(pam, "extra"), "session optional pam_motd.so\n");
    writeFileSync(
      join(pam, "svc"),
      [
        "# comment",
        "auth required pam_deny.so",
        "session [success=ok ignore=ignore default=bad] pam_selinux.so close",
        "session required pam_loginuid.so",
        "session required pam_exec.so log=/var/log/esr-pam.log /usr/local/sbin/esr pam   # the hook",
        "@include common-session",
        "session include extra",
      ].join("\n"),
    );
    const stack = sessionStack(pam, "svc");
    expect(stack.map((l) => `${l.control} ${l.module}`)).toEqual([
      "[success=ok ignore=ignore default=bad] pam_selinux.so",
      "required pam_loginuid.so",
      "required pam_exec.so",
      "required pam_unix.so",
      "optional pam_systemd.so",
      "optional pam_motd.so",
    ]);
    expect(stack[2]).toEqual({
      where: `${join(pam, "svc")}:5`,
      control: "required",
      module: "pam_exec.so",
      args: ["log=/var/log/esr-pam.log", "/usr/local/sbin/esr", "pam"],
    });
    expect(stack.findIndex(isEsrHook)).toBe(2);
  });

  test("a missing service file is an empty stack; an include loop ends", () => {
    const pam = tempDir();
    writeFileSync(join(pam, "a"), "@include b\nsession required pam_a.so\n");
    writeFileSync(join(pam, "b"), "@include a\nsession required pam_b.so\n");
    expect(sessionStack(pam, "nope")).toEqual([]);
    expect(sessionStack(pam, "a").map((l) => l.module)).toEqual(["pam_b.so", "pam_a.so"]);
  });
});

describe("isEsrHook", () => {
  const line = (module: string, args: string) => ({
    where: "x:1",
    control: "required",
    module,
    args: args.split(" ").filter(Boolean),
  });
  test("pam_exec running an absolute esr with the pam command, options before it allowed", () => {
    expect(isEsrHook(line("pam_exec.so", "/usr/local/sbin/esr pam"))).toBe(true);
    expect(
      isEsrHook(
        line("/lib/x86_64-linux-gnu/security/pam_exec.so", "quiet log=/tmp/l /opt/esr/esr pam --socket /run/x.sock"),
      ),
    ).toBe(true);
    expect(isEsrHook(line("pam_exec.so", "/usr/local/sbin/esr record"))).toBe(false);
    expect(isEsrHook(line("pam_exec.so", "/usr/local/sbin/not-esr pam"))).toBe(false);
    expect(isEsrHook(line("pam_exec.so", "esr pam"))).toBe(false); // pam_exec needs an absolute path
    expect(isEsrHook(line("pam_env.so", "/usr/local/sbin/esr pam"))).toBe(false);
  });
});

describe("matchServices", () => {
  test("PAMServiceName inside Match blocks, in the config and the files it includes", () => {
    const dir = tempDir();
    mkdirSync(join(dir, "conf.d"));
    writeFileSync(join(dir, "conf.d", "10-a.conf"), "Match Group contractors\n  PAMServiceName sshd-contractors\n");
    writeFileSync(join(dir, "conf.d", "20-b.conf"), "# nothing\n");
    writeFileSync(
      join(dir, "sshd_config"),
      [
        `Include ${join(dir, "conf.d")}/*.conf`,
        "UsePAM yes",
        "PAMServiceName sshd",
        "Match User bob Address 10.0.0.0/8",
        "  PAMServiceName=other",
        "  X11Forwarding no",
      ].join("\n"),
    );
    expect(matchServices(join(dir, "sshd_config"))).toEqual([
      { where: `${join(dir, "conf.d", "10-a.conf")}:2`, criteria: "Group contractors", service: "sshd-contractors" },
      { where: `${join(dir, "sshd_config")}:5`, criteria: "User bob Address 10.0.0.0/8", service: "other" },
    ]);
  });
});
