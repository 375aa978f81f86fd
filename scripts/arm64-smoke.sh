#!/usr/bin/env bash
# Boots Debian bookworm's arm64 kernel under qemu-system-aarch64 (software emulation) with
# dist/esr-linux-arm64 in an initramfs (busybox-static and glibc from Debian's arm64 packages) and
# records a session there. Prints what the VM printed between its markers, then a verdict line;
# exits 0 only when the recording shows the execs, the failed exec and the exit status.
#   bash scripts/arm64-smoke.sh [dist/esr-linux-arm64]
set -euo pipefail
cd "$(dirname "$0")/.."
esr=${1:-dist/esr-linux-arm64}
[ -x "$esr" ] || { echo "arm64-smoke: $esr missing (bun scripts/build.ts builds it)" >&2; exit 1; }
command -v qemu-system-aarch64 >/dev/null || { echo "arm64-smoke: qemu-system-aarch64 missing (apt-get install qemu-system-arm)" >&2; exit 1; }
debs=$(bash scripts/debian-arm64.sh)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
init=$work/root
cp -a "$debs/root" "$init"
mkdir -p "$init"/{proc,sys,dev,tmp,etc,sbin,usr/bin,usr/sbin}
cp "$esr" "$init/esr"
echo 'root:x:0:0:root:/root:/bin/sh' >"$init/etc/passwd"
echo 'root:x:0:' >"$init/etc/group"
cat >"$init/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /tmp
echo ESR-SMOKE-BEGIN
uname -srm
time /esr --version 2>&1
/esr record --data-dir /tmp/data --quiet -- sh -c '/bin/true; /no/such; exit 3'
echo "record exit $?"
/esr replay --data-dir /tmp/data "$(/esr ls --data-dir /tmp/data | awk 'NR == 2 { print $1 }')"
echo ESR-SMOKE-END
poweroff -f
EOF
chmod +x "$init/init"
# Uncompressed: gzip of the 110 MB executable costs more time than the kernel saves reading it.
(cd "$init" && find . | cpio -o -H newc --quiet) >"$work/initrd"

started=$(date +%s)
# -nic none: the VM needs no network, and the default NIC wants iPXE's ROM (ipxe-qemu), which a
# --no-install-recommends install of qemu-system-arm leaves out.
timeout 900 qemu-system-aarch64 -M virt -cpu max -m 3G -smp 2 -nographic -no-reboot -nic none \
  -kernel "$debs/vmlinuz" -initrd "$work/initrd" -append "console=ttyAMA0 panic=-1 quiet" \
  </dev/null >"$work/console" 2>&1 || true
tr -d '\r' <"$work/console" | sed -n '/^ESR-SMOKE-BEGIN/,/^ESR-SMOKE-END/p' >"$work/result"
cat "$work/result"
echo "arm64-smoke: VM ran $(($(date +%s) - started)) s"
if grep -q '^record exit 3$' "$work/result" && grep -Eq 'exec +/bin/true .*= 0' "$work/result" &&
   grep -Eq 'exec +/no/such .*= -2 ENOENT' "$work/result" && grep -Eq 'end +exit=3 lost=0' "$work/result"; then
  echo "arm64-smoke: ok"
else
  [ -s "$work/result" ] || tail -30 "$work/console" | tr -d '\r'
  echo "arm64-smoke: FAILED"
  exit 1
fi
