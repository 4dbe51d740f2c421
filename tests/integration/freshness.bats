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
    ! stat "$MNT/$D/$name" 2>/dev/null || false
    ! stat "$MNT/class/vsysfs_test/$name" 2>/dev/null || false
    echo "add $name" > "$(ctl testdev/hotplug)"
    [ "$(readlink "$MNT/class/vsysfs_test/$name")" = "../../$D/$name" ]
    [ "$(cat "$MNT/class/vsysfs_test/$name/value")" = 0 ]
    [ "$(cat "$MNT/$D/$name/stats/count")" -ge 0 ]
    # shellcheck disable=SC2010  # the readdir listing is what is tested
    ls "$MNT/$D" | grep -qx "$name"
    # shellcheck disable=SC2010  # the readdir listing is what is tested
    ls "$MNT/class/vsysfs_test" | grep -qx "$name"
    # Prime the positive entries and attributes, then remove.
    stat "$MNT/$D/$name/value" "$MNT/class/vsysfs_test/$name" >/dev/null
    echo "remove $name" > "$(ctl testdev/hotplug)"
    ! stat "$MNT/$D/$name" 2>/dev/null || false
    ! stat "$MNT/$D/$name/value" 2>/dev/null || false
    ! readlink "$MNT/class/vsysfs_test/$name" 2>/dev/null || false
    # shellcheck disable=SC2010  # the readdir listing is what is tested
    ! ls "$MNT/$D" | grep -qx "$name" || false
    # shellcheck disable=SC2010  # the readdir listing is what is tested
    ! ls "$MNT/class/vsysfs_test" | grep -qx "$name" || false
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

# meminfo keeps its formatted text while its numbers stay the same
# (devices/numa/numa_node.hpp): every input of it changes here, between two
# reads by path and on a descriptor kept open.
@test "meminfo: a change of any of its numbers is read at once (each page kind, free, hugepages, memory offline)" {
  MI=$MNT/devices/system/node/node0/meminfo
  # "Node 0 MemFree:   N kB": the label is field 3, the number field 4.
  val() { awk -v k="$1" '$3 == k {print $4}'; }
  exec 5< "$MI"
  both() {  # LABEL: the value by path and on fd 5, which must agree
    local a b
    a=$(val "$1" < "$MI"); b=$(pread0 5 | val "$1")
    [ "$a" = "$b" ] || { echo "path $a, descriptor $b for $1" >&2; return 1; }
    echo "$a"
  }
  declare -A FIELD=([anon]=AnonPages: [file]=FilePages: [shmem]=Shmem: [slab_reclaimable]=SReclaimable:
    [slab_unreclaimable]=SUnreclaim: [pagetables]=PageTables: [kernel_stack]=KernelStack:)
  for kind in "${!FIELD[@]}"; do
    f=${FIELD[$kind]}
    free0=$(both MemFree:); used0=$(both "$f")
    echo "pages=256 kind=$kind" > "$(ctl numa/alloc)"
    [ "$(both MemFree:)" = $((free0 - 1024)) ]
    [ "$(both "$f")" = $((used0 + 1024)) ]
    cat "$(ctl numa/last_alloc_id)" > "$(ctl numa/free)"
    [ "$(both MemFree:)" = "$free0" ]
    [ "$(both "$f")" = "$used0" ]
  done
  H=$MNT/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages
  free0=$(both MemFree:)
  echo 3 > "$H"
  [ "$(both HugePages_Total:)" = 3 ]
  [ "$(both HugePages_Free:)" = 3 ]
  [ "$(both MemFree:)" = $((free0 - 3 * 2048)) ]
  echo 0 > "$H"
  [ "$(both HugePages_Total:)" = 0 ]
  [ "$(both MemFree:)" = "$free0" ]
  # Memory hotplug: an offlined block leaves MemTotal.
  total0=$(both MemTotal:)
  block_kb=$(( $(printf '%d' "0x$(cat "$MNT/devices/system/memory/block_size_bytes")") / 1024 ))
  echo offline > "$MNT/devices/system/memory/memory31/state"
  [ "$(both MemTotal:)" = $((total0 - block_kb)) ]
  echo online > "$MNT/devices/system/memory/memory31/state"
  [ "$(both MemTotal:)" = "$total0" ]
  exec 5<&-
}

# The daemon keeps /proc/PID of recent callers open (core/caller.cpp
# ProcHandles): the event log must still name each store's caller as it
# is at that moment, after a rename of the same process and for a new
# process in every round.
@test "event log: the command name is the caller's at the time of each store" {
  for i in $(seq 10); do
    (
      printf 'first%d' "$i" > /proc/self/comm   # bash itself opens it: the subshell's
      echo "$i" > "$T/value"
      printf 'second%d' "$i" > /proc/self/comm
      echo "$((i + 100))" > "$T/value"
    )
    grep '"attr":"value"' "$(ctl events)" | tail -2 > "$BATS_TEST_TMPDIR/ev"
    head -1 "$BATS_TEST_TMPDIR/ev" | grep -q "\"comm\":\"first$i\""
    tail -1 "$BATS_TEST_TMPDIR/ev" | grep -q "\"comm\":\"second$i\""
  done
}

@test "capabilities: a process's user namespace is read at each of its stores, not kept" {
  # The daemon keeps the link /proc/PID/ns/user of its recent callers open
  # (core/caller.cpp ProcHandles): the same process, once in a child user
  # namespace, must lose the machine's CAP_NET_ADMIN at its next store.
  command -v unshare >/dev/null || skip "no unshare"
  unshare -Ur true 2>/dev/null || skip "user namespaces are off on this kernel"
  vsysfs_stop
  VSYSFS=$VSYSFS_BUILD/vsysfs vsysfs_start
  M=$MNT/class/net/eth0/mtu
  for i in $(seq 10); do
    # One pid throughout: bash's own store, then unshare(CLONE_NEWUSER) and
    # exec of sysfs-io in the same process (unshare without -f forks nothing).
    run bash -c 'echo "$2" > "$1" && echo "pid $$" && exec unshare -Ur "$3" write "$1" 9000' \
      _ "$M" $((1300 + i)) "$IO"
    [ "${lines[1]}" = EPERM ]
    [ "$(cat "$M")" = $((1300 + i)) ]
  done
  # The events name that pid twice each round: one OK store, one EPERM.
  [ "$(grep -c '"attr":"mtu","value":13' "$(ctl events)")" -eq 10 ]
  [ "$(grep '"what":"store","result":"EPERM"' "$(ctl events)" | grep -c '"attr":"mtu"')" -eq 10 ]
}
