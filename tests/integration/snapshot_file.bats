#!/usr/bin/env bats
# Snapshot files (docs/snapshot.md "Snapshot files", "-o snapshot";
# docs/state.md "Compaction") on a real mount of a machine that restores
# (testdev.toml): kernel/debug/vsysfs/machine/{save,load} with shell tools
# and vsysfs-ctl, the refusal of damaged files and of another machine's,
# a path opened with the writer's permissions, -o snapshot=FILE alone and
# with -o state, and a state file that stays bounded under many stores.

load helpers
bats_require_minimum_version 1.5.0

IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
CTL=$SCRIPTS/vsysfs-ctl
D=devices/virtual/vsysfs_test/testdev0
TESTDEV=$BATS_TEST_DIRNAME/testdev.toml

setup() {
  W=$(mktemp -d /tmp/vsysfs-snapfile.XXXXXX)
  export VSYSFS=$VSYSFS_BUILD/vsysfs-test
}
teardown() {
  vsysfs_stop
  rm -rf "$W"
}
K() { echo "$MNT/kernel/debug/vsysfs/$1"; }
start() { vsysfs_start -o "clock=manual,machine=$TESTDEV${1:+,$1}"; }
# A machine of another description: only the NUMA section.
numa_machine() { printf '[machine]\nname = "numa only"\n\n[numa]\n[[numa.node]]\ncpus = "0-1"\nmemory_mb = 512\n' > "$W/numa.toml"; }

@test "save and load: a file restores the machine; names; vsysfs-ctl save/load" {
  start
  echo 11 > "$MNT/$D/value"
  echo 4 > "$(K clock/advance_ms)"
  echo base > "$(K machine/snapshot)"
  echo "base $W/base.snap" > "$(K machine/save)"
  [ "$(stat -c '%a %u' "$W/base.snap")" = "600 0" ]
  [ "$(head -c 16 "$W/base.snap")" = "VSYSFS-SNAPSHOT" ]
  [ -z "$(find "$W" -name 'base.snap.tmp*')" ]   # no temporary left
  events_matching save machine | grep -q '"result":"OK"'
  echo 99 > "$MNT/$D/value"
  echo 6 > "$(K clock/advance_ms)"
  echo "copy $W/base.snap" > "$(K machine/load)"
  [ "$(cat "$MNT/$D/value")" = 99 ]          # load alone changes no device
  grep -q '^copy 4000000 ' "$(K machine/snapshot)"
  echo copy > "$(K machine/restore)"
  [ "$(cat "$MNT/$D/value")" = 11 ]
  [ "$(cat "$(K clock/now_ns)")" = 4000000 ]
  # A path alone: the name saved in the file.
  echo "$W/base.snap" > "$(K machine/load)"
  [ "$(grep -c '^base ' "$(K machine/snapshot)")" = 1 ]

  # vsysfs-ctl: save NAME FILE captures then writes; load FILE --restore.
  echo 21 > "$MNT/$D/value"
  (cd "$W" && "$CTL" -m "$MNT" snapshot save ctl ctl.snap)   # a relative FILE: made absolute
  echo 22 > "$MNT/$D/value"
  run -0 "$CTL" -m "$MNT" snapshot load "$W/ctl.snap" --restore
  [ "$(cat "$MNT/$D/value")" = 21 ]
  run -0 "$CTL" -m "$MNT" snapshot save --existing base "$W/again.snap"
  cmp "$W/base.snap" "$W/again.snap"
}

@test "load refuses a damaged, truncated or other-version file (EINVAL) and another machine's (EXDEV); nothing changes" {
  numa_machine
  vsysfs_start -o "clock=manual,machine=$W/numa.toml"
  echo numa > "$(K machine/snapshot)"
  echo "numa $W/numa.snap" > "$(K machine/save)"
  vsysfs_stop
  start
  echo base > "$(K machine/snapshot)"
  echo "base $W/good" > "$(K machine/save)"
  size=$(stat -c %s "$W/good")
  list=$(cat "$(K machine/snapshot)")
  cp "$W/good" "$W/flip"
  printf '\x55' | dd of="$W/flip" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
  head -c $((size - 1)) "$W/good" > "$W/short"
  cp "$W/good" "$W/v2"
  printf '\x02' | dd of="$W/v2" bs=1 seek=16 conv=notrunc 2>/dev/null
  : > "$W/empty"
  for f in flip short v2 empty; do
    [ "$(errno_of_write "$(K machine/load)" "x $W/$f")" = EINVAL ]
  done
  [ "$(errno_of_write "$(K machine/load)" "x $W/numa.snap")" = EXDEV ]
  events_matching load machine | grep '"result":"EXDEV"' | grep -q 'numa only'
  events_matching load machine | grep -q 'checksum mismatch'
  [ "$(cat "$(K machine/snapshot)")" = "$list" ]
  run -1 "$CTL" -m "$MNT" snapshot load "$W/numa.snap"
  [[ "$output" == *EXDEV*"another machine description"* ]]
  # Relative paths, a symbolic link at the end, a directory.
  [ "$(errno_of_write "$(K machine/load)" "x good")" = EINVAL ]
  [ "$(errno_of_write "$(K machine/save)" "base good")" = EINVAL ]
  ln -s "$W/good" "$W/link"
  [ "$(errno_of_write "$(K machine/load)" "x $W/link")" = ELOOP ]
  [ "$(errno_of_write "$(K machine/load)" "x $W")" = EISDIR ]
  [ "$(errno_of_write "$(K machine/save)" "nosuch $W/n")" = ENOENT ]
  [ "$(cat "$(K machine/snapshot)")" = "$list" ]
}

@test "a path written by an unprivileged writer is opened with its permissions, not the daemon's" {
  start allow_other
  echo base > "$(K machine/snapshot)"
  echo "base $W/root-only.snap" > "$(K machine/save)"
  # Let nobody reach the knobs (root may chmod debugfs files too).
  chmod 0755 "$MNT/kernel/debug" "$(K)" "$(K machine)"
  chmod 0222 "$(K machine/save)" "$(K machine/load)"
  mkdir -m 0700 "$W/private"
  mkdir -m 0777 "$W/open"
  chmod 0755 "$W"
  as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$IO" write "$@"; }
  [ "$(as_nobody "$(K machine/save)" "base $W/private/x")" = EACCES ]
  [ ! -e "$W/private/x" ]
  [ "$(as_nobody "$(K machine/load)" "x $W/root-only.snap")" = EACCES ]   # 0600 root's
  [ "$(as_nobody "$(K machine/save)" "base $W/open/mine.snap")" != EACCES ]
  [ "$(stat -c '%u %a' "$W/open/mine.snap")" = "65534 600" ]
  [ "$(as_nobody "$(K machine/load)" "x $W/open/mine.snap")" != EACCES ]
  grep -q '^x ' "$(K machine/snapshot)"
}

@test "-o snapshot=FILE: the machine starts from it; -o state applies after it; bad files refused" {
  start
  echo 31 > "$MNT/$D/value"
  echo 3 > "$(K clock/advance_ms)"
  echo start > "$(K machine/snapshot)"
  echo "start $W/start.snap" > "$(K machine/save)"
  vsysfs_stop
  start "snapshot=$W/start.snap"
  [ "$(cat "$MNT/$D/value")" = 31 ]
  [ "$(cat "$(K clock/now_ns)")" = 3000000 ]
  grep -q '^start 3000000 ' "$(K machine/snapshot)"
  vsysfs_stop
  # With a state file: the first mount starts from the snapshot, the
  # state file then holds it (its base) and every later change.
  start "snapshot=$W/start.snap,state=$W/state"
  echo 32 > "$MNT/$D/value"
  vsysfs_stop
  start "snapshot=$W/start.snap,state=$W/state"
  [ "$(cat "$MNT/$D/value")" = 32 ]
  vsysfs_stop
  # Refused, nothing mounted: damaged, another machine, the real clock.
  head -c 100 "$W/start.snap" > "$W/short"
  run "$VSYSFS" -f -o "clock=manual,machine=$TESTDEV,snapshot=$W/short" "$W"
  [ "$status" -ne 0 ]
  [[ "$output" == *"snapshot file $W/short: truncated"*"(EINVAL)"* ]]
  numa_machine
  run "$VSYSFS" -f -o "clock=manual,machine=$W/numa.toml,snapshot=$W/start.snap" "$W"
  [ "$status" -ne 0 ]
  [[ "$output" == *"not of this machine"*"(EXDEV)"* ]]
  run "$VSYSFS" -f -o "machine=$TESTDEV,snapshot=$W/start.snap" "$W"
  [ "$status" -ne 0 ]
  [[ "$output" == *"clock=real"* ]]
}

@test "compaction: the state file stays bounded under many stores; a load survives kill -9" {
  bound=8192
  start "state=$W/state,state_compact=$bound"
  base=$(stat -c %s "$W/state")
  n=${SNAPSHOT_FILE_STORES:-2000}
  t0=$(date +%s%N)
  python3 - "$MNT/$D/value" "$n" <<'PY'
import os, sys
path, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, b"%d\n" % i)
    os.close(fd)
PY
  t1=$(date +%s%N)
  size=$(stat -c %s "$W/state")
  echo "# $n stores in $(((t1 - t0) / 1000000)) ms; state file $size bytes (base $base, bound $bound)" >&3
  # The base (the machine) plus at most the bound and one record.
  [ "$size" -le $((base + bound + 200)) ]
  [ "$(events_matching state_compact vsysfs | grep -c '"result":"OK"')" -ge $((n * 40 / bound)) ]
  # A loaded snapshot is kept in the base, not as a record: the file may go.
  echo keep > "$(K machine/snapshot)"
  echo "keep $W/keep.snap" > "$(K machine/save)"
  echo "loaded $W/keep.snap" > "$(K machine/load)"
  rm "$W/keep.snap"
  kill -9 "$VSYSFS_PID"
  for _ in $(seq 100); do pid_running "$VSYSFS_PID" || break; sleep 0.02; done
  fusermount3 -uz "$MNT" 2>/dev/null || true
  rmdir "$MNT"; unset MNT VSYSFS_PID
  t0=$(date +%s%N)
  start "state=$W/state,state_compact=$bound"
  t1=$(date +%s%N)
  echo "# mount with the state file: $(((t1 - t0) / 1000000)) ms" >&3
  [ "$(cat "$MNT/$D/value")" = $((n - 1)) ]
  grep -q '^loaded ' "$(K machine/snapshot)"
  echo loaded > "$(K machine/restore)"
  [ "$(cat "$MNT/$D/value")" = $((n - 1)) ]
}
