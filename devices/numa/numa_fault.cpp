#include "devices/numa/numa_fault.hpp"

#include <bit>
#include <limits>

namespace vsysfs::devices {

core::Gfp numa_alloc_gfp(PageKind kind) {
  switch (kind) {
    case PageKind::Anon:
    case PageKind::File:
    case PageKind::Shmem:
      return {.highmem = true, .direct_reclaim = true};
    case PageKind::SlabReclaimable:
    case PageKind::SlabUnreclaimable:
    case PageKind::PageTables:
    case PageKind::KernelStack:
      return {.direct_reclaim = true};
  }
  return {.direct_reclaim = true};
}

unsigned numa_alloc_order(std::uint64_t pages) {
  if (pages <= 1) return 0;
  return static_cast<unsigned>(std::bit_width(pages - 1));
}

bool should_fail_numa_alloc(core::Env& env, const core::Caller& caller, const AllocRequest& req) {
  if (!env.faults || !env.faults->armed(core::FaultPoint::PageAlloc)) return false;
  const long size = req.pages > static_cast<std::uint64_t>(std::numeric_limits<long>::max())
                        ? std::numeric_limits<long>::max()
                        : static_cast<long>(req.pages);
  return env.faults->should_fail_alloc_page(&caller, numa_alloc_gfp(req.kind),
                                            numa_alloc_order(req.pages), size, "numa/alloc");
}

}  // namespace vsysfs::devices
