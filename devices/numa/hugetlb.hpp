#pragma once

// The global hugetlb pools, one directory per hstate:
// /sys/kernel/mm/hugepages/hugepages-2048kB and, on a CPU with GBPAGES,
// hugepages-1048576kB (mm/hugetlb.c hstate_attrs, hstate_demote_attrs,
// hugetlb_sysfs_add_hstate, hugetlb_sysfs_init; x86 adds the 1 GiB hstate
// in arch/x86/mm/hugetlbpage.c gigantic_pages_init), over the nodes' pools
// of NumaModel (the sums of devices/system/node/nodeN/hugepages/*).
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
//   nr_overcommit_hugepages   0644  "%lu\n"; store: kstrtoul base 10, any value.
//                                   QUIRK: the 1 GiB hstate refuses every store
//                                   with EINVAL before parsing (6.12
//                                   nr_overcommit_hugepages_store: hstate_is_gigantic;
//                                   later kernels check hstate_is_gigantic_no_runtime
//                                   instead and accept it, as 6.18 does)
//   free_hugepages            0444  "%lu\n" free persistent pages
//   resv_hugepages            0444  "%lu\n" 0 (nothing maps hugetlbfs)
//   surplus_hugepages         0444  "%lu\n" 0 (no overcommitted page in use)
// and for the 1 GiB hstate only (h->demote_order != 0: hugetlb_init_hstates
// gives an hstate the largest smaller order; the 2 MiB one has none):
//   demote_size               0644  "%lukB\n" of the demote order: "2048kB\n".
//                                   store: memparse; EINVAL unless the size is
//                                   an hstate's of at least HUGETLB_PAGE_ORDER and
//                                   below this one's, i.e. 2 MiB, which it is already
//   demote                    0200  store: kstrtoul base 10 (EINVAL); up to that
//                                   many free 1 GiB pages become 512 free 2 MiB
//                                   pages each (NumaModel::demote_gigantic); fewer
//                                   free pages is no error
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
  HugetlbGlobal(core::Env& env, std::shared_ptr<NumaModel> model, HugeSize size)
      : env_(env), model_(std::move(model)), size_(size) {}
  // hstate_attr_group, plus hstate_demote_attr_group for the 1 GiB hstate.
  static std::span<const core::AttributeGroup<HugetlbGlobal>> groups(HugeSize size);
  // "hugepages-2048kB" / "hugepages-1048576kB" (h->name).
  static std::string dir_name(HugeSize size);

  // Locking: the model's. Context: FUSE worker.
  core::Result<std::size_t> nr_hugepages_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> nr_overcommit_hugepages_store(const core::Caller& caller,
                                                          std::string_view in);
  core::Result<std::size_t> demote_store(const core::Caller& caller, std::string_view in);
  core::Status demote_size_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> demote_size_store(const core::Caller& caller, std::string_view in);

  const NumaModel& model() const { return *model_; }
  HugeSize size() const { return size_; }
  std::uint64_t overcommit() const { return overcommit_.load(); }

 private:
  core::Env& env_;
  std::shared_ptr<NumaModel> model_;
  const HugeSize size_;
  std::atomic<std::uint64_t> overcommit_{0};
};

// The demote files' semantics, shared with the nodes' 1 GiB directories
// (numa_node.cpp): the same store functions with a node id (-1: global).
namespace hugetlb {
// demote_store: kstrtoul base 10, then demote over node `nid` (or
// N_MEMORY). Logs "numa"/"demote".
core::Result<std::size_t> demote_store(core::Env& env, NumaModel& model, int nid,
                                       const core::Caller& caller, std::string_view in);
// demote_size_show / demote_size_store of the 1 GiB hstate.
core::Status demote_size_show(core::PageBuffer& buf);
core::Result<std::size_t> demote_size_store(std::string_view in);
}  // namespace hugetlb

}  // namespace vsysfs::devices
