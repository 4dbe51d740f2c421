#!/usr/bin/env bats
# hugetlb only with PSE (x86 hugepages_supported() is
# boot_cpu_has(X86_FEATURE_PSE); Xen offers PSE to HVM guests only,
# xen/include/public/arch-x86/cpufeatureset.h): the default machine, a Xen
# PV dom0, has no kernel/mm/hugepages, no node hugepages/ and no HugePages_*
# lines in its node meminfo (hugetlb_init returns early); a machine file
# asking a PV guest for a boot pool is refused; [numa] pse = true gives a
# PV guest hugetlb back; an HVM guest and bare metal keep it
# (docs/devices/numa.md).

load helpers
bats_require_minimum_version 1.5.0

setup() { WORK=$(mktemp -d); }
teardown() {
  vsysfs_stop
  for m in "$WORK"/m*; do
    [ -d "$m" ] || continue
    mountpoint -q "$m" 2>/dev/null && fusermount3 -uz "$m" 2>/dev/null
  done
  rm -rf "$WORK"
}

NODE0=devices/system/node/node0

# A PV guest's machine file with one node and the given [numa] / node keys.
pv_machine() {  # pv_machine FILE NUMA_KEYS NODE_KEYS
  printf '[xen]\n[xen.hypervisor]\nguest_type = "PV"\n\n[numa]\n%b\n[[numa.node]]\ncpus = "0"\nmemory_mb = 2048\n%b\n' \
    "$2" "$3" > "$1"
}

@test "the default machine (Xen PV dom0) has no hugetlb: no kernel/mm/hugepages, no node hugepages, no HugePages lines" {
  vsysfs_start
  # kernel/mm stays (ksm is there); hugepages does not.
  [ -d "$MNT/kernel/mm/ksm" ]
  [ ! -e "$MNT/kernel/mm/hugepages" ]
  # Nor does a directory read list it.
  local names
  names=$(ls "$MNT/kernel/mm")
  [[ $names == *ksm* && $names != *hugepages* ]]
  [ ! -e "$MNT/$NODE0/hugepages" ]
  names=$(ls "$MNT/$NODE0")
  [[ $names == *meminfo* && $names != *hugepages* ]]
  # hugetlb_report_node_meminfo prints nothing; the THP lines stay.
  [ "$(grep -c HugePages_ "$MNT/$NODE0/meminfo")" = 0 ]
  grep -q '^Node 0 AnonHugePages: ' "$MNT/$NODE0/meminfo"
  grep -q '^Node 0 ShmemHugePages: ' "$MNT/$NODE0/meminfo"
  [ "$(tail -n 1 "$MNT/$NODE0/meminfo")" = "Node 0 FilePmdMapped:         0 kB" ]
  # A write has no file to go to (no hstate to store into).
  run -1 bash -c "echo 1 > '$MNT/$NODE0/hugepages/hugepages-2048kB/nr_hugepages'"
  [[ "$output" == *"No such file or directory"* ]]
}

@test "a PV guest's machine file asking for hugepages is refused with the reason" {
  mkdir "$WORK/m1"
  pv_machine "$WORK/pv2m.toml" "" "hugepages_2m = 4"
  run timeout 20 "$VSYSFS" -f -o machine="$WORK/pv2m.toml" "$WORK/m1"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"pv2m.toml:"*"hugepages_2m needs a CPU with pse (X86_FEATURE_PSE)"*"Xen PV guest"* ]]
  pv_machine "$WORK/pv1g.toml" "pdpe1gb = true" "hugepages_1g = 1"
  run timeout 20 "$VSYSFS" -f -o machine="$WORK/pv1g.toml" "$WORK/m1"
  [ "$status" -ne 0 ]
  [[ "$output" == *"hugepages_1g needs a CPU with pse"* ]]
  run ! mountpoint -q "$WORK/m1"
}

@test "pse = true gives a PV guest its 2 MiB hstate, pools and meminfo lines back" {
  pv_machine "$WORK/pse.toml" "pse = true" "hugepages_2m = 3"
  vsysfs_start -o "machine=$WORK/pse.toml"
  [ "$(ls "$MNT/kernel/mm/hugepages")" = hugepages-2048kB ]
  [ "$(ls "$MNT/$NODE0/hugepages")" = hugepages-2048kB ]
  [ "$(cat "$MNT/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")" = 3 ]
  echo 5 > "$MNT/$NODE0/hugepages/hugepages-2048kB/nr_hugepages"
  [ "$(cat "$MNT/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")" = 5 ]
  diff <(grep HugePages_ "$MNT/$NODE0/meminfo") - <<'EOF2'
Node 0 HugePages_Total:     5
Node 0 HugePages_Free:      5
Node 0 HugePages_Surp:      0
EOF2
}

@test "an HVM guest (xen-guest-vnuma) and the bare-metal R740 keep hugetlb" {
  local f
  for f in xen-guest-vnuma dell-poweredge-r740; do
    vsysfs_start -o "machine=$VSYSFS_ROOT/machines/$f.toml"
    [ -d "$MNT/kernel/mm/hugepages/hugepages-2048kB" ] || { echo "$f: no kernel/mm/hugepages"; return 1; }
    [ -d "$MNT/devices/system/node/node1/hugepages/hugepages-2048kB" ] || { echo "$f: no node1/hugepages"; return 1; }
    [ "$(grep -c HugePages_ "$MNT/devices/system/node/node1/meminfo")" = 3 ] || { echo "$f: meminfo"; return 1; }
    vsysfs_stop
  done
}
