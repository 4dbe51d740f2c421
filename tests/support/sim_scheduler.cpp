#include "tests/support/sim_scheduler.hpp"

#include <string>

namespace vsysfs::test {

core::RtTask& SimScheduler::spawn(std::string name, int prio) {
  auto task = std::make_unique<core::RtTask>(std::move(name), next_pid_++, prio);
  task->set_wake_hook([this](core::RtTask& t, core::RtMutex&) {
    std::lock_guard g(mu_);
    woken_.push_back(t.name());
  });
  tasks_.push_back(std::move(task));
  return *tasks_.back();
}

std::string SimScheduler::take_woken() {
  std::lock_guard g(mu_);
  std::string out;
  for (const std::string& n : woken_) out += (out.empty() ? "" : " ") + n;
  woken_.clear();
  return out;
}

std::string word(const core::RtMutex& lock) { return core::to_string(lock.owner_word_state()); }

std::string queue(const core::RtMutex& lock) {
  std::string out;
  for (const core::WaiterInfo& w : lock.waiters()) {
    out += (out.empty() ? "" : " ") + w.task->name() + ":" + std::to_string(w.prio);
  }
  return out;
}

std::string pi_waiters(const core::RtTask& task) {
  std::string out;
  for (const core::PiWaiterInfo& w : task.pi_waiters()) {
    out += (out.empty() ? "" : " ") + w.task->name() + "@" + w.lock->name() + ":" +
           std::to_string(w.prio);
  }
  return out;
}

}  // namespace vsysfs::test
