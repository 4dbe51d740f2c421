#pragma once

// FaultInjection: the kernel's fault-injection framework for the
// simulation (lib/fault-inject.c, include/linux/fault-inject.h,
// Documentation/fault-injection/fault-injection.rst), deterministic.
//
// Each failure point has a FaultSettings, the user-visible part of struct
// fault_attr plus what the point adds (the errno a store or show returns,
// the kind of SMI failure, fail_page_alloc's gfp filters). should_fail()
// is should_fail_ex() check for check, in the kernel's order:
//
//   probability == 0            -> no  (nothing else is looked at)
//   task-filter && caller's pid
//     not in the pids list      -> no  (/proc/PID/make-it-fail)
//   times == 0                  -> no
//   space > size                -> no, space -= size
//   interval > 1: ++count, count % interval != 0 -> no
//   probability <= random below 100 -> no
//   yes: fail_dump() (an event when verbose > 0 and the ratelimit lets it
//   through, unless the point says FAULT_NOWARN); times -= 1 unless -1
//   (atomic_dec_not_zero: a negative times other than -1 keeps going down).
//
// The random numbers come from one generator (splitmix64) seeded by
// K/fail/seed (0 at start): with the manual clock, the same seed and the
// same sequence of requests make the same decisions and the same events.
// The kernel's per-task fail-nth and the stack-trace filter are not
// modelled (the simulation has no call stacks); verbose 2's dump_stack()
// becomes the call site ("site") in the event.
//
// Points (docs/fault-injection.md): store, show (any attribute outside the
// control plane, filtered by a glob list), smi and host_control (dcdbas and
// its simulated BIOS), page_alloc (fail_page_alloc for numa/alloc),
// net_xmit (ndo_start_xmit of devices/net), net_open (ndo_open) and
// net_rx (the NAPI poll of the receiving NIC), filtered by an interface
// list; xen_populate (XENMEM_populate_physmap of the simulated hypervisor
// grants at most `pages` frames); link_flap (a schedule on the simulation
// clock: at the start of each of `count` periods of period_ms, each
// registered interface the decision picks loses its link for down_ms);
// lock (the lock service grants a blocking flock / F_SETLKW request
// delay_ms late, core/lock_service.hpp); xen_decrease
// (XENMEM_decrease_reservation takes back at most `pages` frames, and the
// guest's balloon driver BUGs).
//
// The link_flap schedule: one timer (flap_timer_) for every interface, so
// the decisions of one period are taken in interface-name order and the
// event log is the same in every run. The interfaces register a hook that
// takes their link down or back (devices/net: the PHY of a simulated NIC).
//
// Bounds: the pids list holds at most kMaxPids pids, the glob list at
// most kMaxPaths patterns of at most kMaxPathBytes bytes each, an ifaces
// list at most kMaxIfaces names.
//
// Thread-safety: every member may be called from any thread; one mutex
// (fail.mu, a leaf: it may be taken under any device lock, and events are
// logged after it is released) guards the settings, the generator and the
// pids list. armed() reads an atomic copy of each point's probability so
// the request path costs one load while nothing is armed. The link_flap
// schedule has its own lock (fail.flap, rank 0), held across the hooks so
// that a hook is never called after remove_flap_target returned; the hooks
// take the interfaces' link locks under it, never the other way round.

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/caller.hpp"
#include "core/clock.hpp"
#include "core/event_log.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/state_record.hpp"
#include "core/thread_annotations.hpp"

namespace vsysfs::core {

enum class FaultPoint : std::uint8_t {
  Store,
  Show,
  Smi,
  HostControl,
  PageAlloc,
  NetXmit,
  NetOpen,
  XenPopulate,
  LinkFlap,
  NetRx,
  Lock,
  XenDecrease
};
inline constexpr std::size_t kFaultPointCount = 12;
inline constexpr std::array<FaultPoint, kFaultPointCount> kFaultPoints = {
    FaultPoint::Store,     FaultPoint::Show,    FaultPoint::Smi,     FaultPoint::HostControl,
    FaultPoint::PageAlloc, FaultPoint::NetXmit, FaultPoint::NetOpen, FaultPoint::XenPopulate,
    FaultPoint::LinkFlap,  FaultPoint::NetRx,   FaultPoint::Lock,    FaultPoint::XenDecrease};
// fnmatch(pattern, subject, 0) in time bounded by the product of the
// lengths: '*' and '?' match any byte ('/' too), "[...]" classes with
// ranges and '!'/'^' negation, '\\' quotes.
bool glob_match(std::string_view pattern, std::string_view subject) noexcept;

// "store", "show", "smi", "host_control", "page_alloc", "net_xmit",
// "net_open", "xen_populate", "link_flap", "net_rx", "lock", "xen_decrease":
// the directory name.
std::string_view fault_point_name(FaultPoint p) noexcept;

// What an smi injection does (K/fail/smi/kind).
enum class SmiFault : std::uint8_t {
  NoAnswer,  // "no_answer": nothing handles the SMI; the buffer stays as written
  Error,     // "error": the BIOS answers cbRES1 = K/fail/smi/cbres1 and does nothing
  Short,     // "short": the BIOS acts, but writes only answer_bytes bytes of output[]
};
// What a host_control injection does (K/fail/host_control/kind).
enum class HostControlFault : std::uint8_t {
  Timeout,  // "timeout": the firmware never completes the APM command (ETIME)
  NoPower,  // "no_power": it reports completion but the power action never happens
};

// What a net_xmit injection does (K/fail/net_xmit/kind).
enum class NetXmitFault : std::uint8_t {
  Busy,  // "busy": ndo_start_xmit returns NETDEV_TX_BUSY; the frame is requeued
  Drop,  // "drop": the driver frees the frame, tx_dropped moves, NETDEV_TX_OK
  Hang,  // "hang": the queue is stopped and nothing wakes it until ndo_tx_timeout
};

// What a net_rx injection does to a received frame (K/fail/net_rx/kind).
enum class NetRxFault : std::uint8_t {
  Drop,     // "drop": the driver has no buffer for it: rx_dropped
  Corrupt,  // "corrupt": the MAC flags a CRC error: rx_crc_errors and rx_errors
};

// The gfp bits fail_page_alloc looks at (include/linux/gfp_types.h).
struct Gfp {
  bool highmem = false;         // __GFP_HIGHMEM (GFP_HIGHUSER_MOVABLE)
  bool direct_reclaim = false;  // __GFP_DIRECT_RECLAIM (GFP_KERNEL, GFP_HIGHUSER_MOVABLE)
  bool nofail = false;          // __GFP_NOFAIL
  bool nowarn = false;          // __GFP_NOWARN: FAULT_NOWARN, no fail_dump
};

struct FaultSettings {
  // struct fault_attr (FAULT_ATTR_INITIALIZER defaults).
  unsigned long probability = 0;  // percent; above 100 acts as 100
  unsigned long interval = 1;
  int times = 1;  // atomic_t; -1: no limit
  int space = 0;  // atomic_t
  unsigned long verbose = 2;
  std::uint32_t verbose_ratelimit_interval_ms = 0;  // RATELIMIT_STATE_INIT_DISABLED
  std::uint32_t verbose_ratelimit_burst = 10;       // DEFAULT_RATELIMIT_BURST
  bool task_filter = false;
  // store, show, net_open: the errno the caller gets (net_open: ENOMEM,
  // set by the constructor).
  int error = 5;  // EIO
  // store, show: a firing delays the request this long on the simulation
  // clock, then lets it run, instead of failing it (0: fail with error).
  // lock: how late a firing makes the grant (never 0; 100 by default, set
  // by the constructor).
  std::uint32_t delay_ms = 0;
  // smi.
  SmiFault smi_kind = SmiFault::NoAnswer;
  int cbres1 = -1;                 // -1 "completed with error", -2 "not supported", -3
  std::uint32_t answer_bytes = 4;  // of the 16-byte output[] (0..15)
  // host_control.
  HostControlFault hc_kind = HostControlFault::Timeout;
  // net_xmit.
  NetXmitFault xmit_kind = NetXmitFault::Drop;
  // net_rx.
  NetRxFault rx_kind = NetRxFault::Drop;
  // link_flap: the carrier is down for down_ms at the start of every
  // period_ms (down_ms < period_ms when the schedule starts).
  std::uint32_t down_ms = 100;
  std::uint32_t period_ms = 1000;
  // xen_populate: at most this many frames per XENMEM_populate_physmap;
  // xen_decrease: per XENMEM_decrease_reservation.
  std::uint64_t grant_pages = 0;
  // page_alloc (mm/fail_page_alloc.c defaults).
  bool ignore_gfp_highmem = true;
  bool ignore_gfp_reclaim = true;  // the file is "ignore-gfp-wait"
  std::uint32_t min_order = 1;
};

class FaultInjection {
 public:
  static constexpr std::size_t kMaxPids = 64;
  static constexpr std::size_t kMaxPaths = 16;
  static constexpr std::size_t kMaxPathBytes = 255;
  // The ifaces list of the net points: at most kMaxIfaces names, each a
  // valid interface name (shorter than IFNAMSIZ, 16).
  static constexpr std::size_t kMaxIfaces = 16;
  static constexpr std::size_t kIfNameSize = 16;
  // Where the control plane lives: never subject to store/show injection,
  // so an armed point cannot lock its own files (or the event log) away.
  static constexpr std::string_view kControlPlane = "kernel/debug/vsysfs";
  // K/fail/lock/delay_ms at mount.
  static constexpr std::uint32_t kLockDelayDefaultMs = 100;

  FaultInjection(Clock& clock, EventLog& events)
      : clock_(clock), events_(events), flap_timer_(clock, [this] { flap_tick(); }) {
    // ndo_open's usual failure: the rings could not be allocated.
    points_[static_cast<std::size_t>(FaultPoint::NetOpen)].s.error = 12;  // ENOMEM
    // A late grant is a delay: the lock point has no "fail at once".
    points_[static_cast<std::size_t>(FaultPoint::Lock)].s.delay_ms = kLockDelayDefaultMs;
  }
  ~FaultInjection() { flap_timer_.shutdown_sync(); }
  FaultInjection(const FaultInjection&) = delete;
  FaultInjection& operator=(const FaultInjection&) = delete;

  // probability != 0: the only check should_fail makes before the lock.
  bool armed(FaultPoint p) const noexcept {
    return armed_[static_cast<std::size_t>(p)].load(std::memory_order_relaxed);
  }

  // should_fail_ex(attr, size, nowarn ? FAULT_NOWARN : 0). `caller` null:
  // the simulated kernel (no pid: task-filter never lets it fail). `site`
  // is the call site verbose 2 reports.
  bool should_fail(FaultPoint p, const Caller* caller, long size, std::string_view site,
                   bool nowarn = false);
  // store/show of the attribute at `path` (relative to the mount root):
  // the errno the request gets, or nullopt. Paths under kControlPlane and
  // paths no pattern of the point's list matches never fail (an empty list
  // matches every path).
  std::optional<Errno> should_fail_attr(FaultPoint p, const Caller& caller, std::string_view path);
  // A net point for the interface `ifname`: the point's ifaces list (kept
  // in the same slot as paths; empty: every interface) must name it
  // exactly, then should_fail(size 1).
  bool should_fail_iface(FaultPoint p, const Caller* caller, std::string_view ifname,
                         std::string_view site);
  // Whether should_fail_iface(p, nullptr, ifname, ...) may fail or change
  // anything (space, the interval's count, a random draw) right now:
  // false exactly when it returns false at once (not armed, another
  // interface's point, probability 0, task-filter with no process, no
  // times left). A caller that simulates many calls at once (the traffic
  // batches, devices/net/netdev_traffic_batch.cpp) skips them when false.
  bool may_fail_iface(FaultPoint p, std::string_view ifname) const;
  // __should_fail_alloc_page (mm/fail_page_alloc.c): min-order, __GFP_NOFAIL
  // and the ignore-gfp-* filters first, then should_fail(1 << order).
  bool should_fail_alloc_page(const Caller* caller, Gfp gfp, unsigned order, long size,
                              std::string_view site);

  // The settings (a copy) and their stores; a store replaces one field.
  FaultSettings settings(FaultPoint p) const;
  template <typename T>
  void set(FaultPoint p, T FaultSettings::*field, T value) {
    MutexLock lock(mu_);
    points_[static_cast<std::size_t>(p)].s.*field = value;
    update_armed_locked(p);
  }
  std::uint64_t injected(FaultPoint p) const;

  // K/fail/seed: restarts the generator.
  std::uint64_t seed() const;
  void set_seed(std::uint64_t seed);

  // K/fail/pids: the processes whose requests may fail when task-filter is set.
  std::vector<pid_t> pids() const;
  void set_pids(std::set<pid_t> pids);  // at most kMaxPids (the caller checks)

  // K/fail/<store|show>/paths.
  std::vector<std::string> paths(FaultPoint p) const;
  void set_paths(FaultPoint p, std::vector<std::string> globs);  // bounds checked by the caller

  // link_flap. `hook(true)` takes the interface's link down, `hook(false)`
  // brings it back; it runs on the thread that advances the clock (or the
  // clock's thread) or in start_flaps/remove_flap_target, with fail.flap
  // held. A second registration of a name replaces the first.
  using FlapHook = std::function<void(bool down)>;
  void add_flap_target(const std::string& ifname, FlapHook hook);
  // Brings the link back if a flap holds it down, then forgets the hook.
  void remove_flap_target(std::string_view ifname);
  // store/show delay_ms: blocks the calling thread until `delay` has
  // passed on the simulation clock (a timer on it wakes the thread), or
  // until `cancelled()` says so (polled every kDelayPoll of real time: an
  // interrupted request, a daemon that stops; called first once the timer
  // is armed, so a caller may announce the wait from that first call). At most kMaxDelayed
  // requests wait at once: beyond that the request is not delayed
  // (Overflow), so that delayed requests cannot take every FUSE worker.
  enum class DelayEnd : std::uint8_t { Elapsed, Cancelled, Overflow };
  static constexpr std::size_t kMaxDelayed = 16;
  static constexpr std::chrono::milliseconds kDelayPoll{20};
  DelayEnd delay(Nanos delay, const std::function<bool()>& cancelled);
  std::size_t delayed() const { return delayed_.load(); }

  // K/fail/link_flap/count: restarts the schedule with `count` periods,
  // the first starting period_ms from now (0: no schedule). Links a flap
  // holds down come back first. EINVAL unless down_ms < period_ms.
  Status start_flaps(std::uint32_t count);
  // Periods of the schedule not yet started.
  std::uint32_t flaps_left() const;
  // A schedule runs, or a flap still holds a link down.
  bool flap_active() const;

  // Machine snapshots (docs/snapshot.md): every point's settings, counters
  // and rate-limit state, the generator and the pids, as fields "fail.*";
  // the link_flap schedule as "fail.flap.*" (the periods left, when the
  // next starts, when the links held down come back, which are held down,
  // the timer at its deadline and its place among the timers due at the
  // same instant). load_state checks the whole record first (EINVAL) and
  // changes nothing then; it sets the schedule back without running a
  // hook (the links' own state is their section's record). A field added
  // to FaultSettings must be added to both.
  void save_state(StateWriter& w) const;
  Status load_state(const StateReader& r);

 private:
  struct Point {
    FaultSettings s;
    unsigned long count = 0;  // fault_attr.count (interval)
    std::uint64_t injected = 0;
    std::vector<std::string> paths;
    // struct ratelimit_state, on the simulation clock.
    Nanos rl_begin{0};
    bool rl_started = false;
    int rl_printed = 0;
    int rl_missed = 0;
  };

  // The link_flap schedule of a snapshot record (fields "fail.flap.*").
  struct FlapSchedule {
    std::uint32_t left = 0;
    Nanos next{0};
    Nanos up_due{0};
    std::vector<std::string> down;
    TimerState timer;
  };
  // EINVAL for fields missing or out of range, a link held down that is
  // not a registered interface or out of name order, or a record without
  // the fields that says a schedule ran. Takes fail.flap.
  Status read_flap(const StateReader& r, FlapSchedule& out) const EXCLUDES(flap_mu_);

  std::uint32_t random_below_locked(std::uint32_t ceil) REQUIRES(mu_);
  void update_armed_locked(FaultPoint p) REQUIRES(mu_);
  bool ratelimit_locked(Point& pt, int& suppressed) REQUIRES(mu_);
  // The schedule's timer: links held down come back when their down_ms
  // is over; a period that starts decides which links go down.
  void flap_tick();
  void flap_arm_locked() REQUIRES(flap_mu_);
  void flap_restore_locked() REQUIRES(flap_mu_);

  Clock& clock_;
  EventLog& events_;
  std::atomic<std::size_t> delayed_{0};  // requests in delay() now
  mutable Mutex mu_{"fail.mu"};  // Order: leaf (nothing is taken under it)
  std::array<Point, kFaultPointCount> points_ GUARDED_BY(mu_);
  std::uint64_t seed_ GUARDED_BY(mu_) = 0;
  std::uint64_t rng_ GUARDED_BY(mu_) = 0;
  std::set<pid_t> pids_ GUARDED_BY(mu_);
  std::array<std::atomic<bool>, kFaultPointCount> armed_{};

  // Order: fail.flap -> the hooks' link locks -> fail.mu (rank 0: the
  // hooks' locks are ranked and never taken before it).
  mutable Mutex flap_mu_{"fail.flap"};
  std::map<std::string, FlapHook, std::less<>> flap_targets_ GUARDED_BY(flap_mu_);
  std::uint32_t flaps_left_ GUARDED_BY(flap_mu_) = 0;
  Nanos flap_next_ GUARDED_BY(flap_mu_){0};                  // when the next period starts
  Nanos flap_up_due_ GUARDED_BY(flap_mu_){0};                // when the links held down come back
  std::vector<std::string> flap_down_ GUARDED_BY(flap_mu_);  // held down, name order
  Timer flap_timer_;  // last: destroyed (stopped) before what its callback uses
};

}  // namespace vsysfs::core
