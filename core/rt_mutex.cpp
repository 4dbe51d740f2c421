// core/rt_mutex: see the header for what this models and its sources.
// Function names and the order of steps follow kernel/rtmutex.c (2.6.18);
// comments quote its reasoning where it explains a step.

#include "core/rt_mutex.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#ifndef VSYSFS_DEBUG_CHECKS
#define VSYSFS_DEBUG_CHECKS 0
#endif

namespace vsysfs::core {

namespace {

std::atomic<int> g_max_lock_depth{1024};

#if VSYSFS_DEBUG_CHECKS
[[noreturn]] void rt_check_failed(const char* cond, const char* what, const char* file, int line) {
  std::fprintf(stderr, "%s:%d: rt_mutex check failed: %s (%s)\n", file, line, what, cond);
  std::abort();
}
#endif

}  // namespace

#if VSYSFS_DEBUG_CHECKS
#define VSYSFS_RT_CHECK(cond, what)                                       \
  do {                                                                    \
    if (!(cond)) rt_check_failed(#cond, what, __FILE__, __LINE__);        \
  } while (0)
#else
#define VSYSFS_RT_CHECK(cond, what) \
  do {                              \
  } while (0)
#endif

int kernel_prio_from_stat(int rt_priority, int nice, bool is_rt) noexcept {
  if (is_rt) {
    // MAX_RT_PRIO-1 - rt_priority (normal_prio() for SCHED_FIFO/SCHED_RR).
    return kMaxRtPrio - 1 - std::clamp(rt_priority, 1, kMaxRtPrio - 1);
  }
  return kDefaultPrio + std::clamp(nice, -20, 19);  // NICE_TO_PRIO
}

int max_lock_depth() noexcept { return g_max_lock_depth.load(); }
void set_max_lock_depth(int depth) noexcept { g_max_lock_depth.store(depth); }

std::string_view to_string(RtMutexEvent::Kind k) noexcept {
  switch (k) {
    case RtMutexEvent::Kind::handover: return "handover";
    case RtMutexEvent::Kind::steal: return "steal";
    case RtMutexEvent::Kind::boost: return "boost";
    case RtMutexEvent::Kind::deboost: return "deboost";
    case RtMutexEvent::Kind::max_lock_depth: return "max_lock_depth";
  }
  return "?";
}

std::string_view to_string(LockStep s) noexcept {
  switch (s) {
    case LockStep::acquired: return "acquired";
    case LockStep::waiting: return "waiting";
    case LockStep::not_waiting: return "not_waiting";
  }
  return "?";
}

std::string to_string(const OwnerWordState& s) {
  std::string out = s.owner ? s.owner->name() : std::string("NULL");
  out += s.has_waiters ? " 1" : " 0";
  out += s.pending ? " 1" : " 0";
  return out;
}

// ---------------------------------------------------------------------------
// plist

namespace detail {

void WaiterPlist::add(RtMutexWaiter* w) {
  // plist_add: after the last node whose prio is <= the new one (FIFO among
  // equals).
  const int prio = w->*key_;
  auto it = std::upper_bound(nodes_.begin(), nodes_.end(), prio,
                             [this](int p, const RtMutexWaiter* n) { return p < n->*key_; });
  nodes_.insert(it, w);
}

bool WaiterPlist::del(RtMutexWaiter* w) noexcept {
  auto it = std::find(nodes_.begin(), nodes_.end(), w);
  if (it == nodes_.end()) return false;
  nodes_.erase(it);
  return true;
}

bool WaiterPlist::contains(const RtMutexWaiter* w) const noexcept {
  return std::find(nodes_.begin(), nodes_.end(), w) != nodes_.end();
}

}  // namespace detail

// ---------------------------------------------------------------------------
// RtTask

RtTask::RtTask(std::string name, int pid, int normal_prio)
    : name_(std::move(name)), pid_(pid), normal_prio_(normal_prio), prio_(normal_prio) {}

RtTask::~RtTask() {
  // put_task_struct: wait until no other thread's chain walk or wake-up
  // still refers to this task.
  for (int n = usage_.load(); n != 0; n = usage_.load()) usage_.wait(n);
  std::lock_guard pl(pi_lock_);
  VSYSFS_RT_CHECK(slowlock_.load() == nullptr, "task destroyed inside a lock call");
  VSYSFS_RT_CHECK(pi_blocked_on_ == nullptr, "task destroyed while blocked");
  VSYSFS_RT_CHECK(pi_waiters_.empty(), "task destroyed while owning a lock with waiters");
}

void RtTask::put_task_struct() noexcept {
  if (usage_.fetch_sub(1) == 1) usage_.notify_all();
}

std::vector<PiWaiterInfo> RtTask::pi_waiters() const {
  std::lock_guard pl(pi_lock_);
  std::vector<PiWaiterInfo> out;
  for (const detail::RtMutexWaiter* w : pi_waiters_.nodes()) {
    out.push_back({w->task.load(), w->lock, w->pi_list_prio});
  }
  return out;
}

const RtMutex* RtTask::blocked_on() const {
  std::lock_guard pl(pi_lock_);
  return pi_blocked_on_ ? pi_blocked_on_->lock : nullptr;
}

void RtTask::set_wake_hook(WakeHook hook) {
  std::lock_guard sl(sleep_lock_);
  wake_hook_ = std::move(hook);
}

void RtTask::wake_up_process(RtMutex& lock) {
  WakeHook hook;
  {
    std::lock_guard sl(sleep_lock_);
    woken_ = true;
    hook = wake_hook_;
  }
  wake_cv_.notify_all();
  if (hook) hook(*this, lock);
}

// ---------------------------------------------------------------------------
// RtMutex: owner word

RtMutex::RtMutex(std::string name) : name_(std::move(name)) {}

RtMutex::~RtMutex() {
  // rt_mutex_destroy: WARN_ON(rt_mutex_is_locked(lock)).
  VSYSFS_RT_CHECK(owner_.load() == 0, "rt_mutex destroyed while locked");
  VSYSFS_RT_CHECK(wait_list_.empty(), "rt_mutex destroyed with waiters");
}

std::uintptr_t RtMutex::word_of(const RtTask* t) noexcept {
  return reinterpret_cast<std::uintptr_t>(t);
}

RtTask* RtMutex::owner() const noexcept {
  return reinterpret_cast<RtTask*>(owner_.load() & ~kOwnerMask);
}

bool RtMutex::rt_mutex_owner_pending() const noexcept {
  return (owner_.load() & kOwnerPending) != 0;
}

OwnerWordState RtMutex::owner_word_state() const noexcept {
  const std::uintptr_t w = owner_.load();
  OwnerWordState s{reinterpret_cast<const RtTask*>(w & ~kOwnerMask), (w & kOwnerPending) != 0,
                   (w & kHasWaiters) != 0};
  VSYSFS_RT_CHECK(s.owner != nullptr || !s.pending, "invalid owner word (NULL owner, pending bit)");
  return s;
}

// Every slow-path store goes through here so that the two invalid
// states (NULL owner with bit0 set) can never be written.
void RtMutex::store_owner(std::uintptr_t word) noexcept {
  VSYSFS_RT_CHECK((word & ~kOwnerMask) != 0 || (word & kOwnerPending) == 0,
                  "invalid owner word (NULL owner, pending bit)");
  owner_.store(word);
}

bool RtMutex::rt_mutex_cmpxchg(std::uintptr_t expected, std::uintptr_t desired) noexcept {
  return owner_.compare_exchange_strong(expected, desired);
}

void RtMutex::rt_mutex_set_owner(RtTask* new_owner, std::uintptr_t mask) noexcept {
  std::uintptr_t val = word_of(new_owner) | mask;
  if (rt_mutex_has_waiters()) val |= kHasWaiters;
  store_owner(val);
}

// cmpxchg loop: a fast-path acquire or release may race with us until the
// bit is set; after that both fast paths fail and wait_lock serializes.
void RtMutex::mark_rt_mutex_waiters() noexcept {
  std::uintptr_t w = owner_.load();
  while (!owner_.compare_exchange_weak(w, w | kHasWaiters)) {
  }
}

void RtMutex::clear_rt_mutex_waiters() noexcept { store_owner(owner_.load() & ~kHasWaiters); }

void RtMutex::fixup_rt_mutex_waiters() noexcept {
  if (!rt_mutex_has_waiters()) clear_rt_mutex_waiters();
}

// Debug check of the owner word against the wait list. Locking: wait_lock.
// Whenever wait_lock is released a lock with waiters has an owner and the
// waiters bit; at the end of a slow-path operation (exact) the bit also
// means there are waiters. (In between, remove_waiter may drop wait_lock
// for its chain walk with the bit still set over an empty list; the
// exiting path fixes it up.)
void RtMutex::check_invariants(bool exact) const noexcept {
#if VSYSFS_DEBUG_CHECKS
  const OwnerWordState s = owner_word_state();
  if (rt_mutex_has_waiters()) {
    VSYSFS_RT_CHECK(s.owner != nullptr && s.has_waiters, "waiters without owner or waiters bit");
  } else if (exact) {
    VSYSFS_RT_CHECK(!s.has_waiters, "waiters bit without waiters");
  }
#else
  (void)exact;
#endif
}

void RtMutex::emit(const RtMutexEvent& ev) const {
  if (observer_) observer_(ev);
}

// ---------------------------------------------------------------------------
// Priority

// rt_mutex_getprio: normal_prio, or the top PI waiter's prio if more
// important. Locking: task's pi_lock.
int RtMutex::rt_mutex_getprio(const RtTask& task) noexcept {
  if (task.pi_waiters_.empty()) return task.normal_prio_;
  return std::min(task.pi_waiters_.top()->pi_list_prio, task.normal_prio_);
}

// __rt_mutex_adjust_prio. Locking: task's pi_lock.
void RtMutex::adjust_prio_locked(RtTask& task, const RtMutex& cause) {
  const int prio = rt_mutex_getprio(task);
  const int old = task.prio_.load();
  if (old == prio) return;
  task.prio_.store(prio);  // rt_mutex_setprio
  cause.emit({prio < old ? RtMutexEvent::Kind::boost : RtMutexEvent::Kind::deboost, &cause,
              &task, nullptr, old, prio});
}

// rt_mutex_adjust_prio: undo (or apply) boosting outside wait_lock.
// Locking: takes task's pi_lock.
void RtMutex::rt_mutex_adjust_prio(RtTask& task, const RtMutex& cause) {
  std::lock_guard pl(task.pi_lock_);
  adjust_prio_locked(task, cause);
}

// ---------------------------------------------------------------------------
// Chain walk

// rt_mutex_adjust_prio_chain: propagate a priority change along
// "task is blocked on lock owned by task'" links, also used for deadlock
// detection. Consumes the reference on `task` taken by the caller. Returns
// EDEADLK only when deadlock_detect.
// Locking: takes task pi_locks and try-locks wait_locks, never more than one
// of each; called with none held. Context: the thread of top_task's call.
Status RtMutex::rt_mutex_adjust_prio_chain(RtTask* task, bool deadlock_detect, RtMutex* orig_lock,
                                           Waiter* orig_waiter, RtTask* top_task) {
  Waiter* top_waiter = orig_waiter;
  // debug_rt_mutex_detect_deadlock() of a non-debug kernel: the caller's flag.
  const bool detect_deadlock = deadlock_detect;
  int depth = 0;
  Status ret;

  // "The (de)boosting is a step by step approach with a lot of pitfalls. We
  // want this to be preemptible and we want hold a maximum of two locks per
  // step. So we have to check carefully whether things change under us."
again:
  // Kernel quirk: depth counts the owners visited, and the limit is checked
  // before looking whether this owner is blocked at all, so a chain of
  // exactly max_lock_depth owners is already "too deep".
  if (++depth > max_lock_depth()) {
    // The kernel printk()s "Maximum lock depth %d reached task: %s (%d)"
    // once per limit value; the observer hears about every occurrence.
    if (orig_lock != nullptr) {
      orig_lock->emit({RtMutexEvent::Kind::max_lock_depth, orig_lock, top_task, task,
                       max_lock_depth(), 0});
    }
    task->put_task_struct();
    return deadlock_detect ? Status(Errno{EDEADLK}) : Status();
  }
retry:
  task->pi_lock_.lock();
  {
    Waiter* waiter = task->pi_blocked_on_;
    // End of the chain, or the chain changed while the locks were dropped.
    if (waiter == nullptr || waiter->task.load() == nullptr) goto out_unlock_pi;
    // "After we dropped the locks, the previous owner of the lock might have
    // released the lock and made us the pending owner."
    if (orig_waiter != nullptr && orig_waiter->task.load() == nullptr) goto out_unlock_pi;
    // Boost mode: stop when the waiter that started this step is no longer
    // task's top PI waiter (top_waiter is NULL in deboost mode).
    // Kernel quirk: this stops a detecting walk too, so 2.6.18 reports no
    // deadlock (and does not boost) through a waiter that is not its
    // owner's top PI waiter; later kernels keep walking when detecting.
    if (top_waiter != nullptr &&
        (task->pi_waiters_.empty() || top_waiter != task->pi_waiters_.top())) {
      goto out_unlock_pi;
    }
    // Without detection, stop as soon as no further adjustment is needed.
    if (!detect_deadlock && waiter->list_prio == task->prio_.load()) goto out_unlock_pi;

    RtMutex* lock = waiter->lock;
    // Lock order is wait_lock -> pi_lock; here it is inverted: back off.
    if (!lock->wait_lock_.try_lock()) {
      task->pi_lock_.unlock();
      std::this_thread::yield();  // cpu_relax()
      goto retry;
    }

    // Deadlock detection: the chain came back to the lock we block on, or to
    // a lock we own. Without detection this is not an error: 2.6.18 returns
    // 0 and the task sleeps in the cycle until a timeout or signal.
    if (lock == orig_lock || lock->owner() == top_task) {
      lock->wait_lock_.unlock();
      ret = deadlock_detect ? Status(Errno{EDEADLK}) : Status();
      goto out_unlock_pi;
    }

    top_waiter = lock->rt_mutex_top_waiter();

    // Requeue the waiter with task's new prio.
    lock->wait_list_.del(waiter);
    waiter->list_prio = task->prio_.load();
    lock->wait_list_.add(waiter);

    // Release the task, grab the next one (the lock's owner cannot go away
    // while we hold its wait_lock and it has waiters).
    task->pi_lock_.unlock();
    task->put_task_struct();
    task = lock->owner();
    VSYSFS_RT_CHECK(task != nullptr, "a lock with waiters has an owner");
    task->get_task_struct();
    {
      std::lock_guard pl(task->pi_lock_);
      if (waiter == lock->rt_mutex_top_waiter()) {
        // Boost the owner.
        task->pi_waiters_.del(top_waiter);
        waiter->pi_list_prio = waiter->list_prio;
        task->pi_waiters_.add(waiter);
        adjust_prio_locked(*task, *lock);
      } else if (top_waiter == waiter) {
        // Deboost the owner.
        task->pi_waiters_.del(waiter);
        waiter = lock->rt_mutex_top_waiter();
        waiter->pi_list_prio = waiter->list_prio;
        task->pi_waiters_.add(waiter);
        adjust_prio_locked(*task, *lock);
      }
    }
    top_waiter = lock->rt_mutex_top_waiter();
    lock->wait_lock_.unlock();

    if (!detect_deadlock && waiter != top_waiter) goto out_put_task;
    goto again;
  }

out_unlock_pi:
  task->pi_lock_.unlock();
out_put_task:
  task->put_task_struct();
  return ret;
}

// ---------------------------------------------------------------------------
// Taking the lock

// try_to_steal_lock: "check if we can steal the lock from the assigned
// pending owner [which might not have taken the lock yet]". Only a strictly
// more important task may steal. Locking: wait_lock; takes the pending
// owner's pi_lock, then current's.
bool RtMutex::try_to_steal_lock(RtTask& current) {
  RtTask* pendowner = owner();
  if (!rt_mutex_owner_pending()) return false;
  if (pendowner == &current) return true;

  Waiter* next = nullptr;
  {
    std::lock_guard pl(pendowner->pi_lock_);
    if (current.prio_.load() >= pendowner->prio_.load()) return false;

    emit({RtMutexEvent::Kind::steal, this, &current, pendowner, pendowner->prio_.load(),
          current.prio_.load()});
    if (!rt_mutex_has_waiters()) return true;

    // No chain handling: the pending owner is not blocked on anything.
    next = rt_mutex_top_waiter();
    pendowner->pi_waiters_.del(next);
    adjust_prio_locked(*pendowner, *this);
  }

  // "We are going to steal the lock and a waiter was enqueued on the pending
  // owners pi_waiters queue. So we have to enqueue this waiter into
  // current->pi_waiters list." next->task can be current when current is an
  // enqueued waiter whose prio rose above the pending owner's.
  if (next->task.load() != &current) {
    std::lock_guard pl(current.pi_lock_);
    current.pi_waiters_.add(next);
    adjust_prio_locked(current, *this);
  }
  return true;
}

// try_to_take_rt_mutex: fails when the lock has a real owner, or a pending
// owner current may not steal from. Locking: wait_lock.
bool RtMutex::try_to_take_rt_mutex(RtTask& current) {
  // Setting the waiters bit first makes the fast paths fail, so the owner
  // word cannot change under us. If the lock turns out to be free this leaves
  // owner == NULL with the waiters bit: Documentation/rt-mutex.txt's "transitional state",
  // fixed up when we take ownership below.
  mark_rt_mutex_waiters();
  if (test_hook_) test_hook_(TestPoint::after_mark_waiters, current);

  if (owner() != nullptr && !try_to_steal_lock(current)) return false;

  rt_mutex_set_owner(&current, 0);
  return true;
}

// task_blocks_on_rt_mutex: enqueue current's waiter, boost the owner if it is
// the new top waiter, and walk the chain if the owner is itself blocked (or,
// with detection, always). Locking: wait_lock held by wl on entry and exit;
// dropped around the chain walk.
Status RtMutex::task_blocks_on_rt_mutex(RtTask& current, bool detect_deadlock,
                                        std::unique_lock<std::mutex>& wl) {
  RtTask* owner_task = owner();
  Waiter* waiter = &current.waiter_;
  Waiter* top_waiter = waiter;
  bool chain_walk = false;

  {
    std::lock_guard pl(current.pi_lock_);
    adjust_prio_locked(current, *this);
    waiter->task.store(&current);
    waiter->lock = this;
    waiter->list_prio = current.prio_.load();
    waiter->pi_list_prio = current.prio_.load();
    if (rt_mutex_has_waiters()) top_waiter = rt_mutex_top_waiter();
    wait_list_.add(waiter);
    current.pi_blocked_on_ = waiter;
  }

  if (waiter == rt_mutex_top_waiter()) {
    std::lock_guard pl(owner_task->pi_lock_);
    owner_task->pi_waiters_.del(top_waiter);
    owner_task->pi_waiters_.add(waiter);
    adjust_prio_locked(*owner_task, *this);
    if (owner_task->pi_blocked_on_ != nullptr) chain_walk = true;
  } else if (detect_deadlock) {
    chain_walk = true;
  }

  if (!chain_walk) return {};

  // The owner cannot disappear while holding the lock; the reference keeps
  // it alive after wait_lock is dropped.
  owner_task->get_task_struct();
  wl.unlock();
  Status res = rt_mutex_adjust_prio_chain(owner_task, detect_deadlock, this, waiter, &current);
  wl.lock();
  return res;
}

// wakeup_next_waiter: dequeue the top waiter, make it pending owner, move the
// lock's next top waiter into its pi_waiters. Returns the task to wake, with
// a reference held (the kernel wakes it here, under wait_lock; we wake it
// once every internal lock is dropped so the hook may call back in).
// Locking: wait_lock; takes current's pi_lock, then the pending owner's.
RtTask* RtMutex::wakeup_next_waiter(RtTask& current) {
  Waiter* waiter = nullptr;
  RtTask* pendowner = nullptr;
  {
    std::lock_guard pl(current.pi_lock_);
    waiter = rt_mutex_top_waiter();
    wait_list_.del(waiter);
    // "We do not adjust a possible priority boost right now. We execute
    // wakeup in the boosted mode and go back to normal after releasing
    // lock->wait_lock."
    current.pi_waiters_.del(waiter);
    pendowner = waiter->task.load();
    waiter->task.store(nullptr);
    rt_mutex_set_owner(pendowner, kOwnerPending);
  }
  emit({RtMutexEvent::Kind::handover, this, pendowner, &current, pendowner->prio_.load(),
        pendowner->prio_.load()});

  {
    std::lock_guard pl(pendowner->pi_lock_);
    VSYSFS_RT_CHECK(pendowner->pi_blocked_on_ == waiter, "pending owner was blocked on this lock");
    pendowner->pi_blocked_on_ = nullptr;
    // "Enqueue a possible waiter into the pi_waiters list of the pending
    // owner. This prevents that in case the pending owner gets unboosted a
    // waiter with higher priority than pending-owner->normal_prio is
    // blocked on the unboosted (pending) owner."
    // Kernel quirk: the pending owner's prio is not recomputed here, and the
    // waiter goes in with its pi_list_entry.prio as last set, which is stale
    // if a chain walk requeued it while it was not the top waiter.
    if (rt_mutex_has_waiters()) pendowner->pi_waiters_.add(rt_mutex_top_waiter());
  }
  pendowner->get_task_struct();
  return pendowner;
}

// remove_waiter: dequeue current's waiter after a timeout, signal or
// deadlock; if it was the top waiter, hand the owner the next top waiter
// instead, readjust its prio and re-walk its chain (deboost mode, no
// detection). Locking: wait_lock held by wl; dropped around the chain walk.
void RtMutex::remove_waiter(RtTask& current, std::unique_lock<std::mutex>& wl) {
  Waiter* waiter = &current.waiter_;
  const bool first = waiter == rt_mutex_top_waiter();
  RtTask* owner_task = owner();
  bool chain_walk = false;

  {
    std::lock_guard pl(current.pi_lock_);
    wait_list_.del(waiter);
    waiter->task.store(nullptr);
    current.pi_blocked_on_ = nullptr;
  }

  if (first && owner_task != &current) {
    std::lock_guard pl(owner_task->pi_lock_);
    owner_task->pi_waiters_.del(waiter);
    if (rt_mutex_has_waiters()) owner_task->pi_waiters_.add(rt_mutex_top_waiter());
    adjust_prio_locked(*owner_task, *this);
    if (owner_task->pi_blocked_on_ != nullptr) chain_walk = true;
  } else if (first) {
    // Kernel bug, not reproduced: 2.6.18 skips the owner == current case and
    // leaves current's own waiter (on its stack) in its pi_waiters after a
    // self-deadlock, and no top waiter there after current stole the lock as
    // an enqueued top waiter. Clean both up.
    std::lock_guard pl(current.pi_lock_);
    current.pi_waiters_.del(waiter);
    if (rt_mutex_has_waiters()) {
      Waiter* next = rt_mutex_top_waiter();
      if (!current.pi_waiters_.contains(next)) current.pi_waiters_.add(next);
    }
    adjust_prio_locked(current, *this);
  }

  if (!chain_walk) return;

  owner_task->get_task_struct();
  wl.unlock();
  (void)rt_mutex_adjust_prio_chain(owner_task, false, this, nullptr, &current);
  wl.lock();
}

// ---------------------------------------------------------------------------
// Slow paths

// rt_mutex_slowlock's loop, from a try_to_take_rt_mutex to the next
// schedule() (return waiting) or to the exit. `abort` is what the kernel's
// TASK_INTERRUPTIBLE check would find (signal / expired timer).
// Locking: REQUIRES current.run_lock_; takes wait_lock.
Result<LockStep> RtMutex::slowlock_loop(RtTask& current, std::optional<Errno> abort, bool first) {
  Waiter* waiter = &current.waiter_;
  Status ret;
  std::unique_lock wl(wait_lock_);

  // rt_mutex_slowlock's "Try to acquire the lock again", before the loop.
  if (first && try_to_take_rt_mutex(current)) {
    check_invariants(true);
    current.slowlock_.store(nullptr);
    return LockStep::acquired;
  }

  for (;;) {
    if (try_to_take_rt_mutex(current)) break;

      // Kernel quirk: the loop tries to take the lock before it looks at the
    // signal or the timer, so a pending owner (or a waiter that may steal)
    // that is interrupted still returns with the lock.
    if (abort) {
      ret = *abort;
      break;
    }

    // "waiter.task is NULL the first time we come here and when we have been
    // woken up by the previous owner but the lock got stolen by a higher
    // prio task."
    if (waiter->task.load() == nullptr) {
      ret = task_blocks_on_rt_mutex(current, current.detect_deadlock_, wl);
      // "If we got woken up by the owner then start loop all over without
      // going into schedule to try to get the lock now." Reset ret: we may
      // have returned EDEADLK while the owner released the lock.
      if (waiter->task.load() == nullptr) {
        ret = {};
        continue;
      }
      if (!ret) break;
    }

    // schedule(): the task sleeps until woken; the caller resumes the loop
    // with try_finish() or cancel_wait().
    check_invariants(true);
    return LockStep::waiting;
  }

  if (waiter->task.load() != nullptr) remove_waiter(current, wl);
  // try_to_take_rt_mutex() sets the waiters bit unconditionally.
  fixup_rt_mutex_waiters();
  check_invariants(true);
  wl.unlock();
  current.slowlock_.store(nullptr);

  // "Readjust priority, when we did not get the lock. We might have been the
  // pending owner and boosted. Since we did not take the lock, the PI boost
  // has to go."
  if (!ret) {
    rt_mutex_adjust_prio(current, *this);
    return ret.error();
  }
  return LockStep::acquired;
}

Result<LockStep> RtMutex::begin_lock(RtTask& task, LockOptions opts) {
  std::lock_guard run(task.run_lock_);
  if (task.slowlock_.load() != nullptr) return Errno{EBUSY};

  // rt_mutex_fastlock: cmpxchg(owner, NULL, current), skipped with detection.
  if (!opts.detect_deadlock && rt_mutex_cmpxchg(0, word_of(&task))) return LockStep::acquired;

  {
    // Wake-ups before this point belong to earlier waits.
    std::lock_guard sl(task.sleep_lock_);
    task.woken_ = false;
  }
  task.waiter_.task.store(nullptr);
  task.detect_deadlock_ = opts.detect_deadlock;
  task.slowlock_.store(this);

  return slowlock_loop(task, std::nullopt, /*first=*/true);
}

Result<LockStep> RtMutex::try_finish(RtTask& task) {
  std::lock_guard run(task.run_lock_);
  if (task.slowlock_.load() != this) return LockStep::not_waiting;
  return slowlock_loop(task, std::nullopt, false);
}

Result<LockStep> RtMutex::cancel_wait(RtTask& task, Errno reason) {
  std::lock_guard run(task.run_lock_);
  if (task.slowlock_.load() != this) return LockStep::not_waiting;
  return slowlock_loop(task, reason, false);
}

// rt_mutex_slowtrylock. Locking: wait_lock.
bool RtMutex::slowtrylock(RtTask& current) {
  std::lock_guard wl(wait_lock_);
  if (owner() == &current) return false;
  const bool ret = try_to_take_rt_mutex(current);
  // try_to_take_rt_mutex() sets the waiters bit unconditionally.
  fixup_rt_mutex_waiters();
  check_invariants(true);
  return ret;
}

bool RtMutex::trylock(RtTask& task) {
  std::lock_guard run(task.run_lock_);
  VSYSFS_RT_CHECK(task.slowlock_.load() == nullptr, "trylock by a task inside a lock call");
  if (rt_mutex_cmpxchg(0, word_of(&task))) return true;
  return slowtrylock(task);
}

// rt_mutex_slowunlock, up to the wake-up: returns the new pending owner
// (with a reference) or nullptr. Locking: wait_lock, then current's pi_lock.
RtTask* RtMutex::slowunlock(RtTask& current) {
  RtTask* pendowner = nullptr;
  {
    std::lock_guard wl(wait_lock_);
    if (!rt_mutex_has_waiters()) {
      store_owner(0);
      return nullptr;
    }
    pendowner = wakeup_next_waiter(current);
    check_invariants(true);
  }
  // Undo PI boosting if necessary.
  rt_mutex_adjust_prio(current, *this);
  return pendowner;
}

void RtMutex::unlock(RtTask& task) {
  RtTask* pendowner = nullptr;
  {
    std::lock_guard run(task.run_lock_);
    VSYSFS_RT_CHECK((owner_.load() & ~kHasWaiters) == word_of(&task),
                    "unlock by a task that does not own the lock");
    // rt_mutex_fastunlock: cmpxchg(owner, current, NULL).
    if (rt_mutex_cmpxchg(word_of(&task), 0)) return;
    pendowner = slowunlock(task);
  }
  // The kernel's wake_up_process() in wakeup_next_waiter, moved here so that
  // the wake hook runs with no lock held.
  if (pendowner != nullptr) {
    pendowner->wake_up_process(*this);
    pendowner->put_task_struct();
  }
}

// ---------------------------------------------------------------------------
// Blocking wrappers

Status RtMutex::blocking_wait(RtTask& task,
                              std::optional<std::chrono::steady_clock::time_point> deadline,
                              const std::stop_token* stop, LockOptions opts) {
  using Clock = std::chrono::steady_clock;
  auto expired = [&] { return deadline && Clock::now() >= *deadline; };
  auto stopped = [&] { return stop != nullptr && stop->stop_requested(); };

  // Already interrupted or expired: the kernel's loop would still take a
  // free lock, but never sleep.
  if (stopped() || expired()) {
    if (trylock(task)) return {};
    return Errno{expired() ? ETIMEDOUT : EINTR};
  }

  Result<LockStep> r = begin_lock(task, opts);
  if (!r) return r.error();
  if (*r == LockStep::acquired) return {};

  std::optional<std::stop_callback<std::function<void()>>> on_stop;
  if (stop != nullptr) {
    on_stop.emplace(*stop, std::function<void()>([&task] {
                      {
                        std::lock_guard sl(task.sleep_lock_);
                        task.woken_ = true;
                      }
                      task.wake_cv_.notify_all();
                    }));
  }

  for (;;) {
    {
      std::unique_lock sl(task.sleep_lock_);
      auto ready = [&] { return task.woken_; };
      if (deadline) {
        task.wake_cv_.wait_until(sl, *deadline, ready);
      } else {
        task.wake_cv_.wait(sl, ready);
      }
      task.woken_ = false;
    }
    // The kernel checks the signal first, then the timer, so an expired
    // timer wins.
    std::optional<Errno> abort;
    if (stopped()) abort = Errno{EINTR};
    if (expired()) abort = Errno{ETIMEDOUT};

    r = abort ? cancel_wait(task, *abort) : try_finish(task);
    if (!r) return r.error();
    if (*r == LockStep::acquired) return {};
    VSYSFS_RT_CHECK(*r == LockStep::waiting, "blocking wait lost its lock call");
  }
}

void RtMutex::lock(RtTask& task) {
  Status s = blocking_wait(task, std::nullopt, nullptr, {});
  VSYSFS_RT_CHECK(s.ok(), "uninterruptible lock without detection cannot fail");
  (void)s;
}

Status RtMutex::lock_interruptible(RtTask& task, std::stop_token stop, LockOptions opts) {
  return blocking_wait(task, std::nullopt, &stop, opts);
}

Status RtMutex::lock_timed(RtTask& task, std::chrono::steady_clock::time_point deadline,
                           LockOptions opts, std::stop_token stop) {
  return blocking_wait(task, deadline, &stop, opts);
}

// ---------------------------------------------------------------------------
// Observation

std::vector<WaiterInfo> RtMutex::waiters() const {
  std::lock_guard wl(wait_lock_);
  std::vector<WaiterInfo> out;
  for (const Waiter* w : wait_list_.nodes()) out.push_back({w->task.load(), w->list_prio});
  return out;
}

RtMutexSnapshot RtMutex::snapshot() const {
  std::lock_guard wl(wait_lock_);
  RtMutexSnapshot s;
  s.word = owner_word_state();
  for (const Waiter* w : wait_list_.nodes()) s.waiters.push_back({w->task.load(), w->list_prio});
  return s;
}

}  // namespace vsysfs::core
