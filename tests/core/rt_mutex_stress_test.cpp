// Stress tests for core/rt_mutex with real threads: many locks, random
// priorities, timeouts, interrupts and deadlock detection, plus the
// asynchronous (begin_lock / wake hook / try_finish / cancel_wait) form
// driven from a dispatcher thread while another thread cancels waits.
//
// What is checked: mutual exclusion (an atomic holder count per lock, and a
// plain counter per lock that the sanitizer would flag if two holders raced);
// that no waiter is lost (every lock call returns; a watchdog aborts with the
// owner words if the run does not finish); that every grant is balanced by
// exactly one unlock; and that at the end every lock is "NULL 0 0" and every
// task is back at its normal prio with no PI state left.
//
// Each case runs for a fixed wall-clock budget (the machine has 2 cores and
// the thread sanitizer slows the code ~10x), so the number of operations
// varies; correctness does not depend on it.

#include "core/rt_mutex.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace vsysfs::core;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kLocks = 4;
constexpr auto kBudget = milliseconds(1200);
constexpr int kPrios[] = {10, 50, 98, 110, 120, 130};

// One lock under test with its mutual-exclusion evidence.
struct Guarded {
  RtMutex lock;
  std::atomic<int> holders{0};
  std::atomic<long> grants{0};
  std::atomic<long> releases{0};
  long counter = 0;  // plain: only touched while holding `lock`

  explicit Guarded(std::string name) : lock(std::move(name)) {}

  void enter() {
    const int h = holders.fetch_add(1);
    CHECK_MESSAGE(h == 0, "two holders of ", lock.name());
    ++counter;
    grants.fetch_add(1);
  }
  void leave() {
    releases.fetch_add(1);
    holders.fetch_sub(1);
  }
};

// Aborts the process with a picture of the owner words if `done` is not set
// within the limit: a lost wake-up would otherwise hang the suite.
class Watchdog {
 public:
  Watchdog(std::array<std::unique_ptr<Guarded>, kLocks>& locks, std::chrono::seconds limit)
      : thread_([this, &locks, limit] {
          std::unique_lock lk(mu_);
          if (!cv_.wait_for(lk, limit, [this] { return done_; })) {
            std::fprintf(stderr, "rt_mutex stress: no progress, a waiter was lost?\n");
            for (auto& g : locks) {
              std::fprintf(stderr, "  %s: %s\n", g->lock.name().c_str(),
                           to_string(g->lock.owner_word_state()).c_str());
            }
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

std::array<std::unique_ptr<Guarded>, kLocks> make_locks() {
  std::array<std::unique_ptr<Guarded>, kLocks> locks;
  for (int i = 0; i < kLocks; ++i) locks[i] = std::make_unique<Guarded>("L" + std::to_string(i));
  return locks;
}

void check_quiescent(std::array<std::unique_ptr<Guarded>, kLocks>& locks,
                     const std::vector<RtTask*>& tasks) {
  for (auto& g : locks) {
    CHECK(to_string(g->lock.owner_word_state()) == "NULL 0 0");
    CHECK(g->lock.waiters().empty());
    CHECK(g->holders.load() == 0);
    CHECK(g->grants.load() == g->releases.load());
    CHECK(g->counter == g->grants.load());
  }
  for (RtTask* t : tasks) {
    CHECK(t->prio() == t->normal_prio());
    CHECK(t->pi_waiters().empty());
    CHECK(t->blocked_on() == nullptr);
    CHECK(t->waiting_for() == nullptr);
  }
}

// Threads never use REQUIRE/FAIL: they throw, and a throw out of a thread
// terminates the run.

// A worker's interruptible calls get a fresh stop_source each, published so
// the interrupter thread can fire it.
struct Interruptible {
  std::mutex mu;
  std::stop_source source;

  std::stop_token arm() {
    std::lock_guard g(mu);
    source = std::stop_source();
    return source.get_token();
  }
  void fire() {
    std::lock_guard g(mu);
    source.request_stop();
  }
};

struct Tally {
  std::atomic<long> ok{0}, timedout{0}, intr{0}, deadlk{0}, busy{0};
  void count(const Status& s) {
    if (s) {
      ++ok;
    } else if (s.error() == Errno{ETIMEDOUT}) {
      ++timedout;
    } else if (s.error() == Errno{EINTR}) {
      ++intr;
    } else if (s.error() == Errno{EDEADLK}) {
      ++deadlk;
    } else {
      FAIL_CHECK("unexpected errno ", s.error().name());
    }
  }
};

}  // namespace

TEST_SUITE("rt_mutex_stress") {

TEST_CASE("threads: random locks, prios, timeouts, interrupts and deadlock detection") {
  constexpr int kThreads = 6;
  auto locks = make_locks();
  std::vector<std::unique_ptr<RtTask>> tasks;
  std::vector<std::unique_ptr<Interruptible>> irq;
  for (int i = 0; i < kThreads; ++i) {
    tasks.push_back(std::make_unique<RtTask>("T" + std::to_string(i), 100 + i,
                                             kPrios[i % std::size(kPrios)]));
    irq.push_back(std::make_unique<Interruptible>());
  }
  Tally tally;
  std::atomic<bool> stop{false};
  std::atomic<long> ops{0};

  {
    Watchdog dog(locks, std::chrono::seconds(60));
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        RtTask& me = *tasks[i];
        std::mt19937 rng(1234u + static_cast<unsigned>(i));
        auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
        while (!stop.load()) {
          // Which locks, in which order: ascending (never a cycle by itself)
          // or random (only with timed, detecting calls, so a cycle ends in
          // EDEADLK or ETIMEDOUT).
          const bool random_order = pick(3) == 0;
          std::vector<int> want;
          const int n = 1 + pick(2);
          while (static_cast<int>(want.size()) < n) {
            int l = pick(kLocks);
            if (std::find(want.begin(), want.end(), l) == want.end()) want.push_back(l);
          }
          if (!random_order) std::sort(want.begin(), want.end());

          std::vector<int> held;
          for (int l : want) {
            RtMutex& m = locks[l]->lock;
            Status st;
            const auto deadline = Clock::now() + milliseconds(pick(4));
            if (random_order) {
              st = m.lock_timed(me, deadline, LockOptions{.detect_deadlock = pick(2) == 0});
            } else {
              switch (pick(4)) {
                case 0: m.lock(me); break;
                case 1: st = m.lock_timed(me, deadline); break;
                case 2: st = m.lock_interruptible(me, irq[i]->arm()); break;
                default: st = m.trylock(me) ? Status() : Status(Errno{EBUSY}); break;
              }
            }
            if (!st && st.error() == Errno{EBUSY}) {
              ++tally.busy;
            } else {
              tally.count(st);
            }
            if (!st) break;
            locks[l]->enter();
            held.push_back(l);
            if (pick(4) == 0) std::this_thread::yield();
          }
          for (auto it = held.rbegin(); it != held.rend(); ++it) {
            locks[*it]->leave();
            locks[*it]->lock.unlock(me);
          }
          ++ops;
        }
      });
    }
    std::thread interrupter([&] {
      std::mt19937 rng(99);
      while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        irq[std::uniform_int_distribution<int>(0, kThreads - 1)(rng)]->fire();
      }
    });

    std::this_thread::sleep_for(kBudget);
    stop = true;
    interrupter.join();
    for (auto& t : threads) t.join();
  }

  MESSAGE("ops=", ops.load(), " ok=", tally.ok.load(), " ETIMEDOUT=", tally.timedout.load(),
          " EINTR=", tally.intr.load(), " EDEADLK=", tally.deadlk.load(),
          " trylock-busy=", tally.busy.load());
  CHECK(ops.load() > 0);
  std::vector<RtTask*> raw;
  for (auto& t : tasks) raw.push_back(t.get());
  check_quiescent(locks, raw);
}

TEST_CASE("async: a dispatcher finishes waits on wake-ups while another thread cancels them") {
  // The phase-2 lock service in miniature: async tasks never block a
  // thread. begin_lock starts a wait, the wake hook posts the task to a
  // queue, the dispatcher calls try_finish; a canceller thread (FUSE
  // interrupts, timers) calls cancel_wait concurrently. Exactly one of
  // try_finish / cancel_wait concludes each wait; the other sees
  // not_waiting. Two blocking threads compete for the same locks.
  constexpr int kAsync = 4;
  constexpr int kBlocking = 2;
  auto locks = make_locks();

  enum State : int { idle, waiting, holding };
  struct AsyncTask {
    std::unique_ptr<RtTask> task;
    std::atomic<int> state{idle};
    std::atomic<int> lock_index{0};
    Clock::time_point hold_until;  // dispatcher only
  };
  std::array<AsyncTask, kAsync> async;

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<int> woken;  // indexes into async

  for (int i = 0; i < kAsync; ++i) {
    async[i].task = std::make_unique<RtTask>("A" + std::to_string(i), 200 + i,
                                             kPrios[(i * 2) % std::size(kPrios)]);
    async[i].task->set_wake_hook([&, i](RtTask&, RtMutex&) {
      {
        std::lock_guard g(queue_mu);
        woken.push_back(i);
      }
      queue_cv.notify_one();
    });
  }
  std::vector<std::unique_ptr<RtTask>> blocking;
  for (int i = 0; i < kBlocking; ++i) {
    blocking.push_back(std::make_unique<RtTask>("B" + std::to_string(i), 300 + i, 120 - 60 * i));
  }

  std::atomic<long> by_dispatcher{0}, by_canceller{0}, cancelled{0}, stale{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> drained{false};

  // A wait concluded with the lock: whoever saw `acquired` enters the
  // critical section, then publishes `holding` (after which the dispatcher
  // may release it).
  auto granted = [&](AsyncTask& a) {
    locks[a.lock_index.load()]->enter();
    int expect = waiting;
    CHECK(a.state.compare_exchange_strong(expect, holding));
  };

  {
    Watchdog dog(locks, std::chrono::seconds(60));

    std::thread dispatcher([&] {
      std::mt19937 rng(7);
      auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
      for (;;) {
        const bool stopping = stop.load();
        int busy = 0;
        for (AsyncTask& a : async) {
          const int st = a.state.load();
          if (st == idle && !stopping) {
            a.lock_index = pick(kLocks);
            a.state = waiting;
            Result<LockStep> r = locks[a.lock_index]->lock.begin_lock(*a.task);
            CHECK(r.ok());
            if (r.ok() && *r == LockStep::acquired) {
              granted(a);
              ++by_dispatcher;
              a.hold_until = Clock::now() + std::chrono::microseconds(pick(500));
            }
          } else if (st == holding) {
            if (a.hold_until == Clock::time_point{}) {
              a.hold_until = Clock::now() + std::chrono::microseconds(pick(500));
            }
            if (stopping || Clock::now() >= a.hold_until) {
              a.hold_until = {};
              Guarded& g = *locks[a.lock_index.load()];
              g.leave();
              a.state = idle;
              g.lock.unlock(*a.task);
            }
          } else if (st == waiting && stopping) {
            Result<LockStep> r = locks[a.lock_index.load()]->lock.cancel_wait(*a.task, Errno{EINTR});
            if (r.ok() && *r == LockStep::acquired) {
              granted(a);
            } else if (!r.ok()) {
              int expect = waiting;
              a.state.compare_exchange_strong(expect, idle);
            }
          }
          busy += a.state.load() != idle;
        }
        if (stopping && busy == 0) break;

        std::deque<int> batch;
        {
          std::unique_lock lk(queue_mu);
          queue_cv.wait_for(lk, std::chrono::microseconds(200), [&] { return !woken.empty(); });
          batch.swap(woken);
        }
        for (int i : batch) {
          AsyncTask& a = async[i];
          Result<LockStep> r = locks[a.lock_index.load()]->lock.try_finish(*a.task);
          CHECK(r.ok());
          if (r.ok() && *r == LockStep::acquired) {
            granted(a);
            ++by_dispatcher;
          } else if (r.ok() && *r == LockStep::not_waiting) {
            ++stale;
          }
        }
      }
      drained = true;
    });

    std::thread canceller([&] {
      std::mt19937 rng(11);
      while (!stop.load()) {
        std::this_thread::sleep_for(std::chrono::microseconds(400));
        AsyncTask& a = async[std::uniform_int_distribution<int>(0, kAsync - 1)(rng)];
        if (a.state.load() != waiting) continue;
        const Errno why = (rng() & 1) ? Errno{EINTR} : Errno{ETIMEDOUT};
        Result<LockStep> r = locks[a.lock_index.load()]->lock.cancel_wait(*a.task, why);
        if (!r.ok()) {
          CHECK(r.error() == why);
          int expect = waiting;
          CHECK(a.state.compare_exchange_strong(expect, idle));
          ++cancelled;
        } else if (*r == LockStep::acquired) {
          granted(a);  // the dispatcher will release it
          ++by_canceller;
        }
      }
    });

    std::vector<std::thread> blockers;
    for (int i = 0; i < kBlocking; ++i) {
      blockers.emplace_back([&, i] {
        RtTask& me = *blocking[i];
        std::mt19937 rng(500u + static_cast<unsigned>(i));
        while (!stop.load()) {
          Guarded& g = *locks[std::uniform_int_distribution<int>(0, kLocks - 1)(rng)];
          if (rng() % 2 == 0) {
            g.lock.lock(me);
          } else if (!g.lock.lock_timed(me, Clock::now() + milliseconds(2))) {
            continue;
          }
          g.enter();
          std::this_thread::yield();
          g.leave();
          g.lock.unlock(me);
        }
      });
    }

    std::this_thread::sleep_for(kBudget);
    stop = true;
    canceller.join();
    for (auto& t : blockers) t.join();
    dispatcher.join();
  }

  MESSAGE("granted via try_finish/begin_lock=", by_dispatcher.load(),
          " via cancel_wait=", by_canceller.load(), " cancelled=", cancelled.load(),
          " stale wake-ups=", stale.load());
  CHECK(drained.load());
  CHECK(by_dispatcher.load() > 0);
  std::vector<RtTask*> raw;
  for (AsyncTask& a : async) {
    CHECK(a.state.load() == idle);
    raw.push_back(a.task.get());
  }
  for (auto& t : blocking) raw.push_back(t.get());
  check_quiescent(locks, raw);
}

}  // TEST_SUITE
