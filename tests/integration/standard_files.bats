#!/usr/bin/env bats
# The standard sysfs files every Linux 6.12 kernel has for the objects
# vsysfs models (docs/standard-files.md), read by the real tools against a
# mount of the default machine and of other shipped machines. Expected
# values are derived from the machine file, not written down here.
#
# util-linux tools take --sysroot ROOT and read ROOT/sys: ROOT is a
# temporary directory whose `sys` is a symlink to the mount. lscpu also
# needs ROOT/proc/cpuinfo (vsysfs serves /sys, not /proc): it gets one
# "processor"/"vendor_id" stanza per present CPU, which lscpu needs to give
# the CPUs a type (only then does it read their caches from sysfs);
# every other value lscpu prints comes from the mount.

bats_require_minimum_version 1.5.0
load helpers

setup() { SYSROOT=; }

teardown() {
  vsysfs_stop
  [ -z "$SYSROOT" ] || rm -rf "$SYSROOT"
}

# make_sysroot: ROOT with sys -> $MNT and a minimal proc/cpuinfo.
make_sysroot() {
  SYSROOT=$(mktemp -d "${BATS_TMPDIR:-/tmp}/standard-root.XXXXXX")
  ln -s "$MNT" "$SYSROOT/sys"
  mkdir "$SYSROOT/proc"
  local c
  for c in $(list_expand "$(cat "$MNT/devices/system/cpu/present")"); do
    printf 'processor\t: %s\nvendor_id\t: GenuineIntel\n\n' "$c"
  done > "$SYSROOT/proc/cpuinfo"
}

# list_expand "0-2,5" -> "0 1 2 5"
list_expand() {
  local part out=() parts=()
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then
      mapfile -t -O "${#out[@]}" out < <(seq "${part%-*}" "${part#*-}")
    else
      out+=("$part")
    fi
  done
  echo "${out[@]}"
}

machine_file() { echo "$VSYSFS_ROOT/machines/$1.toml"; }

# The CPUs and nodes a machine file declares: with [numa], the nodes'
# cpulists; without, [net]'s nr_cpu_ids/nr_node_ids (defaults 4 and 1).
expected_cpus() { python3 "$BATS_TEST_DIRNAME/machine_facts.py" cpus "$1"; }

require_tool() { command -v "$1" >/dev/null || skip "$1 is not installed"; }

@test "lscpu --sysroot works on every shipped machine; CPUs and nodes are the machine file's" {
  require_tool lscpu
  local f name out
  for f in "$VSYSFS_ROOT"/machines/*.toml; do
    name=$(basename "$f" .toml)
    vsysfs_start -o "machine=$f"
    make_sysroot
    out=$(lscpu --sysroot "$SYSROOT") || { echo "$name: lscpu failed: $out"; return 1; }
    read -r ncpu nnode <<<"$(expected_cpus "$f")"
    echo "$name: $out" | grep -E '^(CPU\(s\)|NUMA node\(s\))' >&2 || true
    [[ $(awk -F: '$1 == "CPU(s)" { gsub(/ /, "", $2); print $2 }' <<<"$out") == "$ncpu" ]] \
      || { echo "$name: CPU(s) not $ncpu"; echo "$out"; return 1; }
    [[ $(awk -F: '$1 == "NUMA node(s)" { gsub(/ /, "", $2); print $2 }' <<<"$out") == "$nnode" ]] \
      || { echo "$name: NUMA node(s) not $nnode"; echo "$out"; return 1; }
    vsysfs_stop
    rm -rf "$SYSROOT"; SYSROOT=
  done
}

# The cache leaves a machine file gives (or the documented default
# geometry, numa_machine.cpp), as "NAME SIZE_KIB WAYS SETS INSTANCES" lines;
# INSTANCES counts the cores (per-core leaves) or packages.
expected_caches() { python3 "$BATS_TEST_DIRNAME/machine_facts.py" caches "$1"; }

# lscpu -C sizes are in K/M/G with up to one decimal: to KiB.
to_kib() {
  awk -v s="$1" 'BEGIN { n = s + 0; u = substr(s, length(s));
    if (u == "M") n *= 1024; else if (u == "G") n *= 1048576; printf "%d\n", n + 0.5 }'
}

check_caches() {
  local f=$1 name kib ways sets inst row one all
  vsysfs_start -o "machine=$f"
  make_sysroot
  local table; table=$(lscpu -C --sysroot "$SYSROOT")
  echo "$table" >&2
  while read -r name kib ways sets inst; do
    row=$(awk -v n="$name" '$1 == n' <<<"$table")
    [ -n "$row" ] || { echo "$f: no $name in lscpu -C"; return 1; }
    read -r _ one all rways _ _ rsets _ <<<"$row"
    [ "$rways" = "$ways" ] || { echo "$f $name: ways $rways, want $ways"; return 1; }
    [ "$rsets" = "$sets" ] || { echo "$f $name: sets $rsets, want $sets"; return 1; }
    # lscpu rounds to one decimal in the next unit: compare within 5%.
    local got; got=$(to_kib "$one")
    (( got * 100 >= kib * 95 && got * 100 <= kib * 105 )) || { echo "$f $name: size $one, want ${kib}K"; return 1; }
    got=$(to_kib "$all")
    (( got * 100 >= kib * inst * 95 && got * 100 <= kib * inst * 105 )) \
      || { echo "$f $name: all-size $all, want $inst x ${kib}K"; return 1; }
    # The exact value is in the file.
    [ "$(cat "$MNT/devices/system/cpu/cpu0/cache/index$(idx_of "$name" "$f")/size")" = "${kib}K" ]
  done < <(expected_caches "$f")
  if command -v lstopo-no-graphics >/dev/null; then
    local topo; topo=$(HWLOC_FSROOT=$SYSROOT lstopo-no-graphics --of console 2>/dev/null)
    while read -r name kib ways sets inst; do
      [ "$(grep -c " $name L#[0-9]* (" <<<"$topo")" -eq "$inst" ] \
        || { echo "$f: lstopo shows $(grep -c " $name L#" <<<"$topo") $name, want $inst"; echo "$topo"; return 1; }
    done < <(expected_caches "$f")
  fi
  vsysfs_stop
  rm -rf "$SYSROOT"; SYSROOT=
}

# index of leaf NAME in the machine's order
idx_of() { expected_caches "$2" | awk -v n="$1" '$1 == n { print NR - 1; exit }'; }

@test "lscpu -C and lstopo show the cache geometry of the machine file (default, numa-4node, net-lab)" {
  require_tool lscpu
  check_caches "$(machine_file default)"
  check_caches "$(machine_file numa-4node)"
  check_caches "$(machine_file net-lab)"
}

@test "lscpu -C shows a machine file's own [[numa.cache]] leaves" {
  require_tool lscpu
  local f=$BATS_TEST_TMPDIR/cache.toml
  cat > "$f" <<'TOML'
[numa]
threads_per_core = 2
[[numa.node]]
cpus = "0-3"
memory_mb = 256
[[numa.cache]]
level = 1
type = "Data"
size_kb = 48
ways = 12
[[numa.cache]]
level = 1
type = "Instruction"
size_kb = 32
ways = 8
[[numa.cache]]
level = 2
type = "Unified"
size_kb = 2048
ways = 16
[[numa.cache]]
level = 3
type = "Unified"
size_kb = 30720
ways = 12
TOML
  check_caches "$f"
}

@test "lscpu prints a Vulnerability line per vulnerabilities/ file, with its text" {
  require_tool lscpu
  vsysfs_start
  make_sysroot
  local out text
  out=$(lscpu --sysroot "$SYSROOT")
  [ "$(grep -c '^Vulnerability ' <<<"$out")" -eq "$(find "$MNT/devices/system/cpu/vulnerabilities" -mindepth 1 | wc -l)" ]
  # lscpu turns "Mitigation: X" into "Mitigation; X": compare the words.
  text=$(cat "$MNT/devices/system/cpu/vulnerabilities/meltdown")
  grep -q "^Vulnerability Meltdown: *${text/: /; }\$" <<<"$out"
}

# "BLOCK_BYTES TOTAL_BYTES": each node spans whole blocks (numa_machine.cpp:
# memory_block_size_mb, else 128 MiB below 64 GiB of memory, else 2 GiB).
expected_memory() { python3 "$BATS_TEST_DIRNAME/machine_facts.py" memory "$1"; }

@test "lsmem --sysroot totals the machine's memory in blocks of block_size_bytes" {
  require_tool lsmem
  local name f block total out
  for name in default numa-4node xen-host-3dom; do
    f=$(machine_file "$name")
    vsysfs_start -o "machine=$f"
    make_sysroot
    read -r block total <<<"$(expected_memory "$f")"
    [ "$(cat "$MNT/devices/system/memory/block_size_bytes")" = "$(printf '%x' "$block")" ]
    out=$(lsmem --sysroot "$SYSROOT" --bytes --summary=only)
    echo "$name: $out" >&2
    grep -qE "^Memory block size: +$block\$" <<<"$out"
    grep -qE "^Total online memory: +$total\$" <<<"$out"
    grep -qE "^Total offline memory: +0\$" <<<"$out"
    # Every block is under exactly one node, and the node's links agree.
    [ "$(find "$MNT"/devices/system/node/node*/ -maxdepth 1 -name 'memory*' | wc -l)" -eq $((total / block)) ]
    vsysfs_stop
    rm -rf "$SYSROOT"; SYSROOT=
  done
}

@test "lsmem sees a block go offline through state" {
  require_tool lsmem
  vsysfs_start
  make_sysroot
  local block; block=$((16#$(cat "$MNT/devices/system/memory/block_size_bytes")))
  local before; before=$(lsmem --sysroot "$SYSROOT" --bytes --summary=only | awk -F: '/online memory/ { gsub(/ /, "", $2); print $2 }')
  echo offline > "$MNT/devices/system/memory/memory3/state"
  [ "$(cat "$MNT/devices/system/memory/memory3/online")" = 0 ]
  lsmem --sysroot "$SYSROOT" --bytes --summary=only | grep -qE "^Total offline memory: +$block\$"
  lsmem --sysroot "$SYSROOT" --bytes --summary=only | grep -qE "^Total online memory: +$((before - block))\$"
  # The same write again: EINVAL (drivers/base/memory.c state_store).
  run -1 bash -c "echo offline > '$MNT/devices/system/memory/memory3/state'"
  echo online > "$MNT/devices/system/memory/memory3/state"
  lsmem --sysroot "$SYSROOT" --bytes --summary=only | grep -qE "^Total online memory: +$before\$"
}

# lspci's "Unable to load libkmod resources" is about the host's own
# /lib/modules (lspci -v looks up kernel modules for the running kernel),
# not about the sysfs it reads: it is the only stderr line allowed.
lspci_sysfs() {
  lspci -A linux-sysfs -O "sysfs.path=$MNT/bus/pci" "$@" 2>"$BATS_TEST_TMPDIR/lspci.err"
  local rc=$?
  if grep -v 'libkmod' "$BATS_TEST_TMPDIR/lspci.err" | grep -q .; then
    cat "$BATS_TEST_TMPDIR/lspci.err"; return 1
  fi
  return $rc
}

# "SLOT VENDOR DEVICE NUMA_NODE BAR0_SIZE REVISION" per PCI interface of a
# machine file.
expected_pci() { python3 "$BATS_TEST_DIRNAME/machine_facts.py" pci "$1"; }

check_pci() {
  local f=$1 slot ven dev node bar rev out n=0
  vsysfs_start -o "machine=$f"
  out=$(lspci_sysfs -v -nn -D)
  echo "$out" >&2
  while read -r slot ven dev node bar rev; do
    n=$((n + 1))
    # lspci names the revision unless it is 0 (lspci.c show_terse: "(rev %02x)").
    local revtext=" (rev $rev)"; [ "$rev" = 00 ] && revtext=
    grep -q "^$slot .*\[$ven:$dev\]$revtext\$" <<<"$out" || { echo "$f: lspci lacks $slot [$ven:$dev]$revtext"; return 1; }
    [ "$(cat "$MNT/bus/pci/devices/$slot/revision")" = "0x$rev" ]
    local block; block=$(awk -v s="$slot" '$1 == s { p = 1; next } /^[0-9a-f][0-9a-f][0-9a-f][0-9a-f]:/ { p = 0 } p' <<<"$out")
    if [ "$node" -ge 0 ]; then
      grep -q "NUMA node $node\$" <<<"$block" || { echo "$f $slot: NUMA node not $node"; return 1; }
      [ "$(cat "$MNT/bus/pci/devices/$slot/local_cpulist")" = "$(cat "$MNT/devices/system/node/node$node/cpulist")" ]
    else
      [ "$(cat "$MNT/bus/pci/devices/$slot/local_cpulist")" = "$(cat "$MNT/devices/system/cpu/online")" ]
    fi
    # BAR0's size as lspci decodes it from resource (K below 1 MiB, else M),
    # and resource0's size.
    local size=$(( 16#$bar / 1024 ))K
    (( 16#$bar >= 1048576 )) && size=$(( 16#$bar / 1048576 ))M
    grep -q "Memory at .* (32-bit, non-prefetchable) \[size=$size\]" <<<"$block" \
      || { echo "$f $slot: no ${bar} BAR0"; return 1; }
    [ "$(stat -c %s "$MNT/bus/pci/devices/$slot/resource0")" = "$((16#$bar))" ]
    # config's first bytes agree with vendor/device/class/revision.
    local hdr; hdr=$(od -An -tx1 -N12 "$MNT/bus/pci/devices/$slot/config" | tr -d ' \n')
    [ "${hdr:0:8}" = "${ven:2:2}${ven:0:2}${dev:2:2}${dev:0:2}" ]
    [ "0x${hdr:16:2}" = "$(cat "$MNT/bus/pci/devices/$slot/revision")" ]
    [ "0x${hdr:22:2}${hdr:20:2}${hdr:18:2}" = "$(cat "$MNT/bus/pci/devices/$slot/class")" ]
    [ "$(cat "$MNT/bus/pci/devices/$slot/modalias")" = \
      "pci:v0000${ven^^}d0000${dev^^}sv0000$(sed 's/0x//' "$MNT/bus/pci/devices/$slot/subsystem_vendor" | tr a-f A-F)sd0000$(sed 's/0x//' "$MNT/bus/pci/devices/$slot/subsystem_device" | tr a-f A-F)bc${hdr:22:2}sc${hdr:20:2}i${hdr:18:2}" ]
  done < <(expected_pci "$f")
  [ "$(grep -c '^[0-9a-f]\{4\}:' <<<"$out")" -eq "$n" ]
  vsysfs_stop
}

@test "lspci -A linux-sysfs lists every PCI function of the machine file, without error" {
  require_tool lspci
  check_pci "$(machine_file default)"
  check_pci "$(machine_file net-lab)"
}

# "MODE NAME" of the entries of a directory, sorted.
modes_of() { (cd "$1" && stat -c '%A %n' -- * | sort); }

@test "names and modes are the kernel's: cache index, memory block, PCI function" {
  vsysfs_start
  diff <(modes_of "$MNT/devices/system/cpu/cpu1/cache/index3") - <<'EOF2'
-r--r--r-- coherency_line_size
-r--r--r-- id
-r--r--r-- level
-r--r--r-- number_of_sets
-r--r--r-- physical_line_partition
-r--r--r-- shared_cpu_list
-r--r--r-- shared_cpu_map
-r--r--r-- size
-r--r--r-- type
-r--r--r-- ways_of_associativity
-rw-r--r-- uevent
EOF2
  diff <(modes_of "$MNT/devices/system/memory/memory5") - <<'EOF2'
-r--r--r-- phys_device
-r--r--r-- phys_index
-r--r--r-- removable
-r--r--r-- valid_zones
-rw-r--r-- online
-rw-r--r-- state
-rw-r--r-- uevent
drwxr-xr-x power
lrwxrwxrwx node0
lrwxrwxrwx subsystem
EOF2
  diff <(modes_of "$MNT/devices/system/memory") <(
    { echo "-r--r--r-- block_size_bytes"; echo "-rw-r--r-- auto_online_blocks"; echo "-rw-r--r-- uevent"
      for d in "$MNT"/devices/system/memory/memory*; do echo "drwxr-xr-x ${d##*/}"; done; } | sort)
  local pci=$MNT/bus/pci/devices/0000:00:03.0/
  for f in resource modalias local_cpus local_cpulist irq; do [ "$(stat -c %A "$pci$f")" = "-r--r--r--" ]; done
  for f in enable config numa_node uevent power/control; do [ "$(stat -c %A "$pci$f")" = "-rw-r--r--" ]; done
  [ "$(stat -c %A "${pci}resource0")" = "-rw-------" ]
  [ "$(cat "$MNT/devices/system/memory/memory5/uevent")" = "" ]
}

# errno name of `printf VALUE > FILE` (OK on success).
write_errno() {
  local out
  out=$(printf '%s' "$2" 2>&1 >"$1") && { echo OK; return; }
  case $out in
    *"Invalid argument"*) echo EINVAL ;; *"No such device"*) echo ENODEV ;;
    *"Device or resource busy"*) echo EBUSY ;; *"Permission denied"*) echo EACCES ;; *) echo "$out" ;;
  esac
}

@test "clocksource0: names, modes, override and unbind as kernel/time/clocksource.c" {
  local cs=devices/system/clocksource/clocksource0
  # A bare-metal machine: tsc, hpet, acpi_pm by rating; tsc is current.
  vsysfs_start -o "machine=$(machine_file dell-poweredge-750)"
  diff <(modes_of "$MNT/$cs") - <<'EOF2'
--w------- unbind_clocksource
-r--r--r-- available_clocksource
-rw-r--r-- current_clocksource
-rw-r--r-- uevent
lrwxrwxrwx subsystem
EOF2
  [ "$(readlink "$MNT/$cs/subsystem")" = ../../../../bus/clocksource ]
  [ -L "$MNT/bus/clocksource/devices/clocksource0" ]
  [ "$(cat "$MNT/$cs/available_clocksource")" = "tsc hpet acpi_pm " ]
  [ "$(cat "$MNT/$cs/current_clocksource")" = tsc ]
  # Override: a registered name switches; an unknown one is remembered, no
  # error, and the best stays; "\n" clears the override.
  [ "$(write_errno "$MNT/$cs/current_clocksource" $'hpet\n')" = OK ]
  [ "$(cat "$MNT/$cs/current_clocksource")" = hpet ]
  [ "$(write_errno "$MNT/$cs/current_clocksource" nosuch)" = OK ]
  [ "$(cat "$MNT/$cs/current_clocksource")" = tsc ]
  [ "$(write_errno "$MNT/$cs/current_clocksource" "$(printf '%032d' 0)")" = EINVAL ]  # >= CS_NAME_LEN
  [ "$(cat "$MNT/$cs/current_clocksource")" = tsc ]
  # Unbind: ENODEV for no such. With one node tsc is not MUST_VERIFY and
  # is the watchdog: hpet and acpi_pm go freely, and tsc, current and
  # watchdog with nothing to hand over to, is EBUSY, nothing changed.
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" nosuch)" = ENODEV ]
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" hpet)" = OK ]
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" acpi_pm)" = OK ]
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" tsc)" = EBUSY ]
  [ "$(cat "$MNT/$cs/available_clocksource")" = "tsc " ]
  [ "$(cat "$MNT/$cs/current_clocksource")" = tsc ]
  vsysfs_stop
  # More than 4 nodes: tsc must be verified, hpet is the watchdog and hands
  # over to acpi_pm; the current tsc falls back to the next best; acpi_pm,
  # the last possible watchdog, cannot go though tsc is still there.
  vsysfs_start -o "machine=$(machine_file numa-8node)"
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" hpet)" = OK ]
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" acpi_pm)" = EBUSY ]
  [ "$(write_errno "$MNT/$cs/unbind_clocksource" tsc)" = OK ]
  [ "$(cat "$MNT/$cs/current_clocksource")" = acpi_pm ]
  [ "$(cat "$MNT/$cs/available_clocksource")" = "acpi_pm " ]
  vsysfs_stop
  # A Xen guest registers xen (rating 400), which is current.
  vsysfs_start -o "machine=$(machine_file xen-host-3dom)"
  [ "$(cat "$MNT/$cs/available_clocksource")" = "xen tsc hpet acpi_pm " ]
  [ "$(cat "$MNT/$cs/current_clocksource")" = xen ]
}

@test "kernel/mm/hugepages/hugepages-2048kB is the sum of the nodes' pools; a store interleaves over the nodes" {
  vsysfs_start -o "machine=$(machine_file xen-guest-vnuma)"
  local h=$MNT/kernel/mm/hugepages/hugepages-2048kB n=$MNT/devices/system/node
  diff <(modes_of "$h") - <<'EOF2'
-r--r--r-- free_hugepages
-r--r--r-- resv_hugepages
-r--r--r-- surplus_hugepages
-rw-r--r-- nr_hugepages
-rw-r--r-- nr_hugepages_mempolicy
-rw-r--r-- nr_overcommit_hugepages
EOF2
  [ "$(cat "$h/nr_hugepages")" = 0 ]
  # 5 pages round-robin from node 0: 3 + 2; then back to 2, freed
  # round-robin from node 0: 1 + 1.
  echo 5 > "$h/nr_hugepages"
  [ "$(cat "$n/node0/hugepages/hugepages-2048kB/nr_hugepages")" = 3 ]
  [ "$(cat "$n/node1/hugepages/hugepages-2048kB/nr_hugepages")" = 2 ]
  [ "$(cat "$h/nr_hugepages")" = 5 ]
  [ "$(cat "$h/free_hugepages")" = 5 ]
  echo 2 > "$h/nr_hugepages"
  [ "$(cat "$n/node0/hugepages/hugepages-2048kB/nr_hugepages")" = 1 ]
  [ "$(cat "$n/node1/hugepages/hugepages-2048kB/nr_hugepages")" = 1 ]
  # The round-robin cursor (next_nid_to_alloc) carries over between
  # writes: the 5th page went to node 0, so one page at a time goes to
  # node 1, node 0, node 1.
  echo 0 > "$h/nr_hugepages"
  echo 1 > "$h/nr_hugepages"; echo 2 > "$h/nr_hugepages"; echo 3 > "$h/nr_hugepages"
  [ "$(cat "$n/node0/hugepages/hugepages-2048kB/nr_hugepages")" = 1 ]
  [ "$(cat "$n/node1/hugepages/hugepages-2048kB/nr_hugepages")" = 2 ]
  echo 2 > "$h/nr_hugepages"
  # A node's own write shows in the total.
  echo 4 > "$n/node1/hugepages/hugepages-2048kB/nr_hugepages"
  [ "$(cat "$h/nr_hugepages")" = 5 ]
  [ "$(cat "$h/nr_hugepages_mempolicy")" = 5 ]
  # Bad input: EINVAL, nothing changed.
  [ "$(write_errno "$h/nr_hugepages" abc)" = EINVAL ]
  [ "$(write_errno "$h/nr_hugepages" -1)" = EINVAL ]
  [ "$(cat "$h/nr_hugepages")" = 5 ]
  # HugePages_Total in each node's meminfo agrees.
  [ "$(awk '/HugePages_Total/ { s += $NF } END { print s }' "$n"/node*/meminfo)" = 5 ]
  echo 7 > "$h/nr_overcommit_hugepages"
  [ "$(cat "$h/nr_overcommit_hugepages")" = 7 ]
}

@test "hugepages: every hstate directory has the real /sys's files and modes, globally and per node" {
  # The oracle is this host's kernel: an x86 CPU with pdpe1gb has the
  # 1 GiB hstate (with demote and demote_size) beside the 2 MiB one.
  [ -d /sys/kernel/mm/hugepages/hugepages-1048576kB ] || skip "this host has no 1 GiB hstate"
  [ -d /sys/devices/system/node/node0/hugepages ] || skip "this host has no node hugepages"
  # Bare metal: the default machine is a Xen PV dom0, where Xen offers no
  # 1 GiB pages (docs/devices/numa.md).
  vsysfs_start -o "machine=$VSYSFS_ROOT/machines/dell-poweredge-r740.toml"
  diff <(ls /sys/kernel/mm/hugepages) <(ls "$MNT/kernel/mm/hugepages")
  diff <(ls /sys/devices/system/node/node0/hugepages) <(ls "$MNT/devices/system/node/node0/hugepages")
  local d
  for d in hugepages-2048kB hugepages-1048576kB; do
    diff <(modes_of "/sys/kernel/mm/hugepages/$d") <(modes_of "$MNT/kernel/mm/hugepages/$d")
    diff <(modes_of "/sys/devices/system/node/node0/hugepages/$d") \
      <(modes_of "$MNT/devices/system/node/node0/hugepages/$d")
  done
  diff /sys/kernel/mm/hugepages/hugepages-1048576kB/demote_size \
    "$MNT/kernel/mm/hugepages/hugepages-1048576kB/demote_size"
}

@test "kernel/mm/hugepages/hugepages-1048576kB is the sum of the nodes' 1 GiB pools" {
  # Two nodes of 2052 MiB, node 1 with a 1 GiB boot page.
  vsysfs_start -o "machine=$BATS_TEST_DIRNAME/hugepages_1g.toml"
  local h=$MNT/kernel/mm/hugepages/hugepages-1048576kB n=$MNT/devices/system/node
  [ "$(cat "$h/nr_hugepages")" = 1 ]
  # Two more, round-robin from node 0: one each.
  echo 3 > "$h/nr_hugepages"
  [ "$(cat "$n/node0/hugepages/hugepages-1048576kB/nr_hugepages")" = 1 ]
  [ "$(cat "$n/node1/hugepages/hugepages-1048576kB/nr_hugepages")" = 2 ]
  [ "$(cat "$h/free_hugepages")" = 3 ]
  [ "$(awk '$3 == "MemUsed:" { s += $4 } END { print s }' "$n"/node*/meminfo)" = $((3 * 1048576)) ]
  # No more fit: the pool stops short, no error.
  echo 9 > "$h/nr_hugepages"
  [ "$(cat "$h/nr_hugepages")" = 4 ]
  echo 0 > "$h/nr_hugepages"
  [ "$(cat "$h/nr_hugepages")" = 0 ]
  [ "$(awk '$3 == "MemUsed:" { s += $4 } END { print s }' "$n"/node*/meminfo)" = 0 ]
}

@test "class/thermal and class/power_supply exist, empty, on every machine" {
  vsysfs_start -o "machine=$(machine_file net-lab)"
  [ -d "$MNT/class/thermal" ] && [ -z "$(ls -A "$MNT/class/thermal")" ]
  [ -d "$MNT/class/power_supply" ] && [ -z "$(ls -A "$MNT/class/power_supply")" ]
}

@test "bus files: drivers_autoprobe, drivers_probe and uevent on the cpu, node, memory, pci and clocksource buses" {
  vsysfs_start
  local b
  for b in cpu node memory pci clocksource; do
    diff <(modes_of "$MNT/bus/$b") - <<'EOF2'
--w------- drivers_probe
--w------- uevent
-rw-r--r-- drivers_autoprobe
drwxr-xr-x devices
drwxr-xr-x drivers
EOF2
    [ "$(cat "$MNT/bus/$b/drivers_autoprobe")" = 1 ]
  done
  echo 0 > "$MNT/bus/pci/drivers_autoprobe"
  [ "$(cat "$MNT/bus/pci/drivers_autoprobe")" = 0 ]
  [ "$(write_errno "$MNT/bus/pci/drivers_probe" 0000:00:03.0)" = OK ]
  [ "$(write_errno "$MNT/bus/pci/drivers_probe" 0000:00:09.0)" = ENODEV ]
  [ "$(write_errno "$MNT/bus/cpu/drivers_probe" cpu1)" = OK ]
  [ "$(write_errno "$MNT/bus/cpu/drivers_probe" ../cpu1)" = ENODEV ]
  [ "$(write_errno "$MNT/bus/node/uevent" change)" = OK ]
  [ "$(write_errno "$MNT/bus/node/uevent" nosuch)" = EINVAL ]
  # Each device links its subsystem; cpuN's uevent carries the CPU modalias.
  [ "$(readlink "$MNT/devices/system/cpu/cpu1/subsystem")" = ../../../../bus/cpu ]
  [ "$(readlink "$MNT/devices/system/node/node0/subsystem")" = ../../../../bus/node ]
  grep -q '^MODALIAS=cpu:type:x86,ven0000fam0006mod0055:feature:,0000,' "$MNT/devices/system/cpu/cpu0/uevent"
  [ "$(cat "$MNT/devices/system/cpu/uevent")" = "" ]
  [ "$(cat "$MNT/devices/pci0000:00/uevent")" = "" ]
}

@test "cpuidle: intel_idle's Skylake-SP states on bare metal, governors, disable; none on a Xen guest" {
  vsysfs_start -o "machine=$(machine_file dell-poweredge-750)"
  local i=$MNT/devices/system/cpu/cpuidle s=$MNT/devices/system/cpu/cpu1/cpuidle
  diff <(modes_of "$i") - <<'EOF2'
-r--r--r-- available_governors
-r--r--r-- current_driver
-r--r--r-- current_governor_ro
-rw-r--r-- current_governor
EOF2
  [ "$(cat "$i/current_driver")" = intel_idle ]
  [ "$(cat "$i/available_governors")" = "ladder menu teo haltpoll " ]
  [ "$(cat "$i/current_governor")" = menu ]
  [ "$(write_errno "$i/current_governor" $'  teo\n')" = OK ]
  [ "$(cat "$i/current_governor_ro")" = teo ]
  [ "$(write_errno "$i/current_governor" bogus)" = EINVAL ]
  [ "$(write_errno "$i/current_governor" ' ')" = EINVAL ]
  [ "$(cat "$i/current_governor")" = teo ]
  # skx_cstates: POLL, C1, C1E, C6; only the MWAIT states have s2idle/.
  [ "$(cat "$s"/state*/name | tr '\n' ' ')" = "POLL C1 C1E C6 " ]
  [ "$(cat "$s/state3/latency") $(cat "$s/state3/residency")" = "133 600" ]
  [ "$(cat "$s/state0/power")" = 4294967295 ]
  [ ! -e "$s/state0/s2idle" ] && [ -d "$s/state1/s2idle" ]
  [ "$(stat -c %A "$s/state2/disable")" = "-rw-r--r--" ]
  [ "$(write_errno "$s/state2/disable" 0x10)" = OK ]
  [ "$(cat "$s/state2/disable")" = 1 ]
  [ "$(write_errno "$s/state2/disable" x)" = EINVAL ]
  [ "$(cat "$s/state2/disable")" = 1 ]
  # Offline: the CPU's cpuidle device goes; online: a fresh one (usage reset).
  echo 0 > "$MNT/devices/system/cpu/cpu1/online"
  [ ! -e "$s" ]
  echo 1 > "$MNT/devices/system/cpu/cpu1/online"
  [ "$(cat "$s/state2/disable")" = 0 ]
  [ ! -e "$MNT/devices/system/cpu/cpu0/online" ] && [ -d "$MNT/devices/system/cpu/cpu0/cpuidle/state3" ]
  vsysfs_stop
  # A Xen HVM guest: the interface, no driver, no per-CPU states.
  vsysfs_start -o "machine=$(machine_file xen-host-3dom)"
  [ "$(cat "$MNT/devices/system/cpu/cpuidle/current_driver")" = none ]
  [ ! -e "$MNT/devices/system/cpu/cpu1/cpuidle" ]
}

@test "cpuidle_driver: \"off\" is cpuidle.off=1 (no interface), \"none\" no driver; junk refused" {
  local f
  f=$(mktemp "$BATS_TEST_TMPDIR/m.XXXXXX")
  printf '[numa]\ncpuidle_driver = "off"\n[[numa.node]]\ncpus = "0-1"\nmemory_mb = 512\n' > "$f"
  vsysfs_start -o "machine=$f"
  [ ! -e "$MNT/devices/system/cpu/cpuidle" ] && [ ! -e "$MNT/devices/system/cpu/cpu1/cpuidle" ]
  [ -d "$MNT/devices/system/cpu/cpu1" ]
  vsysfs_stop
  sed -i 's/"off"/"none"/' "$f"
  vsysfs_start -o "machine=$f"
  [ "$(cat "$MNT/devices/system/cpu/cpuidle/current_driver")" = none ]
  [ ! -e "$MNT/devices/system/cpu/cpu1/cpuidle" ]
  vsysfs_stop
  sed -i 's/"none"/"haltpoll"/' "$f"
  run timeout 20 "$VSYSFS" -f -o "machine=$f" "$BATS_TEST_TMPDIR"
  [ "$status" -ne 0 ]
  [[ $output == *cpuidle_driver* ]]
}

@test "kernel/mm/ksm: the 6.12 knobs, their parsers and errnos; nothing merges" {
  vsysfs_start
  local k=$MNT/kernel/mm/ksm f
  for f in pages_scanned pages_shared pages_sharing pages_unshared pages_volatile pages_skipped \
           ksm_zero_pages full_scans stable_node_chains stable_node_dups general_profit; do
    [ "$(stat -c %A "$k/$f")" = "-r--r--r--" ] && [ "$(cat "$k/$f")" = 0 ]
  done
  for f in run sleep_millisecs pages_to_scan merge_across_nodes use_zero_pages smart_scan max_page_sharing \
           stable_node_chains_prune_millisecs advisor_mode advisor_max_cpu advisor_min_pages_to_scan \
           advisor_max_pages_to_scan advisor_target_scan_time; do
    [ "$(stat -c %A "$k/$f")" = "-rw-r--r--" ]
  done
  [ "$(cat "$k/run") $(cat "$k/sleep_millisecs") $(cat "$k/pages_to_scan") $(cat "$k/max_page_sharing")" = "0 20 100 256" ]
  [ "$(cat "$k/merge_across_nodes") $(cat "$k/smart_scan") $(cat "$k/use_zero_pages")" = "1 1 0" ]
  [ "$(cat "$k/advisor_mode")" = "[none] scan-time" ]
  # run: 0..2 (stop, merge, unmerge); ksmd has no mergeable area, so the
  # counters stay 0.
  [ "$(write_errno "$k/run" 3)" = EINVAL ]
  [ "$(write_errno "$k/run" 1)" = OK ]
  [ "$(cat "$k/run") $(cat "$k/full_scans") $(cat "$k/pages_scanned")" = "1 0 0" ]
  [ "$(write_errno "$k/run" 2)" = OK ]
  [ "$(cat "$k/run")" = 2 ]
  [ "$(write_errno "$k/merge_across_nodes" 2)" = EINVAL ]
  [ "$(write_errno "$k/max_page_sharing" 1)" = EINVAL ]
  [ "$(write_errno "$k/max_page_sharing" 2)" = OK ]
  [ "$(write_errno "$k/use_zero_pages" maybe)" = EINVAL ]
  [ "$(write_errno "$k/use_zero_pages" y)" = OK ]
  [ "$(cat "$k/use_zero_pages")" = 1 ]
  [ "$(write_errno "$k/advisor_target_scan_time" 0)" = EINVAL ]
  # The scan-time advisor owns pages_to_scan (its minimum, 500) and refuses
  # stores to it; back to none, the default 100.
  [ "$(write_errno "$k/pages_to_scan" 300)" = OK ]
  [ "$(write_errno "$k/advisor_mode" scan-time)" = OK ]
  [ "$(cat "$k/advisor_mode")" = "none [scan-time]" ]
  [ "$(cat "$k/pages_to_scan")" = 500 ]
  [ "$(write_errno "$k/pages_to_scan" 300)" = EINVAL ]
  [ "$(write_errno "$k/advisor_mode" bogus)" = EINVAL ]
  [ "$(write_errno "$k/advisor_mode" $'none\n')" = OK ]
  [ "$(cat "$k/pages_to_scan")" = 100 ]
}
