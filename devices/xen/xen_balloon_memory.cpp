// XenGuestMemory: the flat and NUMA back ends (see xen_balloon_memory.hpp).

#include "devices/xen/xen_balloon_memory.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace vsysfs::devices {

std::uint64_t XenGuestMemory::numa_total_pages(const NumaModel& numa) {
  std::uint64_t total = 0;
  for (int nid = 0; nid < numa.nr_node_ids(); ++nid) total += numa.node(nid).present;
  return total;
}

std::uint64_t XenGuestMemory::boot_totalreserve_pages(std::uint64_t managed_pages) {
  constexpr std::uint64_t kPageKb = 4;
  const std::uint64_t lowmem_kb = managed_pages * kPageKb;
  // int_sqrt(lowmem_kbytes * 16): floor of the square root.
  auto isqrt = [](std::uint64_t x) {
    std::uint64_t r = static_cast<std::uint64_t>(std::sqrt(static_cast<long double>(x)));
    while (r * r > x) --r;
    while ((r + 1) * (r + 1) <= x) ++r;
    return r;
  };
  const std::uint64_t min_free_kb =
      std::clamp<std::uint64_t>(isqrt(std::min(lowmem_kb, UINT64_MAX / 16) * 16), 128, 262144);
  const std::uint64_t min_pages = min_free_kb / kPageKb;
  const std::uint64_t tmp = std::max(min_pages / 4, managed_pages * 10 / 10000);
  return std::min(managed_pages, min_pages + 2 * tmp);
}

XenGuestMemory::XenGuestMemory(std::shared_ptr<NumaModel> numa, std::uint64_t max)
    : balloon_low_(0), numa_(std::move(numa)) {
  const std::uint64_t total = numa_total_pages(*numa_);
  totalreserve_pages_ = boot_totalreserve_pages(total);
  if (max < total) throw std::invalid_argument("static maximum below the nodes' memory");
  balloon_low_ = max - total;
  boot_memory_nodes_ = numa_->nodes_with_memory();
  // The kworker's node: the first node with memory (node 0 on every
  // machine that has memory there); its zonelist is the fallback order.
  if (!boot_memory_nodes_.empty()) fallback_ = numa_->zonelist(boot_memory_nodes_.front());
  for (int nid = 0; nid < numa_->nr_node_ids(); ++nid)
    if (std::find(fallback_.begin(), fallback_.end(), nid) == fallback_.end())
      fallback_.push_back(nid);
  if (boot_memory_nodes_.empty()) boot_memory_nodes_ = fallback_;
  from_node_.assign(static_cast<std::size_t>(numa_->nr_node_ids()), 0);
}

std::uint64_t XenGuestMemory::totalram_pages() const {
  return numa_ ? numa_total_pages(*numa_) : current_pages_;
}

std::uint64_t XenGuestMemory::kernel_pages() const {
  if (!numa_) return kernel_pages_;
  std::uint64_t kernel = 0;
  for (int nid = 0; nid < numa_->nr_node_ids(); ++nid) kernel += numa_->node(nid).kernel;
  return kernel;
}

std::uint64_t XenGuestMemory::free_pages() const {
  if (!numa_) return current_pages_ - kernel_pages_ - used_pages_;
  std::uint64_t free = 0;
  for (int nid = 0; nid < numa_->nr_node_ids(); ++nid) free += numa_->node(nid).free;
  return free;
}

std::uint64_t XenGuestMemory::alloc_balloon_pages(std::uint64_t n) {
  std::uint64_t got = 0;
  if (!numa_) {
    got = std::min(n, free_pages());
    current_pages_ -= got;
  } else {
    for (int nid : fallback_) {
      if (got == n) break;
      // Never fails for a node that exists (fallback_ holds only those).
      // The balloon kworker runs on fallback_'s first node.
      const std::uint64_t took =
          numa_->balloon_take_pages(nid, n - got, fallback_.front()).value_or(0);
      from_node_[static_cast<std::size_t>(nid)] += took;
      got += took;
    }
  }
  balloon_low_ += got;
  return got;
}

void XenGuestMemory::populate_from_balloon(std::uint64_t n) {
  n = std::min(n, balloon_low_);
  balloon_low_ -= n;
  if (!numa_) {
    current_pages_ += n;
    return;
  }
  // balloon_give_pages fails only on overflow of a node's present count,
  // which cannot happen: the whole static maximum fits in 64 bits.
  std::uint64_t left = n;
  for (int nid : fallback_) {
    std::uint64_t& owed = from_node_[static_cast<std::size_t>(nid)];
    const std::uint64_t back = std::min(owed, left);
    if (back == 0) continue;
    (void)numa_->balloon_give_pages(nid, back);
    owed -= back;
    left -= back;
  }
  if (left == 0) return;
  // New pages: round robin, one page each, over the boot memory nodes.
  const std::size_t k = boot_memory_nodes_.size();
  const std::uint64_t each = left / k;
  const std::uint64_t extra = left % k;
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t slot = (next_rr_ + i) % k;
    const std::uint64_t give = each + (i < extra ? 1 : 0);
    if (give) (void)numa_->balloon_give_pages(boot_memory_nodes_[slot], give);
  }
  next_rr_ = (next_rr_ + extra) % k;
}

}  // namespace vsysfs::devices
