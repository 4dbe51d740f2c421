#include "devices/machine/subsys_bus.hpp"

#include <cerrno>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<SubsysBus> kBusAttrs[] = {
    VSYSFS_ATTR_RW(SubsysBus, drivers_autoprobe),
    VSYSFS_ATTR_WO(SubsysBus, drivers_probe),
    VSYSFS_ATTR_WO(SubsysBus, uevent),
};
constexpr core::AttributeGroup<SubsysBus> kBusGroups[] = {{.name = "", .attrs = kBusAttrs}};

constexpr core::DeviceAttribute<UeventOnlyDevice> kUeventAttrs[] = {
    VSYSFS_ATTR_RW(UeventOnlyDevice, uevent),
};
constexpr core::AttributeGroup<UeventOnlyDevice> kUeventGroups[] = {
    {.name = "", .attrs = kUeventAttrs}};

}  // namespace

std::span<const core::AttributeGroup<UeventOnlyDevice>> UeventOnlyDevice::groups() {
  return kUeventGroups;
}

core::Status UeventOnlyDevice::uevent_show(core::PageBuffer&) const { return {}; }

core::Result<std::size_t> UeventOnlyDevice::uevent_store(const core::Caller& caller,
                                                         std::string_view in) {
  return core::uevent_store(env_, caller, {devpath_, "", ""}, in);
}

void add_uevent_only_device(core::Env& env, core::Tree& tree, Machine& machine,
                            const std::string& path) {
  if (tree.find(path + "/uevent")) return;
  auto dev = std::make_shared<UeventOnlyDevice>(env, "/" + path);
  tree.add_device<UeventOnlyDevice>(path, dev, UeventOnlyDevice::groups());
  machine.keep(dev);
}

std::span<const core::AttributeGroup<SubsysBus>> SubsysBus::groups() { return kBusGroups; }

core::Status SubsysBus::drivers_autoprobe_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", drivers_autoprobe_.load());
  return {};
}

// drivers/base/bus.c drivers_autoprobe_store: only the first byte matters.
core::Result<std::size_t> SubsysBus::drivers_autoprobe_store(const core::Caller&,
                                                             std::string_view in) {
  drivers_autoprobe_ = (!in.empty() && in[0] == '0') ? 0 : 1;
  return in.size();
}

void SubsysBus::set_attach(Attach fn) {
  core::MutexLock lock(attach_mu_);
  attach_ = std::move(fn);
}

// drivers/base/bus.c drivers_probe_store: bus_find_device_by_name() then
// bus_rescan_devices_helper(): a device without a driver is offered to the
// bus's drivers (the attach hook), a negative device_attach is EINVAL; a
// device with a driver keeps it.
core::Result<std::size_t> SubsysBus::drivers_probe_store(const core::Caller& caller,
                                                         std::string_view in) {
  std::string_view name = in;
  if (!name.empty() && name.back() == '\n') name.remove_suffix(1);  // sysfs_streq
  if (name.empty() || name.find('/') != std::string_view::npos || name == "." || name == "..")
    return core::Errno{ENODEV};
  if (!tree_.find("bus/" + name_ + "/devices/" + std::string(name))) return core::Errno{ENODEV};
  Attach attach;
  {
    core::MutexLock lock(attach_mu_);
    attach = attach_;
  }
  if (attach) {
    if (auto st = attach(caller, name); !st) {
      env_.log(&caller, name_, "drivers_probe", "EINVAL",
               {{"device", std::string(name)}, {"probe", st.error().name()}});
      return core::Errno{EINVAL};
    }
  }
  env_.log(&caller, name_, "drivers_probe", "OK", {{"device", std::string(name)}});
  return in.size();
}

// drivers/base/bus.c bus_uevent_store: the bus's own kobject, in the
// bus_kset, whose uevent ops have no name: SUBSYSTEM=bus.
core::Result<std::size_t> SubsysBus::uevent_store(const core::Caller& caller, std::string_view in) {
  return core::uevent_store(env_, caller, {"/bus/" + name_, "bus", ""}, in);
}

std::shared_ptr<SubsysBus> add_subsys_bus(core::Env& env, core::Tree& tree, Machine& machine,
                                          const std::string& name) {
  const std::string dir = "bus/" + name;
  if (auto node = tree.find(dir + "/uevent"))
    return std::static_pointer_cast<SubsysBus>(node->owner);
  auto bus = std::make_shared<SubsysBus>(env, tree, name);
  tree.add_device<SubsysBus>(dir, bus, SubsysBus::groups());
  tree.mkdir_p(dir + "/devices");
  tree.mkdir_p(dir + "/drivers");
  machine.keep(bus);
  return bus;
}

}  // namespace vsysfs::devices
