#pragma once

// Kernel samepage merging's knobs: /sys/kernel/mm/ksm (mm/ksm.c ksm_attrs,
// Linux 6.12, CONFIG_NUMA). Nothing in the machine registers a mergeable
// area (madvise MADV_MERGEABLE / PR_SET_MEMORY_MERGE), so ksmd never scans
// (ksmd_should_run: the mm list is empty) and every counter stays 0
// whatever `run` says, as on a kernel where no process opted in.
//
//   file                               mode  show      store (EINVAL, nothing changed)
//   run                                0644  "%lu\n" 0  kstrtouint base 10, <= 2 (stop,
//                                                       merge, unmerge; unmerge of nothing
//                                                       succeeds and stays 2)
//   sleep_millisecs                    0644  "%u\n" 20  kstrtouint base 10
//   pages_to_scan                      0644  "%u\n" 100 EINVAL while an advisor is on;
//                                                       kstrtouint base 10
//   merge_across_nodes                 0644  "%u\n" 1   kstrtoul (its errno), <= 1 (EBUSY
//                                                       only with shared pages: never)
//   use_zero_pages, smart_scan         0644  "%u\n" 0,1 kstrtobool
//   max_page_sharing                   0644  "%u\n" 256 kstrtoint (its errno), >= 2
//   stable_node_chains_prune_millisecs 0644  "%u\n" 2000 kstrtouint base 10
//   advisor_mode                       0644  "[none] scan-time\n"  sysfs_streq none |
//                                                       scan-time; a change resets
//                                                       pages_to_scan (100 / min pages)
//   advisor_max_cpu                    0644  "%u\n" 70  kstrtoul base 10
//   advisor_min_pages_to_scan          0644  "%lu\n" 500   kstrtoul
//   advisor_max_pages_to_scan          0644  "%lu\n" 30000 kstrtoul
//   advisor_target_scan_time           0644  "%lu\n" 200   kstrtoul, >= 1
//   pages_shared, pages_sharing, pages_unshared, pages_volatile, pages_skipped,
//   pages_scanned, full_scans, stable_node_chains, stable_node_dups  0444 "%lu\n" 0
//   ksm_zero_pages, general_profit     0444  "%ld\n" 0
//
// Thread-safety: ksm_thread_mutex (mu_) guards the knobs.

#include <span>
#include <string_view>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/state_record.hpp"
#include "core/thread_annotations.hpp"

namespace vsysfs::devices {

class Ksm {
 public:
  explicit Ksm(core::Env& env) : env_(env) {}
  static std::span<const core::AttributeGroup<Ksm>> groups();

  // Locking: mu_. Context: FUSE worker.
#define VSYSFS_KSM_RW(name)                              \
  core::Status name##_show(core::PageBuffer& buf) const; \
  core::Result<std::size_t> name##_store(const core::Caller& caller, std::string_view in);
  VSYSFS_KSM_RW(run)
  VSYSFS_KSM_RW(sleep_millisecs)
  VSYSFS_KSM_RW(pages_to_scan)
  VSYSFS_KSM_RW(merge_across_nodes)
  VSYSFS_KSM_RW(use_zero_pages)
  VSYSFS_KSM_RW(smart_scan)
  VSYSFS_KSM_RW(max_page_sharing)
  VSYSFS_KSM_RW(stable_node_chains_prune_millisecs)
  VSYSFS_KSM_RW(advisor_mode)
  VSYSFS_KSM_RW(advisor_max_cpu)
  VSYSFS_KSM_RW(advisor_min_pages_to_scan)
  VSYSFS_KSM_RW(advisor_max_pages_to_scan)
  VSYSFS_KSM_RW(advisor_target_scan_time)
#undef VSYSFS_KSM_RW

  // Machine snapshots (docs/snapshot.md): every knob, "ksm.*". Directly,
  // not through the stores, which refuse some orders (pages_to_scan while
  // the advisor scans). load_state checks the record first (EINVAL).
  void save_state(core::StateWriter& w) const;
  core::Status load_state(const core::StateReader& r);

 private:
  core::Env& env_;
  mutable core::Mutex mu_{"ksm_thread_mutex"};  // Order: leaf
  unsigned long run_ GUARDED_BY(mu_) = 0;
  unsigned sleep_millisecs_ GUARDED_BY(mu_) = 20;
  unsigned pages_to_scan_ GUARDED_BY(mu_) = 100;
  unsigned merge_across_nodes_ GUARDED_BY(mu_) = 1;
  bool use_zero_pages_ GUARDED_BY(mu_) = false;
  bool smart_scan_ GUARDED_BY(mu_) = true;
  unsigned max_page_sharing_ GUARDED_BY(mu_) = 256;
  unsigned prune_millisecs_ GUARDED_BY(mu_) = 2000;
  bool advisor_scan_time_ GUARDED_BY(mu_) = false;
  unsigned advisor_max_cpu_ GUARDED_BY(mu_) = 70;
  unsigned long advisor_min_pages_ GUARDED_BY(mu_) = 500;
  unsigned long advisor_max_pages_ GUARDED_BY(mu_) = 30000;
  unsigned long advisor_target_scan_time_ GUARDED_BY(mu_) = 200;
};

}  // namespace vsysfs::devices
