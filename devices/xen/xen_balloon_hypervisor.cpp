#include "devices/xen/xen_balloon_hypervisor.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<XenHypervisor> kHostAttrs[] = {
    VSYSFS_ATTR_RW_MODE(XenHypervisor, host_total_kb, 0600),
    VSYSFS_ATTR_RW_MODE(XenHypervisor, host_free_kb, 0600),
    VSYSFS_ATTR_RW_MODE(XenHypervisor, populate_fail, 0600),
};
constexpr core::SeqAttribute<XenHypervisor> kHostSeq[] = {
    VSYSFS_SEQ_ATTR_RO(XenHypervisor, domains, 0400),
};
constexpr core::AttributeGroup<XenHypervisor> kHostGroups[] = {
    {.name = "", .attrs = kHostAttrs, .seq_attrs = kHostSeq},
};

constexpr core::DeviceAttribute<XenDomain> kDomainAttrs[] = {
    VSYSFS_ATTR_RO_MODE(XenDomain, domid, 0400),
    VSYSFS_ATTR_RW_MODE(XenDomain, target_kb, 0600),
    VSYSFS_ATTR_RW_MODE(XenDomain, current_kb, 0600),
    VSYSFS_ATTR_RO_MODE(XenDomain, max_kb, 0400),
    VSYSFS_ATTR_RW_MODE(XenDomain, pace, 0600),
};
constexpr core::AttributeGroup<XenDomain> kDomainGroups[] = {
    {.name = "", .attrs = kDomainAttrs},
};

// A knob value in KiB as pages; ERANGE when the page count would not fit
// the host arithmetic (a sum of a few of them must not wrap).
core::Result<std::uint64_t> parse_kb_as_pages(std::string_view in) {
  const auto kb = VSYSFS_TRY(core::kstrtoull(in, 0));
  const std::uint64_t pages = xen_kb_to_pages(kb);
  if (pages > (std::uint64_t{1} << 52)) return core::Errno{ERANGE};  // 16 EiB of 4 KiB pages / 16
  return pages;
}

}  // namespace

// --- XenDomain: per-domain knob files -----------------------------------------

std::span<const core::AttributeGroup<XenDomain>> XenDomain::groups() { return kDomainGroups; }

using Spec = XenHypervisor::DomainSpec;

core::Status XenDomain::domid_show(core::PageBuffer& buf) const {
  return hv_.domain_show(domid_, buf, [](const Spec& s) { return s.domid; });
}
core::Status XenDomain::target_kb_show(core::PageBuffer& buf) const {
  return hv_.domain_show(domid_, buf, [](const Spec& s) { return xen_pages_to_kb(s.target_pages); });
}
core::Result<std::size_t> XenDomain::target_kb_store(const core::Caller& caller,
                                                     std::string_view in) {
  return hv_.domain_target_store(caller, domid_, in);
}
core::Status XenDomain::current_kb_show(core::PageBuffer& buf) const {
  return hv_.domain_show(domid_, buf, [](const Spec& s) { return xen_pages_to_kb(s.current_pages); });
}
core::Result<std::size_t> XenDomain::current_kb_store(const core::Caller& caller,
                                                      std::string_view in) {
  return hv_.domain_current_store(caller, domid_, in);
}
core::Status XenDomain::max_kb_show(core::PageBuffer& buf) const {
  return hv_.domain_show(domid_, buf, [](const Spec& s) { return xen_pages_to_kb(s.max_pages); });
}
core::Status XenDomain::pace_show(core::PageBuffer& buf) const {
  return hv_.domain_show(domid_, buf, [](const Spec& s) { return s.pace; });
}
core::Result<std::size_t> XenDomain::pace_store(const core::Caller& caller, std::string_view in) {
  return hv_.domain_pace_store(caller, domid_, in);
}

// --- XenHypervisor -------------------------------------------------------------

XenHypervisor::XenHypervisor(core::Env& env, std::uint64_t total_pages, DomainSpec guest,
                             std::vector<DomainSpec> others)
    : env_(env), total_pages_(total_pages), pace_timer_(env.clock, [this] { pace_tick(); }) {
  std::set<std::string> names;
  std::set<DomId> ids;
  std::uint64_t used = 0;
  core::MutexLock lock(mu_);
  domains_.push_back(Domain{std::move(guest)});
  for (auto& spec : others) domains_.push_back(Domain{std::move(spec)});
  for (const Domain& d : domains_) {
    if (!names.insert(d.spec.name).second)
      throw std::invalid_argument(fmt::format("domain name '{}' used twice", d.spec.name));
    if (!ids.insert(d.spec.domid).second)
      throw std::invalid_argument(fmt::format("domid {} used twice", d.spec.domid));
    if (d.spec.current_pages > d.spec.max_pages || d.spec.target_pages > d.spec.max_pages)
      throw std::invalid_argument(
          fmt::format("domain '{}': memory or target above its maximum", d.spec.name));
    used += d.spec.current_pages;
  }
  if (used > total_pages_)
    throw std::invalid_argument(fmt::format(
        "the domains need {} KiB but the host has {} KiB", xen_pages_to_kb(used),
        xen_pages_to_kb(total_pages_)));
  for (std::size_t i = 1; i < domains_.size(); ++i)
    domain_objs_.push_back(
        std::make_shared<XenDomain>(*this, domains_[i].spec.name, domains_[i].spec.domid));
}

std::span<const core::AttributeGroup<XenHypervisor>> XenHypervisor::groups() { return kHostGroups; }

void XenHypervisor::start() {
  core::MutexLock lock(mu_);
  kick_pacing_locked();
}

XenHypervisor::Domain* XenHypervisor::find_locked(DomId domid) {
  for (Domain& d : domains_)
    if (d.spec.domid == domid) return &d;
  return nullptr;
}

const XenHypervisor::Domain* XenHypervisor::find_locked(DomId domid) const {
  for (const Domain& d : domains_)
    if (d.spec.domid == domid) return &d;
  return nullptr;
}

std::uint64_t XenHypervisor::used_locked() const {
  std::uint64_t used = 0;
  for (const Domain& d : domains_) used += d.spec.current_pages;
  return used;
}

// Locking: xen.hypervisor. Context: the balloon worker (balloon_mutex held).
long XenHypervisor::populate_physmap(DomId domid, std::uint64_t nr) {
  core::MutexLock lock(mu_);
  Domain* d = find_locked(domid);
  if (!d) return -ESRCH;
  if (populate_fail_ > 0) {
    --populate_fail_;
    env_.log(nullptr, "xen", "populate_physmap", "ENOMEM",
             {{"domid", domid}, {"requested", nr}, {"fault", true},
              {"faults_left", populate_fail_}});
    return -ENOMEM;
  }
  // Xen hands out what it has: a partial grant when the host runs short,
  // and never past the domain's max_pages (the toolstack's maxmem).
  const std::uint64_t room = d->spec.max_pages - d->spec.current_pages;
  std::uint64_t granted = std::min({nr, free_locked(), room});
  // K/fail/xen_populate: the hypervisor grants at most `pages` frames (0:
  // none), so the balloon's BP_EAGAIN back-off runs. The balloon worker is a
  // kernel thread: task-filter never lets this point fail. Lock order:
  // xen.hypervisor -> fail.mu (a leaf).
  if (env_.faults && env_.faults->should_fail(core::FaultPoint::XenPopulate, nullptr, 1,
                                              "XENMEM_populate_physmap")) {
    const std::uint64_t cap = env_.faults->settings(core::FaultPoint::XenPopulate).grant_pages;
    if (cap < granted) {
      env_.log(nullptr, "xen", "populate_physmap", "partial",
               {{"domid", domid}, {"requested", nr}, {"granted", cap}, {"fault", "xen_populate"}});
      granted = cap;
    }
  }
  d->current() += granted;
  return static_cast<long>(granted);
}

// Locking: xen.hypervisor. Context: the balloon worker (balloon_mutex held).
long XenHypervisor::decrease_reservation(DomId domid, std::uint64_t nr) {
  core::MutexLock lock(mu_);
  Domain* d = find_locked(domid);
  if (!d) return -ESRCH;
  std::uint64_t released = std::min(nr, d->spec.current_pages);
  // K/fail/xen_decrease: Xen takes back at most `pages` of the frames it is
  // given (a hypervisor bug: a real Xen takes them all). The balloon worker
  // is a kernel thread: task-filter never lets this point fail. Lock
  // order: xen.hypervisor -> fail.mu (a leaf).
  if (env_.faults && env_.faults->should_fail(core::FaultPoint::XenDecrease, nullptr, 1,
                                              "XENMEM_decrease_reservation")) {
    const std::uint64_t cap = env_.faults->settings(core::FaultPoint::XenDecrease).grant_pages;
    if (cap < released) {
      env_.log(nullptr, "xen", "decrease_reservation", "partial",
               {{"domid", domid}, {"requested", nr}, {"released", cap}, {"fault", "xen_decrease"}});
      released = cap;
    }
  }
  d->current() -= released;
  // Memory released here may let a growing domain proceed.
  kick_pacing_locked();
  return static_cast<long>(released);
}

std::uint64_t XenHypervisor::rebuild_domain(DomId domid, std::uint64_t pages) {
  core::MutexLock lock(mu_);
  Domain* d = find_locked(domid);
  if (!d) return 0;
  const std::uint64_t old = d->spec.current_pages;
  d->current() = 0;
  const std::uint64_t got = std::min(pages, free_locked());
  d->current() = got;
  env_.log(
      nullptr, "xen", "rebuild_domain", got == pages ? "OK" : "partial",
      {{"domid", domid}, {"old_kb", xen_pages_to_kb(old)}, {"memory_kb", xen_pages_to_kb(got)}});
  if (old > got) kick_pacing_locked();  // memory released may let another domain grow
  return got;
}

std::uint64_t XenHypervisor::total_pages() const {
  core::MutexLock lock(mu_);
  return total_pages_;
}

std::uint64_t XenHypervisor::free_pages() const {
  core::MutexLock lock(mu_);
  return free_locked();
}

std::uint64_t XenHypervisor::domain_current_pages(DomId domid) const {
  core::MutexLock lock(mu_);
  const Domain* d = find_locked(domid);
  return d ? d->spec.current_pages : 0;
}

std::uint64_t XenHypervisor::domain_max_pages(DomId domid) const {
  core::MutexLock lock(mu_);
  const Domain* d = find_locked(domid);
  return d ? d->spec.max_pages : 0;
}

bool XenHypervisor::consistent() const {
  core::MutexLock lock(mu_);
  const std::uint64_t used = used_locked();
  return used <= total_pages_ && free_locked() + used == total_pages_;
}

void XenHypervisor::kick_pacing_locked() {
  mu_.assert_held();
  if (pace_timer_.pending()) return;
  for (std::size_t i = 1; i < domains_.size(); ++i) {
    if (domains_[i].spec.current_pages != domains_[i].spec.target_pages) {
      pace_timer_.schedule_in(kPaceInterval);
      return;
    }
  }
}

// Locking: xen.hypervisor. Context: timer (clock thread, or the writer of
// clock/advance_ms with a manual clock).
void XenHypervisor::pace_tick() {
  core::MutexLock lock(mu_);
  for (std::size_t i = 1; i < domains_.size(); ++i) {
    DomainSpec& s = domains_[i].spec;
    std::uint64_t moved = 0;
    const char* direction = "none";
    if (s.current_pages > s.target_pages) {
      moved = std::min(s.pace, s.current_pages - s.target_pages);
      s.current_pages -= moved;
      direction = "decrease";
    } else if (s.current_pages < s.target_pages) {
      // A growing domain is a balloon driver too: it keeps what it gets.
      moved = std::min({s.pace, s.target_pages - s.current_pages, free_locked()});
      s.current_pages += moved;
      direction = "increase";
    }
    if (moved == 0) continue;
    env_.log(nullptr, "xen", "domain_step", "OK",
             {{"domain", s.name},
              {"domid", s.domid},
              {"direction", direction},
              {"pages", moved},
              {"current_kb", xen_pages_to_kb(s.current_pages)},
              {"target_kb", xen_pages_to_kb(s.target_pages)},
              {"host_free_kb", xen_pages_to_kb(free_locked())}});
  }
  kick_pacing_locked();
}

// --- knobs ----------------------------------------------------------------------

core::Status XenHypervisor::host_total_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  buf.emit("{}\n", xen_pages_to_kb(total_pages_));
  return {};
}

core::Result<std::size_t> XenHypervisor::host_total_kb_store(const core::Caller& caller,
                                                             std::string_view in) {
  const std::uint64_t pages = VSYSFS_TRY(parse_kb_as_pages(in));
  core::MutexLock lock(mu_);
  if (pages < used_locked()) return core::Errno{EINVAL};
  total_pages_ = pages;
  env_.log(&caller, "xen", "host_total", "OK",
           {{"host_total_kb", xen_pages_to_kb(total_pages_)},
            {"host_free_kb", xen_pages_to_kb(free_locked())}});
  kick_pacing_locked();
  return in.size();
}

core::Status XenHypervisor::host_free_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  buf.emit("{}\n", xen_pages_to_kb(free_locked()));
  return {};
}

core::Result<std::size_t> XenHypervisor::host_free_kb_store(const core::Caller& caller,
                                                            std::string_view in) {
  const std::uint64_t pages = VSYSFS_TRY(parse_kb_as_pages(in));
  core::MutexLock lock(mu_);
  // Pressure is modelled as the host shrinking or growing (memory taken by
  // something outside these domains), so the invariant keeps its form.
  total_pages_ = used_locked() + pages;
  env_.log(&caller, "xen", "host_free", "OK",
           {{"host_total_kb", xen_pages_to_kb(total_pages_)},
            {"host_free_kb", xen_pages_to_kb(free_locked())}});
  kick_pacing_locked();
  return in.size();
}

void XenHypervisor::set_vpmu_boot(bool enabled, std::uint32_t features) {
  core::MutexLock lock(mu_);
  // parse_vpmu_params: a feature implies vpmu=1; enabled starts in SELF.
  vpmu_enabled_ = enabled || features != 0;
  vpmu_features_ = vpmu_enabled_ ? features : 0;
  vpmu_boot_features_ = vpmu_features_;
  vpmu_mode_ = vpmu_enabled_ ? kPmuModeSelf : kPmuModeOff;
}

long XenHypervisor::xenpmu_mode_get(bool has_vlapic, std::uint32_t& out) const {
  core::MutexLock lock(mu_);
  if (!vpmu_enabled_ || has_vlapic) return -EOPNOTSUPP;
  out = vpmu_mode_;
  return 0;
}

long XenHypervisor::xenpmu_mode_set(bool has_vlapic, std::uint64_t val) {
  core::MutexLock lock(mu_);
  if (!vpmu_enabled_ || has_vlapic) return -EOPNOTSUPP;
  if ((val & ~std::uint64_t{kPmuModeSelf | kPmuModeHv | kPmuModeAll}) || (val & (val - 1)))
    return -EINVAL;
  vpmu_mode_ = static_cast<std::uint32_t>(val);  // vpmu_count == 0
  return 0;
}

long XenHypervisor::xenpmu_feature_get(bool has_vlapic, std::uint32_t& out) const {
  core::MutexLock lock(mu_);
  if (!vpmu_enabled_ || has_vlapic) return -EOPNOTSUPP;
  out = vpmu_features_;
  return 0;
}

long XenHypervisor::xenpmu_feature_set(bool has_vlapic, std::uint64_t val) {
  core::MutexLock lock(mu_);
  if (!vpmu_enabled_ || has_vlapic) return -EOPNOTSUPP;
  if (val & ~std::uint64_t{kPmuFeatures}) return -EINVAL;
  vpmu_features_ = static_cast<std::uint32_t>(val);
  return 0;
}

core::Status XenHypervisor::populate_fail_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  buf.emit("{}\n", populate_fail_);
  return {};
}

core::Result<std::size_t> XenHypervisor::populate_fail_store(const core::Caller& caller,
                                                             std::string_view in) {
  const auto n = VSYSFS_TRY(core::kstrtoull(in, 0));
  core::MutexLock lock(mu_);
  populate_fail_ = n;
  env_.log(&caller, "xen", "populate_fail", "OK", {{"count", n}});
  return in.size();
}

core::Status XenHypervisor::domains_show(std::string& out) const {
  core::MutexLock lock(mu_);
  out += "domid name current_kb target_kb max_kb pace\n";
  for (std::size_t i = 0; i < domains_.size(); ++i) {
    const DomainSpec& s = domains_[i].spec;
    // This guest's target lives in its own balloon driver, not in Xen.
    if (i == 0) {
      out += fmt::format("{} {} {} - {} -\n", s.domid, s.name, xen_pages_to_kb(s.current_pages),
                         xen_pages_to_kb(s.max_pages));
    } else {
      out += fmt::format("{} {} {} {} {} {}\n", s.domid, s.name, xen_pages_to_kb(s.current_pages),
                         xen_pages_to_kb(s.target_pages), xen_pages_to_kb(s.max_pages), s.pace);
    }
  }
  return {};
}

template <typename Get>
core::Status XenHypervisor::domain_show(DomId domid, core::PageBuffer& buf, Get get) const {
  core::MutexLock lock(mu_);
  const Domain* d = find_locked(domid);
  if (!d) return core::Errno{ENODEV};
  buf.emit("{}\n", get(d->spec));
  return {};
}

core::Result<std::size_t> XenHypervisor::domain_target_store(const core::Caller& caller,
                                                             DomId domid, std::string_view in) {
  const std::uint64_t value = VSYSFS_TRY(parse_kb_as_pages(in));
  core::MutexLock lock(mu_);
  Domain* d = find_locked(domid);
  if (!d) return core::Errno{ENODEV};
  DomainSpec& s = d->spec;
  if (value > s.max_pages) return core::Errno{EINVAL};
  s.target_pages = value;
  env_.log(&caller, "xen", "domain_target", "OK",
           {{"domain", s.name}, {"target_kb", xen_pages_to_kb(value)}});
  kick_pacing_locked();
  return in.size();
}

core::Result<std::size_t> XenHypervisor::domain_current_store(const core::Caller& caller,
                                                              DomId domid, std::string_view in) {
  const std::uint64_t value = VSYSFS_TRY(parse_kb_as_pages(in));
  core::MutexLock lock(mu_);
  Domain* d = find_locked(domid);
  if (!d) return core::Errno{ENODEV};
  DomainSpec& s = d->spec;
  if (value > s.max_pages) return core::Errno{EINVAL};
  if (value > s.current_pages && value - s.current_pages > free_locked()) return core::Errno{ENOSPC};
  s.current_pages = value;
  env_.log(&caller, "xen", "domain_current", "OK",
           {{"domain", s.name},
            {"current_kb", xen_pages_to_kb(value)},
            {"host_free_kb", xen_pages_to_kb(free_locked())}});
  kick_pacing_locked();
  return in.size();
}

core::Result<std::size_t> XenHypervisor::domain_pace_store(const core::Caller& caller, DomId domid,
                                                           std::string_view in) {
  const std::uint64_t value = VSYSFS_TRY(core::kstrtoull(in, 0));
  if (value == 0) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  Domain* d = find_locked(domid);
  if (!d) return core::Errno{ENODEV};
  DomainSpec& s = d->spec;
  s.pace = value;
  env_.log(&caller, "xen", "domain_pace", "OK", {{"domain", s.name}, {"pace", value}});
  kick_pacing_locked();
  return in.size();
}

}  // namespace vsysfs::devices
