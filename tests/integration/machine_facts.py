#!/usr/bin/env python3
"""What a machine file says the machine is, for the integration tests that
check real tools against the mount (standard_files.bats, tools.bats).

    machine_facts.py WHAT MACHINE.toml

The tests compute their expectations from the machine file, not from the
mount: these are the rules of devices/numa/numa_machine.cpp and
devices/net/netdev_machine.cpp written again, independently, so a mount
that disagrees with its machine file fails.

WHAT:
  cpus      "NCPUS NNODES": with [numa], the nodes' cpulists; without, [net]'s
            nr_cpu_ids/nr_node_ids (defaults 4 and 1)
  caches    "NAME SIZE_KIB WAYS SETS INSTANCES" per cache leaf (the machine
            file's [[numa.cache]], else the default geometry); INSTANCES
            counts the cores (per-core leaves) or packages
  memory    "BLOCK_BYTES TOTAL_BYTES": each node spans whole memory blocks
            (memory_block_size_mb, else 128 MiB below 64 GiB, else 2 GiB)
  pci       "SLOT VENDOR DEVICE NUMA_NODE BAR0_SIZE" per PCI interface
  facts     socket CORES THREADS   one line per package, in package order
            node ID MEMORY_MB CPULIST
            memory TOTAL_MB
            dmi_socket CORES THREADS   SMBIOS type 4, one per socket
            dmi_array MEMORY_MB       SMBIOS type 16, one per array
            pci SLOT NODE NAME MAC   one per PCI interface
"""
import sys
import tomllib

MiB = 1 << 20


def expand(s):
    """A kernel cpulist ("0-3,8") as a list of numbers."""
    out = []
    for p in filter(None, s.split(",")):
        a, _, b = p.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out


def mem_kib(v):
    """A machine-file memory size: an integer is KiB, a string takes K/M/G/T."""
    if isinstance(v, int):
        return v
    return int(v[:-1]) << {"K": 0, "M": 10, "G": 20, "T": 30}[v[-1].upper()]


def default_counts(m):
    """Without [numa]: (CPUs, nodes) from [net], nodes at most one per CPU."""
    net = m.get("net", {})
    ncpu = net.get("nr_cpu_ids", 4)
    return ncpu, min(net.get("nr_node_ids", 1), ncpu)


def cpus(m):
    if "numa" in m:
        n = sorted(c for node in m["numa"]["node"] for c in expand(node.get("cpus", "")))
        print(len(n), len(m["numa"]["node"]))
    else:
        net = m.get("net", {})
        print(net.get("nr_cpu_ids", 4), net.get("nr_node_ids", 1))


def caches(m):
    numa = m.get("numa")
    if numa:
        tpc = numa.get("threads_per_core", 1)
        pkgs = {}
        for nid, n in enumerate(numa["node"]):
            pkg = n.get("package", nid)
            pkgs[pkg] = pkgs.get(pkg, 0) + len(expand(n.get("cpus", "")))
        cores = {p: c // tpc for p, c in pkgs.items() if c}
        leaves = numa.get("cache")
    else:
        ncpu, nnode = default_counts(m)
        cores = {i: (i + 1) * ncpu // nnode - i * ncpu // nnode for i in range(nnode)}
        leaves = None
    if leaves is None:
        l3 = 1408 * max(cores.values())
        leaves = [dict(level=1, type="Data", size_kb=32, ways=8),
                  dict(level=1, type="Instruction", size_kb=32, ways=8),
                  dict(level=2, type="Unified", size_kb=1024, ways=16),
                  dict(level=3, type="Unified", size_kb=l3, ways=11, shared="package")]
    for leaf in leaves:
        name = "L%d%s" % (leaf["level"], {"Data": "d", "Instruction": "i"}.get(leaf["type"], ""))
        shared = leaf.get("shared", "package" if leaf["level"] >= 3 else "core")
        inst = len(cores) if shared == "package" else sum(cores.values())
        sets = leaf["size_kb"] * 1024 // (leaf["ways"] * leaf.get("line_size", 64)
                                          * leaf.get("partition", 1))
        print(name, leaf["size_kb"], leaf["ways"], sets, inst)


def memory(m):
    numa = m.get("numa")
    if numa:
        nodes = [n.get("memory_mb", 0) * MiB for n in numa["node"]]
        block = numa.get("memory_block_size_mb", 0) * MiB
    else:
        total = mem_kib(m.get("xen", {}).get("memory", "4G")) * 1024
        _, n = default_counts(m)
        pages = total // 4096
        nodes = [(pages // n + (pages % n if i == 0 else 0)) * 4096 for i in range(n)]
        block = 0
    if not block:
        block = 128 * MiB if sum(nodes) < 64 << 30 else 2048 * MiB
    print(block, sum(-(-b // block) * block for b in nodes))


def pci(m):
    for i in m.get("net", {}).get("interface", []):
        if "pci" in i:
            print(i["pci"], "%04x" % i.get("pci_vendor", 0x8086), "%04x" % i.get("pci_device", 0x100e),
                  i.get("numa_node", -1), "%x" % i.get("pci_bar0_size", 0x20000),
                  "%02x" % i.get("pci_revision", 0x03))


def facts(m):
    numa = m.get("numa")
    nodes = []  # (cpus, mb, package)
    if numa:
        tpc = numa.get("threads_per_core", 1)
        for nid, n in enumerate(numa["node"]):
            nodes.append((expand(n.get("cpus", "")), n.get("memory_mb", 0), n.get("package", nid)))
    else:
        tpc = 1
        ncpu, nn = default_counts(m)
        total = mem_kib(m.get("xen", {}).get("memory", "4G")) // 1024
        for i in range(nn):
            nodes.append((list(range(i * ncpu // nn, (i + 1) * ncpu // nn)),
                          total // nn + (total % nn if i == 0 else 0), i))
    pkgs = {}
    for cpu_list, _, pkg in nodes:
        pkgs[pkg] = pkgs.get(pkg, 0) + len(cpu_list)
    for pkg in sorted(pkgs):
        if pkgs[pkg]:
            print("socket", pkgs[pkg] // tpc, pkgs[pkg])
    for nid, (cpu_list, mb, _) in enumerate(nodes):
        print("node", nid, mb, ",".join(map(str, cpu_list)) or "-")
    print("memory", sum(mb for _, mb, _ in nodes))
    # The firmware's (SMBIOS) view: the same, unless [dcdbas] describes the
    # host apart (smbios_sockets, smbios_memory_mb: a Xen dom0).
    dcd = m.get("dcdbas", {})
    socks = [(pkgs[p] // tpc, pkgs[p]) for p in sorted(pkgs) if pkgs[p]]
    if "smbios_sockets" in dcd:
        n = dcd["smbios_sockets"]
        socks = [(sum(c for c, _ in socks) // n, sum(t for _, t in socks) // n)] * n
    for c, t in socks:
        print("dmi_socket", c, t)
    arrays = [mb for _, mb, _ in nodes]
    if "smbios_memory_mb" in dcd:
        arrays = [dcd["smbios_memory_mb"] // len(socks)] * len(socks)
    for mb in arrays:
        print("dmi_array", mb)
    for i in m.get("net", {}).get("interface", []):
        if "pci" in i:
            print("pci", i["pci"], i.get("numa_node", -1), i["name"], i.get("mac", "-"))


def main():
    what = {"cpus": cpus, "caches": caches, "memory": memory, "pci": pci, "facts": facts}
    if len(sys.argv) != 3 or sys.argv[1] not in what:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2], "rb") as f:
        what[sys.argv[1]](tomllib.load(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
