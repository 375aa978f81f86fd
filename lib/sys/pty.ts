/**
 * A command on its own pseudo-terminal, relayed to the user's terminal as ssh and script(1) do: the
 * user's terminal in raw mode so that every key (Ctrl-C, Ctrl-Z, arrows, Ctrl-D) reaches the pty as
 * a byte and the pty's line discipline turns it into a signal for the command's foreground job; the
 * pty's output written to stdout untouched; the user's window size followed.
 */
import { chownSync, readlinkSync, statSync } from "node:fs";
import { getTermios, rawTermios, setTermios, windowSize, type Termios } from "./libc.ts";

export interface TerminalSize {
  cols: number;
  rows: number;
}

/** Where the pty's output and size changes are recorded. */
export interface PtySink {
  /** Output of the pty, as it is written to stdout. */
  output(bytes: Uint8Array): void;
  /** The user's terminal changed size, and the pty with it. */
  resize(size: TerminalSize): void;
  /** The pty is closed: no more output will come. */
  end(): void;
}

const STDIN = 0;
/** A terminal that reports no size (a serial line, a pty nobody sized) is taken as the classic one. */
const DEFAULT_SIZE: TerminalSize = { cols: 80, rows: 24 };

/** The size of the user's terminal when stdin is one; undefined when it is not (a pipe, a file). */
export function userTerminalSize(): TerminalSize | undefined {
  return process.stdin.isTTY ? (windowSize(STDIN) ?? DEFAULT_SIZE) : undefined;
}

export class PtyRelay {
  /** The user's terminal settings while it is in raw mode, to put back. */
  private saved?: Termios;
  private terminal?: Bun.Terminal;
  private readonly closed = Promise.withResolvers<void>();
  private readonly forwardInput = (bytes: Uint8Array) => {
    if (this.terminal && !this.terminal.closed) this.terminal.write(bytes);
  };
  private readonly followSize = () => this.resize();
  private readonly restoreAtExit = () => this.release();
  /**
   * What read the output is gone (a closed pipe, a hung-up terminal): the command's pty hangs up
   * too, as the command's own terminal or pipe would have.
   */
  private readonly hangUp = () => this.terminal?.close();

  /** `owner`: the uid the command runs as, who gets the pty. */
  constructor(
    private size: TerminalSize,
    private readonly sink: PtySink,
    private readonly owner: number,
  ) {}

  /** Puts the user's terminal in raw mode; returns Bun.spawn's `terminal` option for the command. */
  open(): Bun.TerminalOptions {
    this.saved = getTermios(STDIN);
    if (this.saved) setTermios(STDIN, rawTermios(this.saved));
    // Whatever ends the process, the user gets a working terminal back.
    process.on("exit", this.restoreAtExit);
    process.stdout.on("error", this.hangUp);
    return {
      cols: this.size.cols,
      rows: this.size.rows,
      data: (_terminal, bytes) => {
        process.stdout.write(bytes);
        this.sink.output(bytes);
      },
      exit: () => this.closed.resolve(),
    };
  }

  /** Once the command is spawned: keys and window size changes go to its pty. */
  attach(child: { pid: number; terminal?: Bun.Terminal }) {
    this.terminal = child.terminal;
    if (this.owner !== process.getuid?.()) givePty(child.pid, this.owner);
    process.stdin.on("data", this.forwardInput);
    process.on("SIGWINCH", this.followSize);
    // The window may have changed while the command was starting.
    this.resize();
  }

  /**
   * The command has exited: the user's terminal goes back to how it was, and keys stay there.
   * What the command left running may still write to the pty; that is relayed until close().
   * Safe to call more than once.
   */
  release() {
    process.stdin.off("data", this.forwardInput);
    process.stdin.pause();
    process.off("SIGWINCH", this.followSize);
    process.off("exit", this.restoreAtExit);
    if (this.saved) setTermios(STDIN, this.saved);
    this.saved = undefined;
  }

  /**
   * Waits until every process has closed the pty (which is how its last output is known to be
   * read), at most timeoutMs, then closes it.
   */
  async close(timeoutMs: number) {
    if (this.terminal) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.closed.promise, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timer);
      this.terminal.close();
    }
    process.stdout.off("error", this.hangUp);
    this.sink.end();
  }

  private resize() {
    const size = windowSize(STDIN);
    if (
      !size ||
      !this.terminal ||
      this.terminal.closed ||
      (size.cols === this.size.cols && size.rows === this.size.rows)
    )
      return;
    this.size = size;
    this.terminal.resize(size.cols, size.rows);
    this.sink.resize(size);
  }
}

/**
 * Gives the pty to the user the command runs as, as login(1) and sshd do, so that programs that
 * reopen their terminal by name (tmux, write, pinentry) can. The pty is found as the command's
 * stdin; a command that already exited or closed it needs no terminal.
 */
function givePty(pid: number, uid: number) {
  try {
    const path = readlinkSync(`/proc/${pid}/fd/0`);
    if (path.startsWith("/dev/pts/")) chownSync(path, uid, statSync(path).gid);
  } catch {
    // see above
  }
}
