#include "devices/numa/cpu_cache.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/kobject_uevent.hpp"
#include "devices/numa/numa_node.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<CacheDir> kDirAttrs[] = {
    VSYSFS_ATTR_RW(CacheDir, uevent),
};
constexpr core::AttributeGroup<CacheDir> kDirGroups[] = {{.name = "", .attrs = kDirAttrs}};

// drivers/base/cacheinfo.c cache_default_attrs, in its order (less the
// two policy files x86 never shows), plus the kobject's uevent.
constexpr core::DeviceAttribute<CacheIndex> kIndexAttrs[] = {
    VSYSFS_ATTR_RO(CacheIndex, id),
    VSYSFS_ATTR_RO(CacheIndex, type),
    VSYSFS_ATTR_RO(CacheIndex, level),
    VSYSFS_ATTR_RO(CacheIndex, shared_cpu_map),
    VSYSFS_ATTR_RO(CacheIndex, shared_cpu_list),
    VSYSFS_ATTR_RO(CacheIndex, coherency_line_size),
    VSYSFS_ATTR_RO(CacheIndex, ways_of_associativity),
    VSYSFS_ATTR_RO(CacheIndex, number_of_sets),
    VSYSFS_ATTR_RO(CacheIndex, size),
    VSYSFS_ATTR_RO(CacheIndex, physical_line_partition),
    VSYSFS_ATTR_RW(CacheIndex, uevent),
};
constexpr core::AttributeGroup<CacheIndex> kIndexGroups[] = {{.name = "", .attrs = kIndexAttrs}};

constexpr core::DeviceAttribute<CpuVulnerabilities> kVulnAttrs[] = {
    VSYSFS_ATTR_RO(CpuVulnerabilities, meltdown),
    VSYSFS_ATTR_RO(CpuVulnerabilities, spectre_v1),
    VSYSFS_ATTR_RO(CpuVulnerabilities, spectre_v2),
    VSYSFS_ATTR_RO(CpuVulnerabilities, spec_store_bypass),
    VSYSFS_ATTR_RO(CpuVulnerabilities, l1tf),
    VSYSFS_ATTR_RO(CpuVulnerabilities, mds),
    VSYSFS_ATTR_RO(CpuVulnerabilities, tsx_async_abort),
    VSYSFS_ATTR_RO(CpuVulnerabilities, itlb_multihit),
    VSYSFS_ATTR_RO(CpuVulnerabilities, srbds),
    VSYSFS_ATTR_RO(CpuVulnerabilities, mmio_stale_data),
    VSYSFS_ATTR_RO(CpuVulnerabilities, retbleed),
    VSYSFS_ATTR_RO(CpuVulnerabilities, spec_rstack_overflow),
    VSYSFS_ATTR_RO(CpuVulnerabilities, gather_data_sampling),
    VSYSFS_ATTR_RO(CpuVulnerabilities, reg_file_data_sampling),
};
constexpr core::AttributeGroup<CpuVulnerabilities> kVulnGroups[] = {
    {.name = "", .attrs = kVulnAttrs}};

}  // namespace

// --- CacheDir ---

std::span<const core::AttributeGroup<CacheDir>> CacheDir::groups() { return kDirGroups; }

// drivers/base/core.c uevent_show: the cache kobjects have no bus, class
// or type uevent hook, so there is nothing to print.
core::Status CacheDir::uevent_show(core::PageBuffer&) const { return {}; }

core::Result<std::size_t> CacheDir::uevent_store(const core::Caller& caller, std::string_view in) {
  // A device with neither bus nor class: uevent_filter drops the event,
  // and the store still returns the count.
  const std::string devpath = fmt::format("/devices/system/cpu/cpu{}/cache", cpu_);
  return core::uevent_store(env_, caller, {devpath, "", ""}, in);
}

// --- CacheIndex ---

std::span<const core::AttributeGroup<CacheIndex>> CacheIndex::groups() { return kIndexGroups; }

std::vector<unsigned> CacheIndex::shared() const {
  // cache_shared_cpu_map_setup/remove keep only online CPUs in the map.
  return model_->online_subset(model_->cache_cpus(cpu_, leaf()));
}

core::Status CacheIndex::id_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", model_->cache_id(cpu_, leaf()));
  return {};
}
core::Status CacheIndex::level_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", leaf().level);
  return {};
}
core::Status CacheIndex::type_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", cache_type_name(leaf().type));
  return {};
}
// size_show: "%uK\n", this_leaf->size >> 10.
core::Status CacheIndex::size_show(core::PageBuffer& buf) const {
  buf.emit("{}K\n", leaf().size_kib);
  return {};
}
core::Status CacheIndex::coherency_line_size_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", leaf().line_size);
  return {};
}
core::Status CacheIndex::ways_of_associativity_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", leaf().ways);
  return {};
}
core::Status CacheIndex::number_of_sets_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", leaf().sets());
  return {};
}
core::Status CacheIndex::physical_line_partition_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", leaf().partition);
  return {};
}
// shared_cpu_map_show / shared_cpu_list_show: cpumap_print_to_pagebuf.
core::Status CacheIndex::shared_cpu_map_show(core::PageBuffer& buf) const {
  buf.append(cpu_mask_string(shared(), model_->nr_cpu_ids()));
  return {};
}
core::Status CacheIndex::shared_cpu_list_show(core::PageBuffer& buf) const {
  buf.append(cpu_list_string(shared(), model_->nr_cpu_ids()));
  return {};
}
core::Status CacheIndex::uevent_show(core::PageBuffer&) const { return {}; }
core::Result<std::size_t> CacheIndex::uevent_store(const core::Caller& caller,
                                                   std::string_view in) {
  const std::string devpath = fmt::format("/devices/system/cpu/cpu{}/cache/index{}", cpu_, index_);
  return core::uevent_store(env_, caller, {devpath, "", ""}, in);
}

// --- CpuVulnerabilities ---

std::span<const core::AttributeGroup<CpuVulnerabilities>> CpuVulnerabilities::groups() {
  return kVulnGroups;
}

// arch/x86/kernel/cpu/bugs.c cpu_show_common on a Skylake-SP (affected by
// Meltdown, L1TF, MDS, TAA, MMIO stale data, Retbleed, GDS; not by SRBDS,
// SRSO or RFDS) with SMT on and the default mitigations and microcode.
CpuVulnerabilities::Values CpuVulnerabilities::defaults() {
  return {
      "Mitigation: PTI",
      "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
      "Mitigation: IBRS; IBPB: conditional; STIBP: conditional; RSB filling; PBRSB-eIBRS: Not "
      "affected; BHI: Not affected",
      "Mitigation: Speculative Store Bypass disabled via prctl",
      "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT vulnerable",
      "Mitigation: Clear CPU buffers; SMT vulnerable",
      "Mitigation: Clear CPU buffers; SMT vulnerable",
      "KVM: Mitigation: Split huge pages",
      "Not affected",
      "Mitigation: Clear CPU buffers; SMT vulnerable",
      "Mitigation: IBRS",
      "Not affected",
      "Mitigation: Microcode",
      "Not affected",
  };
}

core::Status CpuVulnerabilities::show(core::PageBuffer& buf, std::string_view name) const {
  const auto it = std::find(kNames.begin(), kNames.end(), name);
  buf.emit("{}\n", values_[static_cast<std::size_t>(it - kNames.begin())]);
  return {};
}

#define VSYSFS_VULN(name)                                                     \
  core::Status CpuVulnerabilities::name##_show(core::PageBuffer& buf) const { \
    return show(buf, #name);                                                  \
  }
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

}  // namespace vsysfs::devices
