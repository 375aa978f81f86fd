/**
 * Facts about an OpenSSH login that its user cannot forge, read from the kernel rather than from
 * the environment (which `~/.pam_environment` can fill): the sshd `[priv]` process
 * that runs the PAM hook, the addresses of that process's own TCP connection, and the login uid
 * pam_loginuid gave it. Also the key sshd reports in SSH_AUTH_INFO_0, as audit fields.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { endianness } from "node:os";
import { EsrError, errorMessage } from "../errors.ts";
import { formatIPv4, formatIPv6 } from "../events/ip-address.ts";

export interface TcpConnection {
  /** "address:port" of this end ("[v6]:port" for IPv6), as Teleport writes addr.local */
  local: string;
  /** the other end, as Teleport writes addr.remote */
  remote: string;
}

const TCP_ESTABLISHED = "01";

/**
 * The one established TCP connection among a process's open sockets, looked up by socket inode in
 * that process's own network namespace (/proc/PID/net/tcp{,6}).
 */
export function tcpConnectionOf(pid: number): TcpConnection {
  const inodes = socketInodes(pid);
  const found = new Map<string, TcpConnection>();
  for (const version of [4, 6] as const) {
    const table = `/proc/${pid}/net/${version === 4 ? "tcp" : "tcp6"}`;
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch (err) {
      if (version === 6) continue; // a kernel without IPv6
      throw new EsrError(`cannot read ${table}: ${errorMessage(err)}`);
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      const [local, remote, state, inode] = [f[1], f[2], f[3], f[9]];
      if (!local || !remote || state !== TCP_ESTABLISHED || !inode || !inodes.has(inode)) continue;
      found.set(inode, { local: endpoint(local), remote: endpoint(remote) });
    }
  }
  if (found.size !== 1)
    throw new EsrError(
      `process ${pid} holds ${found.size === 0 ? "no" : found.size} established TCP connection${found.size > 1 ? "s" : ""}: it is not an sshd login process`,
    );
  return [...found.values()][0]!;
}

/**
 * Whether a process holds a pty master open. OpenSSH's privileged monitor (the `[priv]` process)
 * allocates the pty of a login that asks for one (`ssh -t`) and keeps its master until the session
 * closes: a fact from a root process the user cannot touch, unlike a controlling terminal, which any
 * process of the login can give itself.
 */
export function holdsPtyMaster(pid: number): boolean {
  try {
    return fdTargets(pid).some((target) => target === "/dev/ptmx" || target === "/dev/pts/ptmx");
  } catch {
    return false; // gone: it holds nothing any more
  }
}

function socketInodes(pid: number): Set<string> {
  const inodes = fdTargets(pid).map((target) => /^socket:\[(\d+)\]$/.exec(target)?.[1]);
  return new Set(inodes.filter((inode) => inode !== undefined));
}

/** What each of a process's open fds names (readlink of /proc/PID/fd/N). */
function fdTargets(pid: number): string[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (err) {
    throw new EsrError(`cannot list the files of process ${pid}: ${errorMessage(err)}`);
  }
  const targets: string[] = [];
  for (const fd of fds) {
    try {
      targets.push(readlinkSync(`/proc/${pid}/fd/${fd}`));
    } catch {
      // closed meanwhile
    }
  }
  return targets;
}

/**
 * "0100007F:A5EE" → "127.0.0.1:42478". The kernel prints each 32-bit word of the address as a
 * host-order integer, so on a little-endian host every word's bytes come out reversed.
 */
function endpoint(hexAddrPort: string): string {
  const [hexAddr = "", hexPort = ""] = hexAddrPort.split(":");
  const bytes = Buffer.from(hexAddr, "hex");
  if (endianness() === "LE") for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  const port = parseInt(hexPort, 16);
  if (bytes.length === 4) return `${formatIPv4(bytes)}:${port}`;
  // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d; people know it as a.b.c.d.
  const v4mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return v4mapped ? `${formatIPv4(bytes.subarray(12))}:${port}` : `[${formatIPv6(bytes)}]:${port}`;
}

const NO_LOGIN_UID = 4294967295;

/** The audit login uid pam_loginuid set on a process (changeable only with CAP_AUDIT_CONTROL). */
export function loginUidOf(pid: number): number | undefined {
  try {
    const uid = Number(readFileSync(`/proc/${pid}/loginuid`, "utf8").trim());
    return Number.isInteger(uid) && uid !== NO_LOGIN_UID ? uid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * session.start fields for SSH_AUTH_INFO_0: `ssh_auth_info`, one entry per authentication method
 * as sshd reports it ("publickey ssh-ed25519 AAAA…"), and `ssh_key_fingerprint`, the SHA256
 * fingerprint of the last plain public key used, written as sshd logs it ("SHA256:…"). For a
 * certificate sshd logs the fingerprint of the key inside it, which needs a certificate parser:
 * `ssh_auth_info` still names it.
 */
export function authInfoFields(authInfo: string): Record<string, unknown> {
  const methods = authInfo
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  if (methods.length === 0) return {};
  const key = methods
    .map((m) => /^publickey (?!\S*-cert-)\S+ ([A-Za-z0-9+/]+={0,2})$/.exec(m)?.[1])
    .filter((k) => k !== undefined)
    .pop();
  const fingerprint = key
    ? `SHA256:${createHash("sha256").update(Buffer.from(key, "base64")).digest("base64").replace(/=+$/, "")}`
    : undefined;
  return { ssh_auth_info: methods, ...(fingerprint ? { ssh_key_fingerprint: fingerprint } : {}) };
}
