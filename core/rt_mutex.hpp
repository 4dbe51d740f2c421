#pragma once

// core/rt_mutex: the priority-inheritance rt-mutex of Linux 2.6.18, with the
// pending-owner hand-over and lock stealing of that era.
//
// Models: struct rt_mutex, struct rt_mutex_waiter and the PI fields of
// task_struct (prio, normal_prio, pi_waiters, pi_blocked_on, pi_lock).
// Sources: Documentation/rt-mutex.txt of 2.6.18 (the owner-word table), kernel/rtmutex.c and
// kernel/rtmutex_common.h of 2.6.18 (read as the 2.6.17-mm patches that
// became it and in 2.6.24, whose code differs only in names), lib/plist.c,
// and docs/kernel-semantics.md section 7 (7.2 owner word, 7.4 slow
// path, 7.5 chain walk, 7.6 stealing, 7.7 unlock, 7.9 scenarios).
//
// Deliberate 2.6.18 behaviour (each marked "Kernel quirk:" in the .cpp and
// tested): a detecting chain walk stops at a waiter that is not its owner's
// top PI waiter, so such a deadlock (or re-lock) is not reported; the depth
// limit counts owners visited; an interrupted pending owner still gets the
// lock; a pending owner gets the next waiter's possibly stale pi key.
// Not reproduced: 2.6.18's remove_waiter leaves a self-deadlocked task's own
// waiter in its pi_waiters; here it is cleaned up. Not modelled: priority
// changes of a running task (sched_setscheduler / rt_mutex_adjust_pi).
//
// Differences of mechanism, not of behaviour: the kernel wakes the new
// pending owner under wait_lock; here the wake-up (and the wake hook) runs
// once every internal lock is dropped.
//
// Thread-safety: every RtMutex and RtTask operation may be called from any
// thread; the state machine is protected as in the kernel by a per-lock
// wait_lock and a per-task pi_lock (order written at their declarations).
//
// Shape. The kernel's rt_mutex_slowlock() is one loop that sleeps in
// schedule(). Here that loop is cut at schedule() into a non-blocking core:
//
//   begin_lock(task, opts)  the fast path, then the slow path up to the first
//                           sleep: acquired, waiting, or an error (EDEADLK).
//   wake hook               wakeup_next_waiter() "wakes" the new pending
//                           owner by calling RtTask's wake hook (and
//                           notifying the task's own sleeper).
//   try_finish(task)        one more turn of the loop after a wake-up: the
//                           pending owner takes the lock, or finds it stolen
//                           and re-queues (waiting again).
//   cancel_wait(task, e)    the turn of the loop that sees a signal or an
//                           expired timer: like the kernel it first tries to
//                           take the lock, and only if that fails leaves the
//                           queue with e (EINTR, ETIMEDOUT).
//   unlock(task)            fast release, or hand-over to the top waiter.
//
// The three users: real threads call the blocking wrappers lock(),
// lock_interruptible(), lock_timed(), which sleep on the task's own
// condition variable between turns; deterministic tests call the core
// directly from one thread and script every interleaving; an asynchronous
// service (a waiting task is a pending FUSE request) calls begin_lock(),
// gets the wake hook later, calls try_finish() then, and cancel_wait() on a
// FUSE interrupt or a timer, with no thread blocked meanwhile.
//
// Lifetime: an RtTask must outlive every lock it owns or waits on. Its
// destructor waits until no other thread's chain walk or wake-up still holds
// a reference to it (the kernel's get_task_struct/put_task_struct).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace vsysfs::core {

class RtMutex;
class RtTask;

// ---------------------------------------------------------------------------
// Priorities (docs/kernel-semantics.md section 7.1): lower value = more important.
// 0..99 real-time, 100..139 normal; nice 0 is DEFAULT_PRIO.

inline constexpr int kMaxRtPrio = 100;                 // MAX_RT_PRIO
inline constexpr int kMaxPrio = kMaxRtPrio + 40;       // MAX_PRIO
inline constexpr int kDefaultPrio = kMaxRtPrio + 20;   // DEFAULT_PRIO

// The kernel's prio of a task from what /proc/<pid>/stat and sched_getparam
// show: SCHED_FIFO/RR rt_priority p (1..99) -> MAX_RT_PRIO-1-p = 99-p;
// otherwise nice n (-20..19) -> NICE_TO_PRIO(n) = 120+n. Out-of-range input is
// clamped to the nearest valid priority.
int kernel_prio_from_stat(int rt_priority, int nice, bool is_rt) noexcept;

// The deepest chain rt_mutex_adjust_prio_chain walks (sysctl
// kernel.max_lock_depth, default 1024). Process-wide, like the sysctl.
// Locking: atomic. Context: any thread.
int max_lock_depth() noexcept;
void set_max_lock_depth(int depth) noexcept;

namespace detail {

// struct rt_mutex_waiter. Lives inside its RtTask (the kernel keeps it on the
// stack of rt_mutex_slowlock; a task blocks on at most one lock).
struct RtMutexWaiter {
  // NULL once dequeued: by wakeup_next_waiter (the task became pending
  // owner) or by remove_waiter. Written under the lock's wait_lock; read by
  // chain walks holding other locks, hence atomic.
  std::atomic<RtTask*> task{nullptr};
  // Set by task_blocks_on_rt_mutex under the waiting task's pi_lock.
  RtMutex* lock = nullptr;
  // list_entry.prio, the key in lock->wait_list. Locking: lock's wait_lock
  // (plus the waiting task's pi_lock when written).
  int list_prio = 0;
  // pi_list_entry.prio, the key in the owner's pi_waiters. Locking: lock's
  // wait_lock when written; the owner's pi_lock while it is queued there.
  int pi_list_prio = 0;
};

// A plist (lib/plist.c) of waiters: ascending prio, and plist_add puts a node
// after every node of equal prio, so equal priorities are FIFO.
class WaiterPlist {
 public:
  explicit WaiterPlist(int RtMutexWaiter::*key) noexcept : key_(key) {}
  void add(RtMutexWaiter* w);
  // plist_del; like the kernel's list_del_init on an unlinked node, deleting
  // a waiter that is not on the list does nothing (returns false).
  bool del(RtMutexWaiter* w) noexcept;
  RtMutexWaiter* top() const noexcept { return nodes_.empty() ? nullptr : nodes_.front(); }
  bool empty() const noexcept { return nodes_.empty(); }
  bool contains(const RtMutexWaiter* w) const noexcept;
  const std::vector<RtMutexWaiter*>& nodes() const noexcept { return nodes_; }

 private:
  int RtMutexWaiter::*key_;
  std::vector<RtMutexWaiter*> nodes_;
};

}  // namespace detail

// ---------------------------------------------------------------------------
// Observation.

// The owner word as Documentation/rt-mutex.txt's table reads it.
struct OwnerWordState {
  const RtTask* owner = nullptr;  // task pointer bits
  bool pending = false;           // bit0, RT_MUTEX_OWNER_PENDING
  bool has_waiters = false;       // bit1, RT_MUTEX_HAS_WAITERS
  friend bool operator==(const OwnerWordState&, const OwnerWordState&) = default;
};
// "NULL 0 0", "A 1 0" ...: owner name (or NULL), bit1, bit0, in the order of
// that table's columns.
std::string to_string(const OwnerWordState& s);

struct WaiterInfo {
  const RtTask* task;
  int prio;  // the waiter's key in the lock's wait list (list_entry.prio)
  friend bool operator==(const WaiterInfo&, const WaiterInfo&) = default;
};

struct PiWaiterInfo {
  const RtTask* task;   // the waiting task
  const RtMutex* lock;  // the lock it waits on (owned by the task queried)
  int prio;             // its key in pi_waiters (pi_list_entry.prio)
  friend bool operator==(const PiWaiterInfo&, const PiWaiterInfo&) = default;
};

// A consistent picture of one lock, taken under its wait_lock.
struct RtMutexSnapshot {
  OwnerWordState word;
  std::vector<WaiterInfo> waiters;  // queue order: top waiter first
};

// What the optional observer hears about (for the daemon's event log).
struct RtMutexEvent {
  enum class Kind {
    handover,        // unlock with waiters: task = new pending owner, other = unlocker;
                     // old_prio = new_prio = task's prio
    steal,           // task stole the lock from the pending owner other;
                     // old_prio = other's prio, new_prio = task's
    boost,           // task's effective prio went from old_prio to new_prio (lower)
    deboost,         // ... went up (less important)
    max_lock_depth,  // a chain walk hit the limit: task started the walk, other
                     // is where it stopped, old_prio holds the limit
  };
  Kind kind;
  const RtMutex* lock;  // the lock whose queue change caused the event
  const RtTask* task;
  const RtTask* other = nullptr;
  int old_prio = 0;
  int new_prio = 0;
};
std::string_view to_string(RtMutexEvent::Kind k) noexcept;

// ---------------------------------------------------------------------------

// A task as the rt-mutex sees it: the PI part of task_struct.
// Thread-safety: the PI fields are guarded by pi_lock_; accessors take it and
// return a consistent value.
class alignas(8) RtTask {
 public:
  // Called when the task may be able to make progress on the lock it waits
  // for: it became pending owner (wakeup_next_waiter). Spurious calls are
  // possible (a stale wake-up after the wait already ended, or while
  // begin_lock is still running): the receiver answers with try_finish(),
  // which tells. Context: runs synchronously at the end of unlock(), on the
  // unlocking thread, with no rt-mutex internal lock held; it may call any
  // RtMutex operation, but the caller of unlock() must not hold a lock that
  // the hook takes.
  using WakeHook = std::function<void(RtTask&, RtMutex&)>;

  RtTask(std::string name, int pid, int normal_prio);
  ~RtTask();
  RtTask(const RtTask&) = delete;
  RtTask& operator=(const RtTask&) = delete;

  const std::string& name() const noexcept { return name_; }
  int pid() const noexcept { return pid_; }

  // normal_prio is immutable; prio (effective) is written under pi_lock and
  // read atomically. Context: any thread.
  int normal_prio() const noexcept { return normal_prio_; }
  int prio() const noexcept { return prio_.load(); }
  bool boosted() const noexcept { return prio() != normal_prio_; }
  // Top waiter of each lock this task owns, in pi_waiters order.
  // Locking: pi_lock. Context: any thread, not from an observer or hook.
  std::vector<PiWaiterInfo> pi_waiters() const;
  // The lock this task is enqueued on (pi_blocked_on), or nullptr. A pending
  // owner is no longer blocked. Locking: pi_lock. Context: as pi_waiters.
  const RtMutex* blocked_on() const;
  // The lock of an unfinished begin_lock() (enqueued, pending owner, or robbed
  // of pending ownership and not yet re-queued), or nullptr. Locking: atomic.
  const RtMutex* waiting_for() const noexcept { return slowlock_.load(); }

  // Set or replace the wake hook. Locking: sleep_lock. Context: any thread.
  void set_wake_hook(WakeHook hook);

 private:
  friend class RtMutex;

  // wake_up_process(): notify the task's sleeper (blocking wrappers) and
  // call the wake hook. Context: no rt-mutex internal lock held.
  void wake_up_process(RtMutex& lock);
  void get_task_struct() noexcept { usage_.fetch_add(1); }
  void put_task_struct() noexcept;

  const std::string name_;
  const int pid_;
  const int normal_prio_;

  // Lock order, outermost first (as kernel/rtmutex.c, plus run_lock_ which
  // stands for "the task is executing its own lock call"):
  //   run_lock_  ->  RtMutex::wait_lock_  ->  RtTask::pi_lock_
  // Only one pi_lock_ is held at a time. rt_mutex_adjust_prio_chain is the
  // one place that holds a pi_lock_ and wants a wait_lock_ (inverted): it
  // try-locks and backs off. sleep_lock_ is a leaf, taken with nothing else.
  std::mutex run_lock_;
  mutable std::mutex pi_lock_;

  // Guarded by pi_lock_ (prio_ is written under it and read lock-free by
  // try_to_steal_lock, as the kernel reads current->prio).
  std::atomic<int> prio_;
  detail::WaiterPlist pi_waiters_{&detail::RtMutexWaiter::pi_list_prio};
  detail::RtMutexWaiter* pi_blocked_on_ = nullptr;
  detail::RtMutexWaiter waiter_;

  // The unfinished slow-path lock call. Guarded by run_lock_ (atomic for
  // waiting_for()).
  std::atomic<RtMutex*> slowlock_{nullptr};
  bool detect_deadlock_ = false;

  // The sleeper of the blocking wrappers.
  std::mutex sleep_lock_;
  std::condition_variable wake_cv_;
  bool woken_ = false;   // Guarded by sleep_lock_.
  WakeHook wake_hook_;   // Guarded by sleep_lock_.

  std::atomic<int> usage_{0};  // references held by other threads' operations
};

static_assert(alignof(RtTask) >= 4, "bits 0 and 1 of the owner word must be free");

struct LockOptions {
  // Full deadlock detection (rt_mutex_lock_interruptible(lock, 1)): skip the
  // fast path, walk the chain even when not the top waiter, and fail with
  // EDEADLK on a cycle, on re-locking an owned lock, or past max_lock_depth.
  // Without it a cycle simply blocks forever, as in 2.6.18 (only a timeout
  // or an interrupt ends the wait).
  bool detect_deadlock = false;
};

enum class LockStep {
  acquired,     // the task owns the lock (pending bit clear)
  waiting,      // enqueued (or robbed and re-queued); wait for the wake hook
  not_waiting,  // try_finish/cancel_wait: this task has no unfinished lock
                // call on this lock (a stale wake-up or a double cancel)
};
std::string_view to_string(LockStep s) noexcept;

// struct rt_mutex.
// Thread-safety: any thread; the owner word is an atomic changed by
// compare-exchange on the fast paths and under wait_lock_ otherwise.
class RtMutex {
 public:
  using Observer = std::function<void(const RtMutexEvent&)>;
  // Points in the slow path where a test may look at the owner word.
  enum class TestPoint {
    after_mark_waiters,  // try_to_take_rt_mutex, right after mark_rt_mutex_waiters
  };
  using TestHook = std::function<void(TestPoint, RtTask&)>;

  explicit RtMutex(std::string name = {});
  ~RtMutex();
  RtMutex(const RtMutex&) = delete;
  RtMutex& operator=(const RtMutex&) = delete;

  const std::string& name() const noexcept { return name_; }

  // --- Blocking API (real threads) -------------------------------------
  // The calling thread acts as `task`; one thread per task at a time.

  // rt_mutex_lock: uninterruptible, no deadlock detection; a deadlock
  // blocks forever. Locking: as begin_lock. Context: thread that may sleep.
  void lock(RtTask& task);
  // rt_mutex_lock_interruptible: 0, EINTR once `stop` is requested (a stop
  // already requested on entry only allows an uncontended acquire), EDEADLK
  // with detection. Locking: as begin_lock; sleeps on the task's own
  // condition variable with no lock held. Context: thread that may sleep.
  Status lock_interruptible(RtTask& task, std::stop_token stop, LockOptions opts = {});
  // rt_mutex_timed_lock (interruptible too): 0, ETIMEDOUT at `deadline`,
  // EINTR on `stop`, EDEADLK with detection. Locking: as
  // lock_interruptible. Context: thread that may sleep.
  Status lock_timed(RtTask& task, std::chrono::steady_clock::time_point deadline,
                    LockOptions opts = {}, std::stop_token stop = {});
  // rt_mutex_trylock: never blocks; false if contended or already owned by
  // task; may steal from a lower-priority pending owner.
  // Locking: cmpxchg, else wait_lock. Context: any thread.
  bool trylock(RtTask& task);
  // rt_mutex_unlock: task must own the lock (debug builds assert). With
  // waiters the top waiter becomes pending owner and is woken, then task is
  // deboosted. Locking: cmpxchg, else wait_lock, then task's pi_lock; the
  // wake hook runs after both are dropped. Context: any thread.
  void unlock(RtTask& task);

  // --- Non-blocking core (deterministic tests, asynchronous service) ----

  // The fast path (unless opts.detect_deadlock), then rt_mutex_slowlock up to
  // its first schedule(): acquired; waiting (the task is enqueued, the owner
  // boosted and the chain walked; the wake hook will fire); or EDEADLK
  // (detection only; nothing left enqueued). EBUSY if task already has an
  // unfinished lock call. Locking: task's run_lock, wait_lock, pi_locks;
  // the chain walk drops wait_lock. Context: any thread, never blocks on
  // the rt-mutex itself.
  Result<LockStep> begin_lock(RtTask& task, LockOptions opts = {});
  // One more turn of the slow-path loop after a wake-up: acquired; waiting
  // (spurious wake, or the lock was stolen and task re-queued); EDEADLK when
  // the re-queue detects a deadlock; not_waiting if task has no unfinished
  // call on this lock. Locking: as begin_lock. Context: any thread.
  Result<LockStep> try_finish(RtTask& task);
  // The turn that sees a signal or an expired timer: try_to_take_rt_mutex
  // first (a pending owner still gets the lock: acquired), else remove the
  // waiter, deboost the owner, re-walk the chain, re-adjust task's own prio,
  // and return `reason`. not_waiting if nothing to cancel.
  // Locking: as begin_lock. Context: any thread (e.g. a timer or the FUSE
  // interrupt handler).
  Result<LockStep> cancel_wait(RtTask& task, Errno reason);

  // --- Observation ------------------------------------------------------

  // The owner word, read atomically. Locking: none. Context: any, including
  // the test hook and the observer.
  OwnerWordState owner_word_state() const noexcept;
  // rt_mutex_owner (a pending owner included). Locking: none.
  RtTask* owner() const noexcept;
  bool is_locked() const noexcept { return owner() != nullptr; }
  // Waiters in queue order. Locking: wait_lock. Context: not from the
  // observer or the test hook (they run under wait_lock).
  std::vector<WaiterInfo> waiters() const;
  // Owner word and waiters, consistent with each other (for the `locks`
  // file). Locking: wait_lock. Context: as waiters().
  RtMutexSnapshot snapshot() const;

  // Called on hand-over, steal, boost, deboost and max_lock_depth, with
  // wait_lock and/or a pi_lock held: it must not call into any RtMutex or
  // RtTask (except owner_word_state) and should be quick. Set before the lock
  // is shared between threads (not synchronized).
  void set_observer(Observer observer) { observer_ = std::move(observer); }
  // Test-only hook; same rules as the observer.
  void set_test_hook(TestHook hook) { test_hook_ = std::move(hook); }

 private:
  using Waiter = detail::RtMutexWaiter;

  // Owner word helpers (rtmutex_common.h / rtmutex.c).
  static constexpr std::uintptr_t kOwnerPending = 1;  // RT_MUTEX_OWNER_PENDING
  static constexpr std::uintptr_t kHasWaiters = 2;    // RT_MUTEX_HAS_WAITERS
  static constexpr std::uintptr_t kOwnerMask = 3;     // RT_MUTEX_OWNER_MASKALL
  static std::uintptr_t word_of(const RtTask* t) noexcept;
  bool rt_mutex_owner_pending() const noexcept;
  bool rt_mutex_has_waiters() const noexcept { return !wait_list_.empty(); }
  Waiter* rt_mutex_top_waiter() const noexcept { return wait_list_.top(); }
  void store_owner(std::uintptr_t word) noexcept;
  bool rt_mutex_cmpxchg(std::uintptr_t expected, std::uintptr_t desired) noexcept;
  void rt_mutex_set_owner(RtTask* owner, std::uintptr_t mask) noexcept;
  void mark_rt_mutex_waiters() noexcept;
  void clear_rt_mutex_waiters() noexcept;
  void fixup_rt_mutex_waiters() noexcept;

  // Priority (rt_mutex_getprio, __rt_mutex_adjust_prio, rt_mutex_adjust_prio).
  static int rt_mutex_getprio(const RtTask& task) noexcept;
  static void adjust_prio_locked(RtTask& task, const RtMutex& cause);
  static void rt_mutex_adjust_prio(RtTask& task, const RtMutex& cause);

  // The slow path, kernel names. All REQUIRE wait_lock_ (held by `wl`).
  bool try_to_take_rt_mutex(RtTask& current);
  bool try_to_steal_lock(RtTask& current);
  Status task_blocks_on_rt_mutex(RtTask& current, bool detect_deadlock,
                                 std::unique_lock<std::mutex>& wl);
  RtTask* wakeup_next_waiter(RtTask& current);
  void remove_waiter(RtTask& current, std::unique_lock<std::mutex>& wl);
  // Called without any lock; consumes a reference on task.
  static Status rt_mutex_adjust_prio_chain(RtTask* task, bool deadlock_detect,
                                           RtMutex* orig_lock, Waiter* orig_waiter,
                                           RtTask* top_task);
  // The loop of rt_mutex_slowlock from its try_to_take_rt_mutex to the next
  // schedule() or the exit. REQUIRES current.run_lock_.
  Result<LockStep> slowlock_loop(RtTask& current, std::optional<Errno> abort, bool first);
  bool slowtrylock(RtTask& current);
  RtTask* slowunlock(RtTask& current);
  Status blocking_wait(RtTask& task, std::optional<std::chrono::steady_clock::time_point> deadline,
                       const std::stop_token* stop, LockOptions opts);

  void check_invariants(bool exact) const noexcept;
  void emit(const RtMutexEvent& ev) const;

  const std::string name_;
  // bit0 pending owner, bit1 has waiters; see Documentation/rt-mutex.txt. Changed by
  // cmpxchg only while both bits are clear, otherwise under wait_lock_.
  std::atomic<std::uintptr_t> owner_{0};
  // Lock order: RtTask::run_lock_ -> wait_lock_ -> RtTask::pi_lock_ (see
  // RtTask). Never two wait_locks at once: task_blocks_on_rt_mutex and
  // remove_waiter drop this one before walking the chain.
  mutable std::mutex wait_lock_;
  detail::WaiterPlist wait_list_{&detail::RtMutexWaiter::list_prio};  // Guarded by wait_lock_.
  Observer observer_;
  TestHook test_hook_;
};

}  // namespace vsysfs::core
