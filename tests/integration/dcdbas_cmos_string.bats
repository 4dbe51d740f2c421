#!/usr/bin/env bats
# CMOS (0xD4) string tokens (docs/devices/dell.md "CMOS string tokens") as
# libsmbios 2.4.3 reads and writes them (src/libsmbios_c/token/token_d4.c):
# a 0xD4 entry with andMask 0 is a string whose length is its orValue
# byte; its bytes are CMOS location..location+length-1, read and written
# one by one. libsmbios reaches CMOS through iopl(3) and port I/O
# (cmos_linux.c), which no mount can serve, or, with --cmos-dat /
# CMOS_UNIT_TEST_MODE, through a file in the cmos.dat layout: the mount's
# kernel/debug/vsysfs/dcdbas/cmos.
#
# smbios-token-ctl 2.4.3 finds the token and reports "type: string", but
# under Python 3 it cannot print a string token's value (makePrintable in
# libsmbios_c/trace_decorator.py iterates the bytes getString returns as
# ints) nor pass --set-string's str to token_obj_set_string (a c_char_p):
# the value goes through the same python3-libsmbios calls it makes
# (cli.py: CmosAccess(CMOS_GET_SINGLETON | CMOS_UNIT_TEST_MODE, path);
# TokenTable()[id].getString() / setString()).

load helpers

# Its 0xD4 tokens are what makes libsmbios need CMOS for any token call
# (token_table_factory -> add_d4_tokens -> setup_d4_checksum ->
# cmos_obj_factory): every call here passes --cmos-dat.
PE1400=$VSYSFS_ROOT/machines/dell-poweredge-1400.toml

teardown() { vsysfs_stop; }

require_libsmbios() {
  [ "$(id -u)" -eq 0 ] || skip "binding the mount over /sys needs root (unshare -m)"
  unshare -m true 2>/dev/null || skip "unshare -m is not permitted here"
  command -v smbios-token-ctl >/dev/null || skip "smbios-utils not installed"
  [ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 for python3-libsmbios"
}

# string_token CMOS_FILE ID [NEW]: libsmbios's view of token ID, after
# setting it to NEW when given: "isString isBool repr(getString())".
string_token() {
  in_dell_ns "/usr/bin/python3 -c '
import sys
from libsmbios_c import cmos, smbios_token
cmos.CmosAccess(cmos.CMOS_GET_SINGLETON | cmos.CMOS_UNIT_TEST_MODE, sys.argv[1].encode())
t = smbios_token.TokenTable()[int(sys.argv[2], 0)]
if len(sys.argv) > 3:
    t.setString(sys.argv[3].encode())
print(t.isString(), t.isBool(), repr(t.getString()))
' '$1' '$2' ${3+"'$3'"}"
}

# cmos_bytes PAGE INDEX COUNT: hex bytes of the cmos file.
cmos_bytes() {
  od -An -tx1 -v -j $(($1 * 256 + $2)) -N "$3" "$(ctl dcdbas/cmos)" | tr -d ' \n'
}

@test "smbios-token-ctl lists the PowerEdge 1400's CMOS asset tag 0xc000 as a string token" {
  require_libsmbios
  vsysfs_start -o machine="$PE1400"
  C=$(ctl dcdbas/cmos)
  run in_dell_ns "smbios-token-ctl --cmos-dat='$C' --token-id=0xc000 --is-string"
  [[ $output == *"type: string"* ]]
  # A bool token is still a bool.
  run in_dell_ns "smbios-token-ctl --cmos-dat='$C' --token-id=0x42 --is-bool"
  [[ $output == *"type: bool"* ]]
  [ "$status" -eq 0 ]
  run string_token "$C" 0xc000
  [ "$status" -eq 0 ]
  [ "$output" = "True False b'LAB-0001\\x00\\x00'" ]
  [ "$(cmos_bytes 0x70 0x40 10)" = 4c41422d303030310000 ]
}

@test "libsmbios sets the string: NUL padded, cut to the token's length, the next byte untouched" {
  require_libsmbios
  vsysfs_start -o machine="$PE1400"
  C=$(ctl dcdbas/cmos)
  printf '\x5a' | dd of="$C" bs=1 seek=$((0x70 * 256 + 0x4a)) conv=notrunc status=none
  run string_token "$C" 0xc000 RACK9
  [ "$output" = "True False b'RACK9\\x00\\x00\\x00\\x00\\x00'" ]
  [ "$(cmos_bytes 0x70 0x40 11)" = 5241434b3900000000005a ]
  # Longer than 10 bytes: _d4_set_string writes the first 10, no error.
  run string_token "$C" 0xc000 RACK9-U01-LONGER
  [ "$status" -eq 0 ]
  [ "$output" = "True False b'RACK9-U01-'" ]
  [ "$(cmos_bytes 0x70 0x40 11)" = 5241434b392d5530312d5a ]
  # Byte by byte through the cmos file, every write logged.
  events_matching cmos_write dcdbas | grep '"index_port":"0x70","index":"0x49"' | tail -1 \
    | grep -q '"count":1,"bytes":"2d"'
}

@test "QUIRK: a CMOS string write needs no security key, even with an admin password" {
  require_libsmbios
  sed '/^\[dcdbas\]$/a admin_password = "Secret1"' "$PE1400" \
    > "$BATS_TEST_TMPDIR/m.toml"
  vsysfs_start -o machine="$BATS_TEST_TMPDIR/m.toml"
  C=$(ctl dcdbas/cmos)
  # libsmbios's 0xD4 tokens have no try_password (token_d4.c): the bytes
  # go to the CMOS ports, which the BIOS does not guard; so does a bool
  # CMOS token. An NV write through the SMI (class 1) without the key is
  # refused at the same time (dell-smi exits 3 on the BIOS's -1).
  run string_token "$C" 0xc000 NOKEY
  [ "$output" = "True False b'NOKEY\\x00\\x00\\x00\\x00\\x00'" ]
  run in_dell_ns "smbios-token-ctl --cmos-dat='$C' --token-id=0x43 --activate"
  [ "$(cmos_bytes 0x70 0x5c 1)" = 00 ]
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 1 0 0x10 0
  [ "$status" -eq 3 ]
  [ "${lines[0]}" = "-1 0 0 0" ]
  events_matching smi dcdbas | grep '"class":1,"select":0' | tail -1 | grep -q '"note":"bad security key"'
}

@test "a CMOS string survives a host-control power cycle" {
  require_libsmbios
  # A TYPE2 host-control BIOS: its apm_cmd pointer is at CMOS
  # 0x70..0x73, clear of the string.
  vsysfs_start -o machine="$PE1400"
  K=$MNT/kernel/debug/vsysfs
  run string_token "$K/dcdbas/cmos" 0xc000 RACK9-U01
  [ "$output" = "True False b'RACK9-U01\\x00'" ]
  run "$SCRIPTS/dell-host-control" --sysfs "$MNT" powercycle --shutdown reboot
  [ "$status" -eq 0 ]
  [ "$(cat "$K/machine/power_state")" = cycled ]
  events_matching boot machine | grep -q '"after":"cycled"'
  # The driver probed again (volatile), the CMOS string is kept.
  [ "$(cat "$MNT/devices/platform/dcdbas/smi_data_buf_size")" = 0 ]
  [ "$(cat "$MNT/devices/platform/dcdbas/host_control_action")" = 0 ]
  run string_token "$K/dcdbas/cmos" 0xc000
  [ "$output" = "True False b'RACK9-U01\\x00'" ]
}
