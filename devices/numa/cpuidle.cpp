#include "devices/numa/cpuidle.hpp"

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using R = CpuidleRoot;
using S = CpuidleState;

constexpr const char* kGovernors[] = {"ladder", "menu", "teo", "haltpoll"};
constexpr std::size_t kCpuidleNameLen = 16;  // CPUIDLE_NAME_LEN

// drivers/idle/intel_idle.c skx_cstates (POLL is the core's poll state,
// drivers/cpuidle/poll_state.c, power_usage -1).
constexpr IdleStateInfo kSkxStates[] = {
    {"POLL", "CPUIDLE CORE POLL IDLE", 0, 0, 4294967295u, false},
    {"C1", "MWAIT 0x00", 2, 2, 0, true},
    {"C1E", "MWAIT 0x01", 10, 20, 0, true},
    {"C6", "MWAIT 0x20", 133, 600, 0, true},
};

constexpr core::DeviceAttribute<R> kRootAttrs[] = {
    VSYSFS_ATTR_RO(R, available_governors),
    VSYSFS_ATTR_RO(R, current_driver),
    VSYSFS_ATTR_RO(R, current_governor_ro),
    VSYSFS_ATTR_RW(R, current_governor),
};
constexpr core::AttributeGroup<R> kRootGroups[] = {{.name = "", .attrs = kRootAttrs}};

// drivers/cpuidle/sysfs.c cpuidle_state_default_attrs, in its order.
constexpr core::DeviceAttribute<S> kStateAttrs[] = {
    VSYSFS_ATTR_VALUE_RO(S, name, 0444, fmt_str,
                         [](const S& s) { return std::string_view(s.info().name); }),
    VSYSFS_ATTR_VALUE_RO(S, desc, 0444, fmt_str,
                         [](const S& s) { return std::string_view(s.info().desc); }),
    VSYSFS_ATTR_VALUE_RO(S, latency, 0444, fmt_udec, [](const S& s) { return s.info().latency; }),
    VSYSFS_ATTR_VALUE_RO(S, residency, 0444, fmt_udec,
                         [](const S& s) { return s.info().residency; }),
    VSYSFS_ATTR_VALUE_RO(S, power, 0444, fmt_udec, [](const S& s) { return s.info().power; }),
    VSYSFS_ATTR_VALUE_RO(S, usage, 0444, fmt_u64, [](const S&) { return 0ULL; }),
    VSYSFS_ATTR_VALUE_RO(S, rejected, 0444, fmt_u64, [](const S&) { return 0ULL; }),
    VSYSFS_ATTR_VALUE_RO(S, time, 0444, fmt_u64, [](const S&) { return 0ULL; }),
    VSYSFS_ATTR_RW(S, disable),
    VSYSFS_ATTR_VALUE_RO(S, above, 0444, fmt_u64, [](const S&) { return 0ULL; }),
    VSYSFS_ATTR_VALUE_RO(S, below, 0444, fmt_u64, [](const S&) { return 0ULL; }),
    VSYSFS_ATTR_VALUE_RO(S, default_status, 0444, fmt_str,
                         [](const S&) { return std::string_view("enabled"); }),
};
constexpr core::DeviceAttribute<S> kS2idleAttrs[] = {
    VSYSFS_ATTR_VALUE_RO(S, usage, 0444, fmt_u64, [](const S&) { return 0ULL; }),
    VSYSFS_ATTR_VALUE_RO(S, time, 0444, fmt_u64, [](const S&) { return 0ULL; }),
};
constexpr core::AttributeGroup<S> kStateGroups[] = {{.name = "", .attrs = kStateAttrs}};
constexpr core::AttributeGroup<S> kStateS2idleGroups[] = {
    {.name = "", .attrs = kStateAttrs}, {.name = "s2idle", .attrs = kS2idleAttrs}};

}  // namespace

std::span<const core::AttributeGroup<R>> CpuidleRoot::groups() { return kRootGroups; }
std::span<const IdleStateInfo> CpuidleRoot::states() const {
  if (!has_driver()) return {};
  return kSkxStates;
}

core::Status CpuidleRoot::available_governors_show(core::PageBuffer& buf) const {
  for (const char* g : kGovernors) buf.emit("{:.{}} ", g, kCpuidleNameLen);
  buf.append("\n");
  return {};
}

core::Status CpuidleRoot::current_driver_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", driver_);
  return {};
}

core::Status CpuidleRoot::current_governor_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  buf.emit("{}\n", governor_);
  return {};
}

core::Status CpuidleRoot::current_governor_ro_show(core::PageBuffer& buf) const {
  return current_governor_show(buf);
}

// store_current_governor: sscanf(buf, "%16s") (skips leading white space,
// stops at the next), then strncmp(gov->name, name, CPUIDLE_NAME_LEN).
core::Result<std::size_t> CpuidleRoot::current_governor_store(const core::Caller& caller,
                                                              std::string_view in) {
  std::size_t i = 0;
  const auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (i < in.size() && space(in[i])) ++i;
  std::size_t j = i;
  while (j < in.size() && j - i < kCpuidleNameLen && !space(in[j]) && in[j] != '\0') ++j;
  if (j == i) return core::Errno{EINVAL};
  const std::string name(in.substr(i, j - i));
  for (const char* g : kGovernors) {
    if (std::strncmp(g, name.c_str(), kCpuidleNameLen) != 0) continue;
    core::MutexLock lock(mu_);
    if (governor_ != g)
      env_.log(&caller, "cpuidle", "switch_governor", "OK", {{"from", governor_}, {"to", g}});
    governor_ = g;
    return in.size();
  }
  return core::Errno{EINVAL};
}

std::span<const core::AttributeGroup<S>> CpuidleState::groups(bool s2idle) {
  if (s2idle) return kStateS2idleGroups;
  return kStateGroups;
}

core::Status CpuidleState::disable_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", disabled_by_user_.load() ? 1 : 0);
  return {};
}

// store_state_disable: CAP_SYS_ADMIN, kstrtouint(buf, 0), any nonzero
// value sets CPUIDLE_STATE_DISABLED_BY_USER.
core::Result<std::size_t> CpuidleState::disable_store(const core::Caller& caller,
                                                      std::string_view in) {
  if (!caller.capable(core::Capability::SysAdmin)) return core::Errno{EPERM};
  auto v = core::kstrtouint(in, 0);
  if (!v) return v.error();
  disabled_by_user_ = *v != 0;
  return in.size();
}

void cpuidle_add_cpu(CpuidleRoot& root, core::Tree& tree, unsigned cpu) {
  const auto states = root.states();
  for (std::size_t k = 0; k < states.size(); ++k) {
    auto st = std::make_shared<CpuidleState>(states[k]);
    tree.add_device<CpuidleState>(fmt::format("devices/system/cpu/cpu{}/cpuidle/state{}", cpu, k),
                                  st, CpuidleState::groups(states[k].s2idle));
  }
}

void cpuidle_remove_cpu(core::Tree& tree, unsigned cpu) {
  (void)tree.remove(fmt::format("devices/system/cpu/cpu{}/cpuidle", cpu));
}

}  // namespace vsysfs::devices
