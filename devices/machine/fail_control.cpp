#include "devices/machine/fail_control.hpp"

#include <cerrno>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using core::FaultPoint;
using core::FaultSettings;
using Attr = core::DeviceAttribute<FailPoint>;

// PID_MAX_LIMIT on 64-bit (include/linux/threads.h).
constexpr long kPidMaxLimit = 4 * 1024 * 1024;
// MAX_ERRNO (include/linux/err.h).
constexpr int kMaxErrno = 4095;

// simple_attr_write (fs/libfs.c) copies at most sizeof(set_buf) - 1 bytes.
std::string_view simple_attr_input(std::string_view in) { return in.substr(0, 23); }

void log_set(FailPoint& d, const core::Caller& c, std::string_view file, std::string_view in) {
  d.env.log(&c, "fault_inject", "set", "OK",
            {{"name", core::fault_point_name(d.point)},
             {"file", file},
             {"value", core::strip_newline(in)}});
}

// debugfs_create_ul: "%llu\n", kstrtoull base 0.
template <unsigned long FaultSettings::*M>
core::Status ul_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.settings(d.point).*M);
  return {};
}
template <unsigned long FaultSettings::*M>
core::Result<std::size_t> ul_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                   std::string_view in) {
  const auto v = core::kstrtoull(simple_attr_input(in), 0);
  if (!v) return v.error();
  d.fi.set(d.point, M, static_cast<unsigned long>(*v));
  log_set(d, c, a.name, in);
  return in.size();
}

// debugfs_create_atomic_t: "%lld\n", kstrtoll base 0, then atomic_set (an int).
template <int FaultSettings::*M>
core::Status atomic_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", static_cast<long long>(d.fi.settings(d.point).*M));
  return {};
}
template <int FaultSettings::*M>
core::Result<std::size_t> atomic_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                       std::string_view in) {
  const auto v = core::kstrtoll(simple_attr_input(in), 0);
  if (!v) return v.error();
  // QUIRK: the low 32 bits, as atomic_set((atomic_t *)data, val) keeps.
  d.fi.set(d.point, M, static_cast<int>(static_cast<std::uint32_t>(*v)));
  log_set(d, c, a.name, in);
  return in.size();
}

// debugfs_create_u32: "%llu\n", kstrtoull base 0, cut to u32.
template <std::uint32_t FaultSettings::*M>
core::Status u32_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.settings(d.point).*M);
  return {};
}
template <std::uint32_t FaultSettings::*M>
core::Result<std::size_t> u32_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                    std::string_view in) {
  const auto v = core::kstrtoull(simple_attr_input(in), 0);
  if (!v) return v.error();
  d.fi.set(d.point, M, static_cast<std::uint32_t>(*v));  // QUIRK: *(u32 *)data = val
  log_set(d, c, a.name, in);
  return in.size();
}

// debugfs_create_bool: "Y\n"/"N\n"; kstrtobool_from_user looks at 3 bytes.
template <bool FaultSettings::*M>
core::Status bool_show(const FailPoint& d, core::PageBuffer& b) {
  b.append(d.fi.settings(d.point).*M ? "Y\n" : "N\n");
  return {};
}
template <bool FaultSettings::*M>
core::Result<std::size_t> bool_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                     std::string_view in) {
  const auto v = core::kstrtobool(in.substr(0, 3));
  if (!v) return v.error();
  d.fi.set(d.point, M, *v);
  log_set(d, c, a.name, in);
  return in.size();
}

core::Status injected_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.injected(d.point));
  return {};
}

core::Status errno_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.settings(d.point).error);
  return {};
}
core::Result<std::size_t> errno_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                      std::string_view in) {
  const auto v = core::kstrtoint(in, 0);
  if (!v) return v.error();
  if (*v < 1 || *v > kMaxErrno) return core::Errno{EINVAL};
  d.fi.set(d.point, &FaultSettings::error, *v);
  log_set(d, c, a.name, in);
  return in.size();
}

// Blank-separated words of a list file (' ', '\t', '\n', and ',' where
// `commas`).
std::vector<std::string_view> words(std::string_view in, bool commas) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  auto sep = [commas](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || (commas && ch == ',');
  };
  while (i < in.size()) {
    while (i < in.size() && sep(in[i])) ++i;
    std::size_t j = i;
    while (j < in.size() && !sep(in[j])) ++j;
    if (j > i) out.push_back(in.substr(i, j - i));
    i = j;
  }
  return out;
}

core::Status paths_show(const FailPoint& d, core::PageBuffer& b) {
  for (const auto& g : d.fi.paths(d.point)) b.emit("{}\n", g);
  return {};
}
core::Result<std::size_t> paths_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                      std::string_view in) {
  std::vector<std::string> globs;
  for (std::string_view w : words(in, false)) {
    if (w.size() > core::FaultInjection::kMaxPathBytes) return core::Errno{ENAMETOOLONG};
    // No path contains a NUL: a pattern with one can only be a mistake.
    if (w.find('\0') != std::string_view::npos) return core::Errno{EINVAL};
    if (globs.size() == core::FaultInjection::kMaxPaths) return core::Errno{E2BIG};
    globs.emplace_back(w);
  }
  d.fi.set_paths(d.point, std::move(globs));
  log_set(d, c, a.name, in);
  return in.size();
}

// ifaces: the interfaces a net point may fail (exact names; empty: all).
core::Status ifaces_show(const FailPoint& d, core::PageBuffer& b) {
  for (const auto& n : d.fi.paths(d.point)) b.emit("{}\n", n);
  return {};
}
core::Result<std::size_t> ifaces_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                       std::string_view in) {
  std::vector<std::string> names;
  for (std::string_view w : words(in, false)) {
    if (w.size() >= core::FaultInjection::kIfNameSize) return core::Errno{ENAMETOOLONG};
    // dev_valid_name (net/core/dev.c): no ".", "..", '/', ':' or NUL.
    if (w == "." || w == ".." || w.find_first_of(std::string_view("/:\0", 3)) != w.npos)
      return core::Errno{EINVAL};
    if (names.size() == core::FaultInjection::kMaxIfaces) return core::Errno{E2BIG};
    names.emplace_back(w);
  }
  d.fi.set_paths(d.point, std::move(names));
  log_set(d, c, a.name, in);
  return in.size();
}

std::string_view xmit_kind_name(core::NetXmitFault k) {
  switch (k) {
    case core::NetXmitFault::Busy:
      return "busy";
    case core::NetXmitFault::Drop:
      return "drop";
    case core::NetXmitFault::Hang:
      return "hang";
  }
  return "?";
}

// "kind": the failure an injection at this point causes.
core::Status kind_show(const FailPoint& d, core::PageBuffer& b) {
  const FaultSettings s = d.fi.settings(d.point);
  if (d.point == FaultPoint::NetXmit) {
    b.emit("{}\n", xmit_kind_name(s.xmit_kind));
  } else if (d.point == FaultPoint::NetRx) {
    b.append(s.rx_kind == core::NetRxFault::Drop ? "drop\n" : "corrupt\n");
  } else if (d.point == FaultPoint::Smi) {
    b.append(s.smi_kind == core::SmiFault::NoAnswer ? "no_answer\n"
             : s.smi_kind == core::SmiFault::Error  ? "error\n"
                                                    : "short\n");
  } else {
    b.append(s.hc_kind == core::HostControlFault::Timeout ? "timeout\n" : "no_power\n");
  }
  return {};
}
core::Result<std::size_t> kind_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                     std::string_view in) {
  if (d.point == FaultPoint::NetXmit) {
    core::NetXmitFault k;
    if (core::sysfs_streq(in, "busy"))
      k = core::NetXmitFault::Busy;
    else if (core::sysfs_streq(in, "drop"))
      k = core::NetXmitFault::Drop;
    else if (core::sysfs_streq(in, "hang"))
      k = core::NetXmitFault::Hang;
    else
      return core::Errno{EINVAL};
    d.fi.set(d.point, &FaultSettings::xmit_kind, k);
  } else if (d.point == FaultPoint::NetRx) {
    core::NetRxFault k;
    if (core::sysfs_streq(in, "drop"))
      k = core::NetRxFault::Drop;
    else if (core::sysfs_streq(in, "corrupt"))
      k = core::NetRxFault::Corrupt;
    else
      return core::Errno{EINVAL};
    d.fi.set(d.point, &FaultSettings::rx_kind, k);
  } else if (d.point == FaultPoint::Smi) {
    core::SmiFault k;
    if (core::sysfs_streq(in, "no_answer"))
      k = core::SmiFault::NoAnswer;
    else if (core::sysfs_streq(in, "error"))
      k = core::SmiFault::Error;
    else if (core::sysfs_streq(in, "short"))
      k = core::SmiFault::Short;
    else
      return core::Errno{EINVAL};
    d.fi.set(d.point, &FaultSettings::smi_kind, k);
  } else {
    core::HostControlFault k;
    if (core::sysfs_streq(in, "timeout"))
      k = core::HostControlFault::Timeout;
    else if (core::sysfs_streq(in, "no_power"))
      k = core::HostControlFault::NoPower;
    else
      return core::Errno{EINVAL};
    d.fi.set(d.point, &FaultSettings::hc_kind, k);
  }
  log_set(d, c, a.name, in);
  return in.size();
}

core::Status cbres1_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.settings(d.point).cbres1);
  return {};
}
core::Result<std::size_t> cbres1_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                       std::string_view in) {
  const auto v = core::kstrtoint(in, 0);
  if (!v) return v.error();
  // dell_smbios_error (drivers/platform/x86/dell/dell-smbios-base.c): -1
  // completed with error, -2 not supported; -3 is libsmbios's "not handled".
  if (*v < -3 || *v > -1) return core::Errno{EINVAL};
  d.fi.set(d.point, &FaultSettings::cbres1, *v);
  log_set(d, c, a.name, in);
  return in.size();
}

core::Status answer_bytes_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.settings(d.point).answer_bytes);
  return {};
}
core::Result<std::size_t> answer_bytes_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                             std::string_view in) {
  const auto v = core::kstrtouint(in, 0);
  if (!v) return v.error();
  if (*v > 15) return core::Errno{EINVAL};  // 16 would be the whole answer
  d.fi.set(d.point, &FaultSettings::answer_bytes, static_cast<std::uint32_t>(*v));
  log_set(d, c, a.name, in);
  return in.size();
}

// xen_populate/pages: u64 "%llu\n", kstrtoull base 0 (as the debugfs numbers).
core::Status pages_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.settings(d.point).grant_pages);
  return {};
}
core::Result<std::size_t> pages_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                      std::string_view in) {
  const auto v = core::kstrtoull(simple_attr_input(in), 0);
  if (!v) return v.error();
  d.fi.set(d.point, &FaultSettings::grant_pages, static_cast<std::uint64_t>(*v));
  log_set(d, c, a.name, in);
  return in.size();
}

// link_flap/down_ms, period_ms, store|show/delay_ms: milliseconds of the
// simulation clock, "%u\n", kstrtouint base 0 (ERANGE beyond 32 bits: a
// file of its own, so no debugfs wrap). A flap's down_ms and period_ms
// cannot be 0 (EINVAL); delay_ms 0 means no delay.
template <std::uint32_t FaultSettings::*M, bool kAllowZero>
core::Result<std::size_t> ms_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                   std::string_view in) {
  const auto v = core::kstrtouint(simple_attr_input(in), 0);
  if (!v) return v.error();
  if (!kAllowZero && *v == 0) return core::Errno{EINVAL};
  d.fi.set(d.point, M, static_cast<std::uint32_t>(*v));
  log_set(d, c, a.name, in);
  return in.size();
}

// store|show|lock/delay_ms: 0 turns a store or show firing back into a
// failure; the lock point only delays, so 0 is EINVAL there.
core::Result<std::size_t> delay_ms_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                         std::string_view in) {
  const auto v = core::kstrtouint(simple_attr_input(in), 0);
  if (!v) return v.error();
  if (d.point == FaultPoint::Lock && *v == 0) return core::Errno{EINVAL};
  d.fi.set(d.point, &FaultSettings::delay_ms, static_cast<std::uint32_t>(*v));
  log_set(d, c, a.name, in);
  return in.size();
}

// link_flap/count: the periods of the schedule not yet started; a store
// restarts the schedule (0 stops it and brings every flapped link back).
core::Status count_show(const FailPoint& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.flaps_left());
  return {};
}
core::Result<std::size_t> count_store(FailPoint& d, const Attr& a, const core::Caller& c,
                                      std::string_view in) {
  const auto v = core::kstrtouint(simple_attr_input(in), 0);
  if (!v) return v.error();
  if (auto st = d.fi.start_flaps(static_cast<std::uint32_t>(*v)); !st) return st.error();
  log_set(d, c, a.name, in);
  return in.size();
}

#define FAIL_ATTR(fname, mode, show, store) \
  Attr { fname, mode, core::bind_show<FailPoint, show>(), core::bind_store<FailPoint, store>() }

// fault_create_debugfs_attr's order, then the point's own files.
constexpr Attr kPointAttrs[] = {
    FAIL_ATTR("probability", 0600, &ul_show<&FaultSettings::probability>,
              &ul_store<&FaultSettings::probability>),
    FAIL_ATTR("interval", 0600, &ul_show<&FaultSettings::interval>,
              &ul_store<&FaultSettings::interval>),
    FAIL_ATTR("times", 0600, &atomic_show<&FaultSettings::times>,
              &atomic_store<&FaultSettings::times>),
    FAIL_ATTR("space", 0600, &atomic_show<&FaultSettings::space>,
              &atomic_store<&FaultSettings::space>),
    FAIL_ATTR("verbose", 0600, &ul_show<&FaultSettings::verbose>,
              &ul_store<&FaultSettings::verbose>),
    FAIL_ATTR("verbose_ratelimit_interval_ms", 0600,
              &u32_show<&FaultSettings::verbose_ratelimit_interval_ms>,
              &u32_store<&FaultSettings::verbose_ratelimit_interval_ms>),
    FAIL_ATTR("verbose_ratelimit_burst", 0600, &u32_show<&FaultSettings::verbose_ratelimit_burst>,
              &u32_store<&FaultSettings::verbose_ratelimit_burst>),
    FAIL_ATTR("task-filter", 0600, &bool_show<&FaultSettings::task_filter>,
              &bool_store<&FaultSettings::task_filter>),
    FAIL_ATTR("injected", 0400, &injected_show, nullptr),
    FAIL_ATTR("errno", 0600, &errno_show, &errno_store),
    FAIL_ATTR("paths", 0600, &paths_show, &paths_store),
    FAIL_ATTR("ifaces", 0600, &ifaces_show, &ifaces_store),
    FAIL_ATTR("pages", 0600, &pages_show, &pages_store),
    FAIL_ATTR("kind", 0600, &kind_show, &kind_store),
    FAIL_ATTR("cbres1", 0600, &cbres1_show, &cbres1_store),
    FAIL_ATTR("answer_bytes", 0600, &answer_bytes_show, &answer_bytes_store),
    FAIL_ATTR("ignore-gfp-wait", 0600, &bool_show<&FaultSettings::ignore_gfp_reclaim>,
              &bool_store<&FaultSettings::ignore_gfp_reclaim>),
    FAIL_ATTR("ignore-gfp-highmem", 0600, &bool_show<&FaultSettings::ignore_gfp_highmem>,
              &bool_store<&FaultSettings::ignore_gfp_highmem>),
    FAIL_ATTR("min-order", 0600, &u32_show<&FaultSettings::min_order>,
              &u32_store<&FaultSettings::min_order>),
    FAIL_ATTR("down_ms", 0600, &u32_show<&FaultSettings::down_ms>,
              (&ms_store<&FaultSettings::down_ms, false>)),
    FAIL_ATTR("period_ms", 0600, &u32_show<&FaultSettings::period_ms>,
              (&ms_store<&FaultSettings::period_ms, false>)),
    FAIL_ATTR("count", 0600, &count_show, &count_store),
    FAIL_ATTR("delay_ms", 0600, &u32_show<&FaultSettings::delay_ms>, &delay_ms_store),
};
#undef FAIL_ATTR

// Which of the point-specific files a point has (attribute_group.is_visible).
mode_t point_visible(const FailPoint& d, std::string_view name, mode_t mode) {
  const FaultPoint p = d.point;
  const bool attr_point = p == FaultPoint::Store || p == FaultPoint::Show;
  if (name == "errno") return attr_point || p == FaultPoint::NetOpen ? mode : 0;
  if (name == "paths") return attr_point ? mode : 0;
  if (name == "delay_ms") return attr_point || p == FaultPoint::Lock ? mode : 0;
  if (name == "kind")
    return p == FaultPoint::Smi || p == FaultPoint::HostControl || p == FaultPoint::NetXmit ||
                   p == FaultPoint::NetRx
               ? mode
               : 0;
  if (name == "pages")
    return p == FaultPoint::XenPopulate || p == FaultPoint::XenDecrease ? mode : 0;
  if (name == "ifaces")
    return p == FaultPoint::NetXmit || p == FaultPoint::NetOpen || p == FaultPoint::NetRx ||
                   p == FaultPoint::LinkFlap
               ? mode
               : 0;
  if (name == "down_ms" || name == "period_ms" || name == "count")
    return p == FaultPoint::LinkFlap ? mode : 0;
  if (name == "cbres1" || name == "answer_bytes") return p == FaultPoint::Smi ? mode : 0;
  if (name == "ignore-gfp-wait" || name == "ignore-gfp-highmem" || name == "min-order")
    return p == FaultPoint::PageAlloc ? mode : 0;
  return mode;
}

constexpr core::AttributeGroup<FailPoint> kPointGroups[] = {
    {.name = "", .attrs = kPointAttrs, .is_visible = &point_visible},
};

// --- fail/ --------------------------------------------------------------------

core::Status seed_show(const FailControl& d, core::PageBuffer& b) {
  b.emit("{}\n", d.fi.seed());
  return {};
}
core::Result<std::size_t> seed_store(FailControl& d, const core::Caller& c, std::string_view in) {
  const auto v = core::kstrtoull(simple_attr_input(in), 0);  // debugfs_create_u64
  if (!v) return v.error();
  d.fi.set_seed(*v);
  d.env.log(&c, "fault_inject", "seed", "OK", {{"seed", *v}});
  return in.size();
}

core::Status pids_show(const FailControl& d, core::PageBuffer& b) {
  for (pid_t p : d.fi.pids()) b.emit("{}\n", p);
  return {};
}
core::Result<std::size_t> pids_store(FailControl& d, const core::Caller& c, std::string_view in) {
  std::set<pid_t> pids;
  for (std::string_view w : words(in, true)) {
    const auto v = core::kstrtoint(w, 10);
    if (!v) return v.error();
    if (*v < 1 || *v > kPidMaxLimit) return core::Errno{EINVAL};
    pids.insert(*v);
    if (pids.size() > core::FaultInjection::kMaxPids) return core::Errno{E2BIG};
  }
  const std::size_t n = pids.size();
  d.fi.set_pids(std::move(pids));
  d.env.log(&c, "fault_inject", "pids", "OK", {{"count", n}});
  return in.size();
}

constexpr core::DeviceAttribute<FailControl> kTopAttrs[] = {
    VSYSFS_ATTR(FailControl, seed, 0600, &seed_show, &seed_store),
    VSYSFS_ATTR(FailControl, pids, 0600, &pids_show, &pids_store),
};
constexpr core::AttributeGroup<FailControl> kTopGroups[] = {{.name = "", .attrs = kTopAttrs}};

}  // namespace

std::span<const core::AttributeGroup<FailPoint>> FailPoint::groups() { return kPointGroups; }
std::span<const core::AttributeGroup<FailControl>> FailControl::groups() { return kTopGroups; }

void build_fail_control(MachineContext& ctx) {
  if (!ctx.env.faults) return;
  core::FaultInjection& fi = *ctx.env.faults;
  auto top = std::make_shared<FailControl>(FailControl{ctx.env, fi});
  ctx.tree.add_device<FailControl>("kernel/debug/vsysfs/fail", top, FailControl::groups());
  ctx.machine.keep(top);
  for (FaultPoint p : core::kFaultPoints) {
    auto dev = std::make_shared<FailPoint>(FailPoint{ctx.env, fi, p});
    ctx.tree.add_device<FailPoint>(
        fmt::format("kernel/debug/vsysfs/fail/{}", core::fault_point_name(p)), dev,
        FailPoint::groups());
    ctx.machine.keep(dev);
  }
}

}  // namespace vsysfs::devices
