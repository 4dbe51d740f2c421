#!/usr/bin/env bats
# store/show delay_ms against a real mount (docs/fault-injection.md section
# 3.11): with the manual clock a delayed request waits until the clock is
# advanced past its deadline; an interrupt ends the wait with EINTR, and a
# daemon that stops ends it with ENODEV instead of hanging. Every wait has
# a timeout; no test waits on the real clock for the delay itself.

load helpers

setup() {
  BGS=()
  IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
  vsysfs_start -o clock=manual
  MTU=$MNT/class/net/eth0/mtu
  echo '*/net/eth0/mtu' > "$(fail store/paths)"
  echo '*/net/eth0/mtu' > "$(fail show/paths)"
}
teardown() {
  local p
  for p in ${BG:-} "${BGS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  vsysfs_stop
}

fail() { ctl "fail/$1"; }
advance() { echo "$1" > "$(ctl clock/advance_ms)"; }
# Waits (bounded) until N delayed requests have started.
wait_delays() {
  timeout 10 bash -c "until [ \"\$(grep -c '\"what\":\"delay\",\"result\":\"start\"' '$(ctl events)')\" -ge $1 ]; do sleep 0.02; done"
}
pending() { kill -0 "$BG" 2>/dev/null; }

@test "store delay_ms 500: the write completes only when the clock passes the deadline" {
  echo 500 > "$(fail store/delay_ms)"
  echo 100 > "$(fail store/probability)"
  timeout 20 "$IO" write "$MTU" 1400 > "$BATS_TEST_TMPDIR/out" &
  BG=$!
  wait_delays 1
  advance 499
  pending
  [ "$(cat "$MTU")" = 1500 ]   # the device has not seen the store yet
  advance 1
  wait "$BG"
  BG=
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = 4 ]
  [ "$(cat "$MTU")" = 1400 ]
  [ "$(cat "$(fail store/injected)")" = 1 ]
  [[ $(grep '"what":"delay"' "$(ctl events)" | tail -1) == *'"result":"done"'* ]]
  # times was 1: the next store is not delayed.
  [ "$("$IO" write "$MTU" 1300)" = 4 ]
  [ "$(errno_of_write "$(fail store/delay_ms)" 4294967296)" = ERANGE ]
  [ "$(cat "$(fail store/delay_ms)")" = 500 ]
}

@test "show delay_ms: the read waits for the clock, then returns the value" {
  echo 1000 > "$(fail show/delay_ms)"
  echo 100 > "$(fail show/probability)"
  timeout 20 cat "$MTU" > "$BATS_TEST_TMPDIR/out" &
  BG=$!
  wait_delays 1
  advance 999
  pending
  advance 1
  wait "$BG"
  BG=
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = 1500 ]
}

@test "delay: an interrupted writer ends with EINTR, nothing changed" {
  echo 500 > "$(fail store/delay_ms)"
  echo 100 > "$(fail store/probability)"
  "$IO" write "$MTU" 1400 &
  BG=$!
  wait_delays 1
  kill -TERM "$BG"
  timeout 10 bash -c "while kill -0 $BG 2>/dev/null; do sleep 0.02; done"
  BG=
  timeout 10 bash -c "until grep -q '\"what\":\"delay\",\"result\":\"EINTR\"' '$(ctl events)'; do sleep 0.02; done"
  advance 1000
  [ "$(cat "$MTU")" = 1500 ]
}

@test "delay: stopping the daemon with a delayed write pending ends it (ENODEV), no hang" {
  echo 100000 > "$(fail store/delay_ms)"
  echo 100 > "$(fail store/probability)"
  timeout 20 "$IO" write "$MTU" 1400 > "$BATS_TEST_TMPDIR/out" &
  BG=$!
  wait_delays 1
  kill -TERM "$VSYSFS_PID"
  export -f pid_running
  timeout 10 bash -c "while pid_running $VSYSFS_PID; do sleep 0.05; done"
  run wait "$BG"
  BG=
  [ "$status" -ne 124 ]        # not killed by timeout: the daemon answered
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = ENODEV ]
  if pid_running "$VSYSFS_PID"; then return 1; fi
}

@test "delay: at most 16 requests wait at once; the 17th runs at once" {
  # Reads: the kernel serialises writes to one file (the inode lock), but
  # not reads through separate descriptors, so 16 can wait together.
  echo 100000 > "$(fail show/delay_ms)"
  echo -1 > "$(fail show/times)"
  echo 100 > "$(fail show/probability)"
  for i in $(seq 16); do
    timeout 20 cat "$MTU" > "$BATS_TEST_TMPDIR/out.$i" &
    BGS+=($!)
  done
  wait_delays 16
  [ "$(timeout 10 cat "$MTU")" = 1500 ]
  grep -q '"what":"delay","result":"overflow"' "$(ctl events)"
  advance 100000
  for p in "${BGS[@]}"; do wait "$p"; done
  BGS=()
  for i in $(seq 16); do [ "$(cat "$BATS_TEST_TMPDIR/out.$i")" = 1500 ]; done
  [ "$(grep -c '"what":"delay","result":"done"' "$(ctl events)")" = 16 ]
}
