/**
 * Test helpers around a real `esr daemon` (dist/esr) in the foreground: its own socket, config,
 * data dir and cgroup root_path, its log read as it is written, and waits on what it logs.
 */
import { existsSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ESR, tempDir } from "./harness.ts";

export interface DaemonSetup {
  /** holds the socket, config and data dir */
  dir: string;
  socket: string;
  dataDir: string;
  configFile: string;
  /** cgroup slices' parent below /cgroup2 */
  rootPath: string;
}

let setups = 0;

/**
 * A directory, config and root_path of their own; `extraYaml` adds role and user resources,
 * `recordingYaml` more ssh_service.enhanced_recording keys.
 */
export function daemonSetup(extraYaml = "", recordingYaml = ""): DaemonSetup {
  const dir = tempDir("esr-daemon-");
  const rootPath = `/esr-daemon-test-${process.pid}-${++setups}`;
  const configFile = join(dir, "esr.yaml");
  writeFileSync(
    configFile,
    `ssh_service:\n  enhanced_recording:\n    root_path: ${rootPath}\n${recordingYaml}${extraYaml ? `---\n${extraYaml}` : ""}`,
  );
  return { dir, socket: join(dir, "run", "esr.sock"), dataDir: join(dir, "data"), configFile, rootPath };
}

/** Removes the setup's cgroup parent once no slice is left in it. */
export function removeSlicesParent(setup: DaemonSetup) {
  const parent = join("/cgroup2", setup.rootPath);
  if (existsSync(parent)) rmdirSync(parent);
}

export class TestDaemon {
  private text = "";
  private readonly done: Promise<void>;

  private constructor(
    readonly setup: DaemonSetup,
    readonly proc: Subprocess<"ignore", "ignore", "pipe">,
  ) {
    this.done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of proc.stderr) this.text += decoder.decode(chunk, { stream: true });
    })();
  }

  /** Starts the daemon and waits until it listens. */
  static async start(setup: DaemonSetup): Promise<TestDaemon> {
    const proc = Bun.spawn(
      [ESR, "daemon", "--config", setup.configFile, "--data-dir", setup.dataDir, "--socket", setup.socket],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
    const daemon = new TestDaemon(setup, proc);
    await daemon.waitForLog(/listening on /, 10_000);
    return daemon;
  }

  get log(): string {
    return this.text;
  }

  /** Resolves with the first match in the log (searched from `from`), or throws after `timeoutMs`. */
  async waitForLog(pattern: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text.slice(from).match(pattern);
      if (m) return m;
      if (this.proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `esr daemon never logged ${pattern}${this.proc.exitCode !== null ? ` (exited ${this.proc.exitCode})` : ""}; its log:\n${this.text}`,
        );
      }
      await Bun.sleep(20);
    }
  }

  /** Session ids of the logins logged after the log had `from` characters. */
  loginsSince(from: number): string[] {
    return [...this.text.slice(from).matchAll(/session ([0-9a-f-]{36}): login /g)].map((m) => m[1]!);
  }

  /** Waits for `count` logins after `from`, and returns them (and any more). */
  async waitForLogins(from: number, count: number, timeoutMs = 10_000): Promise<string[]> {
    await this.waitForLog(new RegExp(`(session [0-9a-f-]{36}: login [^]*){${count}}`), timeoutMs, from);
    return this.loginsSince(from);
  }

  waitForEnd(sid: string, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.waitForLog(new RegExp(`session ${sid}: ended`), timeoutMs);
  }

  /** Sends the signal and returns the exit status; a daemon still running after 15 s is a failure. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 15_000);
    const code = await this.proc.exited;
    clearTimeout(timer);
    await this.done;
    if (signal !== "SIGKILL" && this.proc.signalCode === "SIGKILL")
      throw new Error(`esr daemon did not stop within 15 s of ${signal}; its log:\n${this.text}`);
    return code;
  }
}
