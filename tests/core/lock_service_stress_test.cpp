// Stress test for core/lock_service with real threads: many files, random
// priorities, shared and exclusive flock and POSIX locks, one or two locks
// held at once, LOCK_NB requests, and waits that time out and are cancelled
// (a Ctrl-C), while other threads' releases hand locks over.
//
// What is checked: mutual exclusion per file and lock kind (exclusive alone,
// shared together; counted in the grant callback, before the next release
// can happen), that every request completes exactly once (no waiter lost: a
// bounded wait, then a cancel, then a bounded wait again), that only the
// expected results occur, and that at the end nothing is held, queued or
// boosted. Runs for a wall-clock budget (2 cores, ~10x slower under TSAN).

#include "core/lock_service.hpp"

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_env.hpp"

namespace {

using namespace vsysfs::core;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kFiles = 6;
constexpr int kThreads = 6;
constexpr auto kBudget = milliseconds(1500);
constexpr int kPrios[] = {89, 98, 100, 110, 120, 130, 139};

// Who holds what, per file and lock kind; updated in the grant callback
// and just before the release call.
struct Evidence {
  std::mutex mu;
  std::array<std::array<int, 2>, kFiles> exclusive{};
  std::array<std::array<int, 2>, kFiles> shared{};
  std::atomic<int> violations{0};

  void enter(int file, bool flock, bool excl) {
    std::lock_guard g(mu);
    auto& ex = exclusive[file][flock];
    auto& sh = shared[file][flock];
    if (ex != 0 || (excl && sh != 0)) violations.fetch_add(1);
    ++(excl ? ex : sh);
  }
  void leave(int file, bool flock, bool excl) {
    std::lock_guard g(mu);
    --(excl ? exclusive[file][flock] : shared[file][flock]);
  }
};

// The completion of one request, awaited by its client thread.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  std::optional<Status> st;
  bool wait_for(milliseconds d) {
    std::unique_lock l(mu);
    return cv.wait_for(l, d, [&] { return calls > 0; });
  }
};

struct Stats {
  std::atomic<long> granted{0}, eagain{0}, eintr{0}, edeadlk{0}, lost{0}, double_done{0},
      unexpected{0};
};

}  // namespace

TEST_SUITE("lock_service") {

TEST_CASE("stress: many files, random priorities, cancels; exclusion holds, no waiter is lost") {
  vsysfs::testing::TestEnv env;
  LockService svc(env.env);
  Evidence ev;
  Stats stats;
  std::atomic<std::uint64_t> next_owner{1};
  const auto end = SteadyClock::now() + kBudget;

  auto client = [&](unsigned seed, int tid) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const std::uint64_t process = 1'000'000 + static_cast<std::uint64_t>(tid);  // POSIX owner
    while (SteadyClock::now() < end) {
      const bool flock = pick(2) == 0;
      const int prio = kPrios[pick(std::size(kPrios))];
      // One or two files; flock takes them in ascending order (it has no
      // deadlock detection), POSIX in any order (EDEADLK is a valid answer).
      std::vector<int> files{pick(kFiles)};
      if (pick(3) == 0) {
        int other = pick(kFiles);
        if (other != files[0]) files.push_back(other);
        if (flock && files.size() == 2 && files[1] < files[0]) std::swap(files[0], files[1]);
      }
      struct Held {
        int file;
        std::uint64_t owner;
        bool excl;
      };
      std::vector<Held> held;
      for (int file : files) {
        const bool excl = pick(3) != 0;
        const bool wait = pick(5) != 0;
        const std::uint64_t owner = flock ? next_owner.fetch_add(1) : process;
        LockOwner who{owner, static_cast<pid_t>(100 + tid), "t" + std::to_string(tid), prio};
        auto p = std::make_shared<Pending>();
        auto done = [p, &ev, &stats, file, flock, excl](Status s) {
          std::lock_guard l(p->mu);
          if (++p->calls > 1) stats.double_done.fetch_add(1);
          p->st = s;
          if (s) ev.enter(file, flock, excl);
          p->cv.notify_all();
        };
        const auto ticket = svc.new_ticket();
        // Sometimes the interrupt races ahead of the request.
        if (pick(50) == 0) svc.cancel(ticket);
        const LockType type = excl ? LockType::Write : LockType::Read;
        if (flock) {
          svc.flock(ticket, static_cast<std::uint64_t>(file), "f" + std::to_string(file), who,
                    type, wait, done);
        } else {
          svc.setlk(ticket, static_cast<std::uint64_t>(file), "f" + std::to_string(file), who,
                    type, PosixRange{}, wait, done);
        }
        if (!p->wait_for(milliseconds(pick(4) == 0 ? 0 : 20))) {
          svc.cancel(ticket);  // the client gives up: Ctrl-C
          if (!p->wait_for(milliseconds(10000))) {
            stats.lost.fetch_add(1);
            return;
          }
        }
        std::lock_guard l(p->mu);
        if (*p->st) {
          stats.granted.fetch_add(1);
          held.push_back({file, owner, excl});
        } else if (p->st->error() == Errno{EAGAIN}) {
          stats.eagain.fetch_add(1);
        } else if (p->st->error() == Errno{EINTR}) {
          stats.eintr.fetch_add(1);
        } else if (p->st->error() == Errno{EDEADLK} && !flock) {
          stats.edeadlk.fetch_add(1);
        } else {
          stats.unexpected.fetch_add(1);
        }
      }
      if (!held.empty() && pick(2) == 0) std::this_thread::yield();
      // Release, in any order; POSIX by close (all of the process's locks
      // on that file), flock by LOCK_UN or by close.
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        ev.leave(it->file, flock, it->excl);
        const auto key = static_cast<std::uint64_t>(it->file);
        if (!flock) {
          svc.release_posix(key, it->owner);
        } else if (pick(2) == 0) {
          svc.release_flock(key, it->owner);
        } else {
          LockOwner who{it->owner, static_cast<pid_t>(100 + tid), "t", prio};
          svc.flock(svc.new_ticket(), key, "f" + std::to_string(it->file), who,
                    LockType::Unlock, false, [](Status) {});
        }
      }
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(client, 1234u + static_cast<unsigned>(t), t);
  for (auto& t : threads) t.join();

  CHECK(ev.violations.load() == 0);
  CHECK(stats.lost.load() == 0);
  CHECK(stats.double_done.load() == 0);
  CHECK(stats.unexpected.load() == 0);
  CHECK(stats.granted.load() > 0);
  MESSAGE("granted ", stats.granted.load(), " EAGAIN ", stats.eagain.load(), " EINTR ",
          stats.eintr.load(), " EDEADLK ", stats.edeadlk.load());
  CHECK(svc.contended().empty());
  for (int f = 0; f < kFiles; ++f) CHECK_FALSE(svc.exclusive_holder(static_cast<std::uint64_t>(f)));
}

}  // TEST_SUITE
