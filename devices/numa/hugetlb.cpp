#include "devices/numa/hugetlb.hpp"

#include <cerrno>

#include <fmt/format.h>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using H = HugetlbGlobal;
using core::fmt_ulong;

// mm/hugetlb.c hstate_attrs, in its order (nr_hugepages_mempolicy with
// CONFIG_NUMA).
constexpr core::DeviceAttribute<H> kAttrs[] = {
    VSYSFS_ATTR_VALUE(H, nr_hugepages, 0644, &H::nr_hugepages_store, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals(h.size()).nr; }),
    VSYSFS_ATTR_VALUE(H, nr_overcommit_hugepages, 0644, &H::nr_overcommit_hugepages_store,
                      fmt_ulong, [](const H& h) { return h.overcommit(); }),
    VSYSFS_ATTR_VALUE(H, free_hugepages, 0444, nullptr, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals(h.size()).free; }),
    VSYSFS_ATTR_VALUE(H, resv_hugepages, 0444, nullptr, fmt_ulong,
                      [](const H&) { return std::uint64_t{0}; }),
    VSYSFS_ATTR_VALUE(H, surplus_hugepages, 0444, nullptr, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals(h.size()).surplus; }),
    VSYSFS_ATTR_VALUE(H, nr_hugepages_mempolicy, 0644, &H::nr_hugepages_store, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals(h.size()).nr; }),
};
// hstate_demote_attrs: demote_size (HSTATE_ATTR, 0644), demote (HSTATE_ATTR_WO, 0200).
constexpr core::DeviceAttribute<H> kDemoteAttrs[] = {
    VSYSFS_ATTR_RW(H, demote_size),
    VSYSFS_ATTR_WO(H, demote),
};
constexpr core::AttributeGroup<H> kGroups[] = {
    {.name = "", .attrs = kAttrs},
    {.name = "", .attrs = kDemoteAttrs},
};

}  // namespace

std::span<const core::AttributeGroup<H>> HugetlbGlobal::groups(HugeSize size) {
  // hugetlb_sysfs_add_hstate: the demote group only when h->demote_order.
  return std::span(kGroups).first(size == HugeSize::k1G ? 2 : 1);
}

std::string HugetlbGlobal::dir_name(HugeSize size) {
  return fmt::format("hugepages-{}kB", huge_page_kib(size));  // hugetlb_add_hstate
}

// nr_hugepages_store_common: kstrtoul(buf, 10), then set_max_huge_pages
// with nodes_allowed = N_MEMORY. (__nr_hugepages_store_common's EINVAL for
// a gigantic hstate without runtime support does not apply: x86_64 has
// CONFIG_CONTIG_ALLOC, gigantic_page_runtime_supported.)
core::Result<std::size_t> HugetlbGlobal::nr_hugepages_store(const core::Caller& caller,
                                                            std::string_view in) {
  const std::uint64_t kib = huge_page_kib(size_);
  auto count = core::kstrtoul(in, 10);
  if (!count) {
    env_.log(&caller, "numa", "nr_hugepages", count.error().name(),
             {{"node", -1}, {"size_kb", kib}});
    return count.error();
  }
  const std::uint64_t before = model_->huge_totals(size_).nr;
  const std::uint64_t now = model_->set_global_nr_hugepages(*count, size_);
  env_.log(
      &caller, "numa", "nr_hugepages", "OK",
      {{"node", -1}, {"size_kb", kib}, {"requested", *count}, {"before", before}, {"now", now}});
  return in.size();
}

// nr_overcommit_hugepages_store (6.12): EINVAL for a gigantic hstate, then
// kstrtoul(buf, 10).
core::Result<std::size_t> HugetlbGlobal::nr_overcommit_hugepages_store(const core::Caller&,
                                                                       std::string_view in) {
  if (size_ == HugeSize::k1G) return core::Errno{EINVAL};
  auto v = core::kstrtoul(in, 10);
  if (!v) return v.error();
  overcommit_ = *v;
  return in.size();
}

core::Result<std::size_t> HugetlbGlobal::demote_store(const core::Caller& caller,
                                                      std::string_view in) {
  return hugetlb::demote_store(env_, *model_, -1, caller, in);
}

core::Status HugetlbGlobal::demote_size_show(core::PageBuffer& buf) const {
  return hugetlb::demote_size_show(buf);
}

core::Result<std::size_t> HugetlbGlobal::demote_size_store(const core::Caller&,
                                                           std::string_view in) {
  return hugetlb::demote_size_store(in);
}

namespace hugetlb {

// demote_store: kstrtoul(buf, 10) (EINVAL/ERANGE, nothing changed), then
// demote_pool_huge_page while pages are wanted and available on the mask
// (the node, or N_MEMORY). Running out is not an error: the store returns
// len.
core::Result<std::size_t> demote_store(core::Env& env, NumaModel& model, int nid,
                                       const core::Caller& caller, std::string_view in) {
  auto count = core::kstrtoul(in, 10);
  if (!count) {
    env.log(&caller, "numa", "demote", count.error().name(), {{"node", nid}});
    return count.error();
  }
  const std::uint64_t done = model.demote_gigantic(nid, *count);
  env.log(&caller, "numa", "demote", "OK",
          {{"node", nid}, {"requested", *count}, {"demoted", done}});
  return in.size();
}

// demote_size_show: (PAGE_SIZE << h->demote_order) / SZ_1K as "%lukB\n".
// The demote order of the 1 GiB hstate is the 2 MiB hstate's, the only
// order demote_size_store accepts (below).
core::Status demote_size_show(core::PageBuffer& buf) {
  buf.emit("{}kB\n", huge_page_kib(HugeSize::k2M));
  return {};
}

// demote_size_store: memparse(buf) (no error of its own: junk is 0), then
// size_to_hstate (EINVAL: no hstate of that size), its order at least
// HUGETLB_PAGE_ORDER and below the 1 GiB hstate's (EINVAL otherwise). With
// the two x86 hstates only 2 MiB passes, and it is the order already set.
core::Result<std::size_t> demote_size_store(std::string_view in) {
  const unsigned long long bytes = core::memparse(in);
  if (bytes != huge_page_kib(HugeSize::k2M) * 1024) return core::Errno{EINVAL};
  return in.size();
}

}  // namespace hugetlb
}  // namespace vsysfs::devices
