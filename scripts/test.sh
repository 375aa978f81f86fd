#!/usr/bin/env bash
# Sets up (Debian and npm packages, build) and runs every test as root on the real kernel, plus the
# static checks (types, formatting). Ends with a line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

# Static checks count as one test each, so a red formatter fails CI like a red test.
static_passed=0
static_failed=0
static() {
  local name=$1
  shift
  if "$@"; then
    echo "(pass) static: $name"
    static_passed=$((static_passed + 1))
  else
    echo "(fail) static: $name"
    static_failed=$((static_failed + 1))
  fi
}
static "types (tsc --noEmit)" node_modules/.bin/tsc --noEmit -p .
static "types of the web front end (tsc --noEmit)" node_modules/.bin/tsc --noEmit -p web/client
static "formatting (prettier --check)" node_modules/.bin/prettier --check --log-level warn .

log=$(mktemp)
node_modules/.bin/bun test --timeout 60000 "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^ *[0-9]+ pass$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -Eo '^ *[0-9]+ fail$' "$log" | tail -1 | grep -Eo '[0-9]+' || echo 0)
rm -f "$log"
# A run that stopped before its summary (crash, no tests) must not look green.
if [ "$status" -ne 0 ] && [ "$failed" = 0 ]; then failed=1; fi
if [ "$passed" = 0 ] && [ "$failed" = 0 ]; then failed=1; fi
passed=$((passed + static_passed))
failed=$((failed + static_failed))
[ "$static_failed" -gt 0 ] && status=1

# The kernel matrix and the systemd VM: the end-to-end checks on Debian's kernels under qemu, on this
# kernel and on a systemd host, each check counted. Only in a whole run: arguments select bun tests.
# counted PREFIX COMMAND…: runs a script that ends with "PREFIX: N passed, M failed", adds its counts.
counted() {
  local prefix=$1 out counts
  shift
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
  counts=$(sed -n "s/^$prefix: \\([0-9]*\\) passed, \\([0-9]*\\) failed$/\\1 \\2/p" "$out" | tail -1)
  rm -f "$out"
  if [ -z "$counts" ]; then counts="0 1" status=1; fi
  passed=$((passed + ${counts% *}))
  failed=$((failed + ${counts#* }))
}
if [ $# -eq 0 ]; then
  counted kernel-matrix bash scripts/kernel-matrix.sh
  # The systemd host, every check: ≈ 4–5 min under emulation (11 min at load 20), inside CI's budget.
  counted systemd-vm bash scripts/systemd-vm.sh
fi
echo "$passed passed, $failed failed"
exit "$status"
