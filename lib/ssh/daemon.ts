/**
 * `esr daemon`: records every OpenSSH login of the host with one KernelTracer (one set of BPF programs;
 * a login is a map entry, docs/contract.md §7). `esr pam` asks it, from the login's PAM session stack, to adopt
 * the sshd `[priv]` process that runs the hook. On a systemd host pam_systemd has put that process in
 * logind's `session-N.scope` by then: the daemon registers that scope where it is, so logind and the
 * user's slice keep managing the login. Elsewhere (or without pam_systemd) the daemon creates the
 * login's slice and moves that process into it. Either way the cgroup is registered before the
 * answer, so everything sshd then starts for the login (the user's shell, sftp-server, port
 * forwards) runs recorded. A login's session ends when its cgroup is empty, not at logout: what it
 * left running stays recorded until it exits.
 *
 * `esr record` hands its session's kernel side to the daemon too, when one listens: its cgroup joins
 * the same map (lib/ssh/recorder-sessions.ts), so concurrent recorders cost the host one program set.
 */
import { lookupAccount } from "../sys/accounts.ts";
import { FileEventStore } from "../store/file/file-store.ts";
import type { EventStore } from "../store/store.ts";
import { eventsForUser, possibleEvents, type EsrConfig } from "../config/config.ts";
import { listenControlSocket } from "./control-socket.ts";
import type { DaemonReply, HookRequest } from "./protocol.ts";
import { EsrError, errorMessage } from "../errors.ts";
import type { PeerCredentials } from "../sys/libc.ts";
import { KernelTracer } from "../kernel/tracer.ts";
import { RecordedSession } from "../session/recorded-session.ts";
import { lostText, RecorderSessions } from "./recorder-sessions.ts";
import { processStat } from "../sys/proc.ts";
import { authInfoFields, holdsPtyMaster, loginUidOf, tcpConnectionOf } from "./login-facts.ts";
import { LOGIND_SCOPE_LEVEL, logindScope, processCgroup, systemdBooted } from "../sys/systemd.ts";

export interface DaemonOptions {
  config: EsrConfig;
  socketPath: string;
  /** One line per thing an operator wants in the journal: logins, logouts, ends, failures. */
  log(line: string): void;
}

interface Login {
  session: RecordedSession;
  sshdPid: number;
  user: string;
  /** sshd allocated a pty for the login: seen while its [priv] process held the pty master. */
  terminal: boolean;
  /** Settles once session.end is written. */
  ended: Promise<void>;
}

/** How often a login recorded without a slice (enhanced recording off) checks for its sshd's exit. */
const PROCESS_POLL_MS = 250;
/** How often a login's sshd is looked at for the pty it allocates (a few readlinks, ≈ 20 µs), and for how long often. */
const PTY_FAST_POLL_MS = 5;
const PTY_FAST_POLL_FOR_MS = 3000;
const PTY_SLOW_POLL_MS = 100;

/**
 * Runs until SIGTERM or SIGINT. Stopping ends every login in progress: its processes are killed
 * and session.end is written, since nothing may keep running unrecorded.
 */
export async function runDaemon(opts: DaemonOptions): Promise<void> {
  const daemon = LoginSessions.start(opts);
  let socket;
  try {
    socket = await listenControlSocket(opts.socketPath, {
      hook: (request, peer) => daemon.handle(request, peer),
      record: (request, peer, stream) => daemon.recorders.accept(request, peer, stream),
    });
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  opts.log(`listening on ${opts.socketPath} (pid ${process.pid})`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolve(sig));
  });
  opts.log(`${signal}: stopping; ending every login and esr record session in progress`);
  await daemon.recorders.failAll("esr daemon stopped");
  socket.close();
  await daemon.stop();
}

class LoginSessions {
  private readonly logins = new Set<Login>();
  /** Logins by the pid of their sshd [priv] process, until its close_session. */
  private readonly bySshd = new Map<number, Login>();
  readonly recorders: RecorderSessions;

  private constructor(
    private readonly opts: DaemonOptions,
    private readonly store: EventStore,
    private readonly tracer: KernelTracer | undefined,
  ) {
    this.recorders = new RecorderSessions({
      tracer,
      isLogin: (id) => [...this.logins].some((l) => l.session.slice?.id === id),
      log: opts.log,
    });
  }

  static start(opts: DaemonOptions): LoginSessions {
    const { config } = opts;
    const store = FileEventStore.open(config.dataDir, config.integrity);
    const er = config.enhancedRecording;
    let daemon: LoginSessions | undefined;
    // One program set for every login; each login's roles pick what its map entry records.
    const tracer = er.enabled
      ? KernelTracer.start({
          config: er,
          // Only what some user's roles can select: each loaded kind costs every process of the host.
          kinds: possibleEvents(config),
          adoptedLevels: systemdBooted() ? [LOGIND_SCOPE_LEVEL] : [],
          onFailure: (err) => daemon?.failAll(err),
        })
      : undefined;
    // Slices a previous daemon left (it died): their processes were killed, not left unrecorded.
    for (const path of tracer?.staleSlicesRemoved ?? [])
      opts.log(`killed what ran in ${path}, left by a recorder that is gone`);
    if (!tracer) opts.log("enhanced recording is disabled: logins get session.start and session.end only");
    daemon = new LoginSessions(opts, store, tracer);
    return daemon;
  }

  async handle(request: HookRequest, peer: PeerCredentials): Promise<DaemonReply> {
    // The hook is a child of the sshd process running the PAM stack; that process is the login.
    const sshdPid = processStat(peer.pid)?.ppid;
    if (!sshdPid || sshdPid <= 1 || sshdPid === process.pid)
      throw new EsrError(`caller pid ${peer.pid} has no parent process to record`);
    return request.type === "open_session" ? this.open(request, sshdPid) : this.close(request, sshdPid);
  }

  private async open(request: HookRequest, sshdPid: number): Promise<DaemonReply> {
    const { user } = request;
    const connection = tcpConnectionOf(sshdPid);
    // PAM_USER is what pam_exec says; the kernel's login uid, set by pam_loginuid, cannot be faked.
    const account = lookupAccount(user);
    const loginUid = loginUidOf(sshdPid);
    if (loginUid !== undefined && loginUid !== account.uid)
      throw new EsrError(
        `PAM_USER ${user} (uid ${account.uid}) is not the login uid ${loginUid} of sshd pid ${sshdPid}`,
      );
    const { config } = this.opts;
    const scope = this.tracer && systemdBooted() ? logindScope(processCgroup(sshdPid)) : undefined;
    if (scope && scope.uid !== account.uid)
      throw new EsrError(`sshd pid ${sshdPid} is in ${scope.path}, a session of uid ${scope.uid}, not of ${user}`);
    const session = await RecordedSession.begin({
      store: this.store,
      config,
      tracer: this.tracer,
      adoptCgroup: scope?.path,
      user,
      login: user,
      events: eventsForUser(config, user),
      // sshd has not yet read what the client asks to run: the command shows as the first exec.
      initialCommand: [],
      startFields: {
        "addr.local": connection.local,
        "addr.remote": connection.remote,
        proto: "ssh",
        ...authInfoFields(request.authInfo),
      },
    });
    const login: Login = { session, sshdPid, user, terminal: false, ended: Promise.resolve() };
    try {
      if (!scope) session.slice?.moveIn(sshdPid);
    } catch (err) {
      session.fail(err);
      this.track(login);
      throw err;
    }
    this.bySshd.set(sshdPid, login);
    this.track(login);
    const where = scope ? `, in logind's session ${scope.session}` : "";
    this.opts.log(
      `session ${session.sid}: login ${user} from ${connection.remote} to ${connection.local} (sshd pid ${sshdPid}${where})`,
    );
    return { ok: true, sid: session.sid };
  }

  private close(request: HookRequest, sshdPid: number): DaemonReply {
    const login = this.bySshd.get(sshdPid);
    if (!login || login.user !== request.user)
      throw new EsrError(`no recorded login of ${request.user} for sshd pid ${sshdPid}`);
    this.bySshd.delete(sshdPid);
    const lingering = login.session.slice ? "; recording until its last process exits" : "";
    this.opts.log(`session ${login.session.sid}: logout of ${login.user}${lingering}`);
    return { ok: true, sid: login.session.sid };
  }

  /** Ends the session once the login is over: its slice empty, or (without a slice) its sshd gone. */
  private track(login: Login) {
    this.logins.add(login);
    const { session } = login;
    const stopWatching = watchForPty(login.sshdPid, () => (login.terminal = true));
    const over = session.slice ? Promise.resolve() : processGone(login.sshdPid);
    login.ended = over
      .then(() =>
        session.end({
          exitCode: 0,
          interactive: () => {
            stopWatching();
            return login.terminal;
          },
        }),
      )
      .then(
        (lost) => this.opts.log(`session ${session.sid}: ended (lost events: ${lostText(lost)})`),
        (err) => this.opts.log(`session ${session.sid}: ended after a failure: ${errorMessage(err)}`),
      )
      .finally(() => {
        this.logins.delete(login);
        if (this.bySshd.get(login.sshdPid) === login) this.bySshd.delete(login.sshdPid);
      });
  }

  /** Recording is no longer reliable: no login may go on unrecorded, so all are killed. */
  failAll(err: unknown) {
    this.opts.log(`recording failed: ${errorMessage(err)}; killing every login and esr record session in progress`);
    for (const login of this.logins) login.session.fail(err);
    void this.recorders.failAll(`recording failed in the esr daemon: ${errorMessage(err)}`);
  }

  async stop() {
    for (const login of this.logins) login.session.fail(new EsrError("esr daemon stopped"));
    await Promise.all([...this.logins].map((l) => l.ended));
    this.tracer?.close();
  }
}

/**
 * Calls `seen` once the process holds a pty master. sshd's [priv] process allocates a login's pty
 * after open_session and closes it before close_session, so it is looked for while the login runs:
 * often at first, when sshd allocates it and a scripted session may already be over (measured: a
 * typed `ssh -tt` session held it 10–40 ms), then seldom. A pty that lives less than one interval
 * can be missed. Returns what stops the watch.
 */
function watchForPty(pid: number, seen: () => void): () => void {
  const start = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const look = () => {
    if (holdsPtyMaster(pid)) return seen();
    timer = setTimeout(look, Date.now() - start < PTY_FAST_POLL_FOR_MS ? PTY_FAST_POLL_MS : PTY_SLOW_POLL_MS);
  };
  look();
  return () => clearTimeout(timer);
}

/** Resolves when the process (this very one, not a later one with its pid) has exited. */
function processGone(pid: number): Promise<void> {
  const startTime = processStat(pid)?.startTime;
  const alive = () => startTime !== undefined && processStat(pid)?.startTime === startTime;
  return new Promise((resolve) => {
    if (!alive()) return resolve();
    const timer = setInterval(() => {
      if (alive()) return;
      clearInterval(timer);
      resolve();
    }, PROCESS_POLL_MS);
  });
}
