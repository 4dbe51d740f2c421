#pragma once

// Env: the only way a device reaches time or side effects (leveldb's Env).
// Tests build one over a ManualClock; the daemon over the clock chosen with
// -o clock=real|manual. Devices keep a reference; the Env outlives them.
//
// Thread-safety: Clock, EventLog and FaultInjection are thread-safe; Env
// itself is two references and a pointer, set before any device is built,
// and the atomic power flag.

#include <atomic>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/event_log.hpp"
#include "core/fault_inject.hpp"

namespace vsysfs::core {

struct Env {
  Clock& clock;
  EventLog& events;
  // The failure points (kernel/debug/vsysfs/fail, docs/fault-injection.md).
  // Null: nothing is ever injected (unit tests that do not need it).
  FaultInjection* faults = nullptr;
  // The machine is off or halted (kernel/debug/vsysfs/machine/power): the
  // request path answers every read and write of a device file with
  // ENODEV; only kernel/debug/vsysfs answers (docs/devices/machine.md).
  // Set by devices::Machine, read by fs::Server.
  std::atomic<bool> powered_off{false};

  Nanos now() const { return clock.now(); }

  std::uint64_t log(const Caller* caller, std::string_view device, std::string_view what,
                    std::string_view result, std::vector<EventField> data = {}) {
    return events.record(caller, device, what, result, std::move(data));
  }
};

}  // namespace vsysfs::core
