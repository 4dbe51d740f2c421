#!/usr/bin/env bats
# Permissions with -o allow_other (docs/permissions.md): what another
# user sees, what root without a capability gets, and that chmod/chown by
# root (and only by root) change who may do what. The mount point's parent
# is world-traversable, so the unprivileged user reaches the mount at all.
#
# Capabilities a store needs (EPERM inside store): the test device checks
# none, and the control plane checks none (as debugfs: its 0700 directory
# is the gate). The store-level EPERM rows are in the device suites: the
# Xen balloon (CAP_SYS_ADMIN: target_kb and target; xen_balloon.bats)
# and netdev (CAP_NET_ADMIN: mtu, queue files; netdev.bats). dcdbas checks
# no capability, as in the kernel. Here the capability
# rows are the VFS ones the kernel applies to every sysfs file:
# CAP_CHOWN (chown), CAP_FOWNER (chmod of a file one does not own) and
# CAP_DAC_OVERRIDE (write to another user's file).

load helpers

IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
D=devices/virtual/vsysfs_test/testdev0

setup() {
  MNT=$(mktemp -d /tmp/vsysfs-perm.XXXXXX)
  chmod 0755 "$MNT"
  VSYSFS_PID=$(VSYSFS=$VSYSFS_BUILD/vsysfs-test "$SCRIPTS/vsysfs-mount" "$MNT" -- \
    -o allow_other,clock=manual,machine="$BATS_TEST_DIRNAME/testdev.toml") || return 1
  export MNT VSYSFS_PID
  T=$MNT/$D
}
teardown() { vsysfs_stop; }

# Runs "$@" as nobody (65534:65534, no groups, no capabilities).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# Runs the shell command "$*" as root with capability $1 dropped (capsh).
root_without() { local cap=$1; shift; capsh --drop="$cap" -- -c "$*"; }

@test "allow_other: nobody reads 0444 and 0644 files" {
  [ "$(stat -c %a "$T/ro") $(stat -c %a "$T/value")" = "444 644" ]
  run as_nobody cat "$T/ro"
  [ "$status" -eq 0 ] && [ "$output" = "read-only" ]
  run as_nobody cat "$T/value"
  [ "$status" -eq 0 ] && [ "$output" = "7" ]
  run as_nobody ls "$T"
  [ "$status" -eq 0 ] && [[ "$output" == *value* ]]
}

@test "allow_other: nobody gets EACCES writing 0444/0644 files, and nothing changes" {
  run as_nobody "$IO" write "$T/value" "9"
  [ "$output" = "EACCES" ]
  run as_nobody "$IO" open "$T/ro" w
  [ "$output" = "EACCES" ]
  run as_nobody "$IO" open "$T/blob" w
  [ "$output" = "EACCES" ]
  [ "$(cat "$T/value")" = "7" ]
  [ -z "$(events_matching store testdev)" ]
}

@test "allow_other: nobody gets EACCES opening 0400, 0600 and 0200 files" {
  run as_nobody "$IO" open "$T/secret" r       # 0600
  [ "$output" = "EACCES" ]
  run as_nobody "$IO" open "$T/stream" r       # bin 0600
  [ "$output" = "EACCES" ]
  run as_nobody "$IO" open "$T/wo" w           # 0200
  [ "$output" = "EACCES" ]
  chmod 0400 "$T/ro"                           # a 0400 file
  run as_nobody "$IO" open "$T/ro" r
  [ "$output" = "EACCES" ]
  # root still reads them (owner bits)
  [ "$(cat "$T/secret")" = "42" ] && [ "$(cat "$T/ro")" = "read-only" ]
}

@test "allow_other: nobody cannot reach the control plane (kernel/debug is 0700 root)" {
  [ "$(stat -c '%a %U' "$MNT/kernel/debug")" = "700 root" ]
  run as_nobody ls "$MNT/kernel/debug"
  [ "$status" -ne 0 ] && [[ "$output" == *"Permission denied"* ]]
  for f in events clock/now_ns clock/advance_ms machine/shutdown testdev/set; do
    run as_nobody "$IO" open "$MNT/kernel/debug/vsysfs/$f" r
    [ "$output" = "EACCES" ]
    run as_nobody "$IO" write "$MNT/kernel/debug/vsysfs/$f" "1"
    [ "$output" = "EACCES" ]
  done
  run as_nobody stat "$MNT/kernel/debug/vsysfs"
  [ "$status" -ne 0 ]
  [ "$(cat "$(ctl clock/now_ns)")" = "0" ]
  [ "$(cat "$(ctl machine/power_state)")" = "on" ]
}

@test "nobody cannot chmod or chown (EPERM), and the modes stay" {
  run as_nobody chmod 0666 "$T/value"
  [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
  run as_nobody chown 65534 "$T/value"
  [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
  [ "$(stat -c '%a %u' "$T/value")" = "644 0" ]
  [ -z "$(events_matching chmod vfs)" ]
}

@test "root chmod: 0666 lets nobody store, 0644 takes it back; logged" {
  chmod 0666 "$T/value"
  run as_nobody "$IO" write "$T/value" "9"
  [ "$output" = "1" ]
  [ "$(cat "$T/value")" = "9" ]
  chmod 0644 "$T/value"
  run as_nobody "$IO" write "$T/value" "3"
  [ "$output" = "EACCES" ]
  [ "$(cat "$T/value")" = "9" ]
  events_matching chmod vfs | grep -q '"mode":438'
  events_matching chmod vfs | grep -q '"mode":420'
}

@test "root chown: the new owner may use the owner bits; others still may not" {
  chown 65534:65534 "$T/secret"
  [ "$(stat -c '%a %u:%g' "$T/secret")" = "600 65534:65534" ]
  run as_nobody cat "$T/secret"
  [ "$status" -eq 0 ] && [ "$output" = "42" ]
  run as_nobody "$IO" write "$T/secret" "5"
  [ "$output" = "1" ]
  run setpriv --reuid=1000 --regid=1000 --clear-groups "$IO" open "$T/secret" r
  [ "$output" = "EACCES" ]
  # the new owner may chmod its file (owner rule), and that is all
  as_nobody chmod 0400 "$T/secret"
  [ "$(stat -c %a "$T/secret")" = "400" ]
  run as_nobody chown 1000 "$T/secret"
  [ "$status" -ne 0 ]
  events_matching chown vfs | grep -q '"uid":65534'
}

@test "root without CAP_CHOWN cannot chown (EPERM)" {
  run root_without cap_chown "chown 65534 '$T/value'"
  [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
  [ "$(stat -c %u "$T/value")" = "0" ]
  chown 65534 "$T/value"  # with it, it can
  [ "$(stat -c %u "$T/value")" = "65534" ]
}

@test "root without CAP_FOWNER cannot chmod another user's file (EPERM)" {
  chown 65534 "$T/value"
  run root_without cap_fowner "chmod 0600 '$T/value'"
  [ "$status" -ne 0 ] && [[ "$output" == *"not permitted"* ]]
  [ "$(stat -c %a "$T/value")" = "644" ]
}

@test "root without CAP_DAC_OVERRIDE cannot store into another user's 0644 file (EACCES)" {
  chown 65534 "$T/value"
  run root_without cap_dac_override "$IO write '$T/value' 5"
  [ "$output" = "EACCES" ]
  [ "$(cat "$T/value")" = "7" ]
  # and the sysfs open check applies to full root too: no write bit, no write
  run "$IO" open "$T/ro" w
  [ "$output" = "EACCES" ]
}

@test "root without CAP_SYS_ADMIN still drives the control plane (as debugfs: mode is the gate)" {
  run root_without cap_sys_admin "$IO write '$(ctl clock/advance_ms)' 5"
  [ "$output" = "1" ]
  [ "$(cat "$(ctl clock/now_ns)")" = "5000000" ]
  # the daemon saw a caller without CAP_SYS_ADMIN (cap mask logged with the caller)
  events_matching advance clock | tail -1 | grep -q '"uid":0'
}
