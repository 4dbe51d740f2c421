#!/usr/bin/python3
"""Run real tools on two sysfs trees and compare their output.

Usage: tools.py --real DIR --mount DIR [--allowed FILE] [--context NAME]
                [--cpuinfo FILE]

DIR is a sysfs root (/sys, or a vsysfs mount). Tools with a root option
get one (lscpu/lsmem --sysroot, HWLOC_FSROOT, lspci -O sysfs.path);
tools that only read /sys itself (numactl, dmidecode) run with DIR bound
over /sys inside `unshare -m` (a private mount namespace: nothing is
mounted on the host's /sys). A tool that is not installed, or has
nothing to read on the real side (dmidecode without DMI tables), is
skipped and says so. Differing lines are failures unless an
allowed-differences line of kind "tool" matches "TOOL:-LINE" (only the
real side) or "TOOL:+LINE" (only the mount). Prints "ok TOOL",
"FAIL TOOL" with the lines, or "skip TOOL: why"; exits 1 on a failure.
"""

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import load_allowed  # noqa: E402

TIMEOUT = 60


def run(cmd, env=None):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                           env=dict(os.environ, **(env or {})), errors="replace")
    except subprocess.TimeoutExpired:
        return "<timeout>"
    return p.stdout + (f"<exit {p.returncode}>\n" if p.returncode else "")


def in_sys(sysdir, cmd):
    """cmd with sysdir as /sys (a private mount namespace) unless it is /sys."""
    if os.path.realpath(sysdir) == "/sys":
        return run(cmd)
    script = 'mount --bind "$0" /sys && exec "$@"'
    return run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, sysdir] + cmd)


def make_root(base, sysdir, cpuinfo):
    """base/sys -> sysdir, base/proc/cpuinfo: a --sysroot for lscpu & co."""
    os.makedirs(f"{base}/proc")
    os.symlink(os.path.abspath(sysdir), f"{base}/sys")
    shutil.copyfile(cpuinfo, f"{base}/proc/cpuinfo")
    return base


def synth_cpuinfo(sysdir, path):
    """One stanza per present CPU (what lscpu needs to read caches), for a
    tree whose CPUs are not the host's."""
    present = open(f"{sysdir}/devices/system/cpu/present").read().strip()
    cpus = []
    for part in present.split(","):
        a, _, b = part.partition("-")
        cpus.extend(range(int(a), int(b or a) + 1))
    with open(path, "w") as f:
        for c in cpus:
            f.write(f"processor\t: {c}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--real", required=True)
    ap.add_argument("--mount", required=True)
    ap.add_argument("--allowed")
    ap.add_argument("--context", default="host")
    ap.add_argument("--cpuinfo", help="the /proc/cpuinfo both sides get (default: one "
                    "synthesised from the real side's present CPUs)")
    args = ap.parse_args()
    rules = [r for r in load_allowed(args.allowed) if r[0] == "tool"]
    import fnmatch

    def allowed(key):
        return any(fnmatch.fnmatchcase(key, g) and fnmatch.fnmatchcase(args.context, c)
                   for _, g, c, _ in rules)

    work = tempfile.mkdtemp(prefix="vsysfs-tools-")
    try:
        cpuinfo = args.cpuinfo
        if not cpuinfo:
            cpuinfo = f"{work}/cpuinfo"
            synth_cpuinfo(args.real, cpuinfo)
        roots = {side: make_root(f"{work}/{side}", d, cpuinfo)
                 for side, d in (("real", args.real), ("mount", args.mount))}
        sysdirs = {"real": args.real, "mount": args.mount}
        tools = []
        for opt in ("-e", "-p", "-C", "-J"):
            tools.append((f"lscpu{opt}", "lscpu",
                          lambda side, o=opt: run(["lscpu", o, "--sysroot", roots[side]])))
        tools.append(("lsmem", "lsmem", lambda side: run(
            ["lsmem", "--sysroot", roots[side], "-o", "RANGE,SIZE,STATE,REMOVABLE,BLOCK,NODE"])))
        tools.append(("lstopo-xml", "lstopo-no-graphics", lambda side: run(
            ["lstopo-no-graphics", "--of", "xml"], env={"HWLOC_FSROOT": roots[side]})))
        tools.append(("numactl-hardware", "numactl",
                      lambda side: in_sys(sysdirs[side], ["numactl", "--hardware"])))
        for opt in ("-vv", "-t"):
            tools.append((f"lspci{opt}", "lspci", lambda side, o=opt: run(
                ["lspci", o, "-A", "linux-sysfs", "-O", f"sysfs.path={sysdirs[side]}/bus/pci"])))
        tools.append(("dmidecode", "dmidecode",
                      lambda side: in_sys(sysdirs[side], ["dmidecode"])))

        failed = 0
        for name, binary, fn in tools:
            if not shutil.which(binary):
                print(f"skip {name}: {binary} is not installed (mount-scripts/install-deps)")
                continue
            if name.startswith("lspci") and not os.path.isdir(f"{args.real}/bus/pci/devices"):
                print(f"skip {name}: no PCI bus in the real tree")
                continue
            if name == "dmidecode" and not os.access(f"{args.real}/firmware/dmi/tables/DMI", os.R_OK):
                print(f"skip {name}: no readable DMI tables in the real tree")
                continue
            a = fn("real").splitlines()
            b = fn("mount").splitlines()
            bad = []
            for line in difflib.unified_diff(a, b, lineterm="", n=0):
                if line.startswith(("---", "+++", "@@")):
                    continue
                if not allowed(f"{name}:{line}"):
                    bad.append(line)
            if bad:
                failed += 1
                print(f"FAIL {name}")
                for line in bad[:40]:
                    print(f"    {line}")
            else:
                print(f"ok {name}")
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
