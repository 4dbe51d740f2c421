#pragma once

// The guest's memory as the balloon driver sees it: the one place that
// knows how many pages the guest has populated (current_pages, MemTotal),
// how many of them its workload uses, how many are free in the page
// allocator, and how many sit in the balloon (pfns with no machine frame
// behind them). Reference 3.5-3.7: balloon_stats.current_pages,
// balloon_low, balloon_high; alloc_page(GFP_BALLOON) for decrease
// (never triggers the OOM killer: it just fails when nothing is free);
// balloon_retrieve + __free_reserved_page for increase.
//
// The model is one zone on x86-64: no highmem, so balloon_high is always 0
// and every ballooned page counts in balloon_low (balloon_append puts a
// page on the high list only when PageHighMem).
//
// NUMA hook: when node memory lands, this class is what splits per node:
// alloc_balloon_pages() becomes alloc_page(GFP_BALLOON) over the node
// fallback order, populate_from_balloon() frees each page into the node
// its pfn belongs to, and totalram_pages() is the sum of the nodes'
// MemTotal. The driver (xen_balloon.cpp) only calls these members.
//
// Thread-safety: none of its own; the balloon driver's balloon_mutex
// guards every call.

#include <algorithm>
#include <cstdint>

namespace vsysfs::devices {

class XenGuestMemory {
 public:
  // `current` pages populated at boot, `max` pages of pseudo-physical
  // space (static maximum: the rest starts in the balloon), `used` pages
  // held by the workload.
  XenGuestMemory(std::uint64_t current, std::uint64_t max, std::uint64_t used)
      : current_pages_(current), balloon_low_(max - current), used_pages_(used) {}

  std::uint64_t totalram_pages() const { return current_pages_; }
  std::uint64_t used_pages() const { return used_pages_; }
  std::uint64_t free_pages() const { return current_pages_ - used_pages_; }
  std::uint64_t balloon_low() const { return balloon_low_; }
  std::uint64_t balloon_high() const { return 0; }  // x86-64: no highmem
  std::uint64_t ballooned_pages() const { return balloon_low() + balloon_high(); }
  std::uint64_t max_pages() const { return current_pages_ + ballooned_pages(); }

  // The workload grows or shrinks; false (nothing changed) when it would
  // need more pages than the guest has populated.
  bool set_used_pages(std::uint64_t used) {
    if (used > current_pages_) return false;
    used_pages_ = used;
    return true;
  }

  // decrease_reservation's alloc_page(GFP_BALLOON) loop: takes up to `n`
  // free pages out of the allocator into the balloon; returns how many it
  // got (fewer when the allocator runs dry). The caller hands exactly
  // that many frames back to Xen.
  std::uint64_t alloc_balloon_pages(std::uint64_t n) {
    const std::uint64_t got = std::min(n, free_pages());
    current_pages_ -= got;
    balloon_low_ += got;
    return got;
  }

  // increase_reservation after Xen granted `n` frames: that many pages
  // leave the balloon, get their frames and are freed to the allocator.
  // The caller never passes more than ballooned_pages().
  void populate_from_balloon(std::uint64_t n) {
    n = std::min(n, balloon_low_);
    balloon_low_ -= n;
    current_pages_ += n;
  }

 private:
  std::uint64_t current_pages_;
  std::uint64_t balloon_low_;
  std::uint64_t used_pages_;
};

}  // namespace vsysfs::devices
