#pragma once

// Named locks with a lock-order check (lockdep-lite). Each lock has a class
// name and a rank; the order is written where each lock is declared
// ("Order: rtnl -> dev_base_lock -> tx_lock"), and with VSYSFS_DEBUG_CHECKS
// a thread that takes a lock of lower or equal rank while holding a
// higher-ranked one aborts with both names, the way lockdep reports an
// inversion. Rank 0 opts out (leaf locks whose order is trivially safe).
// assert_held() is the ASSERT_RTNL() analogue; it also tells clang's
// thread-safety analysis the lock is held (ASSERT_CAPABILITY), for code the
// analysis cannot follow (a callback invoked under its caller's lock).
// CondVar is a condition variable over a Mutex (lockdep sees the wait drop
// and retake it). ConditionalLock is for a lock taken only on some paths.
//
// Thread-safety: these are the locks.

#include <chrono>
#include <condition_variable>
#include <mutex>
#if defined(__SANITIZE_THREAD__)
#include <pthread.h>
#endif
#include <shared_mutex>
#include <thread>

#include "core/thread_annotations.hpp"

namespace vsysfs::core {

namespace lockdep {
void acquired(const char* name, int rank, const void* lock);
void released(const void* lock);
bool held(const void* lock);
}  // namespace lockdep

class CAPABILITY("mutex") Mutex {
 public:
  explicit constexpr Mutex(const char* name, int rank = 0) : name_(name), rank_(rank) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
#if defined(__SANITIZE_THREAD__)
  // libstdc++'s std::mutex has a trivial destructor (no
  // pthread_mutex_destroy), so ThreadSanitizer never learns that a mutex
  // died: a later mutex at the same address (a stack frame reused by the
  // next test case) inherits its lock-order history, and two unrelated
  // locks show up as an inversion. Destroying it tells TSan it is gone.
  ~Mutex() { pthread_mutex_destroy(mu_.native_handle()); }
#endif

  void lock() ACQUIRE() {
    mu_.lock();
    lockdep::acquired(name_, rank_, this);
  }
  bool try_lock() TRY_ACQUIRE(true) {
    if (!mu_.try_lock()) return false;
    lockdep::acquired(name_, rank_, this);
    return true;
  }
  // Waits at most `wait`. For locks held across long work (the state
  // journal's order lock across a clock advance), so that a waiter can look
  // at its own request's interruption between slices instead of waiting
  // unkillably. The wait polls try_lock: std::timed_mutex waits in
  // pthread_mutex_clocklock, which ThreadSanitizer (GCC 12) does not see,
  // so every unlock after it looked like the unlock of an unlocked mutex.
  // Only contended waits poll.
  template <typename Rep, typename Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& wait) TRY_ACQUIRE(true) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!mu_.try_lock()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    lockdep::acquired(name_, rank_, this);
    return true;
  }
  void unlock() RELEASE() {
    lockdep::released(this);
    mu_.unlock();
  }
  // Held by the calling thread (debug builds); always true otherwise.
  bool held() const { return lockdep::held(this); }
  // Aborts (debug builds) when the calling thread does not hold the lock.
  void assert_held() const ASSERT_CAPABILITY(this);
  const char* name() const { return name_; }

 private:
  friend class CondVar;
  std::mutex mu_;
  const char* name_;
  int rank_;
};

class CAPABILITY("shared_mutex") SharedMutex {
 public:
  explicit SharedMutex(const char* name, int rank = 0) : name_(name), rank_(rank) {}
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() ACQUIRE() {
    mu_.lock();
    lockdep::acquired(name_, rank_, this);
  }
  void unlock() RELEASE() {
    lockdep::released(this);
    mu_.unlock();
  }
  void lock_shared() ACQUIRE_SHARED() {
    mu_.lock_shared();
    lockdep::acquired(name_, rank_, this);
  }
  void unlock_shared() RELEASE_SHARED() {
    lockdep::released(this);
    mu_.unlock_shared();
  }
  bool held() const { return lockdep::held(this); }
  const char* name() const { return name_; }

 private:
  std::shared_mutex mu_;
  const char* name_;
  int rank_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  // Drop the lock before the scope ends, and take it again (as
  // std::unique_lock); the destructor releases it only when held.
  void unlock() RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

// A condition variable whose waits release and retake a Mutex the caller
// holds (std::condition_variable over the Mutex's own std::mutex, with
// lockdep told of the release and the retake). Wait in a loop on the
// predicate (`while (!ready) cv.wait(mu);`): the analysis then checks the
// predicate's reads, which it cannot do inside a predicate lambda.
class CondVar {
 public:
  void wait(Mutex& mu) REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    lockdep::released(&mu);
    cv_.wait(lk);
    lockdep::acquired(mu.name_, mu.rank_, &mu);
    lk.release();
  }
  // false when `deadline` passed (the lock is held again either way).
  template <class Clock, class Duration>
  bool wait_until(Mutex& mu, const std::chrono::time_point<Clock, Duration>& deadline)
      REQUIRES(mu) {
    std::unique_lock<std::mutex> lk(mu.mu_, std::adopt_lock);
    lockdep::released(&mu);
    const bool woken = cv_.wait_until(lk, deadline) == std::cv_status::no_timeout;
    lockdep::acquired(mu.name_, mu.rank_, &mu);
    lk.release();
    return woken;
  }
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// Holds `mu` for its scope when `mu` is not null. The analysis cannot
// express a lock held on some paths only, so this is not a capability;
// code under it that touches state the lock guards first calls
// mu->assert_held(), which checks it at run time (debug builds) and tells
// the analysis.
class ConditionalLock {
 public:
  // Holds nothing until acquire().
  ConditionalLock() = default;
  explicit ConditionalLock(Mutex* mu) NO_THREAD_SAFETY_ANALYSIS : mu_(mu) {
    if (mu_ != nullptr) mu_->lock();
  }
  ~ConditionalLock() NO_THREAD_SAFETY_ANALYSIS {
    if (mu_ != nullptr) mu_->unlock();
  }
  ConditionalLock(const ConditionalLock&) = delete;
  ConditionalLock& operator=(const ConditionalLock&) = delete;

  // Takes mu, waiting `slice` at a time and asking give_up() between
  // slices; false (nothing held) when it said yes.
  template <typename GiveUp>
  bool acquire(Mutex& mu, std::chrono::milliseconds slice,
               GiveUp give_up) NO_THREAD_SAFETY_ANALYSIS {
    while (!mu.try_lock_for(slice))
      if (give_up()) return false;
    mu_ = &mu;
    return true;
  }

 private:
  Mutex* mu_ = nullptr;
};

class SCOPED_CAPABILITY ReadLock {
 public:
  explicit ReadLock(SharedMutex& mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReadLock() RELEASE_GENERIC() { mu_.unlock_shared(); }
  ReadLock(const ReadLock&) = delete;
  ReadLock& operator=(const ReadLock&) = delete;

 private:
  SharedMutex& mu_;
};

class SCOPED_CAPABILITY WriteLock {
 public:
  explicit WriteLock(SharedMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriteLock() RELEASE() { mu_.unlock(); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace vsysfs::core
