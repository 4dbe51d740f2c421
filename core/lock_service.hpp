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
//    shared, LOCK_EX exclusive; asking again for the type already held is a
//    no-op; a conversion first drops the old lock (not atomic, as
//    flock_lock_inode), so waiters may get in; LOCK_NB conflicts give
//    EWOULDBLOCK (== EAGAIN).
//  - POSIX: per lock owner (process), byte ranges, F_RDLCK/F_WRLCK/F_UNLCK;
//    a new lock replaces the owner's overlapping ranges; F_SETLK conflicts
//    give EAGAIN; getlk reports the first conflicting lock; F_SETLKW that
//    would close a cycle of waiting owners gives EDEADLK
//    (posix_locks_deadlock: whole-file and range locks alike, chains of at
//    most MAX_DEADLK_ITERATIONS owners), also when a queued request takes
//    the turn later (the kernel checks again at every retry).
//  - OFD locks (F_OFD_SETLK) reach a FUSE server as POSIX requests whose
//    lock owner is the open file description (fs/fuse/file.c fuse_lk_fill:
//    owner = fl->c.flc_owner, which is the struct file for FL_OFDLCK; no
//    flag tells them apart). The kernel sends no unlock for them at the
//    last close (locks_remove_file finds no local locks, and fuse_setlk
//    drops FL_CLOSE_POSIX requests), and RELEASE carries the file's owner
//    id only after a flock. So every POSIX lock remembers the open file
//    description it was taken through (LockOwner::file) and release_file()
//    drops them at the last close. For an OFD lock that is its release;
//    a process's lock is gone by then anyway, because its process closed
//    that description first and the close's FLUSH dropped all its locks.
//  - flock and POSIX locks do not conflict with each other (Linux).
//
// Design: priority inheritance (docs/design.md section 9;
// docs/kernel-semantics.md section 7; Documentation/rt-mutex.txt).
//
// Each file has two lock domains (flock, POSIX), and each domain one
// core::RtMutex, the "turn". Every requesting lock owner gets a core::RtTask
// whose normal priority is the caller's (LockOwner::prio, from
// /proc/PID/stat: RT -> 99-rt_priority, nice -> 120+nice); an owner keeps
// the same RtTask across files while it holds or waits, so a POSIX owner
// that holds one file and waits for another carries its boost along the
// chain. (A flock owner is an open file description, which refers to one
// file, so flock chains never cross files; a process holding a flock on one
// file and waiting for another through a second descriptor is two owners.)
// The turn is owned by at most one of:
//  - the exclusive holder: a granted flock LOCK_EX or whole-file POSIX write
//    lock keeps the turn for as long as it is held, so every waiter queues
//    in the RtMutex behind it and boosts it (rt_mutex PI);
//  - the drainer: a request that got the turn but still conflicts with
//    granted shared or range locks of other owners; it keeps the turn (others
//    queue behind it, and boost it) until those are released;
//  - transiently, a pending owner (2.6.18 hand-over: the top waiter is
//    woken and takes the turn when it runs; a strictly higher-priority
//    newcomer may steal it first).
// Shared and range locks (flock LOCK_SH, POSIX read locks, POSIX write
// locks on part of the file) are tracked beside the RtMutex in the file's
// granted-lock list. Like PREEMPT_RT's rwbase_rt, a shared or range request
// is granted at once when the turn is free and nothing granted conflicts;
// otherwise it takes the turn through the RtMutex (queueing in priority
// order, FIFO among equals), and once it has it and nothing conflicts it
// is granted and passes the turn on at once. So waiters of every kind are
// served in priority order, and a waiting writer keeps later readers out.
// Deviations from fs/locks.c, which has no fairness at all: a shared
// request that would be compatible with the granted locks still waits
// (or gets EAGAIN with LOCK_NB / F_SETLK) while the turn is taken by a
// waiting writer or a pending owner. Limits: shared and range holders are
// not boosted (an rt-mutex has one owner; rwbase_rt does not boost readers
// either).
// The turn must never close a cycle the kernel does not have: a POSIX
// request of an owner that the turn's owner waits for (directly or through
// a chain of waiting owners) does not queue for the turn, which would make
// it wait for a drainer that waits for it: both forever. It is served
// beside the turn as fs/locks.c serves every request: granted at once if
// nothing granted conflicts, else (F_SETLKW) a "side" waiter, granted as
// soon as the conflicting locks go. A queued request moves aside when such
// a cycle forms after it queued. Side waiters are listed after the queue.
// Deviation: OFD and process locks look alike here (see above), so a cycle
// through an OFD lock is reported as EDEADLK too, where the kernel, which
// does not check OFD requests (posix_locks_deadlock), lets it wait.
//
// Hand-overs, steals, boosts and deboosts are logged (device "locks") by
// the RtMutex observer; grants, blocks, interrupts and releases too.
// Wake-ups of pending owners are processed after the operation that caused
// them has dropped the service lock (WakeMode::immediate, the daemon), or
// only when run_wakeups() is called (WakeMode::deferred, for tests that
// script a steal).
//
// Late grants (the `lock` failure point, docs/fault-injection.md section
// 3.12): a blocking request (flock without LOCK_NB, F_SETLKW) goes through
// the point's decision when it arrives; when it fires, the service holds
// the request back delay_ms on the simulation clock (one timer, armed at
// the earliest deadline), then serves it as if it had just arrived:
// granted if nothing conflicts, else queued. Nothing is applied while it
// is held back, so an interrupt ends it with EINTR and leaks nothing, and
// shutdown() (the daemon stops serving) drops it as the destructor drops a
// queued request. A non-blocking request never sleeps in the kernel
// (fs/locks.c flock_lock_inode and posix_lock_inode without FL_SLEEP): it
// is never delayed and does not reach the decision. At most
// kMaxLockDelayed requests are held back; beyond that a firing is not
// delayed (an "overflow" event), as for store and show.
//
// Thread-safety: every member may be called from any thread. One service
// mutex serializes all state and every RtMutex call; callbacks run without
// it held, exactly once per request.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/rt_mutex.hpp"

namespace vsysfs::core {

struct LockOwner {
  std::uint64_t owner = 0;  // FUSE lock_owner: the open file (flock) or process (POSIX)
  pid_t pid = 0;
  std::string comm;
  int prio = 120;  // kernel numeric priority of the requester
  uid_t uid = 0;   // who asked: lock events carry it (and the per-uid log share)
  // The open file description the request came through (the FUSE handle).
  // A POSIX lock keeps it, so that the last close of the description drops
  // the OFD locks taken through it (release_file).
  std::uint64_t file = 0;
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

// One contended lock domain, for the `locks` file and for tests.
struct ContendedLock {
  struct Queued {
    LockOwner owner;
    LockType type = LockType::Write;
    int prio = 0;  // its key in the RtMutex wait list
  };
  std::uint64_t key = 0;
  std::string file;
  bool flock = true;
  // Owner of the turn (exclusive holder, drainer or pending owner), if any.
  std::optional<LockOwner> owner;
  std::string role;  // "exclusive", "draining", "pending" or "" (no owner)
  int normal_prio = 0;
  int prio = 0;      // effective (boosted) priority of the owner's RtTask
  bool has_waiters = false;  // owner word bit1
  bool pending = false;      // owner word bit0
  std::vector<Queued> waiters;   // RtMutex queue order, top waiter first; then side waiters
  std::vector<HeldLock> holders; // granted locks of this domain
};

class LockService {
 public:
  using Done = std::function<void(Status)>;
  using Ticket = std::uint64_t;
  enum class WakeMode {
    immediate,  // a woken pending owner runs right after the waking operation
    deferred,   // ... only in run_wakeups() (tests script steals with it)
  };

  explicit LockService(Env& env, WakeMode mode = WakeMode::immediate);
  // Drops every lock and queued request without calling their callbacks
  // (the FUSE session is gone by then).
  ~LockService();
  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  // A ticket names one request. Take it before making the request so an
  // interrupt can be registered first: cancel() of a ticket whose request
  // has not arrived yet makes that request fail with EINTR when it does.
  // Locking: service lock. Context: any thread.
  Ticket new_ticket();

  // flock(2) on file `key`. `done` is called exactly once: at once when the
  // lock is granted or refused, or later (granted, or EINTR on cancel).
  // Locking: service lock, then RtMutex internals; callbacks run after it
  // is dropped. Context: FUSE worker; never blocks on a held lock.
  void flock(Ticket ticket, std::uint64_t key, const std::string& name, LockOwner owner,
             LockType type, bool wait, Done done);
  // F_SETLK / F_SETLKW. Locking, context: as flock.
  void setlk(Ticket ticket, std::uint64_t key, const std::string& name, LockOwner owner,
             LockType type, PosixRange range, bool wait, Done done);
  // F_GETLK: the first lock that would conflict, if any. Locking: service lock.
  std::optional<HeldLock> getlk(std::uint64_t key, const LockOwner& owner, LockType type,
                                PosixRange range) const;

  // Interrupt: a queued request leaves the queue at once (its owner's
  // boost of the holder goes) and completes with EINTR. Locking, context:
  // as flock (the FUSE interrupt handler).
  void cancel(Ticket ticket);
  // Close of an open file description: drops its flock (flock_release).
  void release_flock(std::uint64_t key, std::uint64_t owner);
  // Close by a lock owner (FUSE flush): drops its POSIX locks.
  void release_posix(std::uint64_t key, std::uint64_t owner);
  // Last close of an open file description (FUSE release): drops the
  // POSIX locks taken through it (LockOwner::file), i.e. its OFD locks
  // (fs/locks.c locks_remove_file -> locks_remove_posix(filp, filp)).
  void release_file(std::uint64_t key, std::uint64_t file);

  // Every granted lock on file `key`, both domains (POSIX locks split as
  // unlocks left them), for tests. Locking: service lock.
  std::vector<HeldLock> held(std::uint64_t key) const;

  // Who holds file `key` exclusively (flock LOCK_EX or a whole-file POSIX
  // write lock), for devices that care. Locking: service lock.
  std::optional<LockOwner> exclusive_holder(std::uint64_t key) const;

  // Every contended domain (a waiter queued, a drainer, or a pending
  // owner), by file. Locking: service lock, then each RtMutex's wait_lock.
  std::vector<ContendedLock> contended() const;
  // The contended-lock table for kernel/debug/vsysfs/locks (format in
  // devices/machine/lock_debug.hpp).
  void render(std::string& out) const;

  // Runs the wake-ups of pending owners queued so far (and those they
  // cause). Automatic after every operation with WakeMode::immediate.
  // Locking: service lock, dropped around callbacks. Context: any thread.
  void run_wakeups();

  // Requests the `lock` failure point holds back right now.
  static constexpr std::size_t kMaxLockDelayed = 16;
  std::size_t delayed() const;
  // The daemon stops serving (fs/server.cpp detach): the delay timer stops
  // for good and each held-back request is answered ENODEV (the session
  // still exists then, and libfuse frees a request only when it is
  // answered). Later blocking requests are not delayed. Locking: the
  // timer's, then the service lock, dropped around the callbacks.
  // Context: the thread that ends the session.
  void shutdown();

 private:
  struct Request;
  // A lock owner's RtTask. One per owner normally; a second request of an
  // owner whose task is already waiting (two threads of one process) gets
  // an extra slot.
  struct Slot {
    std::unique_ptr<RtTask> rt;
    LockOwner who;               // the requester it was made for
    Request* request = nullptr;  // its unfinished request (queued or draining)
    int turns = 0;               // domains where it is the exclusive holder
  };
  struct Domain {
    std::unique_ptr<RtMutex> mx;
    Slot* xholder = nullptr;     // owns mx: granted exclusive lock
    Request* drainer = nullptr;  // owns mx: waits for conflicting holders
  };
  struct File {
    std::string name;
    std::vector<HeldLock> held;
    Domain flock_dom, posix_dom;
    Domain& dom(bool flock) { return flock ? flock_dom : posix_dom; }
    const Domain& dom(bool flock) const { return flock ? flock_dom : posix_dom; }
  };
  struct Request {
    Ticket ticket = 0;
    std::uint64_t key = 0;
    bool flock = true;
    LockType type = LockType::Write;
    PosixRange range;
    LockOwner owner;
    Done done;
    Slot* slot = nullptr;
    bool draining = false;  // else queued in the RtMutex, or aside
    bool aside = false;     // waits beside the turn (no slot, not queued)
    bool waited = false;    // blocked at some point: logged "granted", not "acquired"
  };
  struct Wake {
    RtTask* task;
    RtMutex* lock;
  };
  // A blocking request the lock point holds back until `due`.
  struct Delayed {
    std::uint64_t key = 0;
    std::string name;
    bool flock = true;
    LockOwner owner;
    LockType type = LockType::Write;
    PosixRange range;
    Done done;
    Nanos due{0};
  };
  using Completions = std::vector<std::pair<Done, Status>>;

  File& file_of(std::uint64_t key, const std::string& name) REQUIRES(mu_);
  Slot& slot_for(const LockOwner& owner) REQUIRES(mu_);
  void gc_slots(std::uint64_t owner) REQUIRES(mu_);
  bool conflicts(const File& f, bool flock, LockType type, PosixRange range,
                 std::uint64_t owner) const REQUIRES(mu_);
  void apply(File& f, bool flock, LockType type, PosixRange range, const LockOwner& owner)
      REQUIRES(mu_);
  void drop(File& f, bool flock, std::uint64_t owner, PosixRange range) REQUIRES(mu_);
  bool holds_exclusive(const File& f, bool flock, std::uint64_t owner) const REQUIRES(mu_);
  // After any change of f.held in domain `flock`: the exclusive holder that
  // no longer holds an exclusive lock passes the turn on; a drainer that no
  // longer conflicts is granted.
  void settle(File& f, bool flock, Completions& out) REQUIRES(mu_);
  // r's slot owns the turn: grant r, or make it the drainer.
  void take_turn(File& f, Request& r, Completions& out) REQUIRES(mu_);
  void grant(File& f, Request& r, Completions& out) REQUIRES(mu_);
  void finish(Request& r, Status st, Completions& out) REQUIRES(mu_);
  void pass_turn(Domain& d, Slot& s) REQUIRES(mu_);
  void process_wake(const Wake& w, Completions& out) REQUIRES(mu_);
  // `decided`: the lock point already decided about this request (it
  // comes back from delay_tick): it is not held back again.
  void request(Ticket ticket, std::uint64_t key, const std::string& name, bool flock,
               LockOwner owner, LockType type, PosixRange range, bool wait, Done done,
               bool decided = false);
  void release(std::uint64_t key, bool flock, std::uint64_t owner);
  // Deadlock detection (fs/locks.c posix_locks_deadlock) over the owners
  // POSIX requests wait for.
  // The owners a POSIX request of `owner` for (type, range) on f waits for:
  // those of the granted locks it conflicts with and, if it queues for the
  // turn, the turn's owner (exclusive holder or drainer).
  void posix_blockers(const File& f, std::uint64_t owner, LockType type, PosixRange range,
                      bool queued, std::vector<std::uint64_t>& out) const REQUIRES(mu_);
  // Whether a chain of waiting POSIX owners leads from `from` to `target`
  // within kMaxDeadlkIterations steps: through conflicting locks, and also
  // through the turns the queued requests wait for if `through_turns`.
  bool posix_reaches(std::vector<std::uint64_t> from, std::uint64_t target,
                     bool through_turns) const REQUIRES(mu_);
  // The owner of the POSIX turn of f (exclusive holder or drainer), if any.
  std::optional<std::uint64_t> posix_turn_owner(const File& f) const REQUIRES(mu_);
  // Whether the POSIX turn of f is owned by `owner` or by an owner that
  // waits for it: a request of `owner` must not queue for that turn.
  bool turn_waits_for(const File& f, std::uint64_t owner) const REQUIRES(mu_);
  // Moves queued POSIX requests whose turn came to wait for them aside
  // (granted, side waiter or EDEADLK), until none is left.
  void resolve_turn_cycles(Completions& out) REQUIRES(mu_);
  // r (queued or new, not holding the turn) waits beside the turn, or is
  // granted / refused with EDEADLK at once.
  void wait_aside(File& f, Request& r, Completions& out) REQUIRES(mu_);
  // Grants the side waiters of f that no longer conflict; true if any.
  bool grant_side_waiters(File& f, Completions& out) REQUIRES(mu_);
  void complete(Completions& out) EXCLUDES(mu_);
  // cancel() of a queued, draining or side-waiting request; false when the
  // ticket names none (then a ticket not yet used is marked precancelled).
  bool cancel_queued_locked(Ticket ticket, Completions& out) REQUIRES(mu_);
  // The lock point's decision for a new blocking request: true when it
  // was held back (delayed_ has it; the caller returns).
  bool hold_back(Ticket ticket, std::uint64_t key, const std::string& name, bool flock,
                 const LockOwner& owner, LockType type, PosixRange range, Done& done) REQUIRES(mu_);
  void arm_delay_locked() REQUIRES(mu_);
  // The delay timer: serves the held-back requests that are due.
  void delay_tick() EXCLUDES(mu_);
  void log(const char* what, const std::string& file, bool flock, const LockOwner& owner,
           const char* result);

  Env& env_;
  const WakeMode mode_;
  // Order: mu_ -> RtTask::run_lock_ -> RtMutex::wait_lock_ -> RtTask::pi_lock_
  // -> wake_mu_ (the wake hook, under nothing of the rt-mutex) and the
  // EventLog's lock (the RtMutex observer). Callbacks run after mu_ is dropped.
  mutable Mutex mu_{"lock_service.mu"};
  std::map<std::uint64_t, File> files_ GUARDED_BY(mu_);
  std::map<Ticket, Request> requests_ GUARDED_BY(mu_);  // queued or draining
  std::map<std::uint64_t, std::vector<std::unique_ptr<Slot>>> slots_ GUARDED_BY(mu_);  // by owner
  std::set<Ticket> reserved_ GUARDED_BY(mu_);      // issued, request not yet made
  std::set<Ticket> precancelled_ GUARDED_BY(mu_);  // cancelled before the request came

  Mutex wake_mu_{"lock_service.wake_mu"};  // Order: leaf
  std::vector<Wake> wakes_ GUARDED_BY(wake_mu_);
  Ticket next_ticket_ GUARDED_BY(mu_) = 1;

  std::map<Ticket, Delayed> delayed_ GUARDED_BY(mu_);  // held back by the lock point
  bool stopped_ GUARDED_BY(mu_) = false;               // shutdown() ran
  // Armed at the earliest deadline of delayed_ (mod_timer under mu_: the
  // timer's lock and the clock's come after the service lock). Last: it
  // is stopped before what its callback uses goes.
  Timer delay_timer_;
};

}  // namespace vsysfs::core
