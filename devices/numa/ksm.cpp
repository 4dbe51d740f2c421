#include "devices/numa/ksm.hpp"

#include <cerrno>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using K = Ksm;
using core::fmt_long;
using core::fmt_ulong;

constexpr unsigned kDefaultPagesToScan = 100;  // DEFAULT_PAGES_TO_SCAN
constexpr unsigned long kRunUnmerge = 2;       // KSM_RUN_UNMERGE

// mm/ksm.c ksm_attrs, in its order.
constexpr core::DeviceAttribute<K> kAttrs[] = {
    VSYSFS_ATTR_RW(K, sleep_millisecs),
    VSYSFS_ATTR_RW(K, pages_to_scan),
    VSYSFS_ATTR_RW(K, run),
    VSYSFS_ATTR_VALUE_RO(K, pages_scanned, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, pages_shared, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, pages_sharing, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, pages_unshared, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, pages_volatile, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, pages_skipped, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, ksm_zero_pages, 0444, fmt_long, [](const K&) { return 0L; }),
    VSYSFS_ATTR_VALUE_RO(K, full_scans, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_RW(K, merge_across_nodes),
    VSYSFS_ATTR_RW(K, max_page_sharing),
    VSYSFS_ATTR_VALUE_RO(K, stable_node_chains, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_VALUE_RO(K, stable_node_dups, 0444, fmt_ulong, [](const K&) { return 0UL; }),
    VSYSFS_ATTR_RW(K, stable_node_chains_prune_millisecs),
    VSYSFS_ATTR_RW(K, use_zero_pages),
    VSYSFS_ATTR_VALUE_RO(K, general_profit, 0444, fmt_long, [](const K&) { return 0L; }),
    VSYSFS_ATTR_RW(K, smart_scan),
    VSYSFS_ATTR_RW(K, advisor_mode),
    VSYSFS_ATTR_RW(K, advisor_max_cpu),
    VSYSFS_ATTR_RW(K, advisor_min_pages_to_scan),
    VSYSFS_ATTR_RW(K, advisor_max_pages_to_scan),
    VSYSFS_ATTR_RW(K, advisor_target_scan_time),
};
constexpr core::AttributeGroup<K> kGroups[] = {{.name = "", .attrs = kAttrs}};

}  // namespace

std::span<const core::AttributeGroup<K>> Ksm::groups() { return kGroups; }

#define VSYSFS_KSM_SHOW(name, field)                           \
  core::Status Ksm::name##_show(core::PageBuffer& buf) const { \
    core::MutexLock lock(mu_);                                 \
    buf.emit("{}\n", field);                                   \
    return {};                                                 \
  }
VSYSFS_KSM_SHOW(run, run_)
VSYSFS_KSM_SHOW(sleep_millisecs, sleep_millisecs_)
VSYSFS_KSM_SHOW(pages_to_scan, pages_to_scan_)
VSYSFS_KSM_SHOW(merge_across_nodes, merge_across_nodes_)
VSYSFS_KSM_SHOW(use_zero_pages, use_zero_pages_ ? 1 : 0)
VSYSFS_KSM_SHOW(smart_scan, smart_scan_ ? 1 : 0)
VSYSFS_KSM_SHOW(max_page_sharing, max_page_sharing_)
VSYSFS_KSM_SHOW(stable_node_chains_prune_millisecs, prune_millisecs_)
VSYSFS_KSM_SHOW(advisor_mode, advisor_scan_time_ ? "none [scan-time]" : "[none] scan-time")
VSYSFS_KSM_SHOW(advisor_max_cpu, advisor_max_cpu_)
VSYSFS_KSM_SHOW(advisor_min_pages_to_scan, advisor_min_pages_)
VSYSFS_KSM_SHOW(advisor_max_pages_to_scan, advisor_max_pages_)
VSYSFS_KSM_SHOW(advisor_target_scan_time, advisor_target_scan_time_)
#undef VSYSFS_KSM_SHOW

// run_store: kstrtouint (any error EINVAL), > KSM_RUN_UNMERGE EINVAL. With
// no mergeable area, unmerging has nothing to do and succeeds.
core::Result<std::size_t> Ksm::run_store(const core::Caller& caller, std::string_view in) {
  auto v = core::kstrtouint(in, 10);
  if (!v || *v > kRunUnmerge) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  if (run_ != *v) env_.log(&caller, "ksm", "run", "OK", {{"from", run_}, {"to", *v}});
  run_ = *v;
  return in.size();
}

core::Result<std::size_t> Ksm::sleep_millisecs_store(const core::Caller&, std::string_view in) {
  auto v = core::kstrtouint(in, 10);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  sleep_millisecs_ = *v;
  return in.size();
}

// pages_to_scan_store: the advisor owns it while one is on.
core::Result<std::size_t> Ksm::pages_to_scan_store(const core::Caller&, std::string_view in) {
  core::MutexLock lock(mu_);
  if (advisor_scan_time_) return core::Errno{EINVAL};
  auto v = core::kstrtouint(in, 10);
  if (!v) return core::Errno{EINVAL};
  pages_to_scan_ = *v;
  return in.size();
}

// merge_across_nodes_store: kstrtoul's own errno; EBUSY would need shared
// pages, which never exist here.
core::Result<std::size_t> Ksm::merge_across_nodes_store(const core::Caller&, std::string_view in) {
  auto v = core::kstrtoul(in, 10);
  if (!v) return v.error();
  if (*v > 1) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  merge_across_nodes_ = static_cast<unsigned>(*v);
  return in.size();
}

core::Result<std::size_t> Ksm::use_zero_pages_store(const core::Caller&, std::string_view in) {
  auto v = core::kstrtobool(in);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  use_zero_pages_ = *v;
  return in.size();
}

core::Result<std::size_t> Ksm::smart_scan_store(const core::Caller&, std::string_view in) {
  auto v = core::kstrtobool(in);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  smart_scan_ = *v;
  return in.size();
}

// max_page_sharing_store: kstrtoint's own errno, < 2 EINVAL.
core::Result<std::size_t> Ksm::max_page_sharing_store(const core::Caller&, std::string_view in) {
  auto v = core::kstrtoint(in, 10);
  if (!v) return v.error();
  if (*v < 2) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  max_page_sharing_ = static_cast<unsigned>(*v);
  return in.size();
}

core::Result<std::size_t> Ksm::stable_node_chains_prune_millisecs_store(const core::Caller&,
                                                                        std::string_view in) {
  auto v = core::kstrtouint(in, 10);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  prune_millisecs_ = *v;
  return in.size();
}

// advisor_mode_store: sysfs_streq; a change runs set_advisor_defaults
// (pages_to_scan back to DEFAULT_PAGES_TO_SCAN, or the advisor's minimum).
core::Result<std::size_t> Ksm::advisor_mode_store(const core::Caller&, std::string_view in) {
  bool scan_time = false;
  if (core::sysfs_streq(in, "scan-time")) {
    scan_time = true;
  } else if (!core::sysfs_streq(in, "none")) {
    return core::Errno{EINVAL};
  }
  core::MutexLock lock(mu_);
  if (advisor_scan_time_ != scan_time) {
    advisor_scan_time_ = scan_time;
    pages_to_scan_ = scan_time ? static_cast<unsigned>(advisor_min_pages_) : kDefaultPagesToScan;
  }
  return in.size();
}

// ksm_advisor_max_cpu is an unsigned int: the unsigned long is truncated.
core::Result<std::size_t> Ksm::advisor_max_cpu_store(const core::Caller&, std::string_view in) {
  auto v = core::kstrtoul(in, 10);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  advisor_max_cpu_ = static_cast<unsigned>(*v);
  return in.size();
}

core::Result<std::size_t> Ksm::advisor_min_pages_to_scan_store(const core::Caller&,
                                                               std::string_view in) {
  auto v = core::kstrtoul(in, 10);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  advisor_min_pages_ = *v;
  return in.size();
}

core::Result<std::size_t> Ksm::advisor_max_pages_to_scan_store(const core::Caller&,
                                                               std::string_view in) {
  auto v = core::kstrtoul(in, 10);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  advisor_max_pages_ = *v;
  return in.size();
}

core::Result<std::size_t> Ksm::advisor_target_scan_time_store(const core::Caller&,
                                                              std::string_view in) {
  auto v = core::kstrtoul(in, 10);
  if (!v || *v < 1) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  advisor_target_scan_time_ = *v;
  return in.size();
}

void Ksm::save_state(core::StateWriter& w) const {
  core::MutexLock lock(mu_);
  w.put_u64("ksm.run", run_);
  w.put_u64("ksm.sleep_millisecs", sleep_millisecs_);
  w.put_u64("ksm.pages_to_scan", pages_to_scan_);
  w.put_u64("ksm.merge_across_nodes", merge_across_nodes_);
  w.put_bool("ksm.use_zero_pages", use_zero_pages_);
  w.put_bool("ksm.smart_scan", smart_scan_);
  w.put_u64("ksm.max_page_sharing", max_page_sharing_);
  w.put_u64("ksm.prune_millisecs", prune_millisecs_);
  w.put_bool("ksm.advisor_scan_time", advisor_scan_time_);
  w.put_u64("ksm.advisor_max_cpu", advisor_max_cpu_);
  w.put_u64("ksm.advisor_min_pages", advisor_min_pages_);
  w.put_u64("ksm.advisor_max_pages", advisor_max_pages_);
  w.put_u64("ksm.advisor_target_scan_time", advisor_target_scan_time_);
}

core::Status Ksm::load_state(const core::StateReader& r) {
  auto run = r.u64("ksm.run");
  auto sleep_millisecs = r.u64("ksm.sleep_millisecs");
  auto pages_to_scan = r.u64("ksm.pages_to_scan");
  auto merge_across_nodes = r.u64("ksm.merge_across_nodes");
  auto use_zero_pages = r.boolean("ksm.use_zero_pages");
  auto smart_scan = r.boolean("ksm.smart_scan");
  auto max_page_sharing = r.u64("ksm.max_page_sharing");
  auto prune_millisecs = r.u64("ksm.prune_millisecs");
  auto advisor_scan_time = r.boolean("ksm.advisor_scan_time");
  auto advisor_max_cpu = r.u64("ksm.advisor_max_cpu");
  auto advisor_min_pages = r.u64("ksm.advisor_min_pages");
  auto advisor_max_pages = r.u64("ksm.advisor_max_pages");
  auto advisor_target_scan_time = r.u64("ksm.advisor_target_scan_time");
  if (!run || !sleep_millisecs || !pages_to_scan || !merge_across_nodes || !use_zero_pages ||
      !smart_scan || !max_page_sharing || !prune_millisecs || !advisor_scan_time ||
      !advisor_max_cpu || !advisor_min_pages || !advisor_max_pages || !advisor_target_scan_time)
    return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  run_ = static_cast<unsigned long>(*run);
  sleep_millisecs_ = static_cast<unsigned>(*sleep_millisecs);
  pages_to_scan_ = static_cast<unsigned>(*pages_to_scan);
  merge_across_nodes_ = static_cast<unsigned>(*merge_across_nodes);
  use_zero_pages_ = *use_zero_pages;
  smart_scan_ = *smart_scan;
  max_page_sharing_ = static_cast<unsigned>(*max_page_sharing);
  prune_millisecs_ = static_cast<unsigned>(*prune_millisecs);
  advisor_scan_time_ = *advisor_scan_time;
  advisor_max_cpu_ = static_cast<unsigned>(*advisor_max_cpu);
  advisor_min_pages_ = static_cast<unsigned long>(*advisor_min_pages);
  advisor_max_pages_ = static_cast<unsigned long>(*advisor_max_pages);
  advisor_target_scan_time_ = static_cast<unsigned long>(*advisor_target_scan_time);
  return {};
}

}  // namespace vsysfs::devices
