#!/usr/bin/env bats
# The 1 GiB hstate (mm/hugetlb.c; arch/x86/mm/hugetlbpage.c
# gigantic_pages_init on a CPU with GBPAGES), from the mount with shell
# tools: kernel/mm/hugepages/hugepages-1048576kB and each node's
# hugepages/hugepages-1048576kB, their pools out of the nodes' MemFree,
# the global files as the sums, and demote into the 2 MiB pool
# (docs/devices/numa.md). Machine: hugepages_1g.toml.

load helpers
bats_require_minimum_version 1.5.0

G1=kernel/mm/hugepages/hugepages-1048576kB
G2=kernel/mm/hugepages/hugepages-2048kB

setup() { vsysfs_start -o "machine=$BATS_TEST_DIRNAME/hugepages_1g.toml"; NODE=$MNT/devices/system/node; }
teardown() { vsysfs_stop; }

n1g() { echo "$NODE/node$1/hugepages/hugepages-1048576kB/$2"; }
n2m() { echo "$NODE/node$1/hugepages/hugepages-2048kB/$2"; }
modes_of() { (cd "$1" && stat -c '%A %n' -- * | sort); }

@test "hugepages-1048576kB: the files and modes of the kernel's hstate, demote files on the 1 GiB one only" {
  [ "$(ls "$MNT/kernel/mm/hugepages")" = "$(printf 'hugepages-1048576kB\nhugepages-2048kB')" ]
  diff <(modes_of "$MNT/$G1") - <<'EOF2'
--w------- demote
-r--r--r-- free_hugepages
-r--r--r-- resv_hugepages
-r--r--r-- surplus_hugepages
-rw-r--r-- demote_size
-rw-r--r-- nr_hugepages
-rw-r--r-- nr_hugepages_mempolicy
-rw-r--r-- nr_overcommit_hugepages
EOF2
  diff <(modes_of "$NODE/node0/hugepages/hugepages-1048576kB") - <<'EOF2'
--w------- demote
-r--r--r-- free_hugepages
-r--r--r-- surplus_hugepages
-rw-r--r-- demote_size
-rw-r--r-- nr_hugepages
EOF2
  [ ! -e "$MNT/$G2/demote" ] && [ ! -e "$(n2m 0 demote_size)" ]
  [ "$(cat "$MNT/$G1/demote_size")" = 2048kB ]
  [ "$(cat "$(n1g 1 demote_size)")" = 2048kB ]
  # The boot pool of node 1.
  [ "$(cat "$(n1g 1 nr_hugepages)")" = 1 ]
  [ "$(cat "$MNT/$G1/nr_hugepages")" = 1 ]
  [ "$(cat "$MNT/$G1/free_hugepages")" = 1 ]
}

@test "echo 1 > nodeN's nr_hugepages: MemFree drops by 1 GiB; the global file is the sum" {
  local free0
  free0=$(node_kb 0 MemFree)
  echo 1 > "$(n1g 0 nr_hugepages)"
  [ "$(cat "$(n1g 0 nr_hugepages)")" = 1 ]
  [ "$(node_kb 0 MemFree)" = $((free0 - 1048576)) ]
  [ "$(node_kb 0 MemUsed)" = 1048576 ]
  # The global files sum the nodes' pools.
  [ "$(cat "$MNT/$G1/nr_hugepages")" = 2 ]
  [ "$(cat "$MNT/$G1/nr_hugepages_mempolicy")" = 2 ]
  [ "$(cat "$MNT/$G1/free_hugepages")" = 2 ]
  # Node meminfo's HugePages lines are the default (2 MiB) hstate's.
  [ "$(awk '$3 == "HugePages_Total:" { s += $4 } END { print s }' "$NODE"/node*/meminfo)" = 0 ]
  # A third page does not fit in node 0 (2052 MiB): it stops at two.
  echo 3 > "$(n1g 0 nr_hugepages)"
  [ "$(cat "$(n1g 0 nr_hugepages)")" = 2 ]
  [ "$(node_kb 0 MemFree)" = $((free0 - 2 * 1048576)) ]
  # Bad input: EINVAL, nothing changes.
  [ "$(errno_of_write "$(n1g 0 nr_hugepages)" junk)" = EINVAL ]
  [ "$(cat "$MNT/$G1/nr_hugepages")" = 3 ]
  # The global store shrinks round-robin; every page goes back to MemFree.
  echo 0 > "$MNT/$G1/nr_hugepages"
  [ "$(cat "$MNT/$G1/nr_hugepages")" = 0 ]
  [ "$(node_kb 0 MemFree)" = "$free0" ]
  [ "$(node_kb 1 MemFree)" = "$free0" ]
  # No overcommit for a gigantic hstate (6.12 nr_overcommit_hugepages_store).
  [ "$(errno_of_write "$MNT/$G1/nr_overcommit_hugepages" 1)" = EINVAL ]
  [ "$(cat "$MNT/$G1/nr_overcommit_hugepages")" = 0 ]
}

@test "demote: free 1 GiB pages become 512 free 2 MiB pages each, on their node" {
  local free1
  free1=$(node_kb 1 MemFree)
  echo 1 > "$(n1g 1 demote)"
  [ "$(cat "$(n1g 1 nr_hugepages)")" = 0 ]
  [ "$(cat "$(n2m 1 nr_hugepages)")" = 512 ]
  [ "$(cat "$(n2m 1 free_hugepages)")" = 512 ]
  [ "$(cat "$MNT/$G2/nr_hugepages")" = 512 ]
  [ "$(node_kb 1 HugePages_Total)" = 512 ]
  [ "$(node_kb 1 MemFree)" = "$free1" ]   # nothing went back to the buddy allocator
  # The global demote; asking for more than there are is no error.
  echo 2 > "$MNT/$G1/nr_hugepages"   # round-robin: one from each node
  [ "$(cat "$(n1g 0 nr_hugepages)")" = 1 ] && [ "$(cat "$(n1g 1 nr_hugepages)")" = 1 ]
  echo 5 > "$MNT/$G1/demote"
  [ "$(cat "$MNT/$G1/nr_hugepages")" = 0 ]
  [ "$(cat "$MNT/$G2/nr_hugepages")" = $((3 * 512)) ]
  # demote_size takes the 2 MiB size only.
  echo 2M > "$MNT/$G1/demote_size"
  [ "$(errno_of_write "$MNT/$G1/demote_size" 1G)" = EINVAL ]
  [ "$(errno_of_write "$MNT/$G1/demote" junk)" = EINVAL ]
  [ "$(cat "$MNT/$G1/demote_size")" = 2048kB ]
  # Each demotion is an event.
  events_matching demote numa | grep -q '"node":1'
  events_matching demote numa | grep -q '"node":-1'
}

@test "vsysfs-record keeps the 1 GiB boot pools and a CPU without pdpe1gb" {
  local out=$BATS_TEST_TMPDIR/rec.toml
  "$SCRIPTS/vsysfs-record" --sysfs "$MNT" -o "$out"
  [ "$(grep -c '^hugepages_1g = 1$' "$out")" = 1 ]
  run ! grep -q '^pdpe1gb' "$out"
  vsysfs_stop
  vsysfs_start -o "machine=$out"
  [ "$(cat "$MNT/$G1/nr_hugepages")" = 1 ]
  [ "$(cat "$MNT/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages")" = 1 ]
  vsysfs_stop
  # A machine whose CPU lacks GBPAGES: no 1 GiB hstate, recorded as such.
  printf '[numa]\npdpe1gb = false\n[[numa.node]]\ncpus = "0-1"\nmemory_mb = 2048\n' > "$BATS_TEST_TMPDIR/no1g.toml"
  vsysfs_start -o "machine=$BATS_TEST_TMPDIR/no1g.toml"
  [ ! -e "$MNT/$G1" ] && [ ! -e "$MNT/devices/system/node/node0/hugepages/hugepages-1048576kB" ]
  "$SCRIPTS/vsysfs-record" --sysfs "$MNT" -o "$out"
  grep -q '^pdpe1gb = false$' "$out"
  vsysfs_stop
  vsysfs_start -o "machine=$out"
  [ ! -e "$MNT/$G1" ]
  [ "$(ls "$MNT/kernel/mm/hugepages")" = hugepages-2048kB ]
}
