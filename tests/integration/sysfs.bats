#!/usr/bin/env bats
# The generic sysfs contract (docs/design.md section 3, docs/kernel-semantics.md section 1),
# checked against a real mount with the test-only device (tests/testdev).

load helpers

IO=$VSYSFS_BUILD/tests/helpers/sysfs-io
D=devices/virtual/vsysfs_test/testdev0

setup() {
  VSYSFS=$VSYSFS_BUILD/vsysfs-test vsysfs_start -o clock=manual,machine="$BATS_TEST_DIRNAME/testdev.toml"
  T=$MNT/$D
}
teardown() { vsysfs_stop; }

@test "getattr: text 4096, binary its declared size, dirs 0755, links 0777, root:root" {
  [ "$(stat -c '%s %a %U:%G %F' "$T/value")" = "4096 644 root:root regular file" ]
  [ "$(stat -c '%s %a' "$T/ro")" = "4096 444" ]
  [ "$(stat -c '%s %a' "$T/wo")" = "4096 200" ]
  [ "$(stat -c '%s %a' "$T/secret")" = "4096 600" ]
  [ "$(stat -c '%s %a' "$T/blob")" = "64 644" ]
  [ "$(stat -c '%s %a' "$T/stream")" = "0 600" ]
  [ "$(stat -c '%a %F' "$T/stats")" = "755 directory" ]
  [ "$(stat -c '%a %F' "$MNT/class/vsysfs_test/testdev0")" = "777 symbolic link" ]
  [ "$(readlink "$MNT/class/vsysfs_test/testdev0")" = "../../devices/virtual/vsysfs_test/testdev0" ]
  [ "$(cat "$MNT/class/vsysfs_test/testdev0/value")" = "7" ]
}

@test "readdir lists . and .. and entries in a stable order; statfs answers" {
  run ls -fa "$T"
  [ "${lines[0]}" = "." ]
  [ "${lines[1]}" = ".." ]
  first=$(ls -fa "$T"); second=$(ls -fa "$T")
  [ "$first" = "$second" ]
  [ "$(ls "$T" | tr '\n' ' ')" = "big blob ro secret shows sink stats stream value wo " ]
  stat -f "$MNT" >/dev/null
}

@test "open: the sysfs mode check applies to root too (EACCES)" {
  [ "$($IO open "$T/ro" w)" = EACCES ]
  [ "$($IO open "$T/ro" rw)" = EACCES ]
  [ "$($IO open "$T/wo" r)" = EACCES ]
  [ "$($IO open "$T/wo" w)" = OK ]
  [ "$($IO open "$T/secret" rw)" = OK ]
  [ "$($IO write "$T/ro" 1)" = EACCES ]
  run cat "$T/wo"
  [ "$status" -ne 0 ]
  [[ "$output" == *"Permission denied"* ]]
}

@test "read: show runs at offset 0 into a snapshot; other offsets slice it" {
  a=$(cat "$T/shows")
  # One byte at a time: show runs once, every later offset slices that snapshot.
  b=$($IO readsplit "$T/shows" 1)
  [ "$b" = "$((a + 1))" ]
  # read at 0, then pread at 0 again: show runs twice.
  run $IO readtwice "$T/shows"
  [ "${lines[0]}" = "$((a + 2))" ]
  [ "${lines[1]}" = "$((a + 3))" ]
  # A read past the end is EOF.
  [ "$($IO read "$T/value" 100 2 | wc -c)" -eq 0 ]
}

@test "one read of 4096 at offset 0 returns the whole content; an oversized show is clamped to 4095" {
  [ "$($IO read "$T/value" 4096 0)" = "7" ]
  [ "$($IO read "$T/big" 4096 0 | wc -c)" -eq 4095 ]
  [ "$(cat "$T/big" | wc -c)" -eq 4095 ]
  events_matching fill_read_buffer sysfs
}

@test "write: the offset is ignored and the count is store()'s" {
  [ "$($IO write "$T/value" 12 100)" = 2 ]
  [ "$(cat "$T/value")" = 12 ]
  echo 13 > "$T/value"
  [ "$(cat "$T/value")" = 13 ]
}

@test "write: at most 4096 bytes reach store(), NUL-terminated" {
  [ "$($IO writelen "$T/sink" 5000)" = 4096 ]
  [ "$(cat "$T/sink")" = "len=4096 nul=1" ]
  [ "$($IO writelen "$T/sink" 4095)" = 4095 ]
  [ "$(cat "$T/sink")" = "len=4095 nul=1" ]
  [ "$($IO writelen "$T/sink" 1)" = 1 ]
  [ "$(cat "$T/sink")" = "len=1 nul=1" ]
}

@test "write: zero-length returns 0 without store; a failed store changes nothing" {
  before=$(grep -c '"attr":"value"' "$(ctl events)" || true)
  [ "$($IO write "$T/value" '')" = 0 ]
  after=$(grep -c '"attr":"value"' "$(ctl events)" || true)
  [ "$before" = "$after" ]
  [ "$($IO write "$T/value" junk)" = EINVAL ]
  [ "$($IO write "$T/value" 99999999999)" = ERANGE ]
  [ "$($IO write "$T/value" '-')" = EINVAL ]
  [ "$(cat "$T/value")" = 7 ]
}

@test "binary attributes: I/O at an offset, EOF and EFBIG at the size" {
  [ "$($IO writehex "$T/blob" 41424344 10)" = 4 ]
  [ "$($IO read "$T/blob" 4 10)" = ABCD ]
  [ "$($IO read "$T/blob" 100 64 | wc -c)" -eq 0 ]
  [ "$($IO writehex "$T/blob" 41 64)" = EFBIG ]
  [ "$($IO writehex "$T/blob" 5859595959595959 60)" = 4 ]
  [ "$($IO read "$T/blob" 64 0 | wc -c)" -eq 64 ]
  # size 0: unbounded, the driver decides (8 KiB store), a page per call.
  [ "$($IO writelen "$T/stream" 6000)" = 4096 ]
  [ "$($IO read "$T/stream" 8192 0 | wc -c)" -eq 4096 ]
  [ "$($IO writehex "$T/stream" 5a 8191)" = 1 ]
  [ "$($IO read "$T/stream" 1 8191)" = Z ]
}

@test "create is EACCES; mkdir, rmdir, unlink, rename, mknod, symlink, link are EPERM" {
  [ "$($IO syscall creat "$T/newfile")" = EACCES ]
  [ "$($IO syscall mkdir "$T/newdir")" = EPERM ]
  [ "$($IO syscall rmdir "$T/stats")" = EPERM ]
  [ "$($IO syscall unlink "$T/value")" = EPERM ]
  [ "$($IO syscall rename "$T/value")" = EPERM ]
  [ "$($IO syscall mknod "$T/node")" = EPERM ]
  [ "$($IO syscall symlink "$T/link")" = EPERM ]
  [ "$($IO syscall link "$T/value")" = EPERM ]
  [ -f "$T/value" ] && [ ! -e "$T/newfile" ]
}

@test "O_CREAT and O_TRUNC of an existing attribute are accepted and change nothing" {
  [ "$($IO open "$T/value" creat)" = OK ]
  [ "$($IO open "$T/value" trunc)" = OK ]
  truncate -s 0 "$T/value"
  [ "$(cat "$T/value")" = 7 ]
  [ "$(stat -c %s "$T/value")" = 4096 ]
}

@test "chmod and chown by root work and last for the mount's life" {
  chmod 0666 "$T/value"
  chown 1234:5678 "$T/ro"
  [ "$(stat -c %a "$T/value")" = 666 ]
  [ "$(stat -c %u:%g "$T/ro")" = 1234:5678 ]
  cat "$T/value" >/dev/null; ls -l "$T" >/dev/null
  [ "$(stat -c %a "$T/value")" = 666 ]
  chmod 0444 "$T/value"
  [ "$($IO open "$T/value" w)" = EACCES ]
}

@test "poll: POLLPRI after the device notifies the attribute" {
  out=$BATS_TEST_TMPDIR/poll.out
  $IO poll "$T/value" 5000 > "$out" &
  pid=$!
  for _ in $(seq 500); do grep -q READY "$out" && break; sleep 0.02; done
  echo 21 > "$(ctl testdev/set)"
  wait $pid
  [ "$(tail -n 1 "$out")" = PRI ]
  # Without a notify, poll times out.
  $IO poll "$T/value" 300 > "$out"
  [ "$(tail -n 1 "$out")" = TIMEOUT ]
}

@test "content is never cached: a knob change is seen on the next read" {
  [ "$(cat "$T/value")" = 7 ]
  echo 8 > "$(ctl testdev/set)"
  [ "$(cat "$T/value")" = 8 ]
  echo 9 > "$(ctl testdev/set)"
  [ "$($IO read "$T/value" 4096 0)" = 9 ]
}

@test "hotplug: an added device appears at once, a removed one disappears at once" {
  ls "$MNT/devices/virtual/vsysfs_test" >/dev/null   # let the kernel cache the directory
  ! stat "$MNT/devices/virtual/vsysfs_test/hot1" 2>/dev/null  # and a negative entry
  echo "add hot1" > "$(ctl testdev/hotplug)"
  [ "$(cat "$MNT/devices/virtual/vsysfs_test/hot1/value")" = 0 ]
  ls "$MNT/devices/virtual/vsysfs_test" | grep -qx hot1
  exec 5< "$MNT/devices/virtual/vsysfs_test/hot1/value"
  echo "remove hot1" > "$(ctl testdev/hotplug)"
  [ ! -e "$MNT/devices/virtual/vsysfs_test/hot1" ]
  ! ls "$MNT/devices/virtual/vsysfs_test" | grep -qx hot1
  # An open file of a removed device reads ENODEV.
  run cat <&5
  exec 5<&-
  [[ "$output" == *"No such device"* ]]
  [ "$($IO write "$(ctl testdev/hotplug)" "remove hot1")" = ENOENT ]
}

@test "manual clock: a timer fires exactly when advance_ms passes its deadline" {
  echo 1000 > "$(ctl testdev/timer_ms)"
  echo 999 > "$(ctl clock/advance_ms)"
  [ "$(cat "$(ctl testdev/fired)")" = 0 ]
  echo 1 > "$(ctl clock/advance_ms)"
  [ "$(cat "$(ctl testdev/fired)")" = 1 ]
  [ "$(cat "$(ctl clock/now_ns)")" = 1000000000 ]
  events_matching timer testdev | grep -q '"result":"fired"'
  events_matching timer testdev | grep '"result":"fired"' | grep -q '"time_ns":1000000000'
}

@test "flock is served by the daemon; close and death of the holder release it" {
  out=$BATS_TEST_TMPDIR/holder
  $IO flock "$T/value" ex 800 > "$out" &
  holder=$!
  for _ in $(seq 500); do grep -q OK "$out" && break; sleep 0.02; done
  [ "$($IO flock "$T/value" ex nb)" = EAGAIN ]
  [ "$($IO flock "$T/value" sh nb)" = EAGAIN ]
  events_matching acquired locks | grep -q "$D/value"
  wait $holder
  [ "$($IO flock "$T/value" ex nb)" = OK ]
  # A holder killed with SIGKILL releases too.
  $IO flock "$T/value" ex 60000 > "$out" &
  holder=$!
  for _ in $(seq 500); do grep -q OK "$out" && break; sleep 0.02; done
  [ "$($IO flock "$T/value" ex nb)" = EAGAIN ]
  kill -9 $holder; wait $holder 2>/dev/null || true
  for _ in $(seq 50); do [ "$($IO flock "$T/value" ex nb)" = OK ] && break; sleep 0.05; done
  [ "$($IO flock "$T/value" ex nb)" = OK ]
  # Shared locks coexist.
  $IO flock "$T/value" sh 500 > "$out" &
  for _ in $(seq 500); do grep -q OK "$out" && break; sleep 0.02; done
  [ "$($IO flock "$T/value" sh nb)" = OK ]
  wait
}

@test "a blocked flock waits in the daemon and Ctrl-C (SIGINT) ends it at once" {
  out=$BATS_TEST_TMPDIR/holder
  $IO flock "$T/value" ex 20000 > "$out" &
  holder=$!
  for _ in $(seq 500); do grep -q OK "$out" && break; sleep 0.02; done
  start=$SECONDS
  run timeout -s INT 1 flock -x "$T/value" true
  [ "$status" -ne 0 ]
  [ $((SECONDS - start)) -le 3 ]
  events_matching interrupted locks
  # No one is left in the queue: the holder's release grants nothing stale.
  kill $holder; wait $holder 2>/dev/null || true
  [ "$($IO flock "$T/value" ex nb)" = OK ]
  ! ps -eo stat,comm | grep -E '^D' | grep -q flock
}

@test "POSIX locks: F_SETLK conflicts give EAGAIN; close releases" {
  command -v python3 >/dev/null || skip "python3 needed for fcntl locks"
  python3 - "$T/value" <<'PY'
import fcntl, os, sys, time, subprocess
p = sys.argv[1]
fd = os.open(p, os.O_RDONLY)
fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
child = subprocess.run([sys.executable, "-c", f"""
import fcntl, os, errno
fd = os.open({p!r}, os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])
"""], capture_output=True, text=True)
assert child.stdout.strip() in ("EAGAIN", "EACCES"), child.stdout
os.close(fd)
child = subprocess.run([sys.executable, "-c", f"""
import fcntl, os
fd = os.open({p!r}, os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print("OK")
"""], capture_output=True, text=True)
assert child.stdout.strip() == "OK", child.stdout + child.stderr
PY
}
