#!/usr/bin/env bats
# kernel/debug/vsysfs/machine/{snapshot,restore,diff} on a real mount
# (devices/machine/snapshot.hpp, docs/snapshot.md): the list and its
# bounds, a diff that lists exactly the changed paths, and restore's
# refusal, which changes nothing, on a machine whose sections keep no
# state record yet.

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

@test "restore refuses (EOPNOTSUPP) a machine whose sections keep no state record, and changes nothing" {
  echo s4 > "$(K machine/snapshot)"
  echo 9000 > "$MNT/class/net/eth0/mtu"
  echo 5 > "$(K clock/advance_ms)"
  before=$(cat "$(K clock/now_ns)")
  [ "$(errno_of_write "$(K machine/restore)" s4)" = EOPNOTSUPP ]
  [ "$(cat "$MNT/class/net/eth0/mtu")" = 9000 ]
  [ "$(cat "$(K clock/now_ns)")" = "$before" ]
  run -0 events_matching restore machine
  [[ "$output" == *'"result":"EOPNOTSUPP"'*'"unsupported":"'*numa* ]]
  echo 1500 > "$MNT/class/net/eth0/mtu"
}
