# vsysfs-bats.bash: mount a simulated sysfs in your own tests.
#
# For bats:   load /usr/share/vsysfs/vsysfs-bats     (or a path to this file, without .bash)
# For bash:   source /usr/share/vsysfs/vsysfs-bats.bash
#
#   vsysfs_mount [DAEMON-OPTIONS...]   mount a machine in a fresh temporary
#                                      directory: sets VSYSFS_MNT, VSYSFS_PID,
#                                      exports VSYSFS_MOUNT (for vsysfs-ctl)
#   vsysfs_unmount                     unmount it and wait for its daemon
#   vsysfs_ctl ARGS...                 vsysfs-ctl on this mount
#   vsysfs_advance DURATION            move the manual clock (30s, 500ms, 2m)
#   vsysfs_mark                        remember the newest event (VSYSFS_MARK)
#   vsysfs_assert_event [FILTER]       an event matching FILTER happened
#                                      after the mark (or --since SEQ)
#   vsysfs_refute_event [FILTER]       no such event happened
#   vsysfs_wait_event [FILTER] [--timeout DUR]
#                                      block until one happens (no sleeping)
#   vsysfs_run_in_sys CMD [ARGS...]    run CMD in a private mount namespace
#                                      with the mount bound over /sys
#
# FILTER: --device D --what W --result R (exact matches). docs/bats-library.md
# has an example suite.
#
# Cleanup whatever happens: each mount gets a reaper, a background process
# that waits (on a pidfd) for the shell that mounted to end. When it ends
# (the test finished, failed, was killed, even by SIGKILL) the reaper
# unmounts and stops the daemon, by its PID only (checked to still be that
# mount's daemon first). vsysfs_unmount in teardown does the same at once.
# Only daemons this library started are ever signalled. A mount made in a
# subshell ($(...), run) lives as long as that subshell.
#
# Needs: bash, the vsysfs daemon and mount-scripts (vsysfs-mount,
# vsysfs-umount, vsysfs-ctl) on PATH or next to this file in a source tree
# (VSYSFS_SCRIPTS overrides), python3 for vsysfs-ctl, unshare(1) for
# vsysfs_run_in_sys. The control plane is root-only (as debugfs is): the
# event and clock helpers need root, or a daemon that runs as you.

_vsysfs_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Where the scripts are: VSYSFS_SCRIPTS, a source tree's mount-scripts/
# next to lib/, else PATH.
_vsysfs_script() {
  local name=$1
  if [ -n "${VSYSFS_SCRIPTS:-}" ] && [ -x "$VSYSFS_SCRIPTS/$name" ]; then
    echo "$VSYSFS_SCRIPTS/$name"
  elif [ -x "$_vsysfs_lib_dir/../mount-scripts/$name" ]; then
    echo "$_vsysfs_lib_dir/../mount-scripts/$name"
  else
    command -v "$name" || { echo "vsysfs-bats: $name not found" >&2; return 1; }
  fi
}

_vsysfs_fail() {
  echo "vsysfs-bats: $*" >&2
  return 1
}

# _vsysfs_is_ours PID DIR: PID is a vsysfs daemon serving DIR (a reused
# PID belongs to someone else and is left alone).
_vsysfs_is_ours() {
  local pid=$1 dir=$2 arg
  [ -r "/proc/$pid/cmdline" ] || return 1
  arg=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | tail -n 1)
  [ "$arg" = "$dir" ]
}

_vsysfs_running() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  [ "${st%% *}" != Z ]
}

# _vsysfs_teardown DIR PID: idempotent; what both the reaper and
# vsysfs_unmount run.
_vsysfs_teardown() {
  local dir=$1 pid=$2 umount
  umount=$(_vsysfs_script vsysfs-umount 2>/dev/null)
  if mountpoint -q "$dir" 2>/dev/null || stat "$dir" 2>&1 | grep -q 'not connected'; then
    if [ -n "$umount" ]; then
      "$umount" --timeout 5 "$dir" >/dev/null 2>&1 || fusermount3 -uz "$dir" >/dev/null 2>&1 || umount -l "$dir" 2>/dev/null
    else
      fusermount3 -u "$dir" >/dev/null 2>&1 || fusermount3 -uz "$dir" >/dev/null 2>&1 || umount -l "$dir" 2>/dev/null
    fi
  fi
  if [ -n "$pid" ] && _vsysfs_is_ours "$pid" "$dir"; then
    for _ in $(seq 100); do _vsysfs_running "$pid" || break; sleep 0.05; done
    # Still serving (a copy of the mount in another namespace, a file held
    # open): stop it. SIGTERM unmounts cleanly; SIGKILL if even that hangs.
    if _vsysfs_running "$pid" && _vsysfs_is_ours "$pid" "$dir"; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 100); do _vsysfs_running "$pid" || break; sleep 0.05; done
      _vsysfs_is_ours "$pid" "$dir" && kill -KILL "$pid" 2>/dev/null
    fi
  fi
  mountpoint -q "$dir" 2>/dev/null && fusermount3 -uz "$dir" >/dev/null 2>&1
  rmdir "$dir" 2>/dev/null
  return 0
}

# vsysfs_mount [DAEMON-OPTIONS...], e.g. vsysfs_mount -o clock=manual
vsysfs_mount() {
  local mountcmd dir pid reaper
  mountcmd=$(_vsysfs_script vsysfs-mount) || return 1
  # Not under a bats per-test directory: bats removes those with rm -r,
  # which must never walk into a mount whose reaper has not run yet.
  dir=$(mktemp -d "${TMPDIR:-/tmp}/vsysfs-mnt.XXXXXX") || return 1
  if ! pid=$("$mountcmd" "$dir" -- "$@"); then
    rmdir "$dir" 2>/dev/null
    _vsysfs_fail "could not mount (vsysfs-mount failed)"
    return 1
  fi
  local me=$BASHPID
  reaper=$(_vsysfs_start_reaper "$me" "$dir" "$pid")
  VSYSFS_MNT=$dir
  VSYSFS_PID=$pid
  VSYSFS_MOUNT=$dir
  VSYSFS_MARK=0
  _VSYSFS_REAPER="$reaper $dir"
  export VSYSFS_MNT VSYSFS_PID VSYSFS_MOUNT VSYSFS_MARK _VSYSFS_REAPER
}

# _vsysfs_start_reaper SHELL-PID DIR DAEMON-PID: prints the reaper's PID.
# The reaper waits for SHELL-PID to end (a pidfd: no polling, and no
# descriptor a child of the shell could keep open), then tears the mount
# down. It is nobody's job (started from a subshell: a `wait` in the test
# never waits for it) and keeps none of the caller's descriptors: bats
# waits for end of file on the pipes it hands a test (fd 3 and higher
# ones), so a reaper holding one would hang bats until the reaper ends.
_vsysfs_start_reaper() {
  local shell=$1 dir=$2 pid=$3 lib=${BASH_SOURCE[0]}
  (
    # shellcheck disable=SC2016 # Python source; $0..$2 are for bash -c in it
    exec python3 -c '
import os, select, sys
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
shell, lib, mnt, daemon = sys.argv[1:5]
try:
    fd = os.pidfd_open(int(shell))
    select.select([fd], [], [])
except ProcessLookupError:
    pass
os.execvp("bash", ["bash", "-c", "source \"$0\"; _vsysfs_teardown \"$1\" \"$2\"", lib, mnt, daemon])
' "$shell" "$lib" "$dir" "$pid" </dev/null >/dev/null 2>&1 &
    echo "$!"
  )
}

# vsysfs_unmount: the mount at VSYSFS_MNT, served by VSYSFS_PID (what
# vsysfs_mount set last).
vsysfs_unmount() {
  [ -n "${VSYSFS_MNT:-}" ] || return 0
  _vsysfs_teardown "$VSYSFS_MNT" "${VSYSFS_PID:-}"
  # Its reaper has nothing left to do: end it (our own process, by PID;
  # only the reaper of this very mount).
  local reaper=${_VSYSFS_REAPER%% *} reaped=${_VSYSFS_REAPER#* }
  if [ -n "${_VSYSFS_REAPER:-}" ] && [ "$reaped" = "$VSYSFS_MNT" ]; then
    kill -TERM "$reaper" 2>/dev/null || true
    unset _VSYSFS_REAPER
  fi
  unset VSYSFS_MNT VSYSFS_PID VSYSFS_MOUNT
}

vsysfs_ctl() {
  local ctl
  ctl=$(_vsysfs_script vsysfs-ctl) || return 1
  [ -n "${VSYSFS_MNT:-}" ] || { _vsysfs_fail "no mount (call vsysfs_mount first)"; return 1; }
  "$ctl" -m "$VSYSFS_MNT" "$@"
}

vsysfs_advance() { vsysfs_ctl clock advance "$@"; }

# Snapshots (docs/snapshot.md): vsysfs_snapshot NAME in setup_file, then
# vsysfs_restore NAME in each test's setup gives every test the same machine.
vsysfs_snapshot() { vsysfs_ctl snapshot save "$@"; }
vsysfs_restore() { vsysfs_ctl snapshot restore "$@"; }

# The newest event's seq now; later assertions look only after it.
vsysfs_mark() {
  local last
  last=$(vsysfs_ctl events --json | tail -n 1 | sed -n 's/^{"seq":\([0-9]*\),.*/\1/p')
  VSYSFS_MARK=${last:-0}
  export VSYSFS_MARK
}

_vsysfs_has_since() {
  local a
  for a in "$@"; do [ "$a" = --since ] && return 0; done
  return 1
}

# vsysfs_assert_event [--since SEQ] [--device D] [--what W] [--result R]
vsysfs_assert_event() {
  local since=() out
  _vsysfs_has_since "$@" || since=(--since "${VSYSFS_MARK:-0}")
  out=$(vsysfs_ctl events --json "${since[@]}" "$@") || return 1
  if [ -z "$out" ]; then
    echo "vsysfs_assert_event: no event matching: $* (after seq ${VSYSFS_MARK:-0}); the events since:" >&2
    vsysfs_ctl events "${since[@]}" >&2
    return 1
  fi
  printf '%s\n' "$out"
}

vsysfs_refute_event() {
  local since=() out
  _vsysfs_has_since "$@" || since=(--since "${VSYSFS_MARK:-0}")
  out=$(vsysfs_ctl events --json "${since[@]}" "$@") || return 1
  if [ -n "$out" ]; then
    echo "vsysfs_refute_event: unexpected event matching: $*" >&2
    printf '%s\n' "$out" >&2
    return 1
  fi
}

# vsysfs_wait_event [FILTER] [--since SEQ] [--timeout DUR]: prints the event.
vsysfs_wait_event() { vsysfs_ctl events wait "$@"; }

# vsysfs_run_in_sys CMD [ARGS...]: CMD sees the mount at /sys, in a mount
# namespace of its own (nothing changes outside it). Root: unshare -m;
# otherwise a user namespace too (unshare -rm), where CMD runs as root of
# that namespace only.
vsysfs_run_in_sys() {
  [ -n "${VSYSFS_MNT:-}" ] || { _vsysfs_fail "no mount (call vsysfs_mount first)"; return 1; }
  local flags=-m
  [ "$(id -u)" -eq 0 ] || flags=-rm
  # shellcheck disable=SC2016 # expanded by that sh, not here
  unshare "$flags" --propagation private -- /bin/sh -c \
    'mount --bind "$0" /sys && exec "$@"' "$VSYSFS_MNT" "$@"
}
