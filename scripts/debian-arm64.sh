#!/usr/bin/env bash
# Fetches Debian bookworm's arm64 kernel, busybox-static and libc6 (cached under
# /var/cache/esr-ci/arm64/<kernel version>) and prints that directory, which holds
#   vmlinuz   the kernel (an uncompressed arm64 Image, BTF inside: the build takes arm64 types from it)
#   root/     busybox-static and libc6 unpacked (an initramfs for qemu-system-aarch64 starts from it)
set -euo pipefail
source "$(dirname "$0")/apt-extra.sh"

plan=$(apt_extra arm64 -qq install -s --no-install-recommends linux-image-arm64 busybox-static libc6 2>/dev/null | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p')
kernel=$(grep -m1 -E '^linux-image-[0-9].*-arm64=' <<<"$plan" || true)
[ -n "$kernel" ] || { echo "debian-arm64: no arm64 kernel package found in bookworm" >&2; exit 1; }
dir=$ESR_CI_CACHE/arm64/${kernel#*=}
if [ ! -f "$dir/done" ]; then
  rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
  (cd "$dir/debs" && apt_extra arm64 -qq download "$kernel" "$(grep -m1 '^busybox-static=' <<<"$plan")" \
    "$(grep -m1 '^libc6=' <<<"$plan")" >/dev/null)
  dpkg-deb --fsys-tarfile "$dir"/debs/linux-image-*.deb | tar -xO --wildcards './boot/vmlinuz-*' >"$dir/vmlinuz"
  for deb in "$dir"/debs/busybox-static_*.deb "$dir"/debs/libc6_*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
  rm -f "$dir"/debs/linux-image-*.deb # 60 MB, and only the kernel image is used
  touch "$dir/done"
fi
echo "$dir"
