#include "devices/xen/xen_balloon_bus.hpp"

#include <cerrno>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<XenMemoryBus> kBusAttrs[] = {
    VSYSFS_ATTR_RW(XenMemoryBus, drivers_autoprobe),
    VSYSFS_ATTR_WO(XenMemoryBus, drivers_probe),
    VSYSFS_ATTR_WO(XenMemoryBus, uevent),
};
constexpr core::AttributeGroup<XenMemoryBus> kBusGroups[] = {{.name = "", .attrs = kBusAttrs}};

}  // namespace

std::span<const core::AttributeGroup<XenMemoryBus>> XenMemoryBus::groups() { return kBusGroups; }

core::Status XenMemoryBus::drivers_autoprobe_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", drivers_autoprobe_.load());
  return {};
}

// drivers/base/bus.c drivers_autoprobe_store: only the first byte matters.
core::Result<std::size_t> XenMemoryBus::drivers_autoprobe_store(const core::Caller&,
                                                                std::string_view in) {
  drivers_autoprobe_ = (!in.empty() && in[0] == '0') ? 0 : 1;
  return in.size();
}

// drivers/base/bus.c drivers_probe_store: bus_find_device_by_name() is a
// sysfs_streq() match; xen_memory0 has no driver to bind, so the rescan
// succeeds without effect.
core::Result<std::size_t> XenMemoryBus::drivers_probe_store(const core::Caller& caller,
                                                            std::string_view in) {
  if (!core::sysfs_streq(in, "xen_memory0")) return core::Errno{ENODEV};
  env_.log(&caller, "xen_memory", "drivers_probe", "OK", {{"device", "xen_memory0"}});
  return in.size();
}

// drivers/base/bus.c bus_uevent_store: the bus's own kobject, in the
// bus_kset, whose uevent ops have no name: SUBSYSTEM=bus.
core::Result<std::size_t> XenMemoryBus::uevent_store(const core::Caller& caller,
                                                     std::string_view in) {
  return core::uevent_store(env_, caller, {"/bus/xen_memory", "bus", ""}, in);
}

}  // namespace vsysfs::devices
