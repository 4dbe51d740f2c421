#!/usr/bin/env bats
# The example suite of docs/bats-library.md: how a user tests their own
# tool against a simulated machine with lib/vsysfs-bats.bash. It loads the
# library exactly as a user's suite does (not through helpers.bash).
# Installed, the load line is: load /usr/share/vsysfs/vsysfs-bats

load ../../lib/vsysfs-bats

# One machine for the whole file, manual clock: time moves only when the
# test says so.
setup_file() {
  vsysfs_mount -o clock=manual
}

teardown_file() {
  vsysfs_unmount
}

# Each test looks only at the events that happen after its start.
setup() {
  vsysfs_mark
}

@test "a tool that sets the MTU: the driver accepted it, and no store was refused" {
  echo 9000 > "$VSYSFS_MNT/class/net/eth0/mtu"      # stands for: my-tool --mtu 9000 eth0
  [ "$(cat "$VSYSFS_MNT/class/net/eth0/mtu")" = 9000 ]
  vsysfs_assert_event --device eth0 --what store --result OK
  vsysfs_refute_event --device eth0 --what store --result EINVAL
}

@test "an MTU above the device's maximum is refused with the kernel's EINVAL" {
  ! echo 9217 2>/dev/null > "$VSYSFS_MNT/class/net/eth0/mtu" || false
  vsysfs_assert_event --device eth0 --what store --result EINVAL
}

@test "the balloon reaches its target only when simulated time passes" {
  x=$VSYSFS_MNT/devices/system/xen_memory/xen_memory0
  echo 15G > "$x/target"
  [ "$(cat "$x/info/current_kb")" = 16777216 ]       # nothing moved yet: no time passed
  vsysfs_advance 1s
  [ "$(cat "$x/info/current_kb")" = 15728640 ]
}

@test "waiting for an event a background job causes, without sleeping" {
  # Mark first, then start the job, then wait --since the mark: an event
  # that comes before the wait starts still counts.
  vsysfs_mark
  ( echo 1500 > "$VSYSFS_MNT/class/net/eth0/mtu" ) &
  run vsysfs_wait_event --since "$VSYSFS_MARK" --device eth0 --what store --timeout 10s
  [ "$status" -eq 0 ]
  [[ "$output" == *'"value":1500'* ]]
  wait
}

@test "a tool that reads /sys itself runs with the mount bound over /sys" {
  command -v numactl >/dev/null || skip "numactl is not installed"
  run vsysfs_run_in_sys numactl --hardware
  [ "$status" -eq 0 ]
  # The simulated machine's one node (dom0 of the default machine), not
  # the host's own node 0: its 8 CPUs and the size its meminfo gives (the
  # balloon test above moved it).
  local mb; mb=$(awk '$3 == "MemTotal:" { print int($4 / 1024) }' "$VSYSFS_MNT/devices/system/node/node0/meminfo")
  [[ "$output" == *"node 0 cpus: 0 1 2 3 4 5 6 7"* ]]
  [[ "$output" == *"node 0 size: $mb MB"* ]]
  # Only inside: our own /sys is not the mount.
  [ "$(awk '$5 == "/sys" { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' /proc/self/mountinfo)" = sysfs ]
}
