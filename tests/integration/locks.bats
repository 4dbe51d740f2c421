#!/usr/bin/env bats
# The daemon's lock service (core/lock_service.hpp; docs/design.md section 9): flock on a
# vsysfs file is granted through a priority-inheritance rt-mutex
# (docs/kernel-semantics.md section 7); MOUNT/kernel/debug/vsysfs/locks
# shows the contended locks (format in devices/machine/lock_debug.hpp).

load helpers

IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
D=devices/virtual/vsysfs_test/testdev0

setup() {
  VSYSFS=$VSYSFS_BUILD/vsysfs-test vsysfs_start -o machine="$BATS_TEST_DIRNAME/testdev.toml"
  T=$MNT/$D
  LOCKS=$(ctl locks)
  # Absolute nice levels whatever nice level the suite runs at (as root).
  NICE0=$((0 - $(nice)))
  NICE19=$((19 - $(nice)))
}

teardown() {
  for p in ${PIDS:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  vsysfs_stop
}

# Waits (bounded) until file $1 contains $2.
wait_for() {
  # 20 s: a nice 19 holder can be starved for seconds on a loaded 2-core machine.
  for _ in $(seq 800); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.025; done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2 2>/dev/null || true
  return 1
}

# The data pids of the lock events named $1, in log order.
event_pids() {
  events_matching "$1" locks | grep -o '"data":{[^}]*}' | grep -o '"pid":[0-9]*' | cut -d: -f2
}

hold() {  # hold NICE_INCREMENT: a LOCK_EX holder for a minute; sets $holder
  out=$BATS_TEST_TMPDIR/holder
  nice -n "$1" "$IO" flock "$T/value" ex 60000 > "$out" &
  holder=$!
  PIDS="${PIDS:-} $holder"
  wait_for "$out" OK
}

@test "locks: 0400, root:root, empty while nothing is contended" {
  [ "$(stat -c '%a %U:%G' "$LOCKS")" = "400 root:root" ]
  [ "$($IO open "$LOCKS" w)" = EACCES ]
  [ -z "$(cat "$LOCKS")" ]
  [ "$($IO flock "$T/value" ex 200)" = OK ]
  [ -z "$(cat "$LOCKS")" ]
}

@test "a nice 19 holder is boosted to its chrt -f 10 waiter; the rt waiter gets the lock first" {
  chrt -f 10 true 2>/dev/null || skip "SCHED_FIFO not permitted here"
  hold "$NICE19"
  nice -n "$NICE0" "$IO" flock "$T/value" ex > "$BATS_TEST_TMPDIR/normal" &
  normal=$!
  PIDS="$PIDS $normal"
  wait_for "$LOCKS" "waiter pid=$normal "
  grep -q "owner  pid=$holder comm=sysfs-io normal_prio=139 prio=120 has_waiters=1 pending=0 role=exclusive" "$LOCKS"

  chrt -f 10 "$IO" flock "$T/value" ex > "$BATS_TEST_TMPDIR/rt" &
  rt=$!
  PIDS="$PIDS $rt"
  wait_for "$LOCKS" "waiter pid=$rt "
  cat "$LOCKS"
  [ "$(head -1 "$LOCKS")" = "$D/value flock" ]
  # The holder runs at the real-time waiter's priority: 99 - 10.
  grep -q "owner  pid=$holder comm=sysfs-io normal_prio=139 prio=89 has_waiters=1 pending=0 role=exclusive" "$LOCKS"
  # Waiters in priority order.
  run grep -o 'waiter pid=[0-9]* comm=[^ ]* prio=[0-9]*' "$LOCKS"
  [ "${lines[0]}" = "waiter pid=$rt comm=sysfs-io prio=89" ]
  [ "${lines[1]}" = "waiter pid=$normal comm=sysfs-io prio=120" ]
  [ "${#lines[@]}" -eq 2 ]
  events_matching boost locks | grep "\"pid\":$holder," | grep -q '"new_prio":89'

  # The holder dies (its file is closed): hand-over to the top waiter.
  kill "$holder"
  wait "$rt"
  wait "$normal"
  [ "$(cat "$BATS_TEST_TMPDIR/rt")" = OK ]
  [ "$(cat "$BATS_TEST_TMPDIR/normal")" = OK ]
  run event_pids granted
  [ "${lines[0]}" = "$rt" ]
  [ "${lines[1]}" = "$normal" ]
  run event_pids handover
  [ "${lines[0]}" = "$rt" ]
  [ "${lines[1]}" = "$normal" ]
  [ -z "$(cat "$LOCKS")" ]
}

@test "flock(1) as the holder: nice -n 19 flock FILE sleep; waiters are served in priority order" {
  chrt -f 10 true 2>/dev/null || skip "SCHED_FIFO not permitted here"
  nice -n "$NICE19" flock -x "$T/value" sleep 5 &
  holder=$!
  PIDS="$PIDS $holder"
  for _ in $(seq 200); do events_matching acquired locks >/dev/null && break; sleep 0.025; done
  nice -n "$NICE0" flock -x "$T/value" true &
  normal=$!
  wait_for "$LOCKS" "waiter pid=$normal "
  chrt -f 10 flock -x "$T/value" true &
  rt=$!
  wait_for "$LOCKS" "waiter pid=$rt "
  grep -q "owner  pid=$holder comm=flock normal_prio=139 prio=89 " "$LOCKS"
  run grep -o 'waiter pid=[0-9]* comm=[^ ]* prio=[0-9]*' "$LOCKS"
  [ "${lines[0]}" = "waiter pid=$rt comm=flock prio=89" ]
  [ "${lines[1]}" = "waiter pid=$normal comm=flock prio=120" ]
  wait "$holder" "$rt" "$normal"
  run event_pids granted
  [ "${lines[0]}" = "$rt" ]
  [ "${lines[1]}" = "$normal" ]
}

@test "Ctrl-C (SIGINT) of a waiting flock returns promptly, leaves the queue and deboosts the holder" {
  chrt -f 10 true 2>/dev/null || skip "SCHED_FIFO not permitted here"
  hold "$NICE19"
  nice -n "$NICE0" "$IO" flock "$T/value" ex > "$BATS_TEST_TMPDIR/normal" &
  normal=$!
  PIDS="$PIDS $normal"
  wait_for "$LOCKS" "waiter pid=$normal "
  start=$(date +%s%N)
  timeout -s INT 2 chrt -f 10 flock -x "$T/value" true &
  waiter=$!
  wait_for "$LOCKS" "prio=89 has_waiters=1"
  grep -q 'waiter pid=[0-9]* comm=flock prio=89' "$LOCKS"
  status=0
  wait "$waiter" || status=$?
  elapsed_ms=$((($(date +%s%N) - start) / 1000000))
  [ "$status" -eq 124 ]                # timeout: the command was interrupted
  [ "$elapsed_ms" -lt 3500 ]           # SIGINT after 2 s ended the wait at once
  # Out of the queue; the holder back at the remaining waiter's priority.
  wait_for "$LOCKS" "prio=120 has_waiters=1"
  ! grep -q 'comm=flock' "$LOCKS"
  run grep -c '^  waiter' "$LOCKS"
  [ "$output" = 1 ]
  events_matching interrupted locks | grep -q '"comm":"flock"'
  events_matching deboost locks | grep "\"pid\":$holder," | grep -q '"new_prio":120'
  # The nice 0 waiter alone gets the lock when the holder goes.
  kill "$holder"
  wait "$normal"
  [ "$(cat "$BATS_TEST_TMPDIR/normal")" = OK ]
  [ -z "$(cat "$LOCKS")" ]
  ! ps -eo stat,comm | grep -E '^D' | grep -q flock
}

@test "shared flocks coexist; a waiting writer drains them and is shown as draining" {
  "$IO" flock "$T/value" sh 60000 > "$BATS_TEST_TMPDIR/r1" &
  r1=$!
  PIDS="$PIDS $r1"
  wait_for "$BATS_TEST_TMPDIR/r1" OK
  [ "$($IO flock "$T/value" sh nb)" = OK ]
  "$IO" flock "$T/value" ex > "$BATS_TEST_TMPDIR/w" &
  w=$!
  PIDS="$PIDS $w"
  wait_for "$LOCKS" "role=draining"
  grep -q "owner  pid=$w comm=sysfs-io .* role=draining" "$LOCKS"
  grep -q "holder pid=$r1 comm=sysfs-io prio=[0-9]* type=shared" "$LOCKS"
  # A reader behind a waiting writer does not get in (LOCK_NB: EWOULDBLOCK).
  [ "$($IO flock "$T/value" sh nb)" = EAGAIN ]
  kill "$r1"
  wait "$w"
  [ "$(cat "$BATS_TEST_TMPDIR/w")" = OK ]
  [ -z "$(cat "$LOCKS")" ]
}

@test "POSIX: a whole-file write lock (lockf) is boosted to its chrt -f 10 waiter" {
  command -v python3 >/dev/null || skip "python3 needed for fcntl locks"
  chrt -f 10 true 2>/dev/null || skip "SCHED_FIFO not permitted here"
  lock_py='import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("OK", flush=True)
time.sleep(float(sys.argv[2]))'
  nice -n "$NICE19" python3 -c "$lock_py" "$T/value" 60 > "$BATS_TEST_TMPDIR/holder" &
  holder=$!
  PIDS="$PIDS $holder"
  wait_for "$BATS_TEST_TMPDIR/holder" OK
  chrt -f 10 python3 -c "$lock_py" "$T/value" 0 > "$BATS_TEST_TMPDIR/rt" &
  rt=$!
  PIDS="$PIDS $rt"
  wait_for "$LOCKS" "waiter pid=$rt "
  [ "$(head -1 "$LOCKS")" = "$D/value posix" ]
  grep -q "owner  pid=$holder comm=python3 normal_prio=139 prio=89 has_waiters=1 pending=0 role=exclusive" "$LOCKS"
  grep -q "waiter pid=$rt comm=python3 prio=89 type=exclusive" "$LOCKS"
  kill "$holder"
  wait "$rt"
  [ "$(cat "$BATS_TEST_TMPDIR/rt")" = OK ]
  [ -z "$(cat "$LOCKS")" ]
}

@test "POSIX: F_SETLKW that closes a cycle of whole-file write locks gets EDEADLK" {
  command -v python3 >/dev/null || skip "python3 needed for fcntl locks"
  run timeout 20 python3 - "$T/value" "$T/secret" "$LOCKS" <<'PY'
import errno, fcntl, os, sys, time
value, secret, locks = sys.argv[1:4]
fv = os.open(value, os.O_RDWR)
fcntl.lockf(fv, fcntl.LOCK_EX)                 # the parent holds value
r, w = os.pipe()
child = os.fork()
if child == 0:
    fs = os.open(secret, os.O_RDWR)
    fcntl.lockf(fs, fcntl.LOCK_EX)             # the child holds secret
    os.write(w, b"x")
    for _ in range(400):                       # until the parent waits for secret
        if "waiter pid=%d " % os.getppid() in open(locks).read():
            break
        time.sleep(0.025)
    fv2 = os.open(value, os.O_RDWR)
    try:
        fcntl.lockf(fv2, fcntl.LOCK_EX)
        print("child OK", flush=True)
    except OSError as e:
        # errorcode[35] is spelled EDEADLOCK (an alias) by Python.
        name = "EDEADLK" if e.errno == errno.EDEADLK else errno.errorcode[e.errno]
        print("child", name, flush=True)
    os._exit(0)
os.read(r, 1)
fs = os.open(secret, os.O_RDWR)
fcntl.lockf(fs, fcntl.LOCK_EX)                 # granted when the child exits
os.waitpid(child, 0)
print("parent OK", flush=True)
PY
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "child EDEADLK" ]
  [ "${lines[1]}" = "parent OK" ]
  events_matching deadlock locks | grep -q EDEADLK
}
