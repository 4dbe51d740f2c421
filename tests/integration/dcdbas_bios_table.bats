#!/usr/bin/env bats
# The scriptable BIOS (docs/devices/dell.md "Scripting the BIOS"): entries
# in kernel/debug/vsysfs/dcdbas/smi_answers change what a calling-interface
# client sees, the dell-smi script and, when smbios-utils is installed,
# libsmbios's own tools.

load helpers

T=kernel/debug/vsysfs/dcdbas/smi_answers

setup() { IO=$VSYSFS_BUILD/tests/helpers/sysfs-io; }
teardown() { vsysfs_stop; }

@test "a table entry changes what dell-smi sees, and del puts the BIOS back" {
  vsysfs_start
  [ "$(stat -c %a "$MNT/$T")" = 600 ]
  [ -z "$(cat "$MNT/$T")" ]
  # Built in: Num Lock (location 0x10) reads 1; class 17 is unknown (-2).
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x10)" = "0 1 0 1" ]
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 17 1
  [ "$status" -eq 3 ]
  printf 'add 0 0 in=0x10,*,*,* res=-2\nadd 17 1 out=5,6,-7 res=0\n' > "$MNT/$T"
  [ "$(cat "$MNT/$T")" = "add 0 0 in=0x10,*,*,* out=0x0,0x0,0x0 res=-2
add 17 1 in=*,*,*,* out=0x5,0x6,0xfffffff9 res=0" ]
  # The token read now fails "not supported"; another location still works.
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x10
  [ "$status" -eq 3 ]
  [[ $output == *"-2 0 0 0"* ]]
  [[ $output == *ENXIO* ]]
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x30)" = "0 1 0 1" ]
  # The unknown class answers as scripted.
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 17 1)" = "0 5 6 -7" ]
  events_matching smi dcdbas | tail -1 | grep -q '"smi_answer":1'
  # Bad input: EINVAL and the table stays.
  [ "$("$IO" write "$MNT/$T" 'add 0 0 in=1,2')" = EINVAL ]
  [ "$("$IO" write "$MNT/$T" 'del 2')" = ENOENT ]
  [ "$(wc -l < "$MNT/$T")" = 2 ]
  echo 'del 0' > "$MNT/$T"
  [ "$("$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x10)" = "0 1 0 1" ]
  echo clear > "$MNT/$T"
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 17 1
  [ "$status" -eq 3 ]
}

@test "a machine-file [[dcdbas.smi_answer]] is the table at power-on" {
  f=$BATS_TEST_TMPDIR/m.toml
  cat > "$f" <<'TOML'
[dcdbas]
model = "PowerEdge 1400"
[[dcdbas.smi_answer]]
class = 11
select = 2
output = [0x4d494d53, 0x4e415449, 0x0]
TOML
  vsysfs_start -o machine="$f"
  [ "$(cat "$MNT/$T")" = "add 11 2 in=*,*,*,* out=0x4d494d53,0x4e415449,0x0 res=0" ]
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" --string 11 2
  [ "$status" -eq 0 ]
  [ "${lines[1]}" = SMIMITAN ]
}

@test "libsmbios sees the scripted BIOS: smbios-token-ctl reads the scripted value" {
  command -v smbios-token-ctl >/dev/null || skip "smbios-utils not installed"
  vsysfs_start
  run in_dell_ns "smbios-token-ctl --token-id=0x42 --is-active"
  [[ $output == *"value: true"* ]]
  # Num Lock's location 0x10 now reads 0: Disable (0x43, value 0) is the
  # active token, Enable (0x42, value 1) is not. The setting is unchanged.
  echo 'add 0 0 in=0x10,*,*,* out=0,0,1' > "$MNT/$T"
  run in_dell_ns "smbios-token-ctl --token-id=0x42 --is-active"
  [[ $output == *"value: false"* ]]
  run in_dell_ns "smbios-token-ctl --token-id=0x43 --is-active"
  [[ $output == *"value: true"* ]]
  events_matching smi dcdbas | grep '"comm":"smbios-token-ct' | tail -1 \
    | grep -q '"smi_answer":0,"class":0,"select":0,"input":\[16,0,0,0\],"output":\[0,0,0,1\]'
  # A failing read (cbRES1 -2, output[1] 0): libsmbios 2.4.3 does not look
  # at cbRES1 of a token read and takes output[1] as the value.
  echo 'clear' > "$MNT/$T"
  echo 'add 0 0 in=0x10,*,*,* res=-2' > "$MNT/$T"
  run in_dell_ns "smbios-token-ctl --token-id=0x43 --is-active"
  [[ $output == *"value: true"* ]]
  events_matching smi dcdbas | tail -1 | grep -q '"output":\[-2,0,0,0\]'
  # Cleared, the built-in BIOS answers again.
  echo 'clear' > "$MNT/$T"
  run in_dell_ns "smbios-token-ctl --token-id=0x42 --is-active"
  [[ $output == *"value: true"* ]]
}
