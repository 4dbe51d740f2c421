#pragma once

// Env: the only way a device reaches time or side effects (leveldb's Env).
// Tests build one over a ManualClock; the daemon over the clock chosen with
// -o clock=real|manual. Devices keep a reference; the Env outlives them.
//
// Thread-safety: Clock and EventLog are thread-safe; Env itself is a pair of
// references.

#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/event_log.hpp"

namespace vsysfs::core {

struct Env {
  Clock& clock;
  EventLog& events;

  Nanos now() const { return clock.now(); }

  std::uint64_t log(const Caller* caller, std::string_view device, std::string_view what,
                    std::string_view result, std::vector<EventField> data = {}) {
    return events.record(caller, device, what, result, std::move(data));
  }
};

}  // namespace vsysfs::core
