#pragma once

// The simulation's control plane: MOUNT/kernel/debug/vsysfs/, modelled on
// the kernel's own test devices (netdevsim's debugfs knobs, scsi_debug).
// Root-only, as debugfs is: kernel/debug itself is 0700.
//
//   file                  mode  what
//   clock/now_ns          0400  simulated time in ns since mount, "%llu\n"
//   clock/mode            0400  "manual\n" or "real\n"
//   clock/advance_ms      0200  manual clock only: moves time forward by N
//                               ms (kstrtoull, base 0), running every due
//                               timer before the write returns. EINVAL for
//                               junk, EOPNOTSUPP with the real clock.
//                               Interruptible: a writer that gets a signal
//                               ends it with EINTR after a whole number of
//                               ms; the log's second "advance" event
//                               (result EINTR) says how far it got
//                               ("applied_ms"), and -o state records that
//                               part.
//   events                0400  the event log, one JSON object per line
//                               (seq_file: no page limit)
//   events_pipe           0400  the events recorded after this open file
//                               description was opened, each once, one
//                               JSON line each, as they happen: a read
//                               with nothing new waits (EAGAIN with
//                               O_NONBLOCK; EINTR on a signal), poll says
//                               POLLIN when there is something to read; a
//                               {"lost_events":N,"after_seq":S} line for
//                               events the log's bounds dropped before
//                               this reader got them. Like trace_pipe, but
//                               not consuming: every open sees every event,
//                               and `events` keeps them (docs/ctl.md)
//   events_clear          0200  any write empties the in-memory log
//   events_dropped        0400  what the log's bounds dropped (docs/trust.md):
//                               "total N\n", one "uid U N\n" per uid whose
//                               events were evicted from memory, and
//                               "sink N\n" for events -o events=FILE never
//                               received (its consumer did not keep up)
//   machine/shutdown      0200  "poweroff", "halt" or "reboot": initiate OS
//                               shutdown (runs the reboot notifiers: dcdbas
//                               host control); EBUSY once shut down
//   machine/power_state   0400  "on", "off", "cycled", "halted", "rebooted":
//                               what the last shutdown ended in ("on"
//                               before one and after a power-on)
//   machine/power         0600  whether the machine runs: "on", "off" or
//                               "halted"; a shutdown that ends "cycled" or
//                               "rebooted" boots at once. Off, every device
//                               file outside kernel/debug/vsysfs is ENODEV.
//                               Store "on" (sysfs_streq): boot an off or
//                               halted machine; EBUSY when it is on, EINVAL
//                               for any other word
//   pid                   0400  the daemon's pid, "%d\n": tells the mount
//                               scripts which process serves this mount
//                               (mount-scripts/vsysfs-umount waits for it)
//   fail/                       the failure points: devices/machine/fail_control.hpp
//
// Source: docs/design.md section 4; docs/kernel-semantics.md section 1 for modes and errnos.
// Thread-safety: every callback may run concurrently; state lives in the
// thread-safe Clock, EventLog and Machine.

#include <memory>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::devices {

class SimControl {
 public:
  SimControl(core::Env& env, Machine& machine, core::ManualClock* manual_clock)
      : env_(env), machine_(machine), manual_clock_(manual_clock) {}
  SimControl(const SimControl&) = delete;
  SimControl& operator=(const SimControl&) = delete;

  static std::span<const core::AttributeGroup<SimControl>> groups();

  // Locking: none of ours (Clock and EventLog lock internally).
  // Context: FUSE worker.
  core::Status now_ns_show(core::PageBuffer& buf) const;
  core::Status mode_show(core::PageBuffer& buf) const;
  // Context: FUSE worker; runs timer callbacks (device code) on this thread.
  core::Result<std::size_t> advance_ms_store(const core::Caller& caller, std::string_view in);
  core::Status events_show(std::string& out) const;
  // Context: FUSE worker (open); the stream's reads take the log's lock.
  std::unique_ptr<core::Stream> events_pipe_open() const;
  core::Result<std::size_t> events_clear_store(const core::Caller& caller, std::string_view in);
  core::Status events_dropped_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> shutdown_store(const core::Caller& caller, std::string_view in);
  core::Status power_state_show(core::PageBuffer& buf) const;
  // Context: FUSE worker; a boot runs every device's boot hook on this thread.
  core::Status power_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> power_store(const core::Caller& caller, std::string_view in);
  core::Status pid_show(core::PageBuffer& buf) const;

 private:
  core::Env& env_;
  Machine& machine_;
  core::ManualClock* const manual_clock_;
};

}  // namespace vsysfs::devices
