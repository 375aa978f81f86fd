#!/usr/bin/env bash
# Installs what building and testing esr needs on a Debian/Ubuntu host with node/npm, then builds
# dist/esr. Idempotent: a second run installs nothing and only rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: run as root (installs packages, loads BPF programs)" >&2; exit 1; }; }
need_root

# clang/llvm/libbpf-dev/bpftool: the BPF build; gcc-aarch64-linux-gnu, flex, bison, dpkg-dev:
# building libbpf, libelf and zlib from Debian's sources for both architectures (native/build.sh).
# curl, python3, util-linux (setpriv, script), procps, iproute2: used by the tests and the demo;
# debootstrap (an old-glibc root), qemu-system-arm and cpio (an arm64 VM): the portability tests;
# chromium (with openssl for a test certificate): the web UI's browser tests drive it through playwright-core;
# postgresql: the fleet store tests start a server of their own (test/support/postgres.ts).
debs=(clang llvm libbpf-dev bpftool gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross flex bison dpkg-dev bzip2 xz-utils
  curl util-linux bsdutils procps iproute2 openssh-server debootstrap qemu-system-arm cpio chromium openssl postgresql)
missing=()
for p in "${debs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/bun ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# npm installs only the host's Bun runtime; the other architecture's (pinned in package.json, the
# same version) is what `bun build --compile` puts into that architecture's executable.
for runtime in @oven/bun-linux-x64 @oven/bun-linux-aarch64; do
  [ -x "node_modules/$runtime/bin/bun" ] && continue
  version=$(node -p 'require("./node_modules/bun/package.json").version')
  cache=/var/cache/esr-ci/npm
  mkdir -p "$cache" "node_modules/$runtime"
  tarball=$cache/$(tr -d @ <<<"${runtime//\//-}")-$version.tgz
  [ -f "$tarball" ] || npm pack --silent --pack-destination "$cache" "$runtime@$version" >/dev/null
  tar -xzf "$tarball" -C "node_modules/$runtime" --strip-components=1
done

node_modules/.bin/bun scripts/build.ts
