#!/usr/bin/env bats
# PCI driver binding through the mount with shell tools
# (devices/net/netdev_pci_driver.hpp; kernel drivers/base/bus.c bind_store,
# unbind_store, drivers/base/dd.c, drivers/pci/pci-driver.c, pci-sysfs.c
# driver_override): unbinding the default machine's eth0 from its driver
# unregisters the interface, binding it back probes it again.

load helpers
bats_require_minimum_version 1.5.0

setup() { vsysfs_start -o clock=manual; }
teardown() {
  exec 7<&- || true  # an fd left on the mount would keep it busy
  vsysfs_stop
}

BDF=0000:00:03.0
DRV() { echo "$MNT/bus/pci/drivers/igb/$1"; }
FN() { echo "$MNT/devices/pci0000:00/$BDF/$1"; }

@test "driver files: modes, links to the bound devices" {
  [ "$(stat -c %a "$(DRV bind)")" = "200" ]
  [ "$(stat -c %a "$(DRV unbind)")" = "200" ]
  [ "$(stat -c %a "$(DRV new_id)")" = "200" ]
  [ "$(stat -c %a "$(DRV remove_id)")" = "200" ]
  [ "$(stat -c %a "$(DRV uevent)")" = "200" ]
  echo change > "$(DRV uevent)"
  events_matching uevent igb | grep -q 'SUBSYSTEM=drivers'
  [ "$(stat -c %a "$(FN driver_override)")" = "644" ]
  [ "$(cat "$(FN driver_override)")" = "(null)" ]
  [ "$(readlink "$(DRV $BDF)")" = "../../../../devices/pci0000:00/$BDF" ]
  [ "$(readlink "$(FN driver)")" = "../../../bus/pci/drivers/igb" ]
}

@test "unbind removes eth0 (fd ENODEV, lspci no driver, remove uevent); bind brings it back down, counters 0, same MAC" {
  mac=$(cat "$MNT/class/net/eth0/address")
  [ "$(cat "$MNT/class/net/eth0/operstate")" = "up" ]
  exec 7< "$MNT/class/net/eth0/address"
  echo "$BDF" > "$(DRV unbind)"
  [ ! -L "$MNT/class/net/eth0" ]
  [ ! -e "$(FN net/eth0)" ]
  [ ! -L "$(FN driver)" ]
  [ ! -L "$(DRV $BDF)" ]
  [ -e "$MNT/class/net/eth1" ]
  run -1 cat <&7
  [[ "$output" == *"No such device"* ]]
  exec 7<&-
  [ "$(cat "$(FN enable)")" = "0" ]
  run ! grep -q '^DRIVER=' "$(FN uevent)"
  run lspci -k -s 00:03.0 -A linux-sysfs -O sysfs.path="$MNT/bus/pci"
  [ "$status" -eq 0 ] && [[ "$output" == *"Ethernet controller"* ]]
  [[ "$output" != *"Kernel driver in use"* ]]
  events_matching uevent eth0 | grep -q '"action":"remove"'
  events_matching uevent "$BDF" | grep -q '"action":"unbind"'
  events_matching stop eth0

  echo "$BDF" > "$(DRV bind)"
  [ "$(cat "$MNT/class/net/eth0/address")" = "$mac" ]
  [ "$(cat "$MNT/class/net/eth0/flags")" = "0x1002" ]
  [ "$(cat "$MNT/class/net/eth0/operstate")" = "down" ]
  [ "$(cat "$MNT/class/net/eth0/statistics/tx_packets")" = "0" ]
  [ "$(cat "$MNT/class/net/eth0/carrier_changes")" = "0" ]
  [ -d "$MNT/class/net/eth0/queues/tx-0" ]
  [ "$(readlink "$(FN driver)")" = "../../../bus/pci/drivers/igb" ]
  [ "$(cat "$(FN enable)")" = "1" ]
  grep -q '^DRIVER=igb$' "$(FN uevent)"
  run lspci -k -s 00:03.0 -A linux-sysfs -O sysfs.path="$MNT/bus/pci"
  [[ "$output" == *"Kernel driver in use: igb"* ]]
  events_matching uevent eth0 | grep -q '"action":"add"'
  events_matching uevent "$BDF" | grep -q '"action":"bind"'
  # It works again: up through its flags.
  echo 0x1003 > "$MNT/class/net/eth0/flags"
  [ "$(cat "$MNT/class/net/eth0/operstate")" = "up" ]
}

# lspci -vv of the mount: stderr may carry only the host's libkmod line.
lspci_vv() {
  lspci -vv -s 00:03.0 -A linux-sysfs -O sysfs.path="$MNT/bus/pci" 2>"$BATS_TEST_TMPDIR/lspci.err"
  local rc=$?
  if grep -v 'libkmod' "$BATS_TEST_TMPDIR/lspci.err" | grep -q .; then
    cat "$BATS_TEST_TMPDIR/lspci.err" >&2; return 1
  fi
  return $rc
}

# The entries of directory $1, numerically sorted, on one line.
names() { find "$1" -mindepth 1 -printf '%f\n' | sort -n | paste -sd ' '; }

@test "I350 as lspci -vv shows it: PM, MSI, MSI-X in BAR3, Express Endpoint; msi_irqs/ while bound; unbind: MSI-X Enable-" {
  out=$(lspci_vv)
  echo "$out" >&2
  [[ "$out" == *"Status: Cap+ "* ]]
  [[ "$out" == *"DisINTx+"* ]]
  [[ "$out" == *"Interrupt: pin A routed to IRQ $(cat "$(FN irq)")"* ]]
  grep -q "Region 0: Memory at fe000000 (32-bit, non-prefetchable) \[size=1M\]" <<<"$out"
  grep -q "Region 2: I/O ports at e000 \[size=32\]" <<<"$out"
  grep -q "Region 3: Memory at fe200000 (32-bit, non-prefetchable) \[size=16K\]" <<<"$out"
  grep -q "Capabilities: \[40\] Power Management version 3" <<<"$out"
  grep -q "Capabilities: \[50\] MSI: Enable- Count=1/1 Maskable+ 64bit+" <<<"$out"
  grep -q "Capabilities: \[70\] MSI-X: Enable+ Count=10 Masked-" <<<"$out"
  grep -q "Vector table: BAR=3 offset=00000000" <<<"$out"
  grep -q "PBA: BAR=3 offset=00002000" <<<"$out"
  grep -q "Capabilities: \[a0\] Express (v2) Endpoint, MSI 00" <<<"$out"
  # igb's vectors (1 queue pair unpaired: rx, tx, other), "msix", 0444;
  # eth1's follow eth0's.
  [ "$(names "$(FN msi_irqs)")" = "24 25 26" ]
  [ "$(names "$MNT/devices/pci0000:00/0000:00:04.0/msi_irqs")" = "27 28 29" ]
  [ "$(stat -c %a "$(FN msi_irqs/24)")" = "444" ]
  [ "$(cat "$(FN msi_irqs/26)")" = "msix" ]
  [ "$(stat -c %a "$(FN resource3)")" = "600" ]
  [ "$(stat -c %s "$(FN resource3)")" = "16384" ]

  echo "$BDF" > "$(DRV unbind)"
  [ ! -e "$(FN msi_irqs)" ]
  out=$(lspci_vv)
  grep -q "Capabilities: \[70\] MSI-X: Enable- Count=10 Masked-" <<<"$out"
  [[ "$out" == *"BusMaster- "*"DisINTx-"* ]]
  echo "$BDF" > "$(DRV bind)"
  [ "$(names "$(FN msi_irqs)")" = "24 25 26" ]
  lspci_vv | grep -q "Capabilities: \[70\] MSI-X: Enable+ Count=10 Masked-"
}

@test "errnos: unbind of an unbound device or garbage ENODEV, bind of a bound one EBUSY, no such device ENODEV" {
  [ "$(errno_of_write "$(DRV unbind)" 0000:00:09.0)" = "ENODEV" ]
  [ "$(errno_of_write "$(DRV bind)" 0000:00:09.0)" = "ENODEV" ]
  [ "$(errno_of_write "$(DRV unbind)" garbage)" = "ENODEV" ]
  [ "$(errno_of_write "$(DRV bind)" "$BDF")" = "EBUSY" ]
  echo "$BDF" > "$(DRV unbind)"
  [ "$(errno_of_write "$(DRV unbind)" "$BDF")" = "ENODEV" ]
  [ "$(errno_of_write "$MNT/class/net/eth1/address" x)" != "OK" ]
  # new_id / remove_id: fewer than two fields EINVAL, an unknown dynamic id ENODEV.
  [ "$(errno_of_write "$(DRV new_id)" 8086)" = "EINVAL" ]
  [ "$(errno_of_write "$(DRV new_id)" "8086 1521")" = "EEXIST" ]
  [ "$(errno_of_write "$(DRV remove_id)" "1234 5678")" = "ENODEV" ]
  [ "$(errno_of_write "$(DRV remove_id)" "zz")" = "EINVAL" ]
  [ ! -e "$MNT/class/net/eth0" ]
}

@test "driver_override: another driver's name stops bind (ENODEV) and drivers_probe, empty clears it" {
  echo "$BDF" > "$(DRV unbind)"
  echo vfio-pci > "$(FN driver_override)"
  [ "$(cat "$(FN driver_override)")" = "vfio-pci" ]
  [ "$(errno_of_write "$(DRV bind)" "$BDF")" = "ENODEV" ]
  [ ! -e "$MNT/class/net/eth0" ]
  echo "$BDF" > "$MNT/bus/pci/drivers_probe"  # nothing matches it
  [ ! -e "$MNT/class/net/eth0" ]
  echo > "$(FN driver_override)"
  [ "$(cat "$(FN driver_override)")" = "(null)" ]
  echo "$BDF" > "$MNT/bus/pci/drivers_probe"  # device_attach: igb matches
  [ -e "$MNT/class/net/eth0" ]
  [ "$(readlink "$(FN driver)")" = "../../../bus/pci/drivers/igb" ]
}

@test "new_id: a dynamic id of an unbound device attaches it; remove_id takes it out" {
  echo "$BDF" > "$(DRV unbind)"
  # With all 7 fields no EEXIST check: the driver attaches to what it matches.
  echo "8086 1521 ffffffff ffffffff 0 0 0" > "$(DRV new_id)"
  [ -e "$MNT/class/net/eth0" ]
  echo "8086 1521" > "$(DRV remove_id)"
  [ "$(errno_of_write "$(DRV remove_id)" "8086 1521")" = "ENODEV" ]
  [ "$(errno_of_write "$(DRV new_id)" "8086 1522 0 0 0 0 5")" = "EINVAL" ]
}

@test "snapshot across a binding change: restore is EIO with the net section's load EBUSY; same binding restores" {
  K=$MNT/kernel/debug/vsysfs/machine
  echo bound > "$K/snapshot"
  echo "$BDF" > "$(DRV unbind)"
  [ "$(errno_of_write "$K/restore" bound)" = "EIO" ]
  events_matching restore | grep -q '"load":"EBUSY","section":"net"'
  [ ! -e "$MNT/class/net/eth0" ]
  echo unbound > "$K/snapshot"
  echo unbound > "$K/restore"  # the same binding: restores
  [ ! -e "$MNT/class/net/eth0" ]
  echo "$BDF" > "$(DRV bind)"
  [ "$(errno_of_write "$K/restore" unbound)" = "EIO" ]
  echo bound > "$K/restore"
  [ -e "$MNT/class/net/eth0" ]
  [ "$(cat "$MNT/class/net/eth0/operstate")" = "up" ]
}

@test "two drivers: unbind through the other driver ENODEV, bind needs a matching id or driver_override" {
  vsysfs_stop
  machine=$(mktemp "${TMPDIR:-/tmp}/pcibind-machine.XXXXXX.toml")
  cat > "$machine" <<'TOML'
[net]
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
driver = "e1000"
peer = "eth1"
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
mac = "52:54:00:12:34:57"
driver = "igb"
pci_device = 0x10c9
TOML
  vsysfs_start -o clock=manual,machine="$machine"
  rm -f "$machine"
  E1000=$MNT/bus/pci/drivers/e1000
  IGB=$MNT/bus/pci/drivers/igb
  [ "$(errno_of_write "$E1000/unbind" 0000:00:04.0)" = "ENODEV" ]
  [ -L "$MNT/class/net/eth1" ]
  [ "$(errno_of_write "$IGB/unbind" "$BDF")" = "ENODEV" ]
  echo "$BDF" > "$E1000/unbind"
  [ "$(cat "$MNT/class/net/eth1/carrier")" = "0" ]  # the cable's other end went down
  [ "$(errno_of_write "$IGB/bind" "$BDF")" = "ENODEV" ]  # 8086:100e is not igb's
  echo igb > "$(FN driver_override)"
  [ "$(errno_of_write "$E1000/bind" "$BDF")" = "ENODEV" ]
  echo "$BDF" > "$IGB/bind"
  [ "$(readlink "$(FN driver)")" = "../../../bus/pci/drivers/igb" ]
  [ -L "$IGB/$BDF" ] && [ ! -L "$E1000/$BDF" ]
  run lspci -k -s 00:03.0 -A linux-sysfs -O sysfs.path="$MNT/bus/pci"
  [[ "$output" == *"Kernel driver in use: igb"* ]]
  [ "$(cat "$MNT/class/net/eth0/address")" = "52:54:00:12:34:56" ]
}

@test "state file: an unbound NIC keeps the journal (no base a new boot cannot load); the next mount replays it" {
  vsysfs_stop
  S=$BATS_TEST_TMPDIR/state
  vsysfs_start -o clock=manual,state="$S",state_compact=1
  echo "$BDF" > "$(DRV unbind)"
  echo 1400 > "$MNT/class/net/eth1/mtu"  # compacts: refused while eth0 is unbound
  events_matching state_compact vsysfs | grep -q '"result":"EBUSY"'
  vsysfs_stop
  vsysfs_start -o clock=manual,state="$S",state_compact=1
  [ ! -L "$MNT/class/net/eth0" ]
  [ "$(cat "$MNT/class/net/eth1/mtu")" = "1400" ]
  echo "$BDF" > "$(DRV bind)"
  echo 1300 > "$MNT/class/net/eth1/mtu"  # bound again: compacts into a base
  events_matching state_compact vsysfs | grep -q '"result":"OK"'
  vsysfs_stop
  vsysfs_start -o clock=manual,state="$S"
  [ -L "$MNT/class/net/eth0" ]
  [ "$(cat "$MNT/class/net/eth1/mtu")" = "1300" ]
  events_matching state_replay vsysfs | grep -q '"records":0'
}
