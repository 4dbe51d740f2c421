#include "core/event_log.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <system_error>

#include <fmt/format.h>

#include "core/caller.hpp"
#include "core/trusted_file.hpp"

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
  // The log holds what root-only files show (kernel/debug is 0700): the
  // file is created 0600, never through a symbolic link (O_NOFOLLOW), and
  // an existing one must be a private regular file of ours
  // (docs/trust-files.md). O_NONBLOCK keeps a FIFO from blocking the open;
  // FIFOs and devices are refused anyway, since a reader that stops
  // reading would block every event, and with it every client.
  const int fd = ::open(path.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
                        0600);
  if (fd < 0) {
    const int e = errno;
    if (e == ELOOP) throw TrustError(fmt::format("events file {}: is a symbolic link (refused)", path));
    // A FIFO (or socket) with no reader: ENXIO (fs/fifo.c fifo_open).
    struct stat lst {};
    if (e == ENXIO && ::lstat(path.c_str(), &lst) == 0 && !S_ISREG(lst.st_mode))
      throw TrustError(fmt::format("events file {}: not a regular file (a {})", path,
                                   file_type_name(lst.st_mode)));
    throw TrustError(fmt::format("events file {}: {}", path, std::strerror(e)));
  }
  struct stat st {};
  std::string bad = ::fstat(fd, &st) != 0 ? std::strerror(errno) : untrusted_file(st, 077, 0);
  std::FILE* f = bad.empty() ? ::fdopen(fd, "a") : nullptr;
  if (!f) {
    if (bad.empty()) bad = std::strerror(errno);
    ::close(fd);
    throw TrustError(fmt::format("events file {}: {}", path, bad));
  }
  std::lock_guard lock(mu_);
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
  std::lock_guard lock(mu_);
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
  std::lock_guard lock(mu_);
  return {events_.begin(), events_.end()};
}

std::vector<Event> EventLog::since(std::uint64_t after) const {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  for (const auto& e : events_)
    if (e.seq > after) out.push_back(e);
  return out;
}

void EventLog::clear() {
  std::deque<Event> gone;
  {
    std::lock_guard lock(mu_);
    gone.swap(events_);
  }
  gone.clear();
  // A full log is ~100 MB in many small blocks: hand the freed heap back to
  // the system, so clearing the log brings the daemon's RSS back down
  // (issue 8's load test measures exactly that).
  ::malloc_trim(0);
}

std::uint64_t EventLog::last_seq() const {
  std::lock_guard lock(mu_);
  return next_seq_ - 1;
}

std::uint64_t EventLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

void EventLog::render(std::string& out) const {
  std::lock_guard lock(mu_);
  for (const auto& e : events_) {
    out += e.to_json();
    out.push_back('\n');
  }
}

}  // namespace vsysfs::core
