// The NIC's PCI function (see netdev_pci.hpp).

#include "devices/net/netdev_pci.hpp"

#include <cerrno>
#include <vector>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using Dev = PciFunction;

// Every simulated CPU is local to the root bus (one host bridge).
core::Status local_cpus_show(const Dev& d, core::PageBuffer& b) {
  std::vector<bool> all(d.config().nr_cpu_ids, true);
  b.emit("{}\n", core::bitmap_print_mask(all, d.config().nr_cpu_ids));
  return {};
}
core::Status local_cpulist_show(const Dev& d, core::PageBuffer& b) {
  std::vector<bool> all(d.config().nr_cpu_ids, true);
  b.emit("{}\n", core::bitmap_print_list(all));
  return {};
}

// drivers/pci/pci-sysfs.c pci_config_attr(field, format): a constant of
// the configuration header, one line each. Locking: none (constant).
#define PCI_CONFIG_ATTR(field, Fmt, ...) VSYSFS_ATTR_VALUE_RO(Dev, field, 0444, Fmt, __VA_ARGS__)

constexpr core::DeviceAttribute<Dev> kPciAttrs[] = {
    PCI_CONFIG_ATTR(vendor, fmt_0x<4>, [](const Dev& d) { return d.config().vendor; }),
    PCI_CONFIG_ATTR(device, fmt_0x<4>, [](const Dev& d) { return d.config().device; }),
    PCI_CONFIG_ATTR(subsystem_vendor, fmt_0x<4>, [](const Dev& d) { return d.config().subsystem_vendor; }),
    PCI_CONFIG_ATTR(subsystem_device, fmt_0x<4>, [](const Dev& d) { return d.config().subsystem_device; }),
    PCI_CONFIG_ATTR(class, fmt_0x<6>, [](const Dev& d) { return d.config().class_code; }),
    PCI_CONFIG_ATTR(revision, fmt_0x<2>, [](const Dev& d) { return d.config().revision; }),
    // irq_show: "%u\n" of pdev->irq.
    VSYSFS_ATTR_VALUE_RO(Dev, irq, 0444, fmt_udec, [](const Dev& d) { return d.config().irq; }),
    VSYSFS_ATTR(Dev, local_cpus, 0444, local_cpus_show, nullptr),
    VSYSFS_ATTR(Dev, local_cpulist, 0444, local_cpulist_show, nullptr),
    VSYSFS_ATTR_RW(Dev, numa_node),
    VSYSFS_ATTR_RW(Dev, uevent),
};
constexpr core::BinAttribute<Dev> kPciBin[] = {
    VSYSFS_BIN_ATTR_RW(Dev, config, 0644, 256),
};
constexpr core::AttributeGroup<Dev> kPciGroups[] = {
    {.name = "", .attrs = kPciAttrs, .bin_attrs = kPciBin},
};

// include/linux/numa.h MAX_NUMNODES with CONFIG_NODES_SHIFT=10
constexpr int kMaxNumNodes = 1024;

void put16(std::array<std::uint8_t, 256>& c, std::size_t off, std::uint16_t v) {
  c[off] = static_cast<std::uint8_t>(v & 0xff);
  c[off + 1] = static_cast<std::uint8_t>(v >> 8);
}

}  // namespace

std::span<const core::AttributeGroup<PciFunction>> PciFunction::groups() { return kPciGroups; }

PciFunction::PciFunction(core::Env& env, PciConfig cfg) : env_(env), cfg_(std::move(cfg)) {
  core::MutexLock lock(mu_);
  numa_node_ = cfg_.numa_node;
  put16(config_, 0x00, cfg_.vendor);
  put16(config_, 0x02, cfg_.device);
  put16(config_, 0x04, 0x0007);  // command: I/O, memory, bus master
  put16(config_, 0x06, 0x0000);  // status
  config_[0x08] = cfg_.revision;
  config_[0x09] = static_cast<std::uint8_t>(cfg_.class_code & 0xff);
  config_[0x0a] = static_cast<std::uint8_t>((cfg_.class_code >> 8) & 0xff);
  config_[0x0b] = static_cast<std::uint8_t>((cfg_.class_code >> 16) & 0xff);
  config_[0x0e] = 0x00;  // header type 0
  put16(config_, 0x2c, cfg_.subsystem_vendor);
  put16(config_, 0x2e, cfg_.subsystem_device);
  config_[0x3c] = static_cast<std::uint8_t>(cfg_.irq);
  config_[0x3d] = 0x01;  // INTA#
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
  b.emit("DRIVER={}\nPCI_CLASS={:X}\nPCI_ID={:04X}:{:04X}\nPCI_SUBSYS_ID={:04X}:{:04X}\n"
         "PCI_SLOT_NAME={}\nMODALIAS=pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}\n",
         cfg_.driver, cfg_.class_code, cfg_.vendor, cfg_.device, cfg_.subsystem_vendor,
         cfg_.subsystem_device, cfg_.slot, cfg_.vendor, cfg_.device, cfg_.subsystem_vendor,
         cfg_.subsystem_device, (cfg_.class_code >> 16) & 0xff, (cfg_.class_code >> 8) & 0xff,
         cfg_.class_code & 0xff);
  return {};
}

// drivers/base/core.c uevent_store -> kobject_synth_uevent.
core::Result<std::size_t> PciFunction::uevent_store(const core::Caller& c, std::string_view in) {
  core::PageBuffer vars;
  (void)uevent_show(vars);
  const std::string devpath = "/devices/pci0000:00/" + cfg_.slot;
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

}  // namespace vsysfs::devices
