#!/usr/bin/env bats
# The old PowerEdge example machines look like themselves
# (docs/devices/dell.md "Old models"): the vendor name of their years, an
# SMBIOS 2.3 entry point, and the Dell system ID where a source gives one
# (machines/dell-poweredge-*.toml cite each value).

load helpers

teardown() { vsysfs_stop; }

# entry_point_version: "MAJOR.MINOR BCD" from the _SM_ entry point bytes.
entry_point_version() {
  od -An -tu1 -j6 -N2 "$MNT/firmware/dmi/tables/smbios_entry_point" | awk '{printf "%s.%s", $1, $2}'
  od -An -tx1 -j30 -N1 "$MNT/firmware/dmi/tables/smbios_entry_point" | awk '{printf " %s\n", $1}'
}

@test "the entry points and class/dmi/id of the PowerEdge 300, 750 and 1400" {
  for m in 300 750 1400; do
    vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-$m.toml"
    [ "$(entry_point_version)" = "2.3 23" ]
    [ "$(cat "$MNT/class/dmi/id/sys_vendor")" = "Dell Computer Corporation" ]
    [ "$(cat "$MNT/class/dmi/id/bios_vendor")" = "Dell Computer Corporation" ]
    [ "$(cat "$MNT/class/dmi/id/product_name")" = "PowerEdge $m" ]
    vsysfs_stop
  done
  # The R740 is still an SMBIOS 2.8 machine of Dell Inc.
  vsysfs_start
  [ "$(entry_point_version)" = "2.8 28" ]
  [ "$(cat "$MNT/class/dmi/id/sys_vendor")" = "Dell Inc." ]
}

@test "dmidecode and smbios-sys-info see the old models' versions and system IDs" {
  [ "$(id -u)" -eq 0 ] || skip "binding the mount over /sys needs root (unshare -m)"
  command -v dmidecode >/dev/null || skip "dmidecode not installed"
  command -v smbios-sys-info >/dev/null || skip "smbios-utils not installed"
  for m in 750 1400; do
    vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-$m.toml"
    run in_dell_ns dmidecode
    [ "$status" -eq 0 ]
    [[ $output == *"SMBIOS 2.3 present."* ]]
    [ "$(in_dell_ns dmidecode -s system-manufacturer)" = "Dell Computer Corporation" ]
    run in_dell_ns smbios-sys-info
    case $m in
      750) [[ $output == *"System ID:              0x0165"* ]] ;;
      1400) [[ $output == *"System ID:              0x00CE"* ]] ;;
    esac
    [[ $output == *"Vendor:                 Dell Computer Corporation"* ]]
    vsysfs_stop
  done
}

@test "smbios_version is checked" {
  printf '[dcdbas]\nsmbios_version = "3.0"\n' > "$BATS_TEST_TMPDIR/bad.toml"
  run "$VSYSFS" -o machine="$BATS_TEST_TMPDIR/bad.toml" "$BATS_TEST_TMPDIR"
  [ "$status" -ne 0 ]
  [[ $output == *"smbios_version"* ]]
}
