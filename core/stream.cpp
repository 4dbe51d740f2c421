#include "core/stream.hpp"

#include <utility>

namespace vsysfs::core {

std::uint64_t WaitQueue::add(Waker waker) {
  MutexLock lock(mu_);
  const std::uint64_t id = next_id_++;
  wakers_.emplace(id, std::move(waker));
  count_.store(wakers_.size(), std::memory_order_release);
  return id;
}

void WaitQueue::remove(std::uint64_t id) {
  MutexLock lock(mu_);
  wakers_.erase(id);
  count_.store(wakers_.size(), std::memory_order_release);
}

void WaitQueue::wake_up_all() {
  // A waiter registers before it first looks for data (fs/server.cpp
  // open), and the producer publishes its data before calling this: a
  // waiter either sees the data or is counted here.
  if (count_.load(std::memory_order_acquire) == 0) return;
  MutexLock lock(mu_);
  for (auto& [id, waker] : wakers_) waker();
}

}  // namespace vsysfs::core
