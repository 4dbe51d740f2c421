#!/usr/bin/env bats
# The standard sysfs files every Linux 6.12 kernel has for the objects
# vsysfs models (docs/standard-files.md), read by the real tools against a
# mount of the default machine and of other shipped machines. Expected
# values are derived from the machine file, not written down here.
#
# util-linux tools take --sysroot ROOT and read ROOT/sys: ROOT is a
# temporary directory whose `sys` is a symlink to the mount. lscpu also
# needs ROOT/proc/cpuinfo (vsysfs serves /sys, not /proc): it gets one
# "processor"/"vendor_id" stanza per present CPU, which lscpu needs to give
# the CPUs a type (only then does it read their caches from sysfs);
# every other value lscpu prints comes from the mount.

load helpers

setup() { SYSROOT=; }

teardown() {
  vsysfs_stop
  [ -z "$SYSROOT" ] || rm -rf "$SYSROOT"
}

# make_sysroot: ROOT with sys -> $MNT and a minimal proc/cpuinfo.
make_sysroot() {
  SYSROOT=$(mktemp -d "${BATS_TMPDIR:-/tmp}/standard-root.XXXXXX")
  ln -s "$MNT" "$SYSROOT/sys"
  mkdir "$SYSROOT/proc"
  local c
  for c in $(list_expand "$(cat "$MNT/devices/system/cpu/present")"); do
    printf 'processor\t: %s\nvendor_id\t: GenuineIntel\n\n' "$c"
  done > "$SYSROOT/proc/cpuinfo"
}

# list_expand "0-2,5" -> "0 1 2 5"
list_expand() {
  local part out=()
  IFS=, read -ra parts <<<"$1"
  for part in "${parts[@]}"; do
    if [[ $part == *-* ]]; then out+=($(seq "${part%-*}" "${part#*-}")); else out+=("$part"); fi
  done
  echo "${out[@]}"
}

machine_file() { echo "$VSYSFS_ROOT/machines/$1.toml"; }

# The CPUs and nodes a machine file declares: with [numa], the nodes'
# cpulists; without, [net]'s nr_cpu_ids/nr_node_ids (defaults 4 and 1).
expected_cpus() {
  python3 - "$1" <<'PY'
import sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
def expand(s):
    out = []
    for p in filter(None, s.split(",")):
        a, _, b = p.partition("-")
        out += range(int(a), int(b or a) + 1)
    return out
if "numa" in m:
    cpus = sorted(c for n in m["numa"]["node"] for c in expand(n.get("cpus", "")))
    nodes = len(m["numa"]["node"])
else:
    net = m.get("net", {})
    cpus = list(range(net.get("nr_cpu_ids", 4)))
    nodes = net.get("nr_node_ids", 1)
print(len(cpus), nodes)
PY
}

require_tool() { command -v "$1" >/dev/null || skip "$1 is not installed"; }

@test "lscpu --sysroot works on every shipped machine; CPUs and nodes are the machine file's" {
  require_tool lscpu
  local f name out want
  for f in "$VSYSFS_ROOT"/machines/*.toml; do
    name=$(basename "$f" .toml)
    vsysfs_start -o "machine=$f"
    make_sysroot
    out=$(lscpu --sysroot "$SYSROOT") || { echo "$name: lscpu failed: $out"; return 1; }
    read -r ncpu nnode <<<"$(expected_cpus "$f")"
    echo "$name: $out" | grep -E '^(CPU\(s\)|NUMA node\(s\))' >&2 || true
    [[ $(awk -F: '$1 == "CPU(s)" { gsub(/ /, "", $2); print $2 }' <<<"$out") == "$ncpu" ]] \
      || { echo "$name: CPU(s) not $ncpu"; echo "$out"; return 1; }
    [[ $(awk -F: '$1 == "NUMA node(s)" { gsub(/ /, "", $2); print $2 }' <<<"$out") == "$nnode" ]] \
      || { echo "$name: NUMA node(s) not $nnode"; echo "$out"; return 1; }
    vsysfs_stop
    rm -rf "$SYSROOT"; SYSROOT=
  done
}
