#!/usr/bin/env bats
# NUMA nodes and CPUs against a real mount: the workload knobs
# (kernel/debug/vsysfs/numa/*), the node and CPU files, and real clients
# (numactl --hardware, numastat, numastat -m, hwloc's lstopo) reading the
# mount. The clients insist on /sys, so they run in a private mount
# namespace with the mount's devices/system/{node,cpu} bound over the real
# ones; nothing is left mounted afterwards.

load helpers

NODE_DIR() { echo "$MNT/devices/system/node"; }

# Four nodes on a ring (neighbours 16, opposite 22), 2 CPUs and 64 MiB
# (16384 pages) each: small numbers that are easy to check by hand.
ring_machine() {
  RING=$BATS_TEST_TMPDIR/ring.toml
  cat > "$RING" <<'EOF'
[machine]
name = "ring of four"
[numa]
distance = [[10, 16, 22, 16], [16, 10, 16, 22], [22, 16, 10, 16], [16, 22, 16, 10]]
[[numa.node]]
cpus = "0-1"
memory_mb = 64
[[numa.node]]
cpus = "2-3"
memory_mb = 64
[[numa.node]]
cpus = "4-5"
memory_mb = 64
[[numa.node]]
cpus = "6-7"
memory_mb = 64
EOF
  echo "$RING"
}

# numastat counter $2 of node $1
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$(NODE_DIR)/node$1/numastat"; }

# Runs "$@" with the mount's node and cpu directories over /sys's.
with_sys() {
  # shellcheck disable=SC2016  # the inner shell expands $1 and "$@" (its own arguments)
  unshare -m bash -c '
    mount --bind "$1/devices/system/node" /sys/devices/system/node &&
    mount --bind "$1/devices/system/cpu" /sys/devices/system/cpu && shift && "$@"' _ "$MNT" "$@"
}

teardown() { vsysfs_stop; }

@test "interleave: 1000 pages over 4 nodes spread 250 each and count interleave_hit" {
  vsysfs_start -o clock=manual -o "machine=$(ring_machine)"
  echo "cpu=3 pages=1000 policy=interleave" > "$(ctl numa/alloc)"
  [ "$(cat "$(ctl numa/last_alloc_id)")" = 1 ]
  grep -qx 'id=1 cpu=3 pages=1000 policy=interleave:0-3 kind=anon node0=250 node1=250 node2=250 node3=250' \
    "$(ctl numa/allocations)"
  for n in 0 1 2 3; do
    [ "$(stat_of $n interleave_hit)" = 250 ]
    [ "$(stat_of $n numa_hit)" = 250 ]
    [ "$(stat_of $n numa_miss)" = 0 ]
    grep -qx "Node $n MemFree:           64536 kB" "$(NODE_DIR)/node$n/meminfo"
    grep -qx "numa_interleave 250" "$(NODE_DIR)/node$n/vmstat"
  done
  # CPU 3 is on node 1: only node 1's pages are local.
  [ "$(stat_of 1 local_node)" = 250 ]
  [ "$(stat_of 0 other_node)" = 250 ]
  events_matching alloc numa | grep -q '"id":1'
}

@test "a local allocation beyond its node falls back in zonelist order (miss on the supplier, foreign on the preferred)" {
  vsysfs_start -o clock=manual -o "machine=$(ring_machine)"
  grep -qx 'Fallback order for Node 1: 1 2 0 3 ' "$(ctl numa/zonelists)"
  # Node 1 (16384) + node 2 (16384) + 100 from node 0.
  echo "cpu=2 pages=32868" > "$(ctl numa/alloc)"
  grep -q 'node0=100 node1=16384 node2=16384 node3=0$' "$(ctl numa/allocations)"
  [ "$(stat_of 1 numa_hit)" = 16384 ]
  [ "$(stat_of 1 numa_foreign)" = 16484 ]
  [ "$(stat_of 2 numa_miss)" = 16384 ]
  [ "$(stat_of 2 other_node)" = 16384 ]
  [ "$(stat_of 0 numa_miss)" = 100 ]
  [ "$(stat_of 3 numa_miss)" = 0 ]
  grep -qx 'Node 1 MemFree:               0 kB' "$(NODE_DIR)/node1/meminfo"
  # Freeing gives the pages back; the counters stay (the kernel never un-counts).
  echo 1 > "$(ctl numa/free)"
  grep -qx 'Node 1 MemFree:           65536 kB' "$(NODE_DIR)/node1/meminfo"
  [ "$(stat_of 1 numa_foreign)" = 16484 ]
}

@test "bad knob input is EINVAL (ENOMEM when too big) and changes nothing" {
  vsysfs_start -o clock=manual -o "machine=$(ring_machine)"
  io=$VSYSFS_BUILD/tests/helpers/sysfs-io
  for line in "junk" "pages=0" "cpu=99 pages=1" "pages=1 policy=bind:7" "pages=1 kind=gold" "pages=1 pages=2"; do
    [ "$("$io" write "$(ctl numa/alloc)" "$line")" = EINVAL ]
  done
  [ "$("$io" write "$(ctl numa/alloc)" "pages=70000")" = ENOMEM ]
  [ "$("$io" write "$(ctl numa/free)" "7")" = ENOENT ]
  [ "$("$io" write "$(ctl numa/free)" "x")" = EINVAL ]
  [ "$(cat "$(ctl numa/last_alloc_id)")" = 0 ]
  [ -z "$(cat "$(ctl numa/allocations)")" ]
  for n in 0 1 2 3; do [ "$(stat_of $n numa_hit)" = 0 ]; done
  # Root only: kernel/debug is 0700 and the knobs are 0200/0400.
  [ "$(stat -c %a "$(ctl numa/alloc)")" = 200 ]
  run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$(ctl numa/zonelists)"
  [ "$status" -ne 0 ]
}

@test "node and cpu views agree after CPU hotplug" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  [ "$(cat "$(NODE_DIR)/node0/cpulist")" = "0-1,4-5" ]
  [ "$(cat "$MNT/devices/system/cpu/online")" = "0-7" ]
  [ ! -e "$MNT/devices/system/cpu/cpu0/online" ]
  echo 0 > "$MNT/devices/system/cpu/cpu5/online"
  [ "$(cat "$MNT/devices/system/cpu/online")" = "0-4,6-7" ]
  [ "$(cat "$MNT/devices/system/cpu/offline")" = "5" ]
  [ "$(cat "$(NODE_DIR)/node0/cpulist")" = "0-1,4" ]
  [ "$(cat "$(NODE_DIR)/node0/cpumap")" = "13" ]
  [ ! -e "$MNT/devices/system/cpu/cpu5/topology" ]
  [ "$(cat "$MNT/devices/system/cpu/cpu1/topology/thread_siblings_list")" = "1" ]
  [ "$(readlink "$(NODE_DIR)/node0/cpu5")" = "../../cpu/cpu5" ]
  echo 1 > "$MNT/devices/system/cpu/cpu5/online"
  [ "$(cat "$MNT/devices/system/cpu/cpu1/topology/thread_siblings_list")" = "1,5" ]
  [ "$(cat "$(NODE_DIR)/node0/cpumap")" = "33" ]
  [ "$("$VSYSFS_BUILD/tests/helpers/sysfs-io" write "$MNT/devices/system/cpu/cpu5/online" 2)" = EINVAL ]
}

@test "numactl --hardware shows a two-vnode Xen guest's nodes, CPUs, sizes and distances" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  run with_sys numactl --hardware
  [ "$status" -eq 0 ]
  echo "$output"
  # Whole lines, not positions: the daemon's own stderr may share the output.
  echo "$output" | grep -qx "available: 2 nodes (0-1)"
  echo "$output" | grep -qx "node 0 cpus: 0 1 4 5"
  echo "$output" | grep -qx "node 0 size: 8192 MB"
  # The guest kernel holds 128 MiB of each node from boot ([xen] kernel_memory).
  echo "$output" | grep -qx "node 0 free: 8064 MB"
  echo "$output" | grep -qx "node 1 cpus: 2 3 6 7"
  echo "$output" | grep -qx "node 1 size: 8192 MB"
  echo "$output" | grep -Eq '^ +0: +10 +21 *$'
  echo "$output" | grep -Eq '^ +1: +21 +10 *$'
}

@test "numactl --hardware on the default machine: dom0's one node (a PV kernel runs numa_off)" {
  vsysfs_start -o clock=manual
  run with_sys numactl --hardware
  [ "$status" -eq 0 ]
  echo "$output"
  echo "$output" | grep -qx "available: 1 nodes (0)"
  echo "$output" | grep -qx "node 0 cpus: 0 1 2 3 4 5 6 7"
  echo "$output" | grep -qx "node 0 size: 16384 MB"
  # dom0's kernel holds 1/64 of the node from boot ([xen] kernel_memory).
  echo "$output" | grep -qx "node 0 free: $((16384 - 16384 / 64)) MB"
  echo "$output" | grep -Eq '^ +0: +10 *$'
}

@test "numactl --hardware on the 8-node SGI UV 2000 shows its SLIT and a 4 GiB allocation" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/numa-8node.toml"
  echo "cpu=8 pages=1048576" > "$(ctl numa/alloc)"   # 4 GiB on node 1
  run with_sys numactl --hardware
  [ "$status" -eq 0 ]
  echo "$output"
  echo "$output" | grep -qx "available: 8 nodes (0-7)"
  echo "$output" | grep -qx "node 0 cpus: 0 1 2 3 4 5 6 7"
  echo "$output" | grep -qx "node 0 size: 31703 MB"
  echo "$output" | grep -qx "node 1 free: 27632 MB"
  echo "$output" | grep -qx "node 7 cpus: 56 57 58 59 60 61 62 63"
  echo "$output" | grep -Eq '^ +7: +65 +65 +79 +79 +65 +79 +79 +10 *$'
  echo "$output" | grep -Eq '^ +2: +65 +65 +10 +50 +65 +65 +65 +79 *$'
}

@test "numastat and numastat -m show the per-node counters and memory" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/numa-4node.toml"
  echo "cpu=30 pages=4000 policy=interleave" > "$(ctl numa/alloc)"
  echo "cpu=0 pages=262144 kind=file" > "$(ctl numa/alloc)"        # 1 GiB of page cache on node 0
  run with_sys numastat
  [ "$status" -eq 0 ]
  echo "$output"
  echo "$output" | grep -Eq '^numa_hit +263144 +1000 +1000 +1000 *$'
  echo "$output" | grep -Eq '^interleave_hit +1000 +1000 +1000 +1000 *$'
  echo "$output" | grep -Eq '^local_node +262144 +1000 +0 +0 *$'
  run with_sys numastat -m
  [ "$status" -eq 0 ]
  echo "$output"
  echo "$output" | grep -Eq '^MemTotal +48894\.00 +48894\.00 +48894\.00 +48894\.00 +195576\.00 *$'
  echo "$output" | grep -Eq '^FilePages +1024\.00 +0\.00 +0\.00 +0\.00 +1024\.00 *$'
  echo "$output" | grep -Eq '^MemUsed +1027\.91 +3\.91 +3\.91 +3\.91 +1039\.62 *$'
}

@test "hwloc lstopo reads the mount as /sys: nodes, memory, CPUs and --distances" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/numa-4node.toml"
  root=$BATS_TEST_TMPDIR/fsroot
  mkdir -p "$root"
  ln -s "$MNT" "$root/sys"
  run lstopo-no-graphics --if fsroot -i "$root" --of console --no-io
  [ "$status" -eq 0 ]
  echo "$output"
  [ "$(echo "$output" | grep -c 'NUMANode L#')" = 4 ]
  echo "$output" | grep -Eq 'NUMANode L#3 \(P#3 (48GB|47GB)\)'
  [ "$(echo "$output" | grep -c 'PU L#')" = 96 ]
  echo "$output" | grep -q 'PU L#95 (P#95)'
  run lstopo-no-graphics --if fsroot -i "$root" --of console --no-io --distances
  [ "$status" -eq 0 ]
  echo "$output"
  echo "$output" | grep -Eq '^ +0 +10 +26 +26 +26 *$'
  echo "$output" | grep -Eq '^ +3 +26 +26 +26 +10 *$'
  # lstopo opens, reads and closes hundreds of files quickly; a close that
  # overtook a read's reply used to crash the daemon. Repeat and check it lives.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(lstopo-no-graphics --if fsroot -i "$root" --of console --no-io | grep -c 'NUMANode L#')" = 4 ]
  done
  pid_running "$VSYSFS_PID"
}

@test "hwloc on a two-vnode Xen guest: two packages of two cores with two threads" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  root=$BATS_TEST_TMPDIR/fsroot
  mkdir -p "$root"
  ln -s "$MNT" "$root/sys"
  run lstopo-no-graphics --if fsroot -i "$root" --of console --no-io
  [ "$status" -eq 0 ]
  echo "$output"
  [ "$(echo "$output" | grep -c 'Package L#')" = 2 ]
  [ "$(echo "$output" | grep -c 'Core L#')" = 4 ]
  echo "$output" | grep -Eq 'NUMANode L#1 \(P#1 8192MB\)'
  echo "$output" | grep -q 'PU L#1 (P#4)'
}
