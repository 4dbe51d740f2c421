#!/usr/bin/env bats
# Snapshot and restore of a machine with [net] and no [xen] or [dcdbas]
# (machines/net-lab.toml; devices/net/netdev_state.hpp, docs/snapshot.md),
# driven from the mount with shell tools only: a diff lists exactly the
# paths whose value changed, and a restore brings back every file (value,
# mode, owner) after interfaces went up and down through their flags,
# stores on each kind of writable file and knob, traffic on the manual
# clock, and a chown -h of a class/net link.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
  vsysfs_start -o clock=manual,machine="$VSYSFS_ROOT/machines/net-lab.toml"
}

teardown_file() {
  vsysfs_stop
}

K() { echo "$MNT/kernel/debug/vsysfs/$1"; }
N() { echo "$MNT/class/net/$1/$2"; }

# The paths whose content differs between two dumps.
changed_paths() {
  python3 - "$1" "$2" <<'PY'
import sys
def load(f):
    out = {}
    for line in open(f):
        head, sep, content = line.rstrip("\n").partition(": ")
        if sep:
            out[head.split(" ")[0]] = content
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
for p in sorted(set(a) | set(b)):
    if a.get(p) != b.get(p):
        print(p)
PY
}

@test "net-lab: diff lists exactly the changed paths; restore brings every file back" {
  # The state at the snapshot: eth1 down (eth0 without carrier), a sender
  # on the slow eth2 link with its queue stalled and BQL moving, an alias.
  echo 0x1002 > "$(N eth1 flags)"
  echo "count 0 size 1000 rate 2000" > "$(K net/eth2/traffic)"
  echo start > "$(K net/eth2/traffic)"
  echo 40 > "$(K clock/advance_ms)"
  echo uplink > "$(N eth3 ifalias)"
  [ "$(cat "$(N eth0 operstate)")" = down ]
  [ "$(cat "$(N eth2 queues/tx-0/byte_queue_limits/inflight)")" != 0 ]
  dump_tree > "$BATS_TEST_TMPDIR/before"
  echo base > "$(K machine/snapshot)"

  # ip-free changes through sysfs files and the knobs.
  echo 0x1003 > "$(N eth1 flags)"                 # up: eth0 gets its carrier
  echo 0x1002 > "$(N eth3 flags)"                 # down: eth2 loses it
  echo 9000 > "$(N eth0 mtu)"
  echo 50 > "$(N eth0 tx_queue_len)"
  echo changed > "$(N eth0 ifalias)"
  echo 3 > "$(N eth0 netdev_group)"
  echo f0 > "$(N eth2 queues/rx-2/rps_cpus)"
  echo 3 > "$(N eth2 queues/tx-1/xps_cpus)"
  echo 3000 > "$(N eth2 queues/tx-0/byte_queue_limits/limit_min)"
  echo 1 > "$MNT/bus/pci/devices/0000:00:03.0/numa_node"
  echo "drop_rx 2" > "$(K net/eth0/faults)"
  echo posted > "$(K net/eth1/ordering)"
  echo up > "$(K net/eth4/link)"
  echo "count 0 rate 5000" > "$(K net/eth0/traffic)"
  echo start > "$(K net/eth0/traffic)"
  echo 25 > "$(K clock/advance_ms)"
  echo 0 > "$(N eth0 carrier)"                    # a carrier change
  chmod 0600 "$(N eth0 mtu)"
  chown -h 1000:1000 "$MNT/class/net/eth0"
  dump_tree > "$BATS_TEST_TMPDIR/changed"

  echo "base now" > "$(K machine/diff)"
  sed "s/: .*//" "$(K machine/diff)" > "$BATS_TEST_TMPDIR/diff_paths"
  changed_paths "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/changed" > "$BATS_TEST_TMPDIR/dump_paths"
  diff "$BATS_TEST_TMPDIR/dump_paths" "$BATS_TEST_TMPDIR/diff_paths"
  for p in net/eth0/mtu net/eth1/flags net/eth3/operstate net/eth0/statistics/tx_packets \
           kernel/debug/vsysfs/net/eth0/traffic kernel/debug/vsysfs/net/eth4/link; do
    grep -q "$p\$" "$BATS_TEST_TMPDIR/diff_paths"
  done

  echo base > "$(K machine/restore)"
  dump_tree > "$BATS_TEST_TMPDIR/after"
  diff "$BATS_TEST_TMPDIR/before" "$BATS_TEST_TMPDIR/after"
  echo "base now" > "$(K machine/diff)"
  [ -z "$(cat "$(K machine/diff)")" ]
  grep -q '"what":"restore","result":"OK"' "$(K events)"
  [ "$(cat "$(N eth1 operstate)")" = down ]
  [ "$(cat "$(N eth0 operstate)")" = down ]

  # The sender pending at the snapshot runs on; eth0's, started after it, does not.
  sent=$(awk '$1 == "sent" { print $2 }' "$(K net/eth2/traffic)")
  echo 20 > "$(K clock/advance_ms)"
  [ "$(awk '$1 == "sent" { print $2 }' "$(K net/eth2/traffic)")" -gt "$sent" ]
  grep -qx "state stopped" "$(K net/eth0/traffic)"
  [ "$(cat "$(N eth0 statistics/tx_packets)")" = 0 ]
}

@test "net-lab: a link_flap schedule taken mid-flap comes back; the carrier toggles at the same instants" {
  echo 0x1003 > "$(N eth1 flags)"   # up: eth0 has its carrier
  [ "$(cat "$(N eth0 operstate)")" = up ]
  echo quiet > "$(K machine/snapshot)"
  t0=$(( $(cat "$(K clock/now_ns)") / 1000000 ))
  echo eth0 > "$(K fail/link_flap/ifaces)"
  echo 100 > "$(K fail/link_flap/probability)"
  echo -1 > "$(K fail/link_flap/times)"
  echo 3 > "$(K fail/link_flap/count)"
  echo 1050 > "$(K clock/advance_ms)"
  [ "$(cat "$(N eth0 operstate)")" = down ]
  echo flapping > "$(K machine/snapshot)"
  # The flaps after the snapshot: "TIME_MS up|down" of eth0's link_flap
  # and carrier events, after the event numbered $1.
  flaps_after() {
    python3 - "$(K events)" "$1" "$t0" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["seq"] > int(sys.argv[2]) and e["device"] == "eth0" and e["what"] in ("link_flap", "carrier"):
        print(e["time_ns"] // 1000000 - int(sys.argv[3]), e["what"], e["result"])
PY
  }
  seq=$(tail -n 1 "$(K events)" | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p')
  echo 3000 > "$(K clock/advance_ms)"
  first=$(flaps_after "$seq")
  [ "$(grep -c link_flap <<< "$first")" = 5 ]
  [ "$(grep -c carrier <<< "$first")" = 5 ]
  [ "$(grep link_flap <<< "$first" | head -n 2 | cut -d' ' -f1,3 | tr '\n' ' ')" = "1100 up 2000 down " ]
  [ "$(cat "$(K fail/link_flap/count)")" = 0 ]
  changes=$(cat "$(N eth0 carrier_changes)")

  echo flapping > "$(K machine/restore)"
  [ "$(cat "$(N eth0 operstate)")" = down ]
  [ "$(cat "$(K fail/link_flap/count)")" = 2 ]
  [ "$(cat "$(N eth0 carrier_changes)")" -lt "$changes" ]
  seq=$(tail -n 1 "$(K events)" | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p')
  echo 3000 > "$(K clock/advance_ms)"
  [ "$(flaps_after "$seq")" = "$first" ]
  [ "$(cat "$(N eth0 carrier_changes)")" = "$changes" ]

  # A restore while a flap holds the link down: the snapshot's machine,
  # its link up and no schedule.
  echo flapping > "$(K machine/restore)"
  echo quiet > "$(K machine/restore)"
  [ "$(cat "$(N eth0 operstate)")" = up ]
  [ "$(cat "$(K fail/link_flap/count)")" = 0 ]
  echo "quiet now" > "$(K machine/diff)"
  [ -z "$(cat "$(K machine/diff)")" ]
}
