#!/usr/bin/env bats
# Content freshness alongside the kernel caching (docs/performance.md): vsysfs lets
# the kernel cache directory entries and attributes for an hour (fs/server.hpp
# kCacheTimeout) and invalidates them on every change; content is never
# cached (direct_io). These tests prime every cache first (stat, a read, a
# failed lookup), change the state from outside the reader (a knob, another
# process, hotplug), and read the new state at once through the kernel:
# no sleep, no retry, many times in a row so a late invalidation shows.

load helpers

IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
D=devices/virtual/vsysfs_test
N=40   # rounds per test: each is a chance for a stale cache to be seen

setup() {
  VSYSFS=$VSYSFS_BUILD/vsysfs-test vsysfs_start -o clock=manual,machine="$BATS_TEST_DIRNAME/testdev.toml"
  T=$MNT/$D/testdev0
}
teardown() { vsysfs_stop; }

# pread(FD, 4096, 0) on an inherited descriptor (shell tools cannot seek).
pread0() { perl -e 'open(my $f, "<&=", $ARGV[0]) or die; sysseek($f, 0, 0); sysread($f, my $b, 4096); print $b' "$1"; }

@test "text attribute: a knob change is read at once, by path and on a kept-open descriptor" {
  stat "$T/value" >/dev/null; cat "$T/value" >/dev/null   # entry, attributes cached
  exec 5< "$T/value"
  for i in $(seq $N); do
    echo "$((i * 7))" > "$(ctl testdev/set)"
    [ "$(cat "$T/value")" = "$((i * 7))" ]
    [ "$(cat "$MNT/class/vsysfs_test/testdev0/value")" = "$((i * 7))" ]   # through the link
    # pread at 0 on the descriptor opened before the change re-runs show().
    [ "$(pread0 5)" = "$((i * 7))" ]
  done
  exec 5<&-
  # The attribute cache holds what stat says; stat stays the sysfs answer.
  [ "$(stat -c %s "$T/value")" = 4096 ]
}

@test "text attribute: a store by one process is what the next reader sees" {
  for i in $(seq $N); do
    echo "$i" > "$T/value"
    [ "$(cat "$T/value")" = "$i" ]
  done
}

@test "binary attribute: bytes written by one process are read at once by another" {
  stat "$T/blob" >/dev/null
  for i in $(seq $N); do
    hex=$(printf '%02x%02x' "$i" "$((255 - i))")
    [ "$($IO writehex "$T/blob" "$hex" 10)" = 2 ]
    [ "$(od -An -tx1 -j10 -N2 "$T/blob" | tr -d ' ')" = "$hex" ]
  done
  [ "$(stat -c %s "$T/blob")" = 64 ]
}

@test "seq file: the events file shows an event the moment it is logged" {
  cat "$(ctl events)" >/dev/null; stat "$(ctl events)" >/dev/null
  for i in $(seq $N); do
    echo "$i" > "$T/value"          # logs testdev store
    [ "$(grep -c '"attr":"value"' "$(ctl events)")" = "$i" ]
  done
}

@test "hotplug: an added device and its symlink appear at once, a removed one disappears at once" {
  ls -l "$MNT/$D" "$MNT/class/vsysfs_test" >/dev/null
  for i in $(seq $N); do
    name=fresh$((i % 3))   # reuse names: cached negative and stale entries must all go
    # Prime: a failed lookup the kernel may remember (negative entry).
    ! stat "$MNT/$D/$name" 2>/dev/null
    ! stat "$MNT/class/vsysfs_test/$name" 2>/dev/null
    echo "add $name" > "$(ctl testdev/hotplug)"
    [ "$(readlink "$MNT/class/vsysfs_test/$name")" = "../../$D/$name" ]
    [ "$(cat "$MNT/class/vsysfs_test/$name/value")" = 0 ]
    [ "$(cat "$MNT/$D/$name/stats/count")" -ge 0 ]
    ls "$MNT/$D" | grep -qx "$name"
    ls "$MNT/class/vsysfs_test" | grep -qx "$name"
    # Prime the positive entries and attributes, then remove.
    stat "$MNT/$D/$name/value" "$MNT/class/vsysfs_test/$name" >/dev/null
    echo "remove $name" > "$(ctl testdev/hotplug)"
    ! stat "$MNT/$D/$name" 2>/dev/null
    ! stat "$MNT/$D/$name/value" 2>/dev/null
    ! readlink "$MNT/class/vsysfs_test/$name" 2>/dev/null
    ! ls "$MNT/$D" | grep -qx "$name"
    ! ls "$MNT/class/vsysfs_test" | grep -qx "$name"
  done
}

@test "hotplug: a re-added device is a new device with fresh state, not the old one" {
  echo "add again" > "$(ctl testdev/hotplug)"
  echo 55 > "$MNT/$D/again/value"
  [ "$(cat "$MNT/$D/again/value")" = 55 ]
  ino_before=$(stat -c %i "$MNT/$D/again/value")
  echo "remove again" > "$(ctl testdev/hotplug)"
  echo "add again" > "$(ctl testdev/hotplug)"
  [ "$(cat "$MNT/$D/again/value")" = 0 ]
  [ "$(stat -c %i "$MNT/$D/again/value")" != "$ino_before" ]
}

@test "chmod and chown are seen at once by stat and by the open check" {
  stat "$T/secret" >/dev/null
  chmod 0644 "$T/secret"
  [ "$(stat -c %a "$T/secret")" = 644 ]
  chmod 0400 "$T/secret"
  [ "$(stat -c %a "$T/secret")" = 400 ]
  [ "$($IO open "$T/secret" w)" = EACCES ]
  chown 1:1 "$T/secret"
  [ "$(stat -c %u:%g "$T/secret")" = 1:1 ]
}
