// The NIC's PCI function (see netdev_pci.hpp).

#include "devices/net/netdev_pci.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <vector>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using Dev = PciFunction;

// drivers/pci/pci-sysfs.c pci_config_attr(field, format): a constant of
// the configuration header, one line each. Locking: none (constant).
#define PCI_CONFIG_ATTR(field, Fmt, ...) VSYSFS_ATTR_VALUE_RO(Dev, field, 0444, Fmt, __VA_ARGS__)

constexpr core::DeviceAttribute<Dev> kPciAttrs[] = {
    PCI_CONFIG_ATTR(vendor, fmt_0x<4>, [](const Dev& d) { return d.config().vendor; }),
    PCI_CONFIG_ATTR(device, fmt_0x<4>, [](const Dev& d) { return d.config().device; }),
    PCI_CONFIG_ATTR(subsystem_vendor, fmt_0x<4>,
                    [](const Dev& d) { return d.config().subsystem_vendor; }),
    PCI_CONFIG_ATTR(subsystem_device, fmt_0x<4>,
                    [](const Dev& d) { return d.config().subsystem_device; }),
    PCI_CONFIG_ATTR(class, fmt_0x<6>, [](const Dev& d) { return d.config().class_code; }),
    PCI_CONFIG_ATTR(revision, fmt_0x<2>, [](const Dev& d) { return d.config().revision; }),
    // irq_show: "%u\n" of pdev->irq.
    VSYSFS_ATTR_VALUE_RO(Dev, irq, 0444, fmt_udec, [](const Dev& d) { return d.config().irq; }),
    VSYSFS_ATTR_RO(Dev, local_cpus),
    VSYSFS_ATTR_RO(Dev, local_cpulist),
    VSYSFS_ATTR_RW(Dev, numa_node),
    VSYSFS_ATTR_RO(Dev, modalias),
    VSYSFS_ATTR_RO(Dev, resource),
    VSYSFS_ATTR_RW(Dev, enable),
    VSYSFS_ATTR_RW(Dev, driver_override),
    VSYSFS_ATTR_RW(Dev, uevent),
};
constexpr core::BinAttribute<Dev> kPciBin[] = {
    VSYSFS_BIN_ATTR_RW(Dev, config, 0644, 256),
    // pci_create_attr: a memory BAR's file has only mmap, so open succeeds
    // both ways (kernfs counts mmap as a way to read and write) and read(2)
    // and write(2) are EIO (sysfs_kf_bin_read/_write without battr->read/
    // write). mmap is not served here.
    {"resource0", 0600, 0, &Dev::resource0_read, &Dev::resource0_write, &Dev::resource0_size},
    // An I350's BAR3, the same kind of BAR (pci_create_resource_files:
    // a file per BAR with a length).
    {"resource3", 0600, 0, &Dev::resource0_read, &Dev::resource0_write, &Dev::resource3_size},
};
// resourceN only for the BARs the function has.
mode_t pci_bar_visible(const Dev& d, std::string_view name, mode_t mode) {
  if (name == "resource3" && !d.config().i350()) return 0;
  return mode;
}
// drivers/base/power/sysfs.c power_attrs + runtime_attrs.
constexpr core::DeviceAttribute<Dev> kPower[] = {
    VSYSFS_ATTR_RW(Dev, control),
    VSYSFS_ATTR_RO(Dev, runtime_active_time),
    VSYSFS_ATTR_RO(Dev, runtime_status),
    VSYSFS_ATTR_RO(Dev, runtime_suspended_time),
    VSYSFS_ATTR_RW(Dev, autosuspend_delay_ms),
};
constexpr core::AttributeGroup<Dev> kPciGroups[] = {
    {.name = "", .attrs = kPciAttrs, .bin_attrs = kPciBin, .is_visible = pci_bar_visible},
    {.name = "power", .attrs = kPower},
};

// include/linux/numa.h MAX_NUMNODES with CONFIG_NODES_SHIFT=10
constexpr int kMaxNumNodes = 1024;

void put16(std::array<std::uint8_t, 256>& c, std::size_t off, std::uint16_t v) {
  c[off] = static_cast<std::uint8_t>(v & 0xff);
  c[off + 1] = static_cast<std::uint8_t>(v >> 8);
}
void put32(std::array<std::uint8_t, 256>& c, std::size_t off, std::uint32_t v) {
  put16(c, off, static_cast<std::uint16_t>(v & 0xffff));
  put16(c, off + 2, static_cast<std::uint16_t>(v >> 16));
}

// include/uapi/linux/pci_regs.h
constexpr std::size_t PCI_COMMAND = 0x04, PCI_STATUS = 0x06, PCI_CAPABILITY_LIST = 0x34;
constexpr std::uint16_t PCI_COMMAND_INTX_DISABLE = 0x400, PCI_STATUS_CAP_LIST = 0x10;
constexpr std::uint8_t PCI_COMMAND_MASTER = 0x04;
constexpr std::uint8_t PCI_CAP_ID_PM = 0x01, PCI_CAP_ID_MSI = 0x05, PCI_CAP_ID_EXP = 0x10,
                       PCI_CAP_ID_MSIX = 0x11;
constexpr std::uint16_t PCI_MSI_FLAGS_64BIT = 0x0080, PCI_MSI_FLAGS_MASKBIT = 0x0100;
constexpr std::uint16_t PCI_MSIX_FLAGS_ENABLE = 0x8000;
constexpr std::uint32_t PCI_BASE_ADDRESS_SPACE_IO = 0x01;
// Where the I350 puts its capabilities (lspci -vv of an I350).
constexpr std::size_t kPmCap = 0x40, kMsiCap = 0x50, kMsixCap = 0x70, kExpCap = 0xa0;
constexpr std::size_t kMsixFlags = kMsixCap + 2;  // PCI_MSIX_FLAGS

// The I350's capability list, its registers as the silicon and a
// typical BIOS leave them before the OS changes anything.
void i350_capabilities(std::array<std::uint8_t, 256>& c) {
  put16(c, PCI_STATUS, PCI_STATUS_CAP_LIST);
  c[PCI_CAPABILITY_LIST] = kPmCap;
  // Power Management v3: PMC DSI+, PME from D0, D3hot, D3cold; PMCSR D0,
  // NoSoftRst+, DScale 1 ("PME(D0+,D1-,D2-,D3hot+,D3cold+)").
  c[kPmCap] = PCI_CAP_ID_PM;
  c[kPmCap + 1] = kMsiCap;
  put16(c, kPmCap + 2, 0xc823);
  put16(c, kPmCap + 4, 0x2008);
  // MSI: 64-bit address, per-vector masking, one vector, disabled (igb
  // uses MSI-X); address, data, mask and pending all zero.
  c[kMsiCap] = PCI_CAP_ID_MSI;
  c[kMsiCap + 1] = kMsixCap;
  put16(c, kMsiCap + 2, PCI_MSI_FLAGS_64BIT | PCI_MSI_FLAGS_MASKBIT);
  // MSI-X: table size N-1, disabled until a driver enables it; the table
  // at BAR3 offset 0, the PBA at BAR3 offset 0x2000 (PCI_MSIX_TABLE_BIR).
  c[kMsixCap] = PCI_CAP_ID_MSIX;
  c[kMsixCap + 1] = kExpCap;
  put16(c, kMsixFlags, kI350MsixTableSize - 1);
  put32(c, kMsixCap + 4, 0x00000000 | 3);
  put32(c, kMsixCap + 8, 0x00002000 | 3);
  // PCI Express v2, Endpoint, the last capability. DevCap: MaxPayload
  // 512, L0s <512ns, L1 <64us, RBE+, FLReset+; DevCtl: RlxdOrd+ NoSnoop+
  // MaxPayload 256 MaxReadReq 512; LnkCap: 5GT/s x4, ASPM L0s L1, exit
  // L0s <4us L1 <32us; LnkCtl CommClk+; LnkSta 5GT/s x4 SlotClk+;
  // DevCap2: completion timeout ranges ABCD, TimeoutDis+; LnkCtl2: target
  // 5GT/s; LnkSta2: de-emphasis -3.5dB.
  c[kExpCap] = PCI_CAP_ID_EXP;
  c[kExpCap + 1] = 0x00;
  put16(c, kExpCap + 0x02, 0x0002);      // PCI_EXP_FLAGS: v2, Endpoint
  put32(c, kExpCap + 0x04, 0x10008cc2);  // PCI_EXP_DEVCAP
  put16(c, kExpCap + 0x08, 0x2830);      // PCI_EXP_DEVCTL
  put32(c, kExpCap + 0x0c, 0x0002ec42);  // PCI_EXP_LNKCAP
  put16(c, kExpCap + 0x10, 0x0040);      // PCI_EXP_LNKCTL
  put16(c, kExpCap + 0x12, 0x1042);      // PCI_EXP_LNKSTA
  put32(c, kExpCap + 0x24, 0x0000001f);  // PCI_EXP_DEVCAP2
  put16(c, kExpCap + 0x30, 0x0002);      // PCI_EXP_LNKCTL2
}

}  // namespace

std::span<const core::AttributeGroup<PciFunction>> PciFunction::groups() { return kPciGroups; }

unsigned igb_msix_vectors(unsigned rx_queues, unsigned tx_queues) {
  constexpr unsigned kMaxRssQueues = 8;  // IGB_MAX_RX_QUEUES
  const unsigned rss = std::min(std::max(rx_queues, tx_queues), kMaxRssQueues);
  const bool pairs = rss > kMaxRssQueues / 2;  // IGB_FLAG_QUEUE_PAIRS
  return rss + (pairs ? 0 : rss) + 1;
}

PciFunction::PciFunction(core::Env& env, PciConfig cfg, std::shared_ptr<NumaModel> numa)
    : env_(env), cfg_(std::move(cfg)), numa_(std::move(numa)), added_at_(env.now()) {
  core::MutexLock lock(mu_);
  numa_node_ = cfg_.numa_node;
  driver_ = cfg_.driver;
  put16(config_, 0x00, cfg_.vendor);
  put16(config_, 0x02, cfg_.device);
  put16(config_, 0x04, 0x0007);  // command: I/O, memory, bus master
  put16(config_, 0x06, 0x0000);  // status
  config_[0x08] = cfg_.revision;
  config_[0x09] = static_cast<std::uint8_t>(cfg_.class_code & 0xff);
  config_[0x0a] = static_cast<std::uint8_t>((cfg_.class_code >> 8) & 0xff);
  config_[0x0b] = static_cast<std::uint8_t>((cfg_.class_code >> 16) & 0xff);
  config_[0x0e] = 0x00;  // header type 0
  // BAR0: memory, 32-bit, non-prefetchable (type bits 0).
  for (int i = 0; i < 4; ++i)
    config_[0x10 + i] = static_cast<std::uint8_t>(cfg_.bar0_start >> (8 * i));
  put16(config_, 0x2c, cfg_.subsystem_vendor);
  put16(config_, 0x2e, cfg_.subsystem_device);
  config_[0x3c] = static_cast<std::uint8_t>(cfg_.irq);
  config_[0x3d] = 0x01;  // INTA#
  if (cfg_.i350()) {
    put32(config_, 0x18, cfg_.bar2_start | PCI_BASE_ADDRESS_SPACE_IO);
    put32(config_, 0x1c, cfg_.bar3_start);
    i350_capabilities(config_);
  }
  set_msix_locked(!driver_.empty());
}

bool PciFunction::has_msix() const { return cfg_.i350() && cfg_.msix_vectors > 0; }

// msix_capability_init (enable, INTx off: pci_intx_for_msi) and
// pci_msix_shutdown (disable, INTx back on).
void PciFunction::set_msix_locked(bool on) {
  if (!has_msix()) return;
  std::uint16_t flags =
      static_cast<std::uint16_t>(config_[kMsixFlags] | config_[kMsixFlags + 1] << 8);
  std::uint16_t cmd =
      static_cast<std::uint16_t>(config_[PCI_COMMAND] | config_[PCI_COMMAND + 1] << 8);
  if (on) {
    flags |= PCI_MSIX_FLAGS_ENABLE;
    cmd |= PCI_COMMAND_INTX_DISABLE;
  } else {
    flags &= static_cast<std::uint16_t>(~PCI_MSIX_FLAGS_ENABLE);
    cmd &= static_cast<std::uint16_t>(~PCI_COMMAND_INTX_DISABLE);
  }
  put16(config_, kMsixFlags, flags);
  put16(config_, PCI_COMMAND, cmd);
}

bool PciFunction::msix_enabled() const {
  core::MutexLock lock(mu_);
  return has_msix() && (config_[kMsixFlags + 1] & (PCI_MSIX_FLAGS_ENABLE >> 8)) != 0;
}

std::vector<unsigned> PciFunction::msix_irqs() const {
  std::vector<unsigned> irqs;
  if (!msix_enabled()) return irqs;
  for (unsigned i = 0; i < cfg_.msix_vectors; ++i) irqs.push_back(cfg_.msix_irq_base + i);
  return irqs;
}

// local_cpus_show/local_cpulist_show: NUMA_NO_NODE means cpu_online_mask,
// else cpumask_of_node(node), the node's online CPUs (x86 numa_add_cpu /
// numa_remove_cpu keep node_to_cpumask_map to the online ones).
std::vector<unsigned> PciFunction::local_cpu_set() const {
  int node;
  {
    core::MutexLock lock(mu_);
    node = numa_node_;
  }
  if (!numa_) {
    std::vector<unsigned> all;
    for (unsigned c = 0; c < cfg_.nr_cpu_ids; ++c) all.push_back(c);
    return all;
  }
  if (node < 0 || node >= numa_->nr_node_ids()) return numa_->online_cpus();
  return numa_->online_subset(numa_->node_cpus(node));
}

core::Status PciFunction::local_cpus_show(core::PageBuffer& b) const {
  std::vector<bool> bits(cfg_.nr_cpu_ids, false);
  for (unsigned c : local_cpu_set())
    if (c < bits.size()) bits[c] = true;
  b.emit("{}\n", core::bitmap_print_mask(bits, cfg_.nr_cpu_ids));
  return {};
}
core::Status PciFunction::local_cpulist_show(core::PageBuffer& b) const {
  std::vector<bool> bits(cfg_.nr_cpu_ids, false);
  for (unsigned c : local_cpu_set())
    if (c < bits.size()) bits[c] = true;
  b.emit("{}\n", core::bitmap_print_list(bits));
  return {};
}

core::Status PciFunction::modalias_show(core::PageBuffer& b) const {
  b.emit("pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}\n", cfg_.vendor, cfg_.device,
         cfg_.subsystem_vendor, cfg_.subsystem_device, (cfg_.class_code >> 16) & 0xff,
         (cfg_.class_code >> 8) & 0xff, cfg_.class_code & 0xff);
  return {};
}

// resource_show: PCI_BRIDGE_RESOURCES lines for a non-bridge. A memory
// BAR's flags: IORESOURCE_MEM | IORESOURCE_SIZEALIGN (include/linux/
// ioport.h) plus the BAR's own type bits (0: 32-bit, non-prefetchable);
// an I/O BAR's: IORESOURCE_IO | IORESOURCE_SIZEALIGN | its space bit.
core::Status PciFunction::resource_show(core::PageBuffer& b) const {
  constexpr std::uint64_t kIoresourceIo = 0x00000100, kIoresourceMem = 0x00000200,
                          kSizeAlign = 0x00040000;
  struct Bar {
    std::uint64_t start = 0, size = 0, flags = 0;
  };
  Bar bars[7];
  bars[0] = {cfg_.bar0_start, cfg_.bar0_size, kIoresourceMem | kSizeAlign};
  if (cfg_.i350()) {
    bars[2] = {cfg_.bar2_start, kI350Bar2Size,
               kIoresourceIo | kSizeAlign | PCI_BASE_ADDRESS_SPACE_IO};
    bars[3] = {cfg_.bar3_start, kI350Bar3Size, kIoresourceMem | kSizeAlign};
  }
  for (const Bar& r : bars) {
    if (r.size == 0)
      b.emit("0x{:016x} 0x{:016x} 0x{:016x}\n", 0, 0, 0);
    else
      b.emit("0x{:016x} 0x{:016x} 0x{:016x}\n", r.start, r.start + r.size - 1, r.flags);
  }
  return {};
}

core::Status PciFunction::control_show(core::PageBuffer& b) const {
  core::MutexLock lock(mu_);
  b.append(runtime_pm_allowed_ ? "auto\n" : "on\n");
  return {};
}

// control_store: sysfs_streq "auto" (pm_runtime_allow) / "on"
// (pm_runtime_forbid), else EINVAL.
core::Result<std::size_t> PciFunction::control_store(const core::Caller& c, std::string_view in) {
  bool allow;
  if (core::sysfs_streq(in, "auto")) {
    allow = true;
  } else if (core::sysfs_streq(in, "on")) {
    allow = false;
  } else {
    return core::Errno{EINVAL};
  }
  {
    core::MutexLock lock(mu_);
    runtime_pm_allowed_ = allow;
  }
  env_.log(&c, cfg_.slot, "power/control", "OK", {{"value", allow ? "auto" : "on"}});
  return in.size();
}

// rpm_suspend finds no runtime_suspend callback (the driver has none), so
// the function stays active whatever control says.
core::Status PciFunction::runtime_status_show(core::PageBuffer& b) const {
  b.append("active\n");
  return {};
}

core::Status PciFunction::runtime_active_time_show(core::PageBuffer& b) const {
  b.emit("{}\n",
         std::chrono::duration_cast<std::chrono::milliseconds>(env_.now() - added_at_).count());
  return {};
}

core::Status PciFunction::runtime_suspended_time_show(core::PageBuffer& b) const {
  b.append("0\n");
  return {};
}

// autosuspend_delay_ms_show/_store: -EIO unless the driver uses autosuspend.
core::Status PciFunction::autosuspend_delay_ms_show(core::PageBuffer&) const {
  return core::Errno{EIO};
}
core::Result<std::size_t> PciFunction::autosuspend_delay_ms_store(const core::Caller&,
                                                                  std::string_view) {
  return core::Errno{EIO};
}

core::Result<std::size_t> PciFunction::resource0_read(const core::Caller&, std::uint64_t,
                                                      std::span<char>) {
  return core::Errno{EIO};
}

core::Result<std::size_t> PciFunction::resource0_write(const core::Caller&, std::uint64_t,
                                                       std::span<const char>) {
  return core::Errno{EIO};
}

core::Status PciFunction::enable_show(core::PageBuffer& b) const {
  core::MutexLock lock(mu_);
  b.emit("{}\n", enable_cnt_);  // atomic_read(&pdev->enable_cnt)
  return {};
}

// enable_store: CAP_SYS_ADMIN, kstrtobool, then under the device lock
// EBUSY while a driver is bound; else pci_enable_device (enable_cnt + 1)
// or pci_disable_device of an enabled function (- 1), EIO when disabled.
core::Result<std::size_t> PciFunction::enable_store(const core::Caller& c, std::string_view in) {
  if (!c.capable(core::Capability::SysAdmin)) return core::Errno{EPERM};
  const auto v = core::kstrtobool(in);
  if (!v) return v.error();
  std::string driver;
  core::Status st;
  {
    core::MutexLock lock(mu_);
    driver = driver_;
    if (!driver_.empty())
      st = core::Errno{EBUSY};
    else if (*v)
      ++enable_cnt_;
    else if (enable_cnt_ > 0)
      pci_disable_device_locked();
    else
      st = core::Errno{EIO};
  }
  env_.log(&c, cfg_.slot, "enable", st ? "OK" : st.error().name(),
           {{"enable", *v}, {"driver", driver}});
  if (!st) return st.error();
  return in.size();
}

std::string PciFunction::driver() const {
  core::MutexLock lock(mu_);
  return driver_;
}

std::string PciFunction::driver_override() const {
  core::MutexLock lock(mu_);
  return driver_override_;
}

// pci_disable_device: the last disable (enable_cnt to 0) turns bus
// mastering off (do_pci_disable_device); I/O and memory decoding stay.
void PciFunction::pci_disable_device_locked() {
  if (--enable_cnt_ != 0) return;
  put16(config_, PCI_COMMAND,
        static_cast<std::uint16_t>((config_[PCI_COMMAND] | config_[PCI_COMMAND + 1] << 8) &
                                   ~PCI_COMMAND_MASTER));
}

void PciFunction::set_driver(std::string name) {
  core::MutexLock lock(mu_);
  if (!name.empty()) {
    ++enable_cnt_;  // pci_device_probe -> the driver's pci_enable_device
    config_[PCI_COMMAND] |= PCI_COMMAND_MASTER;  // and pci_set_master
  } else if (enable_cnt_ > 0) {
    pci_disable_device_locked();  // the driver's remove
  }
  set_msix_locked(!name.empty());
  driver_ = std::move(name);
}

// driver_override_show: sysfs_emit "%s\n" of a NULL pointer prints "(null)".
core::Status PciFunction::driver_override_show(core::PageBuffer& b) const {
  core::MutexLock lock(mu_);
  b.emit("{}\n", driver_override_.empty() ? std::string("(null)") : driver_override_);
  return {};
}

// driver_set_override (drivers/base/driver.c): the length limit is on the
// write's count, checked before strlen(); then the C string up to its first
// newline is stored; empty (or a lone "\n") clears. No capability check
// beyond the file's mode, as in the kernel.
core::Result<std::size_t> PciFunction::driver_override_store(const core::Caller& c,
                                                             std::string_view in) {
  if (in.size() >= core::kPageSize - 1) return core::Errno{EINVAL};
  std::string_view s = in.substr(0, std::min(in.size(), in.find('\0')));
  s = s.substr(0, std::min(s.size(), s.find('\n')));
  {
    core::MutexLock lock(mu_);
    driver_override_ = std::string(s);
  }
  env_.log(&c, cfg_.slot, "driver_override", "OK", {{"value", std::string(s)}});
  return in.size();
}

core::Status PciFunction::numa_node_show(core::PageBuffer& b) const {
  core::MutexLock lock(mu_);
  b.emit("{}\n", numa_node_);
  return {};
}

// numa_node_store (drivers/pci/pci-sysfs.c): a firmware workaround that
// taints the kernel. Every kstrtoint failure is EINVAL, ERANGE included
// ("PCI/sysfs: Return -EINVAL consistently from "store" functions", 5.13).
// Locking: the device mutex.
core::Result<std::size_t> PciFunction::numa_node_store(const core::Caller& c, std::string_view in) {
  if (!c.capable(core::Capability::SysAdmin)) return core::Errno{EPERM};
  const auto parsed = core::kstrtoint(in, 0);
  if (!parsed) return core::Errno{EINVAL};
  const int node = *parsed;
  if ((node < 0 && node != -1) || node >= kMaxNumNodes) return core::Errno{EINVAL};
  if (node != -1 && node >= static_cast<int>(cfg_.nr_node_ids)) return core::Errno{EINVAL};  // !node_online
  env_.log(&c, cfg_.slot, "numa_node", "OK",
           {{"node", node}, {"taint", "TAINT_FIRMWARE_WORKAROUND"},
            {"message", "Your BIOS is broken; setting NUMA node"}});
  core::MutexLock lock(mu_);
  numa_node_ = node;
  return in.size();
}

core::Status PciFunction::uevent_show(core::PageBuffer& b) const {
  // dev_uevent adds DRIVER= only while a driver is bound.
  if (const std::string drv = driver(); !drv.empty()) b.emit("DRIVER={}\n", drv);
  b.emit(
      "PCI_CLASS={:X}\nPCI_ID={:04X}:{:04X}\nPCI_SUBSYS_ID={:04X}:{:04X}\n"
      "PCI_SLOT_NAME={}\nMODALIAS=pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}\n",
      cfg_.class_code, cfg_.vendor, cfg_.device, cfg_.subsystem_vendor, cfg_.subsystem_device,
      cfg_.slot, cfg_.vendor, cfg_.device, cfg_.subsystem_vendor, cfg_.subsystem_device,
      (cfg_.class_code >> 16) & 0xff, (cfg_.class_code >> 8) & 0xff, cfg_.class_code & 0xff);
  return {};
}

// drivers/base/core.c uevent_store -> kobject_synth_uevent.
core::Result<std::size_t> PciFunction::uevent_store(const core::Caller& c, std::string_view in) {
  core::PageBuffer vars;
  (void)uevent_show(vars);
  const std::string devpath = "/devices/pci" + cfg_.slot.substr(0, 7) + "/" + cfg_.slot;
  return core::uevent_store(env_, c, {devpath, "pci", vars.view()}, in);
}

// pci_read_config. Kernel quirk: without CAP_SYS_ADMIN only the first 64
// bytes (the standard header) are readable; the rest reads as EOF.
core::Result<std::size_t> PciFunction::config_read(const core::Caller& c, std::uint64_t pos,
                                                   std::span<char> out) {
  const std::uint64_t size = c.capable(core::Capability::SysAdmin) ? 256 : 64;
  if (pos >= size) return std::size_t{0};
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size - pos));
  core::MutexLock lock(mu_);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>(config_[pos + i]);
  return n;
}

// pci_write_config: only the writable registers of a real function take
// the value (command, interrupt line); the others are read-only in hardware.
core::Result<std::size_t> PciFunction::config_write(const core::Caller& c, std::uint64_t pos,
                                                    std::span<const char> in) {
  if (pos >= 256) return std::size_t{0};
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(in.size(), 256 - pos));
  core::MutexLock lock(mu_);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t off = pos + i;
    if (off == 0x04 || off == 0x05 || off == 0x3c) config_[off] = static_cast<std::uint8_t>(in[i]);
  }
  env_.log(&c, cfg_.slot, "config_write", "OK", {{"offset", pos}, {"len", n}});
  return n;
}

// --- msi_irqs/ ----------------------------------------------------------------------

PciMsiIrqs::PciMsiIrqs(std::shared_ptr<const PciFunction> pci, const std::vector<unsigned>& irqs)
    : pci_(std::move(pci)) {
  names_.reserve(irqs.size());  // the attributes point into these strings
  for (unsigned irq : irqs) names_.push_back(std::to_string(irq));
  // VSYSFS_ATTR names the file after its argument; the name is then the
  // IRQ number.
  for (const std::string& n : names_) {
    attrs_.push_back(VSYSFS_ATTR(PciMsiIrqs, msi_irq, 0444, &PciMsiIrqs::mode_show, nullptr));
    attrs_.back().name = n;
  }
  groups_[0] = {.name = "", .attrs = attrs_};
}

core::Status PciMsiIrqs::mode_show(core::PageBuffer& b) const {
  b.append(pci_->msix_enabled() ? "msix\n" : "msi\n");
  return {};
}

}  // namespace vsysfs::devices
