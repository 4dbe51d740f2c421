#pragma once

// The simulated Xen hypervisor the balloon driver talks to: a host with a
// fixed amount of memory shared by domains. This guest (the one whose
// /sys we present) is one domain; the others come from the machine
// description ([[xen.domain]]) and balloon on their own towards a target at
// a pace in pages per second, driven by the Env clock. This is the scenario
// of the 2009 balloon patch (docs/kernel-semantics.md section 3.6): "some
// guests are ballooning down while others are ballooning up and therefore
// there is temporary memory pressure while things stabilise".
//
// Hypercalls modelled (xen/include/public/memory.h, reached from
// drivers/xen/mem-reservation.c in the guest):
//   XENMEM_populate_physmap      populate_physmap(): grants up to nr frames
//                                from free host memory, partially when it
//                                runs short, never past the domain's
//                                max_pages; returns the number granted
//                                (0 when none) or -ENOMEM from the fault
//                                knob; K/fail/xen_populate caps the grant
//                                at its `pages` (docs/fault-injection.md).
//   XENMEM_decrease_reservation  decrease_reservation(): always takes all
//                                frames back (the guest BUG()s otherwise).
//
// Invariant, after every operation: host free + sum of every domain's
// current == host total (consistent(); asserted by the tests).
//
// Knobs (MOUNT/kernel/debug/vsysfs/xen/, root-only as debugfs):
//   file                      mode  what
//   host_total_kb             0600  host memory; a write (KiB, kstrtoull
//                                   base 0) resizes the host; below the
//                                   domains' current sum: EINVAL
//   host_free_kb              0600  host free memory; a write sets it by
//                                   resizing the host (total = domains +
//                                   free): write 0 to put the host under
//                                   pressure, more to relieve it
//   populate_fail             0600  the next N populate_physmap calls fail
//                                   with -ENOMEM; reads the remaining N
//                                   (K/fail/xen_populate is the common
//                                   vocabulary: with pages 0 a call
//                                   grants nothing)
//   domains                   0400  one line per domain: domid name
//                                   current_kb target_kb max_kb pace
//   domain/NAME/domid         0400  "%u\n"
//   domain/NAME/target_kb     0600  where the domain balloons to (KiB);
//                                   above its max_kb: EINVAL
//   domain/NAME/current_kb    0600  its current allocation; a write sets it
//                                   at once (ENOSPC when the host has not
//                                   enough free memory, EINVAL above max_kb)
//   domain/NAME/max_kb        0400  its max_pages (static maximum)
//   domain/NAME/pace          0600  pages per second it moves (>= 1)
// A failed knob write changes nothing; every change is logged (device
// "xen").
//
// Thread-safety: one mutex (xen.hypervisor) guards the host and every
// domain; the balloon driver calls the hypercalls with its balloon_mutex
// held (Order: balloon_mutex -> xen.hypervisor). The pacing timer callback
// takes only xen.hypervisor.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/thread_annotations.hpp"

namespace vsysfs::devices {

inline constexpr unsigned kXenPageShift = 12;  // PAGE_SHIFT on x86
inline constexpr std::uint64_t kXenPagesPerKb = 4;  // KiB per page (PAGES2KB)

constexpr std::uint64_t xen_pages_to_kb(std::uint64_t pages) { return pages * kXenPagesPerKb; }
constexpr std::uint64_t xen_kb_to_pages(std::uint64_t kb) { return kb / kXenPagesPerKb; }

using DomId = std::uint32_t;

class XenHypervisor;

// One domain other than this guest, with its knob files. Owned by the
// hypervisor; its state is guarded by the hypervisor's mutex.
class XenDomain {
 public:
  XenDomain(XenHypervisor& hv, std::string name, DomId domid)
      : hv_(hv), name_(std::move(name)), domid_(domid) {}

  static std::span<const core::AttributeGroup<XenDomain>> groups();

  const std::string& name() const { return name_; }
  DomId domid() const { return domid_; }

  // Locking: xen.hypervisor. Context: FUSE worker.
  core::Status domid_show(core::PageBuffer& buf) const;
  core::Status target_kb_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> target_kb_store(const core::Caller& caller, std::string_view in);
  core::Status current_kb_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> current_kb_store(const core::Caller& caller, std::string_view in);
  core::Status max_kb_show(core::PageBuffer& buf) const;
  core::Status pace_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> pace_store(const core::Caller& caller, std::string_view in);

 private:
  XenHypervisor& hv_;
  const std::string name_;
  const DomId domid_;
};

class XenHypervisor {
 public:
  struct DomainSpec {
    std::string name;
    DomId domid = 0;
    std::uint64_t current_pages = 0;
    std::uint64_t target_pages = 0;
    std::uint64_t max_pages = 0;
    std::uint64_t pace = 0;  // pages per second; 0 only for this guest (it balloons itself)
  };

  // How often the other domains take a step towards their targets.
  static constexpr std::chrono::seconds kPaceInterval{1};

  // Throws std::invalid_argument when the domains do not fit the host or
  // a name or domid repeats (the machine builder turns it into a
  // ConfigError on the right key).
  XenHypervisor(core::Env& env, std::uint64_t total_pages, DomainSpec guest,
                std::vector<DomainSpec> others);
  XenHypervisor(const XenHypervisor&) = delete;
  XenHypervisor& operator=(const XenHypervisor&) = delete;

  static std::span<const core::AttributeGroup<XenHypervisor>> groups();

  // Starts the other domains' ballooning (arms the pacing timer when any
  // of them is away from its target). Called once the machine is built.
  void start();

  // --- hypercalls (Context: the balloon worker, balloon_mutex held) -------
  // XENMEM_populate_physmap: frames granted (0..nr), or -ENOMEM (fault).
  long populate_physmap(DomId domid, std::uint64_t nr);
  // XENMEM_decrease_reservation: frames released (always nr).
  long decrease_reservation(DomId domid, std::uint64_t nr);
  // The guest reboots: the toolstack destroys the domain (its frames go
  // back to the host) and builds it again with `pages` (xl reboot: the
  // config's memory). Returns the pages it got: fewer when other domains
  // took the host's memory meanwhile. Locking: xen.hypervisor.
  std::uint64_t rebuild_domain(DomId domid, std::uint64_t pages);

  // --- vPMU: do_xenpmu_op (xen/arch/x86/cpu/vpmu.c) ------------------------
  // Xen's `vpmu=` boot option: disabled (Xen's default) fails every op
  // with EOPNOTSUPP; enabled starts in XENPMU_MODE_SELF with `features`
  // (bts 1, ipc 2, arch 4). Called by the builder before start().
  static constexpr std::uint32_t kPmuModeOff = 0, kPmuModeSelf = 1, kPmuModeHv = 2, kPmuModeAll = 4;
  static constexpr std::uint32_t kPmuFeatures = 7;  // INTEL_BTS | IPC_ONLY | ARCH_ONLY
  void set_vpmu_boot(bool enabled, std::uint32_t features);
  // XENPMU_mode_get/set, XENPMU_feature_get/set from the hardware domain:
  // 0 or -errno (EOPNOTSUPP when vPMU is off or the caller has a vLAPIC,
  // i.e. is PVH; EINVAL for a value outside the mask or, for a mode, with
  // more than one bit). No guest VPMU is counted (vpmu_count 0), so the
  // EBUSY of a change while guests use theirs does not arise.
  // Locking: xen.hypervisor. Context: FUSE worker.
  long xenpmu_mode_get(bool has_vlapic, std::uint32_t& out) const;
  long xenpmu_mode_set(bool has_vlapic, std::uint64_t val);
  long xenpmu_feature_get(bool has_vlapic, std::uint32_t& out) const;
  long xenpmu_feature_set(bool has_vlapic, std::uint64_t val);

  // --- observers (Locking: xen.hypervisor) --------------------------------
  std::uint64_t total_pages() const;
  std::uint64_t free_pages() const;
  std::uint64_t domain_current_pages(DomId domid) const;
  std::uint64_t domain_max_pages(DomId domid) const;
  // host free + every domain's current == host total.
  bool consistent() const;
  std::vector<std::shared_ptr<XenDomain>> other_domains() const { return domain_objs_; }

  // --- knobs (Locking: xen.hypervisor. Context: FUSE worker) --------------
  core::Status host_total_kb_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> host_total_kb_store(const core::Caller& caller, std::string_view in);
  core::Status host_free_kb_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> host_free_kb_store(const core::Caller& caller, std::string_view in);
  core::Status populate_fail_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> populate_fail_store(const core::Caller& caller, std::string_view in);
  core::Status domains_show(std::string& out) const;

 private:
  friend class XenDomain;
  // Machine snapshots (xen_state.cpp, docs/snapshot.md).
  friend class XenStateHandler;

  struct Domain {
    DomainSpec spec;
    std::uint64_t& current() { return spec.current_pages; }
  };

  Domain* find_locked(DomId domid) REQUIRES(mu_);
  const Domain* find_locked(DomId domid) const REQUIRES(mu_);
  std::uint64_t used_locked() const REQUIRES(mu_);
  std::uint64_t free_locked() const REQUIRES(mu_) { return total_pages_ - used_locked(); }
  // Arms the pacing timer when some other domain is away from its target.
  void kick_pacing_locked() REQUIRES(mu_);
  // Timer callback: every other domain takes one step of `pace` pages.
  void pace_tick();
  // The knob helpers of XenDomain, one per file; ENODEV once the domain
  // is gone. domain_show prints get(spec) under mu_.
  template <typename Get>
  core::Status domain_show(DomId domid, core::PageBuffer& buf, Get get) const;
  core::Result<std::size_t> domain_target_store(const core::Caller& caller, DomId domid,
                                                std::string_view in);
  core::Result<std::size_t> domain_current_store(const core::Caller& caller, DomId domid,
                                                 std::string_view in);
  core::Result<std::size_t> domain_pace_store(const core::Caller& caller, DomId domid,
                                              std::string_view in);

  core::Env& env_;
  mutable core::Mutex mu_{"xen.hypervisor", 20};  // Order: after balloon_mutex (10)
  std::uint64_t total_pages_ GUARDED_BY(mu_);
  std::vector<Domain> domains_ GUARDED_BY(mu_);  // [0] is this guest
  std::uint64_t populate_fail_ GUARDED_BY(mu_) = 0;
  bool vpmu_enabled_ GUARDED_BY(mu_) = false;  // opt_vpmu_enabled
  std::uint32_t vpmu_mode_ GUARDED_BY(mu_) = kPmuModeOff;
  std::uint32_t vpmu_features_ GUARDED_BY(mu_) = 0;
  std::uint32_t vpmu_boot_features_ GUARDED_BY(mu_) = 0;  // the vpmu= option's
  std::vector<std::shared_ptr<XenDomain>> domain_objs_;  // immutable after construction
  core::Timer pace_timer_;
};

}  // namespace vsysfs::devices
