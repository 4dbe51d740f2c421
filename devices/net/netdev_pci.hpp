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
//   local_cpus       0444 %*pb          local_cpulist 0444 %*pbl: the online
//                    CPUs of numa_node (cpumask_of_node), every online CPU
//                    for -1 (cpu_online_mask)
//   modalias         0444 "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X\n"
//   enable           0644 "%u\n" enable_cnt (the bound driver's probe
//                    enabled it once, its remove disabled it); store:
//                    CAP_SYS_ADMIN (EPERM), kstrtobool, then EBUSY while a
//                    driver is bound; unbound: 1 enables (enable_cnt + 1),
//                    0 disables an enabled function, EIO a disabled one
//   driver_override  0644 "%s\n", "(null)" when unset; store:
//                    driver_set_override (drivers/base/driver.c): EINVAL
//                    for a count >= PAGE_SIZE - 1, the C string up to its
//                    first newline; "" or "\n" clears. pci_match_device
//                    then matches only the driver of that name (and that
//                    one whatever its ID table says)
//   resource         0444 one "0x%016llx 0x%016llx 0x%016llx\n" (start, end,
//                    flags) per resource up to PCI_BRIDGE_RESOURCES: the 6
//                    BARs and the ROM (CONFIG_PCI_IOV off, as on the
//                    reference machine); unused ones are all zero
//   power/           runtime PM (drivers/base/power/sysfs.c): control 0644
//                    "on" (pci_pm_init forbids runtime PM) | "auto", store
//                    sysfs_streq else EINVAL; runtime_status 0444 "active"
//                    (the driver has no runtime PM callbacks, so it never
//                    suspends); runtime_active_time 0444 ms since the
//                    device was added; runtime_suspended_time 0444 "0";
//                    autosuspend_delay_ms 0644, EIO both ways
//                    (!use_autosuspend)
//   resource0        0600 bin, the BAR's size: a 32-bit non-prefetchable
//                    memory BAR, mmap only: open works, read/write EIO
//   uevent           0644 DRIVER (while bound), PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
//                    PCI_SLOT_NAME, MODALIAS
//   config           0644 bin, 256 bytes; readers without CAP_SYS_ADMIN see
//                    only the first 64 (pci_read_config)
//
// The driver/ link and the driver's bind/unbind are the binding's
// (devices/net/netdev_pci_driver.hpp), which tells the function here.
//
// Thread-safety: identity is constant; numa_node, the writable config
// bytes, the bound driver, enable_cnt and driver_override are under the
// device's mutex.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "devices/numa/numa_model.hpp"

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
  // BAR0: a 32-bit non-prefetchable memory BAR (e1000's 128 KiB register
  // window by default), placed by the builder as firmware would.
  std::uint32_t bar0_start = 0xfebc0000;
  std::uint32_t bar0_size = 0x20000;
};

class PciFunction {
 public:
  // `numa`: the machine's topology, for local_cpus (may be null in tests
  // of the device alone: then every CPU below nr_cpu_ids is local).
  PciFunction(core::Env& env, PciConfig cfg, std::shared_ptr<NumaModel> numa = nullptr);
  static std::span<const core::AttributeGroup<PciFunction>> groups();
  const PciConfig& config() const { return cfg_; }

  // The constant files are table lines over config() (netdev_pci.cpp).
  // Locking: none (constant) unless stated. Context: process.
  core::Status local_cpus_show(core::PageBuffer& buf) const;
  core::Status local_cpulist_show(core::PageBuffer& buf) const;
  core::Status modalias_show(core::PageBuffer& buf) const;
  core::Status resource_show(core::PageBuffer& buf) const;
  core::Status enable_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> enable_store(const core::Caller& c, std::string_view in);
  // power/ (Locking: the device mutex for control).
  core::Status control_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> control_store(const core::Caller& c, std::string_view in);
  core::Status runtime_status_show(core::PageBuffer& buf) const;
  core::Status runtime_active_time_show(core::PageBuffer& buf) const;
  core::Status runtime_suspended_time_show(core::PageBuffer& buf) const;
  core::Status autosuspend_delay_ms_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> autosuspend_delay_ms_store(const core::Caller& c, std::string_view in);
  std::size_t resource0_size() const { return cfg_.bar0_size; }
  core::Result<std::size_t> resource0_read(const core::Caller& c, std::uint64_t pos,
                                           std::span<char> out);
  core::Result<std::size_t> resource0_write(const core::Caller& c, std::uint64_t pos,
                                            std::span<const char> in);
  // Locking: the device mutex.
  core::Status numa_node_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> numa_node_store(const core::Caller& c, std::string_view in);
  core::Status driver_override_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> driver_override_store(const core::Caller& c, std::string_view in);
  // The bound driver's name ("" for none) and driver_override ("" for
  // NULL). Locking: the device mutex.
  std::string driver() const;
  std::string driver_override() const;
  // really_probe / __device_release_driver: the driver's probe enables the
  // function (pci_enable_device), its remove disables it. Locking: the
  // device mutex; the caller holds the binding's device_lock.
  void set_driver(std::string name);
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> config_read(const core::Caller& c, std::uint64_t pos, std::span<char> out);
  core::Result<std::size_t> config_write(const core::Caller& c, std::uint64_t pos,
                                         std::span<const char> in);

  // Machine snapshots (netdev_state.cpp): what stores change. Locking:
  // the device mutex.
  struct State {
    int numa_node = -1;
    bool runtime_pm_allowed = false;
    std::uint8_t command_lo = 0, command_hi = 0, interrupt_line = 0;  // config 0x04, 0x05, 0x3c
    std::string driver_override;                                      // "" = NULL
  };
  State save_state() const;
  bool check_state(const State& s) const;
  void load_state(const State& s);

 private:
  std::vector<unsigned> local_cpu_set() const;

  core::Env& env_;
  const PciConfig cfg_;
  const std::shared_ptr<NumaModel> numa_;
  mutable core::Mutex mu_{"pci.device"};  // Order: leaf
  int numa_node_ GUARDED_BY(mu_);
  bool runtime_pm_allowed_ GUARDED_BY(mu_) = false;  // power/control "auto"
  const core::Nanos added_at_;                       // runtime PM active since
  std::array<std::uint8_t, 256> config_ GUARDED_BY(mu_){};
  std::string driver_ GUARDED_BY(mu_);           // dev->driver's name, "" = none
  unsigned enable_cnt_ GUARDED_BY(mu_) = 1;      // the boot's probe enabled it
  std::string driver_override_ GUARDED_BY(mu_);  // "" = NULL
};

}  // namespace vsysfs::devices
