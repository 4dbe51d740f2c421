#include "devices/machine/clocksource.hpp"

#include <algorithm>
#include <cerrno>

#include "core/kobject_uevent.hpp"
#include "devices/machine/machine.hpp"
#include "devices/machine/subsys_bus.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {
namespace {

using Cs = Clocksource;

constexpr core::DeviceAttribute<Cs> kAttrs[] = {
    VSYSFS_ATTR_RW(Cs, current_clocksource),
    VSYSFS_ATTR_WO(Cs, unbind_clocksource),
    VSYSFS_ATTR_RO(Cs, available_clocksource),
    VSYSFS_ATTR(Cs, uevent, 0644, core::uevent_show_empty<Cs>, &Cs::uevent_store),
};
constexpr core::AttributeGroup<Cs> kGroups[] = {{.name = "", .attrs = kAttrs}};

// kernel/time/clocksource.c sysfs_get_uname: the name without one trailing
// '\n'; EINVAL for an empty or too long buffer.
core::Result<std::string> get_uname(std::string_view in) {
  if (in.empty() || in.size() >= Clocksource::kCsNameLen) return core::Errno{EINVAL};
  if (in.back() == '\n') in.remove_suffix(1);
  // The kernel copies the bytes and NUL-terminates: an embedded NUL ends
  // the name as strcmp() sees it.
  return std::string(in.substr(0, in.find('\0')));
}

}  // namespace

Clocksource::Clocksource(core::Env& env, std::vector<Source> sources) : env_(env) {
  // clocksource_enqueue: by rating, a later equal rating after the earlier.
  std::stable_sort(sources.begin(), sources.end(),
                   [](const Source& a, const Source& b) { return a.rating > b.rating; });
  core::MutexLock lock(mu_);
  list_ = std::move(sources);
  select_watchdog_locked(false);
  select_locked();
}

std::span<const core::AttributeGroup<Cs>> Clocksource::groups() { return kGroups; }

// clocksource_select: the override if registered, else the best.
void Clocksource::select_locked() {
  if (list_.empty()) return;
  std::string best = list_.front().name;
  for (const auto& cs : list_)
    if (cs.name == override_name_) best = cs.name;
  current_ = best;
}

// clocksource_select_watchdog: the best clocksource without MUST_VERIFY;
// with `fallback`, other than the present watchdog (kept when none is).
void Clocksource::select_watchdog_locked(bool fallback) {
  const std::string old = watchdog_;
  const Source* wd = nullptr;
  for (const auto& cs : list_) {
    if (cs.must_verify) continue;
    if (fallback && cs.name == old) continue;
    if (!wd || cs.rating > wd->rating) wd = &cs;
  }
  watchdog_ = wd ? wd->name : old;
}

std::string Clocksource::current() const {
  core::MutexLock lock(mu_);
  return current_;
}

std::string Clocksource::watchdog() const {
  core::MutexLock lock(mu_);
  return watchdog_;
}

core::Status Clocksource::current_clocksource_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  buf.emit("{}\n", current_);
  return {};
}

core::Result<std::size_t> Clocksource::current_clocksource_store(const core::Caller& caller,
                                                                 std::string_view in) {
  auto name = get_uname(in);
  if (!name) return name.error();
  core::MutexLock lock(mu_);
  override_name_ = *name;
  const std::string before = current_;
  select_locked();
  if (current_ != before)  // timekeeping_notify: "Switched to clocksource %s"
    env_.log(&caller, "clocksource", "switch", "OK", {{"from", before}, {"to", current_}});
  return in.size();
}

core::Status Clocksource::available_clocksource_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  for (const auto& cs : list_) buf.emit("{} ", cs.name);
  buf.append("\n");
  return {};
}

// unbind_clocksource_store -> clocksource_unbind.
core::Result<std::size_t> Clocksource::unbind_clocksource_store(const core::Caller& caller,
                                                                std::string_view in) {
  auto name = get_uname(in);
  if (!name) return name.error();
  core::MutexLock lock(mu_);
  const auto it =
      std::find_if(list_.begin(), list_.end(), [&](const Source& s) { return s.name == *name; });
  if (it == list_.end()) return core::Errno{ENODEV};
  if (watchdog_ == *name) {
    select_watchdog_locked(true);
    if (watchdog_ == *name) return core::Errno{EBUSY};
  }
  if (current_ == *name) {
    // clocksource_select_fallback: the best other one (the override only
    // if it is not this one).
    std::string next;
    for (const auto& cs : list_)
      if (cs.name != *name) {
        next = cs.name;
        break;
      }
    for (const auto& cs : list_)
      if (cs.name != *name && cs.name == override_name_) next = cs.name;
    if (next.empty()) return core::Errno{EBUSY};
    current_ = next;
    env_.log(&caller, "clocksource", "switch", "OK", {{"from", *name}, {"to", current_}});
  }
  list_.erase(
      std::find_if(list_.begin(), list_.end(), [&](const Source& s) { return s.name == *name; }));
  env_.log(&caller, "clocksource", "unbind", "OK", {{"clocksource", *name}});
  return in.size();
}

core::Result<std::size_t> Clocksource::uevent_store(const core::Caller& caller,
                                                    std::string_view in) {
  return core::uevent_store(env_, caller,
                            {"/devices/system/clocksource/clocksource0", "clocksource", ""}, in);
}

namespace {

// Every machine has the clocksource subsystem (order < 0: built without a
// [clocksource] section, which takes no keys), after the NUMA nodes.
void build_clocksource(MachineContext& ctx, const core::ConfigValue&) {
  // arch/x86/kernel/tsc.c check_system_tsc_reliable: with CONSTANT_TSC,
  // NONSTOP_TSC and TSC_ADJUST (a Skylake-SP has all three) and at most 4
  // online nodes, tsc_disable_clocksource_watchdog clears tsc's
  // CLOCK_SOURCE_MUST_VERIFY, so tsc itself can be the watchdog.
  const auto numa = numa_model_of(ctx.machine);
  const bool tsc_must_verify = numa && numa->nr_node_ids() > 4;  // every node is online
  std::vector<Clocksource::Source> sources = {
      {"tsc", 300, tsc_must_verify}, {"hpet", 250, false}, {"acpi_pm", 200, false}};
  if (ctx.root.has("xen")) sources.push_back({"xen", 400, false});
  auto cs = std::make_shared<Clocksource>(ctx.env, std::move(sources));
  add_subsys_bus(ctx.env, ctx.tree, ctx.machine, "clocksource");
  add_uevent_only_device(ctx.env, ctx.tree, ctx.machine, "devices/system/clocksource");
  const std::string path = "devices/system/clocksource/clocksource0";
  ctx.tree.add_device<Clocksource>(path, cs, Clocksource::groups());
  ctx.tree.add_symlink(path + "/subsystem", "../../../../bus/clocksource");
  ctx.tree.add_symlink("bus/clocksource/devices/clocksource0", "../../../" + path);
  ctx.machine.keep(cs);
}
const SectionRegistrar kRegistrar{"clocksource", &build_clocksource, -2};

}  // namespace
}  // namespace vsysfs::devices
