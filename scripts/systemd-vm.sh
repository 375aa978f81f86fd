#!/usr/bin/env bash
# Boots a Debian 12 root with systemd as PID 1 (sshd, logind) under qemu with dist/esr, installs esr
# in it as the README says, and runs scripts/systemd-vm/checks.sh there: SSH logins recorded in
# logind's scopes, loginctl terminate-session/terminate-user, a user slice limit, esr record in a
# systemd scope, what the user's systemd manager escapes, esr check, and a daemon restart.
# Prints one line per check and ends with "systemd-vm: N passed, M failed" (non-zero exit on any failure).
#   bash scripts/systemd-vm.sh           every check (scripts/test.sh runs this)
#   bash scripts/systemd-vm.sh smoke     install, a login recorded in its scope, esr record in a scope,
#                                        terminate-session, a user slice limit, terminate-user
# The root (debootstrap) and the kernel are cached under $ESR_CI_CACHE (default /var/cache/esr-ci).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
cache=${ESR_CI_CACHE:-/var/cache/esr-ci}
esr=$root/dist/esr
mode=${1:-full}

die() { echo "systemd-vm: $*" >&2; echo "systemd-vm: 0 passed, 1 failed"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (boots a VM)"
[ -x "$esr" ] || die "dist/esr is missing: run bash scripts/setup.sh first"
case $mode in full|smoke) ;; *) die "usage: systemd-vm.sh [full|smoke]" ;; esac

source "$root/scripts/kernel-matrix/vm.sh"
vm_install qemu-system-x86 cpio debootstrap openssh-client
vm_apt_lists
t0=$(date +%s)
fsroot=$(bash "$root/scripts/systemd-root.sh") || die "cannot make the Debian 12 root (debootstrap)"
# The kernel Debian 12 itself runs.
spec=$(kernel_of_suite bookworm-security) && kdir=$(fetch_kernel "$spec") || die "cannot get bookworm's kernel"

# The root, packed once: a second archive (below) adds what changes from run to run.
base=$cache/bookworm-systemd.cpio.gz
if [ ! -s "$base" ] || [ "$fsroot/.done" -nt "$base" ]; then
  (cd "$fsroot" && find . ! -name .done | cpio -o -H newc --quiet | gzip -1) > "$base.tmp" && mv "$base.tmp" "$base" ||
    die "cannot pack $fsroot"
fi

work=$(mktemp -d /tmp/esr-systemd-vm-XXXXXX)
trap 'rm -rf "$work"' EXIT
fs=$work/overlay
mkdir -p "$fs/esr-vm" "$fs/etc/systemd/system/multi-user.target.wants" "$fs/home/alice/.ssh" "$fs/root"
cp "$esr" "$fs/esr-vm/esr"
cp "$root/packaging/esr-daemon.service" "$root/scripts/systemd-vm/checks.sh" "$root/scripts/systemd-vm/fork-to-limit.pl" "$fs/esr-vm/"
echo "$mode" > "$fs/esr-vm/mode"
cp "$root/scripts/systemd-vm/esr-vm-checks.service" "$fs/etc/systemd/system/"
ln -s ../esr-vm-checks.service "$fs/etc/systemd/system/multi-user.target.wants/"
# The console is the checks' output: no login prompt on it.
ln -s /dev/null "$fs/etc/systemd/system/serial-getty@ttyS0.service"
echo esr-vm > "$fs/etc/hostname"
# alice: a user with a key (locked password; UsePAM yes lets keys in).
ssh-keygen -q -t ed25519 -N '' -f "$fs/esr-vm/id_ed25519" || die "ssh-keygen failed"
cp "$fs/esr-vm/id_ed25519.pub" "$fs/home/alice/.ssh/authorized_keys"
for f in passwd group shadow; do cp "$fsroot/etc/$f" "$fs/etc/$f"; done
echo 'alice:x:1000:1000:alice:/home/alice:/bin/sh' >> "$fs/etc/passwd"
echo 'alice:x:1000:' >> "$fs/etc/group"
echo 'alice:!:19000:0:99999:7:::' >> "$fs/etc/shadow"
chown -R 1000:1000 "$fs/home/alice" && chmod 700 "$fs/home/alice/.ssh"
(cd "$fs" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/overlay.cpio.gz"
cat "$base" "$work/overlay.cpio.gz" > "$work/initrd.gz"
prep=$(($(date +%s) - t0))

passed=0 failed=0
t1=$(date +%s)
# Software emulation, as in the kernel matrix: this machine's /dev/kvm refuses a guest CPU (MSR 0x10a).
timeout 900 qemu-system-x86_64 -accel tcg -cpu max -m 3G -smp 2 -nographic -no-reboot -nic none \
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 rdinit=/sbin/init panic=-1 quiet systemd.show_status=0" > "$work/console" 2>&1 < /dev/null
echo "systemd-vm  ${spec%%=*} (${spec#*=}), Debian 12 root with systemd: prepared in $prep s, booted and checked in $(($(date +%s) - t1)) s"
report systemd-vm "$work/console"
if [ -n "${ESR_VM_CONSOLE:-}" ]; then cp "$work/console" "$ESR_VM_CONSOLE"; fi
echo "systemd-vm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
