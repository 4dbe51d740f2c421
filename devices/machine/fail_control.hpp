#pragma once

// The fault-injection control files: MOUNT/kernel/debug/vsysfs/fail/, one
// directory per failure point with the files lib/fault-inject.c
// fault_create_debugfs_attr() makes, plus what each point adds
// (mm/fail_page_alloc.c for page_alloc). Semantics: core/fault_inject.hpp
// and docs/fault-injection.md. Root-only, as debugfs is; every file 0600
// except `injected` (0400).
//
//   fail/seed            u64 "%llu\n": restarts the decision generator
//   fail/pids            the processes task-filter lets fail, one "%d\n"
//                        each, ascending (the kernel's /proc/PID/make-it-fail);
//                        a write replaces the list: pids separated by
//                        blanks, commas or newlines (kstrtoint base 10,
//                        1..PID_MAX_LIMIT), at most 64; "" or "\n" empties it
//   fail/POINT/probability   ul  "%llu\n"  debugfs_create_ul
//   fail/POINT/interval      ul
//   fail/POINT/times         atomic_t "%lld\n"  debugfs_create_atomic_t
//   fail/POINT/space         atomic_t
//   fail/POINT/verbose       ul
//   fail/POINT/verbose_ratelimit_interval_ms  u32 "%llu\n"  debugfs_create_u32
//   fail/POINT/verbose_ratelimit_burst        u32
//   fail/POINT/task-filter   bool "Y\n"/"N\n"  debugfs_create_bool
//   fail/POINT/injected      0400 "%llu\n": failures injected so far (vsysfs)
//   store, show: errno (1..4095, "%d\n"), paths (glob list, fnmatch without
//                FNM_PATHNAME: '*' also matches '/'; one pattern per line
//                shown, a write replaces the list: at most 16 patterns of at
//                most 255 bytes separated by blanks or newlines)
//                delay_ms (0..2^32-1, "%u\n"; 0: a firing fails with errno,
//                else it delays the request delay_ms on the simulation
//                clock and lets it run)
//   smi:         kind (no_answer | error | short), cbres1 (-1 | -2 | -3),
//                answer_bytes (0..15)
//   host_control: kind (timeout | no_power)
//   net_xmit:    kind (busy | drop | hang), ifaces
//   net_open:    errno, ifaces
//   net_rx:      kind (drop | corrupt), ifaces
//   link_flap:   down_ms, period_ms (1..2^32-1, "%u\n"), count (the periods
//                left; a store restarts the schedule, EINVAL unless
//                down_ms < period_ms), ifaces
//   xen_populate: pages
//   page_alloc:  ignore-gfp-wait, ignore-gfp-highmem (bool), min-order (u32)
//
// Parsing as debugfs: numbers go through simple_attr_write (fs/libfs.c):
// at most 23 bytes are looked at (QUIRK: the rest of a longer write is
// ignored, and the write still returns its full length), kstrtoull or, for
// atomic_t, kstrtoll in base 0; the value is then cut to the field's width
// (QUIRK: times 4294967295 is -1, u32 4294967296 is 0). Bools go through
// kstrtobool_from_user: the first 3 bytes decide. Junk is EINVAL, a number
// beyond 64 bits ERANGE, and nothing changes.
//
// Thread-safety: no state of its own (FaultInjection locks internally).

#include <span>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/fault_inject.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::devices {

// One point's directory.
struct FailPoint {
  core::Env& env;
  core::FaultInjection& fi;
  core::FaultPoint point;
  static std::span<const core::AttributeGroup<FailPoint>> groups();
};

// fail/ itself: seed and pids.
struct FailControl {
  core::Env& env;
  core::FaultInjection& fi;
  static std::span<const core::AttributeGroup<FailControl>> groups();
};

// Adds kernel/debug/vsysfs/fail (from the control plane's builder); no-op
// when the Env has no FaultInjection.
void build_fail_control(MachineContext& ctx);

}  // namespace vsysfs::devices
