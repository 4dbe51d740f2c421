#!/usr/bin/env bats
# Who is privileged (docs/trust.md): a caller the daemon cannot identify,
# and a caller whose capabilities belong to a user namespace below the
# daemon's, have none of the machine's capabilities, as the kernel's
# capable() checks against the initial user namespace. The store used is
# class/net/eth0/mtu (dev_set_mtu: CAP_NET_ADMIN, net/core/net-sysfs.c
# netdev_store).

load helpers

IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
MTU=class/net/eth0/mtu

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

teardown() {
  if [ -n "${NS_PID:-}" ]; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
    for _ in $(seq 100); do pid_running "$NS_PID" || break; sleep 0.05; done
    kill -9 "$NS_PID" 2>/dev/null || true
    rmdir "$MNT" 2>/dev/null || true
    unset NS_PID MNT
  fi
  vsysfs_stop
}

@test "a caller outside the daemon's PID namespace (FUSE pid 0) has no capabilities" {
  command -v unshare >/dev/null || skip "no unshare"
  MNT=$(mktemp -d /tmp/vsysfs-pidns.XXXXXX)
  # The daemon in its own PID namespace, as in a container; the mount is in
  # the shared mount namespace, so this shell reaches it.
  unshare -p -f --kill-child -- "$VSYSFS" -f "$MNT" &
  NS_PID=$!
  for _ in $(seq 200); do mountpoint -q "$MNT" && [ -e "$MNT/$MTU" ] && break; sleep 0.05; done
  [ -e "$MNT/$MTU" ]
  before=$(cat "$MNT/$MTU")
  # Even a root shell with every capability: the daemon cannot tell who it
  # is (and capget(0) would describe the daemon itself).
  run "$IO" write "$MNT/$MTU" 1234
  [ "$output" = EPERM ]
  run capsh --drop=cap_net_admin,cap_sys_admin -- -c "$IO write $MNT/$MTU 1400"
  [ "$output" = EPERM ]
  [ "$(cat "$MNT/$MTU")" = "$before" ]
}

@test "a caller in a child user namespace (unshare -Ur) has none of the machine's capabilities" {
  MNT=$(mktemp -d /tmp/vsysfs-userns.XXXXXX)
  chmod 0755 "$MNT"
  VSYSFS_PID=$("$SCRIPTS/vsysfs-mount" "$MNT" -- -o allow_other) || return 1
  export MNT VSYSFS_PID
  # Delegate the file to nobody (chown, as documented): nobody may open it
  # for writing, and the capability check alone decides the store.
  chown 65534 "$MNT/$MTU"
  as_nobody unshare -Ur true 2>/dev/null || skip "unprivileged user namespaces are off on this kernel"
  before=$(cat "$MNT/$MTU")
  # Inside its namespace nobody is root with every capability...
  run as_nobody unshare -Ur sh -c 'grep CapEff /proc/self/status'
  [ "$output" != "CapEff:	0000000000000000" ]
  # ...which are capabilities over that namespace, not over this machine.
  run as_nobody unshare -Ur "$IO" write "$MNT/$MTU" 1234
  [ "$output" = EPERM ]
  run as_nobody "$IO" write "$MNT/$MTU" 1234
  [ "$output" = EPERM ]
  [ "$(cat "$MNT/$MTU")" = "$before" ]
  # A caller in the daemon's own namespace with CAP_NET_ADMIN still may.
  run "$IO" write "$MNT/$MTU" 1234
  [ "$output" = 4 ]
  [ "$(cat "$MNT/$MTU")" = 1234 ]
}
