#!/usr/bin/env bats
# A guest that cannot balloon itself away: on machines/xen-guest-vnuma.toml
# (two vNUMA nodes) the guest kernel holds 1/64 of each node from boot ([xen] kernel_memory,
# docs/devices/xen.md). The balloon takes pages by allocating them
# (drivers/xen/balloon.c decrease_reservation) and changes managed pages
# only (mm/page_alloc.c adjust_managed_page_count), so ballooning as far
# down as it goes stops above zero with the kernel's memory intact, the
# node lists and zonelists unchanged, and a bound allocation from a node
# with no free page fails with ENOMEM.

load helpers

setup() {
  vsysfs_start -o clock=manual -o "machine=$VSYSFS_ROOT/machines/xen-guest-vnuma.toml"
  xen_paths
}

teardown() { vsysfs_stop; }

stat_sum() { cat "$NODE"/node*/numastat | awk -v k="$1" '$1 == k { s += $2 } END { print s }'; }

# Everything that must not move while the balloon works.
snapshot_lists() {
  for f in has_memory has_normal_memory has_cpu online possible; do
    printf '%s=%s\n' "$f" "$(cat "$NODE/$f")"
  done
  cat "$(ctl numa/zonelists)"
}

# The balloon x NUMA invariants after a step; $1 is each node's kernel KiB.
invariants() {
  local k=$1 n total free used sum_total=0 sum_free=0 cur hfree doms htotal
  for n in 0 1; do
    total=$(node_kb $n MemTotal) free=$(node_kb $n MemFree) used=$(node_kb $n MemUsed)
    [ $((free + used)) -eq "$total" ] || { echo "node$n: MemFree $free + MemUsed $used != MemTotal $total"; return 1; }
    [ "$used" -ge "$k" ] || { echo "node$n: MemUsed $used below the kernel's $k"; return 1; }
    [ "$(node_kb $n SUnreclaim)" -ge "$k" ] || { echo "node$n: SUnreclaim below the kernel's $k"; return 1; }
    sum_total=$((sum_total + total)) sum_free=$((sum_free + free))
  done
  cur=$(cat "$DEV/info/current_kb")
  [ "$cur" -eq "$sum_total" ] || { echo "current_kb $cur != nodes' MemTotal $sum_total"; return 1; }
  [ "$cur" -gt 0 ] || { echo "current_kb 0"; return 1; }
  [ "$(cat "$XEN/guest/free_kb")" -eq "$sum_free" ] || { echo "guest/free_kb != nodes' MemFree"; return 1; }
  [ "$(cat "$XEN/guest/kernel_kb")" -eq $((2 * k)) ] || { echo "guest/kernel_kb changed"; return 1; }
  [ $(( $(cat "$DEV/info/low_kb") + cur )) -eq "$(cat "$XEN/guest/max_kb")" ] || { echo "low_kb + current_kb != max_kb"; return 1; }
  [ "$(stat_sum numa_miss)" -eq "$(stat_sum numa_foreign)" ] || { echo "numa_miss != numa_foreign"; return 1; }
  htotal=$(cat "$XEN/host_total_kb") hfree=$(cat "$XEN/host_free_kb")
  doms=$(awk 'NR > 1 { s += $3 } END { print s }' "$XEN/domains")
  [ $((hfree + doms)) -eq "$htotal" ] || { echo "host: free $hfree + domains $doms != total $htotal"; return 1; }
  [ "$(snapshot_lists)" = "$LISTS0" ] || { echo "node lists or zonelists changed:"; snapshot_lists; return 1; }
}

@test "xen kernel memory: a two-vnode guest balloons down as far as it goes and stops above zero" {
  local k=131072 steps=${XEN_KERNEL_STEPS:-40} s cur state moved
  LISTS0=$(snapshot_lists)
  [[ "$LISTS0" == *"has_memory=0-1"* ]]
  [ "$(cat "$XEN/guest/kernel_kb")" = 262144 ]       # 1/64 of 16 GiB
  [ "$(node_kb 0 MemUsed)" = $k ]                     # the kernel's, from boot
  [ "$(node_kb 1 MemUsed)" = $k ]
  invariants $k

  echo 0 > "$DEV/target_kb"
  for ((s = 0; s < steps; s++)); do
    echo 1000 > "$(ctl clock/advance_ms)"
    invariants $k
    state=$(cat "$XEN/guest/state")
    [ "$state" != ECANCELED ] || break
  done
  # The kthread backs off once si_mem_available() is below
  # totalreserve_pages, then gives up (BP_ECANCELED) after max_retry_count.
  [ "$state" = ECANCELED ]
  cur=$(cat "$DEV/info/current_kb")
  [ "$cur" -gt 262144 ]
  [ "$(cat "$XEN/guest/free_kb")" -ge "$(cat "$XEN/guest/reserve_kb")" ]
  # Node 0 (the kworker's, first in its own zonelist) was emptied first:
  # it keeps only the kernel's pages and stays in has_memory; a bound
  # allocation there is ENOMEM (no free page), not EINVAL (no node).
  [ "$(node_kb 0 MemTotal)" = $k ]
  [ "$(node_kb 0 MemFree)" = 0 ]
  [ "$(cat "$NODE/has_memory")" = 0-1 ]
  [ "$(errno_of_write "$(ctl numa/alloc)" "pages=1 cpu=0 policy=bind:0")" = ENOMEM ]
  [ "$(node_kb 0 MemUsed)" = $k ]

  # One event per worker run, not per 512 pages: the ~16 GiB went in a
  # handful of runs whose pages add up to what left the guest.
  moved=$(events_matching step xen_balloon | sed -E 's/.*"granted":([0-9]+).*/\1/' | awk '{ s += $1 } END { print s }')
  [ $((moved * 4)) -eq $((16777216 - cur)) ]
  [ "$(events_matching step xen_balloon | wc -l)" -le 8 ]

  # The client script no longer reports "reached 0 KiB": it says why not.
  run $SET --timeout 5 --advance-clock 0
  [ "$status" -eq 1 ]
  [[ "$output" != *"reached"* ]]
  [[ "$output" == *"stuck at"*"guest kernel holds 256 MiB"* ]]
  invariants $k
}

@test "xen kernel memory: the workqueue driver takes every free page and keeps retrying" {
  local m=$BATS_TEST_TMPDIR/wq.toml k=1024
  vsysfs_stop
  cat > "$m" <<'TOML'
[numa]
[[numa.node]]
cpus = "0"
memory_mb = 64
[[numa.node]]
cpus = "1"
memory_mb = 64
[xen]
host_memory = "512M"
max_memory = "256M"
driver = "workqueue"
max_retry_count = 0
TOML
  vsysfs_start -o clock=manual -o machine="$m"
  xen_paths
  LISTS0=$(snapshot_lists)
  echo 0 > "$DEV/target_kb"
  for s in $(seq 20); do
    echo 1000 > "$(ctl clock/advance_ms)"
    invariants $k
  done
  [ "$(cat "$DEV/info/current_kb")" = 2048 ]        # the kernel's pages only
  [ "$(nodes_kb MemFree)" = 0 ]
  [ "$(cat "$XEN/guest/state")" = EAGAIN ]          # retrying with back-off
  [ "$(errno_of_write "$(ctl numa/alloc)" "pages=1 cpu=1 policy=bind:1")" = ENOMEM ]
  [ "$(errno_of_write "$(ctl numa/alloc)" "pages=1 cpu=0 policy=bind:0")" = ENOMEM ]
  # Retries since the run that emptied the guest moved nothing.
  events_matching step xen_balloon | tail -n +2 | grep -v '"granted":0,' && return 1
  # Memory comes back to the nodes it left.
  echo 131072 > "$DEV/target_kb"
  for s in $(seq 40); do
    echo 1000 > "$(ctl clock/advance_ms)"
    [ "$(cat "$DEV/info/current_kb")" != 131072 ] || break
  done
  [ "$(node_kb 0 MemTotal)" = 65536 ]
  [ "$(node_kb 1 MemTotal)" = 65536 ]
  invariants $k
}
