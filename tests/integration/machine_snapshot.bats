#!/usr/bin/env bats
# kernel/debug/vsysfs/machine/{snapshot,restore,diff} on a real mount
# (devices/machine/snapshot.hpp, docs/snapshot.md): the list and its
# bounds, a diff that lists exactly the changed paths, a restore of the
# default machine (every family), and a whole-machine restore with hotplug
# and timers on the test device.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
  vsysfs_start -o clock=manual
}

teardown_file() {
  vsysfs_stop
}

K() { echo "$MNT/kernel/debug/vsysfs/$1"; }
ETH0=devices/pci0000:00/0000:00:03.0/net/eth0

@test "snapshot: one line per snapshot with its simulated time; names and the bound" {
  echo 7 > "$(K clock/advance_ms)"
  echo first > "$(K machine/snapshot)"
  run -0 cat "$(K machine/snapshot)"
  [[ "$output" =~ ^first\ [0-9]+\ [0-9]+$ ]]
  now=$(cat "$(K clock/now_ns)")
  [ "$(cut -d' ' -f2 <<< "$output")" = "$now" ]
  [ "$(errno_of_write "$(K machine/snapshot)" now)" = EINVAL ]
  [ "$(errno_of_write "$(K machine/snapshot)" "a b")" = EINVAL ]
  [ "$(errno_of_write "$(K machine/snapshot)" "$(printf 'x%.0s' $(seq 65))")" = ENAMETOOLONG ]
  for i in $(seq 2 16); do echo "s$i" > "$(K machine/snapshot)"; done
  [ "$(errno_of_write "$(K machine/snapshot)" s17)" = ENOSPC ]
  [ "$(errno_of_write "$(K machine/snapshot)" first)" = 5 ]  # replacing is never ENOSPC
  [ "$(wc -l < "$(K machine/snapshot)")" = 16 ]
  [ "$(tail -n 1 "$(K machine/snapshot)" | cut -d' ' -f1)" = first ]
  [ "$(errno_of_write "$(K machine/restore)" nosuch)" = ENOENT ]
  grep -q '"what":"snapshot".*"name":"first"' "$(K events)"
}

# The first test fills the list (16): the later ones replace names it made.
@test "diff: exactly the changed paths, old and new values" {
  echo s2 > "$(K machine/snapshot)"
  echo "s2 now" > "$(K machine/diff)"
  [ -z "$(cat "$(K machine/diff)")" ]
  echo 9000 > "$MNT/class/net/eth0/mtu"
  echo 1 > "$MNT/kernel/mm/ksm/run"
  chmod 0600 "$MNT/class/net/eth0/mtu"  # a mode is not a value
  echo "s2 now" > "$(K machine/diff)"
  run -0 cat "$(K machine/diff)"
  [ "$output" = "$ETH0/mtu: 1500 -> 9000
kernel/mm/ksm/run: 0 -> 1" ]
  echo s3 > "$(K machine/snapshot)"
  echo "s3 s2" > "$(K machine/diff)"
  run -0 cat "$(K machine/diff)"
  [ "$output" = "$ETH0/mtu: 9000 -> 1500
kernel/mm/ksm/run: 1 -> 0" ]
  [ "$(errno_of_write "$(K machine/diff)" "s2")" = EINVAL ]
  [ "$(errno_of_write "$(K machine/diff)" "s2 nosuch")" = ENOENT ]
  [ "$(cat "$(K machine/diff)")" = "$output" ]  # a refused write keeps the last diff
  echo 1500 > "$MNT/class/net/eth0/mtu"
  echo 0 > "$MNT/kernel/mm/ksm/run"
  chmod 0644 "$MNT/class/net/eth0/mtu"
}

@test "the default machine restores: a change in every family, and every file reads back as before" {
  X=$MNT/devices/system/xen_memory/xen_memory0
  D=$MNT/devices/platform/dcdbas
  echo 1 > "$(K clock/advance_ms)"
  dump_tree > "$BATS_TEST_TMPDIR/before"
  echo s5 > "$(K machine/snapshot)"
  current=$(cat "$X/info/current_kb")

  echo 9000 > "$MNT/class/net/eth0/mtu"                             # net
  echo 0x1002 > "$MNT/class/net/eth1/flags"
  echo $(( $(cat "$X/target_kb") - 65536 )) > "$X/target_kb"        # xen: the worker runs
  echo 4096 > "$D/smi_data_buf_size"                                # dcdbas
  echo 1 > "$D/host_control_on_shutdown"
  echo "pages=10" > "$(K numa/alloc)"                               # numa
  echo 1 > "$MNT/kernel/mm/ksm/run"
  echo 7 > "$(K fail/smi/probability)"                              # a failure point
  chmod 0600 "$MNT/class/net/eth0/mtu"                              # a mode
  echo 2000 > "$(K clock/advance_ms)"
  [ "$(cat "$X/info/current_kb")" -lt "$current" ]                  # the balloon took pages

  echo s5 > "$(K machine/restore)"
  dump_tree > "$BATS_TEST_TMPDIR/after"
  diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
  run -0 events_matching restore machine
  [[ "$output" == *'"result":"OK"'* ]]
}

# --- restore on a machine whose every section keeps a state record --------
# (testdev.toml: the control plane, locks, the default NUMA topology, the
# clocksource and the test device, whose timer and hotplug are exercised).

# The test device's read counters count reads (the dumps' too): not state.
TESTDEV_COUNTERS=("devices/virtual/vsysfs_test/*/shows" "devices/virtual/vsysfs_test/*/stats/count")

@test "restore: every file, mode and owner as before, hotplug undone, the timer at the same instant" {
  vsysfs_stop
  VSYSFS=$VSYSFS_BUILD/vsysfs-test vsysfs_start -o clock=manual,machine="$BATS_TEST_DIRNAME/testdev.toml"
  T=$MNT/devices/virtual/vsysfs_test
  echo 3 > "$(K clock/advance_ms)"
  echo "add kept" > "$(K testdev/hotplug)"
  echo 300 > "$(K testdev/timer_ms)"          # pending at the snapshot: fires at 303 ms
  dump_tree "${TESTDEV_COUNTERS[@]}" > "$BATS_TEST_TMPDIR/before"
  echo base > "$(K machine/snapshot)"

  # A change of every kind the machine has.
  echo 5 > "$(K testdev/set)"
  echo 9 > "$T/testdev0/secret"
  printf xyz > "$T/testdev0/blob"
  echo "remove kept" > "$(K testdev/hotplug)"
  echo "add extra" > "$(K testdev/hotplug)"
  echo 0 > "$MNT/devices/system/cpu/cpu1/online"
  echo 1 > "$MNT/kernel/mm/ksm/run"
  echo 4 > "$MNT/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"
  echo "pages=10" > "$(K numa/alloc)"
  echo 7 > "$(K fail/smi/probability)"
  echo 3 > "$(K fail/seed)"
  echo hpet > "$MNT/devices/system/clocksource/clocksource0/current_clocksource"
  chmod 0600 "$T/testdev0/value"
  chown 1000:1000 "$T/testdev0/value"
  echo 500 > "$(K clock/advance_ms)"         # the timer fires
  [ "$(cat "$(K testdev/fired)")" = 1 ]
  echo 1000 > "$(K testdev/timer_ms)"         # armed after the snapshot

  echo "base now" > "$(K machine/diff)"
  run -0 cut -d: -f1 "$(K machine/diff)"
  echo "$output" >&2
  for p in devices/virtual/vsysfs_test/testdev0/value devices/virtual/vsysfs_test/testdev0/secret \
           devices/virtual/vsysfs_test/kept/value devices/virtual/vsysfs_test/extra/value \
           devices/system/cpu/cpu1/online kernel/mm/ksm/run kernel/debug/vsysfs/fail/smi/probability \
           kernel/debug/vsysfs/fail/seed kernel/debug/vsysfs/testdev/fired kernel/debug/vsysfs/clock/now_ns \
           devices/system/clocksource/clocksource0/current_clocksource; do
    grep -qx "$p" <<< "$output"
  done

  echo base > "$(K machine/restore)"
  dump_tree "${TESTDEV_COUNTERS[@]}" > "$BATS_TEST_TMPDIR/after"
  diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
  echo "base now" > "$(K machine/diff)"
  # testdev0's read counters count reads (the snapshot's too): not state.
  [ "$(grep -cv -e '/shows: ' -e '/stats/count: ' "$(K machine/diff)")" = 0 ]
  grep -q '"what":"restore","result":"OK"' "$(K events)"

  # The snapshot's timer, at the snapshot's deadline; the later one is gone.
  echo 299 > "$(K clock/advance_ms)"
  [ "$(cat "$(K testdev/fired)")" = 0 ]
  echo 1 > "$(K clock/advance_ms)"
  [ "$(cat "$(K testdev/fired)")" = 1 ]
  run -0 grep '"what":"timer","result":"fired"' "$(K events)"
  [[ "${lines[-1]}" == *'"time_ns":303000000,'* ]]
  echo 2000 > "$(K clock/advance_ms)"
  [ "$(cat "$(K testdev/fired)")" = 1 ]
}
