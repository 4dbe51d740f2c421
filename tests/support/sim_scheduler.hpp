#pragma once

// SimScheduler: a deterministic stand-in for the scheduler in rt-mutex tests.
// Simulated tasks never run by themselves: a wake-up (wakeup_next_waiter
// making a task pending owner) is only recorded, and the test decides when
// the woken task runs (RtMutex::try_finish) or is interrupted
// (RtMutex::cancel_wait). That is how a test scripts an exact interleaving
// such as "A blocks, C unlocks, B runs before A wakes and steals".
//
// Thread-safety: the wake record is locked, so a real thread may wake a
// simulated task; everything else is for the test's own thread.

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/rt_mutex.hpp"

namespace vsysfs::test {

class SimScheduler {
 public:
  SimScheduler() = default;
  SimScheduler(const SimScheduler&) = delete;
  SimScheduler& operator=(const SimScheduler&) = delete;

  // A task with this kernel prio; pids count up from 1000.
  core::RtTask& spawn(std::string name, int prio);

  // Names of the tasks woken since the last call, in wake order
  // ("A B"), and forgets them.
  std::string take_woken();

 private:
  std::mutex mu_;
  std::vector<std::string> woken_;
  std::deque<std::unique_ptr<core::RtTask>> tasks_;
  int next_pid_ = 1000;
};

// The owner word as the seed's table prints it: "owner bit1 bit0",
// e.g. "NULL 0 0", "C 1 0", "A 1 1".
std::string word(const core::RtMutex& lock);
// The wait queue, top waiter first, with each waiter's key: "A:10 B:50".
std::string queue(const core::RtMutex& lock);
// A task's pi_waiters: "A@L1:10".
std::string pi_waiters(const core::RtTask& task);

}  // namespace vsysfs::test
