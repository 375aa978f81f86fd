/**
 * `esr check` for hosts that record OpenSSH logins: would this sshd let a login run without the
 * esr pam hook (UsePAM no, a PAM stack without the line, with it optional or before pam_systemd,
 * a Match block sending users to another PAM service), and is the daemon the hook needs listening?
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { DEFAULT_SOCKET } from "../ssh/protocol.ts";
import type { CheckItem } from "./host-checks.ts";

export interface SshdCheckOptions {
  /** The sshd binary as it is started: on OpenSSH ≤ 9.7 its name is the PAM service. */
  sshd?: string;
  /** sshd_config (default: sshd's own default) */
  config?: string;
  socketPath?: string;
  pamDir?: string;
}

const SSHD_CANDIDATES = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"];
const PAM_DIR = "/etc/pam.d";
const SSH_DIR = "/etc/ssh";
const README_HINT = "see README, Recording SSH logins";

/** Nothing when sshd is not installed: a host without sshd has no logins to miss. */
export function sshdChecks(opts: SshdCheckOptions = {}): CheckItem[] {
  const sshd = opts.sshd ?? SSHD_CANDIDATES.find((p) => existsSync(p));
  if (!sshd) return [];
  if (!existsSync(sshd)) return [{ name: "sshd", ok: false, detail: `${sshd}: no such file` }];
  const socketPath = opts.socketPath ?? DEFAULT_SOCKET;
  const pamDir = opts.pamDir ?? PAM_DIR;
  let effective: Map<string, string> | Error;
  try {
    effective = effectiveConfig(sshd, opts.config);
  } catch (err) {
    effective = err instanceof Error ? err : new Error(String(err));
  }
  const service = (effective instanceof Map && effective.get("pamservicename")) || basename(sshd);
  const stack = sessionStack(pamDir, service);
  const hook = stack.findIndex(isEsrHook);
  const listening = socketListening(socketPath);
  const pamFile = join(pamDir, service);
  // Neither the line nor the daemon: this host does not record SSH logins, which is a choice.
  if (hook < 0 && !listening) {
    return [
      {
        name: "sshd logins",
        ok: true,
        warn: true,
        detail: `not recorded: ${pamFile} has no esr pam line and no esr daemon listens on ${socketPath} (${README_HINT})`,
      },
    ];
  }
  if (effective instanceof Error) return [{ name: "sshd", ok: false, detail: effective.message }];
  const items: CheckItem[] = [];
  const usePam = effective.get("usepam") === "yes";
  items.push({
    name: "sshd UsePAM",
    ok: usePam,
    detail: usePam
      ? `yes (PAM service ${service})`
      : "UsePAM no: sshd never runs the PAM session stack, so logins bypass esr pam (set UsePAM yes)",
  });
  items.push(hookItem(pamFile, stack, hook));
  const envLine = stack
    .slice(0, Math.max(hook, 0))
    .find((l) => /(^|\/)pam_env\.so$/.test(l.module) && l.args.includes("user_readenv=1"));
  if (hook >= 0 && envLine) {
    items.push({
      name: "sshd PAM env",
      ok: true,
      warn: true,
      detail: `${envLine.where} reads ~/.pam_environment before the esr line: a user can forge ssh_auth_info (put the esr line before it, right after @include common-session)`,
    });
  }
  const config = opts.config ?? join(SSH_DIR, "sshd_config");
  const detours = matchServices(config).filter(
    (m) => m.service !== service && sessionStack(pamDir, m.service).findIndex(isEsrHook) < 0,
  );
  if (detours.length === 0)
    items.push({ name: "sshd Match", ok: true, detail: "no Match block sends logins to another PAM service" });
  for (const m of detours) {
    items.push({
      name: "sshd Match",
      ok: false,
      detail: `${m.where}: Match ${m.criteria} sends those logins to PAM service ${m.service}, which has no esr pam line`,
    });
  }
  items.push({
    name: "esr daemon",
    ok: listening,
    detail: listening
      ? `listening on ${socketPath}`
      : `nothing listens on ${socketPath}: every SSH login is refused (start esr daemon)`,
  });
  return items;
}

function hookItem(pamFile: string, stack: PamLine[], hook: number): CheckItem {
  const line = stack[hook];
  if (!line)
    return {
      name: "sshd PAM hook",
      ok: false,
      detail: `${pamFile} has no "session required pam_exec.so /usr/local/sbin/esr pam" line: logins bypass esr (${README_HINT})`,
    };
  const type = line.args.find((a) => a.startsWith("type="));
  if (type && type !== "type=open_session")
    return { name: "sshd PAM hook", ok: false, detail: `${line.where}: ${type} never runs the hook at open_session` };
  // Anything but required/requisite (or a bracket control that fails on error) lets a login run
  // when the daemon is down: fail open.
  const failClosed =
    line.control === "required" || line.control === "requisite" || /default=(bad|die)/.test(line.control);
  if (!failClosed)
    return {
      name: "sshd PAM hook",
      ok: false,
      detail: `${line.where}: session ${line.control}: a failed hook lets the login run unrecorded (use required)`,
    };
  const mover = stack.slice(hook + 1).find((l) => /(^|\/)pam_systemd\.so$/.test(l.module));
  if (mover)
    return {
      name: "sshd PAM hook",
      ok: false,
      detail: `${mover.where}: pam_systemd runs after the esr line (${line.where}) and moves the login into its logind scope, out of its esr slice (put the esr line after it)`,
    };
  return {
    name: "sshd PAM hook",
    ok: true,
    detail: `${line.where}: session ${line.control} ${line.module} ${line.args.join(" ")}`,
  };
}

/** `sshd -T`: the configuration sshd would run with, keys lowercased. */
function effectiveConfig(sshd: string, config?: string): Map<string, string> {
  const out = Bun.spawnSync({ cmd: [sshd, "-T", ...(config ? ["-f", config] : [])], stdout: "pipe", stderr: "pipe" });
  if (out.exitCode !== 0) {
    const why = out.stderr.toString().trim().split("\n").pop() || `exit status ${out.exitCode}`;
    throw new Error(`${sshd} -T${config ? ` -f ${config}` : ""} failed: ${why}`);
  }
  const effective = new Map<string, string>();
  for (const line of out.stdout.toString().split("\n")) {
    const [key, ...value] = line.split(" ");
    if (key) effective.set(key, value.join(" "));
  }
  return effective;
}

export interface PamLine {
  /** "file:line" */
  where: string;
  control: string;
  module: string;
  args: string[];
}

/** `session required pam_exec.so [options] /path/to/esr pam [--socket PATH]` */
export function isEsrHook(line: PamLine): boolean {
  if (!/(^|\/)pam_exec\.so$/.test(line.module)) return false;
  const program = line.args.findIndex((a) => isAbsolute(a));
  return program >= 0 && basename(line.args[program]!) === "esr" && line.args[program + 1] === "pam";
}

/** The session lines of a PAM service in the order PAM runs them, with includes expanded. */
export function sessionStack(pamDir: string, service: string, seen = new Set<string>()): PamLine[] {
  const file = isAbsolute(service) ? service : join(pamDir, service);
  if (seen.has(file)) return [];
  seen.add(file);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const lines: PamLine[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    const where = `${file}:${i + 1}`;
    const include = /^@include\s+(\S+)/.exec(line);
    if (include) return void lines.push(...sessionStack(pamDir, include[1]!, seen));
    const m = /^-?(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m || m[1] !== "session") return;
    const [, , control, module, rest] = m as unknown as [string, string, string, string, string];
    if (control === "include" || control === "substack") return void lines.push(...sessionStack(pamDir, module, seen));
    lines.push({ where, control, module, args: rest.split(/\s+/).filter(Boolean) });
  });
  return lines;
}

export interface MatchService {
  where: string;
  criteria: string;
  service: string;
}

/** PAMServiceName set inside Match blocks (OpenSSH ≥ 9.8), in sshd_config and the files it includes. */
export function matchServices(config: string): MatchService[] {
  const found: MatchService[] = [];
  let criteria: string | undefined;
  const walk = (file: string, depth: number) => {
    if (depth > 16) return;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return;
    }
    // Like sshd: an included file starts in the includer's Match block, and its own Match blocks
    // end with it.
    const outer = criteria;
    text.split("\n").forEach((raw, i) => {
      const [keyword = "", ...rest] = raw
        .replace(/#.*/, "")
        .trim()
        .split(/[\s=]+/);
      const value = rest.join(" ");
      switch (keyword.toLowerCase()) {
        case "match":
          criteria = value;
          break;
        case "include":
          for (const pattern of rest) {
            const absolute = isAbsolute(pattern) ? pattern : join(SSH_DIR, pattern);
            for (const included of globFiles(absolute)) walk(included, depth + 1);
          }
          break;
        case "pamservicename":
          if (criteria !== undefined) found.push({ where: `${file}:${i + 1}`, criteria, service: rest[0] ?? "" });
          break;
      }
    });
    criteria = outer;
  };
  walk(config, 0);
  return found;
}

/** sshd_config's Include patterns glob file names only, as here. */
function globFiles(pattern: string): string[] {
  try {
    return [
      ...new Bun.Glob(basename(pattern)).scanSync({ cwd: dirname(pattern), absolute: true, onlyFiles: true }),
    ].sort();
  } catch {
    return [];
  }
}

/** Is a unix socket bound at `path` and listening, in this network namespace (/proc/net/unix)? */
function socketListening(path: string): boolean {
  const SO_ACCEPTCON = 0x10000;
  try {
    return readFileSync("/proc/net/unix", "utf8")
      .split("\n")
      .slice(1)
      .some((line) => {
        const f = line.trim().split(/\s+/);
        return f[7] === path && (parseInt(f[3] ?? "0", 16) & SO_ACCEPTCON) !== 0;
      });
  } catch {
    return false;
  }
}
