/** Local accounts, looked up through NSS (getent) so LDAP/SSSD users resolve like with `su`. */
import { readFileSync } from "node:fs";
import { EsrError } from "../errors.ts";

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

function parsePasswdLine(line: string): Account | undefined {
  const [name, , uid, gid, , home, shell] = line.split(":");
  if (!name || uid === undefined || gid === undefined) return undefined;
  return { name, uid: Number(uid), gid: Number(gid), home: home || "/", shell: shell || "/bin/sh" };
}

/**
 * An account by name or numeric uid; an EsrError if there is none. /etc/passwd first (no process
 * to start, and where NSS looks first on hosts with `passwd: files …`), then getent for accounts
 * only NSS knows (LDAP, SSSD).
 */
export function lookupAccount(nameOrUid: string): Account {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const account = parsePasswdLine(line);
    if (account && (account.name === nameOrUid || String(account.uid) === nameOrUid)) return account;
  }
  const getent = Bun.which("getent", { PATH: "/usr/bin:/bin" });
  if (getent) {
    const out = Bun.spawnSync({ cmd: [getent, "passwd", nameOrUid], stdout: "pipe", stderr: "ignore" });
    const account = out.exitCode === 0 ? parsePasswdLine(out.stdout.toString().split("\n")[0] ?? "") : undefined;
    if (account) return account;
  }
  throw new EsrError(`no such user: ${nameOrUid}`);
}

/** The account this process runs as. */
export function currentAccount(): Account {
  return lookupAccount(String(process.getuid?.() ?? 0));
}
