#!/usr/bin/env bats
# The lock failure point against a real mount (docs/fault-injection.md
# section 3.12): with the manual clock, a blocking flock(1) the point picks
# waits until the clock is advanced past delay_ms; flock -n is never
# delayed; a waiter killed while delayed leaves no lock behind; a daemon
# stopped with a delayed request exits. Every wait has a timeout; no test
# waits on the real clock for the delay itself.

load helpers

setup() {
  command -v flock >/dev/null || skip "flock (util-linux) not installed"
  BG=
  vsysfs_start -o clock=manual
  F=$MNT/class/net/eth0/mtu
}
teardown() {
  [ -z "${BG:-}" ] || kill -KILL "$BG" 2>/dev/null || true
  vsysfs_stop
}

fail() { ctl "fail/lock/$1"; }
advance() { echo "$1" > "$(ctl clock/advance_ms)"; }
# Waits (bounded) until N lock requests are held back.
wait_delays() {
  timeout 10 bash -c "until [ \"\$(grep '\"device\":\"locks\"' '$(ctl events)' | grep -c '\"what\":\"delay\",\"result\":\"start\"')\" -ge $1 ]; do sleep 0.02; done"
}
pending() { kill -0 "$BG" 2>/dev/null; }

@test "lock: flock waits until the manual clock passes delay_ms, then holds the lock" {
  [ "$(cat "$(fail delay_ms)")" = 100 ]
  [ -e "$(fail probability)" ] && [ ! -e "$(fail errno)" ] && [ ! -e "$(fail paths)" ]
  echo 250 > "$(fail delay_ms)"
  echo 100 > "$(fail probability)"
  timeout 20 flock -x "$F" -c "echo granted" > "$BATS_TEST_TMPDIR/out" &
  BG=$!
  wait_delays 1
  advance 249
  pending
  [ ! -s "$BATS_TEST_TMPDIR/out" ]
  advance 1
  wait "$BG"
  BG=
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = granted ]
  [ "$(cat "$(fail injected)")" = 1 ]
  # The decision's event names the caller; the delay's too.
  events_matching fail fault_inject | grep -q '"comm":"flock".*"name":"lock"'
  events_matching delay locks | grep -q '"result":"start".*"comm":"flock".*"delay_ms":250'
  events_matching delay locks | grep -q '"result":"done"'
  # times was 1: the next flock is granted at once.
  timeout 10 flock -x "$F" true
}

@test "lock: flock -n is never delayed (a non-blocking request does not sleep)" {
  echo -1 > "$(fail times)"
  echo 100 > "$(fail probability)"
  timeout 10 flock -n -x "$F" true
  timeout 10 flock -n -s "$F" true
  [ "$(cat "$(fail injected)")" = 0 ]
  [ "$(errno_of_write "$(fail delay_ms)" 0)" = EINVAL ]
  [ "$(errno_of_write "$(fail delay_ms)" 4294967296)" = ERANGE ]
  [ "$(cat "$(fail delay_ms)")" = 100 ]
}

@test "lock: a waiter killed while delayed gets EINTR and leaks no lock" {
  echo 100000 > "$(fail delay_ms)"
  echo 100 > "$(fail probability)"
  flock -x "$F" sleep 100 &
  BG=$!
  wait_delays 1
  kill -TERM "$BG"
  timeout 10 bash -c "while kill -0 $BG 2>/dev/null; do sleep 0.02; done"
  BG=
  timeout 10 bash -c "until grep '\"device\":\"locks\"' '$(ctl events)' | grep -q '\"what\":\"interrupted\",\"result\":\"EINTR\"'; do sleep 0.02; done"
  advance 100000
  # Nothing was granted to the dead waiter: the lock is free.
  timeout 10 flock -n -x "$F" true
  # The only grant in the log is that last flock -n's.
  [ "$(events_matching acquired locks | wc -l)" = 1 ]
  [ "$(events_matching granted locks | wc -l)" = 0 ]
}

@test "lock: stopping the daemon with a delayed flock pending does not hang" {
  echo 100000 > "$(fail delay_ms)"
  echo 100 > "$(fail probability)"
  timeout 20 flock -x "$F" true &
  BG=$!
  wait_delays 1
  kill -TERM "$VSYSFS_PID"
  export -f pid_running
  timeout 10 bash -c "while pid_running $VSYSFS_PID; do sleep 0.05; done"
  run wait "$BG"
  BG=
  [ "$status" -ne 124 ]   # not killed by timeout: the request ended with the session
  if pid_running "$VSYSFS_PID"; then return 1; fi
}
