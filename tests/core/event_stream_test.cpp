// Unit tests of the event log's stream (events_pipe's reader, core::Stream
// and core::WaitQueue): each reader starts at "now", hands each event out
// once, survives reads smaller than a line, reports what the log's bounds
// dropped before it got there, and costs nothing but a cursor.

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "core/clock.hpp"
#include "core/event_log.hpp"
#include "core/stream.hpp"

using namespace vsysfs::core;

namespace {

// Everything the stream has now, in reads of `chunk` bytes.
std::string drain(Stream& s, std::size_t chunk = 4096) {
  std::string out;
  std::string buf(chunk, '\0');
  for (;;) {
    auto n = s.read(std::span<char>(buf.data(), buf.size()));
    if (!n) {
      CHECK(n.error() == Errno{EAGAIN});
      return out;
    }
    REQUIRE(*n > 0);
    out.append(buf, 0, *n);
  }
}

std::size_t lines(const std::string& s) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

TEST_SUITE("event_stream") {

TEST_CASE("a reader starts at now and gets each later event once, in order") {
  ManualClock clock;
  EventLog log(clock);
  log.record(nullptr, "before", "open", "OK");
  auto a = log.open_stream();
  CHECK_FALSE(a->ready());
  CHECK(drain(*a).empty());
  log.record(nullptr, "dev", "one", "OK");
  auto b = log.open_stream();  // opened after "one": sees only "two"
  log.record(nullptr, "dev", "two", "OK");
  CHECK(a->ready());
  const std::string got_a = drain(*a);
  CHECK(lines(got_a) == 2);
  CHECK(got_a.find("{\"seq\":2,") == 0);
  CHECK(got_a.find("\"what\":\"two\"") != std::string::npos);
  CHECK(got_a.find("before") == std::string::npos);
  CHECK_FALSE(a->ready());
  CHECK(drain(*a).empty());  // handed out once
  const std::string got_b = drain(*b);
  CHECK(lines(got_b) == 1);
  CHECK(got_b.find("{\"seq\":3,") == 0);
  // Not consuming: the log keeps every event.
  CHECK(log.snapshot().size() == 3);
}

TEST_CASE("reads smaller than a line get the line in pieces, whole") {
  ManualClock clock;
  EventLog log(clock);
  auto s = log.open_stream();
  for (int i = 0; i < 5; ++i) log.record(nullptr, "dev", "store", "OK", {{"i", i}});
  std::string expect;
  log.render(expect);
  CHECK(drain(*s, 1) == expect);
  for (int i = 0; i < 3; ++i) log.record(nullptr, "dev", "store", "OK", {{"i", i}});
  const std::string seven = drain(*s, 7);
  CHECK(lines(seven) == 3);
  CHECK(seven.find("{\"seq\":6,") == 0);
}

TEST_CASE("a read hands out whole lines up to its size, at least one") {
  ManualClock clock;
  EventLog log(clock);
  auto s = log.open_stream();
  for (int i = 0; i < 100; ++i) log.record(nullptr, "dev", "store", "OK");
  std::string buf(300, '\0');
  auto n = s->read(std::span<char>(buf.data(), buf.size()));
  REQUIRE(n);
  // Lines of this event are about 100 bytes: the chunk ends on a line end.
  CHECK(buf[*n - 1] == '\n');
  CHECK(*n <= 300);
}

TEST_CASE("events dropped before the reader got them are reported as lost, like trace_pipe") {
  ManualClock clock;
  EventLog log(clock, {.max_events = 10});
  auto s = log.open_stream();
  for (int i = 0; i < 25; ++i) log.record(nullptr, "dev", "store", "OK", {{"i", i}});
  const std::string got = drain(*s);
  // Seqs 1..15 were evicted: one notice, then the ten that are left.
  CHECK(got.find("{\"lost_events\":15,\"after_seq\":0}\n") == 0);
  CHECK(lines(got) == 11);
  CHECK(got.find("\"seq\":16,") != std::string::npos);
  // Caught up: nothing lost any more.
  log.record(nullptr, "dev", "store", "OK");
  const std::string next = drain(*s);
  CHECK(next.find("lost") == std::string::npos);
  CHECK(next.find("{\"seq\":26,") == 0);
}

TEST_CASE("a clear takes what a reader had not read: reported as lost, then the stream goes on") {
  ManualClock clock;
  EventLog log(clock);
  auto s = log.open_stream();
  log.record(nullptr, "dev", "a", "OK");
  log.record(nullptr, "dev", "b", "OK");
  log.clear();
  CHECK(drain(*s) == "{\"lost_events\":2,\"after_seq\":0}\n");
  log.record(nullptr, "dev", "c", "OK");
  CHECK(drain(*s).find("{\"seq\":3,") == 0);
}

TEST_CASE("a reader that never reads keeps no copy: the log's bounds hold") {
  ManualClock clock;
  EventLog log(clock, {.max_events = 100, .max_bytes = 16 * 1024});
  auto idle = log.open_stream();
  for (int i = 0; i < 10000; ++i) log.record(nullptr, "dev", "store", "OK", {{"i", i}});
  CHECK(log.snapshot().size() <= 100);
  CHECK(log.bytes() <= 16 * 1024);
  const std::string got = drain(*idle);
  CHECK(got.find("{\"lost_events\":") == 0);
  CHECK(lines(got) == log.snapshot().size() + 1);
}

TEST_CASE("the wait queue is woken by every record, and a removed waker no more") {
  ManualClock clock;
  EventLog log(clock);
  auto s = log.open_stream();
  int woken = 0;
  const auto id = s->wait_queue().add([&] { ++woken; });
  CHECK(s->wait_queue().size() == 1);
  log.record(nullptr, "dev", "a", "OK");
  log.record(nullptr, "dev", "b", "OK");
  CHECK(woken == 2);
  s->wait_queue().remove(id);
  CHECK(s->wait_queue().size() == 0);
  log.record(nullptr, "dev", "c", "OK");
  CHECK(woken == 2);
}

TEST_CASE("an empty read is 0 and moves nothing") {
  ManualClock clock;
  EventLog log(clock);
  auto s = log.open_stream();
  log.record(nullptr, "dev", "a", "OK");
  auto n = s->read(std::span<char>());
  REQUIRE(n);
  CHECK(*n == 0);
  CHECK(lines(drain(*s)) == 1);
}

}  // TEST_SUITE("event_stream")
