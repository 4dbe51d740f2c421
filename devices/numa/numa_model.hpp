#pragma once

// NumaModel: the page allocator behind /sys/devices/system/node and
// /sys/devices/system/cpu. One pg_data_t per node (2.6.18's
// Documentation/vm/numa, "Each node's page allocation data structures have
// also been encapsulated into a pg_data_t"): its CPUs, its present and free
// pages, the pages in use by kind, its hugepage pool, its SLIT distance row,
// its fallback zonelist and its numastat counters. Plus the CPUs: which node
// each belongs to, its package/core, and whether it is online.
//
// Follows (docs/kernel-semantics.md section 4, 4.8 in particular):
//   mm/page_alloc.c   find_next_best_node, build_zonelists,
//                     __build_all_zonelists (node_load reset once per
//                     rebuild), get_page_from_freelist (first zonelist
//                     node with free pages), zone_statistics
//   mm/mempolicy.c    MPOL_DEFAULT/LOCAL, MPOL_PREFERRED, MPOL_BIND,
//                     MPOL_INTERLEAVE (interleave_nodes: per-task cursor
//                     starting at the first node of the set),
//                     alloc_page_interleave (NUMA_INTERLEAVE_HIT), policy_node
//   mm/hugetlb.c      per-node persistent pools of each hstate
//                     (set_max_huge_pages, alloc_pool_huge_folio,
//                     demote_pool_huge_page)
// Simplifications, each deliberate: one zone (ZONE_NORMAL) per node, so the
// zonelist is the node order; no watermarks or reclaim, a node supplies
// until its free count is 0; an allocation is a batch of order-0 pages that
// either all succeed or fail with ENOMEM and change nothing. The model
// tracks page counts, not where pages lie, so it has no fragmentation: a
// gigantic (1 GiB) page, which the kernel takes with alloc_contig_pages as
// one free, contiguous, 1 GiB-aligned range (migrating movable pages out
// of it), is available on a node whenever the node's free count holds
// kGiganticPagePages pages.
//
// The model is also the API the Xen balloon uses to move guest pages in
// and out of nodes (balloon_take_pages / balloon_give_pages), like the
// kernel balloon's alloc_page + adjust_managed_page_count(): that changes
// a node's managed pages (MemTotal) and free pages only. The node states
// (N_MEMORY, N_NORMAL_MEMORY) and the zonelists change only with memory
// hotplug (add_present_pages / remove_present_pages: online_pages,
// offline_pages), so a node the balloon emptied stays in has_memory and in
// every zonelist, and an allocation bound to it fails with ENOMEM.
//
// Thread-safety: every public member may be called from any thread; all
// state is guarded by one mutex (mu_), a leaf: nothing is called out while
// it is held.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/locks.hpp"
#include "core/result.hpp"
#include "core/state_record.hpp"

namespace vsysfs::devices {

class Machine;

inline constexpr int kLocalDistance = 10;   // include/linux/topology.h LOCAL_DISTANCE
inline constexpr int kRemoteDistance = 20;  // REMOTE_DISTANCE
inline constexpr std::uint64_t kPageKiB = 4;
inline constexpr std::uint64_t kHugePagePages = 512;  // 2048 kB / 4 kB (HPAGE_PMD_NR)
inline constexpr std::uint64_t kGiganticPagePages =
    262144;  // 1 GiB / 4 kB (PUD_SIZE >> PAGE_SHIFT)

// The x86 hstates (mm/hugetlb.c hstates[]): the default one, PMD-sized
// (HUGETLB_PAGE_ORDER, 2 MiB), and on a CPU with X86_FEATURE_GBPAGES
// (cpuinfo "pdpe1gb") the gigantic PUD-sized one (1 GiB), which
// arch/x86/mm/hugetlbpage.c gigantic_pages_init adds at boot whether or not
// the command line asks for 1 GiB pages.
enum class HugeSize : int { k2M = 0, k1G = 1 };
inline constexpr int kHugeSizes = 2;
constexpr std::uint64_t huge_page_pages(HugeSize s) {  // pages_per_huge_page
  return s == HugeSize::k1G ? kGiganticPagePages : kHugePagePages;
}
constexpr std::uint64_t huge_page_kib(HugeSize s) { return huge_page_pages(s) * 4; }

// What a page is used for; each maps to the meminfo/vmstat lines it feeds.
enum class PageKind : int {
  Anon,               // AnonPages, Inactive(anon)    nr_anon_pages, nr_inactive_anon
  File,               // FilePages, Inactive(file)    nr_file_pages, nr_inactive_file
  Shmem,              // Shmem, FilePages, Inactive(anon)
  SlabReclaimable,    // Slab, SReclaimable, KReclaimable
  SlabUnreclaimable,  // Slab, SUnreclaim
  PageTables,         // PageTables                   nr_page_table_pages
  KernelStack,        // KernelStack (in kB)          nr_kernel_stack (kB)
};
inline constexpr int kPageKinds = 7;
std::string_view page_kind_name(PageKind k);
std::optional<PageKind> parse_page_kind(std::string_view s);

enum class PolicyMode { Default, Preferred, Bind, Interleave };
std::string_view policy_mode_name(PolicyMode m);

struct MemPolicy {
  PolicyMode mode = PolicyMode::Default;
  std::vector<int> nodes;  // Preferred: one node; Bind/Interleave: the set (sorted)
};

// The six numastat counters (drivers/base/node.c node_read_numastat).
struct NumaStat {
  std::uint64_t numa_hit = 0;
  std::uint64_t numa_miss = 0;
  std::uint64_t numa_foreign = 0;
  std::uint64_t interleave_hit = 0;
  std::uint64_t local_node = 0;
  std::uint64_t other_node = 0;
  friend bool operator==(const NumaStat&, const NumaStat&) = default;
};

struct CpuTopology {
  int node = -1;
  int package = 0;
  int core_id = 0;
  int thread = 0;  // 0 for the first hardware thread of a core
};

// One cache leaf (drivers/base/cacheinfo.c struct cacheinfo), the same on
// every CPU: cpuN/cache/indexM is the M-th leaf of the machine's list.
enum class CacheType { Data, Instruction, Unified };
std::string_view cache_type_name(CacheType t);  // "Data", "Instruction", "Unified"
struct CacheLeaf {
  unsigned level = 1;
  CacheType type = CacheType::Unified;
  std::uint64_t size_kib = 0;
  unsigned ways = 1;         // ways_of_associativity
  unsigned line_size = 64;   // coherency_line_size
  unsigned partition = 1;    // physical_line_partition
  bool per_package = false;  // shared by the package's CPUs, else by the core's threads
  unsigned sets() const {    // number_of_sets
    return static_cast<unsigned>(size_kib * 1024 / (std::uint64_t{ways} * line_size * partition));
  }
};

// The machine description's [numa] section, parsed (see numa_node.cpp).
// How build_zonelists penalises the first node of a new distance group
// (node_load[node] ...), which decides the order of equally distant nodes.
enum class NodeLoadPenalty {
  Add1,         // += 1 (current kernels; += nr_online_nodes before that, same order)
  AddCountdown, // += load, load = nr_online_nodes counting down per pick (2.6.18, 5.16)
  Assign,       // = load (2.6.23 .. 5.15)
};

struct NumaConfig {
  struct Node {
    std::vector<unsigned> cpus;
    std::uint64_t present_pages = 0;
    std::uint64_t hugepages = 0;     // persistent 2 MiB pages at boot
    std::uint64_t hugepages_1g = 0;  // persistent 1 GiB pages at boot (hugepagesz=1G hugepages=N:K)
    int package = -1;             // -1: the node's own id
  };
  std::vector<Node> nodes;
  std::vector<std::vector<int>> distance;  // empty: 10 local, 20 remote
  unsigned threads_per_core = 1;
  NodeLoadPenalty node_load = NodeLoadPenalty::Add1;
  unsigned possible_cpus = 0;  // nr_cpu_ids; 0: one past the highest CPU
  unsigned nr_cpus = 8192;     // NR_CPUS (kernel_max = NR_CPUS - 1)
  std::vector<unsigned> offline_cpus;
  // X86_FEATURE_PSE (cpuinfo "pse"): hugetlb exists at all. Without it
  // (a Xen PV guest: Xen offers PSE to HVM guests only) hugetlb_init
  // returns early (hugepages_supported() is boot_cpu_has(X86_FEATURE_PSE)
  // on x86): no hstate, no kernel/mm/hugepages, no nodeN/hugepages, no
  // HugePages_* lines in nodeN/meminfo, and a boot pool is an error.
  bool pse = true;
  // X86_FEATURE_GBPAGES (cpuinfo "pdpe1gb"): the 1 GiB hstate exists
  // (with pse only).
  bool gbpages = true;
  // The machine has no [numa] section: this is the default topology the
  // kernel builds without a SRAT (one node, or the [net] widths), not a
  // NUMA description the other sections must follow (numa_machine.cpp).
  bool implicit = false;
  // cpuN/cache/index*; empty: the default geometry (NumaModel::caches).
  std::vector<CacheLeaf> caches;
  // The MODALIAS of every cpuN/uevent after "MODALIAS=" (a recorded
  // machine's CPU); empty: the modelled Skylake-SP's (cpu.cpp).
  std::string cpu_modalias;
};

// One successful allocation as the workload knob sees it.
struct Allocation {
  std::uint64_t id = 0;
  unsigned cpu = 0;
  MemPolicy policy;
  PageKind kind = PageKind::Anon;
  std::uint64_t pages = 0;
  std::vector<std::uint64_t> per_node;  // pages supplied by each node
};

struct AllocRequest {
  unsigned cpu = 0;
  std::uint64_t pages = 0;
  MemPolicy policy;
  PageKind kind = PageKind::Anon;
};

// Everything a node file shows, copied out under the lock.
struct NodeSnapshot {
  int id = 0;
  std::vector<unsigned> cpus;  // all CPUs of the node
  std::uint64_t present = 0;
  std::uint64_t free = 0;
  std::array<std::uint64_t, kPageKinds> used{};
  // The default (2 MiB) hstate's pool on the node.
  std::uint64_t huge_nr = 0;
  std::uint64_t huge_free = 0;
  std::uint64_t huge_surplus = 0;
  // The gigantic (1 GiB) hstate's pool (0 without GBPAGES).
  std::uint64_t gigantic_nr = 0;
  std::uint64_t gigantic_free = 0;
  std::uint64_t gigantic_surplus = 0;
  // Pages the kernel allocated for itself at boot (counted in
  // used[SlabUnreclaimable]); nothing ever frees them.
  std::uint64_t kernel = 0;
  NumaStat stat;
};

class NumaModel {
 public:
  // Validates the configuration; throws std::invalid_argument with a
  // message naming what is wrong (the builder turns it into a ConfigError).
  explicit NumaModel(NumaConfig config);
  NumaModel(const NumaModel&) = delete;
  NumaModel& operator=(const NumaModel&) = delete;

  // --- topology (constant after construction, no lock needed) ---
  int nr_node_ids() const { return static_cast<int>(nodes_.size()); }
  unsigned nr_cpu_ids() const { return nr_cpu_ids_; }
  unsigned nr_cpus() const { return nr_cpus_; }
  // Built by default for a machine without [numa] (NumaConfig::implicit).
  bool implicit() const { return implicit_; }
  // The cache leaves every CPU has, in index order.
  const std::vector<CacheLeaf>& caches() const { return caches_; }
  // NumaConfig::cpu_modalias; empty for the modelled CPU.
  const std::string& cpu_modalias() const { return cpu_modalias_; }
  // cacheinfo `id` of leaf `leaf` of `cpu`: x86 get_cache_id is the APIC
  // id shifted right past the CPUs sharing the cache, i.e. the core
  // (package << core bits | core_id) for a per-core cache, the package for
  // a per-package one.
  unsigned cache_id(unsigned cpu, const CacheLeaf& leaf) const;
  // The present CPUs sharing `leaf` with `cpu` (the core's or package's).
  std::vector<unsigned> cache_cpus(unsigned cpu, const CacheLeaf& leaf) const;
  bool cpu_present(unsigned cpu) const { return cpu < topo_.size() && topo_[cpu].node >= 0; }
  const CpuTopology& topology(unsigned cpu) const { return topo_.at(cpu); }
  std::vector<unsigned> present_cpus() const;
  // CPUs sharing the core / the package with `cpu` (present ones).
  std::vector<unsigned> core_cpus(unsigned cpu) const;
  std::vector<unsigned> package_cpus(unsigned cpu) const;
  int node_distance(int from, int to) const { return distance_[from][to]; }
  const std::vector<unsigned>& node_cpus(int nid) const { return node_cpus_[nid]; }
  // The node's memory as the machine booted with it (the firmware's view:
  // SMBIOS memory devices), before any balloon or hotplug change.
  std::uint64_t boot_present_pages(int nid) const { return nodes_[nid].present_pages; }

  // --- CPU hotplug state ---
  bool cpu_online(unsigned cpu) const;
  std::vector<unsigned> online_cpus() const;
  // `cpus` without the offline ones, under one lock (one consistent view).
  std::vector<unsigned> online_subset(std::vector<unsigned> cpus) const;
  // device_online/device_offline of a CPU: EBUSY for the last online CPU,
  // EINVAL for a CPU that is not present. Returns whether it changed.
  core::Result<bool> set_cpu_online(unsigned cpu, bool online);

  // --- node states (N_ONLINE, N_MEMORY, N_NORMAL_MEMORY, N_CPU) ---
  // N_MEMORY: set at boot for a node with memory and by memory hotplug;
  // not by ballooning (see the top of this file).
  std::vector<int> nodes_with_memory() const;
  std::vector<int> nodes_with_cpu() const;  // nodes with an online CPU

  // --- zonelists ---
  // ZONELIST_FALLBACK of node `nid` (node order; memoryless nodes are not in
  // any zonelist, and a memoryless node's own list starts elsewhere).
  std::vector<int> zonelist(int nid) const;

  // --- allocations ---
  // The pages as order-0 allocations under `policy` from `cpu`, all or
  // nothing: EINVAL for a CPU that is not online or a policy whose node set
  // has no node with memory, ENOMEM when the allowed nodes cannot supply
  // them all (nothing changes).
  core::Result<Allocation> alloc(const AllocRequest& req);
  // Returns an allocation's pages to the nodes that supplied them; ENOENT
  // for an unknown id.
  core::Result<Allocation> free(std::uint64_t id);
  std::vector<Allocation> allocations() const;
  std::uint64_t last_alloc_id() const;

  // --- hugepages (nodeN/hugepages/hugepages-{2048,1048576}kB/nr_hugepages) ---
  // Whether hugetlb is supported at all (NumaConfig::pse): the 2 MiB
  // hstate exists.
  bool hugetlb_supported() const { return pse_; }
  // Whether the 1 GiB hstate exists (NumaConfig::gbpages, with pse).
  bool gigantic_pages() const { return pse_ && gbpages_; }
  // Whether the hstate of `size` exists; the pool functions below leave a
  // missing one empty (nothing to grow or shrink: they return 0).
  bool hstate_exists(HugeSize size) const {
    return size == HugeSize::k1G ? gigantic_pages() : hugetlb_supported();
  }
  // set_max_huge_pages of hstate `size` for one node: grows from the node's
  // free pages as far as they go (a gigantic page needs kGiganticPagePages
  // free pages on the node: see the top of this file), shrinks by freeing
  // unused huge pages. Returns the node's new count.
  std::uint64_t set_nr_hugepages(int nid, std::uint64_t count, HugeSize size = HugeSize::k2M);
  // set_max_huge_pages(h, count, NUMA_NO_NODE, N_MEMORY) for the global
  // kernel/mm/hugepages/hugepages-*/nr_hugepages: grows one page at a
  // time round-robin over the nodes from the hstate's next_nid_to_alloc (a
  // node that cannot supply one is skipped), shrinks freeing free huge
  // pages round-robin from next_nid_to_free. Returns the new total.
  std::uint64_t set_global_nr_hugepages(std::uint64_t count, HugeSize size = HugeSize::k2M);
  struct HugeTotals {
    std::uint64_t nr = 0, free = 0, surplus = 0;
  };
  HugeTotals huge_totals(HugeSize size = HugeSize::k2M) const;
  // demote_store of the 1 GiB hstate (its demote_size is 2048kB, the only
  // smaller hstate): up to `count` free gigantic pages of node `nid` (-1:
  // every node, round-robin from the hstate's next_nid_to_free, each node
  // giving what it has) become 512 free 2 MiB pages each on the same node
  // (demote_pool_huge_page). The buddy allocator's free pages do not
  // change. Returns how many were demoted (fewer when the free pages run
  // out: no error, as in the kernel).
  std::uint64_t demote_gigantic(int nid, std::uint64_t count);

  // --- boot: the guest kernel's own memory ---
  // The kernel's boot allocations on node `nid` (slab, kernel stacks, page
  // tables: unreclaimable, never freed): `pages` free pages become used
  // (SUnreclaim) and NodeSnapshot::kernel. EINVAL for a node that does not
  // exist, ENOMEM when the node has fewer free pages (nothing changes).
  core::Status reserve_kernel_pages(int nid, std::uint64_t pages);

  // --- memory hotplug (memory blocks: online_pages / offline_pages) ---
  // Pages onlined on node `nid`: present and free grow by `pages`. EINVAL
  // for a node that does not exist or a count that would overflow the
  // node's present pages. A node that gains its first memory joins
  // N_MEMORY and the zonelists are rebuilt.
  core::Status add_present_pages(int nid, std::uint64_t pages);
  // Takes up to `pages` free pages off node `nid` (offline_pages). Returns
  // how many it got. A node left with no present pages leaves N_MEMORY and
  // the zonelists are rebuilt. EINVAL for a node that does not exist.
  core::Result<std::uint64_t> remove_present_pages(int nid, std::uint64_t pages);

  // --- balloon API (drivers/xen/balloon.c) ---
  // decrease_reservation: alloc_page(GFP_BALLOON) by a thread on node
  // `local` (whose zonelist starts at `local`: the preferred zone) that
  // falls back to node `nid`, then adjust_managed_page_count(page, -1)
  // for each: takes up to `pages` free pages and removes them from the
  // node's managed (MemTotal) pages. The pages count in numastat as any
  // page allocation does (zone_statistics: numa_hit or numa_miss /
  // numa_foreign, local_node or other_node). Returns how many it got (0
  // for a node with no free page: the allocation fails). Node states and
  // zonelists stay. EINVAL for a node that does not exist.
  core::Result<std::uint64_t> balloon_take_pages(int nid, std::uint64_t pages, int local);
  // increase_reservation: balloon_retrieve + __free_reserved_page
  // (adjust_managed_page_count(+1)): `pages` pages join node `nid`'s
  // managed and free pages. Node states and zonelists stay, except that a
  // node not in N_MEMORY joins it (its memory arrives as hotplug would).
  // EINVAL for a node that does not exist or an overflow.
  core::Status balloon_give_pages(int nid, std::uint64_t pages);

  NodeSnapshot node(int nid) const;

  // --- machine snapshots (docs/snapshot.md; devices/numa/numa_state.cpp) ---
  // The mutable part (pages, numastat, hugepages, CPU online state,
  // allocations, the hstate cursors) as fields "numa.*". load_state checks
  // every field before changing anything (EINVAL: a record of another
  // topology) and rebuilds the zonelists.
  void save_state(core::StateWriter& w) const;
  core::Status load_state(const core::StateReader& r);

 private:
  struct Pgdat {
    std::uint64_t present = 0;
    std::uint64_t free = 0;
    std::array<std::uint64_t, kPageKinds> used{};
    struct HugePool {
      std::uint64_t nr = 0;    // nr_huge_pages_node
      std::uint64_t free = 0;  // free_huge_pages_node
    };
    std::array<HugePool, kHugeSizes> huge{};  // index: HugeSize
    std::uint64_t kernel = 0;
    // node_states[N_MEMORY] (and N_NORMAL_MEMORY: one zone per node).
    bool n_memory = false;
    NumaStat stat;
    std::vector<int> zonelist;
  };

  void build_all_zonelists_locked();
  std::vector<int> memory_nodes_locked() const;
  bool has_memory_locked(int nid) const { return pgdat_[nid].n_memory; }

  std::vector<unsigned> topo_cpus_;           // present CPUs, ascending
  std::vector<CpuTopology> topo_;             // index = cpu id, node -1 = absent
  std::vector<std::vector<unsigned>> node_cpus_;
  std::vector<std::vector<int>> distance_;
  std::vector<NumaConfig::Node> nodes_;
  NodeLoadPenalty node_load_penalty_ = NodeLoadPenalty::Add1;
  unsigned nr_cpu_ids_ = 0;
  unsigned nr_cpus_ = 0;
  bool implicit_ = false;
  bool pse_ = true;
  bool gbpages_ = true;
  std::vector<CacheLeaf> caches_;
  std::string cpu_modalias_;
  unsigned core_bits_ = 0;  // bits for the core id in an APIC id (count_order of cores per package)

  mutable core::Mutex mu_{"numa.pgdat"};  // Order: leaf (never calls out while held)
  std::vector<Pgdat> pgdat_;              // guarded by mu_
  std::vector<bool> online_;              // guarded by mu_; index = cpu
  std::map<std::uint64_t, Allocation> allocations_;  // guarded by mu_
  std::uint64_t next_id_ = 1;                        // guarded by mu_
  std::uint64_t last_id_ = 0;                        // guarded by mu_
  // Each hstate's round-robin cursors (struct hstate), index HugeSize.
  std::array<int, kHugeSizes> next_nid_to_alloc_{};  // guarded by mu_
  std::array<int, kHugeSizes> next_nid_to_free_{};   // guarded by mu_
};

// The machine's NUMA model: from [numa], or the default topology of a
// machine without one (NumaModel::implicit; null only before the [numa]
// builder ran, which it does on every machine). The balloon's builder runs after the NUMA one
// (section order) and finds the model here.
std::shared_ptr<NumaModel> numa_model_of(const Machine& machine);
void set_numa_model(const Machine& machine, std::shared_ptr<NumaModel> model);

}  // namespace vsysfs::devices
