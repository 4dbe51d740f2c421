#!/usr/bin/env python3
"""Writes the command-language seeds of tests/fuzz/fuzz_knobs.cpp into
tests/fuzz/corpus/fuzz_knobs/cmd-*: for each knob or attribute that parses
more than a number, a record sequence of valid (and nearly valid) commands,
so the fuzzer starts past the first keyword. The record format addresses a
file by its index in the target's file list, which this script gets from
the built target (FUZZ_KNOBS_LIST=1); rerun it when machines/default.toml
or a device's files change:  python3 tests/fuzz/make_knob_seeds.py [build-fuzz]"""
import fnmatch
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "build-fuzz")
OUT = os.path.join(HERE, "corpus", "fuzz_knobs")

ADV = 0x10   # advance the clock by `flags` ms after the write
READ = 0x20  # read every file back

# name: (machine, [(glob, text, extra flags), ...]); machine "default" or a machines/*.toml stem.
SEEDS = {
    "net-traffic": ("default", [
        ("kernel/debug/vsysfs/net/*/traffic", "count 5 size 64 rate 1000 cpus 2\n", 0),
        ("kernel/debug/vsysfs/net/*/traffic", "start\n", ADV),
        ("kernel/debug/vsysfs/net/*/traffic", "start", ADV),
        ("kernel/debug/vsysfs/net/*/traffic", "stop\n", 0),
        ("kernel/debug/vsysfs/net/*/traffic", "count 0 rate 100000", 0),  # line rate costs ~50 us per packet under ASan
        ("kernel/debug/vsysfs/net/*/traffic", "start", ADV | READ),
        ("kernel/debug/vsysfs/net/*/traffic", "size 13 rate 0 cpus 99", 0),
        ("kernel/debug/vsysfs/net/*/traffic", "size 65535", ADV),
    ]),
    "net-faults": ("xen-guest-vnuma", [
        ("kernel/debug/vsysfs/net/*/faults", "hang_tx 1\n", 0),
        ("kernel/debug/vsysfs/net/*/traffic", "count 100 rate 10000", 0),
        ("kernel/debug/vsysfs/net/*/traffic", "start", ADV),
        ("kernel/debug/vsysfs/net/*/faults", "drop_rx 3", ADV),
        ("kernel/debug/vsysfs/net/*/faults", "fail_open ENOMEM", 0),
        ("kernel/debug/vsysfs/net/*/faults", "skip_queue_stop 1", ADV),
        ("kernel/debug/vsysfs/net/*/link", "down\n", ADV),
        ("kernel/debug/vsysfs/net/*/link", "up\n", ADV),
        ("kernel/debug/vsysfs/net/*/faults", "hang_tx 0", 0),
        ("kernel/debug/vsysfs/net/*/faults", "fail_open 0", ADV | READ),
    ]),
    "net-ordering": ("default", [
        ("kernel/debug/vsysfs/net/*/ordering", "posted\n", 0),
        ("kernel/debug/vsysfs/net/*/traffic", "start", ADV),
        ("kernel/debug/vsysfs/net/*/ordering", "flush", ADV),
        ("kernel/debug/vsysfs/net/*/link", "down", 0),
    ]),
    "net-sysfs": ("default", [
        ("devices/*/net/*/mtu", "9000\n", 0),
        ("devices/*/net/*/flags", "0x1002\n", 0),
        ("devices/*/net/*/flags", "0x1003\n", ADV),
        ("devices/*/net/*/tx_queue_len", "500", 0),
        ("devices/*/net/*/ifalias", "uplink to core\n", 0),
        ("devices/*/net/*/carrier", "0", 0),
        ("devices/*/net/*/proto_down", "1", 0),
        ("devices/*/net/*/threaded", "1", 0),
        ("devices/*/net/*/napi_defer_hard_irqs", "2", 0),
        ("devices/*/net/*/gro_flush_timeout", "20000", 0),
        ("devices/*/net/*/netdev_group", "3", 0),
        ("devices/*/net/*/uevent", "change", READ),
    ]),
    "net-queues": ("default", [
        ("devices/*/net/*/queues/tx-0/xps_cpus", "3\n", 0),
        ("devices/*/net/*/queues/rx-0/rps_cpus", "f", 0),
        ("devices/*/net/*/queues/rx-0/rps_flow_cnt", "32", 0),
        ("devices/*/net/*/queues/tx-0/tx_maxrate", "100", 0),
        ("devices/*/net/*/queues/tx-0/byte_queue_limits/limit_max", "30000", 0),
        ("devices/*/net/*/queues/tx-0/byte_queue_limits/limit_min", "100", 0),
        ("devices/*/net/*/queues/tx-0/byte_queue_limits/hold_time", "1000", 0),
        ("devices/*/net/*/queues/tx-0/byte_queue_limits/limit", "5000", READ),
    ]),
    "numa-alloc": ("default", [
        ("kernel/debug/vsysfs/numa/alloc", "pages=100\n", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=64 cpu=1 policy=interleave kind=anon", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=10 policy=bind:0 kind=file\n", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=5 cpu=0 policy=preferred:1 kind=slab_reclaimable", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=0x10 policy=interleave:0-1 kind=shmem", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=1 policy=local kind=kernel_stack", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=3 policy=default kind=pagetables", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=2 kind=slab_unreclaimable policy=bind:0,1", 0),
        ("kernel/debug/vsysfs/numa/free", "2\n", 0),
        ("kernel/debug/vsysfs/numa/free", "2", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=999999999999 policy=bind:1", READ),
    ]),
    "numa-node": ("xen-guest-vnuma", [
        ("devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "4\n", 0),
        ("devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", "2", 0),
        ("devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages", "1\n", 0),
        ("kernel/mm/hugepages/hugepages-1048576kB/demote_size", "2M\n", 0),
        ("kernel/mm/hugepages/hugepages-1048576kB/demote", "1", 0),
        ("devices/system/cpu/cpu1/online", "0\n", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=8 cpu=1", 0),
        ("devices/system/cpu/cpu1/online", "1", READ),
    ]),
    "xen-balloon": ("default", [
        ("devices/system/xen_memory/xen_memory0/target_kb", "524288\n", ADV),
        ("devices/system/xen_memory/xen_memory0/target", "512M", ADV),
        ("devices/system/xen_memory/xen_memory0/max_schedule_delay", "0x20", 0),
        ("devices/system/xen_memory/xen_memory0/max_retry_count", "3", 0),
                ("devices/system/xen_memory/xen_memory0/target", "2G", ADV),
        ("kernel/debug/vsysfs/clock/advance_ms", "5000", 0),
        ("devices/system/xen_memory/xen_memory0/uevent", "change", READ),
    ]),
    "xen-hypervisor": ("default", [
        ("kernel/debug/vsysfs/xen/host_free_kb", "1024\n", 0),
        ("kernel/debug/vsysfs/xen/populate_fail", "2", 0),
        ("devices/system/xen_memory/xen_memory0/target", "4G", ADV),
        ("kernel/debug/vsysfs/xen/host_total_kb", "16777216", 0),
        ("kernel/debug/vsysfs/xen/domain/*/target_kb", "262144", 0),
        ("kernel/debug/vsysfs/xen/domain/*/current_kb", "131072", 0),
        ("kernel/debug/vsysfs/xen/domain/*/pace", "1000", ADV),
        ("kernel/debug/vsysfs/clock/advance_ms", "60000", READ),
        ("bus/xen_memory/drivers_probe", "xen_memory0\n", 0),
        ("bus/xen_memory/drivers_autoprobe", "0", 0),
    ]),
    "xenstore": ("default", [
        ("kernel/debug/vsysfs/xen/xenstore", "/local/domain/1/memory/target 8388608\n", ADV),
        ("kernel/debug/vsysfs/xen/xenstore",
         "/local/domain/2/memory/target 1048576\n/local/domain/0/memory/target 2097152\n", ADV),
        ("kernel/debug/vsysfs/xen/xenstore", "/local/domain/1/memory/target 12abc", 0),
        ("kernel/debug/vsysfs/xen/xenstore", "/local/domain/1/memory/static-max 1\n", 0),
        ("kernel/debug/vsysfs/xen/xenstore", "/tool/a/b/c x\n", READ),
        ("kernel/debug/vsysfs/clock/advance_ms", "5000", READ),
    ]),
    "fail": ("default", [
        ("kernel/debug/vsysfs/fail/seed", "7\n", 0),
        ("kernel/debug/vsysfs/fail/store/paths", "devices/*/mtu\n", 0),
        ("kernel/debug/vsysfs/fail/store/probability", "100", 0),
        ("kernel/debug/vsysfs/fail/store/times", "2", 0),
        ("kernel/debug/vsysfs/fail/store/errno", "5", 0),
        ("devices/pci0000:00/*/net/eth0/mtu", "1400", READ),
        ("kernel/debug/vsysfs/fail/smi/kind", "error", 0),
        ("kernel/debug/vsysfs/fail/smi/probability", "50", 0),
        ("kernel/debug/vsysfs/fail/page_alloc/ignore-gfp-wait", "N", 0),
        ("kernel/debug/vsysfs/fail/page_alloc/probability", "100", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=4 policy=bind:0\n", READ),
    ]),
    "dcdbas": ("default", [
        ("devices/platform/dcdbas/smi_data_buf_size", "4096\n", 0),
        ("devices/platform/dcdbas/host_control_action", "4", 0),
        ("devices/platform/dcdbas/host_control_smi_type", "2", 0),
        ("devices/platform/dcdbas/host_control_on_shutdown", "1", 0),
        ("devices/platform/dcdbas/uevent", "change 12345678-1234-1234-1234-123456789abc A=b\n", 0),
        ("devices/platform/dcdbas/driver_override", "dcdbas\n", 0),
        ("devices/platform/dcdbas/power/control", "on\n", 0),
        ("devices/platform/dcdbas/smi_request", "0", 0),
        ("kernel/debug/vsysfs/machine/shutdown", "reboot\n", READ),
    ]),
    "control": ("default", [
        ("kernel/debug/vsysfs/clock/advance_ms", "0x10\n", 0),
        ("kernel/debug/vsysfs/events_clear", "1", 0),
        ("kernel/debug/vsysfs/testdev/notify", "value", 0),
        ("kernel/debug/vsysfs/testdev/timer_ms", "5", ADV),
        ("kernel/debug/vsysfs/testdev/set", "-3", 0),
        ("kernel/debug/vsysfs/machine/shutdown", "poweroff", 0),
        ("kernel/debug/vsysfs/machine/shutdown", "halt", 0),
        # last: hotplug reshapes the file list the indices refer to
        ("kernel/debug/vsysfs/testdev/hotplug", "add t1\n", READ),
    ]),
    "xen-guest": ("xen-host-3dom", [
        ("kernel/debug/vsysfs/xen/guest/used_kb", "1048576\n", 0),
        ("devices/system/xen_memory/xen_memory0/target", "8G", ADV),
        ("kernel/debug/vsysfs/clock/advance_ms", "2000", 0),
        ("kernel/debug/vsysfs/xen/domain/db/target_kb", "4194304", 0),
        ("kernel/debug/vsysfs/clock/advance_ms", "30000", 0),
        ("devices/system/xen_memory/xen_memory0/target_kb", "1048576", ADV),
        ("kernel/debug/vsysfs/xen/guest/used_kb", "99999999", 0),
        ("kernel/debug/vsysfs/clock/advance_ms", "60000", READ),
    ]),
    "net-lab-bql": ("net-lab", [
        ("kernel/debug/vsysfs/net/eth2/traffic", "count 200 size 1500 rate 100000 cpus 4\n", 0),
        ("kernel/debug/vsysfs/net/eth2/traffic", "start", ADV),
        ("devices/*/net/eth2/queues/tx-1/byte_queue_limits/limit_max", "3000", ADV),
        ("kernel/debug/vsysfs/net/eth2/faults", "hang_tx 1", ADV),
        ("kernel/debug/vsysfs/clock/advance_ms", "3000", 0),
        ("devices/*/net/eth2/queues/tx-2/xps_cpus", "f0", ADV),
        ("kernel/debug/vsysfs/net/eth1/ordering", "posted", 0),
        ("kernel/debug/vsysfs/net/eth0/traffic", "start", ADV | READ),
        ("devices/*/net/eth4/flags", "0x1003", ADV),
    ]),
    "dell-type1": ("dell-poweredge-300", [
        ("devices/platform/dcdbas/host_control_action", "2\n", 0),
        ("devices/platform/dcdbas/host_control_smi_type", "1", 0),
        ("devices/platform/dcdbas/host_control_on_shutdown", "1", 0),
        ("kernel/debug/vsysfs/machine/shutdown", "poweroff", READ),
    ]),
    "numa-8node": ("numa-8node", [
        ("kernel/debug/vsysfs/numa/alloc", "pages=100000 cpu=3 policy=interleave:0-7 kind=anon\n", 0),
        ("kernel/debug/vsysfs/numa/alloc", "pages=4096 policy=preferred:7 kind=file", 0),
        ("devices/system/node/node5/hugepages/hugepages-2048kB/nr_hugepages", "16", 0),
        ("kernel/debug/vsysfs/numa/free", "1", READ),
    ]),
}


def listing(machine):
    """machine index -> (machine names, writable files of that machine)."""
    binary = os.path.abspath(os.path.join(BUILD, "fuzz_knobs"))
    with tempfile.NamedTemporaryFile() as one:
        one.write(b"x")
        one.flush()
        out = subprocess.run([binary, one.name], env=dict(os.environ, FUZZ_KNOBS_LIST=str(machine)),
                             capture_output=True, text=True, check=True,
                             cwd=os.path.join(HERE, "..", "..")).stdout
    names = [l.split()[3] for l in out.splitlines() if l.startswith("# machine ")]
    files = [l.split(" ", 1)[1] for l in out.splitlines() if l and not l.startswith("#")]
    return names, files


def main():
    names, _ = listing(0)
    missing = 0
    for name, (machine, steps) in SEEDS.items():
        index = names.index(machine)
        _, files = listing(index)
        data = bytes([index])
        for pattern, text, flags in steps:
            hits = [i for i, f in enumerate(files) if fnmatch.fnmatch(f, pattern)]
            if not hits:
                print(f"{name}: no file matches {pattern}", file=sys.stderr)
                missing += 1
                continue
            idx, body = hits[0], text.encode()
            if idx > 255:
                data += bytes([idx & 0xFF, flags | 0x80, idx >> 8, len(body)]) + body
            else:
                data += bytes([idx, flags, len(body)]) + body
        with open(os.path.join(OUT, "cmd-" + name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds on {len(names)} machines; {missing} steps without a file")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
