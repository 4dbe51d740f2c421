#pragma once

// The files every bus_register()ed bus has under /sys/bus/NAME/
// (drivers/base/bus.c bus_add_attrs/add_probe_files/bus_uevent_store), for
// the buses the machine's sections populate: cpu, node, memory
// (subsys_system_register) and pci (bus_register). The xen_memory bus has
// its own (devices/xen/xen_balloon_bus.hpp).
//
//   file (bus/NAME/)      mode  what
//   devices/, drivers/    dir   one link per device / one directory per driver
//   drivers_autoprobe     0644  "%d\n" (1 at boot); store: '0' first -> 0, else 1
//   drivers_probe         0200  a device name (bus_find_device_by_name, a
//                               sysfs_streq match): ENODEV when the bus has no
//                               such device, else bus_rescan_devices_helper:
//                               an unbound device is offered to the bus's
//                               drivers (device_attach, the hook a bus with
//                               drivers sets: pci, devices/net/
//                               netdev_pci_driver.hpp), EINVAL when that
//                               fails, else the count (a bound device stays
//                               bound; the cpu, node and memory buses have no
//                               drivers to bind)
//   uevent                0200  kobject_synth_uevent on the bus kobject,
//                               SUBSYSTEM=bus (core/kobject_uevent.hpp)
//
// Thread-safety: drivers_autoprobe is an atomic; the device lookup is the
// tree's (its own lock); the attach hook is under a leaf mutex, copied out
// and called with nothing held.

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/tree.hpp"

namespace vsysfs::devices {

class Machine;

class SubsysBus {
 public:
  SubsysBus(core::Env& env, core::Tree& tree, std::string name)
      : env_(env), tree_(tree), name_(std::move(name)) {}

  static std::span<const core::AttributeGroup<SubsysBus>> groups();

  // Locking: none. Context: FUSE worker.
  core::Status drivers_autoprobe_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> drivers_autoprobe_store(const core::Caller& caller,
                                                    std::string_view in);
  core::Result<std::size_t> drivers_probe_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

  const std::string& name() const { return name_; }
  // device_attach of the named device for drivers_probe: an errno when the
  // probe fails. Set by the section that builds the bus's drivers.
  using Attach = std::function<core::Status(const core::Caller&, std::string_view)>;
  void set_attach(Attach fn);

 private:
  core::Env& env_;
  core::Tree& tree_;
  const std::string name_;
  std::atomic<int> drivers_autoprobe_{1};
  core::Mutex attach_mu_{"subsys_bus.attach"};  // Order: leaf
  Attach attach_ GUARDED_BY(attach_mu_);
};

// A device directory whose only own file is `uevent` (drivers/base/core.c
// uevent_show/uevent_store): the subsystem roots devices/system/cpu and
// devices/system/node (subsys_system_register's root device) and a PCI
// host bridge (devices/pci0000:00). None has a bus or class, so the file is
// empty and dev_uevent_filter drops a synthetic event (the store still
// parses it: EINVAL for a bad action). libudev takes such a directory as
// the parent device of the entries below it.
//
//   uevent  0644  empty; store: kobject_synth_uevent, no event sent
class UeventOnlyDevice {
 public:
  UeventOnlyDevice(core::Env& env, std::string devpath) : env_(env), devpath_(std::move(devpath)) {}
  static std::span<const core::AttributeGroup<UeventOnlyDevice>> groups();
  // Locking: none. Context: FUSE worker.
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

 private:
  core::Env& env_;
  const std::string devpath_;  // "/devices/system/cpu"
};
// Adds `uevent` to the directory PATH (relative to the mount), kept alive by
// the machine; idempotent.
void add_uevent_only_device(core::Env& env, core::Tree& tree, Machine& machine,
                            const std::string& path);

// Adds bus/NAME with its devices/ and drivers/ directories and the files
// above (idempotent: a second call for the same bus does nothing) and
// returns the bus object, kept alive by the machine.
std::shared_ptr<SubsysBus> add_subsys_bus(core::Env& env, core::Tree& tree, Machine& machine,
                                          const std::string& name);

}  // namespace vsysfs::devices
