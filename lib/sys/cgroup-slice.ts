/**
 * A session's cgroup v2 slice: `<cgroup_path>/<root_path>/<sid>`, or on a systemd host a transient
 * scope `/esr.slice/esr-<sid>.scope` that systemd manages, or a cgroup someone else made for the
 * session (logind's `session-N.scope` of an SSH login). Its cgroup id is the session's key in the
 * kernel; every process of the session lives in it or in a child of it.
 *
 * A recorder that dies leaves its sessions running, unrecorded. Each live session cgroup therefore
 * has an owner file in OWNERS_DIR (pid and start time of its recorder), and the next recorder kills
 * what still runs in those whose owner is gone, and removes its own slices: nothing keeps running
 * unrecorded.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  watch,
  writeFileSync,
} from "node:fs";
import { basename, join, posix } from "node:path";
import { EsrError, errorMessage } from "../errors.ts";
import { mountFs } from "./libc.ts";
import { processStat } from "./proc.ts";
import { startTransientScope, type ScopeHolder } from "./systemd.ts";

export const OWNERS_DIR = "/run/esr/slices";

export interface CgroupRoot {
  /** where cgroup2 is mounted (enhanced_recording.cgroup_path) */
  cgroupPath: string;
  /** parent of the slices, below cgroup_path (enhanced_recording.root_path) */
  rootPath: string;
  /** On a systemd host: the slice whose transient scopes the sessions are, in place of root_path. */
  systemdSlice?: string;
}

/** The directory that holds every slice of this root. */
export function slicesParent(root: CgroupRoot): string {
  return join(root.cgroupPath, root.systemdSlice ?? root.rootPath);
}

/**
 * Makes sure cgroup2 is mounted at cgroup_path (mounting it if nothing is) and that the slices'
 * parent exists; returns the depth of a slice below the cgroup2 root, which the BPF programs need.
 */
export function prepareCgroupRoot(root: CgroupRoot): number {
  const mount = mountCgroup2(root.cgroupPath);
  // systemd creates its slice with the first scope in it; the cgroup tree it sees starts at the root.
  if (root.systemdSlice) {
    if (mount.root !== "/")
      throw new EsrError(
        `${root.cgroupPath} mounts the cgroup ${mount.root}, not the cgroup2 root: systemd's scopes are not below it`,
      );
    return depth(root.systemdSlice) + 1;
  }
  const parent = slicesParent(root);
  try {
    mkdirSync(parent, { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new EsrError(`cannot create ${parent}: ${errorMessage(err)}`);
  }
  return depth(mount.root) + depth(root.rootPath) + 1;
}

/** The directory of a cgroup named by its cgroup2 path (as /proc/PID/cgroup names it), below cgroup_path. */
export function cgroupDirectory(cgroupPath: string, path: string): string {
  const mountRoot = mountCgroup2(cgroupPath).root;
  const inside = posix.relative(mountRoot, path);
  if (inside.startsWith(".."))
    throw new EsrError(`cgroup ${path} is outside the cgroup ${mountRoot} that ${cgroupPath} mounts`);
  return join(cgroupPath, inside);
}

/** The cgroup2 mount at cgroup_path, mounted there if nothing is. */
function mountCgroup2(cgroupPath: string): MountInfo {
  const mount = findMount(cgroupPath);
  if (mount) {
    if (mount.fstype !== "cgroup2")
      throw new EsrError(
        `${cgroupPath} is a ${mount.fstype} mount, not cgroup v2 (set cgroup_path to a cgroup2 mount or a free directory)`,
      );
    return mount;
  }
  try {
    mkdirSync(cgroupPath, { recursive: true, mode: 0o755 });
    mountFs("cgroup2", cgroupPath);
  } catch (err) {
    throw new EsrError(`cgroup v2 is not mounted at ${cgroupPath} and cannot be mounted there: ${errorMessage(err)}`);
  }
  return findMount(cgroupPath) ?? { root: "/", fstype: "cgroup2" };
}

function depth(path: string): number {
  return posix.normalize(path).split("/").filter(Boolean).length;
}

interface MountInfo {
  root: string;
  fstype: string;
}

/** The mount whose mount point is exactly `path`, from /proc/self/mountinfo (the last one wins). */
function findMount(path: string): MountInfo | undefined {
  const target = posix.normalize(path).replace(/\/$/, "") || "/";
  let found: MountInfo | undefined;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const fields = left.split(" ");
    if (unescapeMount(fields[4] ?? "") === target)
      found = { root: unescapeMount(fields[3] ?? "/"), fstype: right.split(" ")[0] ?? "" };
  }
  return found;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct) => String.fromCharCode(parseInt(oct, 8)));
}

/** Who made a session's cgroup, which decides who removes it. */
type Origin =
  /** esr, a directory under root_path: esr removes it */
  | "slice"
  /** esr, through systemd (a transient scope): systemd removes it once empty */
  | "scope"
  /** someone else (logind's session scope): recorded and watched, never removed by esr */
  | "adopted";

export class CgroupSlice {
  private constructor(
    readonly path: string,
    readonly id: bigint,
    readonly origin: Origin,
    private holder?: ScopeHolder,
  ) {}

  /**
   * Creates the cgroup of a new session and records this process as its owner. In a systemd scope,
   * a placeholder holds the scope until release() (called once the session's first process is in).
   */
  static async create(root: CgroupRoot, sid: string): Promise<CgroupSlice> {
    const path = join(slicesParent(root), root.systemdSlice ? `esr-${sid}.scope` : sid);
    mkdirSync(OWNERS_DIR, { recursive: true, mode: 0o700 });
    // Claimed before it exists: another recorder's stale-slice cleanup, running between the mkdir
    // and the owner file keyed by the new cgroup's id, must not take it for a dead recorder's.
    const claim = claimFile(path);
    writeFileSync(claim, ownerLine(path, "slice"), { mode: 0o600 });
    try {
      let holder: ScopeHolder | undefined;
      if (root.systemdSlice) {
        holder = await startTransientScope(basename(path), root.systemdSlice, `esr session ${sid}`);
      } else {
        try {
          mkdirSync(path, { mode: 0o755 });
        } catch (err) {
          throw new EsrError(`cannot create cgroup ${path}: ${errorMessage(err)}`);
        }
      }
      const slice = new CgroupSlice(path, statSync(path, { bigint: true }).ino, holder ? "scope" : "slice", holder);
      writeFileSync(slice.ownerFile, ownerLine(path, slice.origin), { mode: 0o600 });
      return slice;
    } finally {
      unlinkSync(claim);
    }
  }

  /**
   * A cgroup made for the session by someone else (logind's scope of an SSH login), named by its
   * cgroup2 path: recorded where it is, owned by this process until the session ends.
   */
  static adopt(cgroupPath: string, path: string): CgroupSlice {
    const dir = cgroupDirectory(cgroupPath, path);
    let id: bigint;
    try {
      id = statSync(dir, { bigint: true }).ino;
    } catch (err) {
      throw new EsrError(`cannot find the cgroup ${path}: ${errorMessage(err)}`);
    }
    const slice = new CgroupSlice(dir, id, "adopted");
    mkdirSync(OWNERS_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(slice.ownerFile, ownerLine(dir, "adopted"), { mode: 0o600 });
    return slice;
  }

  /** Ends the placeholder that held a new systemd scope: the session's own processes hold it now. */
  release() {
    this.holder?.release();
    this.holder = undefined;
  }

  private get ownerFile(): string {
    return join(OWNERS_DIR, String(this.id));
  }

  /** True while any process is in the slice or a child of it. */
  isPopulated(): boolean {
    try {
      return /^populated 1$/m.test(readFileSync(join(this.path, "cgroup.events"), "utf8"));
    } catch {
      return false;
    }
  }

  /**
   * Resolves once no process is left in the slice (cgroup.events, watched with inotify and polled as
   * a fallback); a cgroup that is gone (systemd removed its empty scope) is empty.
   */
  waitEmpty(pollMs = 100): Promise<void> {
    return new Promise((resolve) => {
      let watcher: ReturnType<typeof watch> | undefined;
      const timer = setInterval(check, pollMs);
      function check(this: void) {
        if (slice.isPopulated()) return;
        clearInterval(timer);
        watcher?.close();
        resolve();
      }
      const slice = this;
      try {
        watcher = watch(join(this.path, "cgroup.events"), check);
        watcher.on("error", check);
      } catch {
        // polling alone still works
      }
      check();
    });
  }

  /** Moves a running process (and so everything it starts from now on) into the slice. */
  moveIn(pid: number) {
    try {
      writeFileSync(join(this.path, "cgroup.procs"), String(pid));
    } catch (err) {
      throw new EsrError(`cannot move pid ${pid} into ${this.path}: ${errorMessage(err)}`);
    }
    if (!ownProcs(this.path).includes(pid)) throw new EsrError(`pid ${pid} is not in ${this.path} after the move`);
    this.release();
  }

  /** Kills every process in the slice and its children. */
  kill() {
    killCgroup(this.path);
  }

  /**
   * Removes esr's own slice (and child cgroups a process of the session created) and the owner
   * file; systemd removes the scopes itself.
   */
  remove() {
    this.release();
    if (this.origin === "slice") removeCgroupTree(this.path);
    if (existsSync(this.ownerFile)) unlinkSync(this.ownerFile);
  }
}

/**
 * Removes slices under this root whose recorder is gone, killing their processes first, and kills
 * what runs in adopted cgroups (logind scopes) whose recorder is gone. Returns the paths cleaned.
 */
export function removeStaleSlices(root: CgroupRoot): string[] {
  const removed = killStaleAdopted();
  const parent = slicesParent(root);
  let names: string[];
  try {
    names = readdirSync(parent, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return removed;
  }
  for (const name of names) {
    const path = join(parent, name);
    let id: bigint;
    try {
      id = statSync(path, { bigint: true }).ino;
    } catch {
      continue;
    }
    const owner = join(OWNERS_DIR, String(id));
    // Not only its own owner: another recorder's root_path may lie inside this one's, and its live
    // slices below this directory must not be killed with it.
    if (isLiveSlice(path, id) || hasLiveSliceBelow(path)) continue;
    try {
      killCgroup(path);
      removeCgroupTree(path);
      if (existsSync(owner)) unlinkSync(owner);
      removed.push(path);
    } catch {
      // still emptying, or raced with another cleaner: the next run tries again
    }
  }
  return removed;
}

/**
 * Adopted cgroups are not below any recorder's root: their owner files name them. Their processes
 * are killed (systemd then removes an emptied scope, and logind ends its session).
 */
function killStaleAdopted(): string[] {
  const killed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(OWNERS_DIR).filter((n) => /^\d+$/.test(n));
  } catch {
    return killed;
  }
  for (const name of names) {
    const ownerFile = join(OWNERS_DIR, name);
    let text: string;
    try {
      text = readFileSync(ownerFile, "utf8");
    } catch {
      continue;
    }
    const [, , path, origin] = text.trim().split(" ");
    if (origin !== "adopted" || !path || ownerAlive(ownerFile)) continue;
    let id: bigint | undefined;
    try {
      id = statSync(path, { bigint: true }).ino;
    } catch {
      // the cgroup is gone: only the owner file was left
    }
    if (id === BigInt(name)) {
      // A login that cannot be killed would run on unrecorded: that stops this recorder.
      try {
        killCgroup(path);
      } catch (err) {
        throw new EsrError(
          `cannot kill what runs in ${path}, recorded by a recorder that is gone: ${errorMessage(err)}`,
        );
      }
      killed.push(path);
    }
    unlinkSync(ownerFile);
  }
  return killed;
}

/** True when a cgroup below `path` is the live slice of some recorder. */
function hasLiveSliceBelow(path: string, depth = 0): boolean {
  if (depth >= 16) return false;
  for (const child of childCgroups(path)) {
    try {
      if (isLiveSlice(child, statSync(child, { bigint: true }).ino)) return true;
    } catch {
      continue;
    }
    if (hasLiveSliceBelow(child, depth + 1)) return true;
  }
  return false;
}

/** The file a recorder writes while it creates the slice at `path`, before the slice has an id. */
function claimFile(path: string): string {
  return join(OWNERS_DIR, `creating-${basename(path)}`);
}

/**
 * Whether a live recorder owns the cgroup: the claim is read first, since its creator removes it
 * only after writing the owner file keyed by the id.
 */
function isLiveSlice(path: string, id: bigint): boolean {
  return ownerAlive(claimFile(path)) || ownerAlive(join(OWNERS_DIR, String(id)));
}

function ownerAlive(ownerFile: string): boolean {
  let text: string;
  try {
    text = readFileSync(ownerFile, "utf8");
  } catch {
    return false;
  }
  const [pid, start] = text.split(" ");
  return !!pid && processStat(Number(pid))?.startTime === start;
}

/** An owner file's content: this recorder (pid, start time), the cgroup, and who made it. */
function ownerLine(path: string, origin: Origin): string {
  return `${process.pid} ${ownStartTime()} ${path} ${origin}\n`;
}

let startTime: string | undefined;

/** This process's start time, which tells a live recorder from a later process with its pid. */
function ownStartTime(): string | undefined {
  startTime ??= processStat(process.pid)?.startTime;
  return startTime;
}

function childCgroups(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(path, d.name));
  } catch {
    return [];
  }
}

/** Kills every process in the cgroup at `path` and its children. */
export function killCgroup(path: string) {
  // cgroup.kill (5.14+) kills the whole subtree at once, racing no fork.
  if (existsSync(join(path, "cgroup.kill"))) {
    writeFileSync(join(path, "cgroup.kill"), "1");
    return;
  }
  for (let round = 0; round < 100; round++) {
    const pids = listProcs(path);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

/** The processes of a cgroup itself, not of its children. */
function ownProcs(path: string): number[] {
  return readFileSync(join(path, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
}

function listProcs(path: string): number[] {
  return ownProcs(path).concat(...childCgroups(path).map(listProcs));
}

/** rmdir, deepest first; waits briefly for killed processes to leave. */
function removeCgroupTree(path: string) {
  for (const child of childCgroups(path)) removeCgroupTree(child);
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(path);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || attempt >= 200) throw new EsrError(`cannot remove cgroup ${path}: ${errorMessage(err)}`);
      Bun.sleepSync(5);
    }
  }
}
