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
