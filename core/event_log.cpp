#include "core/event_log.hpp"

#include <malloc.h>

#include <cerrno>
#include <deque>
#include <system_error>

#include <fmt/format.h>

#include "core/caller.hpp"

namespace vsysfs::core {

void json_quote(std::string& out, std::string_view text) {
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          // Bytes, not code points: keeps the output valid JSON whatever a
          // client wrote (invalid UTF-8 included).
          out += fmt::format("\\u{:04x}", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

EventField::EventField(std::string_view k, std::string_view v) : key(k) { json_quote(json, v); }

EventField EventField::raw(std::string_view k, std::string json_value) {
  EventField f{k, false};
  f.json = std::move(json_value);
  return f;
}

std::string Event::to_json() const {
  std::string out;
  out.reserve(160);
  out += fmt::format("{{\"seq\":{},\"time_ns\":{},\"pid\":{},\"uid\":{},\"comm\":", seq,
                     time.count(), pid, uid);
  json_quote(out, comm);
  out += ",\"device\":";
  json_quote(out, device);
  out += ",\"what\":";
  json_quote(out, what);
  out += ",\"result\":";
  json_quote(out, result);
  out += ",\"data\":{";
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (i) out.push_back(',');
    json_quote(out, data[i].key);
    out.push_back(':');
    out += data[i].json;
  }
  out += "}}";
  return out;
}

std::string Event::field(std::string_view key) const {
  for (const auto& f : data)
    if (f.key == key) return f.json;
  return {};
}

EventLog::~EventLog() {
  if (sink_) std::fclose(sink_);
}

void EventLog::open_sink(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (!f) throw std::system_error(errno, std::generic_category(), "cannot open events file " + path);
  MutexLock lock(mu_);
  if (sink_) std::fclose(sink_);
  sink_ = f;
}

std::uint64_t EventLog::record(const Caller* caller, std::string_view device,
                               std::string_view what, std::string_view result,
                               std::vector<EventField> data) {
  Event e;
  e.time = clock_.now();
  if (caller) {
    e.pid = caller->pid();
    e.uid = caller->uid();
    e.comm = caller->comm();
  } else {
    e.comm = "kernel";
  }
  e.device = device;
  e.what = what;
  e.result = result;
  e.data = std::move(data);
  MutexLock lock(mu_);
  e.seq = next_seq_++;
  if (sink_) {
    const std::string line = e.to_json() + "\n";
    std::fwrite(line.data(), 1, line.size(), sink_);
    std::fflush(sink_);
  }
  if (events_.size() >= kMaxEvents) {
    events_.pop_front();
    ++dropped_;
  }
  events_.push_back(std::move(e));
  return next_seq_ - 1;
}

std::vector<Event> EventLog::snapshot() const {
  MutexLock lock(mu_);
  return {events_.begin(), events_.end()};
}

std::vector<Event> EventLog::since(std::uint64_t after) const {
  MutexLock lock(mu_);
  std::vector<Event> out;
  for (const auto& e : events_)
    if (e.seq > after) out.push_back(e);
  return out;
}

void EventLog::clear() {
  std::deque<Event> gone;
  {
    MutexLock lock(mu_);
    gone.swap(events_);
  }
  gone.clear();
  // A full log is ~100 MB in many small blocks: hand the freed heap back to
  // the system, so clearing the log brings the daemon's RSS back down
  // (issue 8's load test measures exactly that).
  ::malloc_trim(0);
}

std::uint64_t EventLog::last_seq() const {
  MutexLock lock(mu_);
  return next_seq_ - 1;
}

std::uint64_t EventLog::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

void EventLog::render(std::string& out) const {
  MutexLock lock(mu_);
  for (const auto& e : events_) {
    out += e.to_json();
    out.push_back('\n');
  }
}

}  // namespace vsysfs::core
