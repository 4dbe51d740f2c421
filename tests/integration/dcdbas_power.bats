#!/usr/bin/env bats
# The machine's power cycle (docs/devices/dell.md "Power cycle",
# docs/devices/machine.md): host control through dcdbas at shutdown, then a
# boot that resets what is volatile and keeps what is not; a machine that
# is off answers nothing but kernel/debug/vsysfs until machine/power is
# written "on".

load helpers

teardown() { vsysfs_stop; }

require_ns() {
  [ "$(id -u)" -eq 0 ] || skip "binding the mount over /sys needs root (unshare -m)"
  unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
}

@test "a power cycle through host control boots: volatile state reset, CMOS and tags kept, DMI updated" {
  require_ns
  command -v smbios-sys-info >/dev/null || skip "smbios-utils not installed"
  command -v dmidecode >/dev/null || skip "dmidecode not installed"
  vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-1400.toml"
  K=$MNT/kernel/debug/vsysfs
  [ "$(cat "$K/machine/power")" = on ]
  # Non-volatile changes: the asset tag through the BIOS (class 11 select
  # 1), a CMOS token, an NV setting.
  run in_dell_ns "smbios-sys-info --asset-tag --set=RACK9-U01"
  [ "$status" -eq 0 ]
  events_matching smi dcdbas | grep -q '"note":"asset tag set to '"'"'RACK9-U01'"'"'"'
  run in_dell_ns "smbios-token-ctl --cmos-dat='$K/dcdbas/cmos' --token-id=0x43 --activate"
  [[ ${lines[-1]} == *"value: true"* ]]
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 1 0 0x22 6)" = "0 6 0 7" ]
  # The tables are this boot's: the old tag, as on real hardware.
  [ "$(in_dell_ns dmidecode -s chassis-asset-tag)" = RACK7-U12 ]
  [ "$(cat "$MNT/class/dmi/id/chassis_asset_tag")" = RACK7-U12 ]
  [ "$(cat "$MNT/devices/platform/dcdbas/smi_data_buf_size")" != 0 ]

  run "$SCRIPTS/dell-host-control" --sysfs "$MNT" powercycle --shutdown reboot
  [ "$status" -eq 0 ]
  [ "$(cat "$K/machine/power_state")" = cycled ]
  [ "$(cat "$K/machine/power")" = on ]
  events_matching host_control dcdbas | grep -q '"parameter":20'
  events_matching boot machine | grep -q '"after":"cycled"'
  # Volatile: the driver probed again.
  [ "$(cat "$MNT/devices/platform/dcdbas/smi_data_buf_size")" = 0 ]
  [ "$(cat "$MNT/devices/platform/dcdbas/smi_data_buf_phys_addr")" = 0 ]
  [ "$(cat "$MNT/devices/platform/dcdbas/host_control_action")" = 0 ]
  [ "$(cat "$MNT/devices/platform/dcdbas/host_control_on_shutdown")" = 0 ]
  # Non-volatile: CMOS, the NV setting, the tag; the new boot's SMBIOS
  # tables carry the tag the BIOS had.
  run in_dell_ns "smbios-token-ctl --cmos-dat='$K/dcdbas/cmos' --token-id=0x43 --is-active"
  [[ $output == *"value: true"* ]]
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x22)" = "0 6 0 7" ]
  [ "$(in_dell_ns dmidecode -s chassis-asset-tag)" = RACK9-U01 ]
  [ "$(cat "$MNT/class/dmi/id/chassis_asset_tag")" = RACK9-U01 ]
  run in_dell_ns smbios-sys-info
  [[ $output == *"Asset Tag:              RACK9-U01"* ]]
  # A booted machine can be shut down again: this boot's notifier runs.
  echo reboot > "$K/machine/shutdown"
  [ "$(events_matching boot machine | wc -l)" -eq 2 ]
}

@test "an off machine answers nothing but the control plane until machine/power is written on" {
  vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-1400.toml"
  K=$MNT/kernel/debug/vsysfs
  D=$MNT/devices/platform/dcdbas
  [ "$(stat -c %a "$K/machine/power")" = 600 ]
  [ "$(errno_of_write "$K/machine/power" on)" = EBUSY ]
  [ "$(errno_of_write "$K/machine/power" off)" = EINVAL ]
  run "$SCRIPTS/dell-host-control" --sysfs "$MNT" poweroff --shutdown
  [ "$status" -eq 0 ]
  [ "$(cat "$K/machine/power")" = off ]
  [ "$(cat "$K/machine/power_state")" = off ]
  # The files are there; nothing behind them answers.
  [ -e "$D/smi_data_buf_size" ]
  run cat "$D/smi_data_buf_size"
  [ "$status" -ne 0 ]
  [[ $output == *"No such device"* ]]
  [ "$(errno_of_write "$D/smi_data_buf_size" 100)" = ENODEV ]
  run cat "$MNT/class/dmi/id/product_name"
  [[ $output == *"No such device"* ]]
  [ "$(errno_of_write "$K/machine/shutdown" reboot)" = EBUSY ]
  # Power on: a boot.
  echo on > "$K/machine/power"
  [ "$(cat "$K/machine/power")" = on ]
  [ "$(cat "$D/smi_data_buf_size")" = 0 ]
  [ "$(cat "$MNT/class/dmi/id/product_name")" = "PowerEdge 1400" ]
  events_matching boot machine | grep -q '"after":"power_on"'
}

@test "a halted machine reads halted and powers on the same way" {
  vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-1400.toml"
  K=$MNT/kernel/debug/vsysfs
  echo halt > "$K/machine/shutdown"
  [ "$(cat "$K/machine/power")" = halted ]
  [ "$(errno_of_write "$MNT/devices/platform/dcdbas/host_control_action" 4)" = ENODEV ]
  echo on > "$K/machine/power"
  [ "$(cat "$K/machine/power")" = on ]
  [ "$(cat "$K/machine/power_state")" = on ]
}

@test "a host-control power cycle resets the NICs' counters and the balloon; CMOS, NV settings and MACs stay" {
  # The default machine (an R740, whose BIOS answers no APM SMI) with a
  # BIOS that takes a TYPE2 host-control SMI.
  sed 's/^\[dcdbas\]$/[dcdbas]\nhost_control_type = 2/' "$VSYSFS_ROOT/machines/default.toml" \
    > "$BATS_TEST_TMPDIR/machine.toml"
  vsysfs_start -o "clock=manual,machine=$BATS_TEST_TMPDIR/machine.toml"
  K=$MNT/kernel/debug/vsysfs
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  advance() { echo "$1" > "$K/clock/advance_ms"; }
  mac=$(cat "$MNT/class/net/eth0/address")
  boot_kb=$(cat "$DEV/info/current_kb")
  boot_target=$(cat "$DEV/target_kb")
  # Volatile: traffic, an mtu, a balloon target, a NUMA allocation.
  echo "count 10 size 64 rate 1000" > "$K/net/eth0/traffic"
  echo start > "$K/net/eth0/traffic"
  advance 100
  [ "$(cat "$MNT/class/net/eth0/statistics/tx_packets")" = 10 ]
  [ "$(cat "$MNT/class/net/eth1/statistics/rx_packets")" = 10 ]
  echo 1400 > "$MNT/class/net/eth0/mtu"
  echo $((boot_kb - 1048576)) > "$DEV/target_kb"
  advance 1000
  [ "$(cat "$DEV/info/current_kb")" = $((boot_kb - 1048576)) ]
  echo "pages=256 kind=anon" > "$K/numa/alloc"
  [ -n "$(cat "$K/numa/allocations")" ]
  # Non-volatile: a CMOS byte (battery-backed) and an NV setting.
  printf '\x5a' | dd of="$K/dcdbas/cmos" bs=1 seek=$((0x72 * 256 + 0x40)) conv=notrunc status=none
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 1 0 0x21 1)" = "0 1 0 1" ]   # Wake on LAN on

  # The R740 is not in dcdbas.txt's table: the SMI type is given.
  run "$SCRIPTS/dell-host-control" --sysfs "$MNT" --smi-type 2 powercycle --shutdown reboot
  [ "$status" -eq 0 ]
  [ "$(cat "$K/machine/power_state")" = cycled ]
  events_matching boot machine | grep -q '"after":"cycled"'
  advance 1000
  # Volatile: back to the boot state.
  [ "$(cat "$MNT/class/net/eth0/statistics/tx_packets")" = 0 ]
  [ "$(cat "$MNT/class/net/eth1/statistics/rx_packets")" = 0 ]
  [ "$(cat "$MNT/class/net/eth0/mtu")" = 1500 ]
  [ "$(cat "$MNT/class/net/eth0/operstate")" = up ]
  [ "$(cat "$DEV/info/current_kb")" = "$boot_kb" ]
  [ "$(cat "$DEV/target_kb")" = "$boot_target" ]
  [ -z "$(cat "$K/numa/allocations")" ]
  # Non-volatile: kept.
  [ "$(cat "$MNT/class/net/eth0/address")" = "$mac" ]
  [ "$(od -An -tx1 -j $((0x72 * 256 + 0x40)) -N1 "$K/dcdbas/cmos" | tr -d ' ')" = 5a ]
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x21)" = "0 1 0 1" ]
}
