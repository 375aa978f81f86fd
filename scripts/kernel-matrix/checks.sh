#!/bin/sh
# The kernel matrix's end-to-end checks: real sessions recorded by esr on the running kernel, read
# back with `esr replay`. POSIX sh (busybox in the VMs, dash on the host). One line per check,
# "esr-matrix: PASS <check>" or "esr-matrix: FAIL <check>: <why>", then "esr-matrix: DONE".
#   ESR     the esr executable           HELPER  scripts/kernel-matrix/helper.c, built static
#   LOGIN   a non-root user to record    WORK    an empty directory every user can read
set -u
: "${ESR:?} ${HELPER:?} ${LOGIN:?} ${WORK:?}"
cgroup=/cgroup2
data=$WORK/data
mkdir -p "$data"
chmod 755 "$WORK"
cat > "$WORK/esr.yaml" <<EOF
ssh_service:
  enhanced_recording:
    cgroup_path: $cgroup
EOF
# Rings as small as esr allows (one page per CPU, raised to its minimum): an open storm overflows them.
cat > "$WORK/tiny.yaml" <<EOF
ssh_service:
  enhanced_recording:
    cgroup_path: $cgroup
    command_buffer_size: 1
    disk_buffer_size: 1
    network_buffer_size: 1
EOF

pass() { echo "esr-matrix: PASS $1"; }
fail() { echo "esr-matrix: FAIL $1: $2"; }

# rec NAME CONFIG LOGIN COMMAND: records `sh -c COMMAND` with every event kind; its events (JSON
# lines) land in $WORK/NAME.json; why esr did not record, if it did not, in $WORK/NAME.why.
rec() {
  out=$WORK/$1.json
  t0=$(date +%s)
  "$ESR" record --config "$2" --data-dir "$data" --login "$3" --events command,disk,network -- sh -c "$4" \
    > "$WORK/$1.out" 2> "$WORK/$1.err" < /dev/null
  echo $? > "$WORK/$1.status"
  sid=$(sed -n 's/^esr: session \([0-9a-f-]*\)$/\1/p' "$WORK/$1.err")
  if [ -z "$sid" ]; then
    echo "no session: $(grep -v '^esr: session' "$WORK/$1.err" | head -3 | tr '\n' ' ')" > "$WORK/$1.why"
    : > "$out"
    return
  fi
  "$ESR" replay "$sid" --data-dir "$data" --format json > "$out" 2> "$WORK/$1.why"
  status=$?
  echo "esr-matrix: session $1: exit $(cat "$WORK/$1.status"), $(wc -l < "$out") events, replay exit $status, $(($(date +%s) - t0)) s"
}

# has NAME CHECK PATTERN...: PASS when one event of session NAME matches every pattern.
has() {
  name=$1 check=$2
  shift 2
  lines=$(cat "$WORK/$name.json")
  for p in "$@"; do lines=$(printf '%s\n' "$lines" | grep -F -e "$p"); done
  [ -n "$lines" ] && { pass "$check"; return; }
  fail "$check" "no event with $* in session $name$(cat "$WORK/$name.why" "$WORK/$name.err" 2>/dev/null | grep -v '^esr: session' | head -2 | tr '\n' ' ' | sed 's/^/: /')"
}

cmd='"event":"session.command"'
disk='"event":"session.disk"'
net='"event":"session.network"'

# esr check: every item ok, exit 0.
"$ESR" check --config "$WORK/esr.yaml" > "$WORK/check.out" 2>&1
status=$?
if [ $status -eq 0 ] && ! grep -q '^FAIL' "$WORK/check.out" && grep -q '^ok .*command hook' "$WORK/check.out" &&
  grep -q '^ok .*disk hook' "$WORK/check.out" && grep -q '^ok .*network hook' "$WORK/check.out"; then
  pass check
else
  fail check "exit $status: $(grep -v '^ok' "$WORK/check.out" | head -3 | tr '\n' ' ')"
fi
echo "esr-matrix: session filter: $(sed -n 's/^ok *session filter *//p' "$WORK/check.out")"
# Disk events read the file and its path with plain loads where bpf_rdonly_cast exists (Linux 6.2
# on), the task where bpf_get_current_task_btf exists (5.11 on), with helper reads before: each
# kernel must have loaded the cheapest twin it allows.
disk_hook=$(sed -n 's/^ok *disk hook *//p' "$WORK/check.out")
release=$(uname -r)
major=${release%%.*} minor=${release#*.} minor=${minor%%.*}
if [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 2 ]; }; then want=disk_open_cast
elif [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -ge 11 ]; }; then want=disk_open_typed
else want=disk_open; fi
case "$disk_hook" in
*"($want)"*) pass "disk-twin" ;;
*) fail "disk-twin" "expected $want on $release: $disk_hook" ;;
esac

# One session of the non-root user (each esr start costs seconds under software emulation): an
# obfuscated pipeline, a script, a failed exec, an exec of a memfd, connects (refused on loopback,
# but the SYN went out), opens (successful and failed), and a setsid child still running when the
# session's command exits.
encoded=$(printf '/bin/echo obf-marker' | base64)
printf '#!/bin/sh\n/bin/echo script-marker\n' > "$WORK/script.sh"
chmod 755 "$WORK/script.sh"
echo open-marker > "$WORK/open-marker"
chmod 644 "$WORK/open-marker"
ln -s open-marker "$WORK/link-marker"
real_work=$(readlink -f "$WORK")
# The file /bin/echo runs, by device (major:minor of st_dev) and inode, as the exec event must name it.
echo_file=$(readlink -f /bin/echo)
echo_dev=$(stat -L -c %d "$echo_file")
echo_dev=$(((echo_dev >> 8 & 0xfff) | (echo_dev >> 32 & ~0xfff))):$(((echo_dev & 0xff) | (echo_dev >> 12 & ~0xff)))
echo_ino=$(stat -L -c %i "$echo_file")
rec user "$WORK/esr.yaml" "$LOGIN" "echo $encoded | base64 -d | sh; $WORK/script.sh; /no/such/file arg1
  \"$HELPER\" fexecve $(readlink -f /bin/echo) echo memfd-marker
  \"$HELPER\" connect 127.0.0.1 9; \"$HELPER\" connect ::1 9; cat $WORK/open-marker; cat $WORK/link-marker; cat /no/such/open
  setsid sh -c 'sleep 2; /bin/echo linger-marker' & exit 0"
has user pipeline "$cmd" '"argv":["-d"]' '"return_code":0'
has user pipeline-decoded "$cmd" '"path":"/bin/echo"' '"argv":["obf-marker"]'
has user script "$cmd" "\"path\":\"$WORK/script.sh\""
has user script-command "$cmd" '"argv":["script-marker"]'
has user failed-exec "$cmd" '"path":"/no/such/file"' '"argv":["arg1"]' '"return_code":-2'
has user memfd-exec "$cmd" '"exe":"/memfd:esr-matrix' '"argv":["memfd-marker"]'
has user connect-ipv4 "$net" '"dst_addr":"127.0.0.1"' '"dst_port":9' '"version":4'
has user connect-ipv6 "$net" '"dst_addr":"::1"' '"dst_port":9' '"version":6'
has user open "$disk" "\"path\":\"$real_work/open-marker\"" '"program":"cat"'
has user open-failed "$disk" '"path":"/no/such/open"' '"return_code":-2' '"from_caller_memory":["path"]'
has user open-symlink "$disk" "\"path\":\"$real_work/open-marker\"" "\"requested_path\":\"$WORK/link-marker\"" '"program":"cat"'
has user exe-dev-ino "$cmd" '"path":"/bin/echo"' '"argv":["obf-marker"]' "\"exe_dev\":\"$echo_dev\"" "\"exe_ino\":\"$echo_ino\""
has user setsid-linger "$cmd" '"argv":["linger-marker"]'

# esr.disk_filter: the disk program with ignored prefixes (its matching loop is verified only
# then) loads with as many as it holds, each as long as it may be (15 that never match, then the
# one that does), leaves out a read-only open under it and counts it, records the others.
mkdir -p "$WORK/ignored" && echo ignored > "$WORK/ignored/f" && chmod -R a+rwX "$WORK/ignored"
pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
prefixes=
for i in 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24; do prefixes="$prefixes/esr-matrix-$i/$pad/, "; done
cat > "$WORK/filter.yaml" <<EOF
ssh_service:
  enhanced_recording:
    cgroup_path: $cgroup
esr:
  disk_filter:
    ignore_path_prefixes: [$prefixes$real_work/ignored/]
EOF
rec filter "$WORK/filter.yaml" "$LOGIN" "cat $WORK/ignored/f $WORK/open-marker; echo w >> $WORK/ignored/w"
has filter filter-recorded "$disk" "\"path\":\"$real_work/open-marker\""
has filter filter-write-recorded "$disk" "\"path\":\"$real_work/ignored/w\""
if grep -F "\"path\":\"$real_work/ignored/f\"" "$WORK/filter.json" | grep -q '"return_code":[0-9]'; then
  fail filter-filtered "the read-only open of $real_work/ignored/f was recorded"
elif grep '"event":"session.end"' "$WORK/filter.json" | grep -Eq '"filtered_events":\{"command":0,"disk":[1-9]'; then
  pass filter-filtered
else
  fail filter-filtered "session.end: $(grep -o '"filtered_events":{[^}]*}' "$WORK/filter.json" || head -2 "$WORK/filter.err" "$WORK/filter.why")"
fi

# A bind shell: the session listens on 127.0.0.1 and ::1 and serves one connection on each, from
# clients outside any session (started first, retrying until the listeners are up). The accepts
# complete in softirq and are found by the socket's cgroup (its layout changed in 5.15).
# Ports of this run's own (on the host, other runs may be listening).
p4=$((20000 + $$ % 10000)) p6=$((30000 + $$ % 10000))
"$HELPER" talk 127.0.0.1 $p4 > "$WORK/talk4" 2>&1 &
"$HELPER" talk ::1 $p6 > "$WORK/talk6" 2>&1 &
rec inbound "$WORK/esr.yaml" "$LOGIN" "\"$HELPER\" serve 127.0.0.1 $p4 & \"$HELPER\" serve ::1 $p6; wait"
wait
has inbound listen-ipv4 "$net" '"operation":2' '"dst_addr":"127.0.0.1"' "\"dst_port\":$p4," '"version":4'
has inbound listen-ipv6 "$net" '"operation":2' '"dst_addr":"::1"' "\"dst_port\":$p6," '"version":6'
has inbound accept-ipv4 "$net" '"operation":3' '"src_addr":"127.0.0.1"' "\"src_port\":$(cat "$WORK/talk4")," "\"dst_port\":$p4," '"pid":0'
has inbound accept-ipv6 "$net" '"operation":3' '"src_addr":"::1"' "\"src_port\":$(cat "$WORK/talk6")," "\"dst_port\":$p6," '"pid":0'

# Moving itself into a child cgroup of the slice (root may; the session is the slice's ancestor).
rec child-cgroup "$WORK/esr.yaml" root "d=$cgroup\$(sed -n 's/^0:://p' /proc/self/cgroup); mkdir \$d/hideout && echo \$\$ > \$d/hideout/cgroup.procs && /bin/echo child-cgroup-marker"
has child-cgroup child-cgroup "$cmd" '"argv":["child-cgroup-marker"]'

# The tiniest rings, and a recorder that stops reading (SIGSTOP) while the session opens a long
# path 2000 times (≈ 8 MB of events for a 256 KiB ring): the loss is counted, in session.end and
# in esr ls.
long=$WORK
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do long=$long/$(printf '%0250d' 0); done
mkdir -m 777 "$WORK/flags"
"$ESR" record --config "$WORK/tiny.yaml" --data-dir "$data" --login "$LOGIN" --events command,disk,network -- sh -c \
  "while [ ! -e $WORK/flags/go ]; do sleep 0.1; done; \"$HELPER\" opens 2000 $long; touch $WORK/flags/done" \
  > "$WORK/loss.out" 2> "$WORK/loss.err" < /dev/null &
recorder=$!
while ! grep -q '^esr: session' "$WORK/loss.err" && kill -0 $recorder 2> /dev/null; do sleep 0.1; done
kill -STOP $recorder
touch "$WORK/flags/go"
waited=0
while [ ! -e "$WORK/flags/done" ] && [ $waited -lt 1200 ]; do sleep 0.1; waited=$((waited + 1)); done
kill -CONT $recorder
wait $recorder
sid=$(sed -n 's/^esr: session \([0-9a-f-]*\)$/\1/p' "$WORK/loss.err")
[ -n "$sid" ] && "$ESR" replay "$sid" --data-dir "$data" --format json > "$WORK/loss.json" 2> "$WORK/loss.why"
if grep '"event":"session.end"' "$WORK/loss.json" | grep -q '"disk":[1-9]'; then pass loss-counted; else fail loss-counted "session.end: $(grep -o '"lost_events":{[^}]*}' "$WORK/loss.json" || head -2 "$WORK/loss.err" "$WORK/loss.why")"; fi
if [ -n "$sid" ] && "$ESR" ls --data-dir "$data" --json | grep -F "\"sid\":\"$sid\"" | grep -Eq '"lost":\{"command":[0-9]+,"disk":[1-9]'; then pass loss-listed; else fail loss-listed "esr ls --json does not show the session's lost disk events"; fi

# A kernel esr cannot record on: no BTF (hidden in a private mount namespace, as if the kernel had
# been built without CONFIG_DEBUG_INFO_BTF). check names the requirement and fails; record refuses
# in one line.
nobtf() { unshare -m sh -c 'mount -t tmpfs none /sys/kernel/btf && exec "$@"' sh "$@"; }
nobtf "$ESR" check --config "$WORK/esr.yaml" > "$WORK/nobtf-check.out" 2>&1
status=$?
if [ $status -ne 0 ] && grep -q '^FAIL *BTF .*CONFIG_DEBUG_INFO_BTF' "$WORK/nobtf-check.out"; then pass no-btf-check; else fail no-btf-check "exit $status: $(head -c 300 "$WORK/nobtf-check.out" | tr '\n' ' ')"; fi
nobtf "$ESR" record --config "$WORK/esr.yaml" --data-dir "$data" -- /bin/true > "$WORK/nobtf-record.out" 2>&1
status=$?
if [ $status -ne 0 ] && [ "$(wc -l < "$WORK/nobtf-record.out")" -eq 1 ] && grep -q BTF "$WORK/nobtf-record.out"; then pass no-btf-record; else fail no-btf-record "exit $status: $(head -c 300 "$WORK/nobtf-record.out" | tr '\n' ' ')"; fi

echo "esr-matrix: DONE"
