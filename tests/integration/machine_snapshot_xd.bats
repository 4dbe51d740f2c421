#!/usr/bin/env bats
# Machine snapshots of a machine with [xen] and [dcdbas] but no [net]
# (devices/xen/xen_state.cpp, devices/dell/dcdbas_state.cpp,
# docs/snapshot.md): driven from the mount with shell tools, a restore
# brings back every Xen and Dell file (binary ones and the xenstore
# included), the diff lists exactly the changed paths, and the balloon
# worker's retry pending at the snapshot runs at its instant again while
# the one armed after the snapshot never does.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
  MACHINE=$BATS_FILE_TMPDIR/xd.toml
  cat > "$MACHINE" <<'EOF'
[machine]
name = "xen and dcdbas, no net"

[xen]
host_memory = "8G"
memory = "2G"
max_memory = "3G"
used = "256M"

[[xen.domain]]
name = "db"
domid = 2
memory = "2G"
target = "1G"
pace = 2560

[dcdbas]
model = "PowerEdge 1400"
service_tag = "ABC1234"
asset_tag = "ASSET-42"

[[dcdbas.setting]]
location = 0x20
value = 3
min = 0
max = 9
EOF
  vsysfs_start -o clock=manual,machine="$MACHINE"
}

teardown_file() {
  vsysfs_stop
}

K() { echo "$MNT/kernel/debug/vsysfs/$1"; }

# Every node under the Xen and Dell directories: "path mode: content"
# (binary files and the seq files too).
dump() {
  python3 - "$MNT" <<'PY'
import os, sys
root = sys.argv[1]
tops = ["devices/system/xen_memory", "bus/xen_memory", "hypervisor", "kernel/debug/vsysfs/xen",
        "devices/platform/dcdbas", "kernel/debug/vsysfs/dcdbas", "firmware/dmi",
        "devices/virtual/dmi"]
for top in tops:
    for d, dirs, files in os.walk(os.path.join(root, top)):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(d, name)
            if os.path.islink(p):
                continue
            line = f"{os.path.relpath(p, root)} {os.lstat(p).st_mode:o}"
            try:
                with open(p, "rb") as f:
                    line += ": " + repr(f.read())
            except OSError as e:
                line += ": errno " + str(e.errno)
            print(line)
PY
}

@test "xen + dcdbas: restore brings every file back, diff lists exactly the changed paths, timers at their instants" {
  X=$MNT/devices/system/xen_memory/xen_memory0
  D=$MNT/devices/platform/dcdbas
  # A failed populate: the balloon's worker retries 2 s after (at 2 s).
  echo 1 > "$(K xen/populate_fail)"
  echo 3145728 > "$X/target_kb"
  echo 1 > "$(K clock/advance_ms)"
  [ "$(cat "$(K xen/guest/state)")" = EAGAIN ]
  dump > "$BATS_TEST_TMPDIR/before"
  echo base > "$(K machine/snapshot)"

  # Stores on the balloon, the hypervisor, the xenstore (whose watch sets
  # db's target), the SMI buffer, host control and CMOS (binary).
  echo 2097152 > "$X/target_kb"
  echo 16 > "$X/max_schedule_delay"
  echo 0 > "$X/scrub_pages"
  echo 100 > "$(K xen/domain/db/pace)"
  echo "/local/domain/2/memory/target 786432" > "$(K xen/xenstore)"
  echo 8192 > "$D/smi_data_buf_size"
  echo 2 > "$D/host_control_action"
  echo 1 > "$D/host_control_on_shutdown"
  printf '\x5a' | dd of="$(K dcdbas/cmos)" bs=1 seek=$((0x70 * 256 + 0x40)) conv=notrunc status=none
  echo "base now" > "$(K machine/diff)"
  run -0 cut -d: -f1 "$(K machine/diff)"
  [ "$output" = "devices/platform/dcdbas/host_control_action
devices/platform/dcdbas/host_control_on_shutdown
devices/platform/dcdbas/smi_data_buf_phys_addr
devices/platform/dcdbas/smi_data_buf_size
devices/system/xen_memory/xen_memory0/max_schedule_delay
devices/system/xen_memory/xen_memory0/scrub_pages
devices/system/xen_memory/xen_memory0/target
devices/system/xen_memory/xen_memory0/target_kb
kernel/debug/vsysfs/xen/domain/db/pace
kernel/debug/vsysfs/xen/domain/db/target_kb" ]

  # Time runs: the worker woken by the new target steps at 1 ms (and backs
  # off past 3 s, so no step at 2 s), db paces.
  echo 3000 > "$(K clock/advance_ms)"
  dump > "$BATS_TEST_TMPDIR/changed"
  run -1 diff -q "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/changed"

  echo base > "$(K machine/restore)"
  dump > "$BATS_TEST_TMPDIR/after"
  diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
  echo "base now" > "$(K machine/diff)"
  [ -z "$(cat "$(K machine/diff)")" ]
  [ "$(cat "$(K clock/now_ns)")" = 1000000 ]

  # The retry pending at the snapshot runs at 2 s again; the step armed
  # after the snapshot (at 1 ms) does not run again.
  echo 1998 > "$(K clock/advance_ms)"
  [ "$(cat "$(K xen/guest/state)")" = EAGAIN ]
  echo 1 > "$(K clock/advance_ms)"
  [ "$(cat "$(K xen/guest/state)")" = DONE ]
  run -0 events_matching step xen_balloon
  [ "$(grep -c '"time_ns":2000000000,' <<< "$output")" = 1 ]
  [ "$(grep -c '"time_ns":1000000,' <<< "$output")" = 1 ]
}
