#!/usr/bin/env bats
# lib/vsysfs-bats.bash itself (docs/bats-library.md): cleanup whatever
# happens (the reaper), the event assertions failing when they should,
# and vsysfs_run_in_sys leaving the caller's /sys alone. Its everyday use
# is every other suite (helpers.bash builds on it) and example_user.bats.

LIB=$BATS_TEST_DIRNAME/../../lib/vsysfs-bats.bash
load ../../lib/vsysfs-bats

teardown() {
  vsysfs_unmount
}

# gone DIR PID: DIR is no mount (and removed), PID has exited (within 10 s).
gone() {
  for _ in $(seq 200); do
    ! mountpoint -q "$1" && ! _vsysfs_running "$2" && [ ! -d "$1" ] && return 0
    sleep 0.05
  done
  return 1
}

@test "a shell killed with SIGKILL still gets its mount torn down, its daemon stopped by PID" {
  bash -c 'source "$0"; vsysfs_mount -o clock=manual || exit 1
           echo "$VSYSFS_MNT $VSYSFS_PID" > "$1"; exec sleep 60' "$LIB" "$BATS_TEST_TMPDIR/m" &
  sh_pid=$!
  for _ in $(seq 200); do [ -s "$BATS_TEST_TMPDIR/m" ] && break; sleep 0.05; done
  read -r mnt pid < "$BATS_TEST_TMPDIR/m"
  mountpoint -q "$mnt"
  _vsysfs_running "$pid"
  kill -KILL "$sh_pid"
  gone "$mnt" "$pid"
}

@test "a mount made in a subshell lives as long as the subshell" {
  out=$(vsysfs_mount -o clock=manual; echo "$VSYSFS_MNT $VSYSFS_PID")
  read -r mnt pid <<<"$out"
  gone "$mnt" "$pid"
}

@test "vsysfs_unmount stops the daemon at once and ends the reaper" {
  vsysfs_mount -o clock=manual
  mnt=$VSYSFS_MNT pid=$VSYSFS_PID reaper=${_VSYSFS_REAPER%% *}
  kill -0 "$reaper"
  vsysfs_unmount
  ! mountpoint -q "$mnt" || false
  ! _vsysfs_running "$pid" || false
  [ -z "${VSYSFS_MNT:-}" ]
  for _ in $(seq 200); do kill -0 "$reaper" 2>/dev/null || break; sleep 0.05; done
  ! kill -0 "$reaper" 2>/dev/null || false
}

@test "assert and refute fail when they should, and name what they looked for" {
  vsysfs_mount -o clock=manual
  vsysfs_mark
  run vsysfs_assert_event --what advance
  [ "$status" -eq 1 ]
  [[ "$output" == *"no event matching: --what advance"* ]]
  vsysfs_advance 10ms
  vsysfs_assert_event --what advance
  run vsysfs_refute_event --what advance
  [ "$status" -eq 1 ]
  [[ "$output" == *'"ms":10'* ]]
  # After a new mark the old event no longer counts.
  vsysfs_mark
  vsysfs_refute_event --what advance
  run vsysfs_wait_event --what advance --timeout 0.2s
  [ "$status" -eq 1 ]
}

@test "vsysfs_run_in_sys: the command sees the mount at /sys; the caller's /sys is untouched" {
  vsysfs_mount -o clock=manual
  run vsysfs_run_in_sys cat /sys/kernel/debug/vsysfs/pid
  [ "$status" -eq 0 ]
  [ "$output" = "$VSYSFS_PID" ]
  [ ! -e /sys/kernel/debug/vsysfs ]
}

@test "vsysfs_snapshot and vsysfs_restore: each test can start from the same machine" {
  vsysfs_mount -o "clock=manual,machine=$BATS_TEST_DIRNAME/../../machines/numa-4node.toml"
  local online=$VSYSFS_MNT/devices/system/cpu/cpu2/online
  vsysfs_snapshot clean
  echo 0 > "$online"
  vsysfs_advance 5s
  vsysfs_restore clean
  [ "$(cat "$online")" = 1 ]
  [ "$(cat "$VSYSFS_MNT/kernel/debug/vsysfs/clock/now_ns")" = 0 ]
  run vsysfs_restore nosuch
  [ "$status" -eq 1 ]
}
