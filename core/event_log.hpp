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
// Bounds (docs/trust.md): every client-supplied string field is cut to
// kMaxFieldBytes before it is escaped; the in-memory log keeps at most
// max_events events and max_bytes of rendered JSON; and each uid other
// than the daemon's own (whose uid the simulated kernel's events carry
// too) may hold at most a quarter of either, so a flood from one user
// (flock loops by `nobody` with allow_other) evicts that user's own
// events, never root's or the others'. Beyond that the oldest event of the
// uid holding the most bytes goes first. Dropped events are counted per
// uid.
//
// The optional sink (-o events=FILE) is written by its own thread from a
// bounded queue: record() never blocks on a slow or stalled consumer; when
// the queue is full the event is not written to the sink and is counted.
// At shutdown the sink gets sink_drain_time to take what is queued. The
// sink is a private regular file (docs/trust-files.md): open_sink throws
// TrustError for anything else.
//
// The stream (open_stream(), the control plane's events_pipe): each
// reader has its own cursor, a sequence number, starting at the newest
// event when it is opened; a read renders the retained events after the
// cursor and moves it. Readers hold no copy of the log, so one that never
// reads costs the daemon nothing but its cursor. When the bounds (or
// clear()) took events the reader had not read yet, the stream says so in
// one line before the next event, as trace_pipe prints
// "CPU:N [LOST M EVENTS]" (kernel/trace/trace.c print_trace_line):
//
//   {"lost_events":3,"after_seq":41}
//
// (the events after seq 41 up to 44 are gone; the next line is seq 45).
// readers() is woken after every record().
//
// Thread-safety: every member may be called from any thread. mu_ is a
// leaf; the sink thread takes only sink_mu_, never mu_. readers() is woken
// outside mu_.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/locks.hpp"
#include "core/stream.hpp"

namespace vsysfs::core {

class Caller;

// One key of an event's "data" object, its value already rendered as JSON.
struct EventField {
  // A string value longer than this many bytes is cut there and marked
  // with how much was left out ("...(+N bytes)").
  static constexpr std::size_t kMaxFieldBytes = 256;

  EventField(std::string_view k, std::string_view v);  // JSON string, cut
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
  // Bytes this event costs in the log (its rendered size, near enough).
  std::size_t cost() const;
  // The value of data key `key` as rendered JSON, or "" if absent.
  std::string field(std::string_view key) const;
};

struct EventLimits {
  std::size_t max_events = 100000;
  std::size_t max_bytes = 32u << 20;  // rendered JSON retained in memory
  std::size_t sink_queue_bytes = 1u << 20;  // a burst the consumer has not read yet
  std::chrono::milliseconds sink_drain_time{2000};
};

class EventLog {
 public:
  static constexpr std::size_t kMaxEvents = EventLimits{}.max_events;

  explicit EventLog(const Clock& clock, EventLimits limits = {});
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends JSON lines to `path` from now on. Creates it 0600; refuses a
  // symbolic link, a FIFO or device, a file not owned by the effective
  // uid, one with any group/other mode bit, a hard-linked one: throws
  // TrustError (one line, docs/trust-files.md).
  void open_sink(const std::string& path);
  // The same on an open descriptor (a file, a pipe), which the log owns
  // from now on; it is made non-blocking.
  void open_sink_fd(int fd);

  // Records an event; `caller` may be null for the simulated kernel.
  std::uint64_t record(const Caller* caller, std::string_view device, std::string_view what,
                       std::string_view result, std::vector<EventField> data = {});

  std::vector<Event> snapshot() const;
  // Events with seq > after, oldest first.
  std::vector<Event> since(std::uint64_t after) const;
  void clear();
  std::uint64_t last_seq() const;
  // Events no longer in memory because a bound evicted them (clear() is
  // not counted), in all and by the uid that caused them.
  std::uint64_t dropped() const;
  std::map<uid_t, std::uint64_t> dropped_by_uid() const;
  // Events the sink never received (its queue was full, or it was gone).
  std::uint64_t sink_dropped() const;
  std::size_t bytes() const;
  // All retained events as JSON lines.
  void render(std::string& out) const;

  // The stream of events recorded from now on (see above).
  std::unique_ptr<Stream> open_stream();
  // Appends to `out` the events after `cursor` as JSON lines, whole lines
  // only, stopping before `out` would grow past `max_bytes` (but at least
  // one line), and moves `cursor` past them; a lost-events line first
  // when events after `cursor` are no longer in memory. False when there
  // is nothing after `cursor`.
  bool read_after(std::uint64_t& cursor, std::size_t max_bytes, std::string& out) const;
  // Woken after every record().
  WaitQueue& readers() { return readers_; }

 private:
  struct UidShare {
    std::deque<std::uint64_t> seqs;  // this uid's retained events, oldest first
    std::size_t bytes = 0;
  };
  // One retained event, or the place of one the per-uid bound evicted
  // out of order (a tombstone: live false, its seq kept for the search).
  struct Slot {
    Event event;
    bool live = true;
  };
  using Slots = std::deque<Slot>;
  // The first slot with seq > after.
  Slots::const_iterator after_locked(std::uint64_t after) const REQUIRES(mu_);
  void evict_locked(std::uint64_t seq) REQUIRES(mu_);
  void enforce_bounds_locked(uid_t newest) REQUIRES(mu_);
  void sink_push(std::string line);
  void sink_main();

  const Clock& clock_;
  const EventLimits limits_;
  const uid_t owner_uid_;  // the daemon's own: not capped per uid

  mutable Mutex mu_{"event_log"};  // Order: leaf
  // Retained events in seq order: a record appends at the back, the
  // global bound evicts at the front, both O(1) (no tree node to allocate
  // and rebalance per event: docs/performance.md "Daemon CPU per
  // operation"). An eviction by the per-uid bound, which may take an event
  // from the middle, leaves a tombstone; tombstones at the front are
  // dropped at once and the rest when they outnumber the live events, so
  // their cost stays amortized O(1) and their memory below the live
  // events'. Lookup by seq is a binary search.
  Slots events_ GUARDED_BY(mu_);
  std::size_t live_ GUARDED_BY(mu_) = 0;  // live slots in events_
  std::map<uid_t, UidShare> shares_ GUARDED_BY(mu_);
  std::size_t bytes_ GUARDED_BY(mu_) = 0;
  std::uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  std::uint64_t dropped_ GUARDED_BY(mu_) = 0;
  std::map<uid_t, std::uint64_t> dropped_by_uid_ GUARDED_BY(mu_);

  // The sink and its writer thread.
  mutable Mutex sink_mu_{"event_sink"};  // Order: leaf
  std::condition_variable_any sink_cv_;
  std::deque<std::string> sink_queue_ GUARDED_BY(sink_mu_);
  std::size_t sink_queued_bytes_ GUARDED_BY(sink_mu_) = 0;
  std::uint64_t sink_dropped_ GUARDED_BY(sink_mu_) = 0;
  bool sink_stop_ GUARDED_BY(sink_mu_) = false;
  int sink_fd_ = -1;  // set before the thread starts; only the thread writes it
  std::thread sink_thread_;

  WaitQueue readers_;
};

// Appends `text` to `out` as a JSON string literal (quotes included).
void json_quote(std::string& out, std::string_view text);

}  // namespace vsysfs::core
