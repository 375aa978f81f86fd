# Sourced by scripts/kernel-matrix.sh and scripts/systemd-vm.sh: the qemu machinery they share.
# The caller sets $cache (the CI cache directory) and defines die MESSAGE. Provides:
#   vm_install DEB…         installs the Debian packages missing on this machine
#   vm_apt_lists            private apt lists of Debian's suites (for their kernels), updated
#   kernel_of_suite SUITE   the kernel package (name=version) SUITE's linux-image-amd64 names
#   fetch_kernel SPEC       downloads and unpacks that kernel once; prints its directory
#   report LABEL FILE       one line per check of a VM's console log, counted in $passed/$failed

vm_install() {
  local p missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    die "cannot install ${missing[*]}"
}

# The archive this machine already uses (never a host written here): the first URI of its apt
# sources, in deb822 or one-line form, for the main archive and for debian-security.
apt_uris() {
  { grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | sed 's/\[[^]]*\]//' | awk '{print $2}'; } | sed 's:/*$::'
}

vm_apt_lists() {
  local mirror security
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
  # Offline with a warm cache still works: the lists of the last successful update are kept. Two
  # runs at once share the lists: apt's own lock makes the second wait.
  if ! apt-get "${apt_opts[@]}" -o DPkg::Lock::Timeout=900 update -qq >"$apt_dir/update.log" 2>&1; then
    echo "apt update of the private kernel lists failed (see $apt_dir/update.log); using the cached lists"
  fi
}

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

# report LABEL FILE: one line per check of a run, counted; a run without DONE failed as a whole.
report() {
  local label=$1 out=$2 line
  while IFS= read -r line; do
    case $line in
      "esr-matrix: PASS "*) passed=$((passed + 1)); echo "$label  PASS  ${line#esr-matrix: PASS }" ;;
      "esr-matrix: FAIL "*) failed=$((failed + 1)); echo "$label  FAIL  ${line#esr-matrix: FAIL }" ;;
      *) echo "$label        ${line#esr-matrix: }" ;;
    esac
  done < <(tr -d '\r' < "$out" | grep -ao 'esr-matrix: \(PASS\|FAIL\|session\|KERNEL\|INFO\) .*')
  if ! tr -d '\r' < "$out" | grep -aq 'esr-matrix: DONE'; then
    failed=$((failed + 1))
    echo "$label  FAIL  run: did not finish; last console lines:"
    tr -d '\r' < "$out" | tail -15 | sed 's/^/    /'
  fi
}

