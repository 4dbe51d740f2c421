// fs::Server on a stream file (kernel/debug/vsysfs/events_pipe): a read
// with nothing to hand out is parked, not served by a waiting worker, and
// ends with the next event, with EINTR on an interrupt (before or after it
// parked), with EAGAIN at once under O_NONBLOCK, and with ENODEV when the
// daemon stops serving; poll says POLLIN only when there is something.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>

#include <optional>
#include <string>

#include "fs/server.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::core::Errno;
using vsysfs::fs::ReadOut;
using vsysfs::testing::TestMachine;

namespace {

constexpr const char* kPipe = "kernel/debug/vsysfs/events_pipe";

// What a parked read was answered with, once it was.
struct Answer {
  std::optional<vsysfs::core::Result<ReadOut>> r;
  vsysfs::fs::Server::ReadDone done() {
    return [this](vsysfs::core::Result<ReadOut> got) {
      CHECK_FALSE(r.has_value());  // exactly one reply
      r = std::move(got);
    };
  }
  std::string bytes() const { return r && *r ? std::string((*r)->bytes()) : std::string(); }
  int err() const { return r && !*r ? r->error().value() : 0; }
};

std::uint64_t open_pipe(TestMachine& m) {
  auto fh = m.server.open(m.tree.resolve(kPipe), O_RDONLY);
  REQUIRE(fh);
  CHECK(fh->nonseekable);
  return fh->fh;
}

}  // namespace

TEST_SUITE("server_stream") {

TEST_CASE("events_pipe is 0400, size 0, read-only like the event log") {
  TestMachine m("");
  auto attr = *m.server.getattr(m.tree.resolve(kPipe));
  CHECK((attr.attr.st_mode & 07777) == 0400);
  CHECK(attr.attr.st_size == 0);
  CHECK(m.open_errno(kPipe, O_WRONLY) == -EACCES);
  CHECK(m.open_errno(kPipe, O_RDWR) == -EACCES);
  CHECK(m.open_errno(kPipe, O_RDONLY) == 0);
}

TEST_CASE("a read with nothing new parks, and the next event answers it") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  Answer a;
  m.server.read_stream(m.server.new_read_ticket(), fh, 65536, false, a.done());
  CHECK_FALSE(a.r.has_value());
  CHECK(m.server.parked_reads() == 1);
  m.env.log(nullptr, "test", "wake", "OK");
  REQUIRE(a.r.has_value());
  CHECK(a.bytes().find("\"what\":\"wake\"") != std::string::npos);
  CHECK(a.bytes().back() == '\n');
  CHECK(m.server.parked_reads() == 0);
  // Each event once: the next read parks again.
  Answer b;
  m.server.read_stream(m.server.new_read_ticket(), fh, 65536, false, b.done());
  CHECK_FALSE(b.r.has_value());
  CHECK(m.server.parked_reads() == 1);
  // A store's own event wakes it too.
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "5") == 1);
  CHECK(b.bytes().find("\"what\":\"advance\"") != std::string::npos);
  m.server.release(fh);
}

TEST_CASE("a read with something ready answers at once, also with O_NONBLOCK") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  m.env.log(nullptr, "test", "early", "OK");
  Answer a;
  m.server.read_stream(m.server.new_read_ticket(), fh, 65536, true, a.done());
  CHECK(a.bytes().find("\"what\":\"early\"") != std::string::npos);
  m.server.release(fh);
}

TEST_CASE("O_NONBLOCK with nothing new: EAGAIN, nothing parked") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  Answer a;
  m.server.read_stream(m.server.new_read_ticket(), fh, 4096, true, a.done());
  CHECK(a.err() == EAGAIN);
  CHECK(m.server.parked_reads() == 0);
  // The synchronous path never waits either.
  CHECK(m.server.read(Caller::root(), fh, 4096, 0).error() == Errno{EAGAIN});
  m.server.release(fh);
}

TEST_CASE("an interrupt ends a parked read with EINTR, once") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  Answer a;
  const auto t = m.server.new_read_ticket();
  m.server.read_stream(t, fh, 4096, false, a.done());
  REQUIRE(m.server.parked_reads() == 1);
  m.server.cancel_read(t);
  CHECK(a.err() == EINTR);
  CHECK(m.server.parked_reads() == 0);
  m.server.cancel_read(t);  // a late duplicate: nothing (Answer checks one reply)
  m.env.log(nullptr, "test", "after", "OK");
  // The event was not consumed by the interrupted read.
  Answer b;
  m.server.read_stream(m.server.new_read_ticket(), fh, 4096, false, b.done());
  CHECK(b.bytes().find("\"what\":\"after\"") != std::string::npos);
  m.server.release(fh);
}

TEST_CASE("an interrupt that comes before the read parks makes it EINTR instead of parking") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  Answer a;
  const auto t = m.server.new_read_ticket();
  m.server.cancel_read(t);  // fuse_req_interrupt_func calls it at once
  m.server.read_stream(t, fh, 4096, false, a.done());
  CHECK(a.err() == EINTR);
  CHECK(m.server.parked_reads() == 0);
  // With data ready the data wins: the read completed.
  const auto t2 = m.server.new_read_ticket();
  m.server.cancel_read(t2);
  m.env.log(nullptr, "test", "ready", "OK");
  Answer b;
  m.server.read_stream(t2, fh, 4096, false, b.done());
  CHECK(b.bytes().find("\"what\":\"ready\"") != std::string::npos);
  m.server.release(fh);
}

TEST_CASE("every open file description gets every event") {
  TestMachine m("");
  const auto f1 = open_pipe(m);
  const auto f2 = open_pipe(m);
  Answer a, b;
  m.server.read_stream(m.server.new_read_ticket(), f1, 4096, false, a.done());
  m.server.read_stream(m.server.new_read_ticket(), f2, 4096, false, b.done());
  CHECK(m.server.parked_reads() == 2);
  m.env.log(nullptr, "test", "both", "OK");
  CHECK(a.bytes() == b.bytes());
  CHECK(a.bytes().find("\"what\":\"both\"") != std::string::npos);
  m.server.release(f1);
  m.server.release(f2);
}

TEST_CASE("poll: nothing until there is something to read") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  CHECK(m.server.poll(fh, nullptr)->revents == 0);
  m.env.log(nullptr, "test", "x", "OK");
  CHECK(m.server.poll(fh, nullptr)->revents == (POLLIN | POLLRDNORM));
  CHECK(m.server.read(Caller::root(), fh, 65536, 0));
  CHECK(m.server.poll(fh, nullptr)->revents == 0);
  m.server.release(fh);
}

TEST_CASE("closing a stream removes its waker; an unread stream costs the log nothing") {
  TestMachine m("");
  const std::size_t before = m.events.readers().size();
  const auto fh = open_pipe(m);
  CHECK(m.events.readers().size() == before + 1);
  m.server.release(fh);
  CHECK(m.events.readers().size() == before);
  m.env.log(nullptr, "test", "nobody", "OK");  // no waker calls into a freed file
}

TEST_CASE("the daemon stopping ends a parked read with ENODEV, and refuses to park more") {
  TestMachine m("");
  const auto fh = open_pipe(m);
  Answer a;
  m.server.read_stream(m.server.new_read_ticket(), fh, 4096, false, a.done());
  REQUIRE(m.server.parked_reads() == 1);
  m.server.detach();
  CHECK(a.err() == ENODEV);
  CHECK(m.server.parked_reads() == 0);
  Answer b;
  m.server.read_stream(m.server.new_read_ticket(), fh, 4096, false, b.done());
  CHECK(b.err() == ENODEV);
  m.server.release(fh);
}

TEST_CASE("a stream file left open at teardown does not outlive the server's waker") {
  // The daemon stopped with a reader's file open: the kernel never sends
  // its RELEASE, and the server's destructor frees the file.
  TestMachine m("");
  {
    vsysfs::fs::Server other(m.env, m.tree, m.locks);
    auto fh = other.open(m.tree.resolve(kPipe), O_RDONLY);
    REQUIRE(fh);
    CHECK(m.events.readers().size() == 1);
  }
  CHECK(m.events.readers().size() == 0);
  m.env.log(nullptr, "test", "after", "OK");
}

}  // TEST_SUITE("server_stream")
