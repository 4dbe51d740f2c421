#pragma once

// NUMA node directories: /sys/devices/system/node and its nodeN/ children
// (kernel: drivers/base/node.c, mm/hugetlb.c hugetlb_register_node;
// docs/kernel-semantics.md section 4, modern formats per section 9.2), over NumaModel.
//
//   devices/system/node/            (NodeRoot)
//     possible, online               0444  "%*pbl\n" node lists (N_POSSIBLE, N_ONLINE)
//     has_normal_memory, has_memory  0444  N_NORMAL_MEMORY, N_MEMORY (equal: no HIGHMEM)
//     has_cpu                        0444  N_CPU: nodes with an online CPU
//     has_generic_initiator          0444  always empty ("\n")
//   devices/system/node/nodeN/      (NumaNode)
//     cpumap                         0444  bin, size CPUMAP_FILE_MAX_BYTES: "%*pb\n" of the
//                                          node's CPUs AND cpu_online_mask, nr_cpu_ids wide (4.2)
//     cpulist                        0444  bin, size CPULIST_FILE_MAX_BYTES: "%*pbl\n" (4.3)
//     meminfo                        0444  "Node N Label:" in a 16-character field, "%8lu kB" (4.4)
//     numastat                       0444  the six counters (4.5)
//     distance                       0444  one row, to every online node (4.6)
//     vmstat                         0444  zone, NUMA event and node counters (4.7)
//     uevent                         0644  empty; store: kobject_synth_uevent
//     cpuM -> ../../cpu/cpuM               every present CPU of the node
//     hugepages/                                          only with PSE ([numa] pse; not on
//                                                         a Xen PV guest by default)
//     hugepages/hugepages-2048kB/nr_hugepages       0644  kstrtoul base 10; grows/shrinks
//                                                         the node's persistent pool
//     hugepages/hugepages-2048kB/free_hugepages     0444
//     hugepages/hugepages-2048kB/surplus_hugepages  0444
//     hugepages/hugepages-1048576kB/                      with GBPAGES ([numa] pdpe1gb):
//       nr_hugepages 0644, free_hugepages 0444,           the node's 1 GiB pool, as above
//       surplus_hugepages 0444
//       demote_size  0644                                 the hstate's, as kernel/mm/hugepages
//       demote       0200                                 kstrtoul base 10; demotes free
//                                                         1 GiB pages of this node (hugetlb.hpp)
//   bus/node/devices/nodeN -> ../../../devices/system/node/nodeN
//
// The machine description's [numa] section (see machines/default.toml):
//   distance = [[10, 21], [21, 10]]   SLIT rows; absent: 10 local, 20 remote
//   threads_per_core, possible_cpus, nr_cpus (NR_CPUS), offline_cpus = "list",
//   zonelist_penalty = "add1" | "add_countdown" | "assign" (see numa_machine.cpp)
//   pse = true                        the CPU has PSE: hugetlb exists (numa_machine.cpp)
//   pdpe1gb = true                    the CPU has GBPAGES: the 1 GiB hstate exists
//   [[numa.node]] cpus = "0-1,4-5", memory_mb, hugepages_2m, hugepages_1g, package
//
// Thread-safety: every callback reads or changes the NumaModel, which locks
// internally; the only state of a device is NumaNode's meminfo text, under
// its own leaf mutex (never held while the model's is taken).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

// "%*pb\n" and "%*pbl\n" of a CPU set over nr_cpu_ids bits (shared with cpu.cpp).
std::string cpu_mask_string(const std::vector<unsigned>& cpus, unsigned nbits);
std::string cpu_list_string(const std::vector<unsigned>& cpus, unsigned nbits);
// CPUMAP_FILE_MAX_BYTES / CPULIST_FILE_MAX_BYTES for NR_CPUS = nr_cpus.
std::size_t cpumap_file_max_bytes(unsigned nr_cpus);
std::size_t cpulist_file_max_bytes(unsigned nr_cpus);
// A bin attribute read of `text` at `pos` (what the kernel's bin cpumap
// readers do with their freshly formatted string).
std::size_t read_slice(std::string_view text, std::uint64_t pos, std::span<char> out);

class NodeRoot {
 public:
  explicit NodeRoot(std::shared_ptr<NumaModel> model) : model_(std::move(model)) {}
  static std::span<const core::AttributeGroup<NodeRoot>> groups();

  // Locking: the model's. Context: FUSE worker.
  core::Status possible_show(core::PageBuffer& buf) const;
  core::Status online_show(core::PageBuffer& buf) const;
  core::Status has_normal_memory_show(core::PageBuffer& buf) const;
  core::Status has_memory_show(core::PageBuffer& buf) const;
  core::Status has_cpu_show(core::PageBuffer& buf) const;
  core::Status has_generic_initiator_show(core::PageBuffer& buf) const;

 private:
  std::shared_ptr<NumaModel> model_;
};

class NumaNode {
 public:
  NumaNode(core::Env& env, std::shared_ptr<NumaModel> model, int nid)
      : env_(env), model_(std::move(model)), nid_(nid) {}
  // hugetlb_register_node: hugepages/hugepages-2048kB where hugetlb exists
  // (NumaModel::hugetlb_supported), hugepages-1048576kB with the 1 GiB
  // hstate too; neither (no hugepages directory) without PSE.
  static std::span<const core::AttributeGroup<NumaNode>> groups(const NumaModel& model);

  int nid() const { return nid_; }

  // Locking: the model's. Context: FUSE worker.
  core::Result<std::size_t> cpumap_read(const core::Caller&, std::uint64_t pos, std::span<char> out);
  core::Result<std::size_t> cpulist_read(const core::Caller&, std::uint64_t pos, std::span<char> out);
  std::size_t cpumap_size() const;
  std::size_t cpulist_size() const;
  core::Status meminfo_show(core::PageBuffer& buf) const;
  core::Status numastat_show(core::PageBuffer& buf) const;
  core::Status distance_show(core::PageBuffer& buf) const;
  core::Status vmstat_show(core::PageBuffer& buf) const;
  // The hugepage counts are table lines (numa_node.cpp).
  // Locking: the model's. Context: FUSE worker; logs "numa"/"nr_hugepages".
  core::Result<std::size_t> nr_hugepages_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> nr_hugepages_1g_store(const core::Caller& caller, std::string_view in);
  // The 1 GiB directory's demote files (hugetlb.hpp). Locking: the model's;
  // logs "numa"/"demote".
  core::Result<std::size_t> demote_store(const core::Caller& caller, std::string_view in);
  core::Status demote_size_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> demote_size_store(const core::Caller& caller, std::string_view in);
  // kobject_synth_uevent (core/kobject_uevent.hpp). Locking: none.
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

 private:
  std::string cpumap_text() const;
  std::string cpulist_text() const;
  std::vector<unsigned> online_node_cpus() const;
  core::Result<std::size_t> hugepages_store(const core::Caller& caller, std::string_view in,
                                            HugeSize size);

  // meminfo's text with the counters it was formatted from: a read whose
  // snapshot has the same counters appends the text instead of formatting
  // 40 lines again (docs/performance.md). Keyed by the values themselves,
  // read under the model's lock on every read, so it cannot be stale.
  using MeminfoKey = std::array<std::uint64_t, 5 + kPageKinds>;
  static MeminfoKey meminfo_key(const NodeSnapshot& s);

  core::Env& env_;
  std::shared_ptr<NumaModel> model_;
  const int nid_;
  mutable core::Mutex meminfo_mu_{"numa.meminfo_text"};  // Order: leaf
  mutable std::optional<MeminfoKey> meminfo_key_ GUARDED_BY(meminfo_mu_);
  mutable std::string meminfo_text_ GUARDED_BY(meminfo_mu_);
};

}  // namespace vsysfs::devices
