#pragma once

// The xen_memory subsystem around the balloon device: /sys/bus/xen_memory/
// (subsys_system_register(&balloon_subsys, NULL) in drivers/xen/
// xen-balloon.c registers a bus type with no drivers).
// docs/kernel-semantics.md section 3.1; section 1.2 for modes.
//
//   file (bus/xen_memory/)    mode  what
//   devices/xen_memory0       link  ../../../devices/system/xen_memory/xen_memory0
//   drivers/                  dir   empty: no driver binds to xen_memory0
//   drivers_autoprobe         0644  "%d\n"; store: '0' first -> 0, else 1
//   drivers_probe             0200  a device name (sysfs_streq): ENODEV when
//                                   no such device, else count (nothing binds)
//   uevent                    0200  kobject_synth_uevent on the bus kobject
//                                   (core/kobject_uevent.hpp)
//
// Thread-safety: drivers_autoprobe is an atomic; the rest is stateless.

#include <atomic>
#include <span>
#include <string_view>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/result.hpp"

namespace vsysfs::devices {

class XenMemoryBus {
 public:
  explicit XenMemoryBus(core::Env& env) : env_(env) {}

  static std::span<const core::AttributeGroup<XenMemoryBus>> groups();

  // Locking: none. Context: FUSE worker.
  core::Status drivers_autoprobe_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> drivers_autoprobe_store(const core::Caller& caller,
                                                    std::string_view in);
  core::Result<std::size_t> drivers_probe_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

 private:
  // Machine snapshots (xen_state.cpp, docs/snapshot.md).
  friend class XenStateHandler;

  core::Env& env_;
  std::atomic<int> drivers_autoprobe_{1};
};

}  // namespace vsysfs::devices
