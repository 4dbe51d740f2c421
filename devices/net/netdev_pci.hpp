#pragma once

// The PCI function a simulated NIC hangs off:
// /sys/devices/pci0000:00/0000:00:03.0 (drivers/pci/pci-sysfs.c, modern),
// with bus/pci/devices/BDF and the driver link. Only what the network
// model needs: identity, the NUMA node and the config space that lspci and
// hwloc read. docs/kernel-semantics.md section 5.1 ("the parent's numa_node").
//
//   vendor, device, subsystem_vendor, subsystem_device  0444 "0x%04x\n"
//   class            0444 "0x%06x\n"     revision 0444 "0x%02x\n"
//   irq              0444 "%u\n"
//   numa_node        0644 "%d\n"; store: CAP_SYS_ADMIN (EPERM), kstrtoint,
//                    EINVAL unless -1 or an online node; taints, logs
//   local_cpus       0444 %*pb          local_cpulist 0444 %*pbl
//   uevent           0644 DRIVER, PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
//                    PCI_SLOT_NAME, MODALIAS
//   config           0644 bin, 256 bytes; readers without CAP_SYS_ADMIN see
//                    only the first 64 (pci_read_config)
//
// Thread-safety: identity is constant; numa_node and the writable config
// bytes are under the device's mutex.

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"

namespace vsysfs::devices {

struct PciConfig {
  std::string slot = "0000:00:03.0";
  std::string driver = "vnic";
  std::uint16_t vendor = 0x8086, device = 0x100e;  // what QEMU puts at 00:03.0
  std::uint16_t subsystem_vendor = 0x1af4, subsystem_device = 0x1100;
  std::uint32_t class_code = 0x020000;  // Ethernet controller
  std::uint8_t revision = 0x03;
  unsigned irq = 11;
  int numa_node = -1;
  unsigned nr_cpu_ids = 4;
  unsigned nr_node_ids = 1;
};

class PciFunction {
 public:
  PciFunction(core::Env& env, PciConfig cfg);
  static std::span<const core::AttributeGroup<PciFunction>> groups();
  const PciConfig& config() const { return cfg_; }

  // The constant files are table lines over config() (netdev_pci.cpp).
  // numa_node: Locking: the device mutex. The rest: Locking: none unless
  // stated. Context: process.
  core::Status numa_node_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> numa_node_store(const core::Caller& c, std::string_view in);
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> config_read(const core::Caller& c, std::uint64_t pos, std::span<char> out);
  core::Result<std::size_t> config_write(const core::Caller& c, std::uint64_t pos,
                                         std::span<const char> in);

 private:
  core::Env& env_;
  const PciConfig cfg_;
  mutable core::Mutex mu_{"pci.device"};  // Order: leaf
  int numa_node_ GUARDED_BY(mu_);
  std::array<std::uint8_t, 256> config_ GUARDED_BY(mu_){};
};

}  // namespace vsysfs::devices
