// The balloon workers: drivers/xen/balloon.c (docs/kernel-semantics.md
// sections 3.6, 3.7).
//
// Kthread (5.15+, the default): balloon_thread's loop,
//
//   for (;;) {
//     timeout = DONE/ECANCELED: 3600 s; EAGAIN: schedule_delay s;
//     credit = current_credit();
//     wait_event_freezable_timeout(balloon_thread_wq,
//                                  balloon_thread_cond(credit), timeout);
//     mutex_lock(&balloon_mutex);
//     credit = current_credit();
//     if (credit > 0) balloon_state = balloon_is_inflated()
//                         ? increase_reservation(credit)
//                         : reserve_additional_memory();
//     if (credit < 0) { n = min(-credit, si_mem_available());
//                       balloon_state = decrease_reservation(n, GFP_BALLOON);
//                       if (DONE && n != -credit && n < totalreserve_pages)
//                           balloon_state = BP_EAGAIN; }
//     update_schedule();
//     mutex_unlock(&balloon_mutex);
//   }
//
// is one timer callback per pass; the wait is the timer's delay, and a
// target store that makes balloon_thread_cond true re-arms it to now.
//
// Workqueue (2.6.39-5.14): balloon_process,
//
//   do {
//     credit = current_credit();
//     if (credit > 0) state = increase_reservation(credit);
//     if (credit < 0) state = decrease_reservation(-credit, GFP_BALLOON);
//     state = update_schedule(state);
//   } while (credit && state == BP_DONE);
//   if (state == BP_EAGAIN)
//     schedule_delayed_work(&balloon_worker, balloon_stats.schedule_delay * HZ);
//
// One "step" event (device xen_balloon) per run, not per frame_list: a
// balloon_process run, or a kthread run (the passes the thread makes
// without sleeping: after a BP_DONE pass with credit left,
// balloon_thread_cond holds at once and wait_event returns without
// waiting). Its data: direction, passes (loop iterations), requested and
// granted frames summed over them (granted = the pages moved), current_kb,
// target_kb, the state after the last update_schedule, schedule_delay,
// retry_count, the delay before the next run (0: runs on now, -1: stops),
// the host's free memory, and the errno / scrubbed pages of the run if
// any. A decrease that finds no free page is a pass with granted 0 and
// state EAGAIN: the back-off of any failed step.

#include <algorithm>
#include <cerrno>
#include <climits>

#include "core/result.hpp"
#include "devices/xen/xen_balloon.hpp"

namespace vsysfs::devices {

// kernel: current_credit(). Workqueue: the 2.6.39 form without
// CONFIG_XEN_BALLOON_MEMORY_HOTPLUG: the guest cannot grow past the pages
// its balloon holds (its static maximum), and target_pages stays as
// written. Kthread (6.12): target - current; reserve_additional_memory()
// clamps the target once the balloon is empty.
long XenBalloon::current_credit_locked() const {
  balloon_mutex_.assert_held();
  std::uint64_t target = target_pages_;
  if (driver_ == Driver::Workqueue)
    target = std::min(target, mem_.totalram_pages() + mem_.ballooned_pages());
  return static_cast<long>(target) - static_cast<long>(mem_.totalram_pages());
}

// kernel: increase_reservation(). At most one frame_list of pages per step;
// rc <= 0 from XENMEM_populate_physmap is BP_EAGAIN; a partial grant keeps
// the pages it got and is BP_DONE (the 2009 patch: "we may as well keep
// those pages rather than returning them to Xen").
XenBalloon::BpState XenBalloon::increase_reservation_locked(std::uint64_t nr_pages, Step& step) {
  balloon_mutex_.assert_held();
  nr_pages = std::min({nr_pages, kFrameListSize, mem_.ballooned_pages()});
  step.direction = "increase";
  step.requested += nr_pages;
  const long rc = hv_->populate_physmap(domid_, nr_pages);
  if (rc <= 0) {
    step.error = rc;
    return BpState::EAgain;
  }
  step.granted += static_cast<std::uint64_t>(rc);
  mem_.populate_from_balloon(static_cast<std::uint64_t>(rc));
  return BpState::Done;
}

// kernel: decrease_reservation(). alloc_page(GFP_BALLOON) one page at a
// time; when the guest has no free page left it stops, hands back what it
// got and returns BP_EAGAIN (it never pushes the guest into OOM).
XenBalloon::BpState XenBalloon::decrease_reservation_locked(std::uint64_t nr_pages, Step& step) {
  balloon_mutex_.assert_held();
  nr_pages = std::min(nr_pages, kFrameListSize);
  step.direction = "decrease";
  step.requested += nr_pages;
  // alloc_page fails once every node in the fallback order is out of free
  // pages; the kernel's own pages are never free, so it stops above them.
  const std::uint64_t got = mem_.alloc_balloon_pages(nr_pages);
  const BpState state = got < nr_pages ? BpState::EAgain : BpState::Done;
  if (got > 0) {
    const long ret = hv_->decrease_reservation(domid_, got);
    // kernel: BUG_ON(ret != nr_pages). Xen always takes back what it is
    // given; one that did not (K/fail/xen_decrease) meets the BUG: the
    // pages are in the balloon already (balloon_append runs before the
    // hypercall) and current_pages is never lowered.
    if (ret != static_cast<long>(got)) {
      step.error = ret < 0 ? ret : -EIO;
      bug_locked(got, ret);
    }
  }
  step.granted += got;
  // xenmem_reservation_scrub_page: clears each page when xen_scrub_pages.
  if (scrub_pages_) step.scrubbed += got;
  return state;
}

// BUG() in the balloon worker (oops, die(), make_task_dead): the kernel
// prints "kernel BUG at drivers/xen/balloon.c" and kills the task, which
// holds balloon_mutex and never drops it. With panic_on_oops unset (the
// default) the guest runs on: the sysfs files still answer (they read
// balloon_stats without the mutex), a target store still stores, but no
// worker ever runs again until the next boot. The simulation keeps its
// own mutex free (a reader must never hang) and stops the worker instead.
void XenBalloon::bug_locked(std::uint64_t nr_pages, long ret) {
  balloon_mutex_.assert_held();
  worker_dead_ = true;
  balloon_worker_.del_timer();
  env_.log(nullptr, "xen_balloon", "bug", "BUG",
           {{"file", "drivers/xen/balloon.c"},
            {"function", "decrease_reservation"},
            {"condition", "ret != nr_pages"},
            {"nr_pages", nr_pages},
            {"ret", ret},
            {"task", driver_ == Driver::Kthread ? "xen-balloon" : "kworker"}});
}

// kernel: update_schedule().
XenBalloon::BpState XenBalloon::update_schedule_locked(BpState state) {
  balloon_mutex_.assert_held();
  if (state == BpState::Done) {
    schedule_delay_ = 1;
    retry_count_ = 1;
    return BpState::Done;
  }
  ++retry_count_;
  if (max_retry_count_ != 0 && retry_count_ > max_retry_count_) {  // RETRY_UNLIMITED == 0
    schedule_delay_ = 1;
    retry_count_ = 1;
    return BpState::ECanceled;
  }
  // Kernel quirk: an unsigned long shift: with a max_schedule_delay of
  // 2^63 or more the delay doubles past the top bit to 0 and stays there.
  schedule_delay_ <<= 1;
  if (schedule_delay_ > max_schedule_delay_) schedule_delay_ = max_schedule_delay_;
  return BpState::EAgain;
}

void XenBalloon::log_step_locked(const Step& step, BpState state, long next_delay_s) {
  balloon_mutex_.assert_held();
  std::vector<core::EventField> data = {
      {"direction", step.direction},
      {"passes", step.passes},
      {"requested", step.requested},
      {"granted", step.granted},
      {"current_kb", xen_pages_to_kb(mem_.totalram_pages())},
      {"target_kb", xen_pages_to_kb(target_pages_)},
      {"state", state_name(state)},
      {"schedule_delay", schedule_delay_},
      {"retry_count", retry_count_},
      {"next_delay_s", next_delay_s},
      {"host_free_kb", xen_pages_to_kb(hv_->free_pages())},
  };
  if (step.error != 0)
    data.emplace_back("error", core::errno_name(static_cast<int>(-step.error)));
  if (step.scrubbed) data.emplace_back("scrubbed", step.scrubbed);
  env_.log(nullptr, "xen_balloon", "step", state_name(state), std::move(data));
}

// kernel: balloon_process(). Locking: balloon_mutex for the whole run, the
// hypervisor's lock inside each hypercall. Context: timer (the clock's
// thread, or the writer of clock/advance_ms with a manual clock).
void XenBalloon::balloon_process() {
  core::MutexLock lock(balloon_mutex_);
  // A run that fired as the machine went off (or the worker died) waits on
  // the mutex, then finds nothing to do.
  if (worker_dead_ || powered_off_) return;
  BpState state = BpState::Done;
  long credit;
  Step run;
  do {
    credit = current_credit_locked();
    ++run.passes;
    if (credit > 0) state = increase_reservation_locked(static_cast<std::uint64_t>(credit), run);
    if (credit < 0) state = decrease_reservation_locked(static_cast<std::uint64_t>(-credit), run);
    if (worker_dead_) return;  // BUG: the kworker died inside the pass
    state = update_schedule_locked(state);
  } while (credit != 0 && state == BpState::Done);
  last_state_ = state;
  long next_delay_s = -1;
  if (state == BpState::EAgain)
    next_delay_s = static_cast<long>(std::min<std::uint64_t>(schedule_delay_, LONG_MAX));
  log_step_locked(run, state, next_delay_s);

  // Schedule more work if there is some still to be done.
  if (state == BpState::EAgain) schedule_delayed_work_locked(backoff_delay(schedule_delay_));
}

}  // namespace vsysfs::devices

namespace vsysfs::devices {

// --- the kthread ------------------------------------------------------------------

std::uint64_t XenBalloon::thread_timeout_s_locked() const {
  balloon_mutex_.assert_held();
  // kernel: balloon_thread's switch (balloon_state); BP_WAIT (1 s) needs
  // memory hotplug.
  return last_state_ == BpState::EAgain ? schedule_delay_ : 3600;
}

// kernel: balloon_thread_cond(): "stop waiting if either state is BP_DONE
// and ballooning action is needed, or if the credit has changed while
// state is not BP_DONE".
bool XenBalloon::balloon_thread_cond_locked() const {
  balloon_mutex_.assert_held();
  const long credit = last_state_ == BpState::Done ? 0 : sleep_credit_;
  return current_credit_locked() != credit;
}

void XenBalloon::balloon_thread_sleep_locked() {
  balloon_mutex_.assert_held();
  if (worker_dead_ || powered_off_) return;  // the thread is gone: no wait, no timeout
  sleep_credit_ = current_credit_locked();
  // wait_event checks the condition before it sleeps.
  if (balloon_thread_cond_locked()) {
    balloon_worker_.schedule_in(core::Nanos{0});
    return;
  }
  balloon_worker_.schedule_in(backoff_delay(thread_timeout_s_locked()));
}

void XenBalloon::wake_up_locked() {
  balloon_mutex_.assert_held();
  if (worker_dead_ || powered_off_) return;  // wake_up of a queue nobody sleeps on
  // A wake-up whose condition is false leaves the thread asleep with its
  // timeout unchanged (same target, or a store that keeps the credit).
  if (balloon_thread_cond_locked()) balloon_worker_.schedule_in(core::Nanos{0});
}

// One pass of the loop body (after the wait), into `run`.
void XenBalloon::balloon_thread_pass_locked(Step& run) {
  balloon_mutex_.assert_held();
  const long credit = current_credit_locked();
  ++run.passes;
  if (credit > 0) {
    if (mem_.ballooned_pages() > 0) {
      last_state_ = increase_reservation_locked(static_cast<std::uint64_t>(credit), run);
    } else {
      // reserve_additional_memory() without CONFIG_XEN_BALLOON_MEMORY_HOTPLUG:
      // the target cannot be reached, so it becomes current_pages (+
      // target_unpopulated: no grant-table user holds ballooned pages here)
      // and the thread gives up. The target files read back the clamped
      // value.
      run.direction = "clamp";
      target_pages_ = mem_.totalram_pages();
      last_state_ = BpState::ECanceled;
    }
  }
  if (credit < 0) {
    const std::uint64_t want = static_cast<std::uint64_t>(-credit);
    const std::uint64_t n = std::min(want, mem_.si_mem_available());
    last_state_ = decrease_reservation_locked(n, run);
    if (last_state_ == BpState::Done && n != want && n < mem_.totalreserve_pages())
      last_state_ = BpState::EAgain;
  }
  // kernel: update_schedule() leaves BP_ECANCELED alone (retry_count and
  // schedule_delay were reset when it was set); a pass with no credit keeps
  // the previous state, so an EAGAIN counts one more retry.
  if (last_state_ != BpState::ECanceled) last_state_ = update_schedule_locked(last_state_);
}

void XenBalloon::balloon_thread() {
  Step run;
  for (unsigned pass = 1;; ++pass) {
    // The kernel drops balloon_mutex after each pass (then cond_resched),
    // so a target store can land between passes; so does this loop.
    core::MutexLock lock(balloon_mutex_);
    if (worker_dead_ || powered_off_) return;
    const std::uint64_t moved = run.granted;
    balloon_thread_pass_locked(run);
    if (worker_dead_) return;  // BUG: the thread died inside the pass
    const long after = current_credit_locked();
    // balloon_thread_cond holds at once after a BP_DONE pass with credit
    // left: the thread runs on without sleeping. A pass that moved nothing
    // or kMaxPassesPerRun passes end the run (the timer re-arms at now,
    // as cond_resched lets others run), so the run is always bounded.
    if (last_state_ == BpState::Done && after != 0 && run.granted > moved &&
        pass < kMaxPassesPerRun)
      continue;
    long next_delay_s = 0;
    if (!(last_state_ == BpState::Done && after != 0))
      next_delay_s =
          static_cast<long>(std::min<std::uint64_t>(thread_timeout_s_locked(), LONG_MAX));
    log_step_locked(run, last_state_, next_delay_s);
    balloon_thread_sleep_locked();
    return;
  }
}

}  // namespace vsysfs::devices
