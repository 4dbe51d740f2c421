#include "devices/numa/numa_node.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/numa/hugetlb.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<NodeRoot> kRootAttrs[] = {
    VSYSFS_ATTR_RO(NodeRoot, possible),
    VSYSFS_ATTR_RO(NodeRoot, online),
    VSYSFS_ATTR_RO(NodeRoot, has_normal_memory),
    VSYSFS_ATTR_RO(NodeRoot, has_memory),
    VSYSFS_ATTR_RO(NodeRoot, has_cpu),
    VSYSFS_ATTR_RO(NodeRoot, has_generic_initiator),
};
constexpr core::AttributeGroup<NodeRoot> kRootGroups[] = {{.name = "", .attrs = kRootAttrs}};

std::string node_list(const std::vector<int>& nodes, int nbits) {
  std::vector<bool> bits(static_cast<std::size_t>(nbits), false);
  for (int n : nodes) bits[static_cast<std::size_t>(n)] = true;
  return core::bitmap_print_list(bits);
}

std::vector<int> all_nodes(const NumaModel& m) {
  std::vector<int> out;
  for (int n = 0; n < m.nr_node_ids(); ++n) out.push_back(n);
  return out;
}

std::vector<bool> cpu_bits(const std::vector<unsigned>& cpus, unsigned nbits) {
  std::vector<bool> bits(nbits, false);
  for (unsigned c : cpus)
    if (c < nbits) bits[c] = true;
  return bits;
}

}  // namespace

std::string cpu_mask_string(const std::vector<unsigned>& cpus, unsigned nbits) {
  return core::bitmap_print_mask(cpu_bits(cpus, nbits), nbits) + "\n";
}

std::string cpu_list_string(const std::vector<unsigned>& cpus, unsigned nbits) {
  return core::bitmap_print_list(cpu_bits(cpus, nbits)) + "\n";
}

// include/linux/cpumask.h: a file that can hold the whole mask (9 chars per
// 32 bits) or the worst-case list (7 per CPU, halved), at least a page.
std::size_t cpumap_file_max_bytes(unsigned nr_cpus) {
  const std::size_t v = static_cast<std::size_t>(nr_cpus) * 9 / 32 - 1;
  return v > core::kPageSize ? v : core::kPageSize;
}

std::size_t cpulist_file_max_bytes(unsigned nr_cpus) {
  const std::size_t v = static_cast<std::size_t>(nr_cpus) * 7 / 2;
  return v > core::kPageSize ? v : core::kPageSize;
}

std::size_t read_slice(std::string_view text, std::uint64_t pos, std::span<char> out) {
  if (pos >= text.size()) return 0;
  const std::size_t n = std::min<std::size_t>(out.size(), text.size() - pos);
  std::memcpy(out.data(), text.data() + pos, n);
  return n;
}

// --- NodeRoot: drivers/base/node.c node_state_attr[], show_node_state ---

std::span<const core::AttributeGroup<NodeRoot>> NodeRoot::groups() { return kRootGroups; }

core::Status NodeRoot::possible_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", node_list(all_nodes(*model_), model_->nr_node_ids()));
  return {};
}

core::Status NodeRoot::online_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", node_list(all_nodes(*model_), model_->nr_node_ids()));
  return {};
}

core::Status NodeRoot::has_normal_memory_show(core::PageBuffer& buf) const {
  // x86_64 has no ZONE_HIGHMEM: every node with memory has normal memory.
  buf.emit("{}\n", node_list(model_->nodes_with_memory(), model_->nr_node_ids()));
  return {};
}

core::Status NodeRoot::has_memory_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", node_list(model_->nodes_with_memory(), model_->nr_node_ids()));
  return {};
}

core::Status NodeRoot::has_cpu_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", node_list(model_->nodes_with_cpu(), model_->nr_node_ids()));
  return {};
}

core::Status NodeRoot::has_generic_initiator_show(core::PageBuffer& buf) const {
  buf.append("\n");  // no ACPI generic initiator affinity structures
  return {};
}

// --- NumaNode ---

// The tables live in a member so that entries may read the private model.
std::span<const core::AttributeGroup<NumaNode>> NumaNode::groups(const NumaModel& model) {
  using N = NumaNode;
  // drivers/base/node.c node_dev_attrs / node_dev_bin_attrs (newest: cpumap
  // and cpulist are bin attributes sized for NR_CPUS); uevent is the driver
  // core's (device_add), empty for a node: the node bus adds no variables.
  static constexpr core::DeviceAttribute<N> kNodeAttrs[] = {
      VSYSFS_ATTR_RO(N, meminfo),
      VSYSFS_ATTR_RO(N, numastat),
      VSYSFS_ATTR_RO(N, distance),
      VSYSFS_ATTR_RO(N, vmstat),
      VSYSFS_ATTR(N, uevent, 0644, core::uevent_show_empty<N>, &N::uevent_store),
  };
  static constexpr core::BinAttribute<N> kNodeBin[] = {
      {"cpumap", 0444, 0, &N::cpumap_read, nullptr, &N::cpumap_size},
      {"cpulist", 0444, 0, &N::cpulist_read, nullptr, &N::cpulist_size},
  };
  // mm/hugetlb.c hstate_attrs for per-node hstates (hugetlb_register_node):
  // nr_hugepages 0644, free_hugepages and surplus_hugepages 0444, each
  // "%lu\n" of the node's count (nr_hugepages_show_common,
  // free_hugepages_show, surplus_hugepages_show). Locking: the model's.
  static constexpr core::DeviceAttribute<N> kHugeAttrs[] = {
      VSYSFS_ATTR_VALUE(N, nr_hugepages, 0644, &N::nr_hugepages_store, fmt_ulong,
                        [](const N& n) { return n.model_->node(n.nid_).huge_nr; }),
      VSYSFS_ATTR_VALUE(N, free_hugepages, 0444, nullptr, fmt_ulong,
                        [](const N& n) { return n.model_->node(n.nid_).huge_free; }),
      VSYSFS_ATTR_VALUE(N, surplus_hugepages, 0444, nullptr, fmt_ulong,
                        [](const N& n) { return n.model_->node(n.nid_).huge_surplus; }),
  };
  // The 1 GiB hstate's: the same three of its per-node counts, and
  // hstate_demote_attr_group (h->demote_order is set: demote_size 0644 shows
  // and sets the hstate's own, demote 0200 demotes from this node only).
  static constexpr core::DeviceAttribute<N> kGiganticAttrs[] = {
      VSYSFS_ATTR_VALUE(N, nr_hugepages, 0644, &N::nr_hugepages_1g_store, fmt_ulong,
                        [](const N& n) { return n.model_->node(n.nid_).gigantic_nr; }),
      VSYSFS_ATTR_VALUE(N, free_hugepages, 0444, nullptr, fmt_ulong,
                        [](const N& n) { return n.model_->node(n.nid_).gigantic_free; }),
      VSYSFS_ATTR_VALUE(N, surplus_hugepages, 0444, nullptr, fmt_ulong,
                        [](const N& n) { return n.model_->node(n.nid_).gigantic_surplus; }),
      VSYSFS_ATTR_RW(N, demote_size),
      VSYSFS_ATTR_WO(N, demote),
  };
  static constexpr core::AttributeGroup<N> kNodeGroups[] = {
      {.name = "", .attrs = kNodeAttrs, .bin_attrs = kNodeBin},
      {.name = "hugepages/hugepages-2048kB", .attrs = kHugeAttrs},
      {.name = "hugepages/hugepages-1048576kB", .attrs = kGiganticAttrs},
  };
  // hugetlb_register_node: a directory for every hstate (for_each_hstate);
  // without PSE hugetlb_init never sets hugetlb_sysfs_initialized, so
  // hugetlb_register_node returns at once: no hugepages directory.
  const std::size_t n = model.gigantic_pages() ? 3 : model.hugetlb_supported() ? 2 : 1;
  return std::span(kNodeGroups).first(n);
}

// drivers/base/core.c uevent_store -> kobject_synth_uevent on
// devices/system/node/nodeN (subsystem "node").
core::Result<std::size_t> NumaNode::uevent_store(const core::Caller& caller, std::string_view in) {
  const std::string devpath = "/devices/system/node/node" + std::to_string(nid_);
  return core::uevent_store(env_, caller, {devpath, "node", ""}, in);
}

std::vector<unsigned> NumaNode::online_node_cpus() const {
  // node_read_cpumap: cpumask_and(mask, cpumask_of_node(nid), cpu_online_mask)
  return model_->online_subset(model_->node_cpus(nid_));
}

std::string NumaNode::cpumap_text() const {
  return cpu_mask_string(online_node_cpus(), model_->nr_cpu_ids());
}

std::string NumaNode::cpulist_text() const {
  return cpu_list_string(online_node_cpus(), model_->nr_cpu_ids());
}

std::size_t NumaNode::cpumap_size() const { return cpumap_file_max_bytes(model_->nr_cpus()); }
std::size_t NumaNode::cpulist_size() const { return cpulist_file_max_bytes(model_->nr_cpus()); }

core::Result<std::size_t> NumaNode::cpumap_read(const core::Caller&, std::uint64_t pos,
                                                std::span<char> out) {
  // The bin reader formats afresh on every call and copies from `pos`.
  return read_slice(cpumap_text(), pos, out);
}

core::Result<std::size_t> NumaNode::cpulist_read(const core::Caller&, std::uint64_t pos,
                                                 std::span<char> out) {
  return read_slice(cpulist_text(), pos, out);
}

// drivers/base/node.c node_read_meminfo (newest field set without HIGHMEM,
// SHADOW_CALL_STACK or UNACCEPTED_MEMORY, with THP), then
// mm/hugetlb.c hugetlb_report_node_meminfo (only with PSE).
NumaNode::MeminfoKey NumaNode::meminfo_key(const NodeSnapshot& s) {
  MeminfoKey k{s.present, s.free, s.huge_nr, s.huge_free, s.huge_surplus};
  std::copy(s.used.begin(), s.used.end(), k.begin() + 5);
  return k;
}

// Every number below comes from the snapshot's fields in meminfo_key (and
// the node id): when those are what the kept text was made from, the text
// is what formatting would give, so it is appended instead. The snapshot is
// taken on every read, so a change shows on the next read.
core::Status NumaNode::meminfo_show(core::PageBuffer& buf) const {
  const NodeSnapshot s = model_->node(nid_);
  const MeminfoKey key = meminfo_key(s);
  {
    core::MutexLock lock(meminfo_mu_);
    if (meminfo_key_ == key) {
      buf.append(meminfo_text_);
      return {};
    }
  }
  const std::size_t start = buf.size();
  auto used = [&](PageKind k) { return s.used[static_cast<int>(k)]; };
  auto K = [](std::uint64_t pages) { return pages * kPageKiB; };
  const std::uint64_t inactive_anon = used(PageKind::Anon) + used(PageKind::Shmem);
  const std::uint64_t inactive_file = used(PageKind::File);
  const std::uint64_t sreclaimable = used(PageKind::SlabReclaimable);
  const std::uint64_t sunreclaim = used(PageKind::SlabUnreclaimable);
  // "Node %d MemTotal:       %8lu kB": label and colon in 16 columns. The
  // labels carry their colon so a line formats without a heap string.
  auto line = [&](std::string_view label_colon, std::uint64_t kb) {
    buf.emit("Node {} {:<16}{:>8} kB\n", nid_, label_colon, kb);
  };
  line("MemTotal:", K(s.present));
  line("MemFree:", K(s.free));
  line("MemUsed:", K(s.present - s.free));
  line("SwapCached:", 0);
  line("Active:", 0);  // new pages start on the inactive lists; nothing ages them
  line("Inactive:", K(inactive_anon + inactive_file));
  line("Active(anon):", 0);
  line("Inactive(anon):", K(inactive_anon));
  line("Active(file):", 0);
  line("Inactive(file):", K(inactive_file));
  line("Unevictable:", 0);
  line("Mlocked:", 0);
  line("Dirty:", 0);
  line("Writeback:", 0);
  line("FilePages:", K(used(PageKind::File) + used(PageKind::Shmem)));
  line("Mapped:", 0);
  line("AnonPages:", K(used(PageKind::Anon)));
  line("Shmem:", K(used(PageKind::Shmem)));
  line("KernelStack:", K(used(PageKind::KernelStack)));  // NR_KERNEL_STACK_KB is already kB
  line("PageTables:", K(used(PageKind::PageTables)));
  line("SecPageTables:", 0);
  line("NFS_Unstable:", 0);
  line("Bounce:", 0);
  line("WritebackTmp:", 0);
  line("KReclaimable:", K(sreclaimable));
  line("Slab:", K(sreclaimable + sunreclaim));
  line("SReclaimable:", K(sreclaimable));
  line("SUnreclaim:", K(sunreclaim));
  line("AnonHugePages:", 0);
  line("ShmemHugePages:", 0);
  line("ShmemPmdMapped:", 0);
  line("FileHugePages:", 0);
  line("FilePmdMapped:", 0);
  // hugetlb_report_node_meminfo: the default hstate's three lines, nothing
  // when !hugepages_supported() (no PSE). The THP lines above
  // (AnonHugePages..FilePmdMapped) are CONFIG_TRANSPARENT_HUGEPAGE's and
  // stay.
  if (model_->hugetlb_supported()) {
    buf.emit("Node {} HugePages_Total: {:>5}\n", nid_, s.huge_nr);
    buf.emit("Node {} HugePages_Free:  {:>5}\n", nid_, s.huge_free);
    buf.emit("Node {} HugePages_Surp:  {:>5}\n", nid_, s.huge_surplus);
  }
  if (!buf.overflowed()) {
    core::MutexLock lock(meminfo_mu_);
    meminfo_key_ = key;
    meminfo_text_.assign(buf.view().substr(start));
  }
  return {};
}

// drivers/base/node.c node_read_numastat.
core::Status NumaNode::numastat_show(core::PageBuffer& buf) const {
  const NumaStat st = model_->node(nid_).stat;
  buf.emit(
      "numa_hit {}\nnuma_miss {}\nnuma_foreign {}\ninterleave_hit {}\nlocal_node {}\nother_node {}\n",
      st.numa_hit, st.numa_miss, st.numa_foreign, st.interleave_hit, st.local_node, st.other_node);
  return {};
}

// drivers/base/node.c node_read_distance.
core::Status NumaNode::distance_show(core::PageBuffer& buf) const {
  for (int i = 0; i < model_->nr_node_ids(); ++i) {  // for_each_online_node
    // The kernel picks the separator by "i != 0", not by "not the first
    // online node", so with node 0 offline its row would start with a
    // space (docs/kernel-semantics.md section 4.6). Every node of a vsysfs machine is online.
    buf.emit("{}{}", i ? " " : "", model_->node_distance(nid_, i));
  }
  buf.append("\n");
  return {};
}

// drivers/base/node.c node_read_vmstat: zone counters, NUMA events, node
// counters, names from mm/vmstat.c vmstat_text (v6.1, x86_64 distribution
// config: ZSMALLOC, SWAP, NUMA_BALANCING). Counters the model does not
// drive are 0.
core::Status NumaNode::vmstat_show(core::PageBuffer& buf) const {
  const NodeSnapshot s = model_->node(nid_);
  auto used = [&](PageKind k) { return s.used[static_cast<int>(k)]; };
  const std::uint64_t inactive_anon = used(PageKind::Anon) + used(PageKind::Shmem);
  const std::uint64_t inactive_file = used(PageKind::File);
  auto item = [&](std::string_view name, std::uint64_t v) { buf.emit("{} {}\n", name, v); };
  // enum zone_stat_item
  item("nr_free_pages", s.free);
  item("nr_zone_inactive_anon", inactive_anon);
  item("nr_zone_active_anon", 0);
  item("nr_zone_inactive_file", inactive_file);
  item("nr_zone_active_file", 0);
  item("nr_zone_unevictable", 0);
  item("nr_zone_write_pending", 0);
  item("nr_mlock", 0);
  item("nr_bounce", 0);
  item("nr_zspages", 0);
  item("nr_free_cma", 0);
  // enum numa_stat_item
  item("numa_hit", s.stat.numa_hit);
  item("numa_miss", s.stat.numa_miss);
  item("numa_foreign", s.stat.numa_foreign);
  item("numa_interleave", s.stat.interleave_hit);
  item("numa_local", s.stat.local_node);
  item("numa_other", s.stat.other_node);
  // enum node_stat_item
  item("nr_inactive_anon", inactive_anon);
  item("nr_active_anon", 0);
  item("nr_inactive_file", inactive_file);
  item("nr_active_file", 0);
  item("nr_unevictable", 0);
  item("nr_slab_reclaimable", used(PageKind::SlabReclaimable));
  item("nr_slab_unreclaimable", used(PageKind::SlabUnreclaimable));
  for (std::string_view zero :
       {"nr_isolated_anon", "nr_isolated_file", "workingset_nodes", "workingset_refault_anon",
        "workingset_refault_file", "workingset_activate_anon", "workingset_activate_file",
        "workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim"})
    item(zero, 0);
  item("nr_anon_pages", used(PageKind::Anon));
  item("nr_mapped", 0);
  item("nr_file_pages", used(PageKind::File) + used(PageKind::Shmem));
  item("nr_dirty", 0);
  item("nr_writeback", 0);
  item("nr_writeback_temp", 0);
  item("nr_shmem", used(PageKind::Shmem));
  for (std::string_view zero :
       {"nr_shmem_hugepages", "nr_shmem_pmdmapped", "nr_file_hugepages", "nr_file_pmdmapped",
        "nr_anon_transparent_hugepages", "nr_vmscan_write", "nr_vmscan_immediate_reclaim",
        "nr_dirtied", "nr_written", "nr_throttled_written", "nr_kernel_misc_reclaimable",
        "nr_foll_pin_acquired", "nr_foll_pin_released"})
    item(zero, 0);
  item("nr_kernel_stack", used(PageKind::KernelStack) * kPageKiB);  // NR_KERNEL_STACK_KB
  item("nr_page_table_pages", used(PageKind::PageTables));
  item("nr_sec_page_table_pages", 0);
  item("nr_swapcached", 0);
  item("pgpromote_success", 0);
  item("pgpromote_candidate", 0);
  return {};
}

// mm/hugetlb.c nr_hugepages_store_common: kstrtoul(buf, 10), then
// set_max_huge_pages for this node only; a short pool is not an error
// (the store returns len and the file shows what was reached).
core::Result<std::size_t> NumaNode::nr_hugepages_store(const core::Caller& caller,
                                                       std::string_view in) {
  return hugepages_store(caller, in, HugeSize::k2M);
}

core::Result<std::size_t> NumaNode::nr_hugepages_1g_store(const core::Caller& caller,
                                                          std::string_view in) {
  return hugepages_store(caller, in, HugeSize::k1G);
}

core::Result<std::size_t> NumaNode::hugepages_store(const core::Caller& caller, std::string_view in,
                                                    HugeSize size) {
  const std::uint64_t kib = huge_page_kib(size);
  auto count = core::kstrtoul(in, 10);
  if (!count) {
    env_.log(&caller, "numa", "nr_hugepages", count.error().name(),
             {{"node", nid_}, {"size_kb", kib}});
    return count.error();
  }
  const NodeSnapshot s = model_->node(nid_);
  const std::uint64_t before = size == HugeSize::k1G ? s.gigantic_nr : s.huge_nr;
  const std::uint64_t now = model_->set_nr_hugepages(nid_, *count, size);
  env_.log(
      &caller, "numa", "nr_hugepages", "OK",
      {{"node", nid_}, {"size_kb", kib}, {"requested", *count}, {"before", before}, {"now", now}});
  return in.size();
}

// mm/hugetlb.c demote_store with the node's mask.
core::Result<std::size_t> NumaNode::demote_store(const core::Caller& caller, std::string_view in) {
  return hugetlb::demote_store(env_, *model_, nid_, caller, in);
}

// demote_size of a node's directory is the hstate's (kobj_to_hstate(kobj,
// NULL)): the same value and the same store as the global file.
core::Status NumaNode::demote_size_show(core::PageBuffer& buf) const {
  return hugetlb::demote_size_show(buf);
}

core::Result<std::size_t> NumaNode::demote_size_store(const core::Caller&, std::string_view in) {
  return hugetlb::demote_size_store(in);
}

}  // namespace vsysfs::devices
