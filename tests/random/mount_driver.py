#!/usr/bin/env python3
"""A bounded seeded random operation sequence against a mounted vsysfs.

tests/random/mount_driver.py MOUNT [--seed N] [--steps N]

The mount must be the default machine (one node, dcdbas) or
machines/xen-guest-vnuma.toml (two vNUMA nodes, no dcdbas), with the manual
clock (vsysfs -o clock=manual MOUNT); the nodes are the mount's, and the
dcdbas steps run only when the mount has dcdbas. The steps are writes through the real
mount (FUSE, the kernel's VFS, the daemon): Xen balloon targets, the
hypervisor's knobs, NUMA allocations and frees, hugepage pools (on the
default machine, a Xen PV dom0 without PSE, there are none: a write
there must find no file, ENOENT), CPU
online/offline, dcdbas calling-interface commands and smi_request, clock
advances; valid and hostile values. After every step it checks, from the
files, a subset of the invariants of the in-process suites
(docs/random-tests.md):

  xen   host free + every domain's current == host total; the guest's
        current_kb stays between its value before the step and
        min(target, max); the nodes' MemTotal sum to current_kb
  numa  numastat counters never decrease; over all nodes hit+miss ==
        local+other and numa_miss == numa_foreign; MemFree <= MemTotal;
        allocation, free, hugepage and CPU steps leave the zonelists alone
  dcdbas the WSMT buffer keeps its size and address, smi_data reads back
        smi_data_buf_size bytes; a token read/write through the calling
        interface answers what a small model of the NV settings says

VSYSFS_RANDOM_SEED / VSYSFS_RANDOM_STEPS override --seed / --steps. On a
failure it prints the seed and the steps so far (a Python list of
(path, data, offset)) and exits 1.
"""

import argparse
import errno
import os
import random
import struct
import sys

XEN = "kernel/debug/vsysfs/xen"
DEV = "devices/system/xen_memory/xen_memory0"
NODE = "devices/system/node"
NUMA = "kernel/debug/vsysfs/numa"
DCD = "devices/platform/dcdbas"
CLOCK = "kernel/debug/vsysfs/clock/advance_ms"

# The default machine's NV settings (machines/default.toml): location ->
# [value, min, max]; the calling interface keeps one value per select (NV,
# battery, AC), all equal at power-on.
SETTINGS = {0x10: [1, 0, 1], 0x21: [0, 0, 1], 0x30: [1, 0, 1]}

HOSTILE = ["", "\n", "-1", "junk\n", "18446744073709551616", "5 5", "0x", "+", "\x00" "5", "9" * 30]


class Failed(Exception):
    pass


class Driver:
    def __init__(self, mnt, rng):
        self.mnt = mnt
        self.rng = rng
        self.steps = []
        self.nv = {loc: [v[0]] * 3 for loc, v in SETTINGS.items()}
        self.allocs = 0
        self.nodes = 0
        while os.path.isdir(self.path(f"{NODE}/node{self.nodes}")):
            self.nodes += 1
        self.has_dcdbas = os.path.isdir(self.path(DCD))
        # hugetlb exists only with PSE (not on a Xen PV guest).
        self.hugetlb = os.path.isdir(self.path("kernel/mm/hugepages"))

    # --- I/O -----------------------------------------------------------------
    def path(self, rel):
        return os.path.join(self.mnt, rel)

    def read(self, rel, binary=False):
        with open(self.path(rel), "rb") as f:
            data = f.read()
        return data if binary else data.decode("latin-1")

    def num(self, rel, base=10):
        return int(self.read(rel).split()[0], base)

    def write(self, rel, data, off=0):
        """One write(2); the count or -errno."""
        self.steps.append((rel, data, off))
        raw = data.encode("latin-1") if isinstance(data, str) else data
        try:
            fd = os.open(self.path(rel), os.O_WRONLY)
        except OSError as e:
            return -e.errno
        try:
            return os.pwrite(fd, raw, off) if off else os.write(fd, raw)
        except OSError as e:
            return -e.errno
        finally:
            os.close(fd)

    def fail(self, what):
        raise Failed(what)

    # --- observations ---------------------------------------------------------------
    def xen_state(self):
        doms = {}
        for line in self.read(f"{XEN}/domains").splitlines()[1:]:
            f = line.split()
            doms[f[1]] = (int(f[2]), f[3], int(f[4]))
        return doms

    def numastat(self):
        out = []
        for n in range(self.nodes):
            d = {}
            for line in self.read(f"{NODE}/node{n}/numastat").splitlines():
                k, v = line.split()
                d[k] = int(v)
            out.append(d)
        return out

    def meminfo(self, n, label):
        for line in self.read(f"{NODE}/node{n}/meminfo").splitlines():
            f = line.split()
            if f[2] == label + ":":
                return int(f[3])
        self.fail(f"node{n} meminfo has no {label}")

    # --- invariants --------------------------------------------------------------------
    def check(self, before, step_kind):
        total = self.num(f"{XEN}/host_total_kb")
        free = self.num(f"{XEN}/host_free_kb")
        doms = self.xen_state()
        used = sum(d[0] for d in doms.values())
        if free + used != total:
            self.fail(f"host accounting: free {free} + domains {used} != total {total}")
        cur = self.num(f"{DEV}/info/current_kb")
        target = self.num(f"{DEV}/target_kb")
        gmax = self.num(f"{XEN}/guest/max_kb")
        goal = min(target, gmax)
        c0 = before["current"]
        if not min(c0, goal) <= cur <= max(c0, goal):
            self.fail(f"overshoot: current_kb {cur} outside [{c0}, goal {goal}]")
        mt = sum(self.meminfo(n, "MemTotal") for n in range(self.nodes))
        if mt != cur:
            self.fail(f"numa coupling: nodes' MemTotal {mt} != current_kb {cur}")

        stats = self.numastat()
        for n in range(self.nodes):
            for k, v in stats[n].items():
                if v < before["numastat"][n][k]:
                    self.fail(f"numastat monotone: node{n} {k} {before['numastat'][n][k]} -> {v}")
            if self.meminfo(n, "MemFree") > self.meminfo(n, "MemTotal"):
                self.fail(f"free pages: node{n} MemFree > MemTotal")
        hm = sum(s["numa_hit"] + s["numa_miss"] for s in stats)
        lo = sum(s["local_node"] + s["other_node"] for s in stats)
        if hm - before["hm0"] != lo - before["lo0"]:
            self.fail(f"numastat sums: hit+miss grew {hm - before['hm0']}, local+other {lo - before['lo0']}")
        if sum(s["numa_miss"] for s in stats) != sum(s["numa_foreign"] for s in stats):
            self.fail("numastat sums: numa_miss != numa_foreign")
        if step_kind == "numa" and self.read(f"{NUMA}/zonelists") != before["zonelists"]:
            self.fail("zonelists: changed by a NUMA step")

        if not self.has_dcdbas:
            return
        size = self.num(f"{DCD}/smi_data_buf_size")
        if size != before["smi_size"] or self.read(f"{DCD}/smi_data_buf_phys_addr") != before["smi_phys"]:
            self.fail("buffer: the WSMT buffer moved or resized")
        if len(self.read(f"{DCD}/smi_data", binary=True)) != size:
            self.fail("buffer: smi_data length != smi_data_buf_size")

    def snapshot(self, base):
        return {
            "current": self.num(f"{DEV}/info/current_kb"),
            "numastat": self.numastat(),
            "zonelists": self.read(f"{NUMA}/zonelists"),
            "smi_size": base["smi_size"],
            "smi_phys": base["smi_phys"],
            "hm0": base["hm0"],
            "lo0": base["lo0"],
        }

    # --- steps ----------------------------------------------------------------------------
    def hostile(self):
        return self.rng.choice(HOSTILE)

    def step_xen(self):
        cur = self.num(f"{DEV}/info/current_kb")
        f = self.rng.choice(["target_kb", "target", "host_free_kb", "populate_fail", "db_target",
                             "max_retry_count", "max_schedule_delay"])
        kb = max(0, cur + self.rng.randrange(-1 << 20, 1 << 20)) // 4 * 4  # +-1 GiB
        val = self.hostile() if self.rng.random() < 0.15 else None
        if f == "target_kb":
            self.write(f"{DEV}/target_kb", val or f"{kb}\n")
        elif f == "target":
            self.write(f"{DEV}/target", val or f"{kb // 1024}M\n")
        elif f == "host_free_kb":
            self.write(f"{XEN}/host_free_kb", val or f"{self.rng.randrange(0, 4 << 20)}\n")
        elif f == "populate_fail":
            self.write(f"{XEN}/populate_fail", val or f"{self.rng.randrange(3)}\n")
        elif f == "db_target":
            self.write(f"{XEN}/domain/db/target_kb", val or f"{self.rng.randrange(8 << 20, 12 << 20) // 4 * 4}\n")
        else:
            self.write(f"{DEV}/{f}", val or f"{self.rng.randrange(6)}\n")

    def step_numa(self):
        r = self.rng.random()
        if r < 0.5:
            policy = self.rng.choice(["default", "local", "preferred:1", "bind:0", "bind:0-1",
                                      "interleave", "interleave:0-1", "preferred:2"])
            kind = self.rng.choice(["anon", "file", "shmem", "slab", "pagetables", "bogus"])
            line = f"pages={self.rng.randrange(1, 100000)} cpu={self.rng.randrange(9)} policy={policy} kind={kind}\n"
            if self.write(f"{NUMA}/alloc", self.hostile() if self.rng.random() < 0.1 else line) > 0:
                self.allocs += 1
        elif r < 0.7:
            self.write(f"{NUMA}/free", f"{self.rng.randrange(self.allocs + 2)}\n")
        elif r < 0.85:
            n = self.rng.randrange(self.nodes)
            rc = self.write(f"{NODE}/node{n}/hugepages/hugepages-2048kB/nr_hugepages",
                            self.hostile() if self.rng.random() < 0.15 else f"{self.rng.randrange(40)}\n")
            if not self.hugetlb and rc != -errno.ENOENT:
                self.fail(f"node{n} nr_hugepages without hugetlb: {rc}, not -ENOENT")
        else:
            cpu = self.rng.randrange(1, 8)
            self.write(f"devices/system/cpu/cpu{cpu}/online",
                       self.hostile() if self.rng.random() < 0.15 else self.rng.choice(["0\n", "1\n"]))

    def step_dcdbas(self, phys):
        cls = self.rng.choice([0, 1])
        sel = self.rng.randrange(3)
        loc = self.rng.choice(list(SETTINGS) + [0x99])
        value = self.rng.choice([0, 1, 2])
        cmd = struct.pack("<IIIHBB", 0x534D4931, 0, 0x42534931, 0xB2, 0xDA, 0)
        ci = struct.pack("<HH4I4i", cls, sel, loc, value, 0, 0, 0x0AAAAAAA, 0, 0, 0)
        if self.write(f"{DCD}/smi_data", cmd + ci) != len(cmd + ci):
            self.fail("smi_data: the command did not fit")
        if self.write(f"{DCD}/smi_request", "1\n") != 2:
            self.fail("smi_request: 1 refused")
        # Model: reference 2.4, output[0] 0 ok / -1 bad location or value.
        if loc not in self.nv:
            want = (-1, 0, 0, 0)
        else:
            lo, hi = SETTINGS[loc][1], SETTINGS[loc][2]
            if cls == 1 and not lo <= value <= hi:
                want = (-1, 0, 0, 0)
            else:
                if cls == 1:
                    self.nv[loc][sel] = value
                want = (0, self.nv[loc][sel], lo, hi)
        data = self.read(f"{DCD}/smi_data", binary=True)
        got = struct.unpack_from("<4i", data, 16 + 20)
        ebx = struct.unpack_from("<I", data, 4)[0]
        if ebx != (phys + 16) & 0xFFFFFFFF:
            self.fail(f"smi request: ebx {ebx:#x} is not the buffer's command_buffer")
        if got != want:
            self.fail(f"smi answer: class {cls}/{sel} location {loc:#x} value {value}: got {got}, model {want}")

    def run(self, steps):
        if self.nodes == 0:
            self.fail("the mount has no NUMA node")
        size = self.num(f"{DCD}/smi_data_buf_size") if self.has_dcdbas else None
        phys = self.read(f"{DCD}/smi_data_buf_phys_addr") if self.has_dcdbas else None
        kinds = ["xen", "numa", "numa", "dcdbas", "clock"] if self.has_dcdbas else ["xen", "numa", "numa", "clock"]
        stats = self.numastat()
        base = {
            "smi_size": size,
            "smi_phys": phys,
            "hm0": sum(s["numa_hit"] + s["numa_miss"] for s in stats),
            "lo0": sum(s["local_node"] + s["other_node"] for s in stats),
        }
        self.check(self.snapshot(base), "initial")
        for _ in range(steps):
            before = self.snapshot(base)
            kind = self.rng.choice(kinds)
            if kind == "xen":
                self.step_xen()
            elif kind == "numa":
                self.step_numa()
            elif kind == "dcdbas":
                self.step_dcdbas(int(phys, 16))
            else:
                ms = self.rng.choice([0, 1, 4, 1000, 5000, 60000, self.rng.randrange(70000)])
                self.write(CLOCK, str(ms) if self.rng.random() > 0.05 else self.hostile())
            self.check(before, kind)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mount")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=150)
    a = ap.parse_args()
    seed = int(os.environ.get("VSYSFS_RANDOM_SEED") or str(a.seed), 0)
    steps = int(os.environ.get("VSYSFS_RANDOM_STEPS") or str(a.steps), 0)
    d = Driver(a.mount, random.Random(seed))
    if d.read("kernel/debug/vsysfs/clock/mode") != "manual\n":
        print("mount_driver: the mount needs -o clock=manual", file=sys.stderr)
        return 2
    try:
        d.run(steps)
    except Failed as e:
        print(f"mount_driver: seed {seed}: FAILED after {len(d.steps)} writes: {e}")
        print("steps (path, data, offset):")
        for s in d.steps:
            print(f"  {s!r},")
        return 1
    print(f"mount_driver: seed {seed}, {steps} steps ({len(d.steps)} writes, {d.allocs} allocations, "
          f"{d.nodes} node(s), dcdbas {'yes' if d.has_dcdbas else 'no'}, "
          f"hugetlb {'yes' if d.hugetlb else 'no'}): OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
