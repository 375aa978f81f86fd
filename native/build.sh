#!/usr/bin/env bash
# Builds libesrbpf.so for one architecture: libbpf with libelf (elfutils) and zlib linked in
# statically, exporting only libbpf's API, importing nothing newer than GLIBC_2.17 — the library
# dist/esr embeds, so that one executable runs on every host from glibc 2.17 on.
#   bash native/build.sh amd64|arm64 OUT.so
# Sources are Debian bookworm's source packages (Debian's patches applied). The result is cached
# under /var/cache/esr-ci/native keyed by those package versions and this directory's files;
# an empty cache rebuilds (≈ 2 min per architecture on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
arch=${1:?usage: native/build.sh amd64|arm64 OUT.so}
out=${2:?usage: native/build.sh amd64|arm64 OUT.so}
source "$here/../scripts/apt-extra.sh"

case $arch in
  amd64) triple=x86_64-linux-gnu ;;
  arm64) triple=aarch64-linux-gnu ;;
  *) echo "native/build.sh: unknown architecture $arch (amd64 or arm64)" >&2; exit 2 ;;
esac
cc=$triple-gcc
command -v "$cc" >/dev/null || { echo "native/build.sh: $cc missing (apt-get install gcc-${triple//_/-})" >&2; exit 1; }

packages=(libbpf/bookworm elfutils/bookworm zlib/bookworm)
src=$ESR_CI_CACHE/src
mkdir -p "$src"
host_arch=$(dpkg --print-architecture)
# Asked from / : for files already in the current directory apt prints no URI.
dscs=$(cd / && apt_extra "$host_arch" -qq source --print-uris "${packages[@]}" | grep -Eo "^'[^']+\.dsc' [^ ]+" | cut -d' ' -f2)
[ "$(wc -w <<<"$dscs")" = 3 ] || { echo "native/build.sh: could not find the source packages ${packages[*]}" >&2; exit 1; }
(cd "$src" && apt_extra "$host_arch" -qq source --download-only "${packages[@]}" >/dev/null)

key=$( (echo "$arch $dscs"; cat "$here"/*) | sha256sum | cut -c1-16)
cached=$ESR_CI_CACHE/native/$arch-$key/libesrbpf.so

# Fails unless every glibc version the library imports is ≤ 2.17 and it needs nothing but libc.
check() {
  local so=$1 bad needed
  bad=$(readelf --dyn-syms -W "$so" | grep -Eo '@GLIBC_[0-9.]+' | sort -u | cut -d_ -f2 |
    awk -F. '$1 > 2 || ($1 == 2 && $2 > 17)' | sed 's/^/GLIBC_/')
  needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -Ev '^(libc\.so\.6|ld-linux-(x86-64|aarch64)\.so\.[12])$' || true)
  if [ -n "$bad" ] || [ -n "$needed" ]; then
    echo "native/build.sh: $so needs ${bad//$'\n'/ } ${needed//$'\n'/ } (must need only libc ≤ GLIBC_2.17)" >&2
    readelf --dyn-syms -W "$so" | grep -E "@(${bad//$'\n'/|})( |$)" >&2 || true
    return 1
  fi
  echo "native/build.sh: $(basename "$so") ($arch, $(stat -c %s "$so") bytes) imports at most $(
    readelf --dyn-syms -W "$so" | grep -Eo '@GLIBC_[0-9.]+' | sort -uV | tail -1 | tr -d @)"
}

if [ ! -f "$cached" ]; then
  work=$(mktemp -d "$ESR_CI_CACHE/native/build-$arch.XXXXXX" 2>/dev/null || { mkdir -p "$ESR_CI_CACHE/native" && mktemp -d "$ESR_CI_CACHE/native/build-$arch.XXXXXX"; })
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  for dsc in $dscs; do dpkg-source --no-check -x "$src/$dsc" >/dev/null; done
  prefix=$work/prefix
  mkdir -p "$prefix/include" "$prefix/lib"
  cflags="-O2 -fPIC -fvisibility=hidden -D_FORTIFY_SOURCE=0 -I$prefix/include"
  jobs=$(nproc)

  (cd zlib-*/ && CHOST=$triple CC=$cc CFLAGS="$cflags" ./configure --static --prefix="$prefix" >/dev/null &&
    make -j"$jobs" libz.a >/dev/null && make install >/dev/null)

  (cd elfutils-*/ && CC=$cc CFLAGS="$cflags" LDFLAGS="-L$prefix/lib" ./configure --host="$triple" \
      --disable-debuginfod --disable-libdebuginfod --without-bzlib --without-lzma --without-zstd \
      --disable-nls --disable-symbol-versioning >configure.log 2>&1 || { tail -20 configure.log >&2; exit 1; }
    make -j"$jobs" -C lib libeu.a >/dev/null && make -j"$jobs" -C libelf libelf.a >/dev/null
    cp libelf/libelf.h libelf/gelf.h libelf/nlist.h "$prefix/include/" && cp libelf/libelf.a lib/libeu.a "$prefix/lib/")

  mkdir -p "$work/libbpf" # libbpf's Makefile writes libbpf.pc there before creating it
  make -s -j"$jobs" -C libbpf-*/src BUILD_STATIC_ONLY=y OBJDIR="$work/libbpf" CC="$cc" AR="$triple-ar" \
    CFLAGS="$cflags" >/dev/null

  "$cc" $cflags -c "$here/glibc-compat.c" -o glibc-compat.o
  "$cc" -shared -o libesrbpf.so -Wl,-soname,libesrbpf.so -Wl,-O1 -Wl,-z,defs -Wl,--as-needed -s \
    -Wl,--version-script="$(echo libbpf-*/src/libbpf.map)" -static-libgcc \
    -Wl,--whole-archive "$work/libbpf/libbpf.a" -Wl,--no-whole-archive glibc-compat.o \
    "$prefix/lib/libelf.a" "$prefix/lib/libeu.a" "$prefix/lib/libz.a"
  check libesrbpf.so
  mkdir -p "$(dirname "$cached")"
  mv libesrbpf.so "$cached.tmp" && mv "$cached.tmp" "$cached"
else
  check "$cached"
fi
mkdir -p "$(dirname "$out")"
cp "$cached" "$out"
