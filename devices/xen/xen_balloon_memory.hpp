#pragma once

// The guest's memory as the balloon driver sees it: the one place that
// knows how many pages the guest has populated (current_pages, MemTotal),
// how many of them its workload uses, how many are free in the page
// allocator, and how many sit in the balloon (pfns with no machine frame
// behind them). docs/kernel-semantics.md
// sections 3.5 to 3.7: balloon_stats.current_pages,
// balloon_low, balloon_high; alloc_page(GFP_BALLOON) for decrease
// (never triggers the OOM killer: it just fails when nothing is free);
// balloon_retrieve + __free_reserved_page for increase.
//
// The model is one zone on x86-64: no highmem, so balloon_high is always 0
// and every ballooned page counts in balloon_low (balloon_append puts a
// page on the high list only when PageHighMem).
//
// The guest kernel holds memory of its own from boot (slab, kernel stacks,
// page tables: the [xen] kernel_memory key): those pages are allocated, so
// alloc_page(GFP_BALLOON) never gets them and ballooning down stops above
// them with the driver's back-off, whatever the target.
//
// Two back ends, chosen at construction:
//  - flat (no [numa] section): one counter of populated pages, one of
//    pages the kernel holds and one of pages the workload uses (the
//    guest/used_kb knob).
//  - NUMA (the machine has a NumaModel, docs/kernel-semantics.md section 4): the guest's
//    memory is its nodes' memory. totalram_pages() is the sum of the nodes'
//    present pages (nodeN/meminfo MemTotal), free_pages() the sum of their
//    free pages, and the workload is NUMA's own (numa/alloc, hugepages).
//    alloc_balloon_pages() is alloc_page(GFP_BALLOON) over a fixed node
//    fallback order: the zonelist, at boot, of the first node with memory
//    (the balloon kworker's node), then any node not in it; it takes free
//    pages only (NumaModel::balloon_take_pages: adjust_managed_page_count
//    (-1), which leaves N_MEMORY and the zonelists alone), and counts them
//    in numastat as the kworker's node's allocations (numa_hit there,
//    numa_miss / numa_foreign for what falls back to another node). The kernel's
//    pages are each node's NodeSnapshot::kernel, reserved by the builder.
//    It records how many pages came from each node, and
//    populate_from_balloon() gives pages back to those nodes first (a
//    ballooned pfn belongs to the node it was taken from). Pages beyond
//    that (the part of the static maximum that was never populated) are
//    spread round robin, one page at a time, over the nodes that had
//    memory at boot (the vNUMA memory nodes), starting where the previous
//    populate stopped, so the nodes grow evenly.
//
// Thread-safety: none of its own; the balloon driver's balloon_mutex
// guards every call. The NumaModel has its own leaf lock (numa.pgdat);
// lock order: xen.balloon_mutex -> numa.pgdat (never taken with
// xen.hypervisor held: the worker calls in here before or after the
// hypercall, not inside it). Only the balloon changes the nodes' present
// pages, so the sum over nodes is stable under balloon_mutex even though
// each node is read under its own acquisition of numa.pgdat.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

class XenGuestMemory {
 public:
  // Flat: `current` pages populated at boot, `max` pages of
  // pseudo-physical space (static maximum: the rest starts in the
  // balloon), `kernel` pages held by the guest kernel and `used` by the
  // workload (the caller has checked kernel + used <= current).
  XenGuestMemory(std::uint64_t current, std::uint64_t max, std::uint64_t kernel, std::uint64_t used)
      : current_pages_(current),
        balloon_low_(max - current),
        kernel_pages_(kernel),
        used_pages_(used),
        totalreserve_pages_(boot_totalreserve_pages(current)) {}

  // NUMA: the populated pages are the nodes' present pages (the caller has
  // checked that they sum to at most `max`); the rest of `max` starts in
  // the balloon.
  XenGuestMemory(std::shared_ptr<NumaModel> numa, std::uint64_t max);

  // The nodes' present pages at construction (what [xen] memory must be).
  static std::uint64_t numa_total_pages(const NumaModel& numa);

  bool numa_backed() const { return numa_ != nullptr; }
  std::uint64_t totalram_pages() const;
  std::uint64_t free_pages() const;
  // Pages the guest kernel holds (constant: boot allocations).
  std::uint64_t kernel_pages() const;
  // Pages the workload holds: the rest of what is not free.
  std::uint64_t used_pages() const { return totalram_pages() - free_pages() - kernel_pages(); }
  std::uint64_t balloon_low() const { return balloon_low_; }
  std::uint64_t balloon_high() const { return 0; }  // x86-64: no highmem
  std::uint64_t ballooned_pages() const { return balloon_low() + balloon_high(); }
  std::uint64_t max_pages() const { return totalram_pages() + ballooned_pages(); }
  // kernel: totalreserve_pages (mm/page_alloc.c calculate_totalreserve_pages),
  // fixed at boot: the model has one zone, so it is that zone's high
  // watermark, from min_free_kbytes = int_sqrt(lowmem_kbytes * 16) clamped
  // to [128, 262144] KiB (calculate_min_free_kbytes) and high = min + 2 *
  // max(min / 4, managed * watermark_scale_factor(10) / 10000)
  // (__setup_per_zone_wmarks). The balloon does not recompute it.
  std::uint64_t totalreserve_pages() const { return totalreserve_pages_; }
  static std::uint64_t boot_totalreserve_pages(std::uint64_t managed_pages);
  // kernel: si_mem_available() (mm/show_mem.c): free pages less
  // totalreserve_pages, never negative. The model has no page cache or
  // reclaimable slab, so that is all of it.
  std::uint64_t si_mem_available() const {
    const std::uint64_t free = free_pages();
    return free > totalreserve_pages_ ? free - totalreserve_pages_ : 0;
  }
  // Pages in the balloon that were taken from node `nid` (NUMA only).
  std::uint64_t ballooned_from_node(int nid) const {
    return nid >= 0 && static_cast<std::size_t>(nid) < from_node_.size() ? from_node_[nid] : 0;
  }

  // The workload grows or shrinks; false (nothing changed) when it would
  // need more pages than the guest has populated beside its kernel's, and
  // always with NUMA (the workload is numa/alloc's there).
  bool set_used_pages(std::uint64_t used) {
    if (numa_ || used > current_pages_ - kernel_pages_) return false;
    used_pages_ = used;
    return true;
  }

  // decrease_reservation's alloc_page(GFP_BALLOON) loop: takes up to `n`
  // free pages out of the allocator into the balloon; returns how many it
  // got (fewer when the allocator runs dry). The caller hands exactly
  // that many frames back to Xen.
  std::uint64_t alloc_balloon_pages(std::uint64_t n);

  // increase_reservation after Xen granted `n` frames: that many pages
  // leave the balloon, get their frames and are freed to the allocator.
  // The caller never passes more than ballooned_pages().
  void populate_from_balloon(std::uint64_t n);

 private:
  // Machine snapshots read and write the fields (xen_state.cpp).
  friend class XenStateHandler;

  // Flat back end.
  std::uint64_t current_pages_ = 0;
  std::uint64_t balloon_low_;
  std::uint64_t kernel_pages_ = 0;
  std::uint64_t used_pages_ = 0;
  // NUMA back end.
  std::shared_ptr<NumaModel> numa_;
  std::vector<int> fallback_;              // alloc order (fixed at boot)
  std::vector<int> boot_memory_nodes_;     // round robin set for new pages
  std::vector<std::uint64_t> from_node_;   // ballooned pages taken from each node
  std::size_t next_rr_ = 0;                // round robin cursor into boot_memory_nodes_
  std::uint64_t totalreserve_pages_ = 0;   // fixed at boot
};

}  // namespace vsysfs::devices
