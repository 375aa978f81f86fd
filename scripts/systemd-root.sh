#!/usr/bin/env bash
# Makes (once; cached under /var/cache/esr-ci) a Debian 12 root that boots systemd as PID 1, with
# openssh-server and libpam-systemd (logind), and prints its directory: the root of the systemd VM
# (scripts/systemd-vm.sh), packed as an initramfs.
set -euo pipefail
source "$(dirname "$0")/apt-extra.sh"
apt_mirror
dir=$ESR_CI_CACHE/bookworm-systemd
# dbus-user-session: the user bus that systemd-run --user talks to, as on a Debian desktop or server
# that has it.
packages=systemd-sysv,dbus,dbus-user-session,libpam-systemd,openssh-server,procps
if [ "$(cat "$dir/.done" 2>/dev/null)" != "$packages" ]; then
  command -v debootstrap >/dev/null || { echo "systemd-root: debootstrap missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
  rm -rf "$dir" "$dir.tmp"
  debootstrap --variant=minbase --include="$packages" bookworm "$dir.tmp" "$MIRROR" >"$ESR_CI_CACHE/bookworm-systemd-debootstrap.log" 2>&1 ||
    { tail -5 "$ESR_CI_CACHE/bookworm-systemd-debootstrap.log" >&2; rm -rf "$dir.tmp"; exit 1; }
  # Nothing of the cache may differ from run to run: apt's downloads and lists are dropped.
  rm -rf "$dir.tmp"/var/cache/apt/archives/*.deb "$dir.tmp"/var/lib/apt/lists/*_Packages
  echo "$packages" > "$dir.tmp/.done"
  mv "$dir.tmp" "$dir"
fi
echo "$dir"
