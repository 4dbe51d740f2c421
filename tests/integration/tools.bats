#!/usr/bin/env bats
# Real tools that read /sys, run against mounts of the shipped machines
# (docs/standard-files.md "Tools"): dmidecode, hwloc, virt-what, libudev
# (python3-pyudev). Expected values come from the machine files.
#
# dmidecode, virt-what and libudev have no sysroot option: they run in a
# private mount namespace (`unshare -m`) with the mount bound over /sys,
# which needs root (CAP_SYS_ADMIN); without it those tests skip. libudev
# refuses device paths that are not on a real sysfs unless
# SYSTEMD_DEVICE_VERIFY_SYSFS=0 (sd-device, systemd 250+).

bats_require_minimum_version 1.5.0
load helpers

setup() { SYSROOT=; }

teardown() {
  vsysfs_stop
  [ -z "$SYSROOT" ] || rm -rf "$SYSROOT"
}

machine_file() { echo "$VSYSFS_ROOT/machines/$1.toml"; }
require_tool() { command -v "$1" >/dev/null || skip "$1 is not installed (mount-scripts/install-deps)"; }

# in_sys CMD...: CMD in a private mount namespace whose /sys is the mount.
in_sys() {
  # shellcheck disable=SC2016  # $1 and $@ are the inner shell's
  unshare -m sh -c 'mount --bind "$1" /sys && shift && exec "$@"' in_sys "$MNT" "$@"
}
require_in_sys() {
  [ "$(id -u)" -eq 0 ] || skip "binding the mount over /sys needs root (unshare -m)"
  unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
}

# The machine as its file describes it (numa_machine.cpp: [numa], else the
# default topology from [net]/[xen]):
#   socket CORES THREADS      one line per package, in package order
#   node ID MEMORY_MB CPULIST
#   memory TOTAL_MB
#   pci SLOT NODE NAME MAC    one per PCI interface
machine_facts() { python3 "$BATS_TEST_DIRNAME/machine_facts.py" facts "$1"; }

dell_machines() {
  local f
  for f in "$VSYSFS_ROOT"/machines/*.toml; do grep -q '^\[dcdbas\]' "$f" && basename "$f" .toml; done
}

@test "dmidecode -t processor -t memory agrees with the CPUs and nodes of every Dell machine" {
  # On bare metal the firmware's sockets and arrays are the packages and
  # nodes; a Xen dom0 (the default machine) shows the host's
  # (machine_facts.py dmi_socket, dmi_array).
  require_tool dmidecode
  require_in_sys
  local name f out facts
  for name in $(dell_machines); do
    f=$(machine_file "$name")
    facts=$(machine_facts "$f")
    vsysfs_start -o "machine=$f"
    out=$(in_sys dmidecode -t processor -t memory) || { echo "$name: dmidecode failed: $out"; return 1; }
    # One type 4 per socket, with its core, enabled-core and thread counts.
    diff <(awk -F': ' '/Core Count/ { c = $2 } /Core Enabled/ { e = $2 } /Thread Count/ { print c, e, $2 }' <<<"$out") \
         <(awk '$1 == "dmi_socket" { print $2, $2, $3 }' <<<"$facts") \
      || { echo "$name: type 4 counts differ"; return 1; }
    # The DIMMs add up to the firmware's memory; one array per node.
    local got want
    got=$(awk -F': ' '/^\tSize: [0-9]+ (MB|GB)$/ { split($2, a, " "); s += a[1] * (a[2] == "GB" ? 1024 : 1) } END { print s + 0 }' <<<"$out")
    want=$(awk '$1 == "dmi_array" { s += $2 } END { print s + 0 }' <<<"$facts")
    [ "$got" = "$want" ] || { echo "$name: DIMMs total $got MB, machine has $want MB"; return 1; }
    [ "$(grep -c '^Physical Memory Array' <<<"$out")" -eq "$(grep -c '^dmi_array ' <<<"$facts")" ] \
      || { echo "$name: arrays are not one per node"; return 1; }
    # Each array's DIMMs are its node's memory, in node order.
    diff <(awk '/^Physical Memory Array/ { n++ } /^\tSize: [0-9]+ (MB|GB)$/ { s[n] += $2 * ($3 == "GB" ? 1024 : 1) }
                END { for (i = 1; i <= n; i++) print s[i] + 0 }' <<<"$out") \
         <(awk '$1 == "dmi_array" { print $2 }' <<<"$facts") || { echo "$name: per-array memory differs"; return 1; }
    vsysfs_stop
  done
}

@test "dmidecode: mapped addresses follow the memory blocks, slots hold the NICs, boot status is clean" {
  require_tool dmidecode
  require_in_sys
  local f out facts slot
  # A Dell with two nodes: the bare-metal R740 (dom0 on the default
  # machine sees one).
  f=$(machine_file dell-poweredge-r740)
  facts=$(machine_facts "$f")
  vsysfs_start -o "machine=$f"
  out=$(in_sys dmidecode -t 19 -t slot -t 32)
  # Node 0 from address 0, node 1 right after it, each as long as the node.
  local starts; starts=$(awk -F': ' '/Starting Address/ { print $2 }' <<<"$out")
  [ "$(head -1 <<<"$starts")" = "0x00000000000" ]
  local n0; n0=$(awk '$1 == "node" && $2 == 0 { print $3 }' <<<"$facts")
  [ "$(sed -n 2p <<<"$starts")" = "$(printf '0x%011X' $((n0 * 1024 * 1024)))" ]
  grep -q "Range Size: $((n0 / 1024)) GB" <<<"$out"
  # The memory blocks cover the same bytes: the first block of node 1
  # starts where the second range does.
  local bs; bs=$((16#$(cat "$MNT/devices/system/memory/block_size_bytes")))
  local first1; first1=$(find "$MNT/devices/system/node/node1/" -maxdepth 1 -name 'memory*' -printf '%f\n' | sed 's/memory//' | sort -n | head -1)
  [ $((first1 * bs)) -eq $((n0 * 1024 * 1024)) ]
  while read -r _ slot _; do
    grep -q "Bus Address: $slot\$" <<<"$out" || { echo "no slot holds $slot"; echo "$out"; return 1; }
  done < <(grep '^pci ' <<<"$facts")
  grep -q "^System Boot Information" <<<"$out"
  grep -q "Status: No errors detected" <<<"$out"
}

@test "dmidecode on the Xen HVM guest shows hvmloader's tables: the domain's handle, vCPUs and memory" {
  # xen tools/firmware/hvmloader/smbios.c: type 0 and 1 "Xen" with the
  # Xen version, the handle as UUID and serial, one type 4 per vCPU, one
  # type 17 per 16 GiB of the guest's memory (docs/devices/xen.md).
  require_tool dmidecode
  require_in_sys
  local f facts out uuid version vcpus mem
  f=$(machine_file xen-guest-vnuma)
  facts=$(machine_facts "$f")
  vsysfs_start -o "machine=$f"
  uuid=$(cat "$MNT/hypervisor/uuid")
  version="$(cat "$MNT/hypervisor/version/major").$(cat "$MNT/hypervisor/version/minor")$(cat "$MNT/hypervisor/version/extra")"
  [ "$version" = 4.17.3 ]
  out=$(in_sys dmidecode -t 0 -t 1)
  grep -q '^SMBIOS 2.4 present' <<<"$out"
  grep -qx $'\tVendor: Xen' <<<"$out"
  grep -qx $'\tVersion: '"$version" <<<"$out"
  grep -qx $'\tBIOS Revision: 4.17' <<<"$out"
  grep -qx $'\tManufacturer: Xen' <<<"$out"
  grep -qx $'\tProduct Name: HVM domU' <<<"$out"
  grep -qx $'\tSerial Number: '"$uuid" <<<"$out"
  grep -qx $'\tUUID: '"$uuid" <<<"$out"
  [ "$(grep -c 'Base Board' <<<"$out")" -eq 0 ]
  # One "CPU n" per vCPU, n from 1.
  vcpus=$(awk '$1 == "socket" { n += $3 } END { print n }' <<<"$facts")
  [ "$vcpus" -eq 8 ]
  out=$(in_sys dmidecode -t 4)
  [ "$(grep -c $'^\tSocket Designation: CPU ' <<<"$out")" -eq "$vcpus" ]
  diff <(seq 1 "$vcpus" | sed 's/^/CPU /') <(sed -n 's/^\tSocket Designation: //p' <<<"$out")
  # The memory devices add up to the nodes' total.
  mem=$(awk '$1 == "memory" { print $2 }' <<<"$facts")
  out=$(in_sys dmidecode -t 17)
  [ "$(awk -F': ' '$1 == "\tSize" { split($2, a, " "); s += (a[2] == "GB" ? a[1] * 1024 : a[1]) } END { print s + 0 }' <<<"$out")" -eq "$mem" ]
  # dmi-id says the same, with the kernel's modes.
  local id=$MNT/class/dmi/id
  [ "$(cat "$id/product_uuid")" = "$uuid" ]
  [ "$(cat "$id/sys_vendor") $(cat "$id/product_name") $(cat "$id/bios_vendor") $(cat "$id/chassis_vendor")" = "Xen HVM domU Xen Xen" ]
  [ "$(stat -c %a "$id/product_uuid") $(stat -c %a "$id/product_serial") $(stat -c %a "$id/chassis_serial") $(stat -c %a "$id/sys_vendor")" = "400 400 400 444" ]
  [ ! -e "$id/board_serial" ]
}

@test "virt-what says xen and xen-hvm on the HVM guest: Xen's CPUID leaf and SMBIOS tables" {
  # virt-what: "XenVMMXenVMM" from the CPUID helper and dmidecode finding
  # tables is an HVM guest. The test root stands for the guest's CPUID
  # (the helper) and /proc; dmidecode reads the mount bound over /sys, and
  # where that has no tables it scans a low megabyte of zeros, not this
  # host's /dev/mem ("No SMBIOS nor DMI entry point found").
  require_tool virt-what
  require_tool dmidecode
  require_in_sys
  vsysfs_start -o "machine=$(machine_file xen-guest-vnuma)"
  SYSROOT=$(mktemp -d "${BATS_TMPDIR:-/tmp}/tools-root.XXXXXX")
  mkdir -p "$SYSROOT/proc" "$SYSROOT/usr/libexec" "$SYSROOT/sbin"
  ln -s /sys "$SYSROOT/sys"
  printf 'processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu hypervisor\n\n' > "$SYSROOT/proc/cpuinfo"
  printf '#!/bin/sh\necho XenVMMXenVMM\n' > "$SYSROOT/usr/libexec/virt-what-cpuid-helper"
  head -c 1048576 /dev/zero > "$SYSROOT/mem"
  printf '#!/bin/sh\nexec /usr/sbin/dmidecode -d "%s/mem" "$@"\n' "$SYSROOT" > "$SYSROOT/sbin/dmidecode"
  chmod +x "$SYSROOT/usr/libexec/virt-what-cpuid-helper" "$SYSROOT/sbin/dmidecode"
  run in_sys virt-what --test-root="$SYSROOT"
  [ "$status" -eq 0 ]
  [ "$output" = $'xen\nxen-hvm' ]
}

@test "lstopo places each NIC in its numa_node only" {
  require_tool lstopo-no-graphics
  local name f facts xml
  for name in default xen-guest-vnuma net-lab; do
    f=$(machine_file "$name")
    facts=$(machine_facts "$f")
    vsysfs_start -o "machine=$f"
    SYSROOT=$(mktemp -d "${BATS_TMPDIR:-/tmp}/tools-root.XXXXXX")
    ln -s "$MNT" "$SYSROOT/sys"
    xml=$(HWLOC_FSROOT=$SYSROOT lstopo-no-graphics --of xml 2>/dev/null)
    # "SLOT NODES": the nodes of the NIC's closest non-I/O ancestor.
    local placed
    placed=$(python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
def walk(e, parents):
    for c in e.findall("object"):
        if c.get("type") == "PCIDev":
            anc = next(p for p in reversed(parents) if p.get("nodeset"))
            ns = int(anc.get("nodeset"), 16)
            print(c.get("pci_busid"), ",".join(str(i) for i in range(64) if ns >> i & 1))
        walk(c, parents + [c])
walk(root, [])' <<<"$xml")
    echo "$name: $placed" >&2
    local slot node ifname mac all
    all=$(seq -s, 0 $(($(grep -c '^node ' <<<"$facts") - 1)))
    while read -r _ slot node ifname mac; do
      local want=$node
      [ "$node" -ge 0 ] || want=$all
      grep -qx "$slot $want" <<<"$placed" || { echo "$name: $slot not placed in node(s) $want"; echo "$placed"; return 1; }
      # hwloc names the NIC's network interface under it.
      grep -q "name=\"$ifname\"" <<<"$xml"
    done < <(grep '^pci ' <<<"$facts")
    vsysfs_stop
    rm -rf "$SYSROOT"; SYSROOT=
  done
}

@test "virt-what says xen on every machine with [xen], and not on net-lab unless the host is Xen" {
  require_tool virt-what
  require_in_sys
  local f name out host_xen=0
  virt-what 2>/dev/null | grep -qx xen && host_xen=1
  # Every machine with [xen], and one without.
  for f in $(grep -l '^\[xen\]' "$VSYSFS_ROOT"/machines/*.toml) "$(machine_file net-lab)"; do
    name=$(basename "$f" .toml)
    vsysfs_start -o "machine=$f"
    out=$(in_sys virt-what 2>/dev/null)
    if grep -q '^\[xen\]' "$f"; then
      grep -qx xen <<<"$out" || { echo "$name: virt-what: $out"; return 1; }
    elif [ $host_xen -eq 0 ]; then
      ! grep -qx xen <<<"$out" || { echo "$name has no [xen], virt-what: $out"; return 1; }
    fi
    vsysfs_stop
  done
}

# libudev (pyudev over libudev1) through the mount.
udev_list() {
  SYSTEMD_DEVICE_VERIFY_SYSFS=0 in_sys /usr/bin/python3 -c '
import pyudev
c = pyudev.Context()
for sub, attr in (("net", "address"), ("cpu", "online"), ("node", "cpulist"), ("memory", "state"), ("pci", "vendor")):
    for d in c.list_devices(subsystem=sub):
        a = d.attributes.get(attr)
        parent = d.parent.sys_path if d.parent is not None else "-"
        print(sub, d.sys_name, parent, a.decode().strip() if a is not None else "-")
'
}

@test "libudev lists the net, cpu, node, memory and pci devices with their attributes and parents" {
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import pyudev' 2>/dev/null \
    || skip "python3-pyudev is not installed (mount-scripts/install-deps)"
  require_in_sys
  local name f facts out
  for name in default net-lab numa-4node; do
    f=$(machine_file "$name")
    facts=$(machine_facts "$f")
    vsysfs_start -o "machine=$f"
    out=$(udev_list) || { echo "$name: $out"; return 1; }
    # Every present CPU, parent devices/system/cpu; cpu0 has no online file.
    [ "$(grep -c '^cpu ' <<<"$out")" -eq "$(awk '$1 == "socket" { s += $3 } END { print s }' <<<"$facts")" ] \
      || { echo "$name: cpu count"; echo "$out" | grep '^cpu '; return 1; }
    grep -qx 'cpu cpu0 /sys/devices/system/cpu -' <<<"$out"
    grep -qx 'cpu cpu1 /sys/devices/system/cpu 1' <<<"$out"
    # Every node with its cpulist.
    local id
    while read -r _ id _; do
      grep -qx "node node$id /sys/devices/system/node $(cat "$MNT/devices/system/node/node$id/cpulist")" <<<"$out" \
        || { echo "$name: node$id"; grep '^node ' <<<"$out"; return 1; }
    done < <(grep '^node ' <<<"$facts")
    # Every memory block, online, under devices/system/memory.
    [ "$(grep -c '^memory memory[0-9]* /sys/devices/system/memory online$' <<<"$out")" \
      -eq "$(find "$MNT/devices/system/memory" -mindepth 1 -maxdepth 1 -name 'memory*' | wc -l)" ]
    # PCI functions under their root bus's host bridge (pciDDDD:BB); each
    # NIC's parent is its function.
    local slot node ifname mac bridge
    while read -r _ slot node ifname mac; do
      bridge=/sys/devices/pci${slot:0:7}
      grep -qx "pci $slot $bridge $(cat "$MNT/bus/pci/devices/$slot/vendor")" <<<"$out" \
        || { echo "$name: pci $slot"; grep '^pci ' <<<"$out"; return 1; }
      grep -q "^net $ifname $bridge/$slot " <<<"$out" \
        || { echo "$name: net $ifname"; grep '^net ' <<<"$out"; return 1; }
      [ "$mac" = - ] || grep -qx "net $ifname $bridge/$slot $mac" <<<"$out"
    done < <(grep '^pci ' <<<"$facts")
    vsysfs_stop
  done
}

@test "lspci -v lists every PCI function of every shipped machine, without error" {
  require_tool lspci
  local f name out n
  for f in "$VSYSFS_ROOT"/machines/*.toml; do
    name=$(basename "$f" .toml)
    n=$(machine_facts "$f" | grep -c '^pci ' || true)
    [ "$n" -gt 0 ] || continue
    vsysfs_start -o "machine=$f"
    {
      out=$(lspci -A linux-sysfs -O "sysfs.path=$MNT/bus/pci" -v 2>"$BATS_TEST_TMPDIR/err") \
        || { echo "$name: lspci failed"; cat "$BATS_TEST_TMPDIR/err"; return 1; }
      # Only the host's libkmod complaint is allowed on stderr.
      ! grep -v libkmod "$BATS_TEST_TMPDIR/err" | grep -q . || { cat "$BATS_TEST_TMPDIR/err"; return 1; }
      [ "$(grep -c '^[0-9a-f][0-9a-f]:' <<<"$out")" -eq "$n" ] || { echo "$name: $out"; return 1; }
    }
    vsysfs_stop
  done
}
