// Tests for core/lock_service: flock and POSIX locks granted through an
// RtMutex per file, with priority inheritance. Deterministic: one thread
// drives the service; completions are recorded; priorities and queue
// order are read back through contended(); the event log gives the order
// of hand-overs and grants.

#include "core/lock_service.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/test_env.hpp"

namespace {

using namespace vsysfs::core;
using vsysfs::testing::TestEnv;
using vsysfs::testing::TestMachine;

constexpr std::uint64_t kFile = 7;
const std::string kName = "devices/virtual/x/value";

// The completion of one request.
struct Rec {
  int calls = 0;
  std::optional<Status> st;
  bool ok() const { return calls == 1 && st && bool(*st); }
  bool failed_with(int e) const { return calls == 1 && st && !*st && st->error() == Errno{e}; }
  bool pending() const { return calls == 0; }
};

LockOwner who(std::uint64_t owner, int prio, pid_t pid = 0) {
  if (pid == 0) pid = static_cast<pid_t>(1000 + owner);
  return LockOwner{owner, pid, "task" + std::to_string(owner), prio};
}

struct Fixture {
  explicit Fixture(LockService::WakeMode mode = LockService::WakeMode::immediate)
      : svc(env.env, mode) {}
  ~Fixture() { recs.clear(); }

  // flock on kFile (or `key`); returns the record of its completion.
  Rec& flock(const LockOwner& o, LockType t, bool wait = true, std::uint64_t key = kFile) {
    return flock_t(svc.new_ticket(), o, t, wait, key);
  }
  Rec& flock_t(LockService::Ticket ticket, const LockOwner& o, LockType t, bool wait = true,
               std::uint64_t key = kFile) {
    recs.emplace_back(std::make_unique<Rec>());
    Rec* r = recs.back().get();
    last_ticket = ticket;
    svc.flock(ticket, key, key == kFile ? kName : "file" + std::to_string(key), o, t, wait,
              [r](Status s) {
                ++r->calls;
                r->st = s;
              });
    return *r;
  }
  Rec& setlk(const LockOwner& o, LockType t, PosixRange range, bool wait = true,
             std::uint64_t key = kFile) {
    recs.emplace_back(std::make_unique<Rec>());
    Rec* r = recs.back().get();
    last_ticket = svc.new_ticket();
    svc.setlk(last_ticket, key, "file" + std::to_string(key), o, t, range, wait, [r](Status s) {
      ++r->calls;
      r->st = s;
    });
    return *r;
  }
  // The one contended domain of `key` (flock unless told), or nothing.
  std::optional<ContendedLock> lock_of(std::uint64_t key = kFile, bool flock = true) {
    for (auto& c : svc.contended())
      if (c.key == key && c.flock == flock) return c;
    return std::nullopt;
  }
  std::vector<int> waiter_prios(std::uint64_t key = kFile, bool flock = true) {
    std::vector<int> out;
    if (auto c = lock_of(key, flock))
      for (auto& w : c->waiters) out.push_back(w.prio);
    return out;
  }
  std::vector<pid_t> waiter_pids(std::uint64_t key = kFile) {
    std::vector<pid_t> out;
    if (auto c = lock_of(key))
      for (auto& w : c->waiters) out.push_back(w.owner.pid);
    return out;
  }
  // "what:pid" of the lock service's events of the given kinds, in order.
  std::vector<std::string> events(std::initializer_list<std::string_view> whats) {
    std::vector<std::string> out;
    for (const Event& e : env.events.snapshot()) {
      if (e.device != "locks") continue;
      for (auto w : whats)
        if (e.what == w) out.push_back(e.what + ":" + e.field("pid"));
    }
    return out;
  }

  TestEnv env;
  LockService svc;
  std::vector<std::unique_ptr<Rec>> recs;
  LockService::Ticket last_ticket = 0;
};

}  // namespace

TEST_SUITE("lock_service") {

TEST_CASE("an uncontended flock is granted at once and nothing is contended") {
  Fixture fx;
  auto& a = fx.flock(who(1, 120), LockType::Write);
  CHECK(a.ok());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 1);
  CHECK(fx.svc.contended().empty());
  std::string out;
  fx.svc.render(out);
  CHECK(out.empty());
  fx.svc.release_flock(kFile, 1);
  CHECK_FALSE(fx.svc.exclusive_holder(kFile));
}

TEST_CASE("waiters queue by priority and the low-priority holder is boosted to the top one") {
  Fixture fx;
  CHECK(fx.flock(who(1, 139), LockType::Write).ok());  // nice 19 holder
  auto& normal = fx.flock(who(2, 120), LockType::Write);
  CHECK(normal.pending());
  auto c = fx.lock_of();
  REQUIRE(c);
  CHECK(c->owner->owner == 1);
  CHECK(c->role == "exclusive");
  CHECK(c->normal_prio == 139);
  CHECK(c->prio == 120);
  CHECK(c->has_waiters);
  CHECK_FALSE(c->pending);

  auto& rt = fx.flock(who(3, 89), LockType::Write);  // chrt -f 10
  CHECK(rt.pending());
  c = fx.lock_of();
  CHECK(c->prio == 89);
  CHECK(c->normal_prio == 139);
  CHECK(fx.waiter_prios() == std::vector<int>{89, 120});
  CHECK(fx.waiter_pids() == std::vector<pid_t>{1003, 1002});
  CHECK(fx.events({"boost"}) == std::vector<std::string>{"boost:1001", "boost:1001"});

  // Close of the holder: the real-time waiter gets it first.
  fx.svc.release_flock(kFile, 1);
  CHECK(rt.ok());
  CHECK(normal.pending());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 3);
  c = fx.lock_of();
  CHECK(c->owner->owner == 3);
  CHECK(c->prio == 89);
  CHECK(fx.waiter_prios() == std::vector<int>{120});

  fx.svc.release_flock(kFile, 3);
  CHECK(normal.ok());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 2);
  CHECK_FALSE(fx.lock_of());
  CHECK(fx.events({"handover", "granted"}) ==
        std::vector<std::string>{"handover:1003", "granted:1003", "handover:1002",
                                 "granted:1002"});
  fx.svc.release_flock(kFile, 2);
  CHECK_FALSE(fx.svc.exclusive_holder(kFile));
}

TEST_CASE("an interrupted waiter leaves the queue at once and the holder is deboosted") {
  Fixture fx;
  CHECK(fx.flock(who(1, 139), LockType::Write).ok());
  auto& normal = fx.flock(who(2, 120), LockType::Write);
  auto& rt = fx.flock(who(3, 89), LockType::Write);
  const auto rt_ticket = fx.last_ticket;
  CHECK(fx.lock_of()->prio == 89);

  fx.svc.cancel(rt_ticket);
  CHECK(rt.failed_with(EINTR));
  CHECK(fx.lock_of()->prio == 120);  // back to the next waiter's priority
  CHECK(fx.waiter_prios() == std::vector<int>{120});
  fx.svc.cancel(rt_ticket);  // a second interrupt changes nothing
  CHECK(rt.calls == 1);

  fx.svc.cancel(fx.last_ticket - 1);  // the nice-0 waiter
  CHECK(normal.failed_with(EINTR));
  CHECK_FALSE(fx.lock_of());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 1);
  CHECK(fx.events({"deboost", "interrupted"}) ==
        std::vector<std::string>{"deboost:1001", "interrupted:1003", "deboost:1001",
                                 "interrupted:1002"});
  // Nobody stale is granted on release.
  fx.svc.release_flock(kFile, 1);
  CHECK(normal.calls == 1);
  CHECK(rt.calls == 1);
  CHECK_FALSE(fx.svc.exclusive_holder(kFile));
}

TEST_CASE("the holder's release deboosts it and waiters of equal priority are served FIFO") {
  Fixture fx;
  CHECK(fx.flock(who(1, 130), LockType::Write).ok());
  auto& w2 = fx.flock(who(2, 120), LockType::Write);
  auto& w3 = fx.flock(who(3, 120), LockType::Write);
  auto& w4 = fx.flock(who(4, 120), LockType::Write);
  CHECK(fx.waiter_pids() == std::vector<pid_t>{1002, 1003, 1004});
  fx.svc.release_flock(kFile, 1);
  CHECK(w2.ok());
  CHECK(w3.pending());
  fx.svc.release_flock(kFile, 2);
  CHECK(w3.ok());
  CHECK(w4.pending());
  fx.svc.release_flock(kFile, 3);
  CHECK(w4.ok());
  CHECK(fx.events({"deboost"}) == std::vector<std::string>{"deboost:1001"});
}

TEST_CASE("LOCK_NB: conflicts give EAGAIN; the same type again is a no-op; a conversion") {
  Fixture fx;
  CHECK(fx.flock(who(1, 120), LockType::Write).ok());
  CHECK(fx.flock(who(2, 120), LockType::Write, false).failed_with(EAGAIN));
  CHECK(fx.flock(who(2, 120), LockType::Read, false).failed_with(EAGAIN));
  CHECK(fx.flock(who(1, 120), LockType::Write, false).ok());  // already held: no-op
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 1);
  // LOCK_EX -> LOCK_SH: now another shared lock fits.
  CHECK(fx.flock(who(1, 120), LockType::Read, false).ok());
  CHECK_FALSE(fx.svc.exclusive_holder(kFile));
  CHECK(fx.flock(who(2, 120), LockType::Read, false).ok());
  CHECK(fx.flock(who(3, 120), LockType::Write, false).failed_with(EAGAIN));
  // LOCK_UN.
  CHECK(fx.flock(who(1, 120), LockType::Unlock).ok());
  CHECK(fx.flock(who(2, 120), LockType::Unlock).ok());
  CHECK(fx.flock(who(3, 120), LockType::Write, false).ok());
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("shared holders coexist; a writer waits for them to drain, and keeps later readers out") {
  Fixture fx;
  CHECK(fx.flock(who(1, 139), LockType::Read).ok());
  CHECK(fx.flock(who(2, 120), LockType::Read).ok());
  auto& writer = fx.flock(who(3, 89), LockType::Write);
  CHECK(writer.pending());
  auto c = fx.lock_of();
  REQUIRE(c);
  CHECK(c->role == "draining");
  CHECK(c->owner->owner == 3);
  CHECK(c->holders.size() == 2);
  // Readers behind the waiting writer queue (and boost it); LOCK_NB fails.
  CHECK(fx.flock(who(4, 120), LockType::Read, false).failed_with(EAGAIN));
  auto& r5 = fx.flock(who(5, 100), LockType::Read);
  auto& r6 = fx.flock(who(6, 110), LockType::Read);
  auto& w7 = fx.flock(who(7, 130), LockType::Write);
  CHECK(fx.waiter_prios() == std::vector<int>{100, 110, 130});
  CHECK(fx.lock_of()->prio == 89);

  fx.svc.release_flock(kFile, 1);
  CHECK(writer.pending());
  fx.svc.release_flock(kFile, 2);
  CHECK(writer.ok());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 3);
  CHECK(r5.pending());
  // The writer goes: both queued readers get in together, then the next
  // writer waits for them.
  fx.svc.release_flock(kFile, 3);
  CHECK(r5.ok());
  CHECK(r6.ok());
  CHECK(w7.pending());
  c = fx.lock_of();
  REQUIRE(c);
  CHECK(c->role == "draining");
  CHECK(c->owner->owner == 7);
  fx.svc.release_flock(kFile, 5);
  CHECK(w7.pending());
  fx.svc.release_flock(kFile, 6);
  CHECK(w7.ok());
}

TEST_CASE("an interrupted draining writer passes the turn on to the queued readers") {
  Fixture fx;
  CHECK(fx.flock(who(1, 120), LockType::Read).ok());
  auto& writer = fx.flock(who(2, 120), LockType::Write);
  const auto wt = fx.last_ticket;
  auto& reader = fx.flock(who(3, 120), LockType::Read);
  CHECK(reader.pending());
  fx.svc.cancel(wt);
  CHECK(writer.failed_with(EINTR));
  CHECK(reader.ok());
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("a cancel that arrives before its request makes the request fail with EINTR") {
  Fixture fx;
  CHECK(fx.flock(who(1, 120), LockType::Write).ok());
  const auto ticket = fx.svc.new_ticket();
  fx.svc.cancel(ticket);
  auto& late = fx.flock_t(ticket, who(2, 120), LockType::Write);
  CHECK(late.failed_with(EINTR));
  CHECK_FALSE(fx.lock_of());
  // Even when the lock is free.
  fx.svc.release_flock(kFile, 1);
  const auto t2 = fx.svc.new_ticket();
  fx.svc.cancel(t2);
  CHECK(fx.flock_t(t2, who(2, 120), LockType::Write).failed_with(EINTR));
  CHECK_FALSE(fx.svc.exclusive_holder(kFile));
}

TEST_CASE("a higher-priority newcomer steals from a pending owner; an equal one does not") {
  Fixture fx(LockService::WakeMode::deferred);
  CHECK(fx.flock(who(1, 139), LockType::Write).ok());
  auto& a = fx.flock(who(2, 120), LockType::Write);
  fx.svc.release_flock(kFile, 1);
  // The woken top waiter has not run yet: pending owner.
  auto c = fx.lock_of();
  REQUIRE(c);
  CHECK(c->pending);
  CHECK(c->role == "pending");
  CHECK(c->owner->owner == 2);
  CHECK(a.pending());
  // Equal priority cannot steal: it queues.
  auto& eq = fx.flock(who(3, 120), LockType::Write);
  CHECK(eq.pending());
  CHECK(fx.lock_of()->pending);
  // Strictly higher priority steals and is granted at once.
  auto& hi = fx.flock(who(4, 100), LockType::Write);
  CHECK(hi.ok());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 4);
  CHECK(fx.events({"steal"}) == std::vector<std::string>{"steal:1004"});
  // The robbed owner runs, finds the lock taken and re-queues at its
  // priority: after the waiter of equal priority already queued (plist).
  fx.svc.run_wakeups();
  CHECK(a.pending());
  CHECK(fx.waiter_pids() == std::vector<pid_t>{1003, 1002});
  CHECK(fx.lock_of()->prio == 100);  // the thief is not boosted by 120s
  fx.svc.release_flock(kFile, 4);
  fx.svc.run_wakeups();
  CHECK(eq.ok());
  fx.svc.release_flock(kFile, 3);
  fx.svc.run_wakeups();
  CHECK(a.ok());
}

TEST_CASE("an interrupted pending owner still gets the lock (kernel quirk)") {
  Fixture fx(LockService::WakeMode::deferred);
  CHECK(fx.flock(who(1, 139), LockType::Write).ok());
  auto& a = fx.flock(who(2, 120), LockType::Write);
  const auto ta = fx.last_ticket;
  fx.svc.release_flock(kFile, 1);
  fx.svc.cancel(ta);
  CHECK(a.ok());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 2);
  fx.svc.run_wakeups();  // the stale wake-up changes nothing
  CHECK(a.calls == 1);
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("POSIX: ranges, F_SETLK EAGAIN, a whole-file write lock is exclusive and PI-boosted") {
  Fixture fx;
  constexpr PosixRange kAll{};
  CHECK(fx.setlk(who(1, 139), LockType::Write, {0, 99}).ok());
  CHECK(fx.setlk(who(2, 120), LockType::Write, {100, 199}).ok());  // no overlap
  CHECK(fx.setlk(who(3, 120), LockType::Read, {50, 60}, false).failed_with(EAGAIN));
  CHECK_FALSE(fx.svc.exclusive_holder(kFile));
  auto held = fx.svc.getlk(kFile, who(3, 120), LockType::Read, {50, 150});
  REQUIRE(held);
  CHECK(held->owner.owner == 1);
  // A waiting range request takes the turn and waits for the holder.
  auto& r3 = fx.setlk(who(3, 120), LockType::Read, {50, 60});
  CHECK(r3.pending());
  CHECK(fx.lock_of(kFile, false)->role == "draining");
  fx.svc.release_posix(kFile, 1);
  CHECK(r3.ok());
  fx.svc.release_posix(kFile, 2);
  fx.svc.release_posix(kFile, 3);

  CHECK(fx.setlk(who(1, 139), LockType::Write, kAll).ok());
  CHECK(fx.svc.exclusive_holder(kFile)->owner == 1);
  auto& w = fx.setlk(who(2, 90), LockType::Write, {10, 20});
  CHECK(w.pending());
  auto c = fx.lock_of(kFile, false);
  REQUIRE(c);
  CHECK(c->role == "exclusive");
  CHECK(c->prio == 90);
  // flock is another domain: not affected.
  CHECK(fx.flock(who(5, 120), LockType::Write, false).ok());
  // The holder downgrades 0-49 to a read lock: no longer a whole-file write
  // lock, so the turn passes on; the waiter takes it and drains (10-20 is
  // read-locked by the holder now).
  CHECK(fx.setlk(who(1, 139), LockType::Read, {0, 49}).ok());
  CHECK(w.pending());
  c = fx.lock_of(kFile, false);
  REQUIRE(c);
  CHECK(c->role == "draining");
  CHECK(c->owner->owner == 2);
  CHECK(fx.setlk(who(1, 139), LockType::Unlock, {0, 49}).ok());
  CHECK(w.ok());
}

TEST_CASE("POSIX: a cycle of whole-file write locks gives EDEADLK; flock just waits") {
  Fixture fx;
  CHECK(fx.setlk(who(1, 120), LockType::Write, {}, true, 1).ok());
  CHECK(fx.setlk(who(2, 120), LockType::Write, {}, true, 2).ok());
  auto& a = fx.setlk(who(1, 120), LockType::Write, {}, true, 2);
  CHECK(a.pending());
  auto& b = fx.setlk(who(2, 120), LockType::Write, {}, true, 1);
  CHECK(b.failed_with(EDEADLK));
  fx.svc.release_posix(2, 2);
  CHECK(a.ok());
  fx.svc.release_posix(1, 1);
  fx.svc.release_posix(2, 1);
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("POSIX: the boost follows the chain across files") {
  Fixture fx;
  CHECK(fx.setlk(who(1, 130), LockType::Write, {}, true, 1).ok());  // B holds L1
  CHECK(fx.setlk(who(2, 139), LockType::Write, {}, true, 2).ok());  // C holds L2
  auto& b = fx.setlk(who(1, 130), LockType::Write, {}, true, 2);    // B -> L2
  CHECK(b.pending());
  CHECK(fx.lock_of(2, false)->prio == 130);
  auto& a = fx.setlk(who(3, 89), LockType::Write, {}, true, 1);  // A -> L1
  CHECK(a.pending());
  CHECK(fx.lock_of(1, false)->prio == 89);  // B
  CHECK(fx.lock_of(2, false)->prio == 89);  // C, through the chain
  CHECK(fx.waiter_prios(2, false) == std::vector<int>{89});
  fx.svc.cancel(fx.last_ticket);
  CHECK(a.failed_with(EINTR));
  CHECK(fx.lock_of(2, false)->prio == 130);
  fx.svc.release_posix(2, 2);
  CHECK(b.ok());
  fx.svc.release_posix(1, 1);
  fx.svc.release_posix(2, 1);
}

TEST_CASE("a second request of an owner whose task already waits gets its own task") {
  Fixture fx;
  CHECK(fx.setlk(who(1, 120), LockType::Write, {}, true, 1).ok());
  CHECK(fx.setlk(who(1, 120), LockType::Write, {}, true, 2).ok());
  // Process 2, two threads, both blocked.
  auto& t1 = fx.setlk(who(2, 120), LockType::Write, {}, true, 1);
  auto& t2 = fx.setlk(who(2, 110), LockType::Write, {}, true, 2);
  CHECK(t1.pending());
  CHECK(t2.pending());
  fx.svc.release_posix(1, 1);
  fx.svc.release_posix(2, 1);
  CHECK(t1.ok());
  CHECK(t2.ok());
  fx.svc.release_posix(1, 2);
  fx.svc.release_posix(2, 2);
  CHECK(fx.svc.contended().empty());
}

LockOwner via(LockOwner o, std::uint64_t file) {
  o.file = file;
  return o;
}

TEST_CASE("OFD: release_file drops the locks taken through that open file only") {
  Fixture fx;
  // Owner 10 is an OFD owner (its open file description, handle 100);
  // owner 1 a process that locked through handles 101 and 102.
  CHECK(fx.setlk(via(who(10, 120), 100), LockType::Write, {0, 9}).ok());
  CHECK(fx.setlk(via(who(1, 120), 101), LockType::Write, {20, 29}).ok());
  CHECK(fx.setlk(via(who(1, 120), 102), LockType::Read, {40, 49}).ok());
  auto& waiter = fx.setlk(via(who(11, 120), 103), LockType::Write, {0, 9});
  CHECK(waiter.pending());
  // The close of a dup (FLUSH of the process that closes it) leaves the
  // OFD lock: the flush names the process, never the description.
  fx.svc.release_posix(kFile, 2);
  CHECK(waiter.pending());
  // Another description's last close does not touch it either.
  fx.svc.release_file(kFile, 101);
  CHECK(waiter.pending());
  REQUIRE(fx.svc.getlk(kFile, who(12, 120), LockType::Write, {40, 49}));  // 102's stays
  CHECK_FALSE(fx.svc.getlk(kFile, who(12, 120), LockType::Write, {20, 29}));
  // Its own last close drops it and the waiter gets it.
  fx.svc.release_file(kFile, 100);
  CHECK(waiter.ok());
  fx.svc.release_file(kFile, 103);
  fx.svc.release_file(kFile, 102);
  CHECK_FALSE(fx.svc.getlk(kFile, who(12, 120), LockType::Write, {}));
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("OFD: a split lock keeps the open file it came through, per piece") {
  Fixture fx;
  // The same owner id through a new description (the kernel reuses a freed
  // struct file's address, and RELEASE of the old one is asynchronous):
  // the late release of the old description drops only its own pieces.
  CHECK(fx.setlk(via(who(10, 120), 100), LockType::Write, {0, 19}).ok());
  CHECK(fx.setlk(via(who(10, 120), 200), LockType::Write, {5, 9}).ok());
  fx.svc.release_file(kFile, 100);
  CHECK_FALSE(fx.svc.getlk(kFile, who(12, 120), LockType::Write, {0, 4}));
  CHECK_FALSE(fx.svc.getlk(kFile, who(12, 120), LockType::Write, {10, 19}));
  auto held = fx.svc.getlk(kFile, who(12, 120), LockType::Write, {0, 19});
  REQUIRE(held);
  CHECK(held->range.start == 5);
  CHECK(held->range.end == 9);
  fx.svc.release_file(kFile, 200);
  CHECK_FALSE(fx.svc.getlk(kFile, who(12, 120), LockType::Write, {}));
}

TEST_CASE("POSIX: a cycle through byte ranges gives EDEADLK to the request that closes it") {
  Fixture fx;
  CHECK(fx.setlk(who(1, 120), LockType::Write, {0, 9}).ok());
  CHECK(fx.setlk(who(2, 120), LockType::Write, {10, 19}).ok());
  auto& a = fx.setlk(who(1, 120), LockType::Write, {10, 19});
  CHECK(a.pending());
  auto& b = fx.setlk(who(2, 120), LockType::Write, {0, 9});
  CHECK(b.failed_with(EDEADLK));
  // A read request that conflicts closes the cycle too; one that does not
  // conflict (a read of a read-locked range elsewhere) is no cycle.
  CHECK(fx.setlk(who(2, 120), LockType::Read, {5, 5}).failed_with(EDEADLK));
  CHECK(fx.setlk(who(2, 120), LockType::Unlock, {10, 19}).ok());
  CHECK(a.ok());
  CHECK(fx.svc.contended().empty());
  fx.svc.release_posix(kFile, 1);
  fx.svc.release_posix(kFile, 2);
}

TEST_CASE("POSIX: a range cycle across files and three owners") {
  Fixture fx;
  CHECK(fx.setlk(who(1, 120), LockType::Write, {0, 9}, true, 1).ok());
  CHECK(fx.setlk(who(2, 120), LockType::Write, {0, 9}, true, 2).ok());
  CHECK(fx.setlk(who(3, 120), LockType::Read, {100, 109}, true, 3).ok());
  auto& a = fx.setlk(who(1, 120), LockType::Write, {5, 5}, true, 2);      // 1 -> 2
  auto& b = fx.setlk(who(2, 120), LockType::Write, {100, 100}, true, 3);  // 2 -> 3
  CHECK(a.pending());
  CHECK(b.pending());
  CHECK(fx.setlk(who(3, 120), LockType::Read, {0, 0}, true, 1).failed_with(EDEADLK));
  // A wait that closes no cycle still waits.
  auto& c = fx.setlk(who(4, 120), LockType::Write, {0, 0}, true, 1);
  CHECK(c.pending());
  fx.svc.cancel(fx.last_ticket);
  CHECK(c.failed_with(EINTR));
  fx.svc.release_posix(3, 3);
  CHECK(b.ok());
  fx.svc.release_posix(2, 2);
  fx.svc.release_posix(3, 2);
  CHECK(a.ok());
  for (std::uint64_t k : {1, 2, 3})
    for (std::uint64_t o : {1, 2, 3}) fx.svc.release_posix(k, o);
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("POSIX: the turn never makes an owner wait for a drainer that waits for it") {
  Fixture fx;
  // 1 holds 0-9 read; 2 wants 0-9 write and drains (owns the turn).
  CHECK(fx.setlk(who(1, 120), LockType::Read, {0, 9}).ok());
  auto& w = fx.setlk(who(2, 120), LockType::Write, {0, 9});
  CHECK(w.pending());
  CHECK(fx.lock_of(kFile, false)->role == "draining");
  // 1 asks for a free range: fs/locks.c grants it at once; queueing for
  // the turn would wait for 2, which waits for 1. F_SETLK and F_SETLKW.
  CHECK(fx.setlk(who(1, 120), LockType::Write, {50, 59}, false).ok());
  CHECK(fx.setlk(who(1, 120), LockType::Write, {60, 69}).ok());
  // An upgrade of its own read lock conflicts with nobody granted: granted.
  CHECK(fx.setlk(who(1, 120), LockType::Write, {0, 9}).ok());
  // Another owner still queues behind the drainer (the fairness rule).
  CHECK(fx.setlk(who(3, 120), LockType::Read, {80, 89}, false).failed_with(EAGAIN));
  // 1 waits beside the turn for 4's lock: no cycle, no EDEADLK.
  CHECK(fx.setlk(who(4, 120), LockType::Write, {200, 209}, false).failed_with(EAGAIN));
  fx.svc.release_posix(kFile, 1);
  CHECK(w.ok());
  fx.svc.release_posix(kFile, 2);
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("POSIX: an owner the drainer waits for waits beside the turn for a third") {
  Fixture fx;
  CHECK(fx.setlk(who(1, 120), LockType::Write, {0, 9}).ok());
  CHECK(fx.setlk(who(2, 120), LockType::Write, {10, 19}).ok());
  CHECK(fx.setlk(who(3, 120), LockType::Write, {20, 29}).ok());
  auto& a = fx.setlk(who(1, 120), LockType::Write, {10, 19});  // drains: waits for 2
  CHECK(a.pending());
  // 2 waits for 3 (no cycle: the kernel lets it wait), beside the turn.
  auto& b = fx.setlk(who(2, 120), LockType::Write, {20, 29});
  CHECK(b.pending());
  auto c = fx.lock_of(kFile, false);
  REQUIRE(c);
  CHECK(c->role == "draining");
  REQUIRE(c->waiters.size() == 1);  // the side waiter, listed after the queue
  CHECK(c->waiters[0].owner.owner == 2);
  // 3 closes the cycle: EDEADLK.
  CHECK(fx.setlk(who(3, 120), LockType::Write, {0, 9}).failed_with(EDEADLK));
  CHECK(fx.setlk(who(3, 120), LockType::Unlock, {20, 29}).ok());
  CHECK(b.ok());
  CHECK(a.pending());
  CHECK(fx.setlk(who(2, 120), LockType::Unlock, {10, 29}).ok());
  CHECK(a.ok());
  for (std::uint64_t o : {1, 2, 3}) fx.svc.release_posix(kFile, o);
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("POSIX: a side waiter's grant that ends the drainer's conflict grants the drainer") {
  Fixture fx;
  CHECK(fx.setlk(who(2, 120), LockType::Write, {10, 19}).ok());
  CHECK(fx.setlk(who(3, 120), LockType::Write, {20, 29}).ok());
  auto& d = fx.setlk(who(9, 100), LockType::Read, {15, UINT64_MAX});  // drains: 2 and 3
  CHECK(d.pending());
  // 2 turns 15-19 into a read lock and extends it: it waits for 3, aside.
  auto& two = fx.setlk(who(2, 120), LockType::Read, {15, UINT64_MAX});
  CHECK(two.pending());
  // 3 unlocks: 2 is granted, which ends the drainer's last conflict.
  CHECK(fx.setlk(who(3, 120), LockType::Unlock, {20, 29}).ok());
  CHECK(two.ok());
  CHECK(d.ok());
  CHECK(fx.svc.contended().empty());
  for (std::uint64_t o : {2, 3, 9}) fx.svc.release_posix(kFile, o);
}

TEST_CASE("POSIX: a queued request moves aside when the turn comes to wait for it") {
  Fixture fx;
  constexpr std::uint64_t kOther = 2;
  CHECK(fx.setlk(who(1, 120), LockType::Read, {0, 9}).ok());           // H
  CHECK(fx.setlk(who(4, 120), LockType::Write, {0, 9}, true, kOther).ok());  // W, file 2
  auto& d = fx.setlk(who(2, 120), LockType::Write, {0, 9});  // D drains: waits for H
  CHECK(d.pending());
  // W asks for a free range: D does not wait for W (yet), so W queues for
  // the turn behind D (the fairness rule).
  auto& w = fx.setlk(who(4, 120), LockType::Write, {50, 59});
  CHECK(w.pending());
  CHECK(fx.setlk(who(5, 120), LockType::Write, {70, 79}, false).failed_with(EAGAIN));
  // H now waits for W on file 2: no cycle through locks (W's request
  // conflicts with nothing granted, fs/locks.c would have granted it), so
  // no EDEADLK; but D waits for H, who waits for W, queued behind D: W
  // moves aside and, nothing conflicting, is granted.
  auto& h = fx.setlk(who(1, 120), LockType::Write, {0, 9}, true, kOther);
  CHECK(h.pending());
  CHECK(w.ok());
  CHECK(d.pending());
  fx.svc.release_posix(kOther, 4);
  CHECK(h.ok());
  fx.svc.release_posix(kFile, 1);
  CHECK(d.ok());
  for (std::uint64_t k : {kFile, kOther})
    for (std::uint64_t o : {1, 2, 4}) fx.svc.release_posix(k, o);
  CHECK(fx.svc.contended().empty());
}

TEST_CASE("locks file: mode 0400, the contended table") {
  TestMachine m("[machine]\nname = \"t\"\n");
  CHECK(m.open_errno("kernel/debug/vsysfs/locks", O_WRONLY) == -EACCES);
  CHECK(m.read("kernel/debug/vsysfs/locks").empty());
  int done = 0;
  auto cb = [&](Status s) { done += s ? 1 : 100; };
  m.locks.flock(m.locks.new_ticket(), 42, "devices/x/value", who(1, 139), LockType::Write, true, cb);
  m.locks.flock(m.locks.new_ticket(), 42, "devices/x/value", who(2, 120), LockType::Write, true, cb);
  m.locks.flock(m.locks.new_ticket(), 42, "devices/x/value", who(3, 89), LockType::Write, true, cb);
  CHECK(done == 1);
  CHECK(m.read("kernel/debug/vsysfs/locks") ==
        "devices/x/value flock\n"
        "  owner  pid=1001 comm=task1 normal_prio=139 prio=89 has_waiters=1 pending=0 "
        "role=exclusive\n"
        "  waiter pid=1003 comm=task3 prio=89 type=exclusive\n"
        "  waiter pid=1002 comm=task2 prio=120 type=exclusive\n");
  m.locks.release_flock(42, 1);
  m.locks.release_flock(42, 3);
  m.locks.release_flock(42, 2);
  CHECK(done == 3);
  CHECK(m.read("kernel/debug/vsysfs/locks").empty());
}

}  // TEST_SUITE
