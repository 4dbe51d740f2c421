#pragma once

// CPU caches and CPU vulnerabilities under /sys/devices/system/cpu
// (kernel: drivers/base/cacheinfo.c, arch/x86/kernel/cpu/cacheinfo.c;
// drivers/base/cpu.c cpu_root_vulnerabilities_attrs), over NumaModel's
// cache leaves and topology.
//
//   devices/system/cpu/cpuN/cache/        (CacheDir; only while cpuN is
//                                          online: cacheinfo_cpu_pre_down
//                                          removes it, like topology/)
//     uevent                        0644  empty; store: kobject_synth_uevent
//     indexM/                       (CacheIndex, one per leaf, x86 CPUID
//                                          leaf 4 order: L1d, L1i, L2, L3)
//       id                          0444  "%u\n"  (x86 get_cache_id)
//       level                       0444  "%u\n"
//       type                        0444  "Data\n" | "Instruction\n" | "Unified\n"
//       size                        0444  "%uK\n" (size >> 10)
//       coherency_line_size         0444  "%u\n"
//       ways_of_associativity       0444  "%u\n"
//       number_of_sets              0444  "%u\n"
//       physical_line_partition     0444  "%u\n"
//       shared_cpu_map              0444  "%*pb\n"  online CPUs sharing the leaf
//       shared_cpu_list             0444  "%*pbl\n"
//       uevent                      0644  empty; store: kobject_synth_uevent
//     allocation_policy and write_policy are hidden
//     (cache_default_attrs_is_visible): x86 cacheinfo sets no policy
//     attribute bits, so a 6.12 x86 kernel shows neither.
//   devices/system/cpu/vulnerabilities/   (CpuVulnerabilities)
//     meltdown, spectre_v1, spectre_v2, spec_store_bypass, l1tf, mds,
//     tsx_async_abort, itlb_multihit, srbds, mmio_stale_data, retbleed,
//     spec_rstack_overflow, gather_data_sampling, reg_file_data_sampling
//                                   0444  "%s\n", the 6.12 set, constant
//
// Thread-safety: the values are constant after construction; shared CPU
// sets come from the model, which locks internally. No lock of ours.

#include <array>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

class CacheDir {
 public:
  CacheDir(core::Env& env, unsigned cpu) : env_(env), cpu_(cpu) {}
  static std::span<const core::AttributeGroup<CacheDir>> groups();

  // Locking: none. Context: FUSE worker.
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

 private:
  core::Env& env_;
  const unsigned cpu_;
};

class CacheIndex {
 public:
  CacheIndex(core::Env& env, std::shared_ptr<NumaModel> model, unsigned cpu, std::size_t index)
      : env_(env), model_(std::move(model)), cpu_(cpu), index_(index) {}
  static std::span<const core::AttributeGroup<CacheIndex>> groups();

  // Locking: the model's (shared_cpu_*). Context: FUSE worker.
  core::Status id_show(core::PageBuffer& buf) const;
  core::Status level_show(core::PageBuffer& buf) const;
  core::Status type_show(core::PageBuffer& buf) const;
  core::Status size_show(core::PageBuffer& buf) const;
  core::Status coherency_line_size_show(core::PageBuffer& buf) const;
  core::Status ways_of_associativity_show(core::PageBuffer& buf) const;
  core::Status number_of_sets_show(core::PageBuffer& buf) const;
  core::Status physical_line_partition_show(core::PageBuffer& buf) const;
  core::Status shared_cpu_map_show(core::PageBuffer& buf) const;
  core::Status shared_cpu_list_show(core::PageBuffer& buf) const;
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

 private:
  const CacheLeaf& leaf() const { return model_->caches()[index_]; }
  std::vector<unsigned> shared() const;

  core::Env& env_;
  std::shared_ptr<NumaModel> model_;
  const unsigned cpu_;
  const std::size_t index_;
};

class CpuVulnerabilities {
 public:
  // The file names, in drivers/base/cpu.c's order (Linux 6.12).
  static constexpr std::array<std::string_view, 14> kNames = {"meltdown",
                                                              "spectre_v1",
                                                              "spectre_v2",
                                                              "spec_store_bypass",
                                                              "l1tf",
                                                              "mds",
                                                              "tsx_async_abort",
                                                              "itlb_multihit",
                                                              "srbds",
                                                              "mmio_stale_data",
                                                              "retbleed",
                                                              "spec_rstack_overflow",
                                                              "gather_data_sampling",
                                                              "reg_file_data_sampling"};
  using Values = std::array<std::string, kNames.size()>;
  // What a 6.12 kernel prints on a Skylake-SP (the default machine's CPU)
  // with the default mitigations.
  static Values defaults();

  explicit CpuVulnerabilities(Values v) : values_(std::move(v)) {}
  static std::span<const core::AttributeGroup<CpuVulnerabilities>> groups();

#define VSYSFS_VULN(name) core::Status name##_show(core::PageBuffer& buf) const;
  VSYSFS_VULN(meltdown)
  VSYSFS_VULN(spectre_v1)
  VSYSFS_VULN(spectre_v2)
  VSYSFS_VULN(spec_store_bypass)
  VSYSFS_VULN(l1tf)
  VSYSFS_VULN(mds)
  VSYSFS_VULN(tsx_async_abort)
  VSYSFS_VULN(itlb_multihit)
  VSYSFS_VULN(srbds)
  VSYSFS_VULN(mmio_stale_data)
  VSYSFS_VULN(retbleed)
  VSYSFS_VULN(spec_rstack_overflow)
  VSYSFS_VULN(gather_data_sampling)
  VSYSFS_VULN(reg_file_data_sampling)
#undef VSYSFS_VULN

 private:
  core::Status show(core::PageBuffer& buf, std::string_view name) const;
  const Values values_;
};

}  // namespace vsysfs::devices
