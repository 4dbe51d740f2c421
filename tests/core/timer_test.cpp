// Timer teardown (core/clock.hpp): destroying a timer whose callback
// re-arms itself must leave nothing in the clock to fire into the freed
// owner (the kernel's timer_shutdown_sync, not a bare del_timer_sync).

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "core/clock.hpp"

using namespace vsysfs::core;

TEST_SUITE("clock") {

TEST_CASE("destroying a self-re-arming timer leaves no entry in the clock") {
  SystemClock clock;
  clock.start();
  for (int round = 0; round < 10; ++round) {
    std::atomic<bool> running{false}, destroying{false};
    Timer* self = nullptr;
    auto t = std::make_unique<Timer>(clock, [&] {
      running = true;
      // Re-arm only once the owner has begun to destroy the timer (its
      // del_timer has run and it waits for this callback), as a kthread's
      // next wake may.
      while (!destroying.load()) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      self->schedule_in(std::chrono::hours(1));
    });
    self = t.get();
    t->schedule_in(Nanos{0});
    while (!running.load()) std::this_thread::yield();
    destroying = true;
    t.reset();
    // Nothing left that would fire into the freed timer an hour from now.
    CHECK(clock.pending_timers() == 0);
  }
}

TEST_CASE("mod_timer after shutdown_sync is ignored") {
  ManualClock clock;
  int fired = 0;
  Timer t(clock, [&] { ++fired; });
  t.shutdown_sync();
  t.schedule_in(std::chrono::milliseconds(1));
  CHECK_FALSE(t.pending());
  clock.advance(std::chrono::milliseconds(5));
  CHECK(fired == 0);
}

}  // TEST_SUITE
