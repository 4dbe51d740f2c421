#include "core/stream.hpp"

#include <utility>
#include <vector>

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
  // The wakers run outside mu_: a waker may take the consumer's locks (the
  // server's inline wake reads the parked streams), and the consumer calls
  // add() under those same locks (Server::open), so calling them under mu_
  // ordered the two locks both ways. A waker may then run just after its
  // remove(): it only wakes the server, which outlives every open file.
  std::vector<Waker> wakers;
  {
    MutexLock lock(mu_);
    wakers.reserve(wakers_.size());
    for (const auto& [id, waker] : wakers_) wakers.push_back(waker);
  }
  for (const auto& waker : wakers) waker();
}

}  // namespace vsysfs::core
