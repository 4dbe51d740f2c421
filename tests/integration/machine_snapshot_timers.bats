#!/usr/bin/env bats
# Timers of different sections due at the same simulated instant, across
# a machine snapshot restore (docs/snapshot.md "Device state"): the clock
# runs ties in arming order, and a restore gives every pending timer back
# its place in that order (core::TimerState::order), whichever section
# re-arms it first. Here the Xen balloon's worker (devices/xen/xen_state.cpp)
# and the test device's timer (tests/testdev) are both due at 2 s.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
  MACHINE=$BATS_FILE_TMPDIR/xt.toml
  cat > "$MACHINE" <<'EOT'
[machine]
name = "xen and the test device"

[xen]
host_memory = "8G"
memory = "2G"
max_memory = "3G"
used = "256M"

[testdev]
value = 7
EOT
  VSYSFS=$VSYSFS_BUILD/vsysfs-test vsysfs_start -o clock=manual,machine="$MACHINE"
  echo fresh > "$(ctl machine/snapshot)"
}

teardown_file() {
  vsysfs_stop
}

setup() {
  echo fresh > "$(ctl machine/restore)"
  X=$MNT/devices/system/xen_memory/xen_memory0
}

# The balloon's worker fails a populate at 0 and re-arms its retry for 2 s.
arm_xen() {
  echo 1 > "$(ctl xen/populate_fail)"
  echo 3145728 > "$X/target_kb"
  echo 1 > "$(ctl clock/advance_ms)"
  [ "$(cat "$(ctl xen/guest/state)")" = EAGAIN ]
}

# The test device's timer, due at 2 s.
arm_testdev() {
  local now_ms=$(( $(cat "$(ctl clock/now_ns)") / 1000000 ))
  echo $((2000 - now_ms)) > "$(ctl testdev/timer_ms)"
  [ "$(cat "$(ctl testdev/timer_ms)")" = 2000000000 ]
}

# Advances past 2 s and prints the device and what of each event logged
# at 2 s by the two timers (the balloon's steps, the test device's timer).
fire_at_2s() {
  local from; from=$(tail -n 1 "$(ctl events)" | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p')
  echo 2000 > "$(ctl clock/advance_ms)"
  python3 - "$(ctl events)" "$from" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["seq"] <= int(sys.argv[2]) or e["time_ns"] != 2000000000:
        continue
    if e["device"] in ("xen_balloon", "testdev"):
        print(e["device"], e["what"], e["result"])
PY
}

@test "ties across sections: armed xen then testdev, they fire in that order again after a restore" {
  arm_xen
  arm_testdev
  echo tie > "$(ctl machine/snapshot)"
  run -0 fire_at_2s
  first=$output
  [ "${lines[0]}" = "xen_balloon step DONE" ]
  [ "${lines[-1]}" = "testdev timer fired" ]
  echo tie > "$(ctl machine/restore)"
  [ "$(cat "$(ctl clock/now_ns)")" = 1000000 ]
  run -0 fire_at_2s
  [ "$output" = "$first" ]
  # And again from a restore of a restore (the orders the first restore
  # gave back are what the next snapshot keeps).
  echo tie > "$(ctl machine/restore)"
  echo tie2 > "$(ctl machine/snapshot)"
  echo tie2 > "$(ctl machine/restore)"
  run -0 fire_at_2s
  [ "$output" = "$first" ]
}

@test "ties across sections: armed testdev then xen, they fire in that order again after a restore" {
  arm_testdev
  arm_xen
  echo tie > "$(ctl machine/snapshot)"
  run -0 fire_at_2s
  first=$output
  [ "${lines[0]}" = "testdev timer fired" ]
  [ "${lines[1]}" = "xen_balloon step DONE" ]
  echo tie > "$(ctl machine/restore)"
  run -0 fire_at_2s
  [ "$output" = "$first" ]
}
