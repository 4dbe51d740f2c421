# Shared bats helpers: a fresh temporary mount per test file (or per test),
# torn down in teardown whatever happens; only our own daemon is stopped,
# by its PID.
#
#   vsysfs_start [VSYSFS-OPTIONS...]   mounts at $MNT, sets $VSYSFS_PID
#                                      (vsysfs_mount of lib/vsysfs-bats.bash)
#   vsysfs_stop                        unmounts $MNT, waits for the PID
#   ctl PATH                           $MNT/kernel/debug/vsysfs/PATH

VSYSFS_ROOT=${VSYSFS_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
VSYSFS=${VSYSFS:-$VSYSFS_ROOT/build/vsysfs}
VSYSFS_BUILD=${VSYSFS_BUILD:-$VSYSFS_ROOT/build}
SCRIPTS=$VSYSFS_ROOT/mount-scripts
export VSYSFS

# The mount itself is the user library's (lib/vsysfs-bats.bash,
# docs/bats-library.md): every suite exercises it.
source "$VSYSFS_ROOT/lib/vsysfs-bats.bash"
export VSYSFS_SCRIPTS=$SCRIPTS

vsysfs_start() {
  vsysfs_mount "$@" || return 1
  MNT=$VSYSFS_MNT
  export MNT
}

# pid_running PID: the process exists and has not exited. Daemons started by
# vsysfs-mount are re-parented to PID 1, and a zombie waits there until PID 1
# reaps it (seconds under some container inits): a zombie counts as gone.
pid_running() {
  local st; st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }; [ "${st%% *}" != Z ]
}

# Also for a mount a suite made itself with vsysfs-mount (MNT and
# VSYSFS_PID set by hand): it is MNT and VSYSFS_PID that go.
vsysfs_stop() {
  [ -n "${MNT:-}" ] || return 0
  VSYSFS_MNT=$MNT
  vsysfs_unmount
  unset MNT VSYSFS_PID
}

ctl() { echo "$MNT/kernel/debug/vsysfs/$1"; }

# Events (JSON lines) whose "what" matches $1 (and device $2 if given).
events_matching() {
  if [ -n "${2:-}" ]; then
    grep "\"device\":\"$2\"" "$(ctl events)" | grep "\"what\":\"$1\""
  else
    grep "\"what\":\"$1\"" "$(ctl events)"
  fi
}

# errno name of a failed shell redirection write: writes $2 to file $1
# with a tiny helper that reports the errno name (or OK).
errno_of_write() { "$VSYSFS_BUILD/tests/helpers/sysfs-io" write "$1" "$2"; }

# The Xen suites' paths on the mount in MNT: DEV (the balloon's
# xen_memory0), NODE (the NUMA nodes), XEN (the hypervisor's knobs) and
# SET (the balloon client, xen-balloon-set); the suites use them.
# shellcheck disable=SC2034
xen_paths() {
  DEV=$MNT/devices/system/xen_memory/xen_memory0
  NODE=$MNT/devices/system/node
  XEN=$(ctl xen)
  SET="$SCRIPTS/xen-balloon-set --sysfs $MNT"
}

# Field $2 (MemTotal, MemFree, ...) of node $1's meminfo, in kB; nodes_kb:
# field $1 summed over every node.
node_kb() { awk -v f="$2:" '$3 == f { print $4 }' "$NODE/node$1/meminfo"; }
nodes_kb() { cat "$NODE"/node*/meminfo | awk -v f="$1:" '$3 == f { s += $4 } END { print s }'; }

# CMD run in a private mount namespace with the mount's firmware/ and
# devices/platform/ bound over /sys's: unmodified libsmbios tools and
# dmidecode read only /sys (the Dell suites; needs root for unshare -m).
in_dell_ns() {
  unshare -m bash -c "mount --bind '$MNT/firmware' /sys/firmware &&
    mount --bind '$MNT/devices/platform' /sys/devices/platform && $*"
}

# Every node under the mount: "path mode uid gid: content" (content for
# readable regular files, else the errno), without what is not machine
# state or not a rendered text value: the event log, the snapshot files
# themselves, and the binary PCI files.
dump_tree() {  # [GLOB...]: more paths whose content is left out
  python3 - "$MNT" "$@" <<'PY'
import errno, fnmatch, os, sys
root = sys.argv[1]
skip = ["kernel/debug/vsysfs/events", "kernel/debug/vsysfs/events_pipe",
        "kernel/debug/vsysfs/events_dropped", "kernel/debug/vsysfs/machine/snapshot",
        "kernel/debug/vsysfs/machine/diff", "*/config", "*/resource0"] + sys.argv[2:]
for d, dirs, files in os.walk(root):
    dirs.sort()
    for name in sorted(dirs + files):
        p = os.path.join(d, name)
        rel = os.path.relpath(p, root)
        st = os.lstat(p)
        line = f"{rel} {st.st_mode:o} {st.st_uid} {st.st_gid}"
        if name in files and not os.path.islink(p) and not any(fnmatch.fnmatchcase(rel, s) for s in skip):
            try:
                with open(p, "rb") as f:
                    line += ": " + repr(f.read())
            except OSError as e:
                line += ": " + errno.errorcode.get(e.errno, str(e.errno))
        print(line)
PY
}
