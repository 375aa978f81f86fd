#!/usr/bin/env bash
# Installs what building and testing esr needs on a Debian/Ubuntu host with node/npm, then builds
# dist/esr. Idempotent: a second run installs nothing and only rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { [ "$(id -u)" = 0 ] || { echo "setup: run as root (installs packages, loads BPF programs)" >&2; exit 1; }; }
need_root

# clang/llvm/libbpf-dev/bpftool: the BPF build; libelf/zlib: embedded into dist/esr with libbpf.
# curl, python3, util-linux (setpriv, script), procps, iproute2: used by the tests and the demo.
# postgresql: the fleet store tests start a server of their own (test/support/postgres.ts).
debs=(clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev curl util-linux bsdutils procps iproute2 openssh-server postgresql)
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

node_modules/.bin/bun scripts/build.ts
