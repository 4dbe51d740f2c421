#!/usr/bin/env bats
# The event log is bounded (docs/trust.md): client input is cut before it
# is logged, and a flood from one user evicts only that user's events.
# (A consumer of the events sink that stops reading stalls nothing: -o
# events takes only a private regular file, so the stalled pipe is a unit
# test, tests/core/event_log_test.cpp.)

load helpers

UEVENT=devices/system/xen_memory/xen_memory0/uevent

as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

teardown() {
  vsysfs_stop
}

@test "refused 4 KB writes are logged bounded: the log grows by a bounded amount per write" {
  vsysfs_start -o clock=manual
  # 2000 refused writes of a page of control bytes (six bytes each once
  # escaped): uncut, that is 48 MB of log; cut, under 4 MB.
  python3 - "$MNT/$UEVENT" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for _ in range(2000):
    try:
        os.write(fd, b"\x01" * 4000)
    except OSError:
        pass
PY
  size=$(wc -c < "$(ctl events)")
  [ "$size" -lt $((4 * 1024 * 1024)) ]
  # No event carries the page: the uevent store logs the kernel's message
  # (core/kobject_uevent.cpp), and any string field is cut at 256 bytes
  # (tests/core/event_log_test.cpp).
  longest=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }' "$(ctl events)")
  [ "$longest" -lt 2048 ]
}

@test "a flock flood by nobody evicts nobody's events, not root's, and counts them" {
  MNT=$(mktemp -d /tmp/vsysfs-flood.XXXXXX)
  chmod 0755 "$MNT"
  VSYSFS_PID=$("$SCRIPTS/vsysfs-mount" "$MNT" -- -o allow_other,clock=manual) || return 1
  export MNT VSYSFS_PID
  echo 1 > "$(ctl clock/advance_ms)"          # root's own event
  root_seq=$(grep '"what":"advance"' "$(ctl events)" | head -1 | sed 's/{"seq":\([0-9]*\),.*/\1/')
  [ -n "$root_seq" ]
  # 60,000 lock/unlock pairs: more than the log's 100,000 events. Under
  # TSan CI sets EVENT_FLOOD_PAIRS lower (no fewer than 13,000: more events
  # than nobody's quarter of the log, so its bound is still what is tested).
  pairs=${EVENT_FLOOD_PAIRS:-60000}
  [ "$pairs" -ge 13000 ]
  as_nobody /usr/bin/python3 - "$MNT/devices/system/node/node0/cpulist" "$pairs" <<'PY'
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for _ in range(int(sys.argv[2])):
    fcntl.flock(fd, fcntl.LOCK_SH)
    fcntl.flock(fd, fcntl.LOCK_UN)
PY
  grep -q "{\"seq\":$root_seq," "$(ctl events)"
  run grep -c '"uid":65534' "$(ctl events)"
  [ "$output" -le 25000 ]
  grep -q '^uid 65534 [1-9]' "$(ctl events_dropped)"
  run grep -c '^uid 0 ' "$(ctl events_dropped)"
  [ "$output" -eq 0 ]
}
