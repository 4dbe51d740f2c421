#pragma once

// The Xen balloon driver of this guest: /sys/devices/system/xen_memory/
// xen_memory0/ and the worker that moves the guest's memory towards the
// target by asking the (simulated) hypervisor for frames or handing them
// back.
//
// Two workers, chosen by the machine file ([xen] driver):
//  - "kthread" (default): the 5.15+ (and stable backports) xen-balloon
//    kernel thread of drivers/xen/balloon.c (balloon_thread,
//    balloon_thread_cond, balloon_state): a new target is acted on at once,
//    even during a back-off; after BP_ECANCELED it retries after an hour;
//    writing the same target does not wake it; with an empty balloon and
//    no memory hotplug reserve_additional_memory() clamps target_pages to
//    current_pages (the target files read back the clamped value).
//  - "workqueue": the 2.6.39+ delayed work item balloon_process
//    (schedule_delayed_work: a target written during a back-off waits for
//    the queued retry; after BP_ECANCELED only a target write restarts it;
//    current_credit() limits the credit to the ballooned pages and leaves
//    target_pages as written).
// Both keep the 2009 patch "balloon: try harder to balloon up under memory
// pressure" [XC] (no hard limit, partial grants kept, growth retried on the
// timer) and Daniel Kiper's exponential back-off. Kernel sources:
// drivers/xen/xen-balloon.c (the sysfs files), drivers/xen/balloon.c,
// drivers/xen/mem-reservation.c (xen_scrub_pages). Reference:
// docs/kernel-semantics.md sections 3.1, 3.2 (files by era), 3.3 (write
// semantics), 3.6 and 3.7 (algorithm); 1.4 for device_show_ulong.
//
//   file (devices/system/xen_memory/xen_memory0/)  mode  format
//   target_kb                 0644  "%lu\n" KiB; store: EPERM without
//                                   CAP_SYS_ADMIN, simple_strtoull(buf,0)*1024
//   target                    0644  "%llu\n" bytes; store: EPERM, memparse
//   schedule_delay            0444  "%lx\n" seconds (hex: device_show_ulong)
//   max_schedule_delay        0644  "%lx\n"; store kstrtoul(buf, 0)
//   retry_count               0444  "%lx\n"
//   max_retry_count           0644  "%lx\n"; store kstrtoul(buf, 0); 0 = unlimited
//                                   (default 4: balloon_init since the
//                                   CVE-2019-17351 fix)
//   scrub_pages               0644  "%d\n" (DEVICE_BOOL_ATTR on xen_scrub_pages);
//                                   store kstrtobool (EINVAL); default 1
//   info/current_kb           0444  "%lu\n" KiB
//   info/low_kb               0444  "%lu\n" KiB in the balloon (low memory)
//   info/high_kb              0444  "%lu\n" KiB in the balloon (high memory: 0)
//   uevent                    0644  empty; store: kobject_synth_uevent
//   subsystem                 link  ../../../../bus/xen_memory
// plus bus/xen_memory/ (xen_balloon_bus.hpp) and the guest's knobs under
// kernel/debug/vsysfs/xen/guest/ (0600/0400):
//   used_kb    0600  pages the guest's workload holds (KiB); the balloon can
//                    only take the rest. Above current memory less
//                    kernel_kb: ENOMEM.
//                    Absent when the machine has a [numa] section: the
//                    guest's memory is then its nodes' memory (current_kb =
//                    sum of nodeN MemTotal) and its workload is
//                    kernel/debug/vsysfs/numa/alloc's (xen_balloon_memory.hpp).
//   free_kb    0400  free pages in the guest (current - kernel - used; with
//                    NUMA the sum of the nodes' MemFree), KiB
//   kernel_kb  0400  pages the guest kernel holds from boot ([xen]
//                    kernel_memory; with NUMA the sum of the nodes'
//                    shares), KiB: ballooning never takes them
//   max_kb     0400  static maximum (current + ballooned), KiB
//   state      0400  the worker's last state: DONE, EAGAIN or ECANCELED
//   driver     0400  "kthread" or "workqueue"
//   reserve_kb 0400  totalreserve_pages in KiB: what the kthread's
//                    si_mem_available() keeps back when ballooning down
// and, with the kthread driver, the built-in module parameter
// module/xen/parameters/balloon_boot_timeout (0444, "%u\n", seconds:
// module_param(balloon_boot_timeout, uint, 0444) under
// MODULE_PARAM_PREFIX "xen."; param_sysfs_builtin files it under the
// module name before the dot, "xen").
//
// Thread-safety: balloon_mutex guards the stats and the guest memory; every
// show/store and the worker take it (Order: balloon_mutex ->
// xen.hypervisor -> timer internals). The worker runs on the Env clock's
// timer: the balloon_worker delayed work, or the kthread's
// wait_event_freezable_timeout (a target store that makes
// balloon_thread_cond true re-arms it to now).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/attribute.hpp"
#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/thread_annotations.hpp"
#include "core/tree.hpp"
#include "devices/xen/xen_balloon_memory.hpp"
#include "devices/xen/xen_balloon_hypervisor.hpp"

namespace vsysfs::devices {

class XenBalloon {
 public:
  // kernel: enum bp_state. BP_WAIT (waiting for hotplugged memory to be
  // onlined) needs CONFIG_XEN_BALLOON_MEMORY_HOTPLUG, which is not modelled.
  enum class BpState { Done, EAgain, ECanceled };
  // Which worker drives the balloon (see the top of this file).
  enum class Driver { Kthread, Workqueue };
  static std::string_view state_name(BpState s);

  // kernel: ARRAY_SIZE(frame_list) = PAGE_SIZE / sizeof(unsigned long).
  static constexpr std::uint64_t kFrameListSize = 512;

  struct Params {
    DomId domid = 1;
    std::uint64_t target_pages = 0;
    Driver driver = Driver::Kthread;
    std::uint64_t max_schedule_delay = 32;  // balloon_init
    std::uint64_t max_retry_count = 4;      // balloon_init since 5.4 (and stable)
    bool scrub_pages = true;                // CONFIG_XEN_SCRUB_PAGES_DEFAULT=y
    unsigned balloon_boot_timeout = 180;    // balloon.c, seconds
  };

  XenBalloon(core::Env& env, std::shared_ptr<XenHypervisor> hv, XenGuestMemory memory,
             Params params);
  XenBalloon(const XenBalloon&) = delete;
  XenBalloon& operator=(const XenBalloon&) = delete;

  static std::span<const core::AttributeGroup<XenBalloon>> groups();
  static std::span<const core::AttributeGroup<XenBalloon>> knob_groups();
  // module/xen/parameters (kthread driver only).
  static std::span<const core::AttributeGroup<XenBalloon>> module_param_groups();

  void set_kobject(core::Kobject kobj) { kobj_ = kobj; }
  // The guest's memory is a NUMA model's nodes (constant after
  // construction; no lock). The guest/used_kb knob is hidden then: the
  // workload is numa/alloc's.
  bool numa_backed() const { return numa_backed_; }
  Driver driver() const { return driver_; }
  // Workqueue: queues the worker once when the boot target differs from
  // current (balloon_init's initial kick). Kthread: starts the thread
  // (kthread_run), which runs at once when there is credit and otherwise
  // sleeps for an hour.
  void start();

  // The power cycle (docs/devices/xen.md "Power cycle"). power_off: the
  // machine shut down; the worker stops (its timer too) until boot().
  // boot: the domain is rebuilt with its boot memory, the balloon is as
  // balloon_init leaves it (boot target, back-off and retry state, the
  // module defaults of the tunables; a worker killed by a BUG lives
  // again), and the worker starts as at mount. Locking: balloon_mutex,
  // then xen.hypervisor. Context: the machine's shutdown / boot hooks.
  void power_off();
  void boot();

  // The guest's populated pages equal what the hypervisor accounts to this
  // domain (true whenever no worker step is half-way). Locking:
  // balloon_mutex, then xen.hypervisor. Context: any (tests, invariants).
  bool accounts_agree() const;

  // --- sysfs (Locking: balloon_mutex. Context: FUSE worker) ---------------
  // The shows are one-line table entries (xen_balloon.cpp); the stores:
  core::Result<std::size_t> target_kb_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> target_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> max_schedule_delay_store(const core::Caller& caller,
                                                     std::string_view in);
  core::Result<std::size_t> max_retry_count_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> scrub_pages_store(const core::Caller& caller, std::string_view in);
  core::Status balloon_boot_timeout_show(core::PageBuffer& buf) const;
  // Locking: none. Context: FUSE worker.
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

  // kernel: balloon_set_new_target() as drivers/xen/xen-balloon.c
  // watch_target calls it (xen_xenstore.cpp). Locking: takes balloon_mutex.
  void set_target_from_watch(const core::Caller& caller, std::uint64_t target_pages) {
    balloon_set_new_target(caller, target_pages, "xenstore");
  }

  // --- knobs (Locking: balloon_mutex. Context: FUSE worker) ---------------
  core::Result<std::size_t> used_kb_store(const core::Caller& caller, std::string_view in);
  core::Status driver_show(core::PageBuffer& buf) const;

 private:
  // Machine snapshots (xen_state.cpp, docs/snapshot.md).
  friend class XenStateHandler;

  // kernel: balloon_set_new_target(). Locking: takes balloon_mutex.
  void balloon_set_new_target(const core::Caller& caller, std::uint64_t target,
                              std::string_view via);
  // kernel: schedule_delayed_work(&balloon_worker, delay): a no-op when
  // the work is already pending.
  void schedule_delayed_work_locked(core::Nanos delay) REQUIRES(balloon_mutex_);
  // schedule_delay seconds as a timer delay (see the .cpp for 0 and caps).
  static core::Nanos backoff_delay(std::uint64_t delay_s);

  // --- the worker (xen_balloon_worker.cpp) ---------------------------------
  // One run of the worker (the "step" event): its passes summed.
  struct Step {
    const char* direction = "none";
    std::uint64_t passes = 0;     // loop iterations (frame_lists) in the run
    std::uint64_t requested = 0;  // frames asked for, over the passes
    std::uint64_t granted = 0;    // pages moved, over the passes
    long error = 0;               // negative errno from the last failed hypercall, if any
    std::uint64_t scrubbed = 0;   // pages scrubbed (decrease with xen_scrub_pages)
  };
  // A kthread run ends after this many passes (4 GiB of frame_lists) and
  // goes on from a fresh timer callback, so a target flipped on and on by
  // writers cannot keep the clock's thread in one callback.
  static constexpr unsigned kMaxPassesPerRun = 2048;
  // Workqueue timer callback. Locking: takes balloon_mutex. Context: timer.
  void balloon_process();
  // Kthread: balloon_thread's loop body after its wait, pass after pass
  // while the thread would not sleep, then the next wait. Locking: takes
  // balloon_mutex per pass. Context: timer.
  void balloon_thread();
  void balloon_thread_pass_locked(Step& run) REQUIRES(balloon_mutex_);
  // kernel: balloon_thread_cond(credit) with the credit the thread sampled
  // before it went to sleep.
  bool balloon_thread_cond_locked() const REQUIRES(balloon_mutex_);
  // The thread goes to sleep: samples the credit and arms the timer for
  // the state's timeout, or for now when the condition already holds.
  void balloon_thread_sleep_locked() REQUIRES(balloon_mutex_);
  // kernel: wake_up(&balloon_thread_wq).
  void wake_up_locked() REQUIRES(balloon_mutex_);
  // The kthread's wait timeout for the current state, in seconds.
  std::uint64_t thread_timeout_s_locked() const REQUIRES(balloon_mutex_);
  // kernel: current_credit(). Workqueue (2.6.39 form without memory
  // hotplug): the target limited to current + ballooned pages. Kthread:
  // target - current.
  long current_credit_locked() const REQUIRES(balloon_mutex_);
  BpState increase_reservation_locked(std::uint64_t nr_pages, Step& step)
      REQUIRES(balloon_mutex_);
  BpState decrease_reservation_locked(std::uint64_t nr_pages, Step& step)
      REQUIRES(balloon_mutex_);
  BpState update_schedule_locked(BpState state) REQUIRES(balloon_mutex_);
  // BUG_ON(ret != nr_pages) in decrease_reservation fired: the worker dies.
  void bug_locked(std::uint64_t nr_pages, long ret) REQUIRES(balloon_mutex_);
  void log_step_locked(const Step& step, BpState state, long next_delay_s)
      REQUIRES(balloon_mutex_);

  core::Env& env_;
  const std::shared_ptr<XenHypervisor> hv_;
  const DomId domid_;
  const bool numa_backed_;
  const Driver driver_;
  const unsigned balloon_boot_timeout_;
  core::Kobject kobj_;

  mutable core::Mutex balloon_mutex_{"xen.balloon_mutex", 10};  // Order: before xen.hypervisor (20)
  XenGuestMemory mem_ GUARDED_BY(balloon_mutex_);
  // kernel: struct balloon_stats (current/low/high live in mem_).
  std::uint64_t target_pages_ GUARDED_BY(balloon_mutex_);
  std::uint64_t schedule_delay_ GUARDED_BY(balloon_mutex_) = 1;
  std::uint64_t max_schedule_delay_ GUARDED_BY(balloon_mutex_);
  std::uint64_t retry_count_ GUARDED_BY(balloon_mutex_) = 1;
  std::uint64_t max_retry_count_ GUARDED_BY(balloon_mutex_);
  // kernel: balloon_state (kthread); the workqueue's last state.
  BpState last_state_ GUARDED_BY(balloon_mutex_) = BpState::Done;
  // The credit balloon_thread sampled before its wait (kthread).
  long sleep_credit_ GUARDED_BY(balloon_mutex_) = 0;
  // kernel: xen_scrub_pages (drivers/xen/mem-reservation.c). Frames are
  // counted, not mapped, so it only selects what the step event says.
  bool scrub_pages_ GUARDED_BY(balloon_mutex_);
  // The worker met BUG_ON in decrease_reservation and is gone (until a
  // boot): no run, no wake-up, no re-arm.
  bool worker_dead_ GUARDED_BY(balloon_mutex_) = false;
  // The machine is off: like a dead worker, nothing runs until boot().
  bool powered_off_ GUARDED_BY(balloon_mutex_) = false;
  // What boot() goes back to (balloon_init, the machine file).
  const Params boot_params_;
  const std::uint64_t boot_pages_;       // totalram at mount
  const std::uint64_t boot_used_pages_;  // the flat workload at mount

  // The delayed work item, or the kthread's wait timeout. Last member:
  // destroyed (and synced) first.
  core::Timer balloon_worker_;
};

}  // namespace vsysfs::devices
