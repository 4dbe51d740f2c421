#pragma once

// LockDebug: MOUNT/kernel/debug/vsysfs/locks, the table of contended locks
// of the daemon's lock service (core/lock_service.hpp: flock and POSIX
// locks on vsysfs files, granted through a priority-inheritance RtMutex per
// file and lock kind). A debugfs-style seq file in the spirit of
// /proc/locks, with the rt-mutex's PI state added.
// Sources: docs/design.md section 9; Documentation/rt-mutex.txt (the
// owner-word table); docs/kernel-semantics.md section 7 (7.1 priorities, 7.2
// owner word, 7.3 waiter ordering).
//
//   file     mode  what
//   locks    0400  every contended lock (a waiter queued, a writer waiting
//                  for readers to drain, or a pending owner), one block each:
//
//     FILE KIND                          KIND is flock or posix
//       owner  pid=P comm=C normal_prio=N prio=E has_waiters=B1 pending=B0 role=R
//       waiter pid=P comm=C prio=Q type=T           (queue order, top first)
//       holder pid=P comm=C prio=N type=T range=S-E (granted shared or range locks)
//
//   N is the owner's own priority (LockOwner::prio: 99-rt_priority for
//   SCHED_FIFO/RR, 120+nice otherwise), E its effective priority after
//   priority inheritance; B1/B0 are the owner word's bit1 ("has waiters")
//   and bit0 ("pending owner"); R is exclusive (holds LOCK_EX or a
//   whole-file write lock), draining (has its turn, waits for shared
//   holders) or pending (woken top waiter, not run yet). A transitional
//   owner word (no owner, waiters bit set) prints "owner  none". Q is the
//   waiter's key in the rt-mutex wait list; T is shared or exclusive.
//   No contended lock: the file is empty.
//
// Thread-safety: the LockService locks internally; this object has no state.

#include <memory>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/lock_service.hpp"

namespace vsysfs::devices {

class LockDebug {
 public:
  explicit LockDebug(core::LockService& locks) : locks_(locks) {}
  LockDebug(const LockDebug&) = delete;
  LockDebug& operator=(const LockDebug&) = delete;

  static std::span<const core::AttributeGroup<LockDebug>> groups();

  // Locking: the lock service's lock, then each RtMutex's wait_lock (a
  // consistent snapshot per lock). Context: FUSE worker.
  core::Status locks_show(std::string& out) const;

 private:
  core::LockService& locks_;
};

}  // namespace vsysfs::devices
