#!/usr/bin/env bats
# Bounded resources in the daemon (docs/soak.md):
# - a long store (a manual-clock advance under line-rate traffic runs a
#   timer per packet: seconds of work per simulated second) ends when its
#   writer gets SIGINT or SIGKILL, and no store waits unkillably behind it,
#   with -o state too (the journal's order lock);
# - CPU hotplug reuses inode slots: the daemon's memory stays flat over
#   many offline/online cycles.
# No timing is asserted: "promptly" is a poll with a generous timeout,
# against a step that would take many minutes to finish.

load helpers

# 200 simulated seconds at 1.42 Mpps: hundreds of millions of timers.
LONG_MS=200000

setup() {
  # The reproducers are for a root daemon (the control plane is 0700).
  [ "$(id -u)" -eq 0 ] || skip "needs root"
  W=$(mktemp -d /tmp/trustbounds-XXXXXX)
  BG_PIDS=""
}

teardown() {
  # Unmounting (and killing our daemon) releases any writer still stuck
  # in a request; then reap them.
  vsysfs_stop
  for p in $BG_PIDS; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [ -n "${W:-}" ] && rm -rf "$W"
}

# bg_write FILE DATA: one write(2) from a background process, with SIGINT
# at its default action (bash starts background jobs with SIGINT ignored,
# and an ignored signal interrupts nothing). Sets BG (the writer's pid: bash
# execs the command); the write's outcome ("OK" or the errno name) lands in
# $W/out.$BG.
bg_write() {
  /usr/bin/python3 -c '
import errno, os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
out = open(os.path.join(sys.argv[3], "out.%d" % os.getpid()), "w", buffering=1)
fd = os.open(sys.argv[1], os.O_WRONLY)
try:
    os.write(fd, sys.argv[2].encode())
    out.write("OK\n")
except OSError as e:
    out.write(errno.errorcode[e.errno] + "\n")
' "$1" "$2" "$W" >/dev/null 2>&1 3>&- &
  BG=$!
  BG_PIDS="$BG_PIDS $BG"
}

# ended PID: polls (up to 60 s) until PID has exited.
ended() {
  local _
  for _ in $(seq 600); do pid_running "$1" || return 0; sleep 0.1; done
  return 1
}

# Line-rate traffic on eth0, then a long advance in the background; returns
# once the advance is running (simulated time moves). Sets ADV.
start_long_advance() {
  echo "count 0 rate 1420000" > "$(ctl net/eth0/traffic)"
  echo start > "$(ctl net/eth0/traffic)"
  local t0; t0=$(cat "$(ctl clock/now_ns)")
  bg_write "$(ctl clock/advance_ms)" "$LONG_MS"
  ADV=$BG
  local _
  for _ in $(seq 600); do
    [ "$(cat "$(ctl clock/now_ns)")" != "$t0" ] && return 0
    sleep 0.1
  done
  return 1
}

# The EINTR advance event's applied_ms.
applied_ms() {
  events_matching advance clock | grep '"result":"EINTR"' | tail -1 |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["data"]["applied_ms"])'
}

@test "SIGINT ends a long clock advance promptly; the event says how far it got; stores go on" {
  vsysfs_start -o clock=manual
  start_long_advance
  kill -INT "$ADV"
  ended "$ADV"
  applied=$(applied_ms)
  [ "$applied" -gt 0 ] && [ "$applied" -lt "$LONG_MS" ]
  # Time stopped at the applied part: a whole number of ms.
  [ "$(cat "$(ctl clock/now_ns)")" = "${applied}000000" ]
  # The traffic run is intact: the next advance carries on sending.
  sent=$(sed -n 's/^sent //p' "$(ctl net/eth0/traffic)")
  echo 1 > "$(ctl clock/advance_ms)"
  [ "$(sed -n 's/^sent //p' "$(ctl net/eth0/traffic)")" -gt "$sent" ]
  bg_write "$(ctl net/eth0/traffic)" stop
  ended "$BG"
  [ "$(cat "$W/out.$BG")" = OK ]
  grep -q '^state stopped' "$(ctl net/eth0/traffic)"
}

@test "SIGKILL ends a long clock advance promptly, and a second writer of the file behind it" {
  vsysfs_start -o clock=manual
  start_long_advance
  # A second advance waits for the first. (Not in the daemon: the kernel's
  # FUSE direct write holds the inode lock across the request, and
  # libfuse 3.14 cannot ask for FOPEN_PARALLEL_DIRECT_WRITES; docs/soak.md.)
  bg_write "$(ctl clock/advance_ms)" 5
  second=$BG
  sleep 0.5
  kill -KILL "$second"
  kill -KILL "$ADV"
  ended "$ADV"
  ended "$second"
  bg_write "$(ctl clock/advance_ms)" 1
  ended "$BG"
  [ "$(cat "$W/out.$BG")" = OK ]
  echo stop > "$(ctl net/eth0/traffic)"
}

@test "-o state: a store behind a long advance can be killed; the applied part is journaled" {
  S=$W/state
  vsysfs_start -o clock=manual,state="$S"
  start_long_advance
  # Stores wait for the journal's order lock behind the advance ...
  bg_write "$(ctl net/eth0/traffic)" stop
  waiter=$BG
  sleep 0.5
  pid_running "$waiter"
  # ... and their own writer's SIGKILL ends the wait.
  kill -KILL "$waiter"
  ended "$waiter"
  kill -INT "$ADV"
  ended "$ADV"
  applied=$(applied_ms)
  [ "$applied" -gt 0 ] && [ "$applied" -lt "$LONG_MS" ]
  # The next store completes.
  bg_write "$(ctl net/eth0/traffic)" stop
  ended "$BG"
  [ "$(cat "$W/out.$BG")" = OK ]
  # What the interrupted advance did apply survives a remount: the state
  # file replays start, the applied part of the advance, stop.
  vsysfs_stop
  vsysfs_start -o clock=manual,state="$S"
  [ "$(cat "$(ctl clock/now_ns)")" = "${applied}000000" ]
  grep -q '^state stopped' "$(ctl net/eth0/traffic)"
}

@test "CPU hotplug reuses inode slots: RSS flat over 20,000 offline/online cycles" {
  # Under ASan every free goes to a 256 MB quarantine first, and TSan keeps
  # shadow memory: RSS then measures the sanitizer. The plain build's run
  # of this suite (make test) is the one that measures the daemon.
  if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; then
    skip "RSS under a sanitizer measures the sanitizer's own memory"
  fi
  vsysfs_start -o clock=manual
  topo=$MNT/devices/system/cpu/cpu1/topology
  # st_ino is generation << 32 | slot (kernfs's id layout, core/node.hpp).
  max_slot() { stat -c %i "$topo"/* | awk '{ s = $1 % 4294967296; if (s > m) m = s } END { print m }'; }
  max_gen() { stat -c %i "$topo"/* | awk '{ g = int($1 / 4294967296); if (g > m) m = g } END { print m + 0 }'; }
  before=$(max_slot)
  [ "$(max_gen)" -eq 0 ]
  # The event log keeps up to 32 MiB; clearing it every 500 cycles keeps
  # its share of the heap constant, so RSS measures the tree.
  run python3 - "$MNT/devices/system/cpu/cpu1/online" "$(ctl events_clear)" "$VSYSFS_PID" <<'PY'
import os, sys
path, clear, pid = sys.argv[1], sys.argv[2], sys.argv[3]
def rss_kb():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
samples = {}
for i in range(1, 20001):
    for v in (b"0", b"1"):
        fd = os.open(path, os.O_WRONLY)
        os.write(fd, v)
        os.close(fd)
    if i % 500 == 0:
        with open(clear, "w") as f:
            f.write("1")
    if i in (2000, 20000):
        samples[i] = rss_kb()
grew = samples[20000] - samples[2000]
print(f"rss at 2000: {samples[2000]} kB, at 20000: {samples[20000]} kB, grew {grew} kB")
# A slot per node ever created was about 230 bytes a cycle: 4 MB here.
sys.exit(0 if grew <= 512 else 1)
PY
  echo "$output"
  [ "$status" -eq 0 ]
  # The re-created topology files took freed slots: their slots stay near
  # where they started (a new slot per node: +280,000), and their inode
  # numbers are new ones (a higher generation).
  after=$(max_slot)
  echo "topology max slot: $before -> $after, generation $(max_gen)"
  [ "$after" -lt $((before + 1000)) ]
  [ "$(max_gen)" -gt 0 ]
}
