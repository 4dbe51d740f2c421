#pragma once

// Simulated time. Devices never read the wall clock or sleep: they ask the
// Env's Clock for now() and arm Timers on it (the kernel's timer_list /
// delayed_work analogue).
//
//   SystemClock  time runs in real time (CLOCK_MONOTONIC since mount); a
//                thread fires due timers.
//   ManualClock  time moves only in advance(): every timer whose deadline
//                falls inside the step fires in deadline order, with now()
//                set to its deadline, before advance() returns. Timers a
//                callback arms inside the step fire in the same step.
//                A step can be long (line-rate traffic arms a timer per
//                packet: seconds of work per simulated second), so advance()
//                takes an interruption check, polled every
//                kInterruptCheckEvery timers and while it waits for another
//                advance: once it says stop, the step ends at the next whole
//                millisecond of simulated time (so that the applied part is
//                itself a valid advance_ms store) and advance() says how far
//                it got.
//
// Thread-safety: every member may be called from any thread. Timer callbacks
// run without any clock lock held, one at a time per clock, and may arm or
// cancel timers. A callback runs on the clock's thread (SystemClock) or on
// the thread that called advance() (ManualClock).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "core/locks.hpp"

namespace vsysfs::core {

using Nanos = std::chrono::nanoseconds;

class Clock {
 public:
  using Callback = std::function<void()>;
  using TimerId = std::uint64_t;

  virtual ~Clock();

  // Simulated time since the machine started.
  virtual Nanos now() const = 0;
  virtual bool is_manual() const = 0;

  // Arms a one-shot callback at absolute simulated time `deadline`.
  // Timers due at the same instant run in `order` (lower first), which is
  // the new timer's own id when 0: in the order they were armed. A machine
  // snapshot restore passes a timer's saved order (Timer::restore), so
  // that timers pending at the snapshot run in their old order among
  // themselves and before every timer armed after it (ids only grow).
  TimerId add_timer(Nanos deadline, Callback fn, std::uint64_t order = 0);
  // true when the timer was pending and will not run.
  bool cancel_timer(TimerId id);
  // Waits until no callback is running (del_timer_sync's guarantee for a
  // callback that may be running on another thread right now).
  void sync();

  // Number of armed timers (for tests and the control plane).
  std::size_t pending_timers() const;

  // For a callback that simulates a run of its own events in one go (the
  // traffic generator's batches, devices/net/netdev_traffic_batch.cpp):
  // the earliest deadline of the armed timers other than `skip` (ids of
  // the caller's own timers), or false when there is none.
  bool next_deadline_except(std::initializer_list<TimerId> skip, Nanos* out) const EXCLUDES(mu_);
  // How far such a callback may simulate: `want` capped at the time the
  // timers now running are run to (a manual clock's advance target; a
  // system clock's now()). A manual clock records the claim: an advance
  // interrupted later ends at or after it, never inside what a callback
  // already simulated.
  virtual Nanos claim_horizon(Nanos want) { return std::min(want, now()); }

 protected:
  // Runs every timer with deadline <= limit; returns how many ran. For a
  // manual clock `set_now` moves simulated time to each deadline first.
  // `stop` (if set) is asked every kInterruptCheckEvery timers; when it
  // says true, run_due returns early and sets *stopped. set_now runs with
  // mu_ held.
  std::size_t run_due(Nanos limit, const std::function<void(Nanos)>& set_now,
                      const std::function<bool()>& stop = {}, bool* stopped = nullptr)
      EXCLUDES(mu_);
  // Earliest deadline, if any.
  bool next_deadline(Nanos* out) const EXCLUDES(mu_);
  virtual void timers_changed() {}

  mutable Mutex mu_{"clock.mu"};  // Order: leaf (never held while a callback runs)
  CondVar idle_cv_;

 private:
  struct Key {
    Nanos deadline;
    std::uint64_t order;
    TimerId id;
    auto operator<=>(const Key&) const = default;
  };
  std::map<Key, Callback> timers_ GUARDED_BY(mu_);
  std::map<TimerId, Key> key_of_ GUARDED_BY(mu_);
  TimerId next_id_ GUARDED_BY(mu_) = 1;
  bool running_callback_ GUARDED_BY(mu_) = false;
  std::thread::id runner_ GUARDED_BY(mu_);
};

// How many timers run between two interruption checks: a check costs a
// mutex round trip in libfuse, a timer callback far more.
inline constexpr std::size_t kInterruptCheckEvery = 64;

class ManualClock final : public Clock {
 public:
  struct Advanced {
    Nanos applied{0};          // how far time moved
    bool interrupted = false;  // `interrupted` said stop before the whole step
  };
  Nanos now() const override;
  bool is_manual() const override { return true; }
  // Moves time forward by `step`, firing due timers in order. With an
  // `interrupted` check, a stop request ends the step early at a whole
  // millisecond past the start (applied < step, interrupted set), or
  // before anything ran if it came while waiting for another advance.
  Advanced advance(Nanos step, const std::function<bool()>& interrupted = {});
  Nanos claim_horizon(Nanos want) override;
  // Sets simulated time to `t`, which may be earlier than now (a machine
  // snapshot restore: docs/snapshot.md). Waits for a running advance();
  // armed timers are left alone: their owners re-arm them at the saved
  // deadlines.
  void set_time(Nanos t);

 private:
  // serialises advance(); timed, so that a waiter can poll its own
  // interruption. Order: before mu_
  Mutex advance_mu_{"manual_clock.advance_mu"};
  Nanos now_ GUARDED_BY(mu_){0};
  // The target of the advance in progress (now_ between advances), and
  // the furthest time a callback claimed (claim_horizon) in this advance.
  Nanos limit_ GUARDED_BY(mu_){0};
  Nanos claimed_ GUARDED_BY(mu_){0};
};

class SystemClock final : public Clock {
 public:
  SystemClock();
  ~SystemClock() override;
  // Starts the timer thread. Separate from construction because the daemon
  // forks into the background after building the machine, and a fork keeps
  // no threads.
  void start();
  Nanos now() const override;
  bool is_manual() const override { return false; }

 private:
  void timers_changed() override;
  void loop();

  const std::chrono::steady_clock::time_point start_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// What a device's snapshot keeps of one Timer (docs/snapshot.md "Device
// state"): whether it is pending, its absolute deadline, and its place
// among timers due at the same instant.
struct TimerState {
  bool pending = false;
  Nanos expires{0};
  std::uint64_t order = 0;
  bool operator==(const TimerState&) const = default;
};

// A re-armable one-shot timer owned by a device (kernel: struct timer_list
// with mod_timer/del_timer_sync). Destruction is timer_shutdown_sync():
// later mod_timer() calls are ignored, then it cancels and waits for a
// running callback, so a callback that re-arms its own timer (the Xen
// kthread's hourly wake) cannot leave an entry behind that fires into a
// freed owner.
class Timer {
 public:
  Timer(Clock& clock, Clock::Callback fn) : clock_(clock), fn_(std::move(fn)) {}
  ~Timer() { shutdown_sync(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Arms (or re-arms) at absolute time `deadline`.
  void mod_timer(Nanos deadline);
  // Arms `delay` from now.
  void schedule_in(Nanos delay) { mod_timer(clock_.now() + delay); }
  // true when it was pending.
  bool del_timer();
  // Cancels and waits for a running callback; again if that callback
  // re-armed the timer meanwhile.
  void del_timer_sync();
  // timer_shutdown_sync: no re-arming from now on, then del_timer_sync().
  void shutdown_sync();
  bool pending() const;
  Nanos expires() const;
  // Snapshot support: the timer now, and re-arming it as `s` says (a
  // pending state at its deadline and order; else only `expires` is
  // kept). The owner cancels the timer (del_timer_sync) before restoring.
  TimerState state() const;
  void restore(const TimerState& s);
  // The clock's id of the pending arming, 0 when idle. Ids grow with every
  // arming and timers due at the same instant fire in id order, so a
  // device that re-arms several timers after a snapshot restore re-arms
  // them in the order of their saved ids (docs/snapshot.md).
  Clock::TimerId armed_id() const;

 private:
  void arm_locked(Nanos deadline, std::uint64_t order) REQUIRES(mu_);

  Clock& clock_;
  Clock::Callback fn_;
  mutable Mutex mu_{"timer.mu"};  // Order: before Clock::mu_
  Clock::TimerId id_ GUARDED_BY(mu_) = 0;
  std::uint64_t order_ GUARDED_BY(mu_) = 0;  // of the pending entry
  bool shut_down_ GUARDED_BY(mu_) = false;
  Nanos expires_ GUARDED_BY(mu_){0};
};

}  // namespace vsysfs::core
