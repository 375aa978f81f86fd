#!/usr/bin/env bash
# Makes (once; cached under /var/cache/esr-ci) a minimal Debian 11 root, glibc 2.31, and prints its
# directory: the old-glibc host test/e2e/old-glibc.test.ts runs dist/esr in.
set -euo pipefail
source "$(dirname "$0")/apt-extra.sh"
apt_mirror
dir=$ESR_CI_CACHE/bullseye-minbase
if [ ! -f "$dir/.done" ]; then
  command -v debootstrap >/dev/null || { echo "bullseye-root: debootstrap missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
  rm -rf "$dir" "$dir.tmp"
  debootstrap --variant=minbase bullseye "$dir.tmp" "$MIRROR" >"$ESR_CI_CACHE/bullseye-debootstrap.log" 2>&1 ||
    { tail -5 "$ESR_CI_CACHE/bullseye-debootstrap.log" >&2; rm -rf "$dir.tmp"; exit 1; }
  touch "$dir.tmp/.done"
  mv "$dir.tmp" "$dir"
fi
echo "$dir"
