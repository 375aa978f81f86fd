/**
 * A program driven through a real pseudo-terminal, as a user at a terminal drives it: keys in,
 * screen out, window resized. Used to run the real dist/esr on a terminal.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ESR, sessionsDir, tempDir } from "./harness.ts";

export class PtySession {
  /** Every byte the terminal received, in order. */
  private readonly received: Uint8Array[] = [];
  private readonly decoder = new TextDecoder();
  /** What the terminal received, as text. */
  screen = "";
  readonly proc: Bun.Subprocess;
  private readonly closed = Promise.withResolvers<void>();

  constructor(cmd: string[], opts: { cols?: number; rows?: number; env?: Record<string, string> } = {}) {
    this.proc = Bun.spawn(cmd, {
      env: { ...process.env, TERM: "xterm", ...opts.env },
      terminal: {
        cols: opts.cols ?? 100,
        rows: opts.rows ?? 30,
        data: (_t, bytes) => {
          this.received.push(bytes.slice());
          this.screen += this.decoder.decode(bytes, { stream: true });
        },
        exit: () => this.closed.resolve(),
      },
    });
  }

  get terminal(): Bun.Terminal {
    return this.proc.terminal!;
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  /** Types keys; nothing is added (no Enter). */
  keys(text: string) {
    this.terminal.write(text);
  }

  /** Waits until `text` shows up after screen offset `from`; returns the offset just past it. */
  async waitFor(text: string, from = 0, timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const at = this.screen.indexOf(text, from);
      if (at >= 0) return at + text.length;
      if (Date.now() > deadline)
        throw new Error(
          `never saw ${JSON.stringify(text)} on the terminal; after offset ${from} it shows ${JSON.stringify(this.screen.slice(from))}`,
        );
      await Bun.sleep(20);
    }
  }

  /** Types a line and Enter, then waits for `prompt` to come back; returns the screen since the line was typed. */
  async run(line: string, prompt: string): Promise<string> {
    const from = this.screen.length;
    this.keys(`${line}\r`);
    const end = await this.waitFor(prompt, from + line.length);
    return this.screen.slice(from, end);
  }

  /** Waits for the program to exit and the terminal to have delivered everything; its exit code. */
  async exited(timeoutMs = 10000): Promise<number> {
    const code = await Promise.race([this.proc.exited, Bun.sleep(timeoutMs).then(() => undefined)]);
    if (code === undefined) {
      this.proc.kill("SIGKILL");
      throw new Error(`still running after ${timeoutMs} ms; the terminal shows ${JSON.stringify(this.screen)}`);
    }
    await Promise.race([this.closed.promise, Bun.sleep(1000)]);
    return code;
  }

  /** The session id esr printed on the terminal. */
  sid(): string {
    const sid = /esr: session ([0-9a-f-]{36})/.exec(this.screen)?.[1];
    if (!sid) throw new Error(`no session id on the terminal: ${JSON.stringify(this.screen)}`);
    return sid;
  }
}

/** `esr record [flags] -- command…` on a terminal, in a fresh data dir. */
export function recordOnPty(
  command: string[],
  opts: { flags?: string[]; env?: Record<string, string>; cols?: number; rows?: number } = {},
) {
  const dataDir = tempDir();
  const session = new PtySession([ESR, "record", "--data-dir", dataDir, ...(opts.flags ?? []), "--", ...command], opts);
  return { session, dataDir };
}

/** The entries of a session's index file. */
export function sessionIndex(dataDir: string, sid: string): { file_name: string; type: string }[] {
  return readFileSync(join(sessionsDir(dataDir), `${sid}.index`), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
}

/** The path of a session's first file of the given index type; throws if the index names none. */
export function sessionFilePath(dataDir: string, sid: string, type: string): string {
  const entry = sessionIndex(dataDir, sid).find((e) => e.type === type);
  if (!entry) throw new Error(`the index of ${sid} names no ${type} file`);
  return join(sessionsDir(dataDir), entry.file_name);
}

/** A session's first file of the given index type as zcat reads it; throws if the index names none. */
export function sessionFile(dataDir: string, sid: string, type: string): Buffer {
  const path = sessionFilePath(dataDir, sid, type);
  const zcat = Bun.spawnSync(["zcat", path]);
  if (zcat.exitCode !== 0) throw new Error(`zcat ${path}: ${zcat.stderr}`);
  return zcat.stdout;
}
