// The [xen] section's StateHandler (see xen_state.hpp for the record).
//
// Locking: save takes balloon_mutex then xen.hypervisor (their order), so
// the balloon's pages and the hypervisor's account of them are one
// instant; then xenwatch_mutex and xen.xenstore, never under the first
// two. load parses and checks the whole record with the same locks taken
// only to compare against what cannot change, cancels the two timers with
// no lock held (their callbacks take balloon_mutex / xen.hypervisor), then
// applies each part under its locks and re-arms the timers.

#include "devices/xen/xen_state.hpp"

#include <algorithm>
#include <cerrno>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/state_record.hpp"
#include "devices/machine/machine.hpp"
#include "devices/xen/xen_balloon.hpp"
#include "devices/xen/xen_balloon_bus.hpp"
#include "devices/xen/xen_balloon_hypervisor.hpp"
#include "devices/xen/xen_xenstore.hpp"

namespace vsysfs::devices {
namespace {

// ".seq" is the timer's place among the clock's timers due at the same
// instant (core::TimerState::order): the clock's id of the arming for a
// timer armed by mod_timer, which is what records of earlier builds hold
// (they saved the arming id, and xen re-armed with mod_timer then), and
// the order it was restored with for a timer a restore re-armed.
void put_timer(core::StateWriter& w, const std::string& prefix, const core::Timer& t) {
  const core::TimerState s = t.state();
  w.put_bool(prefix + ".pending", s.pending);
  w.put_i64(prefix + ".expires_ns", s.expires.count());
  w.put_u64(prefix + ".seq", s.order);
}

bool get_timer(const core::StateReader& r, const std::string& prefix, core::TimerState& out) {
  auto pending = r.boolean(prefix + ".pending");
  auto expires = r.i64(prefix + ".expires_ns");
  auto seq = r.u64(prefix + ".seq");
  if (!pending || !expires || !seq || *expires < 0) return false;
  out = {.pending = *pending, .expires = core::Nanos(*expires), .order = *seq};
  return true;
}

std::string join_u64(const std::vector<std::uint64_t>& v) {
  return v.empty() ? "-" : fmt::format("{}", fmt::join(v, ","));
}

bool split_u64(const std::string& s, std::vector<std::uint64_t>& out) {
  if (s == "-") return true;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos) return false;
    std::stringstream one(item);
    std::uint64_t v = 0;
    if (!(one >> v)) return false;
    out.push_back(v);
  }
  return true;
}

bool printable(std::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) <= 0x7e;
  });
}

}  // namespace

class XenStateHandler {
 public:
  XenStateHandler(std::shared_ptr<XenHypervisor> hv, std::shared_ptr<XenBalloon> balloon,
                  std::shared_ptr<XenStore> store, std::shared_ptr<XenMemoryBus> bus)
      : hv_(std::move(hv)), b_(std::move(balloon)), xs_(std::move(store)), bus_(std::move(bus)) {}

  void save(core::StateWriter& w) const;
  core::Status load(const core::StateReader& r);

 private:
  struct MemRec {
    std::uint64_t current = 0, used = 0, balloon_low = 0;
    std::vector<std::uint64_t> from_node;
    std::size_t next_rr = 0;
  };
  struct BalloonRec {
    std::uint64_t target = 0, schedule_delay = 0, max_schedule_delay = 0, retry_count = 0,
                  max_retry_count = 0;
    XenBalloon::BpState state = XenBalloon::BpState::Done;
    long sleep_credit = 0;
    bool scrub_pages = false;
    bool worker_dead = false;  // BUG_ON in decrease_reservation (until a boot)
    bool powered_off = false;  // the machine is off: nothing runs until boot()
    core::TimerState worker;
    MemRec mem;
  };
  struct HvRec {
    std::uint64_t total = 0, populate_fail = 0;
    std::uint32_t vpmu_mode = 0, vpmu_features = 0;
    std::vector<XenHypervisor::DomainSpec> domains;  // in the hypervisor's order
    core::TimerState pace;
  };
  struct StoreRec {
    std::map<std::string, XenStore::Node, std::less<>> nodes;
    std::vector<XenStore::WatchState> watches;
  };

  core::Status parse_balloon(const core::StateReader& r, BalloonRec& out) const;
  core::Status parse_hv(const core::StateReader& r, HvRec& out) const;
  core::Status parse_store(const core::StateReader& r, StoreRec& out) const;

  const std::shared_ptr<XenHypervisor> hv_;
  const std::shared_ptr<XenBalloon> b_;
  const std::shared_ptr<XenStore> xs_;
  const std::shared_ptr<XenMemoryBus> bus_;
};

void XenStateHandler::save(core::StateWriter& w) const {
  {
    XenBalloon& b = *b_;
    core::MutexLock lock(b.balloon_mutex_);
    w.put_str("balloon.driver", b.driver_ == XenBalloon::Driver::Kthread ? "kthread" : "workqueue");
    w.put_u64("balloon.target_pages", b.target_pages_);
    w.put_u64("balloon.schedule_delay", b.schedule_delay_);
    w.put_u64("balloon.max_schedule_delay", b.max_schedule_delay_);
    w.put_u64("balloon.retry_count", b.retry_count_);
    w.put_u64("balloon.max_retry_count", b.max_retry_count_);
    w.put_str("balloon.state", XenBalloon::state_name(b.last_state_));
    w.put_i64("balloon.sleep_credit", b.sleep_credit_);
    w.put_bool("balloon.scrub_pages", b.scrub_pages_);
    w.put_bool("balloon.worker_dead", b.worker_dead_);
    w.put_bool("balloon.powered_off", b.powered_off_);
    put_timer(w, "balloon.worker", b.balloon_worker_);
    w.put_bool("mem.numa", b.mem_.numa_ != nullptr);
    w.put_u64("mem.balloon_low", b.mem_.balloon_low_);
    if (!b.mem_.numa_) {
      w.put_u64("mem.current", b.mem_.current_pages_);
      w.put_u64("mem.kernel", b.mem_.kernel_pages_);
      w.put_u64("mem.used", b.mem_.used_pages_);
    } else {
      w.put_str("mem.from_node", join_u64(b.mem_.from_node_));
      w.put_u64("mem.next_rr", b.mem_.next_rr_);
    }
    // The hypervisor under balloon_mutex: no worker step runs between the
    // balloon's pages and Xen's account of them.
    XenHypervisor& hv = *hv_;
    core::MutexLock hlock(hv.mu_);
    w.put_u64("hv.total_pages", hv.total_pages_);
    w.put_u64("hv.populate_fail", hv.populate_fail_);
    w.put_u64("hv.vpmu.mode", hv.vpmu_mode_);
    w.put_u64("hv.vpmu.features", hv.vpmu_features_);
    for (const auto& d : hv.domains_) {
      const auto k = [&](std::string_view f) {
        return fmt::format("hv.dom.{}.{}", d.spec.domid, f);
      };
      w.put_u64(k("current"), d.spec.current_pages);
      w.put_u64(k("target"), d.spec.target_pages);
      w.put_u64(k("max"), d.spec.max_pages);
      w.put_u64(k("pace"), d.spec.pace);
    }
    put_timer(w, "hv.pace", hv.pace_timer_);
  }
  {
    XenStore& xs = *xs_;
    core::MutexLock wlock(xs.xenwatch_mutex_);
    core::MutexLock lock(xs.mu_);
    // Depth first, children in creation order (as xenstore_show walks).
    std::size_t n = 0;
    std::vector<std::pair<std::string, std::size_t>> stack{{"/", 0}};
    while (!stack.empty()) {
      auto& [path, next] = stack.back();
      const XenStore::Node& node = xs.nodes_.at(path);
      if (next == node.children.size()) {
        stack.pop_back();
        continue;
      }
      const std::string& name = node.children[next++];
      std::string child = path == "/" ? "/" + name : path + "/" + name;
      w.put_str(fmt::format("xenstore.node.{}", n++), child + " " + xs.nodes_.at(child).value);
      stack.emplace_back(std::move(child), 0);
    }
    w.put_u64("xenstore.nodes", n);
    for (std::size_t i = 0; i < xs.domains_.size(); ++i) {
      const auto& st = xs.watch_state_[i];
      w.put_bool(fmt::format("xenstore.watch.{}.fired", xs.domains_[i].domid), st.fired);
      w.put_i64(fmt::format("xenstore.watch.{}.target_diff", xs.domains_[i].domid), st.target_diff);
    }
  }
  w.put_u64("bus.drivers_autoprobe", static_cast<std::uint64_t>(bus_->drivers_autoprobe_.load()));
}

core::Status XenStateHandler::parse_balloon(const core::StateReader& r, BalloonRec& out) const {
  const XenBalloon& b = *b_;
  auto driver = r.str("balloon.driver");
  auto target = r.u64("balloon.target_pages");
  auto delay = r.u64("balloon.schedule_delay");
  auto max_delay = r.u64("balloon.max_schedule_delay");
  auto retry = r.u64("balloon.retry_count");
  auto max_retry = r.u64("balloon.max_retry_count");
  auto state = r.str("balloon.state");
  auto credit = r.i64("balloon.sleep_credit");
  auto scrub = r.boolean("balloon.scrub_pages");
  auto dead = r.boolean("balloon.worker_dead");
  auto off = r.boolean("balloon.powered_off");
  auto numa = r.boolean("mem.numa");
  auto low = r.u64("mem.balloon_low");
  if (!driver || !target || !delay || !max_delay || !retry || !max_retry || !state || !credit ||
      !scrub || !dead || !off || !numa || !low || !get_timer(r, "balloon.worker", out.worker))
    return core::Errno{EINVAL};
  if (*driver != (b.driver_ == XenBalloon::Driver::Kthread ? "kthread" : "workqueue"))
    return core::Errno{EINVAL};
  bool known = false;
  for (auto s :
       {XenBalloon::BpState::Done, XenBalloon::BpState::EAgain, XenBalloon::BpState::ECanceled})
    if (*state == XenBalloon::state_name(s)) {
      out.state = s;
      known = true;
    }
  if (!known) return core::Errno{EINVAL};
  out.target = *target;
  out.schedule_delay = *delay;
  out.max_schedule_delay = *max_delay;
  out.retry_count = *retry;
  out.max_retry_count = *max_retry;
  out.sleep_credit = static_cast<long>(*credit);
  out.scrub_pages = *scrub;
  out.worker_dead = *dead;
  out.powered_off = *off;
  out.mem.balloon_low = *low;

  core::MutexLock lock(b.balloon_mutex_);
  if (*numa != (b.mem_.numa_ != nullptr)) return core::Errno{EINVAL};
  if (!b.mem_.numa_) {
    auto current = r.u64("mem.current");
    auto kernel = r.u64("mem.kernel");
    auto used = r.u64("mem.used");
    if (!current || !kernel || !used) return core::Errno{EINVAL};
    // Ballooning moves pages between current and the balloon; their sum
    // (the static maximum) and the kernel's pages never change.
    if (*kernel != b.mem_.kernel_pages_ || *current > b.mem_.current_pages_ + b.mem_.balloon_low_ ||
        *current + *low != b.mem_.current_pages_ + b.mem_.balloon_low_ || *kernel > *current ||
        *used > *current - *kernel)
      return core::Errno{EINVAL};
    out.mem.current = *current;
    out.mem.used = *used;
  } else {
    auto from = r.str("mem.from_node");
    auto next_rr = r.u64("mem.next_rr");
    if (!from || !next_rr || !split_u64(*from, out.mem.from_node)) return core::Errno{EINVAL};
    if (out.mem.from_node.size() != b.mem_.from_node_.size() ||
        *next_rr >= b.mem_.boot_memory_nodes_.size())
      return core::Errno{EINVAL};
    std::uint64_t sum = 0;
    // Pages owed back to the nodes are pages in the balloon.
    for (auto v : out.mem.from_node) {
      if (v > *low || sum > *low - v) return core::Errno{EINVAL};
      sum += v;
    }
    out.mem.next_rr = static_cast<std::size_t>(*next_rr);
  }
  return {};
}

core::Status XenStateHandler::parse_hv(const core::StateReader& r, HvRec& out) const {
  const XenHypervisor& hv = *hv_;
  auto total = r.u64("hv.total_pages");
  auto fail = r.u64("hv.populate_fail");
  if (!total || !fail || !get_timer(r, "hv.pace", out.pace)) return core::Errno{EINVAL};
  out.total = *total;
  out.populate_fail = *fail;
  core::MutexLock lock(hv.mu_);
  // The vPMU: a record of a build before it has neither key and gets the
  // boot values; a mode needs vPMU on (vpmu= is the hypervisor's boot
  // option, not state), and XENPMU_mode_set's and feature_set's checks.
  const bool has_mode = r.has("hv.vpmu.mode"), has_features = r.has("hv.vpmu.features");
  if (has_mode != has_features) return core::Errno{EINVAL};
  out.vpmu_mode = hv.vpmu_enabled_ ? XenHypervisor::kPmuModeSelf : XenHypervisor::kPmuModeOff;
  out.vpmu_features = hv.vpmu_boot_features_;
  if (has_mode) {
    auto mode = r.u64("hv.vpmu.mode");
    auto features = r.u64("hv.vpmu.features");
    if (!mode || !features) return core::Errno{EINVAL};
    constexpr std::uint64_t kModes =
        XenHypervisor::kPmuModeSelf | XenHypervisor::kPmuModeHv | XenHypervisor::kPmuModeAll;
    if ((*mode & ~kModes) || (*mode & (*mode - 1)) ||
        (*features & ~std::uint64_t{XenHypervisor::kPmuFeatures}))
      return core::Errno{EINVAL};
    if (!hv.vpmu_enabled_ && (*mode != XenHypervisor::kPmuModeOff || *features != 0))
      return core::Errno{EINVAL};
    out.vpmu_mode = static_cast<std::uint32_t>(*mode);
    out.vpmu_features = static_cast<std::uint32_t>(*features);
  }
  // Exactly the domains this machine has, four fields each.
  if (r.keys_with_prefix("hv.dom.").size() != 4 * hv.domains_.size()) return core::Errno{EINVAL};
  std::uint64_t used = 0;
  for (std::size_t i = 0; i < hv.domains_.size(); ++i) {
    XenHypervisor::DomainSpec s = hv.domains_[i].spec;
    const auto k = [&](std::string_view f) { return fmt::format("hv.dom.{}.{}", s.domid, f); };
    auto current = r.u64(k("current"));
    auto target = r.u64(k("target"));
    auto max = r.u64(k("max"));
    auto pace = r.u64(k("pace"));
    if (!current || !target || !max || !pace) return core::Errno{EINVAL};
    // max_pages is the domain's static maximum; the others' pace is >= 1.
    if (*max != s.max_pages || *current > *max || *target > *max || (i > 0 && *pace == 0))
      return core::Errno{EINVAL};
    s.current_pages = *current;
    s.target_pages = *target;
    s.pace = *pace;
    used += *current;  // each <= max, which fits the host arithmetic
    out.domains.push_back(std::move(s));
  }
  if (used > out.total) return core::Errno{EINVAL};
  return {};
}

core::Status XenStateHandler::parse_store(const core::StateReader& r, StoreRec& out) const {
  const XenStore& xs = *xs_;
  auto count = r.u64("xenstore.nodes");
  // The root is not in the list; the store never holds more than kMaxNodes.
  if (!count || *count + 1 > XenStore::kMaxNodes) return core::Errno{EINVAL};
  if (r.keys_with_prefix("xenstore.node.").size() != *count) return core::Errno{EINVAL};
  out.nodes.emplace("/", XenStore::Node{});
  for (std::uint64_t n = 0; n < *count; ++n) {
    auto line = r.str(fmt::format("xenstore.node.{}", n));
    if (!line) return core::Errno{EINVAL};
    const auto sp = line->find(' ');
    if (sp == std::string::npos) return core::Errno{EINVAL};
    std::string path = line->substr(0, sp);
    std::string value = line->substr(sp + 1);
    if (path == "/" || !XenStore::valid_path(path) || !printable(value) ||
        value.size() > XenStore::kMaxValueBytes || out.nodes.contains(path))
      return core::Errno{EINVAL};
    // Depth first: the parent came before its children.
    const std::size_t slash = path.rfind('/');
    const std::string parent = slash == 0 ? std::string("/") : path.substr(0, slash);
    auto it = out.nodes.find(parent);
    if (it == out.nodes.end()) return core::Errno{EINVAL};
    it->second.children.push_back(path.substr(slash + 1));
    out.nodes.emplace(std::move(path), XenStore::Node{std::move(value), {}});
  }
  for (const auto& d : xs.domains_) {
    // The watches read, and writes are checked against, each domain's
    // directory (xenstore_store's check_owner_locked).
    if (!out.nodes.contains(fmt::format("/local/domain/{}", d.domid))) return core::Errno{EINVAL};
    auto fired = r.boolean(fmt::format("xenstore.watch.{}.fired", d.domid));
    auto diff = r.i64(fmt::format("xenstore.watch.{}.target_diff", d.domid));
    if (!fired || !diff) return core::Errno{EINVAL};
    out.watches.push_back({*fired, static_cast<long>(*diff)});
  }
  if (r.keys_with_prefix("xenstore.watch.").size() != 2 * xs.domains_.size())
    return core::Errno{EINVAL};
  return {};
}

core::Status XenStateHandler::load(const core::StateReader& r) {
  BalloonRec brec;
  HvRec hrec;
  StoreRec srec;
  if (auto st = parse_balloon(r, brec); !st) return st;
  if (auto st = parse_hv(r, hrec); !st) return st;
  if (auto st = parse_store(r, srec); !st) return st;
  auto autoprobe = r.u64("bus.drivers_autoprobe");
  if (!autoprobe || *autoprobe > 1) return core::Errno{EINVAL};
  // The flat guest's populated pages are what Xen accounts to it (both
  // from one instant of save()).
  const DomId guest = b_->domid_;
  const auto g = std::find_if(hrec.domains.begin(), hrec.domains.end(),
                              [&](const auto& s) { return s.domid == guest; });
  if (g == hrec.domains.end()) return core::Errno{EINVAL};
  if (!b_->numa_backed_ && g->current_pages != brec.mem.current) return core::Errno{EINVAL};

  // Everything checked: from here nothing fails. The timers first, with no
  // lock held: their callbacks take balloon_mutex and xen.hypervisor.
  XenBalloon& b = *b_;
  XenHypervisor& hv = *hv_;
  b.balloon_worker_.del_timer_sync();
  hv.pace_timer_.del_timer_sync();
  {
    XenStore& xs = *xs_;
    core::MutexLock wlock(xs.xenwatch_mutex_);
    core::MutexLock lock(xs.mu_);
    xs.nodes_ = std::move(srec.nodes);
    xs.watch_state_ = std::move(srec.watches);
  }
  {
    core::MutexLock lock(b.balloon_mutex_);
    b.target_pages_ = brec.target;
    b.schedule_delay_ = brec.schedule_delay;
    b.max_schedule_delay_ = brec.max_schedule_delay;
    b.retry_count_ = brec.retry_count;
    b.max_retry_count_ = brec.max_retry_count;
    b.last_state_ = brec.state;
    b.sleep_credit_ = brec.sleep_credit;
    b.scrub_pages_ = brec.scrub_pages;
    b.worker_dead_ = brec.worker_dead;
    b.powered_off_ = brec.powered_off;
    b.mem_.balloon_low_ = brec.mem.balloon_low;
    if (!b.mem_.numa_) {
      b.mem_.current_pages_ = brec.mem.current;
      b.mem_.used_pages_ = brec.mem.used;
    } else {
      b.mem_.from_node_ = std::move(brec.mem.from_node);
      b.mem_.next_rr_ = brec.mem.next_rr;
    }
    core::MutexLock hlock(hv.mu_);
    hv.total_pages_ = hrec.total;
    hv.populate_fail_ = hrec.populate_fail;
    hv.vpmu_mode_ = hrec.vpmu_mode;
    hv.vpmu_features_ = hrec.vpmu_features;
    for (std::size_t i = 0; i < hv.domains_.size(); ++i) hv.domains_[i].spec = hrec.domains[i];
  }
  bus_->drivers_autoprobe_ = static_cast<int>(*autoprobe);

  // The kthread always waits on its timer but while a pass runs: a record
  // taken in that moment has it idle, and the pass was due then (order 0:
  // after the timers pending at the snapshot that are due then too).
  if (b.driver_ == XenBalloon::Driver::Kthread && !brec.worker.pending)
    brec.worker = {.pending = true, .expires = b.env_.now(), .order = 0};
  // Each at its deadline and its saved place among the timers due at the
  // same instant, the other sections' included (Timer::restore): the
  // clock orders ties by that place, not by when the restore re-armed them.
  b.balloon_worker_.restore(brec.worker);
  hv.pace_timer_.restore(hrec.pace);
  return {};
}

void register_xen_state(MachineContext& ctx, std::shared_ptr<XenHypervisor> hv,
                        std::shared_ptr<XenBalloon> balloon, std::shared_ptr<XenStore> store,
                        std::shared_ptr<XenMemoryBus> bus) {
  auto h = std::make_shared<XenStateHandler>(std::move(hv), std::move(balloon), std::move(store),
                                             std::move(bus));
  ctx.machine.register_state({.name = "xen",
                              .version = 1,
                              .save = [h](core::StateWriter& w) { h->save(w); },
                              .load = [h](const core::StateReader& r) { return h->load(r); },
                              .loads_into_new_boot = {},
                              .section = {}});
}

}  // namespace vsysfs::devices
