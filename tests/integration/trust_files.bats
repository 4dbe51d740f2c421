#!/usr/bin/env bats
# The daemon's files are a trust boundary (docs/trust-files.md): a root
# daemon refuses, with one line and nothing mounted, a state, events or
# machine file that someone else could have planted or that could block or
# flood start-up; machine-file names are checked; one daemon per state
# file; and vsysfs-umount waits for the daemon that serves the mount.

load helpers

setup() {
  # The reproducers are for a root daemon: files owned by another uid
  # (chown 65534), unshare -m.
  [ "$(id -u)" -eq 0 ] || skip "needs root"
  W=$(mktemp -d /tmp/trustfiles-XXXXXX)
  M=$W/mnt
  mkdir "$M"
  S=$W/state
  HOLDER=""
  BG_PIDS=""
}
teardown() {
  [ -n "${W:-}" ] || return 0
  [ -n "$HOLDER" ] && kill "$HOLDER" 2>/dev/null
  vsysfs_stop
  for m in "$M" "$W"/m* "$W"/*/mnt; do
    [ -d "$m" ] || continue
    if mountpoint -q "$m" 2>/dev/null || stat "$m" 2>&1 | grep -q 'not connected'; then
      fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
    fi
  done
  for p in $BG_PIDS; do
    for _ in $(seq 100); do pid_running "$p" || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$W"
}

# refused PATTERN OPTION...: the daemon, in the foreground, exits 1 at once
# with exactly one line matching the glob PATTERN, and mounts nothing. (The
# timeout only ends a daemon that wrongly mounted or blocked.)
refused() {
  local want=$1; shift
  run timeout 10 "$VSYSFS" -f "$@" "$M"
  echo "status $status: $output"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  # shellcheck disable=SC2053 # want is a glob pattern: the message names a temp path
  [[ "$output" == $want ]]
  ! mountpoint -q "$M"
}

# A state file with one journaled chmod of kernel/debug to 0777, made the
# way an attacker would: by a daemon of their own.
journal_with_chmod() {
  local d; d=$(mktemp -d "$W/gen.XXXXXX")
  vsysfs_start -o state="$d/state"
  chmod 0777 "$MNT/kernel/debug"
  vsysfs_stop
  cp "$d/state" "$1"
  rm -rf "$d"
}

header() { printf 'VSYSFS-STATE\x001\n\n' > "$1"; }

@test "a state file owned by another user is refused, not replayed with every capability" {
  journal_with_chmod "$S"
  chown 65534:65534 "$S"
  refused "vsysfs: state file $S: owned by uid 65534, not by the daemon's uid 0" -o state="$S"
}

@test "a state file writable by group or others is refused" {
  header "$S"
  chmod 0620 "$S"
  refused "vsysfs: state file $S: mode 0620 gives group or others access*" -o state="$S"
  chmod 0602 "$S"
  refused "vsysfs: state file $S: mode 0602 gives group or others access*" -o state="$S"
}

@test "a state file in a directory others may write without the sticky bit is refused" {
  mkdir "$W/shared"
  chmod 0777 "$W/shared"
  refused "vsysfs: state file $W/shared/state: directory $W/shared is writable by others without the sticky bit (mode 0777)" \
    -o state="$W/shared/state"
  # further up the chain too, and a directory another user owns
  mkdir -p "$W/open/sub"
  chmod 0777 "$W/open"
  refused "vsysfs: state file $W/open/sub/state: directory $W/open is writable by others*" \
    -o state="$W/open/sub/state"
  mkdir "$W/theirs"
  chown 65534 "$W/theirs"
  refused "vsysfs: state file $W/theirs/state: directory $W/theirs is owned by uid 65534*" \
    -o state="$W/theirs/state"
  # a sticky world-writable directory (like /tmp) is fine
  mkdir "$W/sticky"
  chmod 1777 "$W/sticky"
  vsysfs_start -o state="$W/sticky/state"
  [ -f "$W/sticky/state" ]
}

@test "a symbolic link planted at FILE.tmp is not followed: its target stays intact" {
  echo precious > "$W/victim"
  ln -s "$W/victim" "$S.tmp"
  vsysfs_start -o state="$S"
  [ "$(cat "$W/victim")" = "precious" ]
  [ -f "$S" ] && [ ! -L "$S" ]
  [ ! -e "$S.tmp" ] && [ ! -L "$S.tmp" ]
}

@test "a symbolic link at the state file is refused; its target is not replaced" {
  header "$W/real"
  ln -s "$W/real" "$S"
  refused "vsysfs: state file $S: is a symbolic link (refused)" -o state="$S"
  [ -L "$S" ]
  [ "$(stat -c %i "$W/real")" = "$(stat -c %i "$(readlink "$S")")" ]
}

@test "a state file that is a FIFO or a device is refused at once" {
  mkfifo "$S"
  refused "vsysfs: state file $S: not a regular file (a FIFO)" -o state="$S"
  rm "$S"
  mknod "$S" c 1 3
  refused "vsysfs: state file $S: not a regular file (a character device)" -o state="$S"
  [ -c "$S" ]
}

@test "the events file is created 0600, never through a symbolic link, and must be private" {
  vsysfs_start -o events="$W/events"
  [ "$(stat -c %a "$W/events")" = "600" ]
  vsysfs_stop
  echo precious > "$W/victim"
  ln -s "$W/victim" "$W/link"
  refused "vsysfs: events file $W/link: is a symbolic link (refused)" -o events="$W/link"
  [ "$(cat "$W/victim")" = "precious" ]
  chmod 0644 "$W/events"
  refused "vsysfs: events file $W/events: mode 0644 gives group or others access*" -o events="$W/events"
  chmod 0600 "$W/events"
  chown 65534 "$W/events"
  refused "vsysfs: events file $W/events: owned by uid 65534*" -o events="$W/events"
}

@test "an events FIFO is refused without blocking start-up" {
  mkfifo "$W/fifo"
  refused "vsysfs: events file $W/fifo: not a regular file (a FIFO)" -o events="$W/fifo"
  # with a reader waiting, the open succeeds and fstat refuses it
  timeout 20 cat "$W/fifo" >/dev/null 3>&- &
  BG_PIDS=$!
  refused "vsysfs: events file $W/fifo: not a regular file (a FIFO)" -o events="$W/fifo"
}

@test "a machine file that is a FIFO, a device or over 32 MiB is refused at once" {
  mkfifo "$W/fifo"
  refused "vsysfs: machine file: $W/fifo: not a regular file (a FIFO)" -o machine="$W/fifo"
  refused "vsysfs: machine file: /dev/zero: not a regular file (a character device)" -o machine=/dev/zero
  { echo '[machine]'; echo 'name = "big"'; head -c 33554432 /dev/zero | tr '\0' '#'; echo; } > "$W/big.toml"
  refused "vsysfs: machine file: $W/big.toml: $(stat -c %s "$W/big.toml") bytes, over the limit of 33554432 bytes" \
    -o machine="$W/big.toml"
  # a symbolic link to a good machine file is followed (the file is only read)
  ln -s "$VSYSFS_ROOT/machines/net-lab.toml" "$W/m.toml"
  vsysfs_start -o machine="$W/m.toml"
  [ -d "$MNT/class/net/eth0" ]
}

@test "a second daemon on the same state file is refused and names the holder's pid" {
  vsysfs_start -o state="$S"
  mkdir "$W/m2"
  run timeout 10 "$VSYSFS" -f -o state="$S" "$W/m2"
  echo "$output"
  [ "$status" -eq 1 ]
  [ "${#lines[@]}" -eq 1 ]
  [ "$output" = "vsysfs: state file $S is in use by pid $VSYSFS_PID (lock $S.lock)" ]
  ! mountpoint -q "$W/m2" || false
  # the lock outlives compaction's rename: a third start is refused as well
  run timeout 10 "$VSYSFS" -f -o state="$S" "$W/m2"
  [ "$status" -eq 1 ]
  [[ "$output" == *"in use by pid $VSYSFS_PID"* ]]
  # and it is released with the daemon
  vsysfs_stop
  vsysfs_start -o state="$S"
}

@test "a daemon that forked into the background is named by its own pid" {
  mkdir "$W/m1" "$W/m2"
  "$VSYSFS" -o state="$S" "$W/m1" 3>&-
  local pid; pid=$(cat "$W/m1/kernel/debug/vsysfs/pid")
  BG_PIDS=$pid
  run timeout 10 "$VSYSFS" -f -o state="$S" "$W/m2"
  [ "$status" -eq 1 ]
  [ "$output" = "vsysfs: state file $S is in use by pid $pid (lock $S.lock)" ]
  run "$SCRIPTS/vsysfs-umount" --timeout 5 "$W/m1"
  [ "$status" -eq 0 ]
  ! pid_running "$pid" || false
}

@test "machine-file names that would become bad paths or lines are refused with file:line:key" {
  printf '[net]\n[[net.interface]]\nname = "e\\n\\u0001"\nkind = "loopback"\n' > "$W/nl.toml"
  refused "vsysfs: machine file: $W/nl.toml:3:*net.interface\[0\].name: not a valid interface name: byte 0x0a*" \
    -o machine="$W/nl.toml"
  for bad in 'a:b' 'a b' '.' '..' 'a/b' '' '0123456789abcdef' 'eth%d' 'a\u00a0'; do
    printf '[net]\n[[net.interface]]\nname = "%s"\nkind = "loopback"\n' "$bad" > "$W/n.toml"
    refused "vsysfs: machine file: $W/n.toml:3:*net.interface\[0\].name: not a valid interface name*" \
      -o machine="$W/n.toml"
  done
  printf '[net]\n[[net.interface]]\nname = "e\\u0000x"\nkind = "loopback"\n' > "$W/nul.toml"
  refused "vsysfs: machine file: $W/nul.toml:3:*net.interface\[0\].name: a NUL byte in a string" \
    -o machine="$W/nul.toml"
  printf '[net]\n[[net.interface]]\nname = "eth0"\npci = "0000:00:03.0"\ndriver = "a/b"\n' > "$W/drv.toml"
  refused "vsysfs: machine file: $W/drv.toml:5:*net.interface\[0\].driver: not a valid name*" \
    -o machine="$W/drv.toml"
  printf '[net]\n[[net.interface]]\nname = "eth0"\npci = "0000:00:/x.0"\n' > "$W/pci.toml"
  refused "vsysfs: machine file: $W/pci.toml:4:*net.interface\[0\].pci: expected a function*" \
    -o machine="$W/pci.toml"
  printf '[xen]\n[[xen.domain]]\nname = "a b"\ndomid = 2\nmemory = "1G"\n' > "$W/xen.toml"
  refused "vsysfs: machine file: $W/xen.toml:3:*xen.domain\[0\].name: not a valid name: byte 0x20*" \
    -o machine="$W/xen.toml"
  printf '[xen]\nname = "g\\nx"\n' > "$W/guest.toml"
  refused "vsysfs: machine file: $W/guest.toml:2:*xen.name: not a valid name*" -o machine="$W/guest.toml"
  printf '[machine]\nname = "m\\ny"\n' > "$W/mach.toml"
  refused "vsysfs: machine file: $W/mach.toml:2:*machine.name: control byte 0x0a*" -o machine="$W/mach.toml"
}

@test "an interface name with a control byte but no space, '/' or ':' mounts, as in the kernel" {
  # net/core/dev.c dev_valid_name refuses only '/', ':' and isspace().
  printf '[net]\n[[net.interface]]\nname = "e\\u0001"\nkind = "loopback"\n' > "$W/ctl.toml"
  vsysfs_start -o machine="$W/ctl.toml"
  [ -d "$MNT/class/net/e"$'\x01' ]
}

@test "vsysfs-umount DIR waits for the daemon of DIR, not one with the same argument elsewhere" {
  mkdir -p "$W/a/mnt" "$W/b/mnt"
  # B's daemon first: the lower pid, found first by a process-name search.
  (cd "$W/b" && exec "$VSYSFS" -f mnt) </dev/null >/dev/null 2>&1 3>&- &
  local pid_b=$!
  BG_PIDS="$pid_b"
  for _ in $(seq 200); do [ -d "$W/b/mnt/kernel" ] && break; sleep 0.05; done
  (cd "$W/a" && exec "$VSYSFS" -f mnt) </dev/null >/dev/null 2>&1 3>&- &
  local pid_a=$!
  BG_PIDS="$BG_PIDS $pid_a"
  for _ in $(seq 200); do [ -d "$W/a/mnt/kernel" ] && break; sleep 0.05; done
  cd "$W/a"
  run "$SCRIPTS/vsysfs-umount" --timeout 3 mnt
  echo "$output"
  [ "$status" -eq 0 ]
  ! pid_running "$pid_a" || false
  pid_running "$pid_b"
  mountpoint -q "$W/b/mnt"
}

# held_mount_umount: mount with $VSYSFS, let an "unshare -m" process keep a
# copy of the mount, and check vsysfs-umount waits for this daemon, names
# the holder, and that the daemon exits once the holder is gone.
held_mount_umount() {
  vsysfs_start
  unshare -m sleep 600 </dev/null >/dev/null 2>&1 3>&- &
  HOLDER=$!
  for _ in $(seq 200); do
    [ "$(readlink /proc/$HOLDER/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] &&
      grep -q " $MNT " /proc/$HOLDER/mountinfo && break
    sleep 0.05
  done
  run "$SCRIPTS/vsysfs-umount" --timeout 2 "$MNT"
  echo "$output"
  [ "$status" -eq 4 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "vsysfs-umount: daemon $VSYSFS_PID did not exit: the mount is still held in another mount namespace by: $HOLDER (sleep)" ]]
  # the last copy gone, the daemon exits
  kill "$HOLDER"
  HOLDER=""
  for _ in $(seq 200); do pid_running "$VSYSFS_PID" || break; sleep 0.05; done
  ! pid_running "$VSYSFS_PID"
}

@test "vsysfs-umount names the processes whose mount namespace still holds the mount" {
  held_mount_umount
  run "$SCRIPTS/vsysfs-umount" --help
  [[ "$output" == *"unshare -m"* ]]
}

@test "vsysfs-umount waits for a vsysfs-test daemon too" {
  VSYSFS=$VSYSFS_BUILD/vsysfs-test
  held_mount_umount
}
