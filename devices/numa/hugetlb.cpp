#include "devices/numa/hugetlb.hpp"

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

using H = HugetlbGlobal;
using core::fmt_ulong;

// mm/hugetlb.c hstate_attrs, in its order (nr_hugepages_mempolicy with
// CONFIG_NUMA).
constexpr core::DeviceAttribute<H> kAttrs[] = {
    VSYSFS_ATTR_VALUE(H, nr_hugepages, 0644, &H::nr_hugepages_store, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals().nr; }),
    VSYSFS_ATTR_VALUE(H, nr_overcommit_hugepages, 0644, &H::nr_overcommit_hugepages_store,
                      fmt_ulong, [](const H& h) { return h.overcommit(); }),
    VSYSFS_ATTR_VALUE(H, free_hugepages, 0444, nullptr, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals().free; }),
    VSYSFS_ATTR_VALUE(H, resv_hugepages, 0444, nullptr, fmt_ulong,
                      [](const H&) { return std::uint64_t{0}; }),
    VSYSFS_ATTR_VALUE(H, surplus_hugepages, 0444, nullptr, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals().surplus; }),
    VSYSFS_ATTR_VALUE(H, nr_hugepages_mempolicy, 0644, &H::nr_hugepages_store, fmt_ulong,
                      [](const H& h) { return h.model().huge_totals().nr; }),
};
constexpr core::AttributeGroup<H> kGroups[] = {{.name = "", .attrs = kAttrs}};

}  // namespace

std::span<const core::AttributeGroup<H>> HugetlbGlobal::groups() { return kGroups; }

// nr_hugepages_store_common: kstrtoul(buf, 10), then set_max_huge_pages
// with nodes_allowed = N_MEMORY.
core::Result<std::size_t> HugetlbGlobal::nr_hugepages_store(const core::Caller& caller,
                                                            std::string_view in) {
  auto count = core::kstrtoul(in, 10);
  if (!count) {
    env_.log(&caller, "numa", "nr_hugepages", count.error().name(), {{"node", -1}});
    return count.error();
  }
  const std::uint64_t before = model_->huge_totals().nr;
  const std::uint64_t now = model_->set_global_nr_hugepages(*count);
  env_.log(&caller, "numa", "nr_hugepages", "OK",
           {{"node", -1}, {"requested", *count}, {"before", before}, {"now", now}});
  return in.size();
}

// nr_overcommit_hugepages_store: kstrtoul(buf, 10); not gigantic.
core::Result<std::size_t> HugetlbGlobal::nr_overcommit_hugepages_store(const core::Caller&,
                                                                       std::string_view in) {
  auto v = core::kstrtoul(in, 10);
  if (!v) return v.error();
  overcommit_ = *v;
  return in.size();
}

}  // namespace vsysfs::devices
