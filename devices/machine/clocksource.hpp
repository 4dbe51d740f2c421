#pragma once

// The clocksource subsystem's sysfs device: /sys/devices/system/clocksource
// (kernel/time/clocksource.c, Linux 6.12: init_clocksource_sysfs registers
// the "clocksource" subsys and its device 0; clocksource_attrs).
//
//   devices/system/clocksource/
//     uevent                          0644  empty (the subsystem root)
//     clocksource0/
//       current_clocksource           0644  "%s\n" the current clocksource;
//                                           store: sysfs_get_uname (EINVAL for
//                                           0 or >= CS_NAME_LEN (32) bytes; one
//                                           '\n' stripped), the override name;
//                                           clocksource_select then picks it if
//                                           registered, else keeps the best (a
//                                           name that is not registered is
//                                           remembered, no error); "\n" clears
//                                           the override
//       available_clocksource         0444  each registered name followed by ' ',
//                                           then '\n', in rating order
//       unbind_clocksource            0200  sysfs_get_uname, then ENODEV for no
//                                           such clocksource; clocksource_unbind:
//                                           the watchdog is replaced first and the
//                                           current one falls back to the next
//                                           best, EBUSY when there is none; it
//                                           leaves available_clocksource
//       uevent                        0644  empty
//       subsystem -> ../../../../bus/clocksource
//   bus/clocksource/                  the subsys (devices/clocksource0)
//
// Which clocksources a machine registers (rating): bare metal tsc (300),
// hpet (250), acpi_pm (200); a Xen guest (a machine with [xen]) also xen
// (400, arch/x86/xen/time.c), which is then current. The watchdog is the
// best clocksource without CLOCK_SOURCE_MUST_VERIFY
// (clocksource_select_watchdog); tsc has that flag only on a machine with
// more than 4 online nodes (arch/x86/kernel/tsc.c check_system_tsc_reliable).
// All are continuous, so all are valid for high resolution and listed in
// oneshot (NO_HZ) mode.
//
// Thread-safety: clocksource_mutex (mu_) guards the list, the current
// clocksource, the override name and the watchdog.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/state_record.hpp"
#include "core/thread_annotations.hpp"

namespace vsysfs::devices {

class Clocksource {
 public:
  struct Source {
    std::string name;
    int rating = 0;
    bool must_verify = false;  // CLOCK_SOURCE_MUST_VERIFY: never the watchdog
  };
  static constexpr std::size_t kCsNameLen = 32;  // CS_NAME_LEN

  // `sources` in any order; registered by rating (clocksource_enqueue).
  Clocksource(core::Env& env, std::vector<Source> sources);

  static std::span<const core::AttributeGroup<Clocksource>> groups();

  // Locking: mu_. Context: FUSE worker.
  core::Status current_clocksource_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> current_clocksource_store(const core::Caller& caller,
                                                      std::string_view in);
  core::Status available_clocksource_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> unbind_clocksource_store(const core::Caller& caller,
                                                     std::string_view in);
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

  std::string current() const;
  std::string watchdog() const;

  // Machine snapshots (docs/snapshot.md): the registered sources (unbind
  // removes them), the override, the current source and the watchdog.
  // load_state checks the whole record first (EINVAL).
  void save_state(core::StateWriter& w) const;
  core::Status load_state(const core::StateReader& r);

 private:
  void select_locked() REQUIRES(mu_);
  void select_watchdog_locked(bool fallback) REQUIRES(mu_);

  core::Env& env_;
  mutable core::Mutex mu_{"clocksource_mutex"};  // Order: leaf
  std::vector<Source> list_ GUARDED_BY(mu_);     // by rating, best first
  std::string override_name_ GUARDED_BY(mu_);
  std::string current_ GUARDED_BY(mu_);
  std::string watchdog_ GUARDED_BY(mu_);
};

}  // namespace vsysfs::devices
