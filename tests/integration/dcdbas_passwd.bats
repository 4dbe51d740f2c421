#!/usr/bin/env bats
# The BIOS passwords (docs/devices/dell.md "Passwords"): calling-interface
# classes 9 (user), 10 (admin) and 12 (owner) as libsmbios 2.4.3 uses them
# (src/libsmbios_c/smi/smi_password.c), and the security key that guards
# the BIOS's write classes once an admin password is installed.
#
# smbios-passwd 2.4.3 only reports (--info); it has no option to change a
# password. The change goes through libsmbios's own dell_smi_password_change
# (python3-libsmbios, smi.password_change), the call smbios-passwd is built
# on, with the scan codes its cli.py makes from ASCII.

load helpers

teardown() { vsysfs_stop; }

require_libsmbios() {
  [ "$(id -u)" -eq 0 ] || skip "binding the mount over /sys needs root (unshare -m)"
  command -v smbios-passwd >/dev/null || skip "smbios-utils not installed"
  [ -x /usr/bin/python3 ] || skip "no /usr/bin/python3 for python3-libsmbios"
}

# change_password WHICH OLD NEW: libsmbios's password change; prints cbRES1.
change_password() {
  in_dell_ns "/usr/bin/python3 -c '
import sys
sys.path.insert(0, \"/usr/share/smbios-utils\")
import cli
from libsmbios_c import smi
which = {\"user\": smi.DELL_SMI_PASSWORD_USER, \"admin\": smi.DELL_SMI_PASSWORD_ADMIN}[sys.argv[1]]
sc = lambda s: cli.braindead_asc_to_scancode(s).encode() if s else None
print(smi.password_change(which, sc(sys.argv[2]), sc(sys.argv[3])))
' $1 '$2' '$3'"
}

# The default machine with an admin password.
start_with_admin_password() {
  sed '/^\[dcdbas\]$/a admin_password = "Secret1"' "$VSYSFS_ROOT/machines/default.toml" \
    > "$BATS_TEST_TMPDIR/m.toml"
  vsysfs_start -o machine="$BATS_TEST_TMPDIR/m.toml"
}

@test "smbios-passwd reports the installed passwords and verifies one" {
  require_libsmbios
  start_with_admin_password
  run in_dell_ns "smbios-passwd --info --password=secret1"
  [ "$status" -eq 0 ]
  # No "II" interface: scan codes, 8 at most (libsmbios's defaults).
  [ "${lines[0]}" = "User password" ]
  [ "${lines[3]}" = $'\tNOT installed' ]
  [ "${lines[4]}" = "Admin password" ]
  [ "${lines[5]}" = $'\tPassword stored as: Keyboard Scancodes' ]
  [ "${lines[6]}" = $'\tPassword MAX length: 8' ]
  [ "${lines[7]}" = $'\tinstalled' ]
  # Scan codes: the keyboard makes "secret1" and "Secret1" the same.
  [ "${lines[8]}" = $'\tPassword entered MATCHED' ]
  [[ ${lines[9]} =~ ^$'\t'"SECURITY KEY: 0x"[0-9a-f]{4}$ ]]
  [ "${lines[10]}" = "Owner password" ]
  [ "${lines[13]}" = $'\tNOT installed' ]
  run in_dell_ns "smbios-passwd --info --password=secret2"
  [ "${lines[8]}" = $'\tPassword did not match' ]
  events_matching smi dcdbas | grep '"class":10,"select":1' | grep -q '"output":\[2,0,0,0\]'
}

@test "with an admin password a token write needs the key the password gives" {
  require_libsmbios
  start_with_admin_password
  # Without the password libsmbios sends key 0: the BIOS refuses (-1) and
  # the token stays as it was (libsmbios 2.4.3 does not check cbRES1).
  run in_dell_ns "smbios-token-ctl --token-id=0x43 --activate"
  [[ ${lines[-1]} == *"value: false"* ]]
  events_matching smi dcdbas | grep '"class":1,"select":0' | tail -1 \
    | grep '"note":"bad security key"' | grep -q '"output":\[-1,0,0,0\]'
  [ "$("$SCRIPTS/dell-token" --sysfs "$MNT" read 0x10)" = "0x0010 1 0 1" ]
  # With it, libsmbios verifies (class 10 select 1), gets the key and the
  # write carries it in input[2].
  run in_dell_ns "smbios-token-ctl --token-id=0x43 --activate --password=Secret1"
  [[ ${lines[-1]} == *"value: true"* ]]
  key=$(events_matching smi dcdbas | grep '"class":10,"select":1' | tail -1 \
    | sed -n 's/.*"output":\[0,\([0-9]*\),0,0\].*/\1/p')
  [ -n "$key" ]
  events_matching smi dcdbas | grep '"class":1,"select":0' | tail -1 \
    | grep -q "\"input\":\[16,0,$key,0\],\"output\":\[0,0,0,1\]"
  [ "$("$SCRIPTS/dell-token" --sysfs "$MNT" read 0x10)" = "0x0010 0 0 1" ]
}

@test "libsmbios changes the admin password; the old one stops working" {
  require_libsmbios
  start_with_admin_password
  run change_password admin wrong new2
  [ "$output" = 2 ]   # SMI_PASSWORD_INCORRECT: nothing changed
  run in_dell_ns "smbios-passwd --info --password=secret1"
  [ "${lines[8]}" = $'\tPassword entered MATCHED' ]
  run change_password admin secret1 new2
  [ "$output" = 0 ]   # SMI_PASSWORD_CHANGED
  run in_dell_ns "smbios-passwd --info --password=secret1"
  [ "${lines[8]}" = $'\tPassword did not match' ]
  run in_dell_ns "smbios-passwd --info --password=new2"
  [ "${lines[8]}" = $'\tPassword entered MATCHED' ]
  events_matching smi dcdbas | grep -q '"note":"admin password changed"'
  # Installing a user password from none: the old one is empty.
  run change_password user "" usr
  [ "$output" = 0 ]
  run in_dell_ns "smbios-passwd --info --password=usr"
  [ "${lines[3]}" = $'\tinstalled' ]
  [ "${lines[4]}" = $'\tPassword entered MATCHED' ]
}

@test "dell-smi speaks the password classes too" {
  start_with_admin_password
  # Class 10 select 0: installed (0); class 9: not installed (1).
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 10 0 1)" = "0 0 0 0" ]
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 9 0 1)" = "1 0 0 0" ]
  # "Secret1" as scan codes: 1f 12 2e 13 12 14 02, little-endian words.
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 10 1 0x132e121f 0x021412
  [ "$status" -eq 0 ]
  [[ $output =~ ^0\ [0-9]+\ 0\ 0$ ]]
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 10 1 0x132e121e 0x021412
  [ "${lines[0]}" = "2 0 0 0" ]
  [ "$status" -ne 0 ]
}
