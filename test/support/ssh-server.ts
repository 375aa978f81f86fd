/**
 * A real OpenSSH server for the tests: /usr/sbin/sshd started through a symlink
 * whose name is its PAM service, on 127.0.0.1 and a free port, with its own host key, config and
 * PAM stack, and a test user that logs in with a key. /etc/ssh and /etc/pam.d/sshd are untouched.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ESR, freePort, tempDir } from "./harness.ts";

const SSHD = "/usr/sbin/sshd";

export interface SshResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class TestSshd {
  readonly dir = tempDir("esr-sshd-");
  /** the sshd binary's name as started, hence its PAM service */
  readonly service = `sshd-esrtest${process.pid}`;
  readonly pamFile = join("/etc/pam.d", this.service);
  /** the test user, who logs in with clientKey */
  static readonly user = `esrssh${process.pid % 100000}`;
  readonly user = TestSshd.user;
  readonly home = join("/home", this.user);
  readonly clientKey = join(this.dir, "client_key");
  readonly config = join(this.dir, "sshd_config");
  readonly binary = join(this.dir, this.service);
  port = 0;
  private proc?: Subprocess<"ignore", "ignore", "pipe">;
  private text = "";

  constructor(private readonly socket: string) {
    if (!existsSync(SSHD))
      throw new Error(`${SSHD} is missing: apt-get install openssh-server (scripts/setup.sh installs it)`);
  }

  /** The PAM line README tells operators to add. */
  get esrLine(): string {
    return `session required pam_exec.so ${ESR} pam --socket ${this.socket}`;
  }

  /** Debian's own sshd stack with the esr line where README puts it: right after @include common-session. */
  readmeStack(): string {
    const debian = readFileSync("/etc/pam.d/sshd", "utf8");
    const stack = debian.replace(/^(@include common-session)$/m, `$1\n${this.esrLine}`);
    if (stack === debian)
      throw new Error("/etc/pam.d/sshd has no @include common-session line to put the esr line after");
    return stack;
  }

  setPamStack(text: string) {
    writeFileSync(this.pamFile, text);
  }

  async start(extraConfig = "") {
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(this.dir, "host_key")]);
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", this.clientKey]);
    run(["useradd", "-m", "-s", "/bin/bash", this.user]);
    mkdirSync(join(this.home, ".ssh"), { mode: 0o700 });
    copyFileSync(`${this.clientKey}.pub`, join(this.home, ".ssh", "authorized_keys"));
    run(["chown", "-R", `${this.user}:`, join(this.home, ".ssh")]);
    symlinkSync(SSHD, this.binary);
    this.setPamStack(this.readmeStack());
    this.port = freePort();
    writeFileSync(this.config, this.configText(extraConfig));
    this.proc = Bun.spawn([this.binary, "-D", "-e", "-f", this.config], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    void (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of this.proc!.stderr) this.text += decoder.decode(chunk, { stream: true });
    })();
    for (let i = 0; i < 250 && !this.text.includes("Server listening"); i++) {
      if (this.proc.exitCode !== null) break;
      await Bun.sleep(20);
    }
    if (!this.text.includes("Server listening")) throw new Error(`sshd did not start: ${this.text}`);
  }

  configText(extra = ""): string {
    return [
      `Port ${this.port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(this.dir, "host_key")}`,
      `PidFile ${join(this.dir, "sshd.pid")}`,
      "UsePAM yes",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "AllowTcpForwarding yes",
      "PrintMotd no",
      "Subsystem sftp /usr/lib/openssh/sftp-server",
      extra,
    ].join("\n");
  }

  get log(): string {
    return this.text;
  }

  /** ssh options for the test user's key, and the destination. */
  sshArgs(portFlag = "-p"): string[] {
    return [
      "-i",
      this.clientKey,
      portFlag,
      String(this.port),
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "LogLevel=ERROR",
    ];
  }

  /** ssh [options] user@127.0.0.1 [command]; stdin "pipe" keeps it open for the test to write. */
  spawnSsh(options: string[], command?: string, stdin?: string | "pipe") {
    return Bun.spawn(
      ["ssh", ...this.sshArgs(), ...options, `${this.user}@127.0.0.1`, ...(command === undefined ? [] : [command])],
      {
        stdin: stdin === undefined ? "ignore" : stdin === "pipe" ? "pipe" : new TextEncoder().encode(stdin),
        stdout: "pipe",
        stderr: "pipe",
      },
    );
  }

  /** Runs ssh to the end; a run longer than `timeoutMs` is killed and reported with sshd's log. */
  async ssh(options: string[], command?: string, stdin?: string, timeoutMs = 15_000): Promise<SshResult> {
    const proc = this.spawnSsh(options, command, stdin);
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(timer);
    if (proc.signalCode === "SIGKILL")
      throw new Error(
        `ssh ${[...options, command].join(" ")} did not finish within ${timeoutMs} ms (stdout ${JSON.stringify(stdout)}); sshd's log:\n${this.text}`,
      );
    return { exitCode, stdout, stderr };
  }

  async stop() {
    this.proc?.kill("SIGTERM");
    await this.proc?.exited;
    rmSync(this.pamFile, { force: true });
    Bun.spawnSync(["userdel", "-r", "-f", this.user], { stderr: "ignore" });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function run(cmd: string[]) {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString()}`);
}
