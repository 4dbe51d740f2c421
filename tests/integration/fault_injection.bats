#!/usr/bin/env bats
# Fault injection against a real mount (docs/fault-injection.md): for each
# failure point, what a tool sees when it fires; bad input to the control
# files; and two runs of one script with one seed give one event log.

load helpers

D=devices/platform/dcdbas

setup() {
  IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
}

teardown() { vsysfs_stop; }

fail() { echo "$MNT/kernel/debug/vsysfs/fail/$1"; }

@test "fail/ control files: debugfs formats; bad input gets the kernel's errno and changes nothing" {
  vsysfs_start
  [ "$(stat -c %a "$(fail smi/probability)")" = 600 ]
  [ "$(stat -c %a "$(fail smi/injected)")" = 400 ]
  [ "$(cat "$(fail store/times)")" = 1 ]
  [ "$(cat "$(fail page_alloc/ignore-gfp-wait)")" = Y ]
  [ "$("$IO" write "$(fail store/probability)" 'x')" = EINVAL ]
  [ "$("$IO" write "$(fail store/probability)" '18446744073709551616')" = ERANGE ]
  [ "$("$IO" write "$(fail store/task-filter)" 'maybe')" = EINVAL ]
  [ "$("$IO" write "$(fail store/errno)" '0')" = EINVAL ]
  [ "$("$IO" write "$(fail pids)" "$(seq -s ' ' 1 65)")" = E2BIG ]
  [ "$(cat "$(fail store/probability)")" = 0 ]
  [ "$(cat "$(fail store/task-filter)")" = N ]
  [ "$(cat "$(fail pids)")" = "" ]
  # atomic_t keeps the low 32 bits (debugfs_atomic_t_set).
  echo 4294967295 > "$(fail store/times)"
  [ "$(cat "$(fail store/times)")" = -1 ]
}

@test "store: the writer gets the errno and the attribute keeps its value" {
  vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-1400.toml"
  echo 2 > "$MNT/$D/host_control_smi_type"
  echo "$D/host_control_*" > "$(fail store/paths)"
  echo 16 > "$(fail store/errno)"
  echo 100 > "$(fail store/probability)"
  [ "$("$IO" write "$MNT/$D/host_control_smi_type" 3)" = EBUSY ]
  [ "$(cat "$MNT/$D/host_control_smi_type")" = 2 ]
  # A file outside the glob list is untouched; times (1) is used up.
  [ "$("$IO" write "$MNT/$D/smi_data_buf_size" 64)" = 2 ]
  [ "$("$IO" write "$MNT/$D/host_control_smi_type" 3)" = 1 ]
  [ "$(cat "$(fail store/injected)")" = 1 ]
  [[ $(events_matching fail fault_inject) == *'"name":"store"'*'"site":"'"$D"'/host_control_smi_type"'* ]]
}

@test "show: the reader gets the errno" {
  vsysfs_start
  echo 6 > "$(fail show/errno)"
  # The glob matches the attribute's own path, not a path through a link.
  echo 'devices/virtual/dmi/id/*' > "$(fail show/paths)"
  echo 100 > "$(fail show/probability)"
  run cat "$MNT/class/dmi/id/product_name"
  [ "$status" -ne 0 ]
  [[ $output == *"No such device or address"* ]]
  run cat "$MNT/class/dmi/id/product_name"
  [ "$status" -eq 0 ]
}

@test "smi no_answer: dell-smi reports that nothing answered; error: the BIOS's cbRES1" {
  vsysfs_start
  echo 100 > "$(fail smi/probability)"
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x21
  [ "$status" -eq 4 ]
  [[ $output == *"no answer"* ]]
  [[ $(events_matching smi dcdbas | tail -1) == *'"fault":"no_answer"'*'"answered":false'* ]]
  echo error > "$(fail smi/kind)"
  echo -2 > "$(fail smi/cbres1)"
  echo 1 > "$(fail smi/times)"
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x21
  [ "$status" -eq 3 ]
  [[ $output == *"ENXIO"* ]]
  # times is spent: the next SMI is answered.
  run "$SCRIPTS/dell-smi" --sysfs "$MNT" 0 0 0x21
  [ "$status" -eq 0 ]
  [ "$(cat "$(fail smi/injected)")" = 2 ]
}

@test "host_control timeout: the power-off ends in ETIME and the machine only halts" {
  vsysfs_start -o machine="$VSYSFS_ROOT/machines/dell-poweredge-1400.toml"
  echo 100 > "$(fail host_control/probability)"
  run "$SCRIPTS/dell-host-control" --sysfs "$MNT" --smi-type 2 poweroff --shutdown halt
  [ "$status" -eq 0 ]
  [[ $output == *"power state: halted"* ]]
  [[ $(events_matching host_control dcdbas) == *'"result":"ETIME"'* ]]
  [[ $(events_matching host_control dcdbas) == *'"fault":"timeout"'* ]]
  [[ $(events_matching poll dcdbas) == *'"reads":10000'* ]]
}

@test "page_alloc: numa/alloc gets ENOMEM once the gfp filters let it fail" {
  vsysfs_start -o clock=manual
  echo 100 > "$(fail page_alloc/probability)"
  echo -1 > "$(fail page_alloc/times)"
  # The kernel's defaults exempt every allocation that may reclaim.
  [ "$("$IO" write "$(ctl numa/alloc)" 'pages=64')" = 8 ]
  echo N > "$(fail page_alloc/ignore-gfp-wait)"
  echo N > "$(fail page_alloc/ignore-gfp-highmem)"
  [ "$("$IO" write "$(ctl numa/alloc)" 'pages=64')" = ENOMEM ]
  [ "$("$IO" write "$(ctl numa/alloc)" 'pages=64 kind=slab')" = ENOMEM ]
  [ "$(cat "$(ctl numa/last_alloc_id)")" = 1 ]
  [[ $(events_matching alloc numa | tail -1) == *'"result":"ENOMEM"'*'"fault":true'* ]]
}

# One run: a fresh manual-clock mount, seed $1, a probabilistic store point
# and N stores, then a probabilistic link_flap schedule; prints the event log without what differs between mounts
# (the pids, the mount point).
determinism_run() {
  vsysfs_start -o clock=manual
  echo "$1" > "$(fail seed)"
  echo 1 > "$(fail store/verbose)"
  echo -1 > "$(fail store/times)"
  echo 2 > "$(fail store/interval)"
  echo "$D/host_control_*" > "$(fail store/paths)"
  echo 50 > "$(fail store/probability)"
  local i
  for i in $(seq "${FAULT_DETERMINISM_STEPS:-40}"); do
    "$IO" write "$MNT/$D/host_control_on_shutdown" "$((i % 3))" >/dev/null
    [ $((i % 10)) -eq 0 ] && echo 5 > "$(ctl clock/advance_ms)"
  done
  # A link_flap schedule that flaps about half its periods, on both
  # cabled interfaces: the carrier and operstate changes follow the seed.
  echo 1 > "$(fail link_flap/verbose)"
  echo -1 > "$(fail link_flap/times)"
  echo 50 > "$(fail link_flap/probability)"
  echo 40 > "$(fail link_flap/down_ms)"
  echo 100 > "$(fail link_flap/period_ms)"
  echo "${FAULT_DETERMINISM_FLAPS:-12}" > "$(fail link_flap/count)"
  echo 2000 > "$(ctl clock/advance_ms)"
  jq -c 'del(.pid, .data.mountpoint)' "$(ctl events)"
  vsysfs_stop
}

@test "determinism: same seed and manual clock, two runs, identical event logs" {
  a=$(determinism_run 7)
  b=$(determinism_run 7)
  c=$(determinism_run 8)
  [ -n "$a" ]
  [[ $a == *'"what":"fail"'* ]]
  [[ $a == *'"result":"OK"'* ]]
  [[ $a == *'"what":"link_flap"'* ]]
  [[ $a == *'"what":"operstate"'* || $a == *'"what":"carrier"'* ]]
  [ "$a" = "$b" ]
  [ "$a" != "$c" ]
}
