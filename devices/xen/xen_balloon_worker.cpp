// The balloon worker: drivers/xen/balloon.c balloon_process and its
// helpers, upstream 2.6.39+ form (docs/kernel-semantics.md sections 3.6, 3.7):
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
// Every iteration is one "step" event (device xen_balloon): direction,
// requested and granted frames, current_kb, target_kb, the state after
// update_schedule, schedule_delay, retry_count, the delay before the next
// run (0: runs on now, -1: stops), and the host's free memory.

#include <algorithm>
#include <cerrno>
#include <climits>

#include "core/result.hpp"
#include "devices/xen/xen_balloon.hpp"

namespace vsysfs::devices {

// kernel: current_credit() without CONFIG_XEN_BALLOON_MEMORY_HOTPLUG: the
// guest cannot grow past the pages its balloon holds (its static maximum).
long XenBalloon::current_credit_locked() const {
  balloon_mutex_.assert_held();
  const std::uint64_t target =
      std::min(target_pages_, mem_.totalram_pages() + mem_.ballooned_pages());
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
  step.requested = nr_pages;
  const long rc = hv_->populate_physmap(domid_, nr_pages);
  if (rc <= 0) {
    step.error = rc;
    return BpState::EAgain;
  }
  step.granted = static_cast<std::uint64_t>(rc);
  mem_.populate_from_balloon(step.granted);
  return BpState::Done;
}

// kernel: decrease_reservation(). alloc_page(GFP_BALLOON) one page at a
// time; when the guest has no free page left it stops, hands back what it
// got and returns BP_EAGAIN (it never pushes the guest into OOM).
XenBalloon::BpState XenBalloon::decrease_reservation_locked(std::uint64_t nr_pages, Step& step) {
  balloon_mutex_.assert_held();
  nr_pages = std::min(nr_pages, kFrameListSize);
  step.direction = "decrease";
  step.requested = nr_pages;
  const std::uint64_t got = mem_.alloc_balloon_pages(nr_pages);
  const BpState state = got < nr_pages ? BpState::EAgain : BpState::Done;
  if (got > 0) {
    const long ret = hv_->decrease_reservation(domid_, got);
    // kernel: BUG_ON(ret != nr_pages). Xen always takes back what it is given.
    if (ret != static_cast<long>(got)) step.error = ret < 0 ? ret : -EIO;
  }
  step.granted = got;
  return state;
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
  env_.log(nullptr, "xen_balloon", "step", state_name(state), std::move(data));
}

// kernel: balloon_process(). Locking: balloon_mutex for the whole run, the
// hypervisor's lock inside each hypercall. Context: timer (the clock's
// thread, or the writer of clock/advance_ms with a manual clock).
void XenBalloon::balloon_process() {
  core::MutexLock lock(balloon_mutex_);
  BpState state = BpState::Done;
  long credit;
  do {
    credit = current_credit_locked();
    Step step;
    if (credit > 0) state = increase_reservation_locked(static_cast<std::uint64_t>(credit), step);
    if (credit < 0) state = decrease_reservation_locked(static_cast<std::uint64_t>(-credit), step);
    state = update_schedule_locked(state);
    long next_delay_s = -1;
    if (state == BpState::EAgain) {
      next_delay_s = static_cast<long>(std::min<std::uint64_t>(schedule_delay_, LONG_MAX));
    } else if (state == BpState::Done && credit != 0) {
      next_delay_s = 0;
    }
    log_step_locked(step, state, next_delay_s);
  } while (credit != 0 && state == BpState::Done);
  last_state_ = state;

  // Schedule more work if there is some still to be done.
  if (state == BpState::EAgain) schedule_delayed_work_locked(backoff_delay(schedule_delay_));
}

}  // namespace vsysfs::devices
