#include "devices/machine/machine.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "core/snapshot_file.hpp"

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

namespace {

// lib/ctype.c: _S is set for \t \n \v \f \r, ' ' and 0xa0 (Latin-1 NBSP).
bool kernel_isspace(unsigned char c) { return (c >= 9 && c <= 13) || c == ' ' || c == 0xa0; }
bool control_byte(unsigned char c) { return c < 0x20 || c == 0x7f; }

}  // namespace

const std::string& require_netdev_name(const core::ConfigValue& v) {
  const std::string& name = v.as_string();
  constexpr std::size_t kIfNameSize = 16;  // include/uapi/linux/if.h IFNAMSIZ
  if (name.empty()) v.fail("not a valid interface name: empty");
  if (name.size() >= kIfNameSize)
    v.fail(fmt::format("not a valid interface name: {} bytes (at most {})", name.size(),
                       kIfNameSize - 1));
  if (name == "." || name == "..") v.fail("not a valid interface name: \".\" and \"..\" are refused");
  for (unsigned char c : name) {
    // An embedded NUL would end the kernel's C string: a different name.
    if (c == '\0' || c == '/' || c == ':' || kernel_isspace(c))
      v.fail(fmt::format("not a valid interface name: byte 0x{:02x} (no '/', ':', NUL or white space)", c));
    if (c == '%') v.fail("not a valid interface name: '%' templates are not supported");
  }
  return name;
}

const std::string& require_path_name(const core::ConfigValue& v) {
  const std::string& name = v.as_string();
  if (name.empty()) v.fail("not a valid name: empty");
  if (name.size() > 255) v.fail(fmt::format("not a valid name: {} bytes (at most 255)", name.size()));
  if (name == "." || name == "..") v.fail("not a valid name: \".\" and \"..\" are refused");
  for (unsigned char c : name)
    if (c == '/' || c == ' ' || control_byte(c))
      v.fail(fmt::format("not a valid name: byte 0x{:02x} (no '/', space or control byte)", c));
  return name;
}

const std::string& require_line_text(const core::ConfigValue& v) {
  const std::string& text = v.as_string();
  if (text.size() > 255) v.fail(fmt::format("too long: {} bytes (at most 255)", text.size()));
  for (unsigned char c : text)
    if (control_byte(c)) v.fail(fmt::format("control byte 0x{:02x} (one printable line expected)", c));
  return text;
}

Machine::Machine(core::Env& env, core::Tree& tree, core::ManualClock* manual_clock,
                 core::LockService& locks)
    : env_(env), tree_(tree), manual_clock_(manual_clock), locks_(locks) {}

Machine::~Machine() = default;

void Machine::build(const core::ConfigValue& root) {
  // [machine] is the machine's own section.
  name_ = "vsysfs machine";
  if (const auto* m = root.find("machine"))
    if (const auto* n = m->find("name")) name_ = require_line_text(*n);

  // The kernel's top-level sysfs directories exist on every machine.
  // class/thermal and class/power_supply: thermal_init and
  // power_supply_class_init register them whether or not a zone or supply
  // exists (tools open them and find no entries).
  for (const char* dir : {"block", "bus", "class", "class/thermal", "class/power_supply",
                          "dev/block", "dev/char", "devices/system", "devices/virtual",
                          "devices/platform", "firmware", "fs", "kernel", "module", "power"})
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

  MachineContext ctx{env_, tree_, *this, manual_clock_, locks_, root};
  for (const auto& [reg, name] : present) {
    const core::ConfigValue* section = root.find(name);
    building_ = name;
    sections_.push_back(name);
    reg->builder(ctx, section ? *section : kEmpty);
  }
  building_.clear();

  std::vector<const core::ConfigValue*> unused;
  root.collect_unused(unused);
  if (!unused.empty()) unused.front()->fail("unknown key (no device reads it)");
  identity_ = core::fnv1a64_hex(root.canonical());
}

void Machine::register_state(StateHandler handler) {
  if (handler.section.empty()) handler.section = building_;
  for (const auto& h : state_)
    if (h.name == handler.name)
      throw core::TreeError("state handler " + handler.name + " registered twice");
  state_.push_back(std::move(handler));
}

std::vector<std::string> Machine::sections_without_state() const {
  std::vector<std::string> out;
  for (const auto& s : sections_) {
    bool covered = false;
    for (const auto& h : state_) covered = covered || h.section == s;
    if (!covered) out.push_back(s);
  }
  return out;
}

void Machine::save_state(core::StateWriter& w) const {
  core::MutexLock lock(mu_);
  w.put_bool("machine.shut_down", shut_down_);
  w.put_str("machine.power_state", power_state_);
  w.put_bool("machine.power_set_by_firmware", power_set_by_firmware_);
  w.put_bool("machine.off", off_);
  w.put_u64("machine.boots", boots_);
}

core::Status Machine::load_state(const core::StateReader& r) {
  auto down = r.boolean("machine.shut_down");
  auto power = r.str("machine.power_state");
  auto firmware = r.boolean("machine.power_set_by_firmware");
  auto off = r.boolean("machine.off");
  auto boots = r.u64("machine.boots");
  if (!down || !power || !firmware || !off || !boots) return core::Errno{EINVAL};
  {
    core::MutexLock lock(mu_);
    shut_down_ = *down;
    power_state_ = *power;
    power_set_by_firmware_ = *firmware;
    off_ = *off;
    boots_ = *boots;
  }
  // Whether device files answer follows the restored power (an off
  // machine's files are ENODEV until machine/power is written on).
  env_.powered_off.store(*off, std::memory_order_release);
  return {};
}

void Machine::register_reboot_notifier(std::function<void(RebootCode)> fn) {
  core::MutexLock lock(mu_);
  reboot_notifiers_.push_back(std::move(fn));
}

void Machine::register_shutdown_hook(std::function<void()> fn) {
  core::MutexLock lock(power_mu_);
  shutdown_hooks_.push_back(std::move(fn));
}

void Machine::register_boot_hook(std::function<void()> fn) {
  core::MutexLock lock(power_mu_);
  boot_hooks_.push_back(std::move(fn));
}

bool Machine::shutdown(RebootCode code) {
  core::MutexLock power(power_mu_);
  std::vector<std::function<void(RebootCode)>> notifiers;
  {
    core::MutexLock lock(mu_);
    if (shut_down_) return false;
    shut_down_ = true;
    power_set_by_firmware_ = false;
    notifiers = reboot_notifiers_;
  }
  env_.log(nullptr, "machine", "shutdown", "OK", {{"how", reboot_code_name(code)}});
  for (auto& fn : notifiers) fn(code);
  // kernel_power_off / kernel_restart: device_shutdown() after the chain.
  for (auto& fn : shutdown_hooks_) fn();
  std::string state;
  {
    core::MutexLock lock(mu_);
    if (!power_set_by_firmware_) {
      switch (code) {
        case RebootCode::PowerOff:
          power_state_ = "off";
          break;
        case RebootCode::Halt:
          power_state_ = "halted";
          break;
        case RebootCode::Restart:
          power_state_ = "rebooted";
          break;
      }
    }
    state = power_state_;
  }
  env_.log(nullptr, "machine", "power_state", "OK", {{"state", state}});
  if (state == "cycled" || state == "rebooted") {
    boot(state);
  } else {
    // Off or halted: nothing answers until power_on().
    {
      core::MutexLock lock(mu_);
      off_ = true;
    }
    env_.powered_off.store(true, std::memory_order_release);
  }
  return true;
}

bool Machine::power_on() {
  core::MutexLock power(power_mu_);
  {
    core::MutexLock lock(mu_);
    if (!off_) return false;
    power_state_ = "on";
  }
  boot("power_on");
  return true;
}

void Machine::boot(std::string_view why) {
  std::uint64_t n;
  {
    core::MutexLock lock(mu_);
    n = ++boots_;
  }
  // Each device back to its state at mount, volatile parts only.
  for (auto& fn : boot_hooks_) fn();
  {
    core::MutexLock lock(mu_);
    shut_down_ = false;
    off_ = false;
  }
  env_.powered_off.store(false, std::memory_order_release);
  env_.log(nullptr, "machine", "boot", "OK", {{"boot", n}, {"after", why}});
}

bool Machine::shut_down() const {
  core::MutexLock lock(mu_);
  return shut_down_;
}

std::string Machine::power_state() const {
  core::MutexLock lock(mu_);
  return power_state_;
}

std::string Machine::power() const {
  core::MutexLock lock(mu_);
  if (!off_) return "on";
  return power_state_ == "halted" ? "halted" : "off";
}

std::uint64_t Machine::boots() const {
  core::MutexLock lock(mu_);
  return boots_;
}

void Machine::set_power_state(std::string state) {
  core::MutexLock lock(mu_);
  power_state_ = std::move(state);
  power_set_by_firmware_ = true;
}

}  // namespace vsysfs::devices
