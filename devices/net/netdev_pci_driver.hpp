#pragma once

// The PCI driver core for the simulated NICs: which driver each PCI function
// is bound to, and the files that change it (drivers/base/bus.c bind_store,
// unbind_store, drivers_probe_store; drivers/base/dd.c
// device_driver_attach, __driver_probe_device, really_probe,
// __device_release_driver; drivers/pci/pci-driver.c pci_match_device,
// pci_match_one_device, new_id_store, remove_id_store, pci_add_dynid).
//
//   bus/pci/drivers/DRIVER/
//     bind       0200  a device name (bus_find_device_by_name: sysfs_streq);
//                      ENODEV when the bus has no such device or the driver
//                      does not match it (pci_match_device: driver_override,
//                      dynamic ids, then the static table), EBUSY when the
//                      device has a driver already; else the probe below
//     unbind     0200  a device name; ENODEV unless the device is bound to
//                      this driver; else the remove below
//     new_id     0200  sscanf "%x %x %x %x %x %x %lx": vendor device
//                      [subvendor subdevice class class_mask driver_data],
//                      sub ids default to PCI_ANY_ID (0xffffffff); EINVAL
//                      for fewer than 2 fields; with fewer than 7, EEXIST
//                      when the driver already matches a device of those
//                      ids; EINVAL for a driver_data no static entry has
//                      (the table's entries all have 0); then the id is
//                      added and the driver attaches to every unbound
//                      device it now matches (driver_attach)
//     remove_id  0200  sscanf "%x %x %x %x %x %x"; EINVAL under 2 fields;
//                      removes the first dynamic id matching vendor, device,
//                      subvendor/subdevice (PCI_ANY_ID: any) and class under
//                      class_mask; ENODEV when none does
//     uevent     0200  kobject_synth_uevent on the driver's kobject
//                      (DEVPATH=/bus/pci/drivers/NAME, SUBSYSTEM=drivers:
//                      the drivers kset has no uevent ops)
//     0000:BB:SS.F     link to each bound device
//   bus/pci/drivers_probe (devices/machine/subsys_bus.hpp) probes an unbound
//                      device with the first driver that matches it
//   devices/.../BDF/driver  link, present while bound
//
// The driver's static ID table holds {vendor, device, PCI_ANY_ID,
// PCI_ANY_ID} of each function the machine file gives to it.
//
// Probe (really_probe -> the NIC driver's probe, as e1000_probe): the
// driver links, pci_enable_device, MSI-X on a function that has it (igb:
// msi_irqs/ appears), register_netdev (the interface's files
// come back under BDF/net/IF and class/net/IF; a "uevent" event with
// action add), driver_bound (action bind). The interface is as a fresh
// probe leaves it: down, counters 0, the MAC from the ROM.
// Remove (__device_release_driver -> e1000_remove): the driver links go,
// unregister_netdev (dev_close if up: the watchdog, NAPI and the rings
// stop; NETDEV_UNREGISTER; the files are removed, so a file open on them
// reads and writes ENODEV; action remove), MSI-X off (msi_irqs/ goes),
// pci_disable_device, action
// unbind (MODALIAS dropped).
//
// Deviation (docs/devices/net.md): a re-registered interface keeps its
// ifindex; the kernel's dev_index_reserve hands out the next free one.
//
// Locking: the function's device_lock (kRankDeviceLock) is held across a
// probe or a remove, as __device_driver_lock does; rtnl is taken inside it
// for the netdev part and released before the files are added or removed
// (the tree's lock is outermost for everything else and never held with a
// device lock by the tree itself). The dynamic ids are under the driver's
// mutex (leaf). Context: FUSE worker (process).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/kobject_uevent.hpp"
#include "core/locks.hpp"
#include "core/net_locks.hpp"
#include "core/tree.hpp"
#include "devices/net/netdev.hpp"
#include "devices/net/netdev_pci.hpp"
#include "devices/net/netdev_queues.hpp"

namespace vsysfs::devices {

class PciNicBus;
class PciNicDriver;

// include/linux/mod_devicetable.h struct pci_device_id.
struct PciDeviceId {
  std::uint32_t vendor = 0, device = 0;
  std::uint32_t subvendor = 0xffffffff, subdevice = 0xffffffff;  // PCI_ANY_ID
  std::uint32_t class_code = 0, class_mask = 0;
  unsigned long driver_data = 0;
};
inline constexpr std::uint32_t kPciAnyId = 0xffffffff;
// pci_match_one_device.
bool pci_match_one_device(const PciDeviceId& id, const PciConfig& dev);

// Adds the files of a registered interface: DIR (its directory, under its
// PCI function's net/ or devices/virtual/net/), device/ and subsystem
// links, class/net/IF and queues/. `up_to_root`: DIR's way back to the
// mount root. Returns DIR's kobject. Locking: none of the device's held.
core::Kobject add_netdev_files(core::Tree& tree, const std::string& dir,
                               const std::string& up_to_root, const std::string& pci_slot,
                               const std::shared_ptr<NetDevice>& dev,
                               const std::vector<std::shared_ptr<NetRxQueue>>& rx,
                               const std::vector<std::shared_ptr<NetTxQueue>>& tx);

// msi_irqs/ under DIR (the function's directory) while its MSI-X is
// enabled (msi_sysfs_create_group + msi_sysfs_populate_desc); nothing
// otherwise. Locking: none of the device's held.
void add_msi_irqs_files(core::Tree& tree, const std::string& pci_dir,
                        const std::shared_ptr<PciFunction>& pci);

// One NIC's PCI function and what its driver's probe builds on it.
class PciNic {
 public:
  PciNic(core::Env& env, core::Tree& tree, std::shared_ptr<PciFunction> pci,
         std::shared_ptr<NetDevice> dev, std::vector<std::shared_ptr<NetRxQueue>> rx,
         std::vector<std::shared_ptr<NetTxQueue>> tx);
  const std::string& slot() const { return pci_->config().slot; }
  const std::string& pci_dir() const { return pci_dir_; }
  const PciFunction& pci() const { return *pci_; }
  NetDevice& dev() const { return *dev_; }

  // The build: bound to `drv` with the files already there (the boot's probe).
  void set_booted_driver(PciNicDriver* drv);
  // Who is bound (nullptr: none). Locking: device_lock.
  PciNicDriver* driver() const;
  // __driver_probe_device with the device lock held: EBUSY when bound,
  // else really_probe. `caller` is the writer (nullptr: the machine).
  core::Status probe(const core::Caller* caller, PciNicDriver& drv);
  // device_release_driver when bound to `drv` (nullptr: any); ENODEV else.
  core::Status release(const core::Caller* caller, PciNicDriver* drv);

 private:
  void remove_files();
  void uevent_net(const core::Caller* caller, core::KobjAction a, const std::string& devpath);
  void uevent_pci(const core::Caller* caller, core::KobjAction a);

  core::Env& env_;
  core::Tree& tree_;
  const std::shared_ptr<PciFunction> pci_;
  const std::shared_ptr<NetDevice> dev_;
  const std::vector<std::shared_ptr<NetRxQueue>> rx_;
  const std::vector<std::shared_ptr<NetTxQueue>> tx_;
  const std::string pci_dir_;  // devices/pci0000:BB/BDF
  const std::string net_dir_;  // pci_dir_/net/IF
  // device_lock(dev). Order: before rtnl (a remove takes rtnl inside).
  mutable core::Mutex device_lock_{"device_lock", core::kRankDeviceLock};
  PciNicDriver* driver_ GUARDED_BY(device_lock_) = nullptr;
};

// A struct pci_driver: bus/pci/drivers/NAME.
class PciNicDriver {
 public:
  PciNicDriver(core::Env& env, std::string name, std::weak_ptr<PciNicBus> bus)
      : env_(env), name_(std::move(name)), bus_(std::move(bus)) {}
  static std::span<const core::AttributeGroup<PciNicDriver>> groups();
  const std::string& name() const { return name_; }
  void add_static_id(const PciDeviceId& id);
  // pci_match_device. Locking: the dynids mutex.
  bool match(const PciFunction& dev) const;

  core::Result<std::size_t> bind_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> unbind_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> new_id_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> remove_id_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> uevent_store(const core::Caller& c, std::string_view in);

 private:
  core::Env& env_;
  const std::string name_;
  const std::weak_ptr<PciNicBus> bus_;
  std::vector<PciDeviceId> id_table_;                   // built before the mount serves
  mutable core::Mutex dynids_mu_{"pci_driver.dynids"};  // Order: leaf
  std::vector<PciDeviceId> dynids_ GUARDED_BY(dynids_mu_);
};

// The PCI bus's NICs and drivers (constant after the build).
class PciNicBus {
 public:
  std::vector<std::shared_ptr<PciNic>> nics;
  std::vector<std::shared_ptr<PciNicDriver>> drivers;
  // bus_find_device_by_name (sysfs_streq); nullptr when absent.
  PciNic* find(std::string_view name) const;
  // device_attach of an unbound device: the first matching driver probes it
  // (bus/pci/drivers_probe). A bound device stays bound.
  core::Status device_attach(const core::Caller* caller, PciNic& nic);
};

}  // namespace vsysfs::devices
