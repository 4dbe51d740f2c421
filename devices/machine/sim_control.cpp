#include "devices/machine/sim_control.hpp"

#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "core/parse.hpp"
#include "devices/machine/fail_control.hpp"
#include "devices/machine/snapshot.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<SimControl> kClockAttrs[] = {
    VSYSFS_ATTR_RO_MODE(SimControl, now_ns, 0400),
    VSYSFS_ATTR_RO_MODE(SimControl, mode, 0400),
    VSYSFS_ATTR_WO_MODE(SimControl, advance_ms, 0200),
};
constexpr core::DeviceAttribute<SimControl> kTopAttrs[] = {
    VSYSFS_ATTR_WO_MODE(SimControl, events_clear, 0200),
    VSYSFS_ATTR_RO_MODE(SimControl, events_dropped, 0400),
    VSYSFS_ATTR_RO_MODE(SimControl, pid, 0400),
};
constexpr core::SeqAttribute<SimControl> kTopSeq[] = {
    VSYSFS_SEQ_ATTR_RO(SimControl, events, 0400),
};
// 0400 like the event log it streams.
constexpr core::StreamAttribute<SimControl> kTopStream[] = {
    VSYSFS_STREAM_ATTR(SimControl, events_pipe, 0400),
};
constexpr core::DeviceAttribute<SimControl> kMachineAttrs[] = {
    VSYSFS_ATTR_WO_MODE(SimControl, shutdown, 0200),
    VSYSFS_ATTR_RO_MODE(SimControl, power_state, 0400),
    VSYSFS_ATTR_RW_MODE(SimControl, power, 0600),
};
constexpr core::AttributeGroup<SimControl> kGroups[] = {
    {.name = "", .attrs = kTopAttrs, .seq_attrs = kTopSeq, .stream_attrs = kTopStream},
    {.name = "clock", .attrs = kClockAttrs},
    {.name = "machine", .attrs = kMachineAttrs},
};

// The control plane exists on every machine (order < 0: built even when the
// description has no [vsysfs] section).
void build_sim_control(MachineContext& ctx, const core::ConfigValue&) {
  auto dev = std::make_shared<SimControl>(ctx.env, ctx.machine, ctx.manual_clock);
  ctx.tree.add_device<SimControl>("kernel/debug/vsysfs", dev, SimControl::groups());
  // debugfs is root-only: /sys/kernel/debug is 0700 on modern kernels.
  (void)ctx.tree.set_mode(ctx.tree.resolve("kernel/debug"), 0700);
  ctx.machine.keep(dev);
  build_fail_control(ctx);  // fail/: the failure points (docs/fault-injection.md)
  build_machine_snapshots(ctx);  // machine/snapshot, restore, diff (docs/snapshot.md)
  // The control plane's state: the machine's power state and the failure
  // points. The event log and the clock are not a device's (docs/snapshot.md).
  Machine& machine = ctx.machine;
  core::FaultInjection* faults = ctx.env.faults;
  ctx.machine.register_state(
      {.name = "vsysfs",
       .version = 1,
       .save =
           [&machine, faults](core::StateWriter& w) {
             machine.save_state(w);
             if (faults) faults->save_state(w);
           },
       .load = [&machine, faults](const core::StateReader& r) -> core::Status {
         if (faults)
           if (auto st = faults->load_state(r); !st) return st;
         return machine.load_state(r);
       },
       .loads_into_new_boot = {},
       .section = {}});
}
const SectionRegistrar kRegistrar{"vsysfs", &build_sim_control, -1000};

}  // namespace

std::span<const core::AttributeGroup<SimControl>> SimControl::groups() { return kGroups; }

core::Status SimControl::now_ns_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", env_.now().count());
  return {};
}

core::Status SimControl::mode_show(core::PageBuffer& buf) const {
  buf.append(manual_clock_ ? "manual\n" : "real\n");
  return {};
}

core::Result<std::size_t> SimControl::advance_ms_store(const core::Caller& caller,
                                                       std::string_view in) {
  auto ms = core::kstrtoull(in, 0);
  if (!ms) return ms.error();
  // 2^64 ns is about 584 years: refuse steps that would overflow the clock.
  if (*ms > 100ULL * 365 * 24 * 3600 * 1000) return core::Errno{ERANGE};
  if (!manual_clock_) return core::Errno{EOPNOTSUPP};
  env_.log(&caller, "clock", "advance", "OK", {{"ms", *ms}});
  // A long step stops when the writer is signalled (a driver's
  // signal_pending() loop): without that, the writer sat in D state behind
  // a reply only the whole step could produce, and SIGKILL did not end it.
  const auto done = manual_clock_->advance(std::chrono::milliseconds(*ms),
                                           [&caller] { return caller.interrupted(); });
  if (done.interrupted) {
    const auto applied_ms =
        static_cast<std::uint64_t>(done.applied / std::chrono::milliseconds(1));
    env_.log(&caller, "clock", "advance", "EINTR", {{"ms", *ms}, {"applied_ms", applied_ms}});
    // What did happen is an advance of applied_ms: that is what a state
    // file must replay.
    if (applied_ms > 0) caller.applied_as(fmt::format("{}", applied_ms));
    return core::Errno{EINTR};
  }
  return in.size();
}

core::Status SimControl::events_show(std::string& out) const {
  env_.events.render(out);
  return {};
}

std::unique_ptr<core::Stream> SimControl::events_pipe_open() const {
  return env_.events.open_stream();
}

core::Result<std::size_t> SimControl::events_clear_store(const core::Caller&, std::string_view in) {
  env_.events.clear();
  return in.size();
}

core::Status SimControl::events_dropped_show(core::PageBuffer& buf) const {
  buf.emit("total {}\n", env_.events.dropped());
  for (const auto& [uid, n] : env_.events.dropped_by_uid()) buf.emit("uid {} {}\n", uid, n);
  buf.emit("sink {}\n", env_.events.sink_dropped());
  return {};
}

core::Result<std::size_t> SimControl::shutdown_store(const core::Caller& caller,
                                                     std::string_view in) {
  RebootCode code;
  if (core::sysfs_streq(in, "poweroff")) {
    code = RebootCode::PowerOff;
  } else if (core::sysfs_streq(in, "halt")) {
    code = RebootCode::Halt;
  } else if (core::sysfs_streq(in, "reboot")) {
    code = RebootCode::Restart;
  } else {
    return core::Errno{EINVAL};
  }
  env_.log(&caller, "machine", "shutdown_request", "OK", {{"how", reboot_code_name(code)}});
  if (!machine_.shutdown(code)) return core::Errno{EBUSY};
  return in.size();
}

core::Status SimControl::power_state_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", machine_.power_state());
  return {};
}

core::Status SimControl::power_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", machine_.power());
  return {};
}

// The power button of a machine that is off or halted: a boot. "on" is
// the only word it takes (EINVAL otherwise); EBUSY while it runs.
core::Result<std::size_t> SimControl::power_store(const core::Caller& caller, std::string_view in) {
  if (!core::sysfs_streq(in, "on")) return core::Errno{EINVAL};
  env_.log(&caller, "machine", "power_request", "OK", {{"power", "on"}});
  if (!machine_.power_on()) return core::Errno{EBUSY};
  return in.size();
}

}  // namespace vsysfs::devices

namespace vsysfs::devices {

// Read at show time, not at build: fuse_daemonize() forks after the tree
// is built, and the process that serves the mount is the child. The pid is
// the process's own identity, not simulated state, so it bypasses Env.
core::Status SimControl::pid_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", ::getpid());
  return {};
}

}  // namespace vsysfs::devices
