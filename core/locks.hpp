#pragma once

// Named locks with a lock-order check (lockdep-lite). Each lock has a class
// name and a rank; the order is written where each lock is declared
// ("Order: rtnl -> dev_base_lock -> tx_lock"), and with VSYSFS_DEBUG_CHECKS
// a thread that takes a lock of lower or equal rank while holding a
// higher-ranked one aborts with both names, the way lockdep reports an
// inversion. Rank 0 opts out (leaf locks whose order is trivially safe).
// assert_held() is the ASSERT_RTNL() analogue.
//
// Thread-safety: these are the locks.

#include <mutex>
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

  void lock() ACQUIRE() {
    mu_.lock();
    lockdep::acquired(name_, rank_, this);
  }
  bool try_lock() TRY_ACQUIRE(true) {
    if (!mu_.try_lock()) return false;
    lockdep::acquired(name_, rank_, this);
    return true;
  }
  void unlock() RELEASE() {
    lockdep::released(this);
    mu_.unlock();
  }
  // Held by the calling thread (debug builds); always true otherwise.
  bool held() const { return lockdep::held(this); }
  void assert_held() const ASSERT_CAPABILITY(this);
  const char* name() const { return name_; }

 private:
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
  ~MutexLock() RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
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
