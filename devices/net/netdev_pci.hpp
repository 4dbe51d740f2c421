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
//                    enabled it once and set bus mastering, its remove
//                    disabled it: the last disable clears the command
//                    register's bus master bit); store:
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
//                    reference machine); unused ones are all zero. An
//                    I350 function has BAR0 (memory), BAR2 (32 I/O ports)
//                    and BAR3 (16 KiB memory: the MSI-X table and PBA)
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
//   resource3        the same for an I350's BAR3
//   msi_irqs/        while MSI-X is enabled (kernel/irq/msi.c
//                    msi_sysfs_populate_desc, msi_mode_show): one 0444 file
//                    per vector named by its Linux IRQ number, "msix\n"
//                    (the directory is the driver's devres: it goes at
//                    unbind). Added and removed by the binding
//                    (PciMsiIrqs below)
//   uevent           0644 DRIVER (while bound), PCI_CLASS, PCI_ID, PCI_SUBSYS_ID,
//                    PCI_SLOT_NAME, MODALIAS
//   config           0644 bin, 256 bytes; readers without CAP_SYS_ADMIN see
//                    only the first 64 (pci_read_config). Writes reach
//                    only the command register and the interrupt line.
//                    An I350 (8086:1521) function's header has the
//                    capability list its silicon reports (lspci -vv of an
//                    I350; include/uapi/linux/pci_regs.h): status bit 4,
//                    pointer 0x34 -> [40] Power Management v3 -> [50] MSI
//                    (64-bit, maskable, 1 vector, disabled) -> [70] MSI-X
//                    (10 entries, table BAR3+0, PBA BAR3+0x2000) -> [a0]
//                    PCI Express v2 Endpoint, the end. While a driver is
//                    bound MSI-X is enabled (igb_set_interrupt_capability
//                    -> pci_enable_msix_range; msix_capability_init sets
//                    the enable bit and pci_intx_for_msi sets the command
//                    register's INTx disable); the driver's remove
//                    (igb_clear_interrupt_scheme -> pci_disable_msix ->
//                    pci_msix_shutdown) clears both. irq stays the INTx
//                    line (MSI-X leaves pdev->irq alone).
//
// Simplifications: the I350's extended capabilities (AER, serial number,
// ARI, SR-IOV, TPH, LTR, ACS from 0x100) and its VPD at 0xe0 are absent:
// config is 256 bytes, not the 4096 of a PCIe function. BAR2's resource2
// (port I/O through read/write) is not served. The vector count is igb's
// (igb_set_interrupt_capability) whatever driver is bound.
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
  // An I350 function (i350()): BAR2's I/O ports and BAR3, placed by the
  // builder; its MSI-X vectors (igb's count) and the first of their Linux
  // IRQ numbers (consecutive, unique on the machine).
  std::uint32_t bar2_start = 0;
  std::uint32_t bar3_start = 0;
  unsigned msix_vectors = 0;
  unsigned msix_irq_base = 0;
  bool i350() const { return vendor == 0x8086 && device == 0x1521; }
};

// The I350's BAR sizes and MSI-X table (Intel Ethernet Controller I350
// datasheet; lspci -v of an I350: "I/O ports [size=32]", "Memory [size=16K]",
// "MSI-X: Count=10").
inline constexpr std::uint32_t kI350Bar2Size = 32;
inline constexpr std::uint32_t kI350Bar3Size = 0x4000;
inline constexpr unsigned kI350MsixTableSize = 10;
// igb_set_interrupt_capability: a vector per RX queue, one per TX queue
// unless the queues are paired (igb_set_flag_queue_pairs: more than half
// of an I350's 8 RSS queues), and one for link ("other") interrupts.
// rss_queues is at most 8 (igb_get_max_rss_queues).
unsigned igb_msix_vectors(unsigned rx_queues, unsigned tx_queues);

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
  std::size_t resource3_size() const { return kI350Bar3Size; }
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
  // function (pci_enable_device) and its MSI-X, its remove disables both.
  // Locking: the device mutex; the caller holds the binding's device_lock.
  void set_driver(std::string name);
  // dev->msix_enabled (the capability's enable bit). Locking: the device mutex.
  bool msix_enabled() const;
  // The Linux IRQ numbers of the MSI-X vectors while enabled (msi_irqs/).
  std::vector<unsigned> msix_irqs() const;
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
  bool has_msix() const;  // an MSI-X capability and vectors to enable
  void set_msix_locked(bool on) REQUIRES(mu_);
  void pci_disable_device_locked() REQUIRES(mu_);  // enable_cnt_ > 0

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

// msi_irqs/ of a function with MSI-X enabled: one file per vector, named
// at run time by its IRQ number (msi_sysfs_populate_desc), so the table
// is built per function and lives as long as the files. Locking: none of
// its own (the mode comes from the function's msix_enabled()).
class PciMsiIrqs {
 public:
  PciMsiIrqs(std::shared_ptr<const PciFunction> pci, const std::vector<unsigned>& irqs);
  std::span<const core::AttributeGroup<PciMsiIrqs>> groups() const { return groups_; }
  // msi_mode_show: "msix" while dev->msix_enabled, else "msi".
  core::Status mode_show(core::PageBuffer& buf) const;

 private:
  const std::shared_ptr<const PciFunction> pci_;
  std::vector<std::string> names_;
  std::vector<core::DeviceAttribute<PciMsiIrqs>> attrs_;
  std::array<core::AttributeGroup<PciMsiIrqs>, 1> groups_;
};

}  // namespace vsysfs::devices
