#pragma once

// The global hugetlb pool of the 2 MiB hstate:
// /sys/kernel/mm/hugepages/hugepages-2048kB (mm/hugetlb.c hstate_attrs,
// hugetlb_sysfs_init), over the nodes' pools of NumaModel (the sum of
// devices/system/node/nodeN/hugepages/hugepages-2048kB).
//
//   file                      mode  content
//   nr_hugepages              0644  "%lu\n" persistent pages of every node; store:
//                                   kstrtoul base 10 (EINVAL, nothing changed),
//                                   then set_max_huge_pages over N_MEMORY
//                                   (NumaModel::set_global_nr_hugepages); a short
//                                   pool is no error, the file shows what was reached
//   nr_hugepages_mempolicy    0644  the same count; a store allocates under the
//                                   writer's mempolicy, which for a FUSE writer is
//                                   the default (every node with memory): as above
//   nr_overcommit_hugepages   0644  "%lu\n"; store: kstrtoul base 10, any value
//   free_hugepages            0444  "%lu\n" free persistent pages
//   resv_hugepages            0444  "%lu\n" 0 (nothing maps hugetlbfs)
//   surplus_hugepages         0444  "%lu\n" 0 (no overcommitted page in use)
//
// No hugepages-1048576kB: the model has the one pool size, see
// docs/standard-files.md. No demote/demote_size: a 2 MiB page has no
// smaller hstate to demote into.
//
// Thread-safety: counts are the model's (its lock); nr_overcommit is an atomic.

#include <atomic>
#include <memory>
#include <span>
#include <string_view>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/result.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

class HugetlbGlobal {
 public:
  HugetlbGlobal(core::Env& env, std::shared_ptr<NumaModel> model)
      : env_(env), model_(std::move(model)) {}
  static std::span<const core::AttributeGroup<HugetlbGlobal>> groups();

  // Locking: the model's. Context: FUSE worker.
  core::Result<std::size_t> nr_hugepages_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> nr_overcommit_hugepages_store(const core::Caller& caller,
                                                          std::string_view in);

  const NumaModel& model() const { return *model_; }
  std::uint64_t overcommit() const { return overcommit_.load(); }

 private:
  core::Env& env_;
  std::shared_ptr<NumaModel> model_;
  std::atomic<std::uint64_t> overcommit_{0};
};

}  // namespace vsysfs::devices
