#!/usr/bin/env bats
# The toolstack's path on xen-host-3dom: memory/target written into the
# simulated xenstore (kernel/debug/vsysfs/xen/xenstore), directly and
# through mount-scripts/xen-mem-set, for this guest (web, domid 1) and
# for the other domains; the watch fires and the targets follow.

load helpers

setup() {
  vsysfs_start -o "clock=manual,machine=$VSYSFS_ROOT/machines/xen-host-3dom.toml"
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  XEN=$(ctl xen)
  STORE=$XEN/xenstore
  MEMSET="$SCRIPTS/xen-mem-set -m $MNT"
}

teardown() {
  vsysfs_stop
  if [ -n "${STATE_DIR:-}" ]; then rm -rf "$STATE_DIR"; fi
}

advance() { echo "$1" > "$(ctl clock/advance_ms)"; }

# The watch events of domid $1, one JSON line each.
watch_events() { events_matching watch xenstore | grep "\"domid\":$1,"; }

@test "the tree reads as xenstore-ls prints it; the boot watches fired once" {
  [ "$(stat -c %a "$STORE")" = 600 ]
  run cat "$STORE"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = 'tool = ""' ]
  [[ "$output" == *$'\n  1 = ""\n   vm = "/vm/'* ]]
  [[ "$output" == *$'   name = "web"\n   domid = "1"\n   memory = ""\n    static-max = "8388608"\n    target = "4194304"\n'* ]]
  [[ "$output" == *$'   name = "Domain-0"\n   domid = "0"\n'* ]]
  [[ "$output" == *$'   name = "db"\n   domid = "2"\n'* ]]
  [ "$(events_matching watch xenstore | grep -c '"first":true')" -eq 3 ]
}

@test "the guest's target through K/xen/xenstore: the watch fires and memory follows" {
  echo "/local/domain/1/memory/target 5242880" > "$STORE"
  [ "$(cat "$DEV/target_kb")" = 5242880 ]
  run watch_events 1
  [[ "${lines[1]}" == *'"path":"/local/domain/1/memory/target","value":"5242880","target_kb":5242880'* ]]
  events_matching target xen_balloon | grep -q '"via":"xenstore","target_kb":5242880'
  # 1 GiB of the host is free: the guest grows to 5 GiB.
  advance 1000
  [ "$(cat "$DEV/info/current_kb")" = 5242880 ]
  # A value the driver's %llu cannot read is stored and ignored.
  echo "/local/domain/1/memory/target lots" > "$STORE"
  [ "$(cat "$DEV/target_kb")" = 5242880 ]
  grep -q '    target = "lots"' "$STORE"
  watch_events 1 | tail -1 | grep -q '"result":"ignored"'
}

@test "another domain's target through K/xen/xenstore: it balloons at its pace" {
  echo "/local/domain/2/memory/target 5242880" > "$STORE"
  [ "$(cat "$XEN/domain/db/target_kb")" = 5242880 ]
  watch_events 2 | tail -1 | grep -q '"path":"/local/domain/2/memory/target","value":"5242880"'
  advance 1000   # 10000 pages a second
  [ "$(cat "$XEN/domain/db/current_kb")" = $((7340032 - 40000)) ]
}

@test "xen-mem-set: the guest by name and by id, Domain-0 and db" {
  run $MEMSET web 5g
  [ "$status" -eq 0 ]
  [ "$(cat "$DEV/target_kb")" = 5242880 ]
  watch_events 1 | tail -1 | grep -q '"value":"5242880","target_kb":5242880'
  uuid=$(cat "$MNT/hypervisor/uuid")
  grep -A3 "^ $uuid = " "$STORE" | grep -q '  memory = "5120"'

  run $MEMSET 1 4718592k
  [ "$status" -eq 0 ]
  [ "$(cat "$DEV/target_kb")" = 4718592 ]

  # No suffix is MiB, as for xl.
  run $MEMSET Domain-0 3072
  [ "$status" -eq 0 ]
  [ "$(cat "$XEN/domain/Domain-0/target_kb")" = 3145728 ]
  watch_events 0 | tail -1 | grep -q '"path":"/local/domain/0/memory/target","value":"3145728"'

  run $MEMSET 2 6G
  [ "$status" -eq 0 ]
  [ "$(cat "$XEN/domain/db/target_kb")" = 6291456 ]
  watch_events 2 | tail -1 | grep -q '"value":"6291456"'

  # The other domains shrink; the guest takes the memory they free.
  run $MEMSET web 6g
  [ "$status" -eq 0 ]
  for _ in $(seq 40); do advance 1000; done
  [ "$(cat "$XEN/domain/Domain-0/current_kb")" = 3145728 ]
  [ "$(cat "$XEN/domain/db/current_kb")" = 6291456 ]
  [ "$(cat "$DEV/info/current_kb")" = 6291456 ]
}

@test "xen-mem-set refuses as xl and libxl do, and changes nothing" {
  before=$(cat "$STORE")
  run $MEMSET web 9g
  [ "$status" -eq 1 ]
  [[ "$output" == *"memory_dynamic_max must be less than or equal to memory_static_max"* ]]
  run $MEMSET Domain-0 100m
  [ "$status" -eq 1 ]
  [[ "$output" == *"below the minimum threshold"* ]]
  run $MEMSET web 1x
  [ "$status" -eq 2 ]
  [[ "$output" == *"invalid memory size: 1x"* ]]
  run $MEMSET web 1kb
  [ "$status" -eq 2 ]
  run $MEMSET web
  [ "$status" -eq 2 ]
  run $MEMSET nosuch 1g
  [ "$status" -eq 5 ]
  run $MEMSET 7 1g
  [ "$status" -eq 5 ]
  run "$SCRIPTS/xen-mem-set" -m "$MNT/devices" web 1g
  [ "$status" -eq 3 ]
  [ "$(cat "$STORE")" = "$before" ]
  [ "$(events_matching watch xenstore | grep -c '"first":false')" -eq 0 ]
  run "$SCRIPTS/xen-mem-set" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"usage: xen-mem-set [-m MOUNT] DOMAIN SIZE"* ]]
}

@test "bad writes to K/xen/xenstore: the kernel-style errno, and nothing changes" {
  before=$(cat "$STORE")
  [ "$(errno_of_write "$STORE" $'no-slash 1\n')" = EINVAL ]
  [ "$(errno_of_write "$STORE" $'/local/domain/1/memory/target\n')" = EINVAL ]
  [ "$(errno_of_write "$STORE" $'/local/domain/1/memory/target 1\n/bad.path 1\n')" = EINVAL ]
  [ "$(errno_of_write "$STORE" $'/local/domain/5/memory/target 1\n')" = ENOENT ]
  [ "$(errno_of_write "$STORE" "/tool/x $(head -c 2049 /dev/zero | tr '\0' v)")" = ENOSPC ]
  [ "$(cat "$STORE")" = "$before" ]
  [ "$(cat "$DEV/target_kb")" = 4194304 ]
  [ "$(events_matching watch xenstore | grep -c '"first":false')" -eq 0 ]
}

@test "with -o state, the store and the targets its watches set survive kill -9" {
  vsysfs_stop
  STATE_DIR=$(mktemp -d "${BATS_TMPDIR:-/tmp}/vsysfs-state.XXXXXX")
  local opts="clock=manual,machine=$VSYSFS_ROOT/machines/xen-host-3dom.toml,state=$STATE_DIR/state"
  vsysfs_start -o "$opts"
  "$SCRIPTS/xen-mem-set" -m "$MNT" web 6g
  "$SCRIPTS/xen-mem-set" -m "$MNT" db 5g
  before=$(cat "$(ctl xen/xenstore)")
  kill -9 "$VSYSFS_PID"
  for _ in $(seq 100); do pid_running "$VSYSFS_PID" || break; sleep 0.02; done
  fusermount3 -uz "$MNT" 2>/dev/null || true
  rmdir "$MNT"; unset MNT VSYSFS_PID
  vsysfs_start -o "$opts"
  [ "$(cat "$(ctl xen/xenstore)")" = "$before" ]
  [ "$(cat "$MNT/devices/system/xen_memory/xen_memory0/target_kb")" = 6291456 ]
  [ "$(cat "$(ctl xen/domain/db/target_kb)")" = 5242880 ]
}
