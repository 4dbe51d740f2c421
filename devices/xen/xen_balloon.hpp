#pragma once

// The Xen balloon driver of this guest: /sys/devices/system/xen_memory/
// xen_memory0/ and the worker that moves the guest's memory towards the
// target by asking the (simulated) hypervisor for frames or handing them
// back.
//
// Kernel sources followed: drivers/xen/xen-balloon.c (the sysfs files,
// balloon_set_new_target callers) and drivers/xen/balloon.c (balloon_process,
// increase_reservation, decrease_reservation, update_schedule,
// current_credit) of upstream 2.6.39+ [T], which is the 2009 patch "balloon:
// try harder to balloon up under memory pressure" [XC] (no hard limit,
// partial grants kept, growth retried on the timer) plus Daniel Kiper's
// exponential back-off. Reference: docs/kernel-semantics.md sections 3.1, 3.2
// (files by era), 3.3 (write semantics), 3.6 and 3.7 (algorithm); 1.4 for
// device_show_ulong/device_store_ulong.
//
//   file (devices/system/xen_memory/xen_memory0/)  mode  format
//   target_kb                 0644  "%lu\n" KiB; store: EPERM without
//                                   CAP_SYS_ADMIN, simple_strtoull(buf,0)*1024
//   target                    0644  "%llu\n" bytes; store: EPERM, memparse
//   schedule_delay            0444  "%lx\n" seconds (hex: device_show_ulong)
//   max_schedule_delay        0644  "%lx\n"; store kstrtoul(buf, 0)
//   retry_count               0444  "%lx\n"
//   max_retry_count           0644  "%lx\n"; store kstrtoul(buf, 0); 0 = unlimited
//   info/current_kb           0444  "%lu\n" KiB
//   info/low_kb               0444  "%lu\n" KiB in the balloon (low memory)
//   info/high_kb              0444  "%lu\n" KiB in the balloon (high memory: 0)
//   uevent                    0644  empty; store: kobject_synth_uevent
//   subsystem                 link  ../../../../bus/xen_memory
// plus bus/xen_memory/ (xen_balloon_bus.hpp) and the guest's knobs under
// kernel/debug/vsysfs/xen/guest/ (0600/0400):
//   used_kb    0600  pages the guest's workload holds (KiB); the balloon can
//                    only take the rest. Above current memory: ENOMEM.
//                    Absent when the machine has a [numa] section: the
//                    guest's memory is then its nodes' memory (current_kb =
//                    sum of nodeN MemTotal) and its workload is
//                    kernel/debug/vsysfs/numa/alloc's (xen_balloon_memory.hpp).
//   free_kb    0400  free pages in the guest (current - used; with NUMA the
//                    sum of the nodes' MemFree), KiB
//   max_kb     0400  static maximum (current + ballooned), KiB
//   state      0400  the worker's last state: DONE, EAGAIN or ECANCELED
//
// Thread-safety: balloon_mutex guards the stats and the guest memory; every
// show/store and the worker take it (Order: balloon_mutex ->
// xen.hypervisor -> timer internals). The worker runs on the Env clock's
// timer (kernel: the balloon_worker delayed work).

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
  // kernel: enum bp_state.
  enum class BpState { Done, EAgain, ECanceled };
  static std::string_view state_name(BpState s);

  // kernel: ARRAY_SIZE(frame_list) = PAGE_SIZE / sizeof(unsigned long).
  static constexpr std::uint64_t kFrameListSize = 512;

  struct Params {
    DomId domid = 1;
    std::uint64_t target_pages = 0;
    std::uint64_t max_schedule_delay = 32;  // [T] default
    std::uint64_t max_retry_count = 0;      // [T] default: RETRY_UNLIMITED
  };

  XenBalloon(core::Env& env, std::shared_ptr<XenHypervisor> hv, XenGuestMemory memory,
             Params params);
  XenBalloon(const XenBalloon&) = delete;
  XenBalloon& operator=(const XenBalloon&) = delete;

  static std::span<const core::AttributeGroup<XenBalloon>> groups();
  static std::span<const core::AttributeGroup<XenBalloon>> knob_groups();

  void set_kobject(core::Kobject kobj) { kobj_ = kobj; }
  // The guest's memory is a NUMA model's nodes (constant after
  // construction; no lock). The guest/used_kb knob is hidden then: the
  // workload is numa/alloc's.
  bool numa_backed() const { return numa_backed_; }
  // Queues the worker once when the boot target differs from current
  // (balloon_init's initial kick).
  void start();

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
  // Locking: none. Context: FUSE worker.
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

  // --- knobs (Locking: balloon_mutex. Context: FUSE worker) ---------------
  core::Result<std::size_t> used_kb_store(const core::Caller& caller, std::string_view in);

 private:
  // kernel: balloon_set_new_target(). Locking: takes balloon_mutex.
  void balloon_set_new_target(const core::Caller& caller, std::uint64_t target,
                              std::string_view via);
  // kernel: schedule_delayed_work(&balloon_worker, delay): a no-op when
  // the work is already pending.
  void schedule_delayed_work_locked(core::Nanos delay) REQUIRES(balloon_mutex_);
  // schedule_delay seconds as a timer delay (see the .cpp for 0 and caps).
  static core::Nanos backoff_delay(std::uint64_t delay_s);

  // --- the worker (xen_balloon_worker.cpp) ---------------------------------
  struct Step {
    const char* direction = "none";
    std::uint64_t requested = 0;
    std::uint64_t granted = 0;
    long error = 0;  // negative errno from the hypercall, if any
  };
  // Timer callback. Locking: takes balloon_mutex. Context: timer.
  void balloon_process();
  long current_credit_locked() const REQUIRES(balloon_mutex_);
  BpState increase_reservation_locked(std::uint64_t nr_pages, Step& step)
      REQUIRES(balloon_mutex_);
  BpState decrease_reservation_locked(std::uint64_t nr_pages, Step& step)
      REQUIRES(balloon_mutex_);
  BpState update_schedule_locked(BpState state) REQUIRES(balloon_mutex_);
  void log_step_locked(const Step& step, BpState state, long next_delay_s)
      REQUIRES(balloon_mutex_);

  core::Env& env_;
  const std::shared_ptr<XenHypervisor> hv_;
  const DomId domid_;
  const bool numa_backed_;
  core::Kobject kobj_;

  mutable core::Mutex balloon_mutex_{"xen.balloon_mutex", 10};  // Order: before xen.hypervisor (20)
  XenGuestMemory mem_ GUARDED_BY(balloon_mutex_);
  // kernel: struct balloon_stats (current/low/high live in mem_).
  std::uint64_t target_pages_ GUARDED_BY(balloon_mutex_);
  std::uint64_t schedule_delay_ GUARDED_BY(balloon_mutex_) = 1;
  std::uint64_t max_schedule_delay_ GUARDED_BY(balloon_mutex_);
  std::uint64_t retry_count_ GUARDED_BY(balloon_mutex_) = 1;
  std::uint64_t max_retry_count_ GUARDED_BY(balloon_mutex_);
  BpState last_state_ GUARDED_BY(balloon_mutex_) = BpState::Done;

  core::Timer balloon_worker_;  // last member: destroyed (and synced) first
};

}  // namespace vsysfs::devices
