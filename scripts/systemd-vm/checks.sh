#!/bin/sh
# Runs as root inside the systemd VM (scripts/systemd-vm.sh), once sshd and logind are up: installs
# esr as the README says, then checks that SSH logins are recorded where logind put them and that
# logind, systemd and the user's slice keep managing them. One "esr-matrix: PASS|FAIL name" line per
# check on the console, then DONE, then the VM powers off. /esr-vm/mode: full or smoke.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mode=$(cat /esr-vm/mode)
log=/var/lib/esr/log/events.log
pass() { echo "esr-matrix: PASS $*"; }
fail() { echo "esr-matrix: FAIL $*"; }
info() { echo "esr-matrix: INFO $*"; }
# verdict NAME DETAIL: PASS if the last command succeeded, else FAIL with DETAIL.
verdict() { if [ $? -eq 0 ]; then pass "$1"; else fail "$1: $2"; fi; }
as_alice() {
  ssh -i /esr-vm/id_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=120 alice@127.0.0.1 "$@"
}
# The sid and cgroup of the recorded exec whose argv holds MARKER (events.log: one JSON event a line).
event_of() { grep -a "\"session.command\"" "$log" | grep -a -- "$1" | head -1; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\).*/\1/p"; }
# wait_for SECONDS COMMAND…: until COMMAND succeeds.
wait_for() {
  n=$1; shift
  while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 1; n=$((n - 1)); done
  return 1
}
ended() { grep -a '"session.end"' "$log" | grep -aq "\"sid\":\"$1\""; }

info "$(uname -r), $(systemctl --version | head -1), $(cut -d' ' -f1 /proc/uptime) s after boot: $(systemctl is-system-running)"
echo "esr-matrix: KERNEL $(uname -r) systemd"

# Install, exactly as the README says.
install -m 0755 /esr-vm/esr /usr/local/sbin/esr
cp /esr-vm/esr-daemon.service /etc/systemd/system/
systemctl daemon-reload && systemctl enable --now esr-daemon 2>/dev/null
systemctl is-active -q esr-daemon
verdict "install: esr-daemon.service enabled and active" "$(journalctl -u esr-daemon -o cat | tail -8)"
sed -i '/^@include common-session$/a session required pam_exec.so /usr/local/sbin/esr pam' /etc/pam.d/sshd
out=$(systemd-analyze verify /etc/systemd/system/esr-daemon.service 2>&1)
[ -z "$out" ]
verdict "install: systemd-analyze verify esr-daemon.service is clean" "$out"

# 1. A login: recorded from its first exec, in logind's scope, which logind and systemd still see.
out=$(as_alice 'cat /proc/self/cgroup; echo login-marker-1; loginctl show-session "$XDG_SESSION_ID" -p Scope --value
  stat -c "scope-id %i" "/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)"' 2>&1)
scope=$(echo "$out" | sed -n 's/^0:://p')
session=$(echo "$scope" | sed -n 's/.*session-\(.*\)\.scope$/\1/p')
case $scope in /user.slice/user-1000.slice/session-*.scope) true ;; *) false ;; esac
verdict "login: its processes run in logind's session scope ($scope)" "$out"
echo "$out" | grep -qx "session-$session.scope"
verdict "login: logind names that scope as the session's (loginctl show-session -p Scope)" "$out"
ev=$(event_of login-marker-1)
sid=$(echo "$ev" | field sid)
scope_id=$(echo "$out" | sed -n 's/^scope-id //p')
[ -n "$sid" ] && [ -n "$scope_id" ] && [ "$(echo "$ev" | field cgroup_id)" = "$scope_id" ]
verdict "login: recorded, in the session keyed by the scope's cgroup (sid $sid)" "event: $ev; login: $out"
first=$(esr replay "$sid" --type command 2>&1 | head -1)
echo "$first" | grep -q 'exec *\(/usr\)\{0,1\}/bin/sh -c cat /proc/self/cgroup' || echo "$first" | grep -q 'run-parts'
verdict "login: the session's first exec is sshd starting the login (shell or pam_motd's run-parts)" "$first"
wait_for 30 ended "$sid"
verdict "login: the session ends when the scope empties (session.end)" "$(grep -a "$sid" "$log" | tail -2)"
echo "$(journalctl -u esr-daemon -o cat | grep -a "session $sid: login")" | grep -q "in logind's session $session"
verdict "login: the daemon's journal names logind's session" "$(journalctl -u esr-daemon -o cat | tail -5)"

# esr record: in a transient scope systemd lists.
out=$(esr record --quiet -- sh -c 'cat /proc/self/cgroup; systemctl list-units --type=scope --no-legend --plain "esr-*"; echo record-marker' 2>&1)
rscope=$(echo "$out" | sed -n 's/^0:://p')
unit=${rscope##*/}
case $rscope in /esr.slice/esr-*.scope) true ;; *) false ;; esac && echo "$out" | grep -q "^$unit .*active"
verdict "record: the command runs in a transient scope systemd lists ($unit)" "$out"
ev=$(event_of record-marker)
[ -n "$ev" ]
verdict "record: the command's execs are recorded" "$out"
wait_for 10 sh -c "! systemctl is-active -q $unit"
verdict "record: the scope is gone once the command exits" "$(systemctl status "$unit" 2>&1 | head -3)"

# 2. An administrator ends a login. ends_login NAME COMMAND: a login that would sleep 10 minutes,
# ended by COMMAND run with its logind session id.
ends_login() {
  how=$1; shift
  as_alice "echo \"logind-session \$XDG_SESSION_ID\"; echo $how-marker; exec sleep 600" > /tmp/$how.out 2>&1 &
  client=$!
  wait_for 60 sh -c "grep -aq $how-marker $log"
  sid=$(event_of $how-marker | field sid)
  n=$(sed -n 's/^logind-session //p' /tmp/$how.out)
  "$@" "$n"
  wait_for 30 sh -c "! kill -0 $client 2>/dev/null"
  verdict "$how: $* $n ends the recorded login" "session $n: $(loginctl session-status "$n" 2>&1 | head -3)"
  wait_for 30 ended "$sid"
  verdict "$how: the session is recorded to its end (session.end)" "sid $sid"
}
stop_scope() { systemctl stop "session-$1.scope"; }
ends_login terminate-session loginctl terminate-session
if [ "$mode" = full ]; then
  ends_login kill-session loginctl kill-session
  ends_login stop-scope stop_scope
fi

# 3. The user slice's limit applies to a recorded login.
systemctl set-property --runtime user-1000.slice TasksMax=12
out=$(as_alice 'perl /esr-vm/fork-to-limit.pl limit-marker' 2>&1; echo "ssh exit $?")
failed=$(echo "$out" | sed -n 's/^limit-marker forked [0-9]* failed \([0-9]*\) current \([0-9]*\)$/\1/p')
tasks=$(echo "$out" | sed -n 's/^limit-marker .* current \([0-9]*\)$/\1/p')
[ -n "$failed" ] && [ "$failed" -gt 0 ] && [ "$tasks" -le 12 ]
verdict "user slice: TasksMax=12 on user-1000.slice holds the login to $tasks tasks ($failed of 30 forks refused)" "$out"
[ -n "$(event_of limit-marker)" ]
verdict "user slice: the limited login is recorded" "$out"
# What the logged-out login left (logind leaves a closing session's processes to the scope).
systemctl kill user-1000.slice
wait_for 30 sh -c '[ -z "$(pgrep -u alice)" ]'
verdict "user slice: systemctl kill user-1000.slice ends what the limited login left running" "$(for p in $(pgrep -u alice); do echo "$p $(tr '\0' ' ' < /proc/$p/cmdline) in $(cut -d: -f3 /proc/$p/cgroup);"; done)"
systemctl set-property --runtime user-1000.slice TasksMax=infinity
terminate_user() { loginctl terminate-user alice; }
ends_login terminate-user terminate_user

if [ "$mode" = full ]; then
  # 4. The user's own systemd manager starts processes outside the login: not recorded, and said so.
  out=$(as_alice 'systemd-run --user --quiet --collect --wait /usr/bin/touch /home/alice/escaped-marker; echo manager-marker $?' 2>&1)
  info "systemd-run --user in a login: $(echo "$out" | tr '\n' ' ')"
  [ -e /home/alice/escaped-marker ]
  verdict "user manager: a login's systemd-run --user runs its command (in user@1000.service)" "$out"
  grep -a '"session.command"' "$log" | grep -a '"path":"/usr/bin/systemd-run"' | grep -aq 'escaped-marker'
  verdict "user manager: the login's systemd-run --user command line is recorded" "$(grep -a systemd-run "$log" | tail -1)"
  ! grep -a '"session.command"' "$log" | grep -a '"path":"/usr/bin/touch"' | grep -aq escaped-marker
  verdict "user manager: what user@1000.service runs for it is outside the session (not recorded)" "$(grep -a escaped-marker "$log")"
  out=$(esr check 2>&1)
  echo "$out" | grep -q "user@.service"
  verdict "check: esr check warns that the user's systemd manager runs processes outside the login" "$out"
  echo "$out" | grep -q "^ok *systemd" || echo "$out" | grep -qi "systemd.*logind"
  verdict "check: esr check names the systemd mode (logind scopes, esr.slice)" "$out"
  esr check > /dev/null 2>&1
  verdict "check: esr check passes" "$out"
  # Masking user@.service, as esr check advises: logins still work, and have no manager to hand work to.
  loginctl terminate-user alice 2>/dev/null; systemctl stop user@1000.service
  systemctl mask -q user@.service
  out=$(as_alice 'echo masked-marker; systemd-run --user --quiet /bin/true; echo "systemd-run --user: $?"' 2>&1)
  echo "$out" | grep -q '^masked-marker' && ! echo "$out" | grep -q 'systemd-run --user: 0$' && [ -n "$(event_of masked-marker)" ]
  verdict "user manager: with user@.service masked a login works, recorded, and systemd-run --user fails" "$out"
  esr check 2>&1 | grep -q "user@.service is masked"
  verdict "check: esr check sees user@.service masked" "$(esr check 2>&1 | grep 'user manager')"
  systemctl unmask -q user@.service

  # 5. A daemon restart ends the logins in progress (nothing runs unrecorded) and records new ones.
  restart_daemon() { systemctl restart esr-daemon; }
  ends_login restart restart_daemon
  systemctl is-active -q esr-daemon
  verdict "restart: esr-daemon is active again" "$(systemctl status esr-daemon 2>&1 | tail -5)"
  as_alice 'echo after-restart-marker' > /dev/null 2>&1
  [ -n "$(event_of after-restart-marker)" ]
  verdict "restart: a login after the restart is recorded" "$(journalctl -u esr-daemon -o cat | tail -5)"
  # A daemon that dies (SIGKILL) leaves its logins to the next one, which kills them.
  as_alice 'echo crash-marker; exec sleep 600' > /dev/null 2>&1 &
  client=$!
  wait_for 60 sh -c "grep -aq crash-marker $log"
  owners=$(grep -H . /run/esr/slices/* 2>&1)
  systemctl kill -s SIGKILL esr-daemon
  wait_for 60 sh -c "! kill -0 $client 2>/dev/null"
  verdict "restart: after a SIGKILL, the restarted daemon kills the login it can no longer record" "owners before: $owners; after: $(grep -H . /run/esr/slices/* 2>&1); $(journalctl -u esr-daemon -o cat | tail -12)"
fi
info "checks done $(cut -d' ' -f1 /proc/uptime) s after boot"
echo "esr-matrix: DONE"
systemctl poweroff --no-block
