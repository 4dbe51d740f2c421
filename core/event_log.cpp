#include "core/event_log.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
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

EventField::EventField(std::string_view k, std::string_view v) : key(k) {
  if (v.size() <= kMaxFieldBytes) {
    json_quote(json, v);
    return;
  }
  // A client may write a page of control bytes (six bytes each once
  // escaped): the log keeps the start, and says how much it left out.
  json_quote(json, std::string(v.substr(0, kMaxFieldBytes)) +
                       fmt::format("...(+{} bytes)", v.size() - kMaxFieldBytes));
}

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

std::size_t Event::cost() const {
  // The fixed keys and numbers of to_json(), plus what varies.
  std::size_t n = 110 + comm.size() + device.size() + what.size() + result.size();
  for (const auto& f : data) n += f.key.size() + f.json.size() + 4;
  return n;
}

std::string Event::field(std::string_view key) const {
  for (const auto& f : data)
    if (f.key == key) return f.json;
  return {};
}

EventLog::EventLog(const Clock& clock, EventLimits limits)
    : clock_(clock), limits_(limits), owner_uid_(::geteuid()) {}

EventLog::~EventLog() {
  if (!sink_thread_.joinable()) return;
  {
    MutexLock lock(sink_mu_);
    sink_stop_ = true;
  }
  sink_cv_.notify_all();
  sink_thread_.join();
  ::close(sink_fd_);
}

void EventLog::open_sink(const std::string& path) {
  // The log holds what root-only files show (kernel/debug is 0700): the
  // file is created 0600, never through a symbolic link (O_NOFOLLOW), and
  // an existing one must be a private regular file of ours
  // (docs/trust-files.md). O_NONBLOCK keeps a FIFO from blocking the open;
  // FIFOs and devices are refused: the control plane's events file is the
  // stream to follow.
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
  if (!bad.empty()) {
    ::close(fd);
    throw TrustError(fmt::format("events file {}: {}", path, bad));
  }
  open_sink_fd(fd);
}

void EventLog::open_sink_fd(int fd) {
  if (sink_thread_.joinable()) throw std::logic_error("events sink opened twice");
  // Non-blocking: a pipe whose reader stalls makes write() return EAGAIN,
  // so the writer thread can still see a stop request and drop what is
  // left at shutdown instead of hanging the daemon's exit.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  sink_fd_ = fd;
  sink_thread_ = std::thread([this] { sink_main(); });
}

void EventLog::sink_push(std::string line) {
  {
    MutexLock lock(sink_mu_);
    if (sink_stop_ || sink_queued_bytes_ + line.size() > limits_.sink_queue_bytes) {
      ++sink_dropped_;
      return;
    }
    sink_queued_bytes_ += line.size();
    sink_queue_.push_back(std::move(line));
  }
  sink_cv_.notify_one();
}

// The writer: takes what is queued, writes it whole (waiting for a pipe to
// drain with poll, never holding a lock while it waits). After a stop
// request it keeps writing for sink_drain_time at most, then drops the
// rest: a consumer that stopped reading cannot keep the daemon from
// exiting.
void EventLog::sink_main() {
  // SIGPIPE is directed at the writing thread: blocked here, a reader that
  // went away turns into EPIPE instead of killing the daemon.
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
  using Steady = std::chrono::steady_clock;
  std::optional<Steady::time_point> deadline;
  bool broken = false;  // EPIPE or another error: nothing more can be written
  for (;;) {
    std::deque<std::string> batch;
    {
      MutexLock lock(sink_mu_);
      while (sink_queue_.empty() && !sink_stop_) sink_cv_.wait(sink_mu_);
      if (sink_stop_ && !deadline) deadline = Steady::now() + limits_.sink_drain_time;
      batch.swap(sink_queue_);
      sink_queued_bytes_ = 0;
      if (batch.empty()) return;  // stopped, and everything is written
    }
    std::size_t unwritten = 0;
    for (auto& line : batch) {
      std::string_view rest = line;
      while (!broken && !rest.empty()) {
        const ssize_t n = ::write(sink_fd_, rest.data(), rest.size());
        if (n > 0) {
          rest.remove_prefix(static_cast<std::size_t>(n));
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && errno == EAGAIN) {
          if (deadline && Steady::now() >= *deadline) break;
          pollfd p{sink_fd_, POLLOUT, 0};
          (void)::poll(&p, 1, 100);
          if (!deadline) {
            MutexLock lock(sink_mu_);
            if (sink_stop_) deadline = Steady::now() + limits_.sink_drain_time;
          }
        } else {
          broken = true;
        }
      }
      if (!rest.empty()) ++unwritten;
    }
    if (unwritten) {
      MutexLock lock(sink_mu_);
      sink_dropped_ += unwritten;
    }
    if (deadline && Steady::now() >= *deadline) {
      MutexLock lock(sink_mu_);
      sink_dropped_ += sink_queue_.size();
      sink_queue_.clear();
      sink_queued_bytes_ = 0;
      return;
    }
  }
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
    e.uid = owner_uid_;
    e.comm = "kernel";
  }
  e.device = device;
  e.what = what;
  e.result = result;
  e.data = std::move(data);
  const std::size_t cost = e.cost();
  const uid_t uid = e.uid;
  std::string line;
  std::uint64_t seq;
  {
    MutexLock lock(mu_);
    seq = e.seq = next_seq_++;
    if (sink_thread_.joinable()) line = e.to_json() + "\n";
    UidShare& share = shares_[uid];
    share.seqs.push_back(seq);
    share.bytes += cost;
    bytes_ += cost;
    events_.push_back(Slot{std::move(e)});
    ++live_;
    enforce_bounds_locked(uid);
  }
  if (!line.empty()) sink_push(std::move(line));
  readers_.wake_up_all();
  return seq;
}

EventLog::Slots::const_iterator EventLog::after_locked(std::uint64_t after) const {
  return std::upper_bound(events_.begin(), events_.end(), after,
                          [](std::uint64_t s, const Slot& slot) { return s < slot.event.seq; });
}

void EventLog::evict_locked(std::uint64_t seq) {
  auto it = events_.begin();
  if (it == events_.end() || it->event.seq != seq)
    it = events_.begin() + (after_locked(seq - 1) - events_.cbegin());
  if (it == events_.end() || it->event.seq != seq || !it->live) return;
  const uid_t uid = it->event.uid;
  const std::size_t cost = it->event.cost();
  auto sh = shares_.find(uid);
  if (sh != shares_.end()) {
    auto& seqs = sh->second.seqs;
    if (!seqs.empty() && seqs.front() == seq)
      seqs.pop_front();
    else
      seqs.erase(std::find(seqs.begin(), seqs.end(), seq));
    sh->second.bytes -= std::min(sh->second.bytes, cost);
    if (seqs.empty()) shares_.erase(sh);
  }
  bytes_ -= std::min(bytes_, cost);
  it->live = false;
  it->event = Event{};  // its strings and data go now; the seq stays for the search
  it->event.seq = seq;
  --live_;
  while (!events_.empty() && !events_.front().live) events_.pop_front();
  if (events_.size() - live_ > live_ + 64)
    std::erase_if(events_, [](const Slot& slot) { return !slot.live; });
  ++dropped_;
  ++dropped_by_uid_[uid];
}

void EventLog::enforce_bounds_locked(uid_t newest) {
  // A uid other than the owner holds a quarter of the log at most: its
  // own oldest events make room for its new ones.
  if (newest != owner_uid_) {
    auto sh = shares_.find(newest);
    while (sh != shares_.end() && sh->second.seqs.size() > 1 &&
           (sh->second.seqs.size() > limits_.max_events / 4 ||
            sh->second.bytes > limits_.max_bytes / 4)) {
      evict_locked(sh->second.seqs.front());
      sh = shares_.find(newest);
    }
  }
  // Over the whole bound: the uid holding the most bytes gives its oldest.
  while (live_ > 1 && (live_ > limits_.max_events || bytes_ > limits_.max_bytes)) {
    auto largest = std::max_element(shares_.begin(), shares_.end(), [](const auto& a, const auto& b) {
      return a.second.bytes < b.second.bytes;
    });
    evict_locked(largest->second.seqs.front());
  }
}

std::vector<Event> EventLog::snapshot() const {
  MutexLock lock(mu_);
  std::vector<Event> out;
  out.reserve(live_);
  for (const auto& slot : events_)
    if (slot.live) out.push_back(slot.event);
  return out;
}

std::vector<Event> EventLog::since(std::uint64_t after) const {
  MutexLock lock(mu_);
  std::vector<Event> out;
  for (auto it = after_locked(after); it != events_.end(); ++it)
    if (it->live) out.push_back(it->event);
  return out;
}

void EventLog::clear() {
  Slots gone;
  {
    MutexLock lock(mu_);
    gone.swap(events_);
    live_ = 0;
    shares_.clear();
    bytes_ = 0;
  }
  gone.clear();
  // A full log is tens of MB in many small blocks: hand the freed heap
  // back to the system, so clearing the log brings the daemon's RSS back
  // down (the load test, tests/load/load.py, measures exactly that).
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

std::map<uid_t, std::uint64_t> EventLog::dropped_by_uid() const {
  MutexLock lock(mu_);
  return dropped_by_uid_;
}

std::uint64_t EventLog::sink_dropped() const {
  MutexLock lock(sink_mu_);
  return sink_dropped_;
}

std::size_t EventLog::bytes() const {
  MutexLock lock(mu_);
  return bytes_;
}

namespace {

// One reader of the event log: a cursor and the part of the last rendered
// chunk not read yet (at most one read's worth, or one line for a reader
// whose buffer is smaller than a line).
class EventStream final : public Stream {
 public:
  EventStream(EventLog& log, std::uint64_t cursor) : log_(log), cursor_(cursor) {}

  Result<std::size_t> read(std::span<char> out) override {
    if (out.empty()) return std::size_t{0};
    if (pending_off_ == pending_.size()) {
      pending_.clear();
      pending_off_ = 0;
      if (!log_.read_after(cursor_, out.size(), pending_)) return Errno{EAGAIN};
    }
    const std::size_t n = std::min(out.size(), pending_.size() - pending_off_);
    pending_.copy(out.data(), n, pending_off_);
    pending_off_ += n;
    if (pending_off_ == pending_.size()) {
      // Do not keep a large read's buffer for a reader that stops reading.
      std::string().swap(pending_);
      pending_off_ = 0;
    }
    return n;
  }

  bool ready() const override {
    return pending_off_ < pending_.size() || log_.last_seq() > cursor_;
  }

  WaitQueue& wait_queue() const override { return log_.readers(); }

 private:
  EventLog& log_;
  std::uint64_t cursor_;
  std::string pending_;
  std::size_t pending_off_ = 0;
};

}  // namespace

std::unique_ptr<Stream> EventLog::open_stream() {
  return std::make_unique<EventStream>(*this, last_seq());
}

bool EventLog::read_after(std::uint64_t& cursor, std::size_t max_bytes, std::string& out) const {
  MutexLock lock(mu_);
  const std::uint64_t last = next_seq_ - 1;
  if (last <= cursor) return false;
  auto it = after_locked(cursor);
  while (it != events_.end() && !it->live) ++it;
  // Every sequence number was one event: a gap is what the bounds or a
  // clear took before this reader got to it.
  const std::uint64_t next = it == events_.end() ? last + 1 : it->event.seq;
  if (next > cursor + 1) {
    out += fmt::format("{{\"lost_events\":{},\"after_seq\":{}}}\n", next - cursor - 1, cursor);
    cursor = next - 1;
  }
  for (; it != events_.end(); ++it) {
    if (!it->live) continue;
    std::string line = it->event.to_json();
    line.push_back('\n');
    if (!out.empty() && out.size() + line.size() > max_bytes) break;
    out += line;
    cursor = it->event.seq;
  }
  return true;
}

void EventLog::render(std::string& out) const {
  MutexLock lock(mu_);
  out.reserve(out.size() + bytes_);
  for (const auto& slot : events_) {
    if (!slot.live) continue;
    out += slot.event.to_json();
    out.push_back('\n');
  }
}

}  // namespace vsysfs::core
