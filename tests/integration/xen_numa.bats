#!/usr/bin/env bats
# The Xen balloon on machines/xen-guest-vnuma.toml, whose guest memory is its two
# vNUMA nodes (8 GiB each): after every balloon step, up or down,
# info/current_kb is the sum of the nodes' MemTotal and host free + every
# domain's current = host total. numactl sees the nodes grow and shrink.

load helpers

setup() {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  xen_paths
}

teardown() { vsysfs_stop; }


# Both invariants of the issue.
accounts_agree() {
  local total free sum cur nodes
  total=$(cat "$XEN/host_total_kb")
  free=$(cat "$XEN/host_free_kb")
  sum=$(awk 'NR > 1 { s += $3 } END { print s }' "$XEN/domains")
  [ $((free + sum)) -eq "$total" ] || { echo "free $free + domains $sum != total $total" >&2; return 1; }
  cur=$(cat "$DEV/info/current_kb")
  nodes=$(nodes_kb MemTotal)
  [ "$cur" -eq "$nodes" ] || { echo "current_kb $cur != nodes' MemTotal $nodes" >&2; return 1; }
}

numactl_hardware() {
  unshare -m bash -c "mount --bind '$NODE' /sys/devices/system/node && numactl --hardware"
}

@test "xen+numa: current_kb is the nodes' MemTotal after every step up and down" {
  [ "$(cat "$DEV/info/current_kb")" = 16777216 ]
  accounts_agree
  [ ! -e "$XEN/guest/used_kb" ]                      # the workload is numa/alloc's
  [ "$(cat "$XEN/guest/free_kb")" = "$(nodes_kb MemFree)" ]

  # Up by 512 MiB at a time to 18 GiB (the host's 2 GiB free).
  for kb in 17301504 17825792 18350080 18874368; do
    echo "$kb" > "$DEV/target_kb"
    echo 0 > "$(ctl clock/advance_ms)"
    [ "$(cat "$DEV/info/current_kb")" = "$kb" ]
    accounts_agree
  done
  [ "$(cat "$XEN/host_free_kb")" = 0 ]
  # The new pages went to both nodes evenly.
  [ "$(node_kb 0 MemTotal)" = 9437184 ]
  [ "$(node_kb 1 MemTotal)" = 9437184 ]
  run numactl_hardware
  [ "$status" -eq 0 ]
  [[ "$output" == *"node 0 size: 9216 MB"* ]]
  [[ "$output" == *"node 1 size: 9216 MB"* ]]

  # Down to 14 GiB with the client script: node 0 (the first of its own
  # fallback order) gives its free pages first.
  run $SET --timeout 30 --advance-clock 14G
  [ "$status" -eq 0 ]
  accounts_agree
  [ "$(cat "$DEV/info/current_kb")" = 14680064 ]
  [ "$(node_kb 0 MemTotal)" = 5242880 ]
  [ "$(node_kb 1 MemTotal)" = 9437184 ]
  [ "$(cat "$XEN/host_free_kb")" = 4194304 ]
  # Every step the worker logged left the accounts as its current_kb says.
  [ "$(step_currents | tail -1)" = 14680064 ]
}

step_currents() {
  events_matching step xen_balloon | sed -E 's/.*"current_kb":([0-9]+).*/\1/'
}

@test "xen+numa: ballooning down waits (EAGAIN) when numa/alloc holds the nodes' free pages" {
  local free0 free1 id
  free0=$(( $(node_kb 0 MemFree) / 4 ))
  free1=$(( $(node_kb 1 MemFree) / 4 ))
  echo "pages=$((free0 - 256)) cpu=0 policy=bind:0" > "$(ctl numa/alloc)"
  echo "pages=$free1 cpu=2 policy=bind:1" > "$(ctl numa/alloc)"
  id=$(cat "$(ctl numa/last_alloc_id)")
  [ "$(nodes_kb MemFree)" = 1024 ]

  # 1 MiB free is below the reserve si_mem_available() keeps back, so
  # nothing can go (the balloon thread backs off with EAGAIN).
  [ "$(cat "$XEN/guest/reserve_kb")" -gt 1024 ]
  run $SET --timeout 10 --advance-clock 15G
  [ "$status" -eq 1 ]
  [[ "$output" == *"guest has no free memory to give back beyond its reserve"* ]]
  [ "$(cat "$DEV/info/current_kb")" = 16777216 ]
  [ "$(node_kb 0 MemFree)" = 1024 ]
  [ "$(cat "$XEN/guest/state")" = EAGAIN ]
  events_matching step xen_balloon | grep -q '"result":"EAGAIN"'
  accounts_agree

  # The workload frees node 1: the retries go on down to 15 GiB.
  echo "$id" > "$(ctl numa/free)"
  run $SET --timeout 60 --advance-clock 15G
  [ "$status" -eq 0 ]
  [ "$(cat "$DEV/info/current_kb")" = 15728640 ]
  # 1 GiB went back: 1 MiB (256 pages) from node 0, the rest from node 1.
  [ "$(node_kb 0 MemTotal)" = $((8388608 - 1024)) ]
  [ "$(node_kb 1 MemTotal)" = $((8388608 - 1048576 + 1024)) ]
  accounts_agree
}
