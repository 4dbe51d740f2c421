// Tests for core/rt_mutex: the scenarios of docs/kernel-semantics.md
// 7.9, each scripted step by step on the non-blocking core with simulated
// tasks (tests/support/sim_scheduler), asserting the owner word after every
// step in the seed's notation "owner bit1 bit0" (bit1 = has waiters,
// bit0 = pending owner). A few cases drive the blocking API from real threads.

#include "core/rt_mutex.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/sim_scheduler.hpp"

namespace {

using namespace vsysfs::core;
using vsysfs::test::pi_waiters;
using vsysfs::test::queue;
using vsysfs::test::SimScheduler;
using vsysfs::test::word;

constexpr LockOptions kDetect{.detect_deadlock = true};

// "acquired", "waiting", "not_waiting" or the errno name.
std::string res(const Result<LockStep>& r) {
  return r ? std::string(to_string(*r)) : std::string(r.error().name());
}
std::string res(const Status& s) { return s ? "ok" : std::string(s.error().name()); }

// Restores kernel.max_lock_depth at scope exit.
struct MaxLockDepth {
  explicit MaxLockDepth(int depth) : saved(max_lock_depth()) { set_max_lock_depth(depth); }
  ~MaxLockDepth() { set_max_lock_depth(saved); }
  int saved;
};

// Polls (bounded) until pred holds; for the real-thread cases only.
template <typename Pred>
bool eventually(Pred pred) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST_SUITE("rt_mutex") {

TEST_CASE("kernel_prio_from_stat maps rt priority and nice like the kernel") {
  CHECK(kernel_prio_from_stat(0, 0, false) == 120);   // DEFAULT_PRIO
  CHECK(kernel_prio_from_stat(0, -20, false) == 100);
  CHECK(kernel_prio_from_stat(0, 19, false) == 139);
  CHECK(kernel_prio_from_stat(1, 0, true) == 98);
  CHECK(kernel_prio_from_stat(99, 0, true) == 0);
  CHECK(kernel_prio_from_stat(50, 0, true) == 49);
  CHECK(kernel_prio_from_stat(0, 40, false) == 139);  // clamped
}

TEST_CASE("fast paths: uncontended lock and unlock touch only the owner word") {
  SimScheduler s;
  RtTask& A = s.spawn("A", 120);
  RtMutex L("L");
  CHECK(word(L) == "NULL 0 0");
  CHECK(res(L.begin_lock(A)) == "acquired");
  CHECK(word(L) == "A 0 0");
  CHECK(L.owner() == &A);
  L.unlock(A);
  CHECK(word(L) == "NULL 0 0");
  CHECK(L.trylock(A));
  CHECK(word(L) == "A 0 0");
  CHECK_FALSE(L.trylock(A));  // rt_mutex_slowtrylock: already ours
  CHECK(word(L) == "A 0 0");  // the waiters bit set by try_to_take was fixed up
  L.unlock(A);
  CHECK(word(L) == "NULL 0 0");
}

// 7.9 scenario 1.
TEST_CASE("boost: a high-prio waiter boosts the owner; its timeout deboosts it") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& A = s.spawn("A", 10);
  RtMutex L("L");

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(word(L) == "C 0 0");

  CHECK(res(L.begin_lock(A)) == "waiting");  // A blocks
  CHECK(word(L) == "C 1 0");
  CHECK(queue(L) == "A:10");
  CHECK(A.blocked_on() == &L);
  CHECK(A.waiting_for() == &L);
  CHECK(pi_waiters(C) == "A@L:10");
  CHECK(C.prio() == 10);
  CHECK(C.normal_prio() == 120);
  CHECK(C.boosted());

  CHECK(res(L.cancel_wait(A, Errno{ETIMEDOUT})) == "ETIMEDOUT");  // A's timer fires
  CHECK(word(L) == "C 0 0");
  CHECK(queue(L) == "");
  CHECK(A.blocked_on() == nullptr);
  CHECK(A.waiting_for() == nullptr);
  CHECK(pi_waiters(C) == "");
  CHECK(C.prio() == 120);
  CHECK(s.take_woken() == "");

  CHECK(res(L.cancel_wait(A, Errno{ETIMEDOUT})) == "not_waiting");
  L.unlock(C);
  CHECK(word(L) == "NULL 0 0");
}

// 7.9 scenario 2.
TEST_CASE("chain: A -> L1 (held by B), B -> L2 (held by C) boosts B and C") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& B = s.spawn("B", 80);
  RtTask& A = s.spawn("A", 10);
  RtMutex L1("L1");
  RtMutex L2("L2");

  CHECK(res(L2.begin_lock(C)) == "acquired");
  CHECK(res(L1.begin_lock(B)) == "acquired");
  CHECK(res(L2.begin_lock(B)) == "waiting");
  CHECK(word(L2) == "C 1 0");
  CHECK(C.prio() == 80);

  CHECK(res(L1.begin_lock(A)) == "waiting");
  CHECK(word(L1) == "B 1 0");
  CHECK(word(L2) == "C 1 0");
  CHECK(B.prio() == 10);
  CHECK(queue(L2) == "B:10");  // rt_mutex_adjust_prio_chain requeued B's waiter
  CHECK(C.prio() == 10);
  CHECK(pi_waiters(C) == "B@L2:10");

  SUBCASE("A times out: the chain is walked again and both are deboosted") {
    CHECK(res(L1.cancel_wait(A, Errno{ETIMEDOUT})) == "ETIMEDOUT");
    CHECK(word(L1) == "B 0 0");
    CHECK(B.prio() == 80);
    CHECK(queue(L2) == "B:80");
    CHECK(C.prio() == 80);  // still boosted by B itself

    L2.unlock(C);
    CHECK(word(L2) == "B 0 1");
    CHECK(s.take_woken() == "B");
    CHECK(C.prio() == 120);
    CHECK(res(L2.try_finish(B)) == "acquired");
    CHECK(word(L2) == "B 0 0");
    L2.unlock(B);
    L1.unlock(B);
  }

  SUBCASE("C releases: B becomes pending owner and stays boosted by A") {
    L2.unlock(C);
    CHECK(word(L2) == "B 0 1");
    CHECK(s.take_woken() == "B");
    CHECK(C.prio() == 120);
    CHECK(B.prio() == 10);
    CHECK(B.blocked_on() == nullptr);  // a pending owner is not blocked
    CHECK(res(L2.try_finish(B)) == "acquired");
    CHECK(word(L2) == "B 0 0");
    L2.unlock(B);
    CHECK(word(L2) == "NULL 0 0");
    CHECK(B.prio() == 10);

    L1.unlock(B);
    CHECK(word(L1) == "A 0 1");
    CHECK(s.take_woken() == "A");
    CHECK(B.prio() == 80);
    CHECK(res(L1.try_finish(A)) == "acquired");
    CHECK(word(L1) == "A 0 0");
    L1.unlock(A);
  }
  CHECK(word(L1) == "NULL 0 0");
  CHECK(word(L2) == "NULL 0 0");
}

// 7.9 scenario 3.
TEST_CASE("FIFO: waiters of equal prio are woken and acquire in arrival order") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& Lo = s.spawn("Lo", 60);
  RtTask& A1 = s.spawn("A1", 50);
  RtTask& A2 = s.spawn("A2", 50);
  RtTask& A3 = s.spawn("A3", 50);
  RtMutex L("L");

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(res(L.begin_lock(Lo)) == "waiting");
  CHECK(res(L.begin_lock(A1)) == "waiting");
  CHECK(res(L.begin_lock(A2)) == "waiting");
  CHECK(res(L.begin_lock(A3)) == "waiting");
  CHECK(queue(L) == "A1:50 A2:50 A3:50 Lo:60");
  CHECK(word(L) == "C 1 0");
  CHECK(pi_waiters(C) == "A1@L:50");

  std::vector<RtTask*> expected = {&A1, &A2, &A3, &Lo};
  RtTask* holder = &C;
  for (RtTask* next : expected) {
    L.unlock(*holder);
    const bool more = next != &Lo;
    CHECK(word(L) == next->name() + (more ? " 1 1" : " 0 1"));
    CHECK(s.take_woken() == next->name());
    CHECK(res(L.try_finish(*next)) == "acquired");
    CHECK(word(L) == next->name() + (more ? " 1 0" : " 0 0"));
    holder = next;
  }
  L.unlock(Lo);
  CHECK(word(L) == "NULL 0 0");
}

// 7.9 scenario 4.
TEST_CASE("steal: a higher-prio task steals from a pending owner, an equal-prio one cannot") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& A = s.spawn("A", 60);
  RtTask& B = s.spawn("B", 50);  // more important than A
  RtTask& E = s.spawn("E", 60);  // as important as A
  RtMutex L("L");
  std::vector<std::string> events;
  L.set_observer([&](const RtMutexEvent& ev) {
    events.push_back(std::string(to_string(ev.kind)) + " " + ev.task->name());
  });

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(res(L.begin_lock(A)) == "waiting");  // A blocks
  CHECK(word(L) == "C 1 0");
  L.unlock(C);  // C unlocks: A becomes pending owner and is woken
  CHECK(word(L) == "A 0 1");
  CHECK(s.take_woken() == "A");
  CHECK(A.waiting_for() == &L);  // ... but has not run yet
  CHECK(A.blocked_on() == nullptr);

  SUBCASE("B runs before A and steals; A re-queues when it runs") {
    CHECK(res(L.begin_lock(B)) == "acquired");
    CHECK(word(L) == "B 0 0");
    CHECK(events.back() == "steal B");
    CHECK(res(L.try_finish(A)) == "waiting");  // A finds it stolen
    CHECK(word(L) == "B 1 0");
    CHECK(queue(L) == "A:60");
    CHECK(pi_waiters(B) == "A@L:60");
    CHECK(B.prio() == 50);
    L.unlock(B);
    CHECK(word(L) == "A 0 1");
    CHECK(s.take_woken() == "A");
    CHECK(res(L.try_finish(A)) == "acquired");
    CHECK(word(L) == "A 0 0");
    L.unlock(A);
  }

  SUBCASE("trylock by B steals too") {
    CHECK(L.trylock(B));
    CHECK(word(L) == "B 0 0");
    CHECK(res(L.try_finish(A)) == "waiting");
    CHECK(word(L) == "B 1 0");
    L.unlock(B);
    CHECK(res(L.try_finish(A)) == "acquired");
    L.unlock(A);
  }

  SUBCASE("E (equal prio) cannot steal: it queues behind the pending owner") {
    CHECK(res(L.begin_lock(E)) == "waiting");
    CHECK(word(L) == "A 1 1");
    CHECK(queue(L) == "E:60");
    CHECK(pi_waiters(A) == "E@L:60");
    CHECK(res(L.try_finish(A)) == "acquired");
    CHECK(word(L) == "A 1 0");
    L.unlock(A);
    CHECK(word(L) == "E 0 1");
    CHECK(s.take_woken() == "E");
    CHECK(res(L.try_finish(E)) == "acquired");
    CHECK(word(L) == "E 0 0");
    L.unlock(E);
  }

  SUBCASE("trylock by E fails and leaves the word as it was") {
    CHECK_FALSE(L.trylock(E));
    CHECK(word(L) == "A 0 1");
    CHECK(res(L.try_finish(A)) == "acquired");
    L.unlock(A);
  }
  CHECK(word(L) == "NULL 0 0");
  CHECK(std::find(events.begin(), events.end(), "handover A") != events.end());
}

TEST_CASE("steal with more waiters: the top waiter moves to the thief's pi_waiters") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& A = s.spawn("A", 60);
  RtTask& D = s.spawn("D", 70);
  RtTask& B = s.spawn("B", 50);
  RtMutex L("L");

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(res(L.begin_lock(A)) == "waiting");
  CHECK(res(L.begin_lock(D)) == "waiting");
  CHECK(queue(L) == "A:60 D:70");
  CHECK(C.prio() == 60);

  L.unlock(C);
  CHECK(word(L) == "A 1 1");
  CHECK(queue(L) == "D:70");
  CHECK(pi_waiters(A) == "D@L:70");
  CHECK(C.prio() == 120);

  CHECK(res(L.begin_lock(B)) == "acquired");  // steal
  CHECK(word(L) == "B 1 0");
  CHECK(pi_waiters(A) == "");
  CHECK(pi_waiters(B) == "D@L:70");

  CHECK(res(L.try_finish(A)) == "waiting");
  CHECK(word(L) == "B 1 0");
  CHECK(queue(L) == "A:60 D:70");
  CHECK(pi_waiters(B) == "A@L:60");

  L.unlock(B);
  CHECK(word(L) == "A 1 1");
  CHECK(res(L.try_finish(A)) == "acquired");
  CHECK(word(L) == "A 1 0");
  L.unlock(A);
  CHECK(word(L) == "D 0 1");
  CHECK(res(L.try_finish(D)) == "acquired");
  CHECK(word(L) == "D 0 0");
  L.unlock(D);
  CHECK(word(L) == "NULL 0 0");
  CHECK(s.take_woken() == "A A D");
}

// 7.9 scenario 5.
TEST_CASE("deadlock: A holds L1 wants L2, B holds L2 wants L1") {
  SimScheduler s;
  RtTask& A = s.spawn("A", 120);
  RtTask& B = s.spawn("B", 100);
  RtMutex L1("L1");
  RtMutex L2("L2");

  CHECK(res(L1.begin_lock(A)) == "acquired");
  CHECK(res(L2.begin_lock(B)) == "acquired");
  CHECK(res(L2.begin_lock(A, kDetect)) == "waiting");
  CHECK(word(L2) == "B 1 0");

  SUBCASE("with detection the second locker gets EDEADLK and nothing stays queued") {
    CHECK(res(L1.begin_lock(B, kDetect)) == "EDEADLK");
    CHECK(word(L1) == "A 0 0");
    CHECK(queue(L1) == "");
    CHECK(B.blocked_on() == nullptr);
    CHECK(B.waiting_for() == nullptr);
    CHECK(A.prio() == 120);  // the boost B gave A was undone
    CHECK(pi_waiters(A) == "");
  }

  SUBCASE("without detection both stay blocked until one is cancelled") {
    CHECK(res(L1.begin_lock(B)) == "waiting");
    CHECK(word(L1) == "A 1 0");
    CHECK(word(L2) == "B 1 0");
    CHECK(A.blocked_on() == &L2);
    CHECK(B.blocked_on() == &L1);
    CHECK(A.prio() == 100);
    CHECK(res(L1.try_finish(B)) == "waiting");  // running them changes nothing
    CHECK(res(L2.try_finish(A)) == "waiting");
    CHECK(res(L1.cancel_wait(B, Errno{EINTR})) == "EINTR");
    CHECK(word(L1) == "A 0 0");
    CHECK(A.prio() == 120);
  }

  L2.unlock(B);
  CHECK(word(L2) == "A 0 1");
  CHECK(res(L2.try_finish(A)) == "acquired");
  L2.unlock(A);
  L1.unlock(A);
  CHECK(word(L1) == "NULL 0 0");
  CHECK(word(L2) == "NULL 0 0");
}

TEST_CASE("deadlock without detection: a real thread blocked forever can be interrupted") {
  SimScheduler s;
  RtTask& A = s.spawn("A", 120);
  RtTask B("B", 2, 100);
  RtMutex L1("L1");
  RtMutex L2("L2");
  CHECK(res(L1.begin_lock(A)) == "acquired");
  L2.lock(B);
  CHECK(res(L2.begin_lock(A)) == "waiting");

  std::stop_source stop;
  Status result = Errno{EIO};
  std::thread t([&] { result = L1.lock_interruptible(B, stop.get_token()); });
  REQUIRE(eventually([&] { return A.prio() == 100; }));
  CHECK(B.blocked_on() == &L1);
  CHECK(word(L1) == "A 1 0");
  stop.request_stop();
  t.join();
  CHECK(res(result) == "EINTR");
  CHECK(word(L1) == "A 0 0");
  CHECK(A.prio() == 120);

  L2.unlock(B);
  CHECK(res(L2.try_finish(A)) == "acquired");
  L2.unlock(A);
  L1.unlock(A);
}

TEST_CASE("re-locking a lock the task holds: EDEADLK with detection, else blocks") {
  SimScheduler s;
  RtTask& A = s.spawn("A", 120);
  RtMutex L("L");
  CHECK(res(L.begin_lock(A)) == "acquired");

  SUBCASE("with detection") {
    CHECK(res(L.begin_lock(A, kDetect)) == "EDEADLK");
    CHECK(word(L) == "A 0 0");
    CHECK(queue(L) == "");
    CHECK(pi_waiters(A) == "");
    CHECK(A.prio() == 120);
    CHECK(A.waiting_for() == nullptr);
  }

  SUBCASE("without detection the task waits on itself until cancelled") {
    CHECK(res(L.begin_lock(A)) == "waiting");
    CHECK(word(L) == "A 1 0");
    CHECK(queue(L) == "A:120");
    CHECK(A.blocked_on() == &L);
    CHECK(res(L.try_finish(A)) == "waiting");
    CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "EINTR");
    CHECK(word(L) == "A 0 0");
    CHECK(pi_waiters(A) == "");  // 2.6.18 would leave its own waiter here
  }

  CHECK_FALSE(L.trylock(A));
  L.unlock(A);
  CHECK(word(L) == "NULL 0 0");
}

TEST_CASE("a pending owner boosted through the chain, then interrupted or robbed") {
  // C releases L to A (pending) while D still waits on L; then Z blocks on
  // M, held by D: the walk goes D -> L -> A and boosts the pending owner.
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& A = s.spawn("A", 60);
  RtTask& D = s.spawn("D", 70);
  RtTask& Z = s.spawn("Z", 20);
  RtTask& T = s.spawn("T", 10);
  RtMutex L("L"), M("M");

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(res(M.begin_lock(D)) == "acquired");
  CHECK(res(L.begin_lock(A)) == "waiting");
  CHECK(res(L.begin_lock(D)) == "waiting");
  L.unlock(C);
  CHECK(word(L) == "A 1 1");
  CHECK(pi_waiters(A) == "D@L:70");
  CHECK(A.prio() == 60);

  CHECK(res(M.begin_lock(Z)) == "waiting");
  CHECK(D.prio() == 20);
  CHECK(queue(L) == "D:20");
  CHECK(pi_waiters(A) == "D@L:20");
  CHECK(A.prio() == 20);  // a boosted pending owner
  CHECK(word(L) == "A 1 1");

  SUBCASE("interrupted: it takes the lock anyway and stays boosted") {
    CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "acquired");
    CHECK(word(L) == "A 1 0");
    CHECK(A.prio() == 20);
    L.unlock(A);
    CHECK(A.prio() == 60);
  }

  SUBCASE("robbed by T, then interrupted: EINTR and the boost is gone") {
    CHECK(res(L.begin_lock(T)) == "acquired");  // 10 < 20: steal
    CHECK(word(L) == "T 1 0");
    CHECK(A.prio() == 60);
    CHECK(pi_waiters(T) == "D@L:20");
    CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "EINTR");
    CHECK(A.prio() == 60);
    CHECK(A.waiting_for() == nullptr);
    CHECK(queue(L) == "D:20");
    L.unlock(T);
  }

  CHECK(word(L) == "D 0 1");
  CHECK(res(L.try_finish(D)) == "acquired");
  CHECK(res(M.cancel_wait(Z, Errno{ETIMEDOUT})) == "ETIMEDOUT");
  CHECK(D.prio() == 70);
  L.unlock(D);
  M.unlock(D);
  CHECK(word(L) == "NULL 0 0");
  CHECK(word(M) == "NULL 0 0");
}

TEST_CASE("Kernel quirk: 2.6.18 detection only sees a deadlock through top waiters") {
  // rt_mutex_adjust_prio_chain stops as soon as the waiter that started a
  // step is not its owner's top PI waiter, detection or not (later kernels
  // keep walking when detecting). So a re-lock, or a cycle, behind a more
  // important waiter is not reported: the task waits until cancelled.
  SimScheduler s;
  RtTask& A = s.spawn("A", 120);
  RtTask& B = s.spawn("B", 50);
  RtMutex L("L");
  CHECK(res(L.begin_lock(A)) == "acquired");
  CHECK(res(L.begin_lock(B)) == "waiting");
  CHECK(A.prio() == 50);

  CHECK(res(L.begin_lock(A, kDetect)) == "waiting");  // blocked on itself
  CHECK(queue(L) == "B:50 A:50");                     // keyed at its boosted prio
  CHECK(A.blocked_on() == &L);
  CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "EINTR");
  CHECK(queue(L) == "B:50");
  CHECK(pi_waiters(A) == "B@L:50");
  CHECK(A.prio() == 50);

  L.unlock(A);
  CHECK(word(L) == "B 0 1");
  CHECK(A.prio() == 120);
  CHECK(res(L.try_finish(B)) == "acquired");
  L.unlock(B);
}

// 7.9 scenario 6.
TEST_CASE("depth: a chain longer than max_lock_depth") {
  // T1 holds L1; T2 holds L2 and waits on L1; T3 holds L3 and waits on L2;
  // T4 holds L4 and waits on L3. X then locks L4: the walk visits the owners
  // T4, T3, T2, T1, one per depth step.
  SimScheduler s;
  RtTask& T1 = s.spawn("T1", 120);
  RtTask& T2 = s.spawn("T2", 120);
  RtTask& T3 = s.spawn("T3", 120);
  RtTask& T4 = s.spawn("T4", 120);
  RtTask& X = s.spawn("X", 10);
  RtMutex L1("L1"), L2("L2"), L3("L3"), L4("L4");
  std::vector<RtMutex*> locks = {&L1, &L2, &L3, &L4};
  std::vector<RtTask*> tasks = {&T1, &T2, &T3, &T4};
  for (int i = 0; i < 4; ++i) CHECK(res(locks[i]->begin_lock(*tasks[i])) == "acquired");
  for (int i = 1; i < 4; ++i) CHECK(res(locks[i - 1]->begin_lock(*tasks[i])) == "waiting");
  int reported_limit = 0;
  L4.set_observer([&](const RtMutexEvent& ev) {
    if (ev.kind == RtMutexEvent::Kind::max_lock_depth) reported_limit = ev.old_prio;
  });

  SUBCASE("limit 2, detection: EDEADLK, and every boost is undone") {
    MaxLockDepth depth(2);
    CHECK(res(L4.begin_lock(X, kDetect)) == "EDEADLK");
    CHECK(reported_limit == 2);
    CHECK(word(L4) == "T4 0 0");
    for (RtTask* t : tasks) CHECK(t->prio() == 120);
  }

  SUBCASE("limit 2, no detection: X waits; boosting stops at the limit") {
    MaxLockDepth depth(2);
    CHECK(res(L4.begin_lock(X)) == "waiting");
    CHECK(reported_limit == 2);
    CHECK(word(L4) == "T4 1 0");
    CHECK(T4.prio() == 10);
    CHECK(T3.prio() == 10);
    CHECK(T2.prio() == 10);
    CHECK(T1.prio() == 120);  // beyond the limit
    CHECK(res(L4.cancel_wait(X, Errno{EINTR})) == "EINTR");
    for (RtTask* t : tasks) CHECK(t->prio() == 120);
  }

  SUBCASE("limit 3 counts owners visited: the 4-owner chain is already too deep") {
    MaxLockDepth depth(3);
    CHECK(res(L4.begin_lock(X, kDetect)) == "EDEADLK");
  }

  SUBCASE("limit 4: the chain fits, X waits and everyone is boosted") {
    MaxLockDepth depth(4);
    CHECK(res(L4.begin_lock(X, kDetect)) == "waiting");
    CHECK(reported_limit == 0);
    for (RtTask* t : tasks) CHECK(t->prio() == 10);
    CHECK(res(L4.cancel_wait(X, Errno{ETIMEDOUT})) == "ETIMEDOUT");
    for (RtTask* t : tasks) CHECK(t->prio() == 120);
  }

  // Unwind from the bottom: T1 releases L1, each next owner finishes its
  // wait, then releases both its locks.
  L1.unlock(T1);
  for (int i = 1; i < 4; ++i) {
    CHECK(word(*locks[i - 1]) == tasks[i]->name() + " 0 1");
    CHECK(res(locks[i - 1]->try_finish(*tasks[i])) == "acquired");
    locks[i - 1]->unlock(*tasks[i]);
    locks[i]->unlock(*tasks[i]);
  }
  for (RtMutex* l : locks) CHECK(word(*l) == "NULL 0 0");
}

TEST_CASE("transitional state: NULL owner with the waiters bit while taking the lock") {
  SimScheduler s;
  RtTask& A = s.spawn("A", 120);
  RtTask& C = s.spawn("C", 120);
  RtMutex L("L");
  std::vector<std::string> seen;
  L.set_test_hook([&](RtMutex::TestPoint p, RtTask& t) {
    CHECK(p == RtMutex::TestPoint::after_mark_waiters);
    seen.push_back(t.name() + ": " + word(L));
  });

  // With detection the fast path is skipped, so the slow path marks the free
  // lock first: "NULL 1 0", then takes it.
  CHECK(res(L.begin_lock(A, kDetect)) == "acquired");
  CHECK(word(L) == "A 0 0");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == "A: NULL 1 0");

  // A contended trylock marks an owned lock: "A 1 0", then fixes it up.
  seen.clear();
  CHECK_FALSE(L.trylock(C));
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == "C: A 1 0");
  CHECK(word(L) == "A 0 0");
  L.unlock(A);
}

TEST_CASE("owner word: every valid state of the seed's table is reached, none invalid") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& A = s.spawn("A", 60);
  RtTask& D = s.spawn("D", 70);
  RtMutex L("L");
  std::vector<std::string> states;
  auto note = [&] { states.push_back(word(L)); };
  L.set_test_hook([&](RtMutex::TestPoint, RtTask&) { note(); });

  note();                                                 // NULL 0 0
  CHECK(res(L.begin_lock(C, kDetect)) == "acquired");     // NULL 1 0 (hook)
  note();                                                 // C 0 0
  CHECK(res(L.begin_lock(A)) == "waiting");               // C 1 0 (hooks)
  CHECK(res(L.begin_lock(D)) == "waiting");
  note();                                                 // C 1 0
  L.unlock(C);
  note();                                                 // A 1 1
  CHECK(res(L.try_finish(A)) == "acquired");
  L.unlock(A);
  note();                                                 // D 0 1
  CHECK(res(L.try_finish(D)) == "acquired");
  L.unlock(D);
  note();                                                 // NULL 0 0

  for (const char* want : {"NULL 0 0", "NULL 1 0", "C 0 0", "C 1 0", "A 1 1", "D 0 1"}) {
    CHECK_MESSAGE(std::find(states.begin(), states.end(), want) != states.end(), want);
  }
  for (const std::string& st : states) {
    CHECK(st != "NULL 0 1");
    CHECK(st != "NULL 1 1");
  }
}

TEST_CASE("observer: hand-over, steal, boost and deboost are reported in order") {
  SimScheduler s;
  RtTask& C = s.spawn("C", 120);
  RtTask& A = s.spawn("A", 60);
  RtTask& B = s.spawn("B", 50);
  RtMutex L("L");
  std::vector<std::string> log;
  L.set_observer([&](const RtMutexEvent& ev) {
    std::string line = std::string(to_string(ev.kind)) + " " + ev.task->name();
    if (ev.other) line += " from " + ev.other->name();
    if (ev.kind == RtMutexEvent::Kind::boost || ev.kind == RtMutexEvent::Kind::deboost) {
      line += " " + std::to_string(ev.old_prio) + "->" + std::to_string(ev.new_prio);
    }
    log.push_back(line);
  });

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(res(L.begin_lock(A)) == "waiting");
  L.unlock(C);
  CHECK(res(L.begin_lock(B)) == "acquired");
  CHECK(res(L.try_finish(A)) == "waiting");
  L.unlock(B);
  CHECK(res(L.try_finish(A)) == "acquired");
  L.unlock(A);

  const std::vector<std::string> want = {
      "boost C 120->60",   "handover A from C", "deboost C 60->120",
      "steal B from A",    "handover A from B",
  };
  CHECK(log == want);
}

TEST_CASE("async form: wake hook, try_finish, cancel_wait, stale wake-ups") {
  RtTask C("C", 1, 120);
  RtTask A("A", 2, 60);
  RtMutex L("L");
  std::vector<std::string> hook_log;
  Result<LockStep> from_hook = LockStep::not_waiting;
  // The hook runs with no internal lock held, so a service may finish the
  // wait right there (or post it to a queue).
  A.set_wake_hook([&](RtTask& t, RtMutex& m) {
    hook_log.push_back(t.name() + " woken for " + m.name());
    from_hook = m.try_finish(t);
  });

  CHECK(res(L.begin_lock(C)) == "acquired");
  CHECK(res(L.begin_lock(A)) == "waiting");
  CHECK(res(L.begin_lock(A)) == "EBUSY");        // one lock call per task
  CHECK(res(L.try_finish(A)) == "waiting");      // spurious run: still queued
  L.unlock(C);
  REQUIRE(hook_log.size() == 1);
  CHECK(hook_log[0] == "A woken for L");
  CHECK(res(from_hook) == "acquired");
  CHECK(word(L) == "A 0 0");
  CHECK(res(L.try_finish(A)) == "not_waiting");  // a stale wake-up is harmless
  CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "not_waiting");
  L.unlock(A);

  SUBCASE("an interrupt after becoming pending owner still gets the lock (kernel order)") {
    A.set_wake_hook(nullptr);
    CHECK(res(L.begin_lock(C)) == "acquired");
    CHECK(res(L.begin_lock(A)) == "waiting");
    L.unlock(C);
    CHECK(word(L) == "A 0 1");
    CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "acquired");
    CHECK(word(L) == "A 0 0");
    L.unlock(A);
  }

  SUBCASE("an interrupt after the pending ownership was stolen: EINTR") {
    A.set_wake_hook(nullptr);
    RtTask B("B", 3, 10);
    CHECK(res(L.begin_lock(C)) == "acquired");
    CHECK(res(L.begin_lock(A)) == "waiting");
    L.unlock(C);
    CHECK(L.trylock(B));
    CHECK(res(L.cancel_wait(A, Errno{EINTR})) == "EINTR");
    CHECK(word(L) == "B 0 0");
    CHECK(A.waiting_for() == nullptr);
    L.unlock(B);
  }
  CHECK(word(L) == "NULL 0 0");
}

TEST_CASE("Kernel quirk: a waiter requeued while not on top keeps a stale pi key") {
  // The chain walk updates pi_list_entry.prio only when the requeued waiter
  // is the top waiter. When that waiter later becomes top through
  // remove_waiter (or wakeup_next_waiter), it enters the owner's pi_waiters
  // with its old key, so the owner is boosted less than the waiter's prio.
  SimScheduler s;
  RtTask& O = s.spawn("O", 120);
  RtTask& X = s.spawn("X", 50);
  RtTask& Y = s.spawn("Y", 100);
  RtTask& Z = s.spawn("Z", 80);
  RtMutex L("L"), M("M");

  CHECK(res(L.begin_lock(O)) == "acquired");
  CHECK(res(M.begin_lock(Y)) == "acquired");
  CHECK(res(L.begin_lock(X)) == "waiting");
  CHECK(res(L.begin_lock(Y)) == "waiting");
  CHECK(queue(L) == "X:50 Y:100");
  CHECK(res(M.begin_lock(Z)) == "waiting");  // boosts Y to 80, requeues Y in L
  CHECK(Y.prio() == 80);
  CHECK(queue(L) == "X:50 Y:80");
  CHECK(O.prio() == 50);

  CHECK(res(L.cancel_wait(X, Errno{ETIMEDOUT})) == "ETIMEDOUT");
  CHECK(queue(L) == "Y:80");
  CHECK(pi_waiters(O) == "Y@L:100");  // stale key
  CHECK(O.prio() == 100);             // not 80

  CHECK(res(M.cancel_wait(Z, Errno{EINTR})) == "EINTR");
  CHECK(Y.prio() == 100);
  L.unlock(O);
  CHECK(res(L.try_finish(Y)) == "acquired");
  L.unlock(Y);
  M.unlock(Y);
  CHECK(O.prio() == 120);
}

TEST_CASE("blocking API: threads hand the lock over, time out and are interrupted") {
  RtTask C("C", 1, 120);
  RtTask A("A", 2, 10);
  RtMutex L("L");

  SUBCASE("lock() waits for unlock()") {
    L.lock(C);
    std::atomic<bool> got{false};
    std::thread t([&] {
      L.lock(A);
      got = true;
      L.unlock(A);
    });
    REQUIRE(eventually([&] { return C.prio() == 10; }));
    CHECK(A.blocked_on() == &L);
    CHECK_FALSE(got.load());
    L.unlock(C);
    t.join();
    CHECK(got.load());
    CHECK(C.prio() == 120);
  }

  SUBCASE("lock_timed() times out and the owner is deboosted") {
    L.lock(C);
    Status st;
    std::thread t([&] {
      st = L.lock_timed(A, std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
    });
    t.join();
    CHECK(res(st) == "ETIMEDOUT");
    CHECK(C.prio() == 120);
    CHECK(word(L) == "C 0 0");
    L.unlock(C);
  }

  SUBCASE("lock_timed() with a past deadline still takes a free lock") {
    CHECK(res(L.lock_timed(A, std::chrono::steady_clock::now() - std::chrono::seconds(1))) ==
          "ok");
    L.unlock(A);
  }

  SUBCASE("lock_interruptible() boosts while waiting, EINTR deboosts") {
    L.lock(C);
    std::stop_source stop;
    Status st;
    std::thread t([&] { st = L.lock_interruptible(A, stop.get_token()); });
    REQUIRE(eventually([&] { return C.prio() == 10; }));
    CHECK(A.blocked_on() == &L);
    CHECK(word(L) == "C 1 0");
    stop.request_stop();
    t.join();
    CHECK(res(st) == "EINTR");
    CHECK(C.prio() == 120);
    CHECK(word(L) == "C 0 0");
    L.unlock(C);
  }
  CHECK(word(L) == "NULL 0 0");
}

}  // TEST_SUITE
