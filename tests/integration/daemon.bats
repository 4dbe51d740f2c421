#!/usr/bin/env bats
# The daemon's command line, start-up errors and life cycle, and the
# mount scripts (docs/mounting.md).

load helpers

setup() { WORK=$(mktemp -d); }
teardown() {
  vsysfs_stop
  for m in "$WORK"/m*; do
    [ -d "$m" ] || continue
    mountpoint -q "$m" 2>/dev/null && fusermount3 -uz "$m" 2>/dev/null
    stat "$m" 2>&1 | grep -q 'not connected' && fusermount3 -uz "$m" 2>/dev/null
  done
  rm -rf "$WORK"
}

@test "--help and --version answer and exit 0" {
  run "$VSYSFS" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"-o machine=FILE"* ]]
  [[ "$output" == *"-o clock=real|manual"* ]]
  run "$VSYSFS" -V
  [ "$status" -eq 0 ]
  [[ "$output" == *"vsysfs version"* ]]
}

@test "a missing mount point is one line of error and a non-zero exit" {
  run "$VSYSFS" -f "$WORK/nonexistent"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == "vsysfs: mount point $WORK/nonexistent: No such file or directory" ]]
}

@test "a busy mount point is one line of error and a non-zero exit" {
  vsysfs_start
  run "$VSYSFS" -f "$MNT"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"busy"* ]]
  run "$SCRIPTS/vsysfs-mount" "$MNT"
  [ "$status" -eq 2 ]
}

@test "a bad machine file names the file, line and key, and exits non-zero" {
  mkdir "$WORK/m1"
  printf '[machine]\nname = "x"\n\n[machine.extra]\nbogus = 1\n' > "$WORK/bad.toml"
  run "$VSYSFS" -f -o machine="$WORK/bad.toml" "$WORK/m1"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"bad.toml:"* ]]
  printf '[machine]\nname = \n' > "$WORK/syntax.toml"
  run "$VSYSFS" -f -o machine="$WORK/syntax.toml" "$WORK/m1"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *"syntax.toml:2"* ]]
  printf '[nosuchdevice]\nx = 1\n' > "$WORK/unknown.toml"
  run "$VSYSFS" -f -o machine="$WORK/unknown.toml" "$WORK/m1"
  [ "$status" -ne 0 ]
  [[ "$output" == *"unknown.toml:1"*"unknown section"* ]]
  run "$VSYSFS" -f -o machine="$WORK/missing.toml" "$WORK/m1"
  [ "$status" -ne 0 ]
  [[ "$output" == *"missing.toml: cannot read machine file"* ]]
  run "$VSYSFS" -f -o clock=sundial "$WORK/m1"
  [ "$status" -ne 0 ]
  [[ "$output" == *"clock=sundial"* ]]
  ! mountpoint -q "$WORK/m1" || false
}

@test "vsysfs-mount fails with the daemon's error and exit 3 on a bad machine file" {
  mkdir "$WORK/m1"
  printf '[machine]\nname = 5\n' > "$WORK/bad.toml"
  run "$SCRIPTS/vsysfs-mount" "$WORK/m1" -- -o machine="$WORK/bad.toml"
  [ "$status" -eq 3 ]
  [[ "$output" == *"bad.toml:2"*"expected a string"* ]]
  run "$SCRIPTS/vsysfs-mount" "$WORK/nope"
  [ "$status" -eq 2 ]
}

@test "make run builds and mounts the default machine in the foreground" {
  mkdir "$WORK/m1"
  env --default-signal=INT make -s -C "$VSYSFS_ROOT" run MNTDIR="$WORK/m1" BUILD="$(basename "$VSYSFS_BUILD")" > "$WORK/run.out" 2>&1 &
  for _ in $(seq 200); do mountpoint -q "$WORK/m1" && break; sleep 0.05; done
  ls -la "$WORK/m1/devices" "$WORK/m1/kernel/debug/vsysfs" >/dev/null
  grep -q "From another terminal" "$WORK/run.out"
  "$SCRIPTS/vsysfs-umount" "$WORK/m1"
  wait
  ! mountpoint -q "$WORK/m1" || false
}

@test "the default machine mounts and the tree skeleton is there" {
  vsysfs_start
  for d in devices class bus firmware kernel devices/system devices/platform kernel/debug/vsysfs; do
    [ -d "$MNT/$d" ]
  done
  ls -la "$MNT/devices" "$MNT/kernel/debug/vsysfs" >/dev/null
  [ "$(stat -c %a "$MNT/kernel/debug")" = 700 ]
  [ "$(cat "$MNT/kernel/debug/vsysfs/clock/mode")" = real ]
  grep -q " $MNT fuse.vsysfs " /proc/self/mounts
}

@test "SIGKILL of the daemon, then vsysfs-mount on the same directory succeeds" {
  vsysfs_start -o clock=manual
  kill -9 "$VSYSFS_PID"
  # The killed daemon's leader shows Z while its other threads still exit
  # and hold /dev/fuse (under ASan, unmapping the shadow takes seconds): a
  # stat sent then is aborted with ECONNABORTED when the descriptor closes.
  # The mount is dead once a stat says ENOTCONN.
  for _ in $(seq 200); do
    run stat "$MNT/kernel"
    [[ "$output" == *"not connected"* ]] && break
    sleep 0.05
  done
  [ "$status" -ne 0 ]
  [[ "$output" == *"not connected"* ]]
  VSYSFS_PID=$("$SCRIPTS/vsysfs-mount" "$MNT" -- -o clock=manual)
  [ -n "$VSYSFS_PID" ]
  [ "$(cat "$MNT/kernel/debug/vsysfs/clock/now_ns")" = 0 ]
}

@test "SIGTERM and SIGINT unmount cleanly and run the shutdown sequence" {
  mkdir "$WORK/m1"
  "$VSYSFS" -f -o events="$WORK/events.jsonl" "$WORK/m1" &
  pid=$!
  for _ in $(seq 100); do mountpoint -q "$WORK/m1" && break; sleep 0.05; done
  kill -TERM $pid
  wait $pid
  ! mountpoint -q "$WORK/m1" || false
  grep -q '"what":"shutdown"' "$WORK/events.jsonl"
  grep -q '"what":"unmount"' "$WORK/events.jsonl"
  # Background jobs of a non-interactive shell inherit SIGINT ignored, and
  # libfuse keeps an inherited SIG_IGN; give the daemon the default back.
  env --default-signal=INT "$VSYSFS" -f "$WORK/m1" &
  pid=$!
  for _ in $(seq 100); do mountpoint -q "$WORK/m1" && break; sleep 0.05; done
  kill -INT $pid
  wait $pid
  ! mountpoint -q "$WORK/m1" || false
}

@test "vsysfs-umount refuses a non-vsysfs directory and unmounts lazily when busy" {
  run "$SCRIPTS/vsysfs-umount" "$WORK"
  [ "$status" -eq 2 ]
  vsysfs_start
  exec 5< "$MNT/kernel/debug/vsysfs/events"
  run "$SCRIPTS/vsysfs-umount" --lazy "$MNT"
  [ "$status" -eq 0 ]
  ! mountpoint -q "$MNT" || false
  # Detached: the daemon serves the open file until it is closed.
  pid_running "$VSYSFS_PID"
  exec 5<&-
  for _ in $(seq 100); do pid_running "$VSYSFS_PID" || break; sleep 0.05; done
  ! pid_running "$VSYSFS_PID" || false
}

@test "-o events=FILE appends the event log as JSON lines" {
  vsysfs_start -o clock=manual,events="$WORK/ev.jsonl"
  echo 250 > "$(ctl clock/advance_ms)"
  # The sink is written by its own thread (docs/trust.md): wait for it.
  for _ in $(seq 100); do grep -q '"what":"advance"' "$WORK/ev.jsonl" && break; sleep 0.05; done
  grep '"what":"advance"' "$WORK/ev.jsonl" | python3 -c 'import json,sys; e=json.loads(sys.stdin.readline()); assert e["data"]["ms"]==250 and e["uid"]==0 and e["comm"], e'
  # The events file in the mount shows the same events.
  grep -q '"what":"advance"' "$(ctl events)"
  echo 1 > "$(ctl events_clear)"
  ! grep -q '"what":"advance"' "$(ctl events)" || false
}

@test "the mount(8) helper mounts as fuse.vsysfs from an installed tree" {
  make -s -C "$VSYSFS_ROOT" install DESTDIR="$WORK/root" PREFIX=/usr BUILD="$(basename "$VSYSFS_BUILD")" >/dev/null
  mkdir "$WORK/m1"
  "$WORK/root/usr/sbin/mount.fuse.vsysfs" vsysfs "$WORK/m1" -o rw,clock=manual
  for _ in $(seq 100); do mountpoint -q "$WORK/m1" && break; sleep 0.05; done
  grep -q " $WORK/m1 fuse.vsysfs " /proc/self/mounts
  [ "$(cat "$WORK/m1/kernel/debug/vsysfs/clock/mode")" = manual ]
  fusermount3 -u "$WORK/m1"
}

@test "make check-layers passes, and fails on a planted violation" {
  run "$VSYSFS_ROOT/tests/check-layers" "$VSYSFS_ROOT"
  [ "$status" -eq 0 ]
  cp -r "$VSYSFS_ROOT/core" "$VSYSFS_ROOT/devices" "$VSYSFS_ROOT/fs" "$WORK/"
  echo '#include <fuse_lowlevel.h>' >> "$WORK/core/result.cpp"
  run "$VSYSFS_ROOT/tests/check-layers" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"core/result.cpp"*"libfuse outside fs/"* ]]
  cp "$VSYSFS_ROOT/core/result.cpp" "$WORK/core/result.cpp"
  echo '#include "fs/server.hpp"' >> "$WORK/devices/machine/machine.cpp"
  run "$VSYSFS_ROOT/tests/check-layers" "$WORK"
  [ "$status" -ne 0 ]
  [[ "$output" == *"devices/ includes fs/"* ]]
}
