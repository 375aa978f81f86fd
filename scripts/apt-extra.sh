# Sourced by build and test scripts: apt-get over a private configuration that adds Debian suites,
# source packages and arm64 packages without touching the machine's own apt sources.
#   apt_extra amd64|arm64 <apt-get arguments…>
# The archive's address is the one this machine's apt already uses (never written into the repo).
# State lives under /var/cache/esr-ci/apt/<arch> so CI runs reuse downloaded lists and packages.

ESR_CI_CACHE=${ESR_CI_CACHE:-/var/cache/esr-ci}

apt_mirror() {
  local uris
  uris=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null
         grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
           sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/'
         true)
  MIRROR=$(tr ' ' '\n' <<<"$uris" | grep -v -- '-security' | grep -m1 . || true)
  SECURITY=$(tr ' ' '\n' <<<"$uris" | grep -m1 -- '-security' || true)
  [ -n "$MIRROR" ] || { echo "apt-extra: no Debian archive URI in /etc/apt/sources.list{,.d}" >&2; return 1; }
}

apt_extra() {
  local arch=$1; shift
  apt_mirror || return 1
  local dir=$ESR_CI_CACHE/apt/$arch
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  {
    for suite in bullseye bookworm bookworm-updates trixie; do
      echo "deb [arch=$arch] $MIRROR $suite main"
      echo "deb-src $MIRROR $suite main"
    done
    [ -z "$SECURITY" ] || echo "deb [arch=$arch] $SECURITY bookworm-security main"
  } >"$dir/sources.list"
  local opts=(-o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" -o Dir::State::status=/dev/null
    -o APT::Architecture="$arch" -o APT::Architectures::="$arch" -o APT::Default-Release=bookworm
    -o DPkg::Lock::Timeout=900 -o APT::Sandbox::User=root)
  # Lists older than a day are refreshed; a fresh cache directory always is.
  if [ -z "$(find "$dir/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ] ||
     ! cmp -s "$dir/sources.list" "$dir/sources.list.used"; then
    apt-get "${opts[@]}" -qq update >&2 || return 1
    cp "$dir/sources.list" "$dir/sources.list.used"
  fi
  apt-get "${opts[@]}" "$@"
}
