// Unit tests of the event log's bounds (docs/trust.md): fields cut at
// kMaxFieldBytes, memory bounded in bytes and events, a per-uid share so a
// flood from one user evicts only its own events, and a sink that never
// blocks the recorder and lets the daemon exit when its consumer stalls.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/caller.hpp"
#include "core/clock.hpp"
#include "core/event_log.hpp"

using namespace vsysfs::core;

namespace {

std::size_t count_uid(const EventLog& log, uid_t uid) {
  std::size_t n = 0;
  for (const auto& e : log.snapshot()) n += e.uid == uid;
  return n;
}

}  // namespace

TEST_SUITE("event_log") {

TEST_CASE("a client-supplied field is cut at kMaxFieldBytes and says how much was left out") {
  ManualClock clock;
  EventLog log(clock);
  const std::string page(4096, '\x01');  // six bytes each once escaped
  log.record(nullptr, "xen", "uevent", "EINVAL", {{"input", page}});
  const std::string json = log.snapshot().back().field("input");
  CHECK(json.size() <= EventField::kMaxFieldBytes * 6 + 32);
  CHECK(json.find("...(+3840 bytes)") != std::string::npos);
  const std::string short_input = "add";
  log.record(nullptr, "xen", "uevent", "OK", {{"input", short_input}});
  CHECK(log.snapshot().back().field("input") == "\"add\"");
}

TEST_CASE("the log is bounded in bytes as well as in events") {
  ManualClock clock;
  EventLog log(clock, {.max_events = 100000, .max_bytes = 64 * 1024});
  const std::string big(EventField::kMaxFieldBytes, 'x');
  for (int i = 0; i < 5000; ++i) log.record(nullptr, "dev", "store", "OK", {{"input", big}});
  CHECK(log.bytes() <= 64 * 1024);
  CHECK(log.snapshot().size() < 5000);
  CHECK(log.dropped() == 5000 - log.snapshot().size());
  std::string rendered;
  log.render(rendered);
  CHECK(rendered.size() <= 64 * 1024);
  // The newest events are the ones kept.
  CHECK(log.snapshot().back().seq == 5000);
}

TEST_CASE("a flood from one uid evicts its own events, never the owner's or another user's") {
  ManualClock clock;
  EventLog log(clock, {.max_events = 1000, .max_bytes = 1u << 30});
  const Caller owner = Caller::with_caps(::geteuid(), ~0ULL, "bash");
  const uid_t flooder = ::geteuid() == 65534 ? 65533 : 65534;
  const uid_t other = flooder - 1;
  for (int i = 0; i < 100; ++i) log.record(&owner, "dev", "store", "OK");
  for (int i = 0; i < 10; ++i) {
    const Caller c = Caller::with_caps(other, 0, "tool");
    log.record(&c, "dev", "store", "OK");
  }
  const Caller flood = Caller::with_caps(flooder, 0, "flock");
  for (int i = 0; i < 100000; ++i) log.record(&flood, "locks", "acquired", "OK");
  CHECK(count_uid(log, ::geteuid()) == 100);
  CHECK(count_uid(log, other) == 10);
  CHECK(count_uid(log, flooder) == 1000 / 4);
  const auto dropped = log.dropped_by_uid();
  CHECK(dropped.at(flooder) == 100000 - 1000 / 4);
  CHECK(dropped.count(::geteuid()) == 0);
  CHECK(dropped.count(other) == 0);
  CHECK(log.dropped() == 100000 - 1000 / 4);
}

TEST_CASE("events evicted from the middle (a flooding uid's) leave the others in order, by seq") {
  // The flooder's events interleave with the owner's, so its per-uid bound
  // takes them from the middle of the log, many times over the log's size.
  ManualClock clock;
  EventLog log(clock, {.max_events = 40, .max_bytes = 1u << 30});
  const Caller owner = Caller::with_caps(::geteuid(), ~0ULL, "bash");
  const uid_t flooder = ::geteuid() == 65534 ? 65533 : 65534;
  const Caller flood = Caller::with_caps(flooder, 0, "flock");
  std::vector<std::uint64_t> owner_seqs, flood_seqs;
  for (int i = 0; i < 1000; ++i) {
    owner_seqs.push_back(log.record(&owner, "dev", "store", "OK", {{"i", i}}));
    for (int j = 0; j < 3; ++j) flood_seqs.push_back(log.record(&flood, "locks", "acquired", "OK"));
  }
  // The flooder keeps its newest quarter, the owner the rest of the bound.
  std::vector<std::uint64_t> want(owner_seqs.end() - 30, owner_seqs.end());
  want.insert(want.end(), flood_seqs.end() - 10, flood_seqs.end());
  std::sort(want.begin(), want.end());
  std::vector<std::uint64_t> got;
  for (const auto& e : log.snapshot()) got.push_back(e.seq);
  CHECK(got == want);
  CHECK(log.dropped() == 4000 - 40);
  CHECK(log.snapshot().back().seq == 4000);
  CHECK(log.snapshot()[0].field("i") == "970");
  // since() and the rendered log name the same events.
  std::vector<std::uint64_t> later;
  for (const auto& e : log.since(want[5])) later.push_back(e.seq);
  CHECK(later == std::vector<std::uint64_t>(want.begin() + 6, want.end()));
  std::string rendered;
  log.render(rendered);
  CHECK(static_cast<std::size_t>(std::count(rendered.begin(), rendered.end(), '\n')) ==
        want.size());
  CHECK(rendered.find("{\"seq\":" + std::to_string(want.front()) + ",") == 0);
}

TEST_CASE("over the whole bound, the uid holding the most goes first; the owner alone is a FIFO") {
  ManualClock clock;
  EventLog log(clock, {.max_events = 100, .max_bytes = 1u << 30});
  for (int i = 0; i < 250; ++i) log.record(nullptr, "dev", "tick", "OK");
  const auto all = log.snapshot();
  CHECK(all.size() == 100);
  CHECK(all.front().seq == 151);
  CHECK(all.front().uid == ::geteuid());  // the simulated kernel counts as the owner
}

TEST_CASE("a stalled sink never blocks record(), and the log still shuts down") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ManualClock clock;
  std::uint64_t sink_dropped = 0;
  {
    EventLog log(clock, {.sink_queue_bytes = 16 * 1024,
                         .sink_drain_time = std::chrono::milliseconds(100)});
    log.open_sink_fd(fds[1]);  // nobody ever reads fds[0]
    for (int i = 0; i < 20000; ++i) log.record(nullptr, "net", "xmit", "OK", {{"n", i}});
    sink_dropped = log.sink_dropped();
    CHECK(sink_dropped > 0);
    CHECK(log.snapshot().size() == 20000);  // the in-memory log lost nothing
  }  // the destructor gives up on the stalled reader after the drain time
  ::close(fds[0]);
}

TEST_CASE("a sink whose reader is gone gets EPIPE, not SIGPIPE") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);
  ManualClock clock;
  EventLog log(clock);
  log.open_sink_fd(fds[1]);
  for (int i = 0; i < 100; ++i) log.record(nullptr, "dev", "store", "OK");
  // Still alive: SIGPIPE's default action would have ended this process.
  CHECK(log.snapshot().size() == 100);
}

TEST_CASE("a file sink receives every event, in order, 0600") {
  char path[] = "/tmp/vsysfs-events-XXXXXX";
  const int tmp = ::mkstemp(path);
  REQUIRE(tmp >= 0);
  ::close(tmp);
  ::unlink(path);
  ManualClock clock;
  {
    EventLog log(clock);
    log.open_sink(path);
    for (int i = 0; i < 3000; ++i) log.record(nullptr, "dev", "store", "OK", {{"i", i}});
  }
  struct ::stat st{};
  REQUIRE(::stat(path, &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  std::ifstream in(path);
  std::string line;
  int n = 0;
  bool ordered = true;
  while (std::getline(in, line)) {
    ++n;
    ordered &= line.find("\"seq\":" + std::to_string(n) + ",") != std::string::npos;
  }
  CHECK(n == 3000);
  CHECK(ordered);
  ::unlink(path);
}

}  // TEST_SUITE
