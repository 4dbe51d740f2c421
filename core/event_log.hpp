#pragma once

// EventLog: the append-only, sequence-numbered record of what happened in
// the simulation: stores and their results, SMIs and their registers,
// balloon steps, lock hand-overs, MMIO writes reaching a device. Tests and
// users assert on it instead of sleeping. Each event renders as one JSON
// object per line:
//
//   {"seq":12,"time_ns":3000000000,"pid":4711,"uid":0,"comm":"bash",
//    "device":"xen_balloon","what":"step","result":"EAGAIN","data":{...}}
//
// The in-memory log keeps the newest kMaxEvents events (older ones are
// dropped and counted); an optional sink file (-o events=FILE) receives
// every event, appended as it happens.
//
// Thread-safety: every member may be called from any thread.

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/locks.hpp"

namespace vsysfs::core {

class Caller;

// One key of an event's "data" object, its value already rendered as JSON.
struct EventField {
  EventField(std::string_view k, std::string_view v);  // JSON string
  EventField(std::string_view k, const char* v) : EventField(k, std::string_view(v)) {}
  EventField(std::string_view k, const std::string& v) : EventField(k, std::string_view(v)) {}
  EventField(std::string_view k, bool v) : key(k), json(v ? "true" : "false") {}
  template <typename Int>
    requires std::is_integral_v<Int>
  EventField(std::string_view k, Int v) : key(k), json(std::to_string(v)) {}
  static EventField raw(std::string_view k, std::string json_value);

  std::string key;
  std::string json;
};

struct Event {
  std::uint64_t seq = 0;
  Nanos time{0};
  pid_t pid = 0;
  uid_t uid = 0;
  std::string comm;
  std::string device;
  std::string what;
  std::string result;  // "OK", an errno name, or a device-specific word
  std::vector<EventField> data;

  std::string to_json() const;
  // The value of data key `key` as rendered JSON, or "" if absent.
  std::string field(std::string_view key) const;
};

class EventLog {
 public:
  static constexpr std::size_t kMaxEvents = 100000;

  explicit EventLog(const Clock& clock) : clock_(clock) {}
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends JSON lines to `path` from now on; throws std::system_error.
  void open_sink(const std::string& path);

  // Records an event; `caller` may be null for the simulated kernel.
  std::uint64_t record(const Caller* caller, std::string_view device, std::string_view what,
                       std::string_view result, std::vector<EventField> data = {});

  std::vector<Event> snapshot() const;
  // Events with seq > after, oldest first.
  std::vector<Event> since(std::uint64_t after) const;
  void clear();
  std::uint64_t last_seq() const;
  std::uint64_t dropped() const;
  // All retained events as JSON lines.
  void render(std::string& out) const;

 private:
  const Clock& clock_;
  mutable Mutex mu_{"event_log.mu"};  // Order: leaf
  std::deque<Event> events_ GUARDED_BY(mu_);
  std::uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  std::uint64_t dropped_ GUARDED_BY(mu_) = 0;
  std::FILE* sink_ GUARDED_BY(mu_) = nullptr;
};

// Appends `text` to `out` as a JSON string literal (quotes included).
void json_quote(std::string& out, std::string_view text);

}  // namespace vsysfs::core
