#!/usr/bin/env bats
# Network devices through a real mount: down/up after traffic, transmit
# without carrier or while down, and loopback/queue details of Linux 6.12
# (name_assign_type, byte_queue_limits visibility, xps_cpus errno order).
# The default machine (eth0 cabled to eth1) with the manual clock.

load helpers

setup() { vsysfs_start -o clock=manual; }
teardown() { vsysfs_stop; }

E0() { echo "$MNT/class/net/eth0/$1"; }
E1() { echo "$MNT/class/net/eth1/$1"; }
LO() { echo "$MNT/class/net/lo/$1"; }
knob() { ctl "net/$1"; }
advance() { echo "$1" > "$(ctl clock/advance_ms)"; }
field() { awk -v k="$2" '$1 == k {print $2}' "$1"; }

@test "eth0 down and up after traffic: the next run is sent, no doorbell backwards, the watchdog still fires" {
  echo "count 10 rate 1000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 1000
  [ "$(cat "$(E0 statistics/tx_packets)")" = "10" ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "10" ]
  printf 0x1002 > "$(E0 flags)"
  printf 0x1003 > "$(E0 flags)"
  echo start > "$(knob eth0/traffic)"
  advance 1000
  [ "$(cat "$(E0 statistics/tx_packets)")" = "20" ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "20" ]
  [ "$(field "$(knob eth0/mmio)" doorbell_backwards)" = "0" ]
  run events_matching doorbell_backwards eth0
  [ "$status" -ne 0 ]
  # The ring fills again (the DMA engine hangs) and the watchdog fires.
  echo "hang_tx 1" > "$(knob eth0/faults)"
  echo "count 0 rate 100000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 100
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = "0" ]
  advance 5000
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = "1" ]
  [ "$(field "$(knob eth0/mmio)" ring_resets)" = "1" ]
  [ "$(field "$(knob eth0/mmio)" doorbell_backwards)" = "0" ]
  echo stop > "$(knob eth0/traffic)"
}

@test "down/up cycles with traffic between: eth0 tx equals eth1 rx, no doorbell backwards" {
  for i in $(seq 40); do
    echo "count $((i % 13 + 1)) rate 20000 cpus $((i % 4 + 1))" > "$(knob eth0/traffic)"
    echo start > "$(knob eth0/traffic)"
    advance $((i % 2))      # every other cycle goes down with frames in the ring
    printf 0x1002 > "$(E0 flags)"
    printf 0x1003 > "$(E0 flags)"
    advance 1
  done
  [ "$(cat "$(E0 statistics/tx_packets)")" = "$(cat "$(E1 statistics/rx_packets)")" ]
  before=$(cat "$(E0 statistics/tx_packets)")
  echo "count 100 rate 100000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 100
  [ "$(cat "$(E0 statistics/tx_packets)")" = "$((before + 100))" ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "$((before + 100))" ]
  [ "$(field "$(knob eth0/mmio)" doorbell_backwards)" = "0" ]
  [ "$(cat "$(E0 statistics/tx_errors)")" = "0" ]
}

@test "link knob down: traffic sends nothing and stops; no TX counter moves on eth0" {
  echo down > "$(knob eth0/link)"
  [ "$(cat "$(E0 carrier)")" = "0" ]
  echo "count 10 rate 1000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 1000
  for f in tx_packets tx_bytes tx_dropped tx_errors; do
    [ "$(cat "$(E0 statistics/$f)")" = "0" ]
  done
  [ "$(cat "$(E1 statistics/rx_packets)")" = "0" ]
  [ "$(field "$(knob eth0/traffic)" state)" = "stopped" ]
  [ "$(field "$(knob eth0/traffic)" sent)" = "0" ]
  events_matching traffic eth0 | grep -q NO-CARRIER
  echo up > "$(knob eth0/link)"
  echo start > "$(knob eth0/traffic)"
  advance 1000
  [ "$(cat "$(E0 statistics/tx_packets)")" = "10" ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "10" ]
}

@test "an interface that is down: traffic start is ENETDOWN, counters stay" {
  printf 0x1002 > "$(E0 flags)"
  echo "count 10 rate 1000" > "$(knob eth0/traffic)"
  [ "$(errno_of_write "$(knob eth0/traffic)" start)" = "ENETDOWN" ]
  advance 1000
  [ "$(cat "$(E0 statistics/tx_packets)")" = "0" ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "0" ]
}

@test "lo (6.12): name_assign_type 2, no byte_queue_limits; xps_cpus ENOENT before EPERM" {
  [ "$(cat "$(LO name_assign_type)")" = "2" ]
  [ -d "$(LO queues/tx-0)" ]
  [ ! -e "$(LO queues/tx-0/byte_queue_limits)" ]
  [ -d "$(E0 queues/tx-0/byte_queue_limits)" ]
  [ "$(errno_of_write "$(E0 queues/tx-0/xps_cpus)" 1)" = "ENOENT" ]
  run setpriv --inh-caps=-net_admin --bounding-set=-net_admin \
    "$VSYSFS_BUILD/tests/helpers/sysfs-io" write "$(E0 queues/tx-0/xps_cpus)" 1
  [ "$output" = "ENOENT" ]
  run setpriv --inh-caps=-net_admin --bounding-set=-net_admin \
    "$VSYSFS_BUILD/tests/helpers/sysfs-io" write "$(LO queues/tx-0/xps_cpus)" 1
  [ "$output" = "ENOENT" ]
}

@test "lo agrees with this host's lo (kernels 6.9 and later)" {
  [ -r /sys/class/net/lo/name_assign_type ] || skip "no /sys/class/net/lo here"
  IFS=. read -r major minor _ <<<"$(uname -r)"
  [ "$major" -gt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -ge 9 ]; } || skip "host kernel $(uname -r)"
  [ "$(cat "$(LO name_assign_type)")" = "$(cat /sys/class/net/lo/name_assign_type)" ]
  host=no; [ -e /sys/class/net/lo/queues/tx-0/byte_queue_limits ] && host=yes
  ours=no; [ -e "$(LO queues/tx-0/byte_queue_limits)" ] && ours=yes
  [ "$ours" = "$host" ]
}
