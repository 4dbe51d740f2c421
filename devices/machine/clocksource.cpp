#include "devices/machine/clocksource.hpp"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/machine/machine.hpp"
#include "devices/machine/snapshot.hpp"
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

void Clocksource::save_state(core::StateWriter& w) const {
  core::MutexLock lock(mu_);
  std::string list;
  for (const auto& src : list_)
    list += fmt::format("{}{}:{}:{}", list.empty() ? "" : " ", src.name, src.rating,
                        src.must_verify ? 1 : 0);
  w.put_str("sources", list);
  w.put_str("override", override_name_);
  w.put_str("current", current_);
  w.put_str("watchdog", watchdog_);
}

core::Status Clocksource::load_state(const core::StateReader& r) {
  auto list = r.str("sources");
  auto ovr = r.str("override");
  auto cur = r.str("current");
  auto wd = r.str("watchdog");
  if (!list || !ovr || !cur || !wd) return core::Errno{EINVAL};
  std::vector<Source> sources;
  std::string_view rest = *list;
  while (!rest.empty()) {
    const auto sp = rest.find(' ');
    const std::string_view item = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    const auto c1 = item.find(':');
    const auto c2 = item.rfind(':');
    if (c1 == std::string_view::npos || c1 == c2) return core::Errno{EINVAL};
    auto rating = core::kstrtoint(item.substr(c1 + 1, c2 - c1 - 1), 10);
    if (!rating) return core::Errno{EINVAL};
    sources.push_back({std::string(item.substr(0, c1)), *rating, item.substr(c2 + 1) == "1"});
  }
  core::MutexLock lock(mu_);
  list_ = std::move(sources);
  override_name_ = *ovr;
  current_ = *cur;
  watchdog_ = *wd;
  return {};
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
  // docs/snapshot.md: the clocksource and its bus's drivers_autoprobe.
  core::Tree& tree = ctx.tree;
  ctx.machine.register_state({.name = "clocksource",
                              .version = 1,
                              .save =
                                  [cs, &tree](core::StateWriter& w) {
                                    cs->save_state(w);
                                    save_knobs(tree, {"bus/clocksource/drivers_autoprobe"}, w);
                                  },
                              .load = [cs, &tree](const core::StateReader& r) -> core::Status {
                                if (auto st = cs->load_state(r); !st) return st;
                                return load_knobs(tree, r);
                              },
                              .loads_into_new_boot = {},
                              .section = {}});
}
const SectionRegistrar kRegistrar{"clocksource", &build_clocksource, -2};

}  // namespace
}  // namespace vsysfs::devices
