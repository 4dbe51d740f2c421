#include "devices/xen/xen_balloon_bus.hpp"

#include <cctype>
#include <cerrno>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<XenMemoryBus> kBusAttrs[] = {
    VSYSFS_ATTR_RW(XenMemoryBus, drivers_autoprobe),
    VSYSFS_ATTR_WO(XenMemoryBus, drivers_probe),
    VSYSFS_ATTR_WO(XenMemoryBus, uevent),
};
constexpr core::AttributeGroup<XenMemoryBus> kBusGroups[] = {{.name = "", .attrs = kBusAttrs}};

// lib/kobject_uevent.c kobject_actions[].
constexpr std::string_view kActions[] = {"add",    "remove",  "change", "move",
                                         "online", "offline", "bind",   "unbind"};
constexpr std::size_t kUuidStringLen = 36;

bool uuid_is_valid(std::string_view s) {
  if (s.size() < kUuidStringLen) return false;
  for (std::size_t i = 0; i < kUuidStringLen; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// action_arg_word_end(): alphanumerics up to `delim`; npos when a
// non-alphanumeric comes first or the word is empty.
std::size_t arg_word_end(std::string_view s, std::size_t from, char delim) {
  std::size_t i = from;
  while (i < s.size() && s[i] != delim) {
    if (!std::isalnum(static_cast<unsigned char>(s[i]))) return std::string_view::npos;
    ++i;
  }
  return i == from ? std::string_view::npos : i;
}

// kobject_action_args(): "UUID[ KEY=VALUE]..." (count-based, one trailing
// '\n' or NUL dropped).
bool action_args_valid(std::string_view s) {
  if (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.remove_suffix(1);
  if (s.empty() || !uuid_is_valid(s)) return false;
  std::size_t next = kUuidStringLen;
  while (next < s.size()) {
    if (s[next] != ' ') return false;
    const std::size_t key = ++next;
    if (key >= s.size()) return false;
    next = arg_word_end(s, key, '=');
    if (next == std::string_view::npos || next >= s.size()) return false;
    if (++next >= s.size()) return false;  // value must follow '='
    next = arg_word_end(s, next, ' ');
    if (next == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

core::Status kobject_synth_uevent(core::Env& env, const core::Caller& caller,
                                  std::string_view who, std::string_view in) {
  std::string_view s = in;
  // kobject_action_type(): one trailing '\n' or NUL is not part of it.
  if (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.remove_suffix(1);
  if (s.empty() || s.find('\0') != std::string_view::npos) {
    env.log(&caller, who, "uevent", "EINVAL", {{"input", std::string(s)}});
    return core::Errno{EINVAL};
  }
  const std::size_t space = s.find(' ');
  const std::string_view action = s.substr(0, space);
  bool known = false;
  for (auto a : kActions) known = known || a == action;
  if (!known || (space != std::string_view::npos && !action_args_valid(in.substr(space + 1)))) {
    env.log(&caller, who, "uevent", "EINVAL", {{"input", std::string(s)}});
    return core::Errno{EINVAL};
  }
  env.log(&caller, who, "uevent", "OK", {{"action", std::string(action)}});
  return {};
}

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

core::Result<std::size_t> XenMemoryBus::uevent_store(const core::Caller& caller,
                                                     std::string_view in) {
  VSYSFS_TRY_STATUS(kobject_synth_uevent(env_, caller, "xen_memory", in));
  return in.size();
}

}  // namespace vsysfs::devices
