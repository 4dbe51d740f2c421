// Tests for the `lock` failure point in core/lock_service: a blocking
// request the point picks is served delay_ms later on the simulation clock
// (docs/fault-injection.md section 3.12). One thread drives the service
// over a manual clock.

#include <doctest/doctest.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/lock_service.hpp"
#include "tests/support/test_env.hpp"

namespace {

using namespace vsysfs::core;
using vsysfs::testing::TestEnv;

constexpr std::uint64_t kFile = 11;
const std::string kName = "devices/virtual/x/value";

struct Rec {
  int calls = 0;
  std::optional<Status> st;
  bool ok() const { return calls == 1 && st && bool(*st); }
  bool failed_with(int e) const { return calls == 1 && st && !*st && st->error() == Errno{e}; }
  bool pending() const { return calls == 0; }
};

LockOwner who(std::uint64_t owner) {
  return LockOwner{owner, static_cast<pid_t>(2000 + owner), "locker" + std::to_string(owner), 120};
}

struct Fixture {
  Fixture() : svc(env.env) {}

  // Arms the point: every request fires (times -1), delay_ms as given.
  void arm(std::uint32_t delay_ms = 500) {
    env.faults.set(FaultPoint::Lock, &FaultSettings::times, -1);
    env.faults.set(FaultPoint::Lock, &FaultSettings::delay_ms, delay_ms);
    env.faults.set(FaultPoint::Lock, &FaultSettings::probability, 100UL);
  }
  Rec& flock(const LockOwner& o, LockType t, bool wait = true, std::uint64_t key = kFile) {
    recs.emplace_back(std::make_unique<Rec>());
    Rec* r = recs.back().get();
    last_ticket = svc.new_ticket();
    svc.flock(last_ticket, key, key == kFile ? kName : "file" + std::to_string(key), o, t, wait,
              [r](Status s) {
                ++r->calls;
                r->st = s;
              });
    return *r;
  }
  Rec& setlk(const LockOwner& o, LockType t, PosixRange range, bool wait = true) {
    recs.emplace_back(std::make_unique<Rec>());
    Rec* r = recs.back().get();
    last_ticket = svc.new_ticket();
    svc.setlk(last_ticket, kFile, kName, o, t, range, wait, [r](Status s) {
      ++r->calls;
      r->st = s;
    });
    return *r;
  }
  std::vector<const Event*> events(std::string_view device, std::string_view what) {
    snap = env.events.snapshot();
    std::vector<const Event*> out;
    for (const Event& e : snap)
      if (e.device == device && e.what == what) out.push_back(&e);
    return out;
  }

  TestEnv env;
  LockService svc;
  std::vector<std::unique_ptr<Rec>> recs;
  std::vector<Event> snap;
  LockService::Ticket last_ticket = 0;
};

}  // namespace

TEST_SUITE("lock_fault") {
TEST_CASE("a blocking flock the point picks is granted delay_ms later on the clock") {
  Fixture f;
  f.arm(500);
  Rec& r = f.flock(who(1), LockType::Write);
  CHECK(r.pending());
  CHECK(f.svc.delayed() == 1);
  CHECK(f.svc.held(kFile).empty());  // nothing applied while held back
  f.env.advance_ms(499);
  CHECK(r.pending());
  f.env.advance_ms(1);
  CHECK(r.ok());
  CHECK(f.svc.delayed() == 0);
  REQUIRE(f.svc.held(kFile).size() == 1);
  CHECK(f.svc.exclusive_holder(kFile)->owner == 1);
  // The decision's event and the delay's carry the requester.
  auto fail = f.events("fault_inject", "fail");
  REQUIRE(fail.size() == 1);
  CHECK(fail[0]->pid == 2001);
  CHECK(fail[0]->comm == "locker1");
  CHECK(fail[0]->field("name") == "\"lock\"");
  CHECK(fail[0]->field("site") == "\"flock_lock_inode\"");
  auto delay = f.events("locks", "delay");
  REQUIRE(delay.size() == 2);
  CHECK(delay[0]->result == "start");
  CHECK(delay[0]->pid == 2001);
  CHECK(delay[0]->field("delay_ms") == "500");
  CHECK(delay[0]->field("type") == "\"exclusive\"");
  CHECK(delay[1]->result == "done");
  CHECK(delay[1]->time == delay[0]->time + std::chrono::milliseconds(500));
  CHECK(f.env.faults.injected(FaultPoint::Lock) == 1);
}

TEST_CASE("non-blocking requests are never delayed and never reach the decision") {
  Fixture f;
  f.arm();
  CHECK(f.flock(who(1), LockType::Read, false).ok());
  CHECK(f.setlk(who(2), LockType::Write, {0, 9}, false).ok());
  CHECK(f.flock(who(3), LockType::Write, false).failed_with(EAGAIN));
  CHECK(f.svc.delayed() == 0);
  CHECK(f.env.faults.injected(FaultPoint::Lock) == 0);
  // Unlocks are not lock requests: never delayed either.
  CHECK(f.flock(who(1), LockType::Unlock).ok());
  CHECK(f.env.faults.injected(FaultPoint::Lock) == 0);
}

TEST_CASE("F_SETLKW is delayed like flock; after the delay a conflict queues as usual") {
  Fixture f;
  CHECK(f.setlk(who(1), LockType::Write, {0, 99}).ok());  // not armed yet: at once
  f.arm(200);
  Rec& r = f.setlk(who(2), LockType::Write, {50, 60});
  CHECK(r.pending());
  CHECK(f.svc.delayed() == 1);
  f.env.advance_ms(200);
  // Served now: owner 1's range conflicts, so it waits for it.
  CHECK(r.pending());
  CHECK(f.svc.delayed() == 0);
  CHECK(f.events("locks", "draining").size() == 1);  // it has the turn, waits for 1
  CHECK(f.setlk(who(1), LockType::Unlock, {0, 99}, false).ok());
  CHECK(r.ok());
  CHECK(f.events("fault_inject", "fail")[0]->field("site") == "\"posix_lock_inode\"");
}

TEST_CASE("an interrupted delayed request ends with EINTR and leaks nothing") {
  Fixture f;
  f.arm(300);
  Rec& r = f.flock(who(1), LockType::Write);
  const auto ticket = f.last_ticket;
  f.env.advance_ms(100);
  f.svc.cancel(ticket);
  CHECK(r.failed_with(EINTR));
  CHECK(f.svc.delayed() == 0);
  f.env.advance_ms(1000);
  CHECK(r.calls == 1);  // exactly one answer
  CHECK(f.svc.held(kFile).empty());
  CHECK(f.events("locks", "interrupted").size() == 1);
  // The lock is free for the next one (not armed: at once).
  f.env.faults.set(FaultPoint::Lock, &FaultSettings::probability, 0UL);
  CHECK(f.flock(who(2), LockType::Write, false).ok());
}

TEST_CASE("at most kMaxLockDelayed requests are held back; the next runs at once") {
  Fixture f;
  f.arm(100);
  std::vector<Rec*> held;
  for (std::size_t i = 0; i < LockService::kMaxLockDelayed; ++i)
    held.push_back(&f.flock(who(10 + i), LockType::Read));
  CHECK(f.svc.delayed() == LockService::kMaxLockDelayed);
  Rec& extra = f.flock(who(99), LockType::Read);
  CHECK(extra.ok());  // overflow: served undelayed
  auto delay = f.events("locks", "delay");
  REQUIRE(!delay.empty());
  CHECK(delay.back()->result == "overflow");
  CHECK(delay.back()->field("limit") == std::to_string(LockService::kMaxLockDelayed));
  f.env.advance_ms(100);
  for (Rec* r : held) CHECK(r->ok());
  CHECK(f.svc.held(kFile).size() == LockService::kMaxLockDelayed + 1);
}

TEST_CASE("task-filter: only the listed processes are delayed") {
  Fixture f;
  f.arm(100);
  f.env.faults.set(FaultPoint::Lock, &FaultSettings::task_filter, true);
  f.env.faults.set_pids({2002});
  CHECK(f.flock(who(1), LockType::Read).ok());  // pid 2001: not listed
  Rec& r = f.flock(who(2), LockType::Read);     // pid 2002
  CHECK(r.pending());
  f.env.advance_ms(100);
  CHECK(r.ok());
}

TEST_CASE("shutdown answers delayed requests ENODEV, once; later ones are not delayed") {
  Fixture f;
  f.arm(100);
  Rec& r = f.flock(who(1), LockType::Write);
  CHECK(f.svc.delayed() == 1);
  f.svc.shutdown();
  CHECK(f.svc.delayed() == 0);
  CHECK(r.failed_with(ENODEV));  // libfuse frees a request only when it is answered
  f.env.advance_ms(1000);
  CHECK(r.failed_with(ENODEV));
  CHECK(f.svc.held(kFile).empty());
  CHECK(f.flock(who(2), LockType::Write).ok());
}

TEST_CASE("deadlines are kept per request; the earliest is served first") {
  Fixture f;
  f.arm(300);
  Rec& a = f.flock(who(1), LockType::Read);
  f.env.advance_ms(100);
  f.env.faults.set(FaultPoint::Lock, &FaultSettings::delay_ms, 50U);
  Rec& b = f.flock(who(2), LockType::Read, true, kFile + 1);
  f.env.advance_ms(50);
  CHECK(b.ok());
  CHECK(a.pending());
  f.env.advance_ms(150);
  CHECK(a.ok());
}
}  // TEST_SUITE("lock_fault")
