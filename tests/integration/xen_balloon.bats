#!/usr/bin/env bats
# The Xen balloon through a real mount with the manual clock: the seed's
# scenario (two other domains shrink while this guest grows), the files'
# formats and errnos, and xen-balloon-set's reasons and exit codes.

load helpers

setup() {
  vsysfs_start -o "clock=manual,machine=$VSYSFS_ROOT/machines/xen-host-3dom.toml"
  xen_paths
}

teardown() { vsysfs_stop; }

# host free + every domain's current == host total, from the knob files.
memory_consistent() {
  local total free sum
  total=$(cat "$XEN/host_total_kb")
  free=$(cat "$XEN/host_free_kb")
  sum=$(awk 'NR > 1 { s += $3 } END { print s }' "$XEN/domains")
  [ $((free + sum)) -eq "$total" ] || { echo "free $free + domains $sum != total $total" >&2; return 1; }
  # This guest's line agrees with its own info/current_kb.
  [ "$(awk 'NR == 2 { print $3 }' "$XEN/domains")" = "$(cat "$DEV/info/current_kb")" ]
}

# Field $2 of the JSON events matching what=$1 on xen_balloon, one per line.
step_field() {
  events_matching "$1" xen_balloon | sed -E "s/.*\"$2\":(\"?)([^,\"}]*)\1.*/\2/"
}

@test "seed scenario: two other domains shrink while this guest grows" {
  # 1 GiB of the 16 GiB host is free: the guest asks for 8 GiB, keeps the
  # 1 GiB it gets, and backs off.
  run $SET --timeout 30 --advance-clock 8G
  [ "$status" -eq 1 ]
  [[ "$output" == *"target set to 8 GiB"* ]]
  [[ "$output" == *"t=1 s current 5 GiB target 8 GiB"* ]]
  [[ "$output" == *"stuck at 5 GiB: host has no free memory (target 8 GiB, waited 30 s)"* ]]
  [ "$(cat "$DEV/info/current_kb")" = 5242880 ]
  memory_consistent
  # The back-off: EAGAIN steps with next delays 2, 4, 8, 16, 32 s.
  [ "$(events_matching step xen_balloon | grep '"result":"EAGAIN"' | sed -E 's/.*"next_delay_s":([0-9]+).*/\1/' | tr '\n' ' ')" = "2 4 8 16 32 " ]
  [ "$(cat "$DEV/schedule_delay")" = 20 ]   # 32 s, printed in hex
  [ "$(cat "$DEV/retry_count")" = 6 ]

  # The toolstack balloons Domain-0 and db down by 2 GiB each; for 20
  # simulated seconds the accounts stay balanced after every step.
  echo 2097152 > "$XEN/domain/Domain-0/target_kb"
  echo 5242880 > "$XEN/domain/db/target_kb"
  for _ in $(seq 20); do
    echo 1000 > "$(ctl clock/advance_ms)"
    memory_consistent
  done
  [ "$(cat "$XEN/domain/db/current_kb")" = $((7340032 - 20 * 40000)) ]
  [ "$(cat "$DEV/info/current_kb")" = 5242880 ]   # backing off until t=62
  run $SET --timeout 300 --advance-clock 8G
  [ "$status" -eq 0 ]
  [[ "$output" == *"t=0 s current 5 GiB target 8 GiB (retry 6, next try within 32 s)"* ]]
  [[ "$output" == *"reached 8 GiB after"* ]]
  [ "$(cat "$DEV/info/current_kb")" = 8388608 ]
  [ "$(cat "$DEV/info/low_kb")" = 0 ]
  [ "$(cat "$DEV/schedule_delay")" = 1 ]
  [ "$(cat "$DEV/retry_count")" = 1 ]
  [ "$(cat "$XEN/guest/state")" = DONE ]
  memory_consistent

  # Partial grants were kept: Xen gave some but fewer frames than asked.
  partial=$(events_matching step xen_balloon | grep '"direction":"increase"' |
    sed -E 's/.*"requested":([0-9]+),"granted":([0-9]+).*/\1 \2/' | awk '$2 > 0 && $2 < $1' | wc -l)
  [ "$partial" -ge 2 ]
  # Retries after the shrinking started found memory (DONE runs after
  # EAGAIN ones; one event per worker run).
  events_matching step xen_balloon | awk '/"result":"EAGAIN"/ { e = 1 }
    /"result":"DONE","data":{"direction":"increase"/ && e { n++ } END { exit !(n > 0) }'
  # Both other domains stepped down in the log, at their pace.
  events_matching domain_step xen | grep -q '"domain":"Domain-0","domid":0,"direction":"decrease","pages":10000'
  events_matching domain_step xen | grep -q '"domain":"db","domid":2,"direction":"decrease","pages":10000'
}

@test "files, modes and the hex quirk through the mount" {
  [ "$(stat -c %a "$DEV/target_kb")" = 644 ]
  [ "$(stat -c %a "$DEV/schedule_delay")" = 444 ]
  [ "$(stat -c %a "$DEV/max_retry_count")" = 644 ]
  [ "$(stat -c %a "$DEV/info/current_kb")" = 444 ]
  [ "$(readlink "$DEV/subsystem")" = ../../../../bus/xen_memory ]
  [ "$(readlink "$MNT/bus/xen_memory/devices/xen_memory0")" = ../../../devices/system/xen_memory/xen_memory0 ]
  [ "$(cat "$DEV/target_kb")" = 4194304 ]
  [ "$(cat "$DEV/target")" = 4294967296 ]
  [ "$(cat "$DEV/max_schedule_delay")" = 20 ]
  echo 64 > "$DEV/max_schedule_delay"
  [ "$(cat "$DEV/max_schedule_delay")" = 40 ]
  [ "$(errno_of_write "$DEV/max_retry_count" junk)" = EINVAL ]
  [ "$(errno_of_write "$DEV/max_retry_count" 18446744073709551616)" = ERANGE ]
  [ "$(cat "$DEV/max_retry_count")" = 0 ]
  [ "$("$VSYSFS_BUILD/tests/helpers/sysfs-io" open "$DEV/schedule_delay" w)" = EACCES ]
  # target takes bytes with a suffix; target_kb KiB.
  echo 6G > "$DEV/target"
  [ "$(cat "$DEV/target_kb")" = 6291456 ]
  events_matching target xen_balloon | grep -q '"via":"target"'
}

@test "CAP_SYS_ADMIN: root without it gets EPERM and the target stays" {
  run capsh --drop=cap_sys_admin -- -c "$SET 6G"
  [ "$status" -eq 4 ]
  [[ "$output" == *"cannot write"*"target_kb: EPERM"* ]]
  [ "$(cat "$DEV/target_kb")" = 4194304 ]
  # The back-off files only check the mode (device_store_ulong).
  capsh --drop=cap_sys_admin -- -c "echo 3 > $DEV/max_retry_count"
  [ "$(cat "$DEV/max_retry_count")" = 3 ]
}

@test "max_retry_count: the driver gives up and xen-balloon-set says so" {
  echo 0 > "$XEN/host_free_kb"
  echo 2 > "$DEV/max_retry_count"
  run $SET --timeout 20 --advance-clock 6G
  [ "$status" -eq 1 ]
  [[ "$output" == *"stuck at 4 GiB: the balloon driver gave up after max_retry_count (2) retries; it retries within an hour, or write a different target"* ]]
  [ "$(cat "$XEN/guest/state")" = ECANCELED ]
  [ "$(events_matching step xen_balloon | grep -c ECANCELED)" -eq 1 ]
  # Memory comes back. The same target leaves the credit as the balloon
  # thread saw it when it went to sleep (balloon_thread_cond): no wake-up.
  echo 4194304 > "$XEN/host_free_kb"
  run $SET --timeout 10 --advance-clock 6G
  [ "$status" -eq 1 ]
  [ "$(cat "$DEV/info/current_kb")" = 4194304 ]
  [ "$(cat "$XEN/guest/state")" = ECANCELED ]
  # A different target wakes it at once.
  run $SET --timeout 10 --advance-clock 6143M
  [ "$status" -eq 0 ]
  [ "$(cat "$DEV/info/current_kb")" = 6290432 ]
  memory_consistent
}

@test "shrinking waits when the guest has no free pages" {
  # 4 GiB populated, 2 GiB used: 2 GiB free, less the reserve that
  # si_mem_available() keeps back (totalreserve_pages: guest/reserve_kb).
  local reserve
  reserve=$(cat "$XEN/guest/reserve_kb")
  [ "$reserve" -gt 0 ]
  # Once less than the reserve is available, each pass still takes a
  # frame_list (512 pages) but reports EAGAIN (n_pages < totalreserve_pages),
  # so the last pages go one back-off at a time.
  run $SET --timeout 300 --advance-clock 1G
  [ "$status" -eq 1 ]
  [[ "$output" == *"guest has no free memory to give back beyond its reserve"* ]]
  [ "$(cat "$XEN/guest/free_kb")" = "$reserve" ]
  [ "$(cat "$DEV/info/current_kb")" = $((2097152 + reserve)) ]
  memory_consistent
  events_matching step xen_balloon | grep '"direction":"decrease"' | grep -q '"result":"EAGAIN"'
  # The workload shrinks; the next retry finishes.
  echo 524288 > "$XEN/guest/used_kb"
  run $SET --timeout 60 --advance-clock 1G
  [ "$status" -eq 0 ]
  [ "$(cat "$DEV/info/current_kb")" = 1048576 ]
  memory_consistent
}

@test "xen-balloon-set: usage errors and a target above the maximum" {
  run $SET 8X
  [ "$status" -eq 2 ]
  run "$SCRIPTS/xen-balloon-set" --sysfs /nonexistent 8G
  [ "$status" -eq 3 ]
  run $SET --timeout 5 --advance-clock 12G
  [ "$status" -eq 1 ]
  [[ "$output" == *"target is above this domain's maximum of 8 GiB"* ]]
  # Without --advance-clock the manual clock is never touched.
  before=$(cat "$(ctl clock/now_ns)")
  run $SET --timeout 1 --interval 0.1 7G
  [ "$status" -eq 1 ]
  [ "$(cat "$(ctl clock/now_ns)")" = "$before" ]
}
