#pragma once

// CPU devices: /sys/devices/system/cpu (kernel: drivers/base/cpu.c,
// drivers/base/topology.c, drivers/base/core.c online_show/online_store),
// over the CPUs of NumaModel. Reference docs/kernel-semantics.md section 4
// (cpumap/list formats 4.2/4.3; the node back-link 4.1).
//
//   devices/system/cpu/            (CpuRoot)
//     online, possible, present, offline  0444  "%*pbl\n"; offline = possible & ~online
//     kernel_max                          0444  "%d\n" NR_CPUS - 1
//   devices/system/cpu/cpuN/        (CpuDevice)
//     online                         0644  "%u\n"; kstrtobool, device_online/offline.
//                                          Not on cpu0 (not hotpluggable).
//     uevent                         0644
//     "MODALIAS=cpu:type:x86,ven%04Xfam%04Xmod%04X:feature:,%04X...\n"
//                                          (a Skylake-SP, CPUID.1:EDX features only)
//     nodeM -> ../../node/nodeM            the CPU's node
//     subsystem -> ../../../../bus/cpu
//     topology/                            only while the CPU is online (removed by
//                                          the CPUHP_TOPOLOGY_PREPARE teardown)
//       physical_package_id, die_id, core_id   0444 "%d\n"
//       core_cpus, thread_siblings, core_siblings, die_cpus, package_cpus
//                                      0444  bin (CPUMAP_FILE_MAX_BYTES) "%*pb\n"
//       *_list of each                 0444  bin (CPULIST_FILE_MAX_BYTES) "%*pbl\n"
//     Sibling masks hold online CPUs only (x86 set_cpu_sibling_map).
//     cache/                               only while online: see cpu_cache.hpp
//     cpuidle/                             only while online, with a cpuidle
//                                          driver: see cpuidle.hpp
//   devices/system/cpu/vulnerabilities/    see cpu_cache.hpp
//   bus/cpu/devices/cpuN -> ../../../devices/system/cpu/cpuN
//
// Thread-safety: hotplug (online_store) is serialised by hotplug_mu_
// (lock_device_hotplug); the model locks its own state; reads take no lock
// of ours.

#include <memory>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/tree.hpp"
#include "devices/numa/cpu_cache.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

class CpuRoot {
 public:
  explicit CpuRoot(std::shared_ptr<NumaModel> model) : model_(std::move(model)) {}
  static std::span<const core::AttributeGroup<CpuRoot>> groups();

  // Locking: the model's. Context: FUSE worker.
  core::Status online_show(core::PageBuffer& buf) const;
  core::Status possible_show(core::PageBuffer& buf) const;
  core::Status present_show(core::PageBuffer& buf) const;
  core::Status offline_show(core::PageBuffer& buf) const;
  core::Status kernel_max_show(core::PageBuffer& buf) const;

 private:
  std::shared_ptr<NumaModel> model_;
};

class CpuDevice;

// The hotplug side shared by all cpuN devices (device_hotplug_lock and the
// tree, to add/remove topology/ directories).
class CpuidleRoot;
class CpuHotplug {
 public:
  CpuHotplug(core::Env& env, core::Tree& tree, std::shared_ptr<CpuidleRoot> cpuidle)
      : env_(env), tree_(tree), cpuidle_(std::move(cpuidle)) {}
  core::Env& env() { return env_; }
  core::Tree& tree() { return tree_; }
  core::Mutex& mu() { return mu_; }
  // The cpuidle interface (null when cpuidle is disabled); set at build.
  CpuidleRoot* cpuidle() { return cpuidle_.get(); }

 private:
  core::Env& env_;
  core::Tree& tree_;
  const std::shared_ptr<CpuidleRoot> cpuidle_;
  core::Mutex mu_{"cpu.device_hotplug_lock", 10};  // Order: before numa.pgdat (leaf)
};

class CpuDevice : public std::enable_shared_from_this<CpuDevice> {
 public:
  CpuDevice(std::shared_ptr<NumaModel> model, std::shared_ptr<CpuHotplug> hotplug, unsigned cpu)
      : model_(std::move(model)), hotplug_(std::move(hotplug)), cpu_(cpu) {}
  static std::span<const core::AttributeGroup<CpuDevice>> groups();
  static std::span<const core::AttributeGroup<CpuDevice>> topology_groups();

  unsigned cpu() const { return cpu_; }
  std::string path() const;
  // Adds cpuN/topology and cpuN/cache (at boot for online CPUs, and when
  // one comes online); removes both when it goes offline.
  void add_topology();
  void remove_topology();

  // Locking: none of ours. Context: FUSE worker.
  core::Status online_show(core::PageBuffer& buf) const;
  // MODALIAS=cpu:type:x86,...; a store is a synthetic uevent (SUBSYSTEM=cpu).
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);
  // Locking: hotplug mutex, then the model's. Context: FUSE worker; adds or
  // removes topology/ in the tree and logs "numa"/"cpu_online".
  core::Result<std::size_t> online_store(const core::Caller& caller, std::string_view in);

  core::Status physical_package_id_show(core::PageBuffer& buf) const;
  core::Status die_id_show(core::PageBuffer& buf) const;
  core::Status core_id_show(core::PageBuffer& buf) const;

#define VSYSFS_CPU_MASK_PAIR(name)                                                             \
  core::Result<std::size_t> name##_read(const core::Caller&, std::uint64_t, std::span<char>);   \
  core::Result<std::size_t> name##_list_read(const core::Caller&, std::uint64_t, std::span<char>);
  VSYSFS_CPU_MASK_PAIR(core_cpus)
  VSYSFS_CPU_MASK_PAIR(thread_siblings)
  VSYSFS_CPU_MASK_PAIR(core_siblings)
  VSYSFS_CPU_MASK_PAIR(die_cpus)
  VSYSFS_CPU_MASK_PAIR(package_cpus)
#undef VSYSFS_CPU_MASK_PAIR
  std::size_t mask_size() const;
  std::size_t list_size() const;

 private:
  std::vector<unsigned> online_only(std::vector<unsigned> cpus) const;
  core::Result<std::size_t> mask_read(const std::vector<unsigned>& cpus, std::uint64_t pos,
                                      std::span<char> out) const;
  core::Result<std::size_t> list_read(const std::vector<unsigned>& cpus, std::uint64_t pos,
                                      std::span<char> out) const;

  std::shared_ptr<NumaModel> model_;
  std::shared_ptr<CpuHotplug> hotplug_;
  const unsigned cpu_;
};

// Adds devices/system/cpu, every present cpuN, the node links and
// bus/cpu/devices (called by the [numa] section builder).
// `cpuidle` (null: cpuidle disabled) gets each online CPU's cpuidle/ states.
void add_cpu_devices(core::Env& env, core::Tree& tree, std::shared_ptr<NumaModel> model,
                     CpuVulnerabilities::Values vulnerabilities,
                     std::vector<std::shared_ptr<void>>& keep,
                     std::shared_ptr<CpuidleRoot> cpuidle = nullptr);

}  // namespace vsysfs::devices
