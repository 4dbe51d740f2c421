#!/usr/bin/env bats
# The network and Xen failure points against a real mount
# (docs/fault-injection.md sections 3.6 on): what a tool sees when each
# fires. The default machine's eth0 is cabled to eth1; the manual clock
# moves only on advances, so no test waits on real time.

load helpers

setup() { vsysfs_start -o clock=manual; }
teardown() { vsysfs_stop; }

fail() { ctl "fail/$1"; }
E0() { echo "$MNT/class/net/eth0/$1"; }
advance() { echo "$1" > "$(ctl clock/advance_ms)"; }

@test "net_xmit hang: the queue stays stopped, the watchdog fires after watchdog_timeo" {
  echo hang > "$(fail net_xmit/kind)"
  echo eth0 > "$(fail net_xmit/ifaces)"
  echo 100 > "$(fail net_xmit/probability)"
  echo "count 0 size 64 rate 1000" > "$(ctl net/eth0/traffic)"
  echo start > "$(ctl net/eth0/traffic)"
  advance 4000
  grep -q '^state stalled' "$(ctl net/eth0/traffic)"
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = 0 ]
  advance 1100
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = 1 ]
  [ "$(cat "$(fail net_xmit/injected)")" = 1 ]
  events_matching xmit eth0 | grep -q '"fault":"hang"'
  events_matching tx_timeout eth0 | grep -q '"timeout_ms":5000'
  # times was 1: after the ring reset the sender runs again.
  grep -q '^state running' "$(ctl net/eth0/traffic)"
  echo stop > "$(ctl net/eth0/traffic)"
  [ "$(errno_of_write "$(fail net_xmit/kind)" lost)" = EINVAL ]
  [ "$(errno_of_write "$(fail net_xmit/ifaces)" "$(seq -s " " -f "e%g" 1 17)")" = E2BIG ]
  [ "$(cat "$(fail net_xmit/ifaces)")" = eth0 ]
}

@test "net_open: a flags store of IFF_UP gets the errno and eth0 stays down" {
  [ "$(cat "$(fail net_open/errno)")" = 12 ]
  echo 0x1002 > "$(E0 flags)"
  echo eth0 > "$(fail net_open/ifaces)"
  echo 100 > "$(fail net_open/probability)"
  [ "$(errno_of_write "$(E0 flags)" 0x1003)" = ENOMEM ]
  [ "$(cat "$(E0 operstate)")" = down ]
  [ "$(cat "$(E0 flags)")" = 0x1002 ]
  [ "$(cat "$(fail net_open/injected)")" = 1 ]
  events_matching open eth0 | grep -q '"fault":"net_open"'
  # times was 1: the next try comes up.
  echo 0x1003 > "$(E0 flags)"
  [ "$(cat "$(E0 operstate)")" = up ]
  [ "$(errno_of_write "$(fail net_open/errno)" 4096)" = EINVAL ]
}

@test "xen_populate pages 0: the hypervisor grants nothing, the balloon gives up stuck" {
  vsysfs_stop
  vsysfs_start -o "clock=manual,machine=$VSYSFS_ROOT/machines/xen-host-3dom.toml"
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  echo -1 > "$(fail xen_populate/times)"
  echo 100 > "$(fail xen_populate/probability)"
  echo 2 > "$DEV/max_retry_count"
  run timeout 30 "$SCRIPTS/xen-balloon-set" --sysfs "$MNT" --timeout 20 --advance-clock 6G
  [ "$status" -eq 1 ]
  [[ "$output" == *"gave up after max_retry_count (2) retries"* ]]
  [ "$(cat "$DEV/info/current_kb")" = 4194304 ]
  [ "$(cat "$(ctl xen/guest/state)")" = ECANCELED ]
  [ "$(cat "$(fail xen_populate/injected)")" -ge 2 ]
  events_matching populate_physmap xen | grep -q '"fault":"xen_populate"'
}

@test "xen_decrease: Xen keeps frames, the guest BUGs and its balloon worker is gone" {
  vsysfs_stop
  vsysfs_start -o "clock=manual,machine=$VSYSFS_ROOT/machines/xen-host-3dom.toml"
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  echo 10 > "$(fail xen_decrease/pages)"
  echo 100 > "$(fail xen_decrease/probability)"
  before=$(cat "$DEV/info/current_kb")
  echo $((before - 8192)) > "$DEV/target_kb"
  advance 1
  [ "$(events_matching bug xen_balloon | wc -l)" = 1 ]
  events_matching bug xen_balloon | grep -q '"result":"BUG".*"condition":"ret != nr_pages"'
  events_matching decrease_reservation xen | grep -q '"released":10,"fault":"xen_decrease"'
  # The guest runs on: the files answer, a target is stored, nothing moves.
  now=$(cat "$DEV/info/current_kb")
  echo $((before - 16384)) > "$DEV/target_kb"
  [ "$(cat "$DEV/target_kb")" = $((before - 16384)) ]
  advance 7200000
  [ "$(cat "$DEV/info/current_kb")" = "$now" ]
  [ "$(events_matching step xen_balloon | wc -l)" = 0 ]
  [ "$(cat "$(fail xen_decrease/injected)")" = 1 ]
}

E1() { echo "$MNT/class/net/eth1/$1"; }

@test "link_flap: eth0's carrier drops for down_ms at the start of each period, count times" {
  echo eth0 > "$(fail link_flap/ifaces)"
  echo 200 > "$(fail link_flap/down_ms)"
  echo 1000 > "$(fail link_flap/period_ms)"
  echo -1 > "$(fail link_flap/times)"
  echo 100 > "$(fail link_flap/probability)"
  # A schedule whose down time fills the period is refused, and starts nothing.
  echo 1000 > "$(fail link_flap/down_ms)"
  [ "$(errno_of_write "$(fail link_flap/count)" 2)" = EINVAL ]
  [ "$(errno_of_write "$(fail link_flap/down_ms)" 0)" = EINVAL ]
  [ "$(errno_of_write "$(fail link_flap/period_ms)" 4294967296)" = ERANGE ]
  [ "$(cat "$(fail link_flap/count)")" = 0 ]
  [ "$(cat "$(fail link_flap/down_ms)")" = 1000 ]
  echo 200 > "$(fail link_flap/down_ms)"
  changes=$(cat "$(E0 carrier_changes)")
  downs=$(cat "$(E0 carrier_down_count)")
  ups=$(cat "$(E0 carrier_up_count)")
  t0=$(cat "$(ctl clock/now_ns)")
  echo 2 > "$(fail link_flap/count)"
  [ "$(cat "$(fail link_flap/count)")" = 2 ]
  # Manual clock: nothing happens until someone advances it.
  advance 999
  [ "$(cat "$(E0 operstate)")" = up ]
  [ "$(cat "$(E0 carrier_changes)")" = "$changes" ]
  advance 1
  [ "$(cat "$(E0 operstate)")" = down ]
  [ "$(cat "$(E0 carrier)")" = 0 ]
  [ "$(cat "$(E1 operstate)")" = down ]   # the cabled peer loses the link too
  [ "$(cat "$(E0 carrier_changes)")" = $((changes + 1)) ]
  [ "$(cat "$(E0 carrier_down_count)")" = $((downs + 1)) ]
  [ "$(cat "$(fail link_flap/count)")" = 1 ]
  # The `link` knob's cable is not touched: the flap is its own.
  [ "$(cat "$(ctl net/eth0/link)")" = up ]
  advance 199
  [ "$(cat "$(E0 operstate)")" = down ]
  advance 1
  [ "$(cat "$(E0 operstate)")" = up ]
  [ "$(cat "$(E0 carrier)")" = 1 ]
  [ "$(cat "$(E0 carrier_up_count)")" = $((ups + 1)) ]
  advance 3000
  [ "$(cat "$(E0 carrier_changes)")" = $((changes + 4)) ]
  [ "$(cat "$(E0 carrier_down_count)")" = $((downs + 2)) ]
  [ "$(cat "$(fail link_flap/count)")" = 0 ]
  [ "$(cat "$(fail link_flap/injected)")" = 2 ]
  # The carrier events at the simulated instants of the schedule (ms after the start).
  at=$(jq -r --argjson t0 "$t0" 'select(.device == "eth0" and .what == "carrier")
         | "\(.result)@\((.time_ns - $t0) / 1000000)"' "$(ctl events)" | tail -4 | tr '\n' ' ')
  [ "$at" = "off@1000 on@1200 off@2000 on@2200 " ]
  [ "$(events_matching link_flap eth0 | wc -l)" = 4 ]
  [[ $(events_matching fail fault_inject | tail -1) == *'"name":"link_flap"'* ]]
}

@test "net_rx: eth1 drops frames (rx_dropped) or sees CRC errors (rx_crc_errors, rx_errors)" {
  S=$MNT/class/net/eth1/statistics
  pkts=$(cat "$S/rx_packets"); dropped=$(cat "$S/rx_dropped")
  crc=$(cat "$S/rx_crc_errors"); errs=$(cat "$S/rx_errors")
  [ "$(cat "$(fail net_rx/kind)")" = drop ]
  echo eth1 > "$(fail net_rx/ifaces)"
  echo 3 > "$(fail net_rx/times)"
  echo 100 > "$(fail net_rx/probability)"
  echo "count 5 size 64 rate 1000" > "$(ctl net/eth0/traffic)"
  echo start > "$(ctl net/eth0/traffic)"
  advance 100
  [ "$(cat "$S/rx_dropped")" = $((dropped + 3)) ]
  [ "$(cat "$S/rx_packets")" = $((pkts + 2)) ]
  echo corrupt > "$(fail net_rx/kind)"
  echo 2 > "$(fail net_rx/times)"
  echo start > "$(ctl net/eth0/traffic)"
  advance 100
  [ "$(cat "$S/rx_crc_errors")" = $((crc + 2)) ]
  [ "$(cat "$S/rx_errors")" = $((errs + 2)) ]
  [ "$(cat "$S/rx_packets")" = $((pkts + 5)) ]
  [ "$(cat "$S/rx_dropped")" = $((dropped + 3)) ]
  [ "$(cat "$(fail net_rx/injected)")" = 5 ]
  [ "$(events_matching rx eth1 | grep -c '"fault":"corrupt"')" = 2 ]
  [ "$(errno_of_write "$(fail net_rx/kind)" mangle)" = EINVAL ]
  [ "$(cat "$(fail net_rx/kind)")" = corrupt ]
}
