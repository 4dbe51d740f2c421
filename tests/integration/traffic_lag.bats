#!/usr/bin/env bats
# The traffic knob keeping up (devices/net/netdev_knobs.hpp): `achieved`,
# `lag_ns` and `max_lag_ns` in its show. With the manual clock a run is on
# schedule; with the real clock a rate the machine cannot simulate shows
# as lag instead of a silently lower rate.

load helpers

teardown() { vsysfs_stop; }

knob() { ctl "net/$1"; }
field() { awk -v k="$2" '$1 == k {print $2}' "$1"; }

@test "manual clock: a run on schedule achieves its rate with no lag" {
  vsysfs_start -o clock=manual
  echo "count 1000 rate 1000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  echo 2000 > "$(ctl clock/advance_ms)"
  T=$(knob eth0/traffic)
  [ "$(field "$T" state)" = stopped ]
  [ "$(field "$T" sent)" = 1000 ]
  [ "$(field "$T" achieved)" = 1000 ]
  [ "$(field "$T" lag_ns)" = 0 ]
  [ "$(field "$T" max_lag_ns)" = 0 ]
}

@test "real clock: asked for more than the machine can simulate, traffic reports the lag" {
  vsysfs_start
  T=$(knob lo/traffic)
  # 100 million frames/s on the loopback device: no wire limits it, the
  # simulation costs about a microsecond per frame.
  echo "count 0 size 64 rate 100000000" > "$T"
  echo start > "$T"
  sleep "${TRAFFIC_LAG_SECONDS:-0.5}"
  cat "$T" > "$BATS_TEST_TMPDIR/t"
  echo stop > "$T"
  cat "$BATS_TEST_TMPDIR/t"
  sent=$(field "$BATS_TEST_TMPDIR/t" sent)
  achieved=$(field "$BATS_TEST_TMPDIR/t" achieved)
  lag=$(field "$BATS_TEST_TMPDIR/t" lag_ns)
  [ "$sent" -gt 0 ]
  [ "$achieved" -gt 0 ]
  [ "$achieved" -lt 100000000 ]
  # Behind by more than a tenth of a second of its schedule, and growing.
  [ "$lag" -gt 100000000 ]
  [ "$(field "$BATS_TEST_TMPDIR/t" max_lag_ns)" -ge "$lag" ]
  # Stopped, the figures stay as they were at the stop.
  a1=$(field "$T" achieved); sleep 0.1
  [ "$(field "$T" achieved)" = "$a1" ]
}
