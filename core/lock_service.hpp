#pragma once

// LockService: flock(2) and POSIX (fcntl) locks on vsysfs files, served by
// the daemon so that a device knows who holds, e.g., the SMI buffer
// (dcdbas.txt step 1, "lock smi_data"). A request that cannot be granted at
// once is queued and completed later through its callback: no thread waits,
// so a blocked `flock` never ties up a FUSE worker, and an interrupt
// (Ctrl-C) cancels it at once.
//
// Semantics follow the kernel's fs/locks.c:
//  - flock: per open file description (the FUSE lock owner); LOCK_SH is
//    shared, LOCK_EX exclusive; a conversion first drops the old lock (not
//    atomic, as flock_lock_inode); LOCK_NB conflicts give EWOULDBLOCK.
//  - POSIX: per lock owner (process), byte ranges, F_RDLCK/F_WRLCK/F_UNLCK;
//    a new lock replaces the owner's overlapping ranges; F_SETLK conflicts
//    give EAGAIN; getlk reports the first conflicting lock.
//  - flock and POSIX locks do not conflict with each other (Linux).
// Waiters are served in priority order (kernel numeric prio, lower first),
// FIFO among equals.
//
// Thread-safety: every member may be called from any thread. Callbacks run
// without the service's lock held, exactly once per queued request.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/env.hpp"
#include "core/result.hpp"

namespace vsysfs::core {

struct LockOwner {
  std::uint64_t owner = 0;  // FUSE lock_owner: the open file (flock) or process (POSIX)
  pid_t pid = 0;
  std::string comm;
  int prio = 120;  // kernel numeric priority of the requester
};

enum class LockType { Read, Write, Unlock };

struct PosixRange {
  std::uint64_t start = 0;
  std::uint64_t end = UINT64_MAX;  // inclusive
};

struct HeldLock {
  bool flock = true;
  LockType type = LockType::Write;
  PosixRange range;
  LockOwner owner;
};

class LockService {
 public:
  using Done = std::function<void(Status)>;
  using Ticket = std::uint64_t;

  explicit LockService(Env& env) : env_(env) {}

  // A ticket names one request. Take it before making the request so an
  // interrupt can be registered first: cancel() of a ticket whose request
  // has not arrived yet makes that request fail with EINTR when it does.
  Ticket new_ticket();

  // flock(2) on file `key`. `done` is called exactly once: at once when the
  // lock is granted or refused, or later (granted, or EINTR on cancel).
  void flock(Ticket ticket, std::uint64_t key, const std::string& name, LockOwner owner,
             LockType type, bool wait, Done done);
  // F_SETLK / F_SETLKW.
  void setlk(Ticket ticket, std::uint64_t key, const std::string& name, LockOwner owner,
             LockType type, PosixRange range, bool wait, Done done);
  // F_GETLK: the first lock that would conflict, if any.
  std::optional<HeldLock> getlk(std::uint64_t key, const LockOwner& owner, LockType type,
                                PosixRange range) const;

  // Interrupt: a queued request leaves the queue and completes with EINTR.
  void cancel(Ticket ticket);
  // Close of an open file description: drops its flock (flock_release).
  void release_flock(std::uint64_t key, std::uint64_t owner);
  // Close by a lock owner (FUSE flush/release): drops its POSIX locks.
  void release_posix(std::uint64_t key, std::uint64_t owner);

  // Who holds file `key` exclusively (flock LOCK_EX or a whole-file POSIX
  // write lock), for devices that care.
  std::optional<LockOwner> exclusive_holder(std::uint64_t key) const;

  // The contended-lock table for kernel/debug/vsysfs/locks.
  void render(std::string& out) const;

 private:
  struct Waiter {
    Ticket ticket;
    bool flock;
    LockType type;
    PosixRange range;
    LockOwner owner;
    Done done;
    std::uint64_t arrival;
  };
  struct File {
    std::string name;
    std::vector<HeldLock> held;
    std::list<Waiter> waiters;  // priority order, FIFO among equals
  };

  bool conflicts(const File& f, bool flock, LockType type, PosixRange range,
                 std::uint64_t owner) const;
  void apply(File& f, bool flock, LockType type, PosixRange range, const LockOwner& owner);
  void drop(File& f, bool flock, std::uint64_t owner, PosixRange range);
  // Grants what can be granted now; collects callbacks to run unlocked.
  void grant_waiters(std::uint64_t key, File& f, std::vector<Done>& ready);
  void request(Ticket ticket, std::uint64_t key, const std::string& name, bool flock,
               LockOwner owner, LockType type, PosixRange range, bool wait, Done done);
  void log(const char* what, const std::string& file, const LockOwner& owner, const char* result);

  Env& env_;
  mutable std::mutex mu_;  // Order: leaf (callbacks run after it is dropped)
  std::map<std::uint64_t, File> files_;
  std::map<Ticket, std::uint64_t> ticket_file_;  // queued requests
  std::set<Ticket> reserved_;                    // issued, request not yet made
  std::set<Ticket> precancelled_;                // cancelled before the request came
  Ticket next_ticket_ = 1;
  std::uint64_t arrivals_ = 0;
};

}  // namespace vsysfs::core
