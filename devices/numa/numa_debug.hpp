#pragma once

// The NUMA workload knobs: MOUNT/kernel/debug/vsysfs/numa/ (root-only, like
// every debugfs file), driving NumaModel from bash. Not a kernel interface;
// modelled on the kernel's test devices (reference: docs/design.md section 4).
//
//   file           mode  what
//   alloc          0200  one allocation per write: space-separated key=value
//                        tokens, then an optional '\n':
//                          pages=N      (required; kstrtoull base 0, > 0)
//                          cpu=N        (default 0; an online CPU)
//                          policy=P     default | local | preferred:N | bind:LIST |
//                                       interleave | interleave:LIST  (LIST as in
//                                       cpulist: "1,2", "0-3"; plain interleave = all
//                                       nodes with memory)
//                          kind=K       anon (default) | file | shmem | slab |
//                                       slab_reclaimable | slab_unreclaimable |
//                                       pagetables | kernel_stack
//                        A bad line (unknown or repeated key, bad number, unknown
//                        policy or kind, offline CPU, node set without memory) is
//                        EINVAL; ENOMEM when the allowed nodes cannot supply every
//                        page, or when the page_alloc failure point fails it
//                        (devices/numa/numa_fault.hpp). Either way nothing changes.
//   last_alloc_id  0400  "%llu\n": the id the last successful alloc write got (0 if
//                        none yet). Ids start at 1 and are never reused. The same id
//                        is in the "numa"/"alloc" event of the write.
//   allocations    0400  seq file, one live allocation per line:
//                        "id=1 cpu=3 pages=1000 policy=interleave:0-3 kind=anon
//                         node0=250 node1=250 node2=250 node3=250"
//   free           0200  an allocation id (kstrtoull base 10): returns its pages to the
//                        nodes that supplied them (numastat is not un-counted, as in the
//                        kernel). EINVAL for junk, ENOENT for an id that is not live.
//   zonelists      0400  seq file: each node's fallback order in the kernel's boot
//                        message format, "Fallback order for Node 0: 0 1 2 3 \n"
//
// Thread-safety: no state of its own; the model locks internally.

#include <memory>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

// Parses one alloc line (exposed for the tests); EINVAL on any error.
core::Result<AllocRequest> parse_alloc_line(std::string_view line, const NumaModel& model);
// "interleave:0-3", "bind:1-2", "preferred:1", "default".
std::string policy_string(const MemPolicy& policy, int nr_node_ids);
std::string allocation_string(const Allocation& a, int nr_node_ids);

class NumaDebug {
 public:
  NumaDebug(core::Env& env, std::shared_ptr<NumaModel> model)
      : env_(env), model_(std::move(model)) {}
  static std::span<const core::AttributeGroup<NumaDebug>> groups();

  // Locking: the model's. Context: FUSE worker; logs "numa"/"alloc" and "numa"/"free".
  core::Result<std::size_t> alloc_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> free_store(const core::Caller& caller, std::string_view in);
  core::Status last_alloc_id_show(core::PageBuffer& buf) const;
  core::Status allocations_show(std::string& out) const;
  core::Status zonelists_show(std::string& out) const;

 private:
  core::Env& env_;
  std::shared_ptr<NumaModel> model_;
};

}  // namespace vsysfs::devices
