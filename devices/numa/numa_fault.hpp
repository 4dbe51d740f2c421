#pragma once

// The page_alloc failure point for NUMA allocations: mm/fail_page_alloc.c
// __should_fail_alloc_page as the simulation's allocations reach it
// (docs/fault-injection.md). One numa/alloc write is one request:
//   order = the smallest k with 2^k >= pages (what min-order compares),
//   size  = pages (what the point's space budget is charged),
//   gfp   = what the kernel allocates that kind of page with:
//           anon, file, shmem  GFP_HIGHUSER_MOVABLE (__GFP_HIGHMEM and
//                              __GFP_DIRECT_RECLAIM: exempt while
//                              ignore-gfp-highmem or ignore-gfp-wait is Y)
//           slab*, pagetables, kernel_stack  GFP_KERNEL(_ACCOUNT)
//                              (__GFP_DIRECT_RECLAIM: exempt while
//                              ignore-gfp-wait is Y, the kernel's default)
//
// Thread-safety: FaultInjection locks internally.

#include "core/caller.hpp"
#include "core/env.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

core::Gfp numa_alloc_gfp(PageKind kind);
unsigned numa_alloc_order(std::uint64_t pages);
// True when the injected failure makes this allocation fail (ENOMEM).
bool should_fail_numa_alloc(core::Env& env, const core::Caller& caller, const AllocRequest& req);

}  // namespace vsysfs::devices
