#!/bin/bash
# A build-like shell workload: many short processes, file reads, a few connects. Prints its own
# wall time in the workload's format: <operations> <seconds> <ns per operation> <cpu>.
set -e
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s%N)
for i in $(seq 1 40); do
  mkdir -p "$work/src$i"
  printf 'int f%d(void) { return %d; }\n' "$i" "$i" > "$work/src$i/f.c"
  cat /etc/os-release "$work/src$i/f.c" | grep -c . > "$work/src$i/lines"
  sed -e "s/return/return -/" "$work/src$i/f.c" | wc -c > /dev/null
  head -c 4096 /etc/services | sort | uniq | tail -n 3 > /dev/null
  ls "$work" > /dev/null
done
"$(dirname "$0")/../../build/bench-workload" connect 20 > /dev/null
end=$(date +%s%N)
echo "40 $(( (end - start) / 1000 ))e-6 $(( (end - start) / 40 )) 0"
