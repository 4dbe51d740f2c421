#!/usr/bin/env bats
# vsysfs-record (docs/recording.md) on hand-made sysfs trees: what it
# records is served back byte for byte with its mode; what vsysfs cannot
# serve (absolute or escaping links, names that are not UTF-8, PCI BAR
# files) is listed as left out, never dropped silently and never a
# machine file the daemon refuses. The host and the example machines are
# tests/conformance/run's (make test-conformance).

bats_require_minimum_version 1.5.0
load helpers

setup() {
  TREE=$(mktemp -d "${BATS_TMPDIR:-/tmp}/record-tree.XXXXXX")
  OUT=$TREE.toml
}

teardown() {
  vsysfs_stop
  # The round trip's first mount, when the test stopped before unmounting it.
  if [ -n "${FIRST_MNT:-}" ]; then MNT=$FIRST_MNT VSYSFS_PID=$FIRST_PID vsysfs_stop; fi
  rm -rf "$TREE" "$OUT"
}

# A small sysfs-like tree: one CPU, node0, one PCI function with a virtio
# NIC under it, and some hostile entries.
make_tree() {
  local cpu=$TREE/devices/system/cpu pci=$TREE/devices/pci0000:00/0000:00:03.0
  mkdir -p "$cpu/cpu0/topology" "$cpu/cpu0/cpufreq" "$TREE/devices/system/node/node0" \
    "$pci/virtio2/net/eth0" "$TREE/class/net" "$TREE/bus/pci/devices"
  echo 0 > "$cpu/possible"; echo 0 > "$cpu/present"; echo 0 > "$cpu/online"
  echo 0 > "$cpu/cpu0/topology/thread_siblings_list"
  echo 3000000 > "$cpu/cpu0/cpufreq/cpuinfo_max_freq"; chmod 0444 "$cpu/cpu0/cpufreq/cpuinfo_max_freq"
  echo 0 > "$TREE/devices/system/node/node0/cpulist"
  echo 10 > "$TREE/devices/system/node/node0/distance"
  ln -s ../../node/node0 "$cpu/cpu0/node0"
  printf '\x86\x80\x00\x00\x07\x00' > "$pci/config"; chmod 0644 "$pci/config"
  printf 'x' > "$pci/resource0"; chmod 0600 "$pci/resource0"
  printf '' > "$pci/remove"; chmod 0200 "$pci/remove"
  echo 02:fc:00:00:00:01 > "$pci/virtio2/net/eth0/address"
  ln -s ../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0 "$TREE/class/net/eth0"
  ln -s ../../../devices/pci0000:00/0000:00:03.0 "$TREE/bus/pci/devices/0000:00:03.0"
  ln -s /etc "$pci/absolute"
  ln -s ../../../../../../../etc "$pci/escaping"
  printf 'a\nb' > "$pci/$(printf 'new\nline')"
  printf 'v' > "$pci/$(printf 'bad\xff')"
}

@test "a recorded tree is served back: bytes, modes, links; the rest is listed" {
  make_tree
  run "$SCRIPTS/vsysfs-record" --sysfs "$TREE" -o "$OUT"
  [ "$status" -eq 0 ]
  grep -qx '# left out: devices/pci0000:00/0000:00:03.0/resource0: PCI BAR file: a read of an I/O BAR does port I/O on the device' "$OUT"
  grep -q '^# left out: devices/pci0000:00/0000:00:03.0/absolute: a link that is absolute' "$OUT"
  grep -q '^# left out: devices/pci0000:00/0000:00:03.0/escaping: a link that is absolute, unreadable or leaves the tree' "$OUT"
  grep -q "^# left out: 'devices/pci0000:00/0000:00:03.0/bad.*: a name vsysfs cannot serve" "$OUT"
  grep -q '^# note: eth0 (devices/pci0000:00/0000:00:03.0/virtio2/net/eth0): not a kind the model has' "$OUT"
  vsysfs_start -o "machine=$OUT"
  local pci=$MNT/devices/pci0000:00/0000:00:03.0
  cmp "$pci/config" "$TREE/devices/pci0000:00/0000:00:03.0/config"
  [ "$(stat -c %a "$pci/config")" = 644 ]
  [ "$(stat -c %s "$pci/config")" = 6 ]
  [ "$(stat -c %a "$pci/remove")" = 200 ]
  [ "$(cat "$MNT/class/net/eth0/address")" = 02:fc:00:00:00:01 ]
  [ "$(readlink "$MNT/class/net/eth0")" = ../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0 ]
  [ "$(cat "$MNT/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")" = 3000000 ]
  [ "$(cat "$pci/$(printf 'new\nline')"; echo x)" = "$(printf 'a\nbx')" ]
  [ ! -e "$pci/resource0" ] && [ ! -L "$pci/absolute" ] && [ ! -L "$pci/escaping" ]
  # Read-only whatever the recorded mode: nothing recorded changes.
  run ! sh -c "echo 1 > '$pci/config'"
  [[ "$output" == *"Permission denied"* ]]
  cmp "$pci/config" "$TREE/devices/pci0000:00/0000:00:03.0/config"
  # The model's CPU directory: cpu/online is the model's, listed as shadowed.
  grep -qx devices/system/cpu/online "$(ctl recorded/shadowed)"
}

@test "a mount of an example machine records and replays equal (round trip)" {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/net-lab.toml"
  FIRST_MNT=$MNT FIRST_PID=$VSYSFS_PID
  run "$SCRIPTS/vsysfs-record" --sysfs "$MNT" -o "$OUT"
  [ "$status" -eq 0 ]
  grep -q '^kind = "nic"' "$OUT"
  MNT='' VSYSFS_PID=''
  vsysfs_start -o clock=manual -o "machine=$OUT"
  run python3 "$VSYSFS_ROOT/tests/conformance/compare.py" --recording "$OUT" --real "$FIRST_MNT" \
    --mount "$MNT" --allowed "$VSYSFS_ROOT/tests/conformance/allowed-differences" --context roundtrip:net-lab
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *", 0 failed" ]]
}
