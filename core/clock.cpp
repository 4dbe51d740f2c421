#include "core/clock.hpp"

#include <sys/prctl.h>

namespace vsysfs::core {

Clock::~Clock() = default;

Clock::TimerId Clock::add_timer(Nanos deadline, Callback fn, std::uint64_t order) {
  TimerId id;
  {
    MutexLock lock(mu_);
    id = next_id_++;
    const Key key{deadline, order != 0 ? order : id, id};
    timers_.emplace(key, std::move(fn));
    key_of_.emplace(id, key);
  }
  timers_changed();
  return id;
}

bool Clock::cancel_timer(TimerId id) {
  MutexLock lock(mu_);
  auto it = key_of_.find(id);
  if (it == key_of_.end()) return false;
  timers_.erase(it->second);
  key_of_.erase(it);
  return true;
}

void Clock::sync() {
  MutexLock lock(mu_);
  // A callback that cancels its own timer must not wait for itself.
  if (running_callback_ && runner_ == std::this_thread::get_id()) return;
  while (running_callback_) idle_cv_.wait(mu_);
}

std::size_t Clock::pending_timers() const {
  MutexLock lock(mu_);
  return timers_.size();
}

bool Clock::next_deadline_except(std::initializer_list<TimerId> skip, Nanos* out) const {
  MutexLock lock(mu_);
  for (const auto& [key, fn] : timers_) {
    if (std::find(skip.begin(), skip.end(), key.id) != skip.end()) continue;
    *out = key.deadline;
    return true;
  }
  return false;
}

bool Clock::next_deadline(Nanos* out) const {
  MutexLock lock(mu_);
  if (timers_.empty()) return false;
  *out = timers_.begin()->first.deadline;
  return true;
}

std::size_t Clock::run_due(Nanos limit, const std::function<void(Nanos)>& set_now,
                           const std::function<bool()>& stop, bool* stopped) {
  std::size_t ran = 0;
  for (;;) {
    if (stop && ran % kInterruptCheckEvery == 0 && ran > 0 && stop()) {
      if (stopped) *stopped = true;
      break;
    }
    Callback fn;
    {
      MutexLock lock(mu_);
      while (running_callback_) idle_cv_.wait(mu_);
      if (timers_.empty() || timers_.begin()->first.deadline > limit) break;
      auto node = timers_.extract(timers_.begin());
      key_of_.erase(node.key().id);
      if (set_now) set_now(node.key().deadline);
      fn = std::move(node.mapped());
      running_callback_ = true;
      runner_ = std::this_thread::get_id();
    }
    fn();
    ++ran;
    {
      MutexLock lock(mu_);
      running_callback_ = false;
    }
    idle_cv_.notify_all();
  }
  return ran;
}

// --- ManualClock -------------------------------------------------------------

Nanos ManualClock::now() const {
  MutexLock lock(mu_);
  return now_;
}

void ManualClock::set_time(Nanos t) {
  MutexLock serial(advance_mu_);
  MutexLock lock(mu_);
  now_ = limit_ = claimed_ = t;
}

Nanos ManualClock::claim_horizon(Nanos want) {
  MutexLock lock(mu_);
  const Nanos h = std::max(std::min(want, limit_), now_);
  claimed_ = std::max(claimed_, h);
  return h;
}

ManualClock::Advanced ManualClock::advance(Nanos step, const std::function<bool()>& interrupted) {
  // How often a waiting advance looks at its own interruption.
  constexpr auto kWaitPoll = std::chrono::milliseconds(20);
  std::unique_lock serial(advance_mu_, std::defer_lock);
  if (interrupted) {
    while (!serial.try_lock_for(kWaitPoll))
      if (interrupted()) return {Nanos{0}, true};
  } else {
    serial.lock();
  }
  Nanos start, target;
  {
    MutexLock lock(mu_);
    start = now_;
    target = now_ + step;
    limit_ = target;
    claimed_ = start;
  }
  // set_now runs with mu_ held (inside run_due).
  const auto set_now = [this](Nanos deadline) {
    mu_.assert_held();
    if (deadline > now_) now_ = deadline;
  };
  bool stopped = false;
  run_due(target, set_now, interrupted, &stopped);
  if (stopped) {
    // End at the next whole millisecond past the start that the timers
    // already run have reached: the applied part is then exactly an
    // advance of N ms (what the state journal records), at the cost of
    // at most a millisecond of timers more.
    // A callback that simulated ahead (claim_horizon) got as far as its
    // claim: the step ends at or after it.
    Nanos reached;
    {
      MutexLock lock(mu_);
      reached = std::max(now_, claimed_);
    }
    constexpr Nanos kMs = std::chrono::milliseconds(1);
    const Nanos done = reached - start;
    const Nanos whole = ((done + kMs - Nanos{1}) / kMs) * kMs;
    if (whole < step) {
      target = start + whole;
      {
        MutexLock lock(mu_);
        limit_ = target;
      }
      run_due(target, set_now);
    } else {
      stopped = false;  // it had finished anyway
      run_due(target, set_now);
    }
  }
  MutexLock lock(mu_);
  now_ = limit_ = target;
  return {target - start, stopped};
}

// --- SystemClock -------------------------------------------------------------

SystemClock::SystemClock() : start_(std::chrono::steady_clock::now()) {}

void SystemClock::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

SystemClock::~SystemClock() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Nanos SystemClock::now() const {
  return std::chrono::duration_cast<Nanos>(std::chrono::steady_clock::now() - start_);
}

void SystemClock::timers_changed() { cv_.notify_all(); }

void SystemClock::loop() {
  // The thread's timer slack is 1 ns, not the default 50 us: timers of a
  // simulated device are often due a few microseconds apart (a transmit,
  // its completion), and with the default slack a wait for one may sleep
  // 50 us longer (a real-clock traffic run on lo: 7700 -> 13000 frames/s;
  // with the no-wait path below 660000; docs/performance.md).
  (void)::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  for (;;) {
    {
      MutexLock lock(mu_);
      if (stop_) return;
    }
    run_due(now(), nullptr);
    Nanos next;
    const bool have = next_deadline(&next);
    // A timer armed while the ones due ran (a traffic run behind its
    // schedule re-arms for now) is due already: run it without a wait.
    if (have && next <= now()) continue;
    MutexLock lock(mu_);
    if (stop_) return;
    if (have) {
      cv_.wait_until(mu_, start_ + next);
    } else {
      cv_.wait(mu_);
    }
  }
}

// --- Timer -------------------------------------------------------------------

void Timer::mod_timer(Nanos deadline) {
  MutexLock lock(mu_);
  arm_locked(deadline, 0);
}

void Timer::arm_locked(Nanos deadline, std::uint64_t order) {
  if (shut_down_) return;  // the owner is going away
  if (id_ != 0) clock_.cancel_timer(id_);
  expires_ = deadline;
  // The callback learns its own id through `mine`, written below while mu_
  // is held; it compares under mu_, so a stale firing (the timer was
  // re-armed or deleted meanwhile) does nothing.
  auto mine = std::make_shared<Clock::TimerId>(0);
  id_ = clock_.add_timer(
      deadline,
      [this, mine] {
        {
          MutexLock inner(mu_);
          if (id_ == 0 || id_ != *mine) return;
          id_ = 0;
        }
        fn_();
      },
      order);
  *mine = id_;
  order_ = order != 0 ? order : id_;
}

TimerState Timer::state() const {
  MutexLock lock(mu_);
  return {.pending = id_ != 0, .expires = expires_, .order = id_ != 0 ? order_ : 0};
}

void Timer::restore(const TimerState& s) {
  MutexLock lock(mu_);
  if (s.pending) {
    arm_locked(s.expires, s.order);
    return;
  }
  if (id_ != 0) clock_.cancel_timer(id_);
  id_ = 0;
  expires_ = s.expires;
}

bool Timer::del_timer() {
  MutexLock lock(mu_);
  if (id_ == 0) return false;
  const bool was = clock_.cancel_timer(id_);
  id_ = 0;
  return was;
}

void Timer::del_timer_sync() {
  do {
    del_timer();
    clock_.sync();
  } while (pending());
}

void Timer::shutdown_sync() {
  {
    MutexLock lock(mu_);
    shut_down_ = true;
  }
  del_timer_sync();
}

bool Timer::pending() const {
  MutexLock lock(mu_);
  return id_ != 0;
}

Clock::TimerId Timer::armed_id() const {
  MutexLock lock(mu_);
  return id_;
}

Nanos Timer::expires() const {
  MutexLock lock(mu_);
  return expires_;
}

}  // namespace vsysfs::core
