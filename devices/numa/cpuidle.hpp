#pragma once

// The cpuidle sysfs interface (drivers/cpuidle/sysfs.c, Linux 6.12):
//
//   devices/system/cpu/cpuidle/           cpuidle_add_interface (absent when
//                                         cpuidle_disabled(): a Xen PV guest,
//                                         arch/x86/xen/setup.c disable_cpuidle)
//     available_governors   0444  each registered governor "%.*s " then "\n":
//                                 ladder menu teo haltpoll (drivers/cpuidle/
//                                 governors link order, all built in)
//     current_driver        0444  "intel_idle" (bare metal) or "none" (no driver:
//                                 a Xen HVM/PVH guest sees no MWAIT and no _CST)
//     current_governor      0644  the governor of highest rating (menu, 20);
//                                 store: sscanf "%16s" (EINVAL when empty), a
//                                 registered name (strncmp, 16) else EINVAL
//     current_governor_ro   0444  the same
//   devices/system/cpu/cpuN/cpuidle/stateK/  while cpuN is online, with a driver
//     name, desc            0444  "%s\n"
//     latency, residency    0444  "%u\n" microseconds
//     power                 0444  "%u\n" (POLL's power_usage -1 prints 4294967295)
//     usage, time, above, below, rejected  0444  "%llu\n" 0: idle entries are not
//                                 modelled (docs/standard-files.md)
//     default_status        0444  enabled | disabled
//     disable               0644  "%u\n" the user bit; store: CAP_SYS_ADMIN
//                                 (EPERM), kstrtouint base 0 (EINVAL), nonzero sets
//     s2idle/usage, s2idle/time  0444  states with enter_s2idle (not POLL)
//   intel_idle's Skylake-SP table (drivers/idle/intel_idle.c skx_cstates):
//   POLL, C1 (2/2 us), C1E (10/20), C6 (133/600).
//
// Thread-safety: the governor is guarded by cpuidle_lock (mu_); a state's
// disable bit is an atomic.

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/thread_annotations.hpp"
#include "core/tree.hpp"

namespace vsysfs::devices {

struct IdleStateInfo {
  const char* name;
  const char* desc;
  unsigned latency;
  unsigned residency;
  unsigned power;
  bool s2idle;
};

class CpuidleRoot {
 public:
  // `driver` "intel_idle" or "none".
  CpuidleRoot(core::Env& env, std::string driver) : env_(env), driver_(std::move(driver)) {}
  static std::span<const core::AttributeGroup<CpuidleRoot>> groups();

  // Locking: mu_ (current governor). Context: FUSE worker.
  core::Status available_governors_show(core::PageBuffer& buf) const;
  core::Status current_driver_show(core::PageBuffer& buf) const;
  core::Status current_governor_show(core::PageBuffer& buf) const;
  core::Status current_governor_ro_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> current_governor_store(const core::Caller& caller, std::string_view in);

  bool has_driver() const { return driver_ != "none"; }
  std::span<const IdleStateInfo> states() const;
  core::Env& env() { return env_; }

 private:
  core::Env& env_;
  const std::string driver_;
  mutable core::Mutex mu_{"cpuidle_lock"};  // Order: leaf
  std::string governor_ GUARDED_BY(mu_) = "menu";
};

class CpuidleState {
 public:
  CpuidleState(const IdleStateInfo& info) : info_(info) {}
  static std::span<const core::AttributeGroup<CpuidleState>> groups(bool s2idle);

  // Locking: none (atomics). Context: FUSE worker.
  core::Status disable_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> disable_store(const core::Caller& caller, std::string_view in);
  const IdleStateInfo& info() const { return info_; }

 private:
  const IdleStateInfo& info_;
  std::atomic<bool> disabled_by_user_{false};
};

// cpuidle_register_device / cpuidle_unregister_device for one CPU: adds or
// removes cpuN/cpuidle and its states (nothing without a driver).
void cpuidle_add_cpu(CpuidleRoot& root, core::Tree& tree, unsigned cpu);
void cpuidle_remove_cpu(core::Tree& tree, unsigned cpu);

}  // namespace vsysfs::devices
