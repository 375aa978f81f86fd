#!/usr/bin/env bash
# The quick start's main job: set up, build, record a demo session, print its replay.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
data=${ESR_DEMO_DATA_DIR:-/tmp/esr-demo}
echo
echo "== esr record: an obfuscated pipeline, a script, a command typed with echo off, a connect"
script=$(mktemp /tmp/esr-demo-XXXX.sh)
printf '#!/bin/sh\nid -un\nuname -r\n' > "$script"; chmod +x "$script"
log=$(mktemp)
dist/esr record --data-dir "$data" -- bash -c "echo Y3VybCAtcyAtbyAvZGV2L251bGwgaHR0cDovLzEyNy4wLjAuMTo5L3NlY3JldAo= | base64 -d | sh; $script; stty -echo 2>/dev/null; cat /etc/hostname; stty echo 2>/dev/null; exit 3" 2> >(tee "$log" >&2) || true
sleep 0.2
sid=$(grep -o 'session [0-9a-f-]*' "$log" | head -1 | cut -d' ' -f2)
rm -f "$script" "$log"
echo
echo "== esr replay $sid"
dist/esr replay --data-dir "$data" "$sid"
echo
echo "== esr ls"
dist/esr ls --data-dir "$data" | head -5
