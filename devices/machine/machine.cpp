#include "devices/machine/machine.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace vsysfs::devices {
namespace {

struct Registered {
  SectionBuilder builder;
  int order;
};

std::map<std::string, Registered, std::less<>>& registry() {
  static std::map<std::string, Registered, std::less<>> sections;
  return sections;
}

}  // namespace

SectionRegistrar::SectionRegistrar(std::string_view name, SectionBuilder builder, int order) {
  registry().emplace(std::string(name), Registered{builder, order});
}

std::string_view reboot_code_name(RebootCode code) {
  switch (code) {
    case RebootCode::PowerOff: return "poweroff";
    case RebootCode::Halt: return "halt";
    case RebootCode::Restart: return "reboot";
  }
  return "?";
}

Machine::Machine(core::Env& env, core::Tree& tree, core::ManualClock* manual_clock,
                 core::LockService& locks)
    : env_(env), tree_(tree), manual_clock_(manual_clock), locks_(locks) {}

Machine::~Machine() = default;

void Machine::build(const core::ConfigValue& root) {
  // [machine] is the machine's own section.
  if (const auto* m = root.find("machine")) name_ = m->get_string("name", "vsysfs machine");

  // The kernel's top-level sysfs directories exist on every machine.
  for (const char* dir : {"block", "bus", "class", "dev/block", "dev/char", "devices/system",
                          "devices/virtual", "devices/platform", "firmware", "fs", "kernel",
                          "module", "power"})
    tree_.mkdir_p(dir);

  std::vector<std::pair<const Registered*, std::string>> present;
  for (const std::string& key : root.keys()) {
    if (key == "machine") continue;
    auto it = registry().find(key);
    if (it == registry().end()) {
      std::vector<std::string> known;
      for (const auto& [k, v] : registry()) known.push_back(k);
      root.require(key).fail(
          fmt::format("unknown section (known: machine, {})", fmt::join(known, ", ")));
    }
    present.emplace_back(&it->second, key);
  }
  // Sections whose builder must run even when absent (order < 0) get an
  // empty table: the control plane and the clock knobs are always there.
  static const core::ConfigValue kEmpty;
  for (const auto& [name, reg] : registry()) {
    if (reg.order < 0 && !root.has(name)) present.emplace_back(&reg, name);
  }
  std::stable_sort(present.begin(), present.end(),
                   [](const auto& a, const auto& b) { return a.first->order < b.first->order; });

  MachineContext ctx{env_, tree_, *this, manual_clock_, locks_};
  for (const auto& [reg, name] : present) {
    const core::ConfigValue* section = root.find(name);
    reg->builder(ctx, section ? *section : kEmpty);
  }

  std::vector<const core::ConfigValue*> unused;
  root.collect_unused(unused);
  if (!unused.empty()) unused.front()->fail("unknown key (no device reads it)");
}

void Machine::register_reboot_notifier(std::function<void(RebootCode)> fn) {
  core::MutexLock lock(mu_);
  reboot_notifiers_.push_back(std::move(fn));
}

bool Machine::shutdown(RebootCode code) {
  std::vector<std::function<void(RebootCode)>> notifiers;
  {
    core::MutexLock lock(mu_);
    if (shut_down_) return false;
    shut_down_ = true;
    notifiers = reboot_notifiers_;
  }
  env_.log(nullptr, "machine", "shutdown", "OK", {{"how", reboot_code_name(code)}});
  for (auto& fn : notifiers) fn(code);
  core::MutexLock lock(mu_);
  if (!power_set_by_firmware_) {
    switch (code) {
      case RebootCode::PowerOff: power_state_ = "off"; break;
      case RebootCode::Halt: power_state_ = "halted"; break;
      case RebootCode::Restart: power_state_ = "rebooted"; break;
    }
  }
  env_.log(nullptr, "machine", "power_state", "OK", {{"state", power_state_}});
  return true;
}

bool Machine::shut_down() const {
  core::MutexLock lock(mu_);
  return shut_down_;
}

std::string Machine::power_state() const {
  core::MutexLock lock(mu_);
  return power_state_;
}

void Machine::set_power_state(std::string state) {
  core::MutexLock lock(mu_);
  power_state_ = std::move(state);
  power_set_by_firmware_ = true;
}

}  // namespace vsysfs::devices
