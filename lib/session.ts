/**
 * One recorded session, start to end: slice, session.start, the command, waiting for the slice to
 * empty, a final drain, session.end (SPEC §5).
 */
import { existsSync } from "node:fs";
import { constants } from "node:os";
import type { Account } from "./accounts.ts";
import { AuditLog } from "./audit-log.ts";
import { CgroupSlice } from "./cgroup-slice.ts";
import type { EsrConfig, EventKind } from "./config.ts";
import { EsrError, errorMessage } from "./errors.ts";
import type { LostCounts } from "./kernel-events.ts";
import { Recorder } from "./recorder.ts";
import { commandEvent, diskEvent, networkEvent, sessionEndEvent, sessionStartEvent, type SessionIdentity } from "./schema.ts";
import { SessionWriter } from "./session-writer.ts";

export interface RecordOptions {
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
}

export interface RecordResult {
  sid: string;
  exitCode: number;
  lost: LostCounts;
}

/** Flushes at least this often, so a killed recorder loses at most this much (SPEC §4). */
const FLUSH_INTERVAL_MS = 500;
const NO_LOSS: LostCounts = { command: 0, disk: 0, network: 0 };

export async function recordSession(opts: RecordOptions): Promise<RecordResult> {
  const { config } = opts;
  const enhanced = config.enhancedRecording.enabled;
  const sid = crypto.randomUUID();
  const log = AuditLog.open(config.dataDir);
  const identity: SessionIdentity = {
    sid,
    user: opts.user,
    login: opts.login.name,
    serverId: log.serverId,
    serverHostname: config.nodename,
    clusterName: config.clusterName,
  };
  const argv = opts.command.length ? opts.command : [opts.login.shell];
  const launch = launchSpec(argv, opts.login);
  const writer = new SessionWriter(log, sid);
  const interactive = Boolean(process.stdin.isTTY);
  const size = process.stdout.isTTY ? `${process.stdout.columns}:${process.stdout.rows}` : undefined;
  const start = new Date();

  let failure: unknown;
  let recorder: Recorder | undefined;
  let slice: CgroupSlice | undefined;
  if (enhanced) {
    const er = config.enhancedRecording;
    recorder = Recorder.start({
      cgroupPath: er.cgroupPath,
      rootPath: er.rootPath,
      kinds: opts.events,
      bufferPages: { command: er.commandBufferSize, disk: er.diskBufferSize, network: er.networkBufferSize },
      onFailure: (err) => {
        failure ??= err;
        slice?.kill();
      },
    });
  }
  const flushTimer = setInterval(() => {
    try {
      writer.flush();
    } catch (err) {
      failure ??= err;
      slice?.kill();
    }
  }, FLUSH_INTERVAL_MS);
  const signals = forwardSignals(interactive);
  let exitCode = 127;
  let lost = NO_LOSS;
  try {
    if (recorder) {
      slice = CgroupSlice.create({ cgroupPath: config.enhancedRecording.cgroupPath, rootPath: config.enhancedRecording.rootPath }, sid);
      recorder.add(slice, opts.events, {
        command: (rec, time) => writer.write(commandEvent(identity, writer.index(), rec, time)),
        disk: (rec, time) => writer.write(diskEvent(identity, writer.index(), rec, time)),
        network: (rec, time) => writer.write(networkEvent(identity, writer.index(), rec, time)),
      });
    }
    writer.write(sessionStartEvent(identity, writer.index(), { initialCommand: argv, size, events: enhanced ? opts.events : [], enhancedRecording: enhanced }, start));
    writer.flush();
    opts.onStart?.(sid);

    const child = Bun.spawn({
      cmd: launch.cmd,
      env: sessionEnv(opts.login, sid),
      cwd: launch.cwd,
      stdio: ["inherit", "inherit", "inherit"],
      ...(slice ? { cgroup: slice.path } : {}),
      ...(launch.ids ?? {}),
    });
    signals.target = child;
    await child.exited;
    exitCode = child.exitCode ?? 128 + signalNumber(child.signalCode);

    if (slice) {
      if (opts.killOnExit) slice.kill();
      else if (slice.isPopulated()) opts.onLingering?.();
      await slice.waitEmpty();
    }
  } catch (err) {
    failure ??= err;
    slice?.kill();
  } finally {
    signals.restore();
    clearInterval(flushTimer);
    try {
      if (recorder && slice) lost = recorder.remove(slice);
    } catch (err) {
      failure ??= err;
    }
    try {
      writer.write(sessionEndEvent(identity, writer.index(), { initialCommand: argv, interactive, enhancedRecording: enhanced, start, exitCode, lost }));
      writer.close();
    } catch (err) {
      failure ??= err;
    }
    recorder?.close();
    try {
      slice?.remove();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure instanceof EsrError ? failure : new EsrError(`session ${sid}: ${spawnError(failure, argv[0]!)}`);
  return { sid, exitCode, lost };
}

interface LaunchSpec {
  cmd: string[];
  cwd: string;
  ids?: { uid: number; gid: number };
}

/**
 * How to start the command as the login. Bun can set uid and gid but clears supplementary groups,
 * so another user's command starts through setpriv --init-groups, which is recorded like any exec.
 */
function launchSpec(argv: string[], login: Account): LaunchSpec {
  const self = process.getuid?.() === login.uid;
  const path = login.uid === 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin";
  const program = Bun.which(argv[0]!, { PATH: self ? (process.env.PATH ?? path) : path });
  if (!program) throw new EsrError(`${argv[0]}: command not found`, 127);
  // Like login(1): a missing home directory is no reason to refuse the session.
  const cwd = self ? process.cwd() : existsSync(login.home) ? login.home : "/";
  if (self) return { cmd: [program, ...argv.slice(1)], cwd };
  const setpriv = Bun.which("setpriv", { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" });
  if (!setpriv) return { cmd: [program, ...argv.slice(1)], cwd, ids: { uid: login.uid, gid: login.gid } };
  return { cmd: [setpriv, `--reuid=${login.uid}`, `--regid=${login.gid}`, "--init-groups", "--", program, ...argv.slice(1)], cwd };
}

/** The command's environment: the invoker's, or a clean login environment for another user. */
function sessionEnv(login: Account, sid: string): Record<string, string | undefined> {
  if (process.getuid?.() === login.uid) return { ...process.env, ESR_SESSION_ID: sid };
  const keep = Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(TERM|COLORTERM|LANG|LC_\w+|TZ)$/.test(k)));
  return {
    ...keep,
    HOME: login.home,
    USER: login.name,
    LOGNAME: login.name,
    SHELL: login.shell,
    PATH: login.uid === 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin",
    ESR_SESSION_ID: sid,
  };
}

/**
 * The recorder passes signals on instead of dying of them. On a terminal, Ctrl-C and Ctrl-\ already
 * reach the command (same foreground process group), so those are only ignored; anything sent to
 * the recorder alone is forwarded.
 */
function forwardSignals(onTerminal: boolean) {
  const state: { target?: { kill(sig?: number | NodeJS.Signals): void } } = {};
  const fromTerminal = new Set<NodeJS.Signals>(onTerminal ? ["SIGINT", "SIGQUIT"] : []);
  const handlers = (["SIGINT", "SIGQUIT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"] as NodeJS.Signals[]).map((sig) => {
    const handler = () => {
      if (!fromTerminal.has(sig)) state.target?.kill(sig);
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

function spawnError(err: unknown, program: string): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === "EACCES") return `${program}: permission denied`;
  if (code === "ENOENT") return `${program}: no such file or directory`;
  return errorMessage(err);
}
