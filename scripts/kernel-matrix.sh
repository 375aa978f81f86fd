#!/usr/bin/env bash
# Boots Debian's own kernels (5.10 → 7.x) under qemu with dist/esr in an initramfs and runs the
# end-to-end checks of scripts/kernel-matrix/checks.sh inside each, then on the host's kernel.
# One boot has only cgroup v1 hierarchies mounted (as on Amazon Linux 2, RHEL 8). Prints one line per
# kernel and check, and ends with "kernel-matrix: N passed, M failed" (non-zero exit on any failure).
#   bash scripts/kernel-matrix.sh              every kernel
#   bash scripts/kernel-matrix.sh bullseye     only the kernels whose label contains a word given
# Kernels, debs and apt lists are cached under $ESR_CI_CACHE (default /var/cache/esr-ci).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
here=$root/scripts/kernel-matrix
cache=${ESR_CI_CACHE:-/var/cache/esr-ci}
esr=$root/dist/esr

die() { echo "kernel-matrix: $*" >&2; echo "kernel-matrix: 0 passed, 1 failed"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (boots kernels, loads BPF on the host)"
[ -x "$esr" ] || die "dist/esr is missing: run bash scripts/setup.sh first"

# Boot label, Debian suite whose linux-image-amd64 names the kernel, and the VM's cgroup mode.
matrix=(
  "bullseye bullseye v2"
  "bullseye-cgroup1 bullseye v1"
  "bookworm bookworm-security v2"
  "trixie trixie v2"
  "sid sid v2"
)

debs=(qemu-system-x86 busybox-static cpio gcc libc6-dev)
missing=()
for p in "${debs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "kernel-matrix: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "cannot install ${missing[*]}"
fi

# The archive this machine already uses (never a host written here): the first URI of its apt
# sources, in deb822 or one-line form, for the main archive and for debian-security.
apt_uris() {
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'; } | sed 's:/*$::'
}
mirror=$(apt_uris | grep -v -- '-security$' | head -1)
security=$(apt_uris | grep -- '-security$' | head -1)
[ -n "$mirror" ] || die "no Debian archive URI in /etc/apt/sources.list(.d)"
[ -n "$security" ] || security=${mirror%/debian}/debian-security

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/kernels"
{ printf "deb $mirror %s main\n" bullseye bookworm trixie sid
  printf "deb $security %s main\n" bookworm-security; } > "$apt_dir/sources.list"
apt_opts=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o Dir::State::status=/dev/null
  -o APT::Architecture=amd64)
# Offline with a warm cache still works: the lists of the last successful update are kept.
if ! apt-get "${apt_opts[@]}" update -qq >"$apt_dir/update.log" 2>&1; then
  echo "kernel-matrix: apt update of the private kernel lists failed (see $apt_dir/update.log); using the cached lists"
fi

# The kernel package (name=version) a suite's linux-image-amd64 depends on, e.g.
# linux-image-5.10.0-32-amd64=5.10.223-1.
kernel_of_suite() {
  local version dep
  version=$(apt-cache "${apt_opts[@]}" madison linux-image-amd64 | awk -F'|' -v s=" $1/main" 'index($3, s) {gsub(/ /, "", $2); print $2; exit}')
  [ -n "$version" ] || return 1
  dep=$(apt-cache "${apt_opts[@]}" show "linux-image-amd64=$version" | sed -n 's/^Depends: //p' | tr ',' '\n' | grep -o 'linux-image-[^ ]*' | head -1)
  [ -n "$dep" ] || return 1
  echo "$dep=$(apt-cache "${apt_opts[@]}" show "linux-image-amd64=$version" | sed -n "s/^Depends: .*$dep (= \([^)]*\)).*/\1/p")"
}

# Downloads and unpacks a kernel once: $cache/kernels/<package>_<version>/{vmlinuz,config}. Newer
# Debian kernels (7.x) moved both files out of linux-image-* into linux-binary-*/linux-base-* of the
# same version, under usr/lib/modules/<release>/: those are fetched too.
fetch_kernel() {
  local spec=$1 dir=$cache/kernels/${1/=/_} tmp parts deb member
  if [ ! -s "$dir/vmlinuz" ]; then
    tmp=$(mktemp -d "$cache/kernels/.fetch-XXXXXX")
    parts=("$spec" $(apt-cache "${apt_opts[@]}" show "$spec" | sed -n 's/^Depends: //p' | tr ',' '\n' |
      sed -n 's/^ *\(linux-\(binary\|base\)-[^ ]*\) (= \([^)]*\)).*/\1=\3/p'))
    # apt's download sandbox user cannot write into a root-only cache directory.
    chmod 755 "$tmp"
    if ! (cd "$tmp" && apt-get "${apt_opts[@]}" download -qq "${parts[@]}" >/dev/null 2>"$tmp/err"); then
      cat "$tmp/err" >&2; rm -rf "$tmp"; return 1
    fi
    for deb in "$tmp"/*.deb; do
      for member in $(dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E '^\./(boot/(vmlinuz|config)-|usr/lib/modules/[^/]+/(vmlinuz|config)$)'); do
        dpkg-deb --fsys-tarfile "$deb" | tar -xO "$member" > "$tmp/$(basename "$member" | sed 's/-.*//')"
      done
    done
    if [ ! -s "$tmp/vmlinuz" ]; then echo "no vmlinuz in ${parts[*]}" >&2; rm -rf "$tmp"; return 1; fi
    mkdir -p "$dir" && mv "$tmp/vmlinuz" "$tmp/config" "$dir/" && rm -rf "$tmp"
  fi
  echo "$dir"
}

work=$(mktemp -d /tmp/esr-kernel-matrix-XXXXXX)
trap 'rm -rf "$work"' EXIT
# checks.sh records a non-root user, who must reach the helper and the scripts.
chmod 755 "$work"
gcc -static -O2 -Wall -Werror -o "$work/helper" "$here/helper.c" || die "cannot build the static helper (gcc, libc6-dev)"

# The initramfs: busybox, esr and the glibc files it links, users, /init and the checks.
initrd() {
  local fs=$work/initramfs lib
  mkdir -p "$fs"/{bin,sbin,etc,proc,sys,dev,tmp,root,home/tester,cgroup2}
  cp /bin/busybox "$fs/bin/busybox"
  # esr starts another user's command through util-linux's setpriv; busybox's lacks --reuid.
  for applet in $(/bin/busybox --list | grep -vx -e setpriv -e busybox); do ln -s busybox "$fs/bin/$applet"; done
  cp "$esr" "$fs/esr"
  cp /usr/bin/setpriv "$fs/bin/setpriv"
  for lib in $(ldd "$esr" /usr/bin/setpriv | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do mkdir -p "$fs$(dirname "$lib")" && cp -L "$lib" "$fs$lib"; done
  cp "$work/helper" "$here/checks.sh" "$fs/" && cp "$here/init" "$fs/init" && chmod 755 "$fs/init" "$fs/helper"
  printf 'root:x:0:0:root:/root:/bin/sh\ntester:x:1000:1000:tester:/home/tester:/bin/sh\n' > "$fs/etc/passwd"
  printf 'root:x:0:\ntester:x:1000:\n' > "$fs/etc/group"
  chown 1000:1000 "$fs/home/tester"
  (cd "$fs" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"
}
initrd

passed=0 failed=0
# report LABEL FILE: one line per check of a run, counted; a run without DONE failed as a whole.
report() {
  local label=$1 out=$2 line
  while IFS= read -r line; do
    case $line in
      "esr-matrix: PASS "*) passed=$((passed + 1)); echo "$label  PASS  ${line#esr-matrix: PASS }" ;;
      "esr-matrix: FAIL "*) failed=$((failed + 1)); echo "$label  FAIL  ${line#esr-matrix: FAIL }" ;;
      *) echo "$label        ${line#esr-matrix: }" ;;
    esac
  done < <(tr -d '\r' < "$out" | grep -ao 'esr-matrix: \(PASS\|FAIL\|session\|KERNEL\) .*')
  if ! tr -d '\r' < "$out" | grep -aq 'esr-matrix: DONE'; then
    failed=$((failed + 1))
    echo "$label  FAIL  run: did not finish; last console lines:"
    tr -d '\r' < "$out" | tail -15 | sed 's/^/    /'
  fi
}

only=("$@")
wanted() { [ ${#only[@]} -eq 0 ] && return 0; local w; for w in "${only[@]}"; do [[ $1 == *"$w"* ]] && return 0; done; return 1; }

start=$(date +%s)
for entry in "${matrix[@]}"; do
  read -r label suite mode <<< "$entry"
  wanted "$label" || continue
  t0=$(date +%s)
  if ! spec=$(kernel_of_suite "$suite") || ! dir=$(fetch_kernel "$spec"); then
    failed=$((failed + 1)); echo "$label  FAIL  kernel: cannot get $suite's kernel (${spec:-no linux-image-amd64 in the lists})"; continue
  fi
  append="console=ttyS0 panic=-1 quiet"
  [ "$mode" = v1 ] && append="$append esr.cgroup=v1"
  # Software emulation: a boot and the checks take about a minute; 10 minutes means it hung. An
  # Oops at a patched call site (int3) is the emulator racing the kernel's own text patching across
  # vCPUs, not esr (seen once on 6.12): that boot is repeated once, and the log says so.
  for attempt in 1 2; do
    timeout 600 qemu-system-x86_64 -m 3G -smp 2 -cpu max -nographic -no-reboot -nic none \
      -kernel "$dir/vmlinuz" -initrd "$work/initrd.gz" -append "$append" > "$work/console-$label" 2>&1 < /dev/null
    tr -d '\r' < "$work/console-$label" | grep -aq 'esr-matrix: DONE' && break
    tr -d '\r' < "$work/console-$label" | grep -aq 'Oops: int3' || break
    [ "$attempt" = 1 ] && echo "$label  kernel Oops (int3) under emulation before the checks finished: booting once more"
  done
  btf=$(grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$dir/config" && echo yes || echo no)
  echo "$label  ${spec%%=*} (${spec#*=}, BTF $btf, cgroup $mode): $(($(date +%s) - t0)) s"
  report "$label" "$work/console-$label"
done

if wanted host; then
  t0=$(date +%s)
  ESR=$esr HELPER=$work/helper LOGIN=nobody WORK=$work/host sh "$here/checks.sh" > "$work/console-host" 2>&1
  echo "host  $(uname -r) (BTF $([ -e /sys/kernel/btf/vmlinux ] && echo yes || echo no)): $(($(date +%s) - t0)) s"
  report host "$work/console-host"
fi
echo "kernel-matrix: $(($(date +%s) - start)) s in all"
echo "kernel-matrix: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
