/** Can this host record? What `esr check` reports, and what `esr record` refuses to start without. */
import { existsSync, realpathSync } from "node:fs";
import { release } from "node:os";
import { EVENT_KINDS, type EsrConfig } from "../config/config.ts";
import { EsrError, errorMessage } from "../errors.ts";
import { NO_RING_BUFFERS, ringBuffersAvailable } from "../kernel/libbpf.ts";
import { KernelTracer } from "../kernel/tracer.ts";
import { sshdChecks, type SshdCheckOptions } from "./sshd-checks.ts";
import { ESR_SYSTEMD_SLICE, systemdBooted } from "../sys/systemd.ts";

export interface CheckItem {
  name: string;
  ok: boolean;
  detail: string;
  /** Not a reason to fail, but worth the operator's attention. */
  warn?: boolean;
}

const MIN_KERNEL: [number, number] = [5, 8];
const BTF_PATH = "/sys/kernel/btf/vmlinux";

function kernelItem(): CheckItem {
  const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
  const ok = major > MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor >= MIN_KERNEL[1]);
  return {
    name: "kernel",
    ok,
    detail: ok ? release() : `${release()} is older than ${MIN_KERNEL.join(".")} (BPF ring buffers)`,
  };
}

function btfItem(): CheckItem {
  const ok = existsSync(BTF_PATH);
  return {
    name: "BTF",
    ok,
    detail: ok ? BTF_PATH : `${BTF_PATH} is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y`,
  };
}

function rootItem(): CheckItem {
  const ok = process.getuid?.() === 0;
  return {
    name: "root",
    ok,
    detail: ok ? "running as root" : "esr must run as root (it loads BPF programs and creates cgroups)",
  };
}

/** Asks the kernel (it needs root): a distribution kernel may have ring buffers backported, or not. */
function ringBufferItem(): CheckItem {
  const ok = ringBuffersAvailable();
  return { name: "ring buffer", ok, detail: ok ? "BPF ring buffers available" : NO_RING_BUFFERS };
}

/** The requirements the host answers without libbpf, in order. */
function hostItems(): CheckItem[] {
  return [kernelItem(), btfItem(), rootItem()];
}

/** The requirements in order; past a failed one, the next cannot be asked. */
function requirementItems(): CheckItem[] {
  const items = hostItems();
  if (items.every((i) => i.ok)) items.push(ringBufferItem());
  return items;
}

/**
 * Throws the first unmet requirement, as one line. Ring buffers are asked of the kernel where
 * programs are loaded (ProgramSet.load): a recorder whose session a running daemon records needs
 * neither libbpf nor the probe.
 */
export function requireRecordingHost() {
  for (const item of hostItems()) if (!item.ok) throw new EsrError(item.detail);
}

/**
 * Every check, item by item: loads and attaches every program esr has, then detaches them; then,
 * when sshd is installed, whether its logins reach esr pam.
 */
export function hostChecks(config: EsrConfig, sshd: SshdCheckOptions = {}): CheckItem[] {
  const items = requirementItems();
  if (!items.every((i) => i.ok)) return items;
  const er = config.enhancedRecording;
  let tracer: KernelTracer | undefined;
  try {
    tracer = KernelTracer.start({
      config: er,
      kinds: [...EVENT_KINDS],
      onFailure: () => {},
    });
    items.push({
      name: "cgroup v2",
      ok: true,
      detail: tracer.root.systemdSlice
        ? `mounted at ${er.cgroupPath}; sessions in systemd scopes of ${tracer.root.systemdSlice}`
        : `mounted at ${er.cgroupPath}, slices under ${er.rootPath}`,
    });
    for (const p of tracer.programs.attached)
      items.push({ name: `${p.kind} hook`, ok: true, detail: `${p.section} (${p.name}) loads and attaches` });
    items.push({
      name: "session filter",
      ok: true,
      detail: tracer.programs.ancestorHelper
        ? "bpf_get_current_ancestor_cgroup_id"
        : "reads the task's cgroup (this kernel refuses bpf_get_current_ancestor_cgroup_id in tracing programs before Linux 5.14)",
    });
    const stale = tracer.staleSlicesRemoved;
    items.push({ name: "stale slices", ok: true, detail: stale.length ? `removed ${stale.join(", ")}` : "none" });
  } catch (err) {
    items.push({ name: "BPF programs", ok: false, detail: errorMessage(err) });
  } finally {
    tracer?.close();
  }
  items.push(...systemdItems(), ...sshdChecks(sshd));
  return items;
}

/** user@.service masked: `systemctl mask` links the unit to /dev/null. */
const USER_MANAGER_MASK = "/etc/systemd/system/user@.service";

/** On a systemd host: where sessions go, and what the user's own systemd manager takes out of them. */
function systemdItems(): CheckItem[] {
  if (!systemdBooted()) return [];
  const items: CheckItem[] = [
    {
      name: "systemd",
      ok: true,
      detail: `esr record runs each command in a transient scope esr-<sid>.scope of ${ESR_SYSTEMD_SLICE}; SSH logins are recorded in logind's session-N.scope, where logind and the user's slice keep managing them`,
    },
  ];
  let masked = false;
  try {
    masked = realpathSync(USER_MANAGER_MASK) === "/dev/null";
  } catch {
    // no such file: not masked
  }
  items.push({
    name: "user manager",
    ok: true,
    warn: !masked,
    detail: masked
      ? "user@.service is masked: logins cannot start processes through a systemd user manager"
      : "user@.service is not masked: what a login starts through its systemd user manager (systemd-run --user, systemctl --user start) runs in user@UID.service, outside the login's scope, and is not recorded (the command that asked for it is); systemctl mask user@.service where that matters",
  });
  return items;
}
