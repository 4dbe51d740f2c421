#!/usr/bin/env bats
# A user's own machine (docs/permissions.md, "Mounting as a user"): a user
# mounts through the setuid fusermount3, owns what the machine gives to
# root (and is root inside `unshare -r`), drives the control plane, may
# make the stores that need a capability, and loses them by dropping the
# capability inside a user namespace it created. Tools that insist on /sys
# read the mount through `unshare -rm` and a bind mount.
#
# Everything runs as a user this file creates and removes. fusermount3
# opens /dev/fuse with the user's own rights (util/fusermount.c in libfuse
# drops privileges first), so the user needs /dev/fuse readable and
# writable: mode 0666, as udev sets it on a desktop or server. A container
# or VM may have it 0600, so the tests run in a private mount namespace
# (a holder process keeps it) whose /dev/fuse is a fresh 0666 node for the
# same device, bound over it; the host's node is never touched. Skipped,
# with the reason, where the machine cannot: not root, no setuid
# fusermount3, no user namespaces for a user.

load helpers

XEN_TARGET=devices/system/xen_memory/xen_memory0/target_kb

setup_file() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (to create the test user)"
  fm=/usr/bin/fusermount3
  if [ ! -u "$fm" ] || [ "$(stat -c %u "$fm")" != 0 ]; then skip "$fm is not setuid root"; fi
  command -v capsh >/dev/null || skip "no capsh (libcap2-bin)"
  command -v numactl >/dev/null || skip "no numactl"
  [ -c /dev/fuse ] || skip "no /dev/fuse"
  TUSER=vsysfs-u$$
  useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$TUSER" || skip "useradd failed"
  TUID=$(id -u "$TUSER")
  TGID=$(id -g "$TUSER")
  export TUSER TUID TGID
  if ! setpriv --reuid="$TUID" --regid="$TGID" --clear-groups unshare -r true 2>/dev/null; then
    userdel "$TUSER"
    skip "user namespaces are not available to users here"
  fi
  # What the user runs: a copy it can reach whatever the checkout's modes.
  UDIR=$(mktemp -d /tmp/vsysfs-unpriv.XXXXXX)
  chmod 0755 "$UDIR"
  install -m 0755 "$VSYSFS" "$UDIR/vsysfs"
  # Stores report the errno name (dash's echo says "I/O error" for any).
  install -m 0755 "$VSYSFS_BUILD/tests/helpers/sysfs-io" "$UDIR/sysfs-io"
  mkdir "$UDIR/dev"
  read -r major minor < <(stat -c '%t %T' /dev/fuse)
  # The holder: a private mount namespace with a 0666 /dev/fuse, and an
  # /etc/fuse.conf that lets users mount with allow_other.
  # shellcheck disable=SC2016 # the inner shell expands its own arguments
  unshare -m --propagation private sh -c '
    mount -t tmpfs -o mode=0755 vsysfs-dev "$1" &&
    mknod -m 0666 "$1/fuse" c "$2" "$3" &&
    mount --bind "$1/fuse" /dev/fuse &&
    echo user_allow_other > "$1/fuse.conf" &&
    mount --bind "$1/fuse.conf" /etc/fuse.conf && exec sleep 3600' sh "$UDIR/dev" \
    "$((16#$major))" "$((16#$minor))" >/dev/null 2>&1 3>&- &
  HOLDER=$!
  export UDIR HOLDER
  for _ in $(seq 100); do
    [ "$(nsenter -t "$HOLDER" -m stat -c %a /dev/fuse 2>/dev/null)" = 666 ] && return 0
    sleep 0.05
  done
  false
}

teardown_file() {
  [ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null
  [ -n "${UDIR:-}" ] && rm -rf "$UDIR"
  [ -n "${TUSER:-}" ] && userdel "$TUSER" 2>/dev/null
  true
}

# In the holder's mount namespace, as root / as the test user.
in_ns() { nsenter -t "$HOLDER" -m -- "$@"; }
as_user() {
  in_ns setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$UDIR" LC_ALL=C "$@"
}

# user_mount [OPTIONS...]: the user mounts the default machine (manual
# clock) at $MNT in the foreground; $DPID is the daemon.
user_mount() {
  MNT=$(mktemp -d /tmp/vsysfs-unpriv-mnt.XXXXXX)
  chown "$TUID:$TGID" "$MNT"
  as_user "$UDIR/vsysfs" -f -o clock=manual "$@" "$MNT" >/dev/null 2>"$UDIR/daemon.err" 3>&- &
  DPID=$!
  # Up to 30 s: a TSan build at -O0 starts slowly.
  for _ in $(seq 600); do
    as_user test -e "$MNT/$XEN_TARGET" && return 0
    pid_running "$DPID" || break
    sleep 0.05
  done
  cat "$UDIR/daemon.err" >&2
  return 1
}

teardown() {
  if [ -n "${DPID:-}" ]; then
    as_user fusermount3 -u "$MNT" 2>/dev/null || in_ns umount -l "$MNT" 2>/dev/null
    for _ in $(seq 100); do pid_running "$DPID" || break; sleep 0.05; done
    kill -9 "$DPID" 2>/dev/null || true
  fi
  [ -n "${MNT:-}" ] && rmdir "$MNT" 2>/dev/null
  in_ns chmod 0666 /dev/fuse
  unset DPID MNT
}

@test "a user mounts through fusermount3: the machine's root files are the user's, root's inside unshare -r" {
  user_mount
  # fusermount3 made the mount for the user (user_id= is the mounter).
  in_ns grep -q " $MNT .* fuse.vsysfs vsysfs .*user_id=$TUID," /proc/self/mountinfo
  run as_user stat -c '%u:%g %a' "$MNT/$XEN_TARGET" "$MNT/kernel/debug/vsysfs" "$MNT/devices"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "$TUID:$TGID 644" ]
  [ "${lines[1]}" = "$TUID:$TGID 755" ]
  [ "${lines[2]}" = "$TUID:$TGID 755" ]
  # The user is mapped to 0 there: the kernel shows the files as root's.
  run as_user unshare -r stat -c '%u:%g' "$MNT/$XEN_TARGET" "$MNT/kernel/debug"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "0:0" ]
  [ "${lines[1]}" = "0:0" ]
}

@test "the user stores to a 0644 attribute that needs CAP_SYS_ADMIN, advances the clock and reads the events" {
  user_mount
  as_user sh -c "echo 3145728 > '$MNT/$XEN_TARGET'"
  [ "$(as_user cat "$MNT/$XEN_TARGET")" = 3145728 ]
  clock=$MNT/kernel/debug/vsysfs/clock
  before=$(as_user cat "$clock/now_ns")
  as_user sh -c "echo 2500 > '$clock/advance_ms'"
  [ "$(as_user cat "$clock/now_ns")" -eq $((before + 2500000000)) ]
  # The store is in the event log, made by the user.
  run as_user grep '"device":"xen_balloon","what":"target"' "$MNT/kernel/debug/vsysfs/events"
  [ "$status" -eq 0 ]
  [[ "$output" == *"\"uid\":$TUID,"* ]]
  [[ "$output" == *3145728* ]]
}

@test "dropping CAP_SYS_ADMIN inside unshare -r: the store is EPERM and changes nothing" {
  user_mount
  before=$(as_user cat "$MNT/$XEN_TARGET")
  # Root of the user's own namespace, with the capability: allowed.
  as_user unshare -r sh -c "echo 2621440 > '$MNT/$XEN_TARGET'"
  [ "$(as_user cat "$MNT/$XEN_TARGET")" = 2621440 ]
  [ "$before" != 2621440 ]
  # The same root without it: EPERM, as capable(CAP_SYS_ADMIN) on the kernel.
  run as_user unshare -r capsh --drop=cap_sys_admin -- -c "'$UDIR/sysfs-io' write '$MNT/$XEN_TARGET' 1048576"
  [ "$output" = EPERM ]
  [ "$(as_user cat "$MNT/$XEN_TARGET")" = 2621440 ]
  # A capability the store does not need changes nothing.
  as_user unshare -r capsh --drop=cap_net_admin -- -c "echo 2097152 > '$MNT/$XEN_TARGET'"
  [ "$(as_user cat "$MNT/$XEN_TARGET")" = 2097152 ]
}

@test "with allow_other, other users are unprivileged: EACCES by mode, EPERM by capability" {
  user_mount -o allow_other
  as_nobody() { in_ns setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  # World-readable attributes are readable; the control plane is not.
  local online; online=$(as_user cat "$MNT/devices/system/node/online")
  [ -n "$online" ]
  [ "$(as_nobody cat "$MNT/devices/system/node/online")" = "$online" ]
  run as_nobody ls "$MNT/kernel/debug/vsysfs"
  [ "$status" -ne 0 ]
  [[ "$output" == *"Permission denied"* ]]
  [ "$(as_nobody "$UDIR/sysfs-io" write "$MNT/$XEN_TARGET" 1048576)" = EACCES ]
  # The machine's root opens the file to everyone: the capability still
  # guards it, for another user and for that user's own namespace root.
  as_user chmod 0666 "$MNT/$XEN_TARGET"
  before=$(as_user cat "$MNT/$XEN_TARGET")
  [ "$(as_nobody "$UDIR/sysfs-io" write "$MNT/$XEN_TARGET" 1048576)" = EPERM ]
  [ "$(as_nobody unshare -r "$UDIR/sysfs-io" write "$MNT/$XEN_TARGET" 1048576)" = EPERM ]
  [ "$(as_user cat "$MNT/$XEN_TARGET")" = "$before" ]
  # The owner, for contrast: allowed.
  [ "$(as_user "$UDIR/sysfs-io" write "$MNT/$XEN_TARGET" 1048576)" = 7 ]
  [ "$(as_user cat "$MNT/$XEN_TARGET")" = 1048576 ]
}

@test "numactl --hardware and lscpu read the mount as /sys through unshare -rm" {
  user_mount
  nodes=$(as_user cat "$MNT/devices/system/node/online")
  run as_user unshare -rm sh -c "mount --bind '$MNT' /sys && numactl --hardware"
  [ "$status" -eq 0 ]
  # numactl counts the nodes of node/online (0-1 -> 2).
  want=$(( ${nodes##*-} + 1 ))
  [ "${lines[0]}" = "available: $want nodes ($nodes)" ]
  # Its node 0 CPUs are the machine's node0/cpulist, expanded.
  cpus=$(as_user cat "$MNT/devices/system/node/node0/cpulist")
  [[ "${lines[1]}" == "node 0 cpus: "* ]]
  [ -n "$cpus" ]
  run as_user unshare -rm sh -c "mount --bind '$MNT' /sys && lscpu"
  [ "$status" -eq 0 ]
  [[ "$output" == *"NUMA node(s):"*"$want"* ]]
}

@test "the user unmounts with fusermount3 -u and the daemon exits 0" {
  user_mount
  as_user fusermount3 -u "$MNT"
  for _ in $(seq 200); do pid_running "$DPID" || break; sleep 0.05; done
  if pid_running "$DPID"; then false; fi
  wait "$DPID"
  if in_ns mountpoint -q "$MNT"; then false; fi
  unset DPID
}

@test "when neither a direct mount nor fusermount3 can work, the message says why" {
  MNT=$(mktemp -d /tmp/vsysfs-unpriv-mnt.XXXXXX)
  chown "$TUID:$TGID" "$MNT"
  # The namespace's own node (never the host's): closed to the user.
  in_ns chmod 0600 /dev/fuse
  run as_user "$UDIR/vsysfs" -o clock=manual "$MNT"
  [ "$status" -eq 1 ]
  [[ "$output" == *"vsysfs: cannot mount at $MNT: /dev/fuse: Permission denied (mounting as a user needs /dev/fuse readable and writable by you"* ]]
  [[ "$output" != *modprobe* ]]
  [[ "$output" != *"module loaded"* ]]
  if in_ns mountpoint -q "$MNT"; then false; fi
}
