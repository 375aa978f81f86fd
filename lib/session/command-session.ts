/**
 * `esr record`: runs a command as a login in a new recorded session, passing the terminal and
 * signals through, and returns its exit status.
 */
import { existsSync } from "node:fs";
import { constants } from "node:os";
import type { Account } from "../sys/accounts.ts";
import { FileEventStore } from "../store/file/file-store.ts";
import type { EsrConfig, EventKind } from "../config/config.ts";
import { EsrError } from "../errors.ts";
import type { LostCounts } from "../events/kinds/index.ts";
import { KernelTracer } from "../kernel/tracer.ts";
import type { SessionTracer } from "../kernel/session-tracer.ts";
import { terminalSizeText, type CommandExit } from "../events/audit-events.ts";
import { strsignal } from "../sys/libc.ts";
import { RecordedSession } from "./recorded-session.ts";
import { PtyRelay, userTerminalSize } from "../sys/pty.ts";
import { TerminalCapture } from "./terminal-capture.ts";

export interface CommandSessionOptions {
  config: EsrConfig;
  /** The command and its arguments; empty runs the login's shell. */
  command: string[];
  /** The account the command runs as. */
  login: Account;
  /** Teleport user name recorded in every event. */
  user: string;
  events: EventKind[];
  killOnExit: boolean;
  /** Called with the session id before the command starts. */
  onStart?(sid: string): void;
  /** Called when the command has exited but processes remain in the session. */
  onLingering?(): void;
  /**
   * The kernel side of the session (a running esr daemon's, lib/ssh/daemon-tracer.ts); default:
   * programs of its own. Not called when enhanced recording is off.
   */
  startTracer?(onFailure: (err: unknown) => void): Promise<SessionTracer>;
}

export interface CommandSessionResult {
  sid: string;
  exitCode: number;
  lost: LostCounts;
}

export async function runCommandSession(opts: CommandSessionOptions): Promise<CommandSessionResult> {
  const { config } = opts;
  const store = FileEventStore.open(config.dataDir, config.integrity);
  const argv = opts.command.length ? opts.command : [opts.login.shell];
  const launch = launchSpec(argv, opts.login);
  // On a terminal, the command gets a pty of its own, whose output is recorded.
  const size = userTerminalSize();
  const interactive = size !== undefined;
  let session: RecordedSession | undefined;
  const er = config.enhancedRecording;
  const onFailure = (err: unknown) => session?.fail(err);
  const tracer = !er.enabled
    ? undefined
    : opts.startTracer
      ? await opts.startTracer(onFailure)
      : KernelTracer.start({ config: er, kinds: opts.events, onFailure });
  try {
    session = await RecordedSession.begin({
      store,
      config,
      tracer,
      user: opts.user,
      login: opts.login.name,
      events: opts.events,
      initialCommand: argv,
      size: size && terminalSizeText(size),
    });
    opts.onStart?.(session.sid);
    const pty = size && new PtyRelay(size, new TerminalCapture(session), opts.login.uid);
    const exit = await runCommand(launch, sessionEnv(opts.login, session.sid), session, pty);
    const exitCode = "status" in exit ? exit.status : 128 + exit.signal;
    const lost = await session.end({
      exitCode,
      interactive: () => interactive,
      // Teleport writes an exec event for a command, not for a login shell.
      ...(opts.command.length ? { command: { argv, exit: execExit(exit), time: new Date() } } : {}),
      killOnExit: opts.killOnExit,
      onLingering: opts.onLingering,
      beforeEnd: pty && (() => pty.close(PTY_CLOSE_TIMEOUT_MS)),
    });
    return { sid: session.sid, exitCode, lost };
  } finally {
    tracer?.close();
  }
}

/**
 * Once the session's processes are gone, the pty's last output is read by the time it reports end
 * of file; this bounds the wait for a process outside the session that holds it open.
 */
const PTY_CLOSE_TIMEOUT_MS = 500;

/** How the command ended: its exit status, or the number of the signal that killed it. */
type ChildExit = { status: number } | { signal: number };

function execExit(exit: ChildExit): CommandExit {
  return "status" in exit ? exit : { signal: strsignal(exit.signal) };
}

/**
 * Runs the command in the session's slice, on its own pty when given one (else with the recorder's
 * stdio), and says how it ended.
 */
async function runCommand(
  launch: LaunchSpec,
  env: Record<string, string | undefined>,
  session: RecordedSession,
  pty: PtyRelay | undefined,
): Promise<ChildExit> {
  const signals = forwardSignals(pty !== undefined);
  try {
    const child = Bun.spawn({
      cmd: launch.cmd,
      env,
      cwd: launch.cwd,
      ...(pty ? { terminal: pty.open() } : { stdio: ["inherit", "inherit", "inherit"] as const }),
      ...(session.slice ? { cgroup: session.slice.path } : {}),
      ...(launch.ids ?? {}),
    });
    pty?.attach(child);
    signals.target = child;
    session.slice?.release();
    await child.exited;
    return child.exitCode !== null ? { status: child.exitCode } : { signal: signalNumber(child.signalCode) };
  } catch (err) {
    session.fail(spawnError(err, launch.cmd[0]!));
    return { status: 127 };
  } finally {
    signals.restore();
    pty?.release();
  }
}

interface LaunchSpec {
  cmd: string[];
  cwd: string;
  ids?: { uid: number; gid: number };
}

/** The login is who runs esr: the command keeps esr's own environment and directory. */
function isInvoker(login: Account): boolean {
  return process.getuid?.() === login.uid;
}

/** PATH of a fresh login, as login(1) sets it. */
function loginPath(login: Account): string {
  return login.uid === 0
    ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    : "/usr/local/bin:/usr/bin:/bin";
}

/**
 * How to start the command as the login. Bun can set uid and gid but clears supplementary groups,
 * so another user's command starts through setpriv --init-groups, which is recorded like any exec.
 */
function launchSpec(argv: string[], login: Account): LaunchSpec {
  const self = isInvoker(login);
  const path = loginPath(login);
  const program = Bun.which(argv[0]!, { PATH: self ? (process.env.PATH ?? path) : path });
  if (!program) throw new EsrError(`${argv[0]}: command not found`, 127);
  // Like login(1): a missing home directory is no reason to refuse the session.
  const cwd = self ? process.cwd() : existsSync(login.home) ? login.home : "/";
  if (self) return { cmd: [program, ...argv.slice(1)], cwd };
  const setpriv = Bun.which("setpriv", { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" });
  if (!setpriv) return { cmd: [program, ...argv.slice(1)], cwd, ids: { uid: login.uid, gid: login.gid } };
  return {
    cmd: [setpriv, `--reuid=${login.uid}`, `--regid=${login.gid}`, "--init-groups", "--", program, ...argv.slice(1)],
    cwd,
  };
}

/** The command's environment: the invoker's, or a clean login environment for another user. */
function sessionEnv(login: Account, sid: string): Record<string, string | undefined> {
  if (isInvoker(login)) return { ...process.env, ESR_SESSION_ID: sid };
  const keep = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => /^(TERM|COLORTERM|LANG|LC_\w+|TZ)$/.test(k)),
  );
  return {
    ...keep,
    HOME: login.home,
    USER: login.name,
    LOGNAME: login.name,
    SHELL: login.shell,
    PATH: loginPath(login),
    ESR_SESSION_ID: sid,
  };
}

/**
 * The recorder passes signals on instead of dying of them. On a terminal, Ctrl-C, Ctrl-\ and Ctrl-Z
 * reach the command as keys through its pty; the same signals sent to the recorder are ignored, so
 * that it neither dies nor stops while the command runs. Anything else is forwarded.
 */
function forwardSignals(onTerminal: boolean) {
  const state: { target?: { kill(sig?: number | NodeJS.Signals): void } } = {};
  const ignored = new Set<NodeJS.Signals>(onTerminal ? ["SIGINT", "SIGQUIT", "SIGTSTP"] : []);
  const handled = new Set<NodeJS.Signals>(["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", ...ignored]);
  const handlers = [...handled].map((sig) => {
    const handler = () => {
      if (!ignored.has(sig)) state.target?.kill(sig);
    };
    process.on(sig, handler);
    return [sig, handler] as const;
  });
  return Object.assign(state, {
    restore() {
      for (const [sig, handler] of handlers) process.off(sig, handler);
    },
  });
}

function signalNumber(signal: string | number | null | undefined): number {
  if (typeof signal === "number") return signal;
  return (signal && constants.signals[signal as keyof typeof constants.signals]) || 0;
}

function spawnError(err: unknown, program: string): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "EACCES") return new EsrError(`${program}: permission denied`, 126);
  if (code === "ENOENT") return new EsrError(`${program}: no such file or directory`, 127);
  return err;
}
