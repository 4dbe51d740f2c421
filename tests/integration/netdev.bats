#!/usr/bin/env bats
# Network devices against a real mount (docs/kernel-semantics.md sections 5 and 6): the
# default machine's lo, eth0 and eth1 (eth1 is cabled to eth0), driven by
# the knobs under kernel/debug/vsysfs/net/ with the manual clock.

load helpers

setup() { vsysfs_start -o clock=manual; }
teardown() { vsysfs_stop; }

E0() { echo "$MNT/class/net/eth0/$1"; }
E1() { echo "$MNT/class/net/eth1/$1"; }
knob() { ctl "net/$1"; }
advance() { echo "$1" > "$(ctl clock/advance_ms)"; }

@test "class/net: relative links to the device directories, PCI parent, numa_node" {
  [ "$(readlink "$MNT/class/net/eth0")" = "../../devices/pci0000:00/0000:00:03.0/net/eth0" ]
  [ "$(readlink "$MNT/class/net/lo")" = "../../devices/virtual/net/lo" ]
  [ "$(readlink "$(E0 device)")" = "../../../0000:00:03.0" ]
  [ "$(cat "$(E0 device)/numa_node")" = "0" ]
  [ "$(cat "$(E0 address)")" = "00:14:22:7a:3c:10" ]
  [ "$(cat "$(E0 dev_id)")" = "0x0" ]
  [ "$(cat "$MNT/class/net/lo/flags")" = "0x9" ]
  [ "$(cat "$MNT/class/net/lo/operstate")" = "unknown" ]
  [ "$(stat -c %a "$(E0 mtu)")" = "644" ]
  [ "$(stat -c %a "$(E0 statistics/rx_packets)")" = "444" ]
  [ -d "$(E0 queues/rx-0)" ] && [ -d "$(E0 queues/tx-0)" ]
  # shellcheck disable=SC2012  # the readdir listing is what is tested; the names are plain
  [ "$(ls "$(E0 statistics)" | wc -l)" = "24" ]
}

@test "eth0 down and up through flags; carrier/speed EINVAL while down" {
  [ "$(cat "$(E0 flags)")" = "0x1003" ]
  [ "$(cat "$(E0 operstate)")" = "up" ]
  echo 0x1002 > "$(E0 flags)"
  [ "$(cat "$(E0 flags)")" = "0x1002" ]
  [ "$(cat "$(E0 operstate)")" = "down" ]
  run cat "$(E0 carrier)"
  [ "$status" -ne 0 ] && [[ "$output" == *"Invalid argument"* ]]
  run cat "$(E0 speed)"
  [[ "$output" == *"Invalid argument"* ]]
  [ "$(cat "$(E1 carrier)")" = "0" ]   # the peer lost its link
  echo 0x1003 > "$(E0 flags)"
  [ "$(cat "$(E0 carrier)")" = "1" ]
  [ "$(cat "$(E0 speed)")" = "1000" ]
  [ "$(cat "$(E0 duplex)")" = "full" ]
  [ "$(cat "$(E1 operstate)")" = "up" ]
  events_matching stop eth0
  events_matching open eth0
}

@test "mtu: change it, out-of-range and junk are EINVAL, EPERM without CAP_NET_ADMIN" {
  echo 9000 > "$(E0 mtu)"
  [ "$(cat "$(E0 mtu)")" = "9000" ]
  [ "$(errno_of_write "$(E0 mtu)" 9217)" = "EINVAL" ]
  [ "$(errno_of_write "$(E0 mtu)" 67)" = "EINVAL" ]
  [ "$(errno_of_write "$(E0 mtu)" junk)" = "EINVAL" ]
  [ "$(errno_of_write "$(E0 mtu)" 18446744073709551616)" = "ERANGE" ]
  run setpriv --inh-caps=-net_admin --bounding-set=-net_admin \
    "$VSYSFS_BUILD/tests/helpers/sysfs-io" write "$(E0 mtu)" 1500
  [ "$output" = "EPERM" ]
  [ "$(cat "$(E0 mtu)")" = "9000" ]
  echo 1500 > "$(E0 mtu)"
  [ "$(cat "$(E0 mtu)")" = "1500" ]
}

@test "pktgen to the peer with the manual clock: tx on eth0 equals rx on eth1" {
  echo "count 1000 size 512 rate 10000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  grep -q '^state running' "$(knob eth0/traffic)"
  advance 50
  sent=$(awk '/^sent/ {print $2}' "$(knob eth0/traffic)")
  [ "$sent" -gt 400 ] && [ "$sent" -lt 1000 ]
  advance 1000
  grep -q '^state stopped' "$(knob eth0/traffic)"
  [ "$(cat "$(E0 statistics/tx_packets)")" = "1000" ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "1000" ]
  [ "$(cat "$(E0 statistics/tx_bytes)")" = "512000" ]
  [ "$(cat "$(E1 statistics/rx_bytes)")" = "512000" ]
  [ "$(cat "$(E0 statistics/tx_errors)")" = "0" ]
  [ "$(cat "$(E1 statistics/tx_packets)")" = "0" ]
  events_matching traffic eth0 | grep -q '"result":"done"'
}

@test "a full ring stalls a fast sender; completions at the link rate resume it" {
  echo "count 2000 size 1500 rate 1000000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 100
  grep -q '^state stopped' "$(knob eth0/traffic)"
  stalls=$(awk '/^stalls/ {print $2}' "$(knob eth0/traffic)")
  [ "$stalls" -gt 0 ]
  [ "$(cat "$(E1 statistics/rx_packets)")" = "2000" ]
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = "0" ]
}

@test "hang TX: the watchdog calls tx_timeout after watchdog_timeo, the ring is reset" {
  echo "hang_tx 1" > "$(knob eth0/faults)"
  echo "count 0 size 64 rate 100000" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 4000
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = "0" ]
  grep -q '^state stalled' "$(knob eth0/traffic)"
  advance 1100
  [ "$(cat "$(E0 queues/tx-0/tx_timeout)")" = "1" ]
  events_matching tx_timeout eth0 | grep -q '"timeout_ms":5000'
  events_matching tx_ring_reset eth0 | grep -q '"dropped":256'
  [ "$(cat "$(E0 statistics/tx_errors)")" = "1" ]
  [ "$(cat "$(E0 statistics/tx_dropped)")" = "256" ]
  grep -q '^hang_tx 0' "$(knob eth0/faults)"   # the reset revived the DMA engine
  echo stop > "$(knob eth0/traffic)"
}

@test "the ordering switch: posted doorbells from two CPUs move backwards, flushed ones never" {
  echo "count 2000 size 64 rate 1000000 cpus 2" > "$(knob eth0/traffic)"
  echo start > "$(knob eth0/traffic)"
  advance 100
  grep -q '^doorbell_backwards 0$' "$(knob eth0/mmio)"
  echo posted > "$(knob eth0/ordering)"
  [ "$(cat "$(knob eth0/ordering)")" = "posted" ]
  echo start > "$(knob eth0/traffic)"
  advance 100
  backwards=$(awk '/^doorbell_backwards/ {print $2}' "$(knob eth0/mmio)")
  [ "$backwards" -gt 0 ]
  events_matching doorbell_backwards eth0 | head -1 | grep -q '"result":"error"'
  [ "$(cat "$(E1 statistics/rx_packets)")" = "4000" ]
  [ "$(errno_of_write "$(knob eth0/ordering)" sideways)" = "EINVAL" ]
}

@test "link knob: carrier and operstate follow, pollers wake" {
  out=$(mktemp)
  "$VSYSFS_BUILD/tests/helpers/sysfs-io" poll "$(E1 operstate)" 5000 > "$out" &
  pid=$!
  for _ in $(seq 50); do grep -q READY "$out" && break; sleep 0.05; done
  echo down > "$(knob eth0/link)"
  wait "$pid"
  grep -q PRI "$out"
  rm -f "$out"
  [ "$(cat "$(E0 carrier)")" = "0" ]
  [ "$(cat "$(E1 operstate)")" = "down" ]
  echo up > "$(knob eth0/link)"
  [ "$(cat "$(E1 carrier)")" = "1" ]
  [ "$(errno_of_write "$(knob eth0/link)" maybe)" = "EINVAL" ]
}

@test "fail_open fault: bringing eth0 up fails with the errno" {
  echo 0x1002 > "$(E0 flags)"
  echo "fail_open EIO" > "$(knob eth0/faults)"
  [ "$(errno_of_write "$(E0 flags)" 0x1003)" = "EIO" ]
  [ "$(cat "$(E0 operstate)")" = "down" ]
  echo "fail_open 0" > "$(knob eth0/faults)"
  echo 0x1003 > "$(E0 flags)"
  [ "$(cat "$(E0 operstate)")" = "up" ]
}

@test "hwloc lists eth0 and eth1 as network OS devices under their PCI functions" {
  run unshare -m bash -c "mount --bind '$MNT' /sys && lstopo-no-graphics --whole-io -v"
  [ "$status" -eq 0 ]
  [[ "$output" == *'PCI L#0 (busid=0000:00:03.0 id=8086:1521 class=0200(Ethernet)'* ]]
  [[ "$output" == *'Network L#0 (Address=00:14:22:7a:3c:10) "eth0"'* ]]
  [[ "$output" == *'Network L#1 (Address=00:14:22:7a:3c:11) "eth1"'* ]]
}

@test "systool -c net -v reads every attribute (libsysfs, private namespace)" {
  echo 0x1002 > "$(E0 flags)"   # down: carrier/speed/duplex... are EINVAL and left out
  run unshare -m bash -c "mount --bind '$MNT' /sys && systool -c net -v"
  [ "$status" -eq 0 ]
  [[ "$output" == *'Class Device = "eth0"'* ]]
  [[ "$output" == *'Class Device path = "/sys/devices/pci0000:00/0000:00:03.0/net/eth0"'* ]]
  [[ "$output" == *'flags               = "0x1002"'* ]]
  [[ "$output" == *'operstate           = "down"'* ]]
  [[ "$output" == *'Device = "0000:00:03.0"'* ]]
  [[ "$output" == *'numa_node           = "0"'* ]]
  [[ "$output" == *'Class Device = "lo"'* ]]
  [[ "$output" == *'type                = "772"'* ]]
}

@test "net-lab machine: 10 Mb/s link, byte queue limits grow, unplugged eth4 has no carrier" {
  vsysfs_stop
  vsysfs_start -o "clock=manual,machine=$VSYSFS_ROOT/machines/net-lab.toml"
  [ "$(cat "$MNT/class/net/eth4/operstate")" = "down" ]
  [ "$(cat "$MNT/class/net/eth4/carrier")" = "0" ]
  [ "$(cat "$MNT/class/net/eth2/speed")" = "10" ]
  [ "$(cat "$MNT/class/net/eth2/duplex")" = "half" ]
  bql=$MNT/class/net/eth2/queues/tx-0/byte_queue_limits
  [ "$(cat "$bql/limit")" = "0" ]
  echo "count 500 size 1000 rate 2000" > "$(knob eth2/traffic)"
  echo start > "$(knob eth2/traffic)"
  advance 100
  [ "$(cat "$bql/limit")" -gt 0 ]
  [ "$(cat "$bql/inflight")" -gt 0 ]
  advance 1000
  [ "$(cat "$MNT/class/net/eth3/statistics/rx_packets")" = "500" ]
  [ "$(cat "$bql/inflight")" = "0" ]
}
