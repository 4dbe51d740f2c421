#!/usr/bin/env bats
# A bounded seeded random operation sequence through a real mount of the
# default machine (dom0: one node, dcdbas) and of the two-vnode Xen guest
# (machines/xen-guest-vnuma.toml: the balloon across two nodes), with the
# manual clock (tests/random/mount_driver.py):
# Xen targets and hypervisor knobs, NUMA allocations, hugepages and CPU
# hotplug, dcdbas calling-interface SMIs, clock advances, valid and
# hostile values; after every step a subset of the in-process random
# suites' invariants is checked from the files (docs/random-tests.md).
# VSYSFS_RANDOM_SEED / VSYSFS_RANDOM_STEPS override the seed and length.

load helpers

DRIVER=$VSYSFS_ROOT/tests/random/mount_driver.py

setup() {
  command -v python3 >/dev/null || skip "python3 needed for the driver"
  vsysfs_start -o clock=manual
}

teardown() { vsysfs_stop; }

@test "random: a seeded sequence through the mount keeps the Xen, NUMA and dcdbas invariants" {
  run python3 "$DRIVER" "$MNT" --seed 20261203 --steps 200
  echo "$output" | head -40
  [ "$status" -eq 0 ]
  [[ "$output" == *"1 node(s), dcdbas yes, hugetlb no): OK"* ]]
}

@test "random: the same on the two-vnode Xen guest (balloon and policies across nodes)" {
  vsysfs_stop
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  run python3 "$DRIVER" "$MNT" --seed 20261203 --steps 200
  echo "$output" | head -40
  [ "$status" -eq 0 ]
  [[ "$output" == *"2 node(s), dcdbas no, hugetlb yes): OK"* ]]
}

@test "random: the driver catches a broken invariant (a planted wrong expectation fails)" {
  # The driver's model of the NV settings assumes a freshly booted BIOS:
  # change setting 0x10 behind its back (class 1 write) and the model's
  # answer for the next read disagrees with the BIOS's, so the run fails.
  printf '1IMS\0\0\0\0001ISB\262\0\332\0\001\0\0\0\020\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0' \
    > "$BATS_TEST_TMPDIR/cmd"
  dd if="$BATS_TEST_TMPDIR/cmd" of="$MNT/devices/platform/dcdbas/smi_data" bs=52 count=1 conv=notrunc 2>/dev/null
  echo 1 > "$MNT/devices/platform/dcdbas/smi_request"
  run python3 "$DRIVER" "$MNT" --seed 4 --steps 200
  echo "$output" | head -5
  [ "$status" -eq 1 ]
  [[ "$output" == *"smi answer"* ]]
}
