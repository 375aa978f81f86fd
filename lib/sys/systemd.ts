/**
 * What esr needs of systemd: whether it runs this host, logind's session scopes (where pam_systemd
 * has put an SSH login by the time esr's PAM hook runs), and transient scopes for `esr record`, so
 * that every recorded process sits in a unit systemd knows about (its limits, `systemctl stop`,
 * `loginctl terminate-session` apply as without esr).
 */
import { existsSync, readFileSync } from "node:fs";
import { EsrError, errorMessage } from "../errors.ts";

/** sd_booted(3): systemd is PID 1. Only root can create this directory. */
export function systemdBooted(): boolean {
  return existsSync("/run/systemd/system");
}

/** The slice that holds `esr record`'s scopes (/esr.slice/esr-<sid>.scope). */
export const ESR_SYSTEMD_SLICE = "esr.slice";

/** Depth of logind's session scopes below the cgroup2 root: /user.slice/user-UID.slice/session-N.scope. */
export const LOGIND_SCOPE_LEVEL = 3;

const LOGIND_SCOPE = /^\/user\.slice\/user-(\d+)\.slice\/session-([A-Za-z0-9]+)\.scope$/;

export interface LogindScope {
  /** cgroup2 path, e.g. /user.slice/user-1000.slice/session-3.scope */
  path: string;
  uid: number;
  /** logind's session id, as `loginctl` names it */
  session: string;
}

/** The logind session scope a cgroup2 path names, if it is one. */
export function logindScope(path: string): LogindScope | undefined {
  const m = LOGIND_SCOPE.exec(path);
  return m ? { path, uid: Number(m[1]), session: m[2]! } : undefined;
}

/**
 * The cgroup2 path of a process as the kernel reports it (`0::/…` in /proc/PID/cgroup), relative to
 * the root of esr's cgroup namespace (the host's, as esr runs on the host).
 */
export function processCgroup(pid: number): string {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, "utf8");
  } catch (err) {
    throw new EsrError(`cannot read the cgroup of process ${pid}: ${errorMessage(err)}`);
  }
  const path = /^0::(\/.*)$/m.exec(text)?.[1];
  if (path === undefined) throw new EsrError(`process ${pid} is in no cgroup v2 (no 0:: line in /proc/${pid}/cgroup)`);
  return path.replace(/ \(deleted\)$/, "");
}

/** How long systemd may take to create a scope (seconds under emulation on a loaded host). */
const SCOPE_START_TIMEOUT_MS = 30_000;

/**
 * A transient scope `unit` in `slice`, started by systemd around a placeholder process that holds
 * it until the session's first process is in; resolves once the kernel shows the placeholder in
 * the scope's cgroup. The placeholder's own exec happens before the session is registered, so it is
 * not recorded.
 */
export async function startTransientScope(unit: string, slice: string, description: string): Promise<ScopeHolder> {
  const path = `/${slice}/${unit}`;
  let holder;
  try {
    holder = Bun.spawn(
      [
        "systemd-run",
        "--scope",
        "--quiet",
        "--collect",
        `--unit=${unit}`,
        `--slice=${slice}`,
        `--description=${description}`,
        "--",
        "sleep",
        "infinity",
      ],
      { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    );
  } catch (err) {
    throw new EsrError(`cannot start the systemd scope ${unit}: systemd-run: ${errorMessage(err)}`);
  }
  const deadline = Date.now() + SCOPE_START_TIMEOUT_MS;
  for (;;) {
    if (holder.exitCode !== null || holder.signalCode !== null) {
      const said = (await new Response(holder.stderr).text()).trim().split("\n").pop();
      throw new EsrError(`cannot start the systemd scope ${unit}: systemd-run: ${said || `exit ${holder.exitCode}`}`);
    }
    let where: string | undefined;
    try {
      where = processCgroup(holder.pid);
    } catch {
      // gone meanwhile: the exit is seen on the next round
    }
    if (where === path) return { path, release: () => holder.kill("SIGKILL") };
    if (Date.now() > deadline) {
      holder.kill("SIGKILL");
      throw new EsrError(`systemd did not start the scope ${unit} within ${SCOPE_START_TIMEOUT_MS / 1000} s`);
    }
    await Bun.sleep(10);
  }
}

export interface ScopeHolder {
  /** cgroup2 path of the scope */
  path: string;
  /** Ends the placeholder: the scope then lives as long as the session's processes. */
  release(): void;
}
