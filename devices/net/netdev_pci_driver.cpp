// The PCI driver core for the simulated NICs (see netdev_pci_driver.hpp).

#include "devices/net/netdev_pci_driver.hpp"

#include <cerrno>

#include <fmt/format.h>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using Drv = PciNicDriver;
constexpr core::DeviceAttribute<Drv> kDriverAttrs[] = {
    VSYSFS_ATTR_WO(Drv, bind),      VSYSFS_ATTR_WO(Drv, unbind), VSYSFS_ATTR_WO(Drv, new_id),
    VSYSFS_ATTR_WO(Drv, remove_id), VSYSFS_ATTR_WO(Drv, uevent),
};
constexpr core::AttributeGroup<Drv> kDriverGroups[] = {{.name = "", .attrs = kDriverAttrs}};

// The kernel's vsscanf for a run of " %x" conversions (lib/vsprintf.c):
// white space before each, an optional "0x" prefix (simple_strntoull's
// radix fixup), then hex digits; the first conversion that finds no digit
// ends the scan. Returns how many were converted.
int scan_hex(std::string_view in, std::uint64_t* out, int max) {
  std::size_t i = 0;
  int n = 0;
  const auto xdigit = [&](std::size_t k) {
    return k < in.size() && std::isxdigit(static_cast<unsigned char>(in[k]));
  };
  for (; n < max; ++n) {
    while (i < in.size() && std::isspace(static_cast<unsigned char>(in[i]))) ++i;
    if (!xdigit(i)) break;
    if (in[i] == '0' && i + 1 < in.size() && (in[i + 1] == 'x' || in[i + 1] == 'X') &&
        xdigit(i + 2))
      i += 2;
    std::uint64_t v = 0;
    for (; xdigit(i); ++i) {
      const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(in[i])));
      v = v * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    out[n] = v;
  }
  return n;
}

// sysfs hands the store a NUL-terminated copy: the C string ends at the
// first NUL.
std::string_view c_string(std::string_view in) {
  return in.substr(0, std::min(in.size(), in.find('\0')));
}

// The device name for the event log: the C string without its newline,
// at most 64 bytes of it.
std::string logged_name(std::string_view in) {
  std::string_view s = c_string(in);
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return std::string(s.substr(0, 64));
}

}  // namespace

bool pci_match_one_device(const PciDeviceId& id, const PciConfig& dev) {
  return (id.vendor == kPciAnyId || id.vendor == dev.vendor) &&
         (id.device == kPciAnyId || id.device == dev.device) &&
         (id.subvendor == kPciAnyId || id.subvendor == dev.subsystem_vendor) &&
         (id.subdevice == kPciAnyId || id.subdevice == dev.subsystem_device) &&
         !((id.class_code ^ dev.class_code) & id.class_mask);
}

core::Kobject add_netdev_files(core::Tree& tree, const std::string& dir,
                               const std::string& up_to_root, const std::string& pci_slot,
                               const std::shared_ptr<NetDevice>& dev,
                               const std::vector<std::shared_ptr<NetRxQueue>>& rx,
                               const std::vector<std::shared_ptr<NetTxQueue>>& tx) {
  if (!pci_slot.empty()) tree.add_symlink(dir + "/device", "../../../" + pci_slot);
  core::Kobject kobj = tree.add_device<NetDevice>(dir, dev, NetDevice::groups());
  tree.add_symlink(dir + "/subsystem", up_to_root + "class/net");
  tree.add_symlink("class/net/" + dev->name(), "../../" + dir);
  for (std::size_t q = 0; q < rx.size(); ++q)
    tree.add_device<NetRxQueue>(dir + "/queues/rx-" + std::to_string(q), rx[q],
                                NetRxQueue::groups());
  for (std::size_t q = 0; q < tx.size(); ++q)
    tree.add_device<NetTxQueue>(dir + "/queues/tx-" + std::to_string(q), tx[q],
                                NetTxQueue::groups(*dev));
  return kobj;
}

void add_msi_irqs_files(core::Tree& tree, const std::string& pci_dir,
                        const std::shared_ptr<PciFunction>& pci) {
  const std::vector<unsigned> irqs = pci->msix_irqs();
  if (irqs.empty()) return;
  auto msi = std::make_shared<PciMsiIrqs>(pci, irqs);
  tree.add_device<PciMsiIrqs>(pci_dir + "/msi_irqs", msi, msi->groups());
}

// --- PciNic ---------------------------------------------------------------------------

PciNic::PciNic(core::Env& env, core::Tree& tree, std::shared_ptr<PciFunction> pci,
               std::shared_ptr<NetDevice> dev, std::vector<std::shared_ptr<NetRxQueue>> rx,
               std::vector<std::shared_ptr<NetTxQueue>> tx)
    : env_(env),
      tree_(tree),
      pci_(std::move(pci)),
      dev_(std::move(dev)),
      rx_(std::move(rx)),
      tx_(std::move(tx)),
      pci_dir_("devices/pci" + pci_->config().slot.substr(0, 7) + "/" + pci_->config().slot),
      net_dir_(pci_dir_ + "/net/" + dev_->name()) {}

void PciNic::set_booted_driver(PciNicDriver* drv) {
  core::MutexLock lock(device_lock_);
  driver_ = drv;
}

PciNicDriver* PciNic::driver() const {
  core::MutexLock lock(device_lock_);
  return driver_;
}

void PciNic::uevent_net(const core::Caller* caller, core::KobjAction a,
                        const std::string& devpath) {
  const std::string vars = fmt::format("INTERFACE={}\nIFINDEX={}\n", dev_->name(), dev_->ifindex());
  core::kobject_uevent(env_, caller, {devpath, "net", vars}, a);
}

void PciNic::uevent_pci(const core::Caller* caller, core::KobjAction a) {
  core::PageBuffer vars;
  (void)pci_->uevent_show(vars);
  core::kobject_uevent(env_, caller, {"/" + pci_dir_, "pci", vars.view()}, a);
}

// __driver_probe_device -> really_probe: driver_sysfs_add, the bus's
// probe (pci_device_probe: pci_enable_device in the driver's probe,
// register_netdev), driver_bound.
core::Status PciNic::probe(const core::Caller* caller, PciNicDriver& drv) {
  core::MutexLock lock(device_lock_);
  if (driver_) return core::Errno{EBUSY};
  const std::string link = "bus/pci/drivers/" + drv.name() + "/" + slot();
  tree_.add_symlink(link, "../../../../" + pci_dir_);
  tree_.add_symlink(pci_dir_ + "/driver", "../../../bus/pci/drivers/" + drv.name());
  pci_->set_driver(drv.name());
  add_msi_irqs_files(tree_, pci_dir_, pci_);  // igb_init_interrupt_scheme
  {
    core::RtnlLock rtnl;
    dev_->register_netdev_locked();
  }
  dev_->set_kobj(add_netdev_files(tree_, net_dir_, "../../../../../", slot(), dev_, rx_, tx_));
  uevent_net(caller, core::KobjAction::Add, "/" + net_dir_);
  driver_ = &drv;
  env_.log(caller, slot(), "probe", "OK", {{"driver", drv.name()}, {"interface", dev_->name()}});
  uevent_pci(caller, core::KobjAction::Bind);
  return {};
}

void PciNic::remove_files() {
  (void)tree_.remove(net_dir_);
  (void)tree_.remove("class/net/" + dev_->name());
}

// __device_release_driver: driver_sysfs_remove, the bus's remove (the
// driver's remove: unregister_netdev, pci_disable_device), dev->driver =
// NULL, KOBJ_UNBIND.
core::Status PciNic::release(const core::Caller* caller, PciNicDriver* drv) {
  core::MutexLock lock(device_lock_);
  if (!driver_ || (drv && driver_ != drv)) return core::Errno{ENODEV};
  const std::string name = driver_->name();
  (void)tree_.remove("bus/pci/drivers/" + name + "/" + slot());
  (void)tree_.remove(pci_dir_ + "/driver");
  {
    core::RtnlLock rtnl;
    dev_->unregister_netdev_locked();
  }
  dev_->set_kobj(core::Kobject{});
  remove_files();
  uevent_net(caller, core::KobjAction::Remove, "/" + net_dir_);
  // igb_clear_interrupt_scheme -> pci_disable_msix removes the vectors'
  // files; devres_release_all, the directory.
  (void)tree_.remove(pci_dir_ + "/msi_irqs");
  pci_->set_driver("");
  driver_ = nullptr;
  env_.log(caller, slot(), "remove", "OK", {{"driver", name}, {"interface", dev_->name()}});
  uevent_pci(caller, core::KobjAction::Unbind);
  return {};
}

// --- PciNicBus ------------------------------------------------------------------------

PciNic* PciNicBus::find(std::string_view name) const {
  for (const auto& n : nics)
    if (core::sysfs_streq(name, n->slot())) return n.get();
  return nullptr;
}

// device_attach -> __device_attach_driver over the bus's drivers in order:
// the first whose match succeeds probes; a bound device stays bound.
core::Status PciNicBus::device_attach(const core::Caller* caller, PciNic& nic) {
  if (nic.driver()) return {};
  for (const auto& d : drivers) {
    if (!d->match(nic.pci())) continue;
    auto st = nic.probe(caller, *d);
    if (st || st.error().value() == EBUSY) return {};  // bound (maybe by a racing writer)
    return st;
  }
  return {};
}

// --- PciNicDriver ---------------------------------------------------------------------

std::span<const core::AttributeGroup<PciNicDriver>> PciNicDriver::groups() { return kDriverGroups; }

void PciNicDriver::add_static_id(const PciDeviceId& id) {
  for (const auto& x : id_table_)
    if (x.vendor == id.vendor && x.device == id.device) return;
  id_table_.push_back(id);
}

// pci_match_device: driver_override first (another driver's name: no
// match), the dynamic ids, the static table, then the override's dummy id.
bool PciNicDriver::match(const PciFunction& dev) const {
  const std::string override_ = dev.driver_override();
  if (!override_.empty() && override_ != name_) return false;
  {
    core::MutexLock lock(dynids_mu_);
    for (const auto& id : dynids_)
      if (pci_match_one_device(id, dev.config())) return true;
  }
  for (const auto& id : id_table_)
    if (pci_match_one_device(id, dev.config())) return true;
  return !override_.empty();
}

// bind_store: bus_find_device_by_name, driver_match_device, then
// device_driver_attach (EBUSY when bound; probe errors as negative errnos).
core::Result<std::size_t> PciNicDriver::bind_store(const core::Caller& c, std::string_view in) {
  auto bus = bus_.lock();
  PciNic* nic = bus ? bus->find(c_string(in)) : nullptr;
  core::Status st = core::Errno{ENODEV};
  if (nic && match(nic->pci())) st = nic->probe(&c, *this);
  env_.log(&c, name_, "bind", st ? "OK" : st.error().name(), {{"device", logged_name(in)}});
  if (!st) return st.error();
  return in.size();
}

// unbind_store: ENODEV unless dev->driver == drv, then device_driver_detach.
core::Result<std::size_t> PciNicDriver::unbind_store(const core::Caller& c, std::string_view in) {
  auto bus = bus_.lock();
  PciNic* nic = bus ? bus->find(c_string(in)) : nullptr;
  core::Status st = core::Errno{ENODEV};
  if (nic) st = nic->release(&c, this);
  env_.log(&c, name_, "unbind", st ? "OK" : st.error().name(), {{"device", logged_name(in)}});
  if (!st) return st.error();
  return in.size();
}

// new_id_store and pci_add_dynid.
core::Result<std::size_t> PciNicDriver::new_id_store(const core::Caller& c, std::string_view in) {
  std::uint64_t f[7] = {};
  const int fields = scan_hex(c_string(in), f, 7);
  if (fields < 2) return core::Errno{EINVAL};
  PciDeviceId id;
  id.vendor = static_cast<std::uint32_t>(f[0]);
  id.device = static_cast<std::uint32_t>(f[1]);
  if (fields > 2) id.subvendor = static_cast<std::uint32_t>(f[2]);
  if (fields > 3) id.subdevice = static_cast<std::uint32_t>(f[3]);
  if (fields > 4) id.class_code = static_cast<std::uint32_t>(f[4]);
  if (fields > 5) id.class_mask = static_cast<std::uint32_t>(f[5]);
  if (fields > 6) id.driver_data = static_cast<unsigned long>(f[6]);
  if (fields != 7) {
    // A pci_dev of those ids, matched against the driver (no override).
    PciConfig probe_dev;
    probe_dev.vendor = static_cast<std::uint16_t>(id.vendor);
    probe_dev.device = static_cast<std::uint16_t>(id.device);
    probe_dev.subsystem_vendor = static_cast<std::uint16_t>(id.subvendor);
    probe_dev.subsystem_device = static_cast<std::uint16_t>(id.subdevice);
    probe_dev.class_code = id.class_code;
    bool exists = false;
    {
      core::MutexLock lock(dynids_mu_);
      for (const auto& x : dynids_) exists = exists || pci_match_one_device(x, probe_dev);
    }
    for (const auto& x : id_table_) exists = exists || pci_match_one_device(x, probe_dev);
    if (exists) return core::Errno{EEXIST};
  }
  // Only a driver_data of an existing id_table entry (all 0 here).
  bool known = false;
  for (const auto& x : id_table_) known = known || x.driver_data == id.driver_data;
  if (!id_table_.empty() && !known) return core::Errno{EINVAL};
  {
    core::MutexLock lock(dynids_mu_);
    dynids_.push_back(id);
  }
  env_.log(&c, name_, "new_id", "OK", {{"id", fmt::format("{:04x}:{:04x}", id.vendor, id.device)}});
  // driver_attach: every unbound device the driver now matches.
  if (auto bus = bus_.lock())
    for (const auto& n : bus->nics)
      if (!n->driver() && match(n->pci())) (void)n->probe(&c, *this);
  return in.size();
}

// remove_id_store.
core::Result<std::size_t> PciNicDriver::remove_id_store(const core::Caller& c,
                                                        std::string_view in) {
  std::uint64_t f[6] = {0, 0, kPciAnyId, kPciAnyId, 0, 0};
  const int fields = scan_hex(c_string(in), f, 6);
  if (fields < 2) return core::Errno{EINVAL};
  const auto u = [&](int k) { return static_cast<std::uint32_t>(f[k]); };
  core::MutexLock lock(dynids_mu_);
  for (auto it = dynids_.begin(); it != dynids_.end(); ++it) {
    if (it->vendor == u(0) && it->device == u(1) && (u(2) == kPciAnyId || it->subvendor == u(2)) &&
        (u(3) == kPciAnyId || it->subdevice == u(3)) && !((it->class_code ^ u(4)) & u(5))) {
      dynids_.erase(it);
      env_.log(&c, name_, "remove_id", "OK", {{"id", fmt::format("{:04x}:{:04x}", u(0), u(1))}});
      return in.size();
    }
  }
  return core::Errno{ENODEV};
}

// drivers/base/bus.c uevent_store (DRIVER_ATTR_WO): kobject_synth_uevent
// on the driver's kobject; the error, or the count.
core::Result<std::size_t> PciNicDriver::uevent_store(const core::Caller& c, std::string_view in) {
  const std::string devpath = "/bus/pci/drivers/" + name_;
  return core::uevent_store(env_, c, {devpath, "drivers", ""}, in);
}

}  // namespace vsysfs::devices
