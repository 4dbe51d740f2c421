#!/usr/bin/env bats
# Lock paths through a real mount that the kernel takes outside flock(2)
# and F_SETLK: OFD locks and their last close, the POSIX close rule, range
# deadlocks (core/lock_service.hpp); and the Dell SMI clients that lock
# different dcdbas files (mount-scripts/dell-smi, libsmbios).
#
# Lock scenarios run in real processes (tests/helpers/lock-probe.py) on a
# vsysfs file and on a tmpfs file, whose fs/locks.c is the oracle: the
# outputs must be equal, and equal to the expected lines written here.

bats_require_minimum_version 1.5.0
load helpers

PROBE=$BATS_TEST_DIRNAME/../helpers/lock-probe.py
F=class/net/eth0/mtu

setup() {
  vsysfs_start
}

teardown() {
  for p in ${PIDS:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${ORACLE:-}" ] && rm -f "$ORACLE"
  vsysfs_stop
}

# probe SCENARIO: runs it on the mount and, if /dev/shm is a tmpfs, on a
# tmpfs file; fails if they differ. Sets $output to the mount's lines.
probe() {
  local mine theirs
  mine=$(timeout 120 "$PROBE" "$1" "$MNT/$F")
  if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    ORACLE=$(mktemp /dev/shm/locks-paths.XXXXXX)
    theirs=$(timeout 120 "$PROBE" "$1" "$ORACLE")
    if [ "$mine" != "$theirs" ]; then
      diff <(echo "$theirs") <(echo "$mine") >&2 || true
      echo "vsysfs differs from tmpfs (< tmpfs, > vsysfs)" >&2
      return 1
    fi
  fi
  output=$mine
}

@test "an OFD lock goes with the last close of its open file description" {
  probe ofd-close
  [ "$output" = "a-open OK
a-ofd-w OK
a-close OK
b-ofd-w OK
b-ofdw-w OK
b-posix-w OK" ]
  # Nothing is left held or queued.
  [ -z "$(cat "$(ctl locks)")" ]
}

@test "an OFD lock stays through the close of a dup, a fork child's copy, another file" {
  probe ofd-dup
  [ "$output" = "a-ofd-w OK
a-close-dup OK
b-after-dup-close EAGAIN
a-forkclose OK
b-after-fork-close EAGAIN
a-close-other OK
b-after-other-close EAGAIN
b-ofdw-waits PENDING
a-close-last OK
b-granted OK" ]
}

@test "a POSIX lock goes when its process closes any descriptor of the file" {
  probe posix-close
  [ "$output" = "a-setlk-w OK
b-setlk-held EAGAIN
a-close-other-fd OK
b-setlk-after OK" ]
}

@test "a cycle through byte ranges gives EDEADLK to the F_SETLKW that closes it" {
  probe deadlock
  [ "$output" = "a-0-9 OK
b-10-19 OK
a-waits-10-19 PENDING
b-asks-0-9 EDEADLK
b-unlock OK
a-granted OK" ]
  events_matching deadlock locks | grep -q '"result":"EDEADLK"'
}

@test "a three-owner range cycle: only the request that closes it gets EDEADLK" {
  probe deadlock3
  [ "$output" = "p0-holds OK
p1-holds OK
p2-holds OK
p0-waits PENDING
p1-waits PENDING
p2-closes-cycle EDEADLK
p2-unlock OK
p1-granted OK
p1-unlock OK
p0-granted OK" ]
}

@test "dell-smi and libsmbios (smbios-sys-info) keep out of each other's SMI buffer" {
  command -v smbios-sys-info >/dev/null || skip "libsmbios tools not installed"
  unshare -m true 2>/dev/null || skip "no mount namespaces here"
  local out=$BATS_TEST_TMPDIR/sysinfo
  mkdir -p "$out"
  # A bounded smbios-sys-info loop (libsmbios: flock on smi_request only),
  # each answer kept.
  in_dell_ns "for i in \$(seq 25); do smbios-sys-info > '$out'/\$i 2>&1; echo \$? >> '$out'/\$i; done" &
  PIDS=$!
  local bad=0 i
  for i in $(seq 60); do
    run "$SCRIPTS/dell-smi" --sysfs "$MNT" --string 11 2
    if [ "$status" -ne 0 ] || [ "${lines[1]:-}" != 7XJ4PQ2 ] || [[ ${lines[0]} != "0 "* ]]; then
      echo "dell-smi run $i: exit $status: $output" >&2
      bad=$((bad + 1))
    fi
  done
  wait "$PIDS"
  PIDS=
  for i in $(seq 25); do
    if [ "$(tail -1 "$out/$i")" != 0 ] ||
      ! grep -q "Service Tag:            7XJ4PQ2" "$out/$i" ||
      ! grep -q "Property Ownership Tag: Property of the vsysfs lab" "$out/$i"; then
      echo "smbios-sys-info run $i:" >&2
      cat "$out/$i" >&2
      bad=$((bad + 1))
    fi
  done
  [ "$bad" -eq 0 ]
  # Every dell-smi SMI was made with both locks held: smi_request first.
  [ "$(events_matching smi dcdbas | grep -c '"class":11,"select":2')" -ge 60 ]
}

@test "dell-smi takes smi_request before smi_data and holds both until the answer" {
  # A holder of smi_request (as libsmbios holds it) keeps dell-smi out.
  "$VSYSFS_BUILD/tests/helpers/sysfs-io" flock "$MNT/devices/platform/dcdbas/smi_request" ex 1500 \
    > "$BATS_TEST_TMPDIR/holder" &
  PIDS=$!
  for _ in $(seq 200); do grep -q OK "$BATS_TEST_TMPDIR/holder" && break; sleep 0.01; done
  grep -q OK "$BATS_TEST_TMPDIR/holder"
  "$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x21 > "$BATS_TEST_TMPDIR/smi" &
  local smi=$!
  PIDS="$PIDS $smi"
  # It waits for smi_request (its flock(1) does) and has not taken smi_data.
  for _ in $(seq 200); do grep -q "waiter pid=[0-9]* comm=flock " "$(ctl locks)" && break; sleep 0.01; done
  cat "$(ctl locks)"
  [ "$(head -1 "$(ctl locks)")" = "devices/platform/dcdbas/smi_request flock" ]
  grep -q "waiter pid=[0-9]* comm=flock " "$(ctl locks)"
  [ "$("$VSYSFS_BUILD/tests/helpers/sysfs-io" flock "$MNT/devices/platform/dcdbas/smi_data" ex nb)" = OK ]
  wait "$smi"
  [ "$(cat "$BATS_TEST_TMPDIR/smi")" = "0 0 0 1" ]
  # Without write access to smi_request the lock step fails first; with
  # --no-lock (no lock step) the write of step 3 does.
  chmod 0400 "$MNT/devices/platform/dcdbas/smi_request"
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x21
  [ "$status" -eq 2 ]
  [[ $output == *"open smi_request: EACCES"* ]]
  run "$SCRIPTS/dell-smi" --no-lock --sysfs "$MNT" 0 0 0x21
  [ "$status" -eq 2 ]
  [[ $output == *"write smi_request: EACCES"* ]]
}

@test "dell-token list without SMI tokens: nothing on stdout, the reason on stderr, exit 0" {
  vsysfs_stop
  vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-1400.toml"
  run --separate-stderr "$SCRIPTS/dell-token" --sysfs "$MNT" list
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  # shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
  [ "$stderr" = "dell-token: no SMI tokens: the SMBIOS 0xDA structure lists none" ]
  # And --help documents it.
  "$SCRIPTS/dell-token" --help | tr '\n' ' ' | grep -q "list prints nothing on stdout, says so on stderr and exits 0"
}
