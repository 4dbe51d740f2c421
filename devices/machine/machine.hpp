#pragma once

// Machine: a whole simulated computer built from a machine description
// (TOML, see machines/*.toml and docs/machine-files.md). Each device kind
// registers the top-level section it owns ([dcdbas], [xen], [numa], [net],
// ...) with a builder; Machine hands each present section to its builder,
// which creates the device, adds its files to the tree and keeps it alive
// here. Sections nobody registered, and keys no builder read, are errors
// that name the key and line.
//
// The machine also owns what belongs to no single device: its identity,
// the reboot notifier chain run at "shutdown" (kernel:
// register_reboot_notifier; dcdbas host control hooks in here), and the
// power cycle (docs/devices/machine.md "Power"): a shutdown that ends
// "cycled" or "rebooted" boots the machine again at once, one that ends
// "off" or "halted" leaves it off (every device file ENODEV, see
// core/env.hpp powered_off) until power_on(). Every shutdown runs each
// device's shutdown hook after the notifiers (device_shutdown: workers and
// senders stop); a boot runs each device's boot hook, which puts its
// volatile state back to what the mount built, keeps what is non-volatile
// and starts the workers again.
//
// Thread-safety: build() runs once at start-up on one thread; shutdown(),
// power_on() and the state getters may be called from any thread
// afterwards; power_mu serialises shutdowns and boots (the hooks run
// under it, with no other machine lock held).

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.hpp"
#include "core/env.hpp"
#include "core/lock_service.hpp"
#include "core/locks.hpp"
#include "core/state_record.hpp"
#include "core/tree.hpp"

namespace vsysfs::devices {

class Machine;
class MachineSnapshots;

// What a section builder gets.
struct MachineContext {
  core::Env& env;
  core::Tree& tree;
  Machine& machine;
  core::ManualClock* manual_clock;  // null with -o clock=real
  core::LockService& locks;         // flock/POSIX locks on vsysfs files
  // The whole description, for a section whose defaults follow from
  // another section (the default NUMA topology of a machine without
  // [numa] takes its widths from [net] and its memory from [xen]).
  const core::ConfigValue& root;
};

using SectionBuilder = void (*)(MachineContext& ctx, const core::ConfigValue& section);

// Registers `builder` for top-level section `name` (from a static object in
// the device's .cpp: `const SectionRegistrar kReg{"dcdbas", &build_dcdbas};`).
// `order` sorts builders (lower first) so that, e.g., NUMA nodes exist
// before the balloon that moves pages in them.
struct SectionRegistrar {
  SectionRegistrar(std::string_view name, SectionBuilder builder, int order = 100);
};

// kernel: SYS_POWER_OFF / SYS_HALT / SYS_RESTART as passed to reboot notifiers.
enum class RebootCode { PowerOff, Halt, Restart };
std::string_view reboot_code_name(RebootCode code);

// Names in machine files that become a path component or a line of a
// file's content are checked where they are read, so a bad one is a
// "FILE:LINE:COL: KEY: ..." error, never a strange tree
// (docs/trust-files.md "Names"). Each returns the string or throws
// core::ConfigError.
//
// An interface name, by net/core/dev.c dev_valid_name: not empty, shorter
// than IFNAMSIZ (16), not "." or "..", no '/', ':' or kernel-isspace byte
// (\t \n \v \f \r, space and 0xa0: lib/ctype.c). Other bytes, control
// bytes included, pass, as in the kernel. A '%' (a name template the
// kernel expands, dev_alloc_name) is refused: machine files name devices.
const std::string& require_netdev_name(const core::ConfigValue& v);
// One sysfs path component that is also a field of a space-separated
// line (Xen domain names, PCI driver names): 1..255 bytes (NAME_MAX), not
// "." or "..", no '/', no space, no control byte (0x00-0x1f, 0x7f).
const std::string& require_path_name(const core::ConfigValue& v);
// Text shown as (part of) one line: no control byte (0x00-0x1f, 0x7f),
// at most 255 bytes. Spaces are fine.
const std::string& require_line_text(const core::ConfigValue& v);

// One device's part of a machine snapshot (docs/snapshot.md "Device
// state"): its state as a versioned field list. A section's builder
// registers one for every device it builds that has state of its own
// (or one with neither save nor load: "this section keeps no state"), so
// that a restore can refuse a machine with a section that would come back
// only partly. `load` validates the whole record before it changes
// anything, cancels the device's timers and re-arms them at the saved
// deadlines (absolute simulated time), and hotplugs what the record has
// and the machine lacks (and the reverse).
struct StateHandler {
  std::string name;      // unique in the machine: "clocksource", "net/eth0"
  unsigned version = 1;  // the layout save() writes
  std::function<void(core::StateWriter&)> save;
  std::function<core::Status(const core::StateReader&)> load;
  // Optional: false while the state holds what load() refuses to give
  // back (an interface unbound from its PCI driver: a restore does not
  // bind or unbind). A machine just built could not load such a state,
  // so MachineSnapshots::state_base() refuses it (EBUSY) and the state
  // file keeps its journal instead (docs/state.md "Compaction").
  std::function<bool()> loads_into_new_boot;
  std::string section;  // set by register_state: the section being built
};

class Machine {
 public:
  Machine(core::Env& env, core::Tree& tree, core::ManualClock* manual_clock,
          core::LockService& locks);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Builds every device the description names; throws core::ConfigError.
  void build(const core::ConfigValue& root);

  // Keeps a device alive for the machine's lifetime.
  void keep(std::shared_ptr<void> device) { devices_.push_back(std::move(device)); }

  // register_reboot_notifier(): called in registration order at shutdown.
  void register_reboot_notifier(std::function<void(RebootCode)> fn);

  // A device's boot hook: called, in registration order, at every boot
  // after the first (the mount itself is the first). It resets the
  // device's volatile state to its state at mount and keeps the
  // non-volatile (docs/devices/machine.md "Power").
  void register_boot_hook(std::function<void()> fn);

  // A device's shutdown hook (the kernel's device_shutdown(): each driver's
  // .shutdown after the reboot notifiers): called, in registration order,
  // at every shutdown, whatever the power state it ends in. It stops what
  // would otherwise keep running on a machine that is off (workers,
  // senders); the next boot hook starts them again.
  void register_shutdown_hook(std::function<void()> fn);

  // "Initiate OS shutdown": runs the reboot notifiers once per boot (a
  // machine already shut down returns false). The power state afterwards
  // is whatever the notifiers (the simulated firmware) set, else
  // "off"/"halted"/"rebooted"; "cycled" and "rebooted" then boot.
  bool shutdown(RebootCode code);
  bool shut_down() const;
  // Powers an off or halted machine on (a boot); false when it is on.
  bool power_on();

  // What the last shutdown ended in ("on" before the first and after a
  // power_on: "off", "cycled", "halted", "rebooted").
  std::string power_state() const;
  void set_power_state(std::string state);
  // Whether the machine runs: "on", "off" or "halted".
  std::string power() const;
  // Boots so far, the mount's own not counted.
  std::uint64_t boots() const;

  const std::string& name() const { return name_; }
  // The machine's identity: a hash of its description in canonical form
  // (core::ConfigValue::canonical: layout and comments do not count), set
  // by build(). A snapshot file holds it, so that a snapshot is loaded
  // only onto the machine it was taken of (docs/snapshot.md).
  const std::string& identity() const { return identity_; }
  // The snapshot files (devices/machine/snapshot.hpp), set by their
  // builder during build(); null on a machine built without the control
  // plane (unit tests).
  void set_snapshots(MachineSnapshots* snapshots) { snapshots_ = snapshots; }
  MachineSnapshots* snapshots() const { return snapshots_; }

  // Snapshot support (docs/snapshot.md). register_state is called by a
  // builder during build() (the handler belongs to the section being
  // built), or by a test before anything reads the handlers. Afterwards
  // the lists are constant: read them from any thread.
  void register_state(StateHandler handler);
  const std::vector<StateHandler>& state_handlers() const { return state_; }
  // The sections build() ran, in build order.
  const std::vector<std::string>& sections() const { return sections_; }
  // The sections that were built and registered no StateHandler: a
  // restore would bring them back only partly, so it is refused.
  std::vector<std::string> sections_without_state() const;
  // The machine's own state (shut down, power state) as fields "machine.*";
  // load_state checks the record first (EINVAL).
  void save_state(core::StateWriter& w) const;
  core::Status load_state(const core::StateReader& r);

 private:
  core::Env& env_;
  core::Tree& tree_;
  core::ManualClock* manual_clock_;
  core::LockService& locks_;
  std::string name_;
  std::string identity_;
  MachineSnapshots* snapshots_ = nullptr;
  std::vector<std::shared_ptr<void>> devices_;
  std::vector<std::string> sections_;
  std::string building_;  // the section whose builder runs (build() only)
  std::vector<StateHandler> state_;

  void boot(std::string_view why) REQUIRES(power_mu_);

  // Order: power_mu -> (device locks of the notifiers and hooks) -> machine.mu
  core::Mutex power_mu_{"machine.power_mu", 1};
  std::vector<std::function<void()>> boot_hooks_ GUARDED_BY(power_mu_);
  std::vector<std::function<void()>> shutdown_hooks_ GUARDED_BY(power_mu_);
  mutable core::Mutex mu_{"machine.mu"};  // Order: leaf; never held while a notifier runs
  std::vector<std::function<void(RebootCode)>> reboot_notifiers_ GUARDED_BY(mu_);
  bool shut_down_ GUARDED_BY(mu_) = false;
  std::string power_state_ GUARDED_BY(mu_) = "on";
  bool power_set_by_firmware_ GUARDED_BY(mu_) = false;
  bool off_ GUARDED_BY(mu_) = false;
  std::uint64_t boots_ GUARDED_BY(mu_) = 0;
};

// The machine description reader (devices/machine_file.cpp): TOML text to
// a ConfigValue tree; throws core::ConfigError naming the line.
core::ConfigValue parse_machine_toml(std::string_view text, const std::string& source_name);
core::ConfigValue load_machine_file(const std::string& path);
// The built-in default machine (machines/default.toml, compiled in).
std::string_view default_machine_toml();

}  // namespace vsysfs::devices
