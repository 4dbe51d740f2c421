#!/usr/bin/env bats
# vsysfs-ctl (mount-scripts/vsysfs-ctl, docs/ctl.md) on a real mount: every
# subcommand, its exit codes (0 ok, 1 failure or timeout, 2 usage), and the
# stream under `events --follow` and `events wait`
# (kernel/debug/vsysfs/events_pipe): each event once per open, as it
# happens, blocking in read/poll (never a polling loop), EAGAIN with
# O_NONBLOCK, nonseekable, EINTR on a signal, ended when the daemon stops.

load helpers
bats_require_minimum_version 1.5.0

CTL=$SCRIPTS/vsysfs-ctl

# One manual-clock mount for the file; the tests that shut the machine
# down or stop the daemon mount their own (own_mount).
setup_file() {
  vsysfs_start -o clock=manual
  export VSYSFS_MOUNT=$MNT
}

teardown_file() {
  vsysfs_stop
}

own_mount() {
  OWN=1
  vsysfs_start "$@"
  export VSYSFS_MOUNT=$MNT
}

teardown() {
  for p in ${BG:-}; do kill "$p" 2>/dev/null || true; done
  if [ -n "${OWN:-}" ]; then vsysfs_stop; fi
}

now() { cat "$MNT/kernel/debug/vsysfs/clock/now_ns"; }
last_seq() { "$CTL" events --json | tail -n 1 | sed 's/^{"seq":\([0-9]*\),.*/\1/'; }

# blocked_in PID NR...: PID's current system call is one of NR (x86_64:
# 0 read, 7 poll, 271 ppoll), waiting at most 10 s for it to get there.
blocked_in() {
  local pid=$1 nr; shift
  for _ in $(seq 200); do
    nr=$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null) || return 1
    for want in "$@"; do [ "$nr" = "$want" ] && return 0; done
    sleep 0.05
  done
  echo "pid $pid never blocked in $* (last: $nr)" >&2
  return 1
}

ctxt() { awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$1/status"; }

# wait_exit PID: its exit status, within 10 s (else fail).
wait_exit() {
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  ! kill -0 "$1" 2>/dev/null || { echo "pid $1 did not exit" >&2; return 1; }
  wait "$1"
}

@test "--help names every command; no command, bad ones and bad durations are usage errors (2)" {
  run "$CTL" --help
  [ "$status" -eq 0 ]
  for c in "clock now" "events wait" "--follow" shutdown machine "fail POINT KEY=VALUE" "fail seed" "fail pids" "snapshot save NAME" "snapshot diff A"; do [[ "$output" == *"$c"* ]]; done
  run "$CTL"
  [ "$status" -eq 2 ]
  run "$CTL" frobnicate
  [ "$status" -eq 2 ]
  run "$CTL" clock advance 3parsecs
  [ "$status" -eq 2 ]
  [[ "$output" == *"bad duration"* ]]
  run "$CTL" shutdown sideways
  [ "$status" -eq 2 ]
  t0=$(now)
  run "$CTL" events --timeout 1s
  [ "$status" -eq 2 ]
  run "$CTL" clock advance 1us
  [ "$status" -eq 2 ]
  [ "$(now)" = "$t0" ]   # nothing happened
}

@test "the mount: -m, else VSYSFS_MOUNT; a directory that is not a vsysfs mount is a failure (1)" {
  [ "$("$CTL" -m "$MNT" clock mode)" = manual ]
  [ "$(VSYSFS_MOUNT=$MNT "$CTL" clock mode)" = manual ]
  run "$CTL" -m "$BATS_TEST_TMPDIR" clock now
  [ "$status" -eq 1 ]
  [[ "$output" == *"not a vsysfs mount"* ]]
}

@test "clock now, mode and advance go through the knobs" {
  t0=$(now)
  [ "$("$CTL" clock now)" = "$t0" ]
  [ "$("$CTL" clock mode)" = manual ]
  "$CTL" clock advance 1.5s
  [ "$("$CTL" clock now)" = $((t0 + 1500000000)) ]
  "$CTL" clock advance 250ms
  "$CTL" clock advance 2m
  [ "$(now)" = $((t0 + 1750000000 + 120000000000)) ]
  # The knob's own errno, and a hint: a step of over 100 years is ERANGE.
  run "$CTL" clock advance 36600d
  [ "$status" -eq 1 ]
  [[ "$output" == *"Numerical result out of range"* ]]
}

@test "clock advance on the real clock fails (1) with the knob's EOPNOTSUPP" {
  own_mount
  run "$CTL" -m "$MNT" clock advance 1s
  [ "$status" -eq 1 ]
  [[ "$output" == *"EOPNOTSUPP"*"not supported"*"clock=manual"* ]]
  [ "$("$CTL" -m "$MNT" clock mode)" = real ]
}

@test "events: filters, --since and --json print what the log has" {
  own_mount -o clock=manual
  echo 9000 > "$MNT/class/net/eth0/mtu"
  echo 9217 > "$MNT/class/net/eth0/mtu" 2>/dev/null || true
  "$CTL" clock advance 1s
  run "$CTL" events --device eth0 --what store --json
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 2 ]
  printf '%s\n' "${lines[@]}" | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]'
  run "$CTL" events --device eth0 --what store --result EINVAL
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == *" eth0 store EINVAL "*"attr=mtu"* ]]
  first=$("$CTL" events --json --what store --device eth0 | head -n 1 | sed 's/^{"seq":\([0-9]*\),.*/\1/')
  run "$CTL" events --json --since "$first" --device eth0 --what store
  [ "${#lines[@]}" -eq 1 ]
  [[ "${lines[0]}" == *'"result":"EINVAL"'* ]]
  run "$CTL" events --what no-such-event
  [ "$status" -eq 0 ]
  [ -z "$output" ]
}

@test "events wait returns as soon as the event happens, with the event" {
  "$CTL" events wait --what store --device eth0 --timeout 20s >"$BATS_TEST_TMPDIR/out" &
  w=$!; BG=$w
  # Blocked in poll(2) on events_pipe: it waits for the daemon, not a timer.
  blocked_in "$w" 7 271
  # Other events do not end it.
  "$CTL" clock advance 1s
  echo 1 > "$MNT/devices/system/cpu/cpu1/online"
  blocked_in "$w" 7 271
  kill -0 "$w"
  echo 1400 > "$MNT/class/net/eth0/mtu"
  wait_exit "$w"
  [[ "$(cat "$BATS_TEST_TMPDIR/out")" == *'"device":"eth0","what":"store","result":"OK"'*'"value":1400'* ]]
}

@test "events wait fails (1) after its timeout, and --since finds an event already logged" {
  run "$CTL" events wait --what never --timeout 0.3s
  [ "$status" -eq 1 ]
  [[ "$output" == *"no event with what=never within 0.3s"* ]]
  # Without --since only events after the call count: this one is older.
  s0=$(last_seq)
  "$CTL" clock advance 5ms
  run "$CTL" events wait --what advance --timeout 0.3s
  [ "$status" -eq 1 ]
  run "$CTL" events wait --what advance --since "$s0" --timeout 0.3s
  [ "$status" -eq 0 ]
  [[ "$output" == *'"ms":5'* ]]
}

@test "events --follow streams new events as they happen, blocked in read between them" {
  last=$(last_seq)
  "$CTL" events --follow --since "$last" --what advance >"$BATS_TEST_TMPDIR/follow" &
  f=$!; BG=$f
  blocked_in "$f" 0
  # No polling loop: while nothing happens, the follower does not run at
  # all (a loop would wake and switch in and out; FUSE read waits in the
  # kernel for the daemon's reply).
  before=$(ctxt "$f")
  sleep 0.5
  [ "$(ctxt "$f")" = "$before" ]
  blocked_in "$f" 0
  for ms in 1 2 3; do "$CTL" clock advance ${ms}ms; done
  for _ in $(seq 200); do [ "$(wc -l <"$BATS_TEST_TMPDIR/follow")" -ge 3 ] && break; sleep 0.05; done
  run cat "$BATS_TEST_TMPDIR/follow"
  [ "${#lines[@]}" -eq 3 ]
  [[ "${lines[0]}" == *" clock advance OK "*"ms=1" ]]
  [[ "${lines[2]}" == *"ms=3" ]]
  # A signal ends it: the FUSE read is interrupted (EINTR), not left
  # waiting for the next event.
  kill -TERM "$f"
  st=0; wait_exit "$f" || st=$?
  [ "$st" -eq 143 ]
}

@test "shutdown poweroff|reboot|halt sets the power state; a reboot boots, a second halt is a failure (1)" {
  own_mount -o clock=manual
  "$CTL" shutdown reboot
  [ "$(cat "$MNT/kernel/debug/vsysfs/machine/power_state")" = rebooted ]
  # A reboot is a boot (docs/devices/machine.md): the machine runs again.
  [ "$(cat "$MNT/kernel/debug/vsysfs/machine/power")" = on ]
  "$CTL" shutdown halt
  [ "$(cat "$MNT/kernel/debug/vsysfs/machine/power")" = halted ]
  run "$CTL" shutdown poweroff
  [ "$status" -eq 1 ]
  [[ "$output" == *"already shut down"* ]]
  [ "$(cat "$MNT/kernel/debug/vsysfs/machine/power_state")" = halted ]
  "$CTL" events --what shutdown_request --json | grep -q '"how":"reboot"'
}

@test "machine: the mount, its machine, clock, power state and the daemon's pid" {
  run "$CTL" machine
  [ "$status" -eq 0 ]
  [[ "$output" == *"mount        $MNT"* ]]
  # The built-in machine's [machine] name (the first `name =` of the file).
  local name; name=$(awk -F'"' '/^name = / { print $2; exit }' "$VSYSFS_ROOT/machines/default.toml")
  [ -n "$name" ]
  [[ "$output" == *"machine      $name"* ]]
  [[ "$output" == *"clock        manual"* ]]
  [[ "$output" == *"power_state  on"* ]]
  [[ "$output" == *"pid          $VSYSFS_PID"* ]]
  "$CTL" machine --json | python3 -c "
import json, sys
m = json.load(sys.stdin)
assert m['pid'] == '$VSYSFS_PID' and m['clock'] == 'manual', m"
}

# fail: K/fail (docs/fault-injection.md). The store point is armed only
# for lo's mtu; each test starts from the defaults (fail_reset) and leaves
# the point off, so one failing test does not make the next one fail.
F=kernel/debug/vsysfs/fail
MTU=devices/virtual/net/lo/mtu
fail_reset() { "$CTL" fail store probability=0 times=1 paths= errno=5; }
# The store point's injected count, from the table and from --json.
injected() {
  local table json
  table=$("$CTL" fail | awk '$1 == "store" { print $8 }')
  json=$("$CTL" fail list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["points"]["store"]["injected"])')
  [ "$table" = "$json" ] || { echo "table says $table, --json says $json" >&2; return 1; }
  echo "$table"
}

@test "fail: every point with its settings and injected count, as a table and as JSON" {
  run "$CTL" fail
  [ "$status" -eq 0 ]
  [[ "${lines[2]}" == "point "*"probability"*"times"*"injected"*"other" ]]
  for p in store show smi host_control page_alloc; do
    [[ "$output" == *$'\n'"$p "* ]]
  done
  [[ "$output" == *"errno=EIO paths=''"* ]]
  [[ "$output" == *"kind=no_answer"* ]]
  "$CTL" fail list --json | python3 -c "
import json, sys
f = json.load(sys.stdin)
assert f['seed'] == 0 and f['pids'] == [], f
s = f['points']['store']
assert (s['probability'], s['times'], s['errno'], s['paths'], s['task-filter']) == (0, 1, 5, [], False), s
assert f['points']['page_alloc']['ignore-gfp-wait'] is True, f"
  # A row's other column is in the form the command takes back, quoted for
  # the shell (a glob stays a glob).
  "$CTL" fail show 'paths=devices/*/mtu class/net/*/mtu' errno=ENODEV
  [[ "$("$CTL" fail)" == *"errno=ENODEV paths='devices/*/mtu class/net/*/mtu'"* ]]
  [ "$(cat "$MNT/$F/show/paths")" = "$(printf 'devices/*/mtu\nclass/net/*/mtu')" ]
  "$CTL" fail show paths= errno=EIO
}

@test "fail store ...: a store on the armed attribute gets the errno, injected moves; fail store off restores" {
  fail_reset
  before=$(cat "$MNT/$MTU")
  n0=$(injected)
  "$CTL" fail store probability=100 times=-1 errno=EBUSY "paths=$MTU"
  [ "$(cat "$MNT/$F/store/errno")" = 16 ]                  # the name went in as the number
  [ "$(cat "$MNT/$F/store/paths")" = "$MTU" ]
  run "$CTL" fail store
  [[ "$output" == *"errno EBUSY"* && "$output" == *"times -1"* ]]
  run -1 bash -c "echo 1400 > '$MNT/$MTU'"
  [[ "$output" == *"busy"* ]]
  run -1 bash -c "echo 1400 > '$MNT/$MTU'"
  [ "$(cat "$MNT/$MTU")" = "$before" ]                     # refused before the device saw it
  [ "$(injected)" -eq $((n0 + 2)) ]
  echo 1 > "$MNT/devices/virtual/net/lo/tx_queue_len"      # another attribute: not armed
  echo 1000 > "$MNT/devices/virtual/net/lo/tx_queue_len"
  "$CTL" fail store off
  [ "$(cat "$MNT/$F/store/probability")" = 0 ]
  [ "$(cat "$MNT/$F/store/times")" = 1 ]                   # FAULT_ATTR_INITIALIZER's
  echo 1400 > "$MNT/$MTU"
  [ "$(cat "$MNT/$MTU")" = 1400 ]
  [ "$(injected)" -eq $((n0 + 2)) ]
  echo "$before" > "$MNT/$MTU"
  fail_reset
}

@test "fail: an unknown point, key or errno name is a usage error (2) and writes nothing" {
  fail_reset
  n=$("$CTL" events --json | wc -l)
  run -2 "$CTL" fail stor probability=100
  [[ "$output" == *"no failure point 'stor'"* ]]
  run -2 "$CTL" fail store times=5 bogus=1 probability=100
  [[ "$output" == *"no key 'bogus'"* ]]
  run -2 "$CTL" fail store injected=0
  [[ "$output" == *"read-only"* ]]
  run -2 "$CTL" fail store errno=ENOTANERRNO
  run -2 "$CTL" fail store probability
  run -2 "$CTL" fail store off times=1
  run -2 "$CTL" fail seed 1 2
  [ "$(cat "$MNT/$F/store/times")" = 1 ]
  [ "$(cat "$MNT/$F/store/probability")" = 0 ]
  [ "$("$CTL" events --json | wc -l)" -eq "$n" ]           # no set event either
}

@test "fail: a value the daemon refuses is a failure (1) with its errno; it stops there, unarmed" {
  fail_reset
  run -1 "$CTL" fail store errno=4096
  [[ "$output" == *"errno=4096: EINVAL"*"nothing was written"* ]]
  [ "$(cat "$MNT/$F/store/errno")" = 5 ]
  # probability goes last: a refused key before it leaves the point unarmed.
  run -1 "$CTL" fail store probability=100 times=3 errno=0 "paths=$MTU"
  [[ "$output" == *"errno=0: EINVAL"*"already written: times=3"* ]]
  [ "$(cat "$MNT/$F/store/times")" = 3 ]
  [ "$(cat "$MNT/$F/store/probability")" = 0 ]
  [ -z "$(cat "$MNT/$F/store/paths")" ]
  run -1 "$CTL" fail store times=junk
  [[ "$output" == *EINVAL* ]]
  [ "$(cat "$MNT/$F/store/times")" = 3 ]
  fail_reset
}

@test "fail seed and fail pids show and set K/fail/seed and K/fail/pids" {
  "$CTL" fail seed 0x2a
  [ "$("$CTL" fail seed)" = 42 ]
  "$CTL" fail pids 30 7,12
  [ "$(cat "$MNT/$F/pids")" = "$(printf '7\n12\n30')" ]
  [ "$("$CTL" fail pids)" = "7 12 30" ]
  run -1 "$CTL" fail pids 5 0
  [[ "$output" == *EINVAL* ]]
  [ "$("$CTL" fail pids)" = "7 12 30" ]                     # unchanged
  "$CTL" fail list --json | grep -q '"seed": 42, "pids": \[7, 12, 30\]'
  "$CTL" fail pids ''
  [ -z "$("$CTL" fail pids)" ]
  "$CTL" fail seed 0
}

@test "snapshot save, list, diff and restore go through K/machine; errors carry the knob's errno" {
  # A machine whose sections all keep a state record (docs/snapshot.md).
  own_mount -o "clock=manual,machine=$VSYSFS_ROOT/machines/numa-4node.toml"
  local cpu=$MNT/devices/system/cpu/cpu3/online
  run -0 "$CTL" snapshot save base
  run -0 "$CTL" snapshot list
  [[ "$output" =~ ^base\ +0\ ns\ +[0-9]+\ bytes$ ]]
  run -0 "$CTL" snapshot list --json
  [[ "$output" =~ ^\[\{\"name\":\ \"base\",\ \"now_ns\":\ 0, ]]
  run -0 "$CTL" snapshot diff base --exit-code
  [ -z "$output" ]
  echo 0 > "$cpu"
  run -1 "$CTL" snapshot diff base now --exit-code
  grep -qx 'devices/system/cpu/cpu3/online: 1 -> 0' <<<"$output"
  run -0 "$CTL" snapshot diff base
  run -0 "$CTL" snapshot restore base
  [ "$(cat "$cpu")" = 1 ]
  run -0 "$CTL" snapshot diff base --exit-code
  # A restore puts the power back too: a machine powered off after the
  # snapshot answers again.
  run -0 "$CTL" shutdown poweroff
  run -1 cat "$cpu"
  run -0 "$CTL" snapshot restore base
  [ "$(cat "$cpu")" = 1 ]
  [ "$(cat "$MNT/kernel/debug/vsysfs/machine/power")" = on ]
  run -1 "$CTL" snapshot restore nosuch
  [[ "$output" == *"ENOENT"* ]]
  run -1 "$CTL" snapshot save 'a b'
  [[ "$output" == *"EINVAL"* ]]
  run -2 "$CTL" snapshot restore
  run -2 "$CTL" snapshot diff
  run -2 "$CTL" snapshot list extra
}

@test "snapshot restore on the default machine: every family back (0); the real clock cannot (1, EOPNOTSUPP)" {
  local cpu=$MNT/devices/system/cpu/cpu1/online x=$MNT/devices/system/xen_memory/xen_memory0/target_kb
  local target mtu hc; target=$(cat "$x") mtu=$(cat "$MNT/class/net/eth0/mtu")
  hc=$(cat "$MNT/devices/platform/dcdbas/host_control_on_shutdown")
  run -0 "$CTL" snapshot save here
  echo 0 > "$cpu"
  echo $((mtu == 9000 ? 1500 : 9000)) > "$MNT/class/net/eth0/mtu"
  echo $((target - 65536)) > "$x"
  echo $((1 - hc)) > "$MNT/devices/platform/dcdbas/host_control_on_shutdown"
  run -0 "$CTL" snapshot restore here
  [ "$(cat "$cpu")" = 1 ]
  [ "$(cat "$MNT/class/net/eth0/mtu")" = "$mtu" ]
  [ "$(cat "$x")" = "$target" ]
  [ "$(cat "$MNT/devices/platform/dcdbas/host_control_on_shutdown")" = "$hc" ]
  own_mount -o clock=real
  run -0 "$CTL" snapshot save here
  echo 0 > "$cpu"
  run -1 "$CTL" snapshot restore here
  [[ "$output" == *"EOPNOTSUPP"* ]]
  [ "$(cat "$cpu")" = 0 ]
  echo 1 > "$cpu"
}

@test "events_pipe: 0400, nonseekable, EAGAIN with O_NONBLOCK, EINTR on a signal, each event once per open" {
  [ "$(stat -c %a "$MNT/kernel/debug/vsysfs/events_pipe")" = 400 ]
  python3 - "$MNT/kernel/debug/vsysfs" <<'PY'
import errno, os, select, signal, sys
k = sys.argv[1]
a = os.open(k + "/events_pipe", os.O_RDONLY | os.O_NONBLOCK)
try:
    os.read(a, 4096); sys.exit("read without an event returned")
except BlockingIOError:
    pass
try:
    os.lseek(a, 0, os.SEEK_SET); sys.exit("lseek worked")
except OSError as e:
    assert e.errno == errno.ESPIPE, e
p = select.poll(); p.register(a, select.POLLIN)
assert p.poll(0) == [], "POLLIN with nothing to read"
b = os.open(k + "/events_pipe", os.O_RDONLY)
with open(k + "/clock/advance_ms", "w") as f:
    f.write("7")
assert p.poll(10000) == [(a, select.POLLIN)]
ea, eb = os.read(a, 65536), os.read(b, 65536)
assert ea == eb and b'"ms":7' in ea and ea.count(b"\n") == 1, (ea, eb)
try:
    os.read(a, 4096); sys.exit("the same event twice")
except BlockingIOError:
    pass
# A blocked read ends with EINTR when a signal comes (FUSE_INTERRUPT).
class Alarm(Exception): pass
def on_alarm(*_): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    os.read(b, 4096); sys.exit("read returned without an event")
except Alarm:
    pass
PY
}

@test "events_pipe: stopping the daemon with a blocked reader ends the read; nothing hangs" {
  own_mount -o clock=manual
  cat "$MNT/kernel/debug/vsysfs/events_pipe" >"$BATS_TEST_TMPDIR/cat" 2>&1 &
  c=$!; BG=$c
  blocked_in "$c" 0
  kill -TERM "$VSYSFS_PID"
  # The reader gets the shutdown's own events, then an error: not a hang.
  st=0; wait_exit "$c" || st=$?
  [ "$st" -eq 1 ]
  grep -q '"what":"shutdown"' "$BATS_TEST_TMPDIR/cat"
  for _ in $(seq 200); do pid_running "$VSYSFS_PID" || break; sleep 0.05; done
  ! pid_running "$VSYSFS_PID" || false
  ! mountpoint -q "$MNT" || false
}

@test "events_pipe: vsysfs-umount with a blocked reader returns (lazy), and a signal ends the reader" {
  own_mount -o clock=manual
  "$CTL" events --follow >/dev/null &
  f=$!; BG=$f
  blocked_in "$f" 0
  # Busy (the reader's file is open): detached lazily, at once.
  run timeout 20 "$SCRIPTS/vsysfs-umount" --lazy "$MNT"
  [ "$status" -eq 0 ]
  ! mountpoint -q "$MNT" || false
  # (A background job of a script ignores SIGINT: TERM, as Ctrl-C would.)
  kill -TERM "$f"
  st=0; wait_exit "$f" || st=$?
  [ "$st" -eq 143 ]
  ! kill -0 "$f" 2>/dev/null || false
  for _ in $(seq 200); do pid_running "$VSYSFS_PID" || break; sleep 0.05; done
  ! pid_running "$VSYSFS_PID" || false
}
