#include "devices/numa/numa_model.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "devices/machine/machine.hpp"

namespace vsysfs::devices {
namespace {

// mm/page_alloc.c find_next_best_node: val *= MAX_NUMNODES, i.e.
// 1 << CONFIG_NODES_SHIFT (10 on distribution x86_64 kernels). node_load
// never reaches it, so the distance term always dominates.
constexpr std::int64_t kMaxNumNodes = 1024;
// PENALTY_FOR_NODE_WITH_CPUS
constexpr std::int64_t kPenaltyForNodeWithCpus = 1;

constexpr std::string_view kKindNames[kPageKinds] = {
    "anon", "file", "shmem", "slab_reclaimable", "slab_unreclaimable", "pagetables", "kernel_stack",
};

// Each machine's model (machines built in one process, as the unit tests do).
struct Registry {
  core::Mutex mu{"numa.registry_mu"};  // Order: leaf
  std::map<const Machine*, std::weak_ptr<NumaModel>> models GUARDED_BY(mu);
};
Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

std::string_view page_kind_name(PageKind k) { return kKindNames[static_cast<int>(k)]; }

std::optional<PageKind> parse_page_kind(std::string_view s) {
  for (int i = 0; i < kPageKinds; ++i)
    if (kKindNames[i] == s) return static_cast<PageKind>(i);
  if (s == "slab") return PageKind::SlabUnreclaimable;
  return std::nullopt;
}

std::string_view policy_mode_name(PolicyMode m) {
  switch (m) {
    case PolicyMode::Default: return "default";
    case PolicyMode::Preferred: return "preferred";
    case PolicyMode::Bind: return "bind";
    case PolicyMode::Interleave: return "interleave";
  }
  return "?";
}

NumaModel::NumaModel(NumaConfig config) {
  nodes_ = std::move(config.nodes);
  implicit_ = config.implicit;
  pse_ = config.pse;
  gbpages_ = config.gbpages;
  node_load_penalty_ = config.node_load;
  const int n = static_cast<int>(nodes_.size());
  if (n == 0) throw std::invalid_argument("at least one node is needed");
  if (n > kMaxNumNodes) throw std::invalid_argument("more nodes than MAX_NUMNODES (1024)");

  // The SLIT. The kernel's acpi_numa_slit_init/slit_valid refuse a table
  // whose diagonal is not LOCAL_DISTANCE or whose other entries are not
  // above it; a machine description with such a table is an error here.
  if (config.distance.empty()) {
    distance_.assign(n, std::vector<int>(n, kRemoteDistance));
    for (int i = 0; i < n; ++i) distance_[i][i] = kLocalDistance;
  } else {
    distance_ = std::move(config.distance);
    if (static_cast<int>(distance_.size()) != n)
      throw std::invalid_argument(fmt::format("distance has {} rows for {} nodes", distance_.size(), n));
    for (int i = 0; i < n; ++i) {
      if (static_cast<int>(distance_[i].size()) != n)
        throw std::invalid_argument(fmt::format("distance row {} has {} entries for {} nodes", i,
                                                distance_[i].size(), n));
      for (int j = 0; j < n; ++j) {
        const int d = distance_[i][j];
        if (d > 255) throw std::invalid_argument(fmt::format("distance[{}][{}] = {} does not fit u8", i, j, d));
        if (i == j && d != kLocalDistance)
          throw std::invalid_argument(fmt::format("distance[{}][{}] must be {} (LOCAL_DISTANCE)", i, j, kLocalDistance));
        if (i != j && d <= kLocalDistance)
          throw std::invalid_argument(fmt::format("distance[{}][{}] = {} must be above {}", i, j, d, kLocalDistance));
      }
    }
  }

  // CPUs: each present CPU belongs to exactly one node.
  unsigned max_cpu_plus_one = 0;
  std::map<unsigned, int> owner;
  node_cpus_.resize(n);
  for (int nid = 0; nid < n; ++nid) {
    for (unsigned cpu : nodes_[nid].cpus) {
      if (!owner.emplace(cpu, nid).second)
        throw std::invalid_argument(fmt::format("cpu {} is in node {} and node {}", cpu, owner[cpu], nid));
      max_cpu_plus_one = std::max(max_cpu_plus_one, cpu + 1);
    }
    node_cpus_[nid] = nodes_[nid].cpus;
    std::sort(node_cpus_[nid].begin(), node_cpus_[nid].end());
  }
  if (owner.empty()) throw std::invalid_argument("no node has a CPU");
  if (!owner.count(0)) throw std::invalid_argument("cpu 0 (the boot CPU) must be in a node");
  nr_cpu_ids_ = config.possible_cpus ? config.possible_cpus : max_cpu_plus_one;
  if (nr_cpu_ids_ < max_cpu_plus_one)
    throw std::invalid_argument(fmt::format("possible_cpus {} is below cpu {}", nr_cpu_ids_, max_cpu_plus_one - 1));
  nr_cpus_ = config.nr_cpus;
  if (nr_cpus_ < nr_cpu_ids_)
    throw std::invalid_argument(fmt::format("nr_cpus (NR_CPUS) {} is below possible_cpus {}", nr_cpus_, nr_cpu_ids_));

  // Topology: x86 enumerates the first thread of every core of a package
  // before the second threads, so within a package's sorted CPU list the
  // first cores-many CPUs are thread 0 of cores 0.., the next are thread 1.
  topo_.assign(nr_cpu_ids_, CpuTopology{});
  const unsigned tpc = config.threads_per_core ? config.threads_per_core : 1;
  std::map<int, std::vector<unsigned>> packages;
  for (const auto& [cpu, nid] : owner) {
    const int pkg = nodes_[nid].package >= 0 ? nodes_[nid].package : nid;
    packages[pkg].push_back(cpu);
    topo_[cpu].node = nid;
    topo_[cpu].package = pkg;
    topo_cpus_.push_back(cpu);
  }
  for (auto& [pkg, cpus] : packages) {
    if (cpus.size() % tpc != 0)
      throw std::invalid_argument(fmt::format("package {} has {} CPUs, not a multiple of threads_per_core {}",
                                              pkg, cpus.size(), tpc));
    const std::size_t cores = cpus.size() / tpc;
    for (std::size_t i = 0; i < cpus.size(); ++i) {
      topo_[cpus[i]].core_id = static_cast<int>(i % cores);
      topo_[cpus[i]].thread = static_cast<int>(i / cores);
    }
  }

  std::size_t max_cores = 1;
  for (const auto& [pkg, cpus] : packages) max_cores = std::max(max_cores, cpus.size() / tpc);
  while ((1U << core_bits_) < max_cores) ++core_bits_;

  // Caches. The default is an Intel Xeon Scalable (Skylake-SP) core, as in
  // the default machine's PowerEdge R740: 32 KiB 8-way L1d and L1i and a
  // 1 MiB 16-way L2 per core, and an 11-way L3 of 1.375 MiB per core
  // shared by the package.
  caches_ = std::move(config.caches);
  cpu_modalias_ = std::move(config.cpu_modalias);
  if (caches_.empty()) {
    caches_ = {
        {.level = 1, .type = CacheType::Data, .size_kib = 32, .ways = 8},
        {.level = 1, .type = CacheType::Instruction, .size_kib = 32, .ways = 8},
        {.level = 2, .type = CacheType::Unified, .size_kib = 1024, .ways = 16},
        {.level = 3,
         .type = CacheType::Unified,
         .size_kib = 1408 * max_cores,
         .ways = 11,
         .per_package = true},
    };
  }
  for (std::size_t i = 0; i < caches_.size(); ++i) {
    const CacheLeaf& c = caches_[i];
    if (c.level < 1 || c.level > 4)
      throw std::invalid_argument(fmt::format("cache {}: level must be 1..4", i));
    if (c.ways == 0 || c.line_size == 0 || c.partition == 0 || c.size_kib == 0)
      throw std::invalid_argument(
          fmt::format("cache {}: size, ways, line size and partition must not be 0", i));
    const std::uint64_t way_bytes = std::uint64_t{c.ways} * c.line_size * c.partition;
    if ((c.size_kib * 1024) % way_bytes != 0)
      throw std::invalid_argument(fmt::format(
          "cache {}: {} KiB is not a whole number of sets of {} ways x {} bytes x {} partitions", i,
          c.size_kib, c.ways, c.line_size, c.partition));
  }

  online_.assign(nr_cpu_ids_, false);
  for (unsigned cpu : topo_cpus_) online_[cpu] = true;
  for (unsigned cpu : config.offline_cpus) {
    if (!cpu_present(cpu)) throw std::invalid_argument(fmt::format("offline cpu {} is not present", cpu));
    // Kernel quirk: cpu0 has no online file (not hotpluggable), so it can
    // never be offline.
    if (cpu == 0) throw std::invalid_argument("cpu 0 cannot be offline");
    online_[cpu] = false;
  }

  pgdat_.resize(n);
  for (int nid = 0; nid < n; ++nid) {
    Pgdat& p = pgdat_[nid];
    p.present = nodes_[nid].present_pages;
    p.free = p.present;
    p.n_memory = p.present > 0;
    // The boot pools. Gigantic pages first: the kernel takes them from
    // memblock while it parses hugepagesz=1G hugepages=... (hugepages_setup
    // -> hugetlb_hstate_alloc_pages), before hugetlb_init allocates the
    // 2 MiB pool. arch_hugetlb_valid_size refuses hugepagesz=1G without
    // GBPAGES; a machine file asking for it is an error here.
    // Without PSE hugetlb_init returns before any pool is made (and
    // hugepages_setup's pages are ignored with a warning): a machine file
    // asking for a boot pool there is an error.
    const std::uint64_t want_1g = nodes_[nid].hugepages_1g;
    const std::uint64_t want = nodes_[nid].hugepages;
    if ((want_1g || want) && !pse_)
      throw std::invalid_argument(fmt::format(
          "node {}: {} needs a CPU with pse (X86_FEATURE_PSE), which a Xen PV guest does not "
          "have: no hugetlb (set [numa] pse = true to give it one)",
          nid, want_1g ? "hugepages_1g" : "hugepages_2m"));
    if (want_1g && !gbpages_)
      throw std::invalid_argument(
          fmt::format("node {}: hugepages_1g needs a CPU with pdpe1gb (X86_FEATURE_GBPAGES)", nid));
    if (want_1g > p.free / kGiganticPagePages)
      throw std::invalid_argument(
          fmt::format("node {}: {} 1 GiB hugepages do not fit in its memory", nid, want_1g));
    p.free -= want_1g * kGiganticPagePages;
    p.huge[1].nr = p.huge[1].free = want_1g;
    if (want > p.free / kHugePagePages)
      throw std::invalid_argument(fmt::format("node {}: {} hugepages do not fit in its memory", nid, want));
    p.free -= want * kHugePagePages;
    p.huge[0].nr = p.huge[0].free = want;
  }
  core::MutexLock lock(mu_);
  build_all_zonelists_locked();
}

std::vector<unsigned> NumaModel::present_cpus() const { return topo_cpus_; }

std::vector<unsigned> NumaModel::core_cpus(unsigned cpu) const {
  std::vector<unsigned> out;
  const auto& t = topo_.at(cpu);
  for (unsigned c : topo_cpus_)
    if (topo_[c].package == t.package && topo_[c].core_id == t.core_id) out.push_back(c);
  return out;
}

std::vector<unsigned> NumaModel::package_cpus(unsigned cpu) const {
  std::vector<unsigned> out;
  for (unsigned c : topo_cpus_)
    if (topo_[c].package == topo_.at(cpu).package) out.push_back(c);
  return out;
}

bool NumaModel::cpu_online(unsigned cpu) const {
  core::MutexLock lock(mu_);
  return cpu < online_.size() && online_[cpu];
}

std::vector<unsigned> NumaModel::online_cpus() const {
  core::MutexLock lock(mu_);
  std::vector<unsigned> out;
  for (unsigned c = 0; c < online_.size(); ++c)
    if (online_[c]) out.push_back(c);
  return out;
}

std::vector<unsigned> NumaModel::online_subset(std::vector<unsigned> cpus) const {
  core::MutexLock lock(mu_);
  std::erase_if(cpus, [&](unsigned c) { return c >= online_.size() || !online_[c]; });
  return cpus;
}

core::Result<bool> NumaModel::set_cpu_online(unsigned cpu, bool online) {
  if (!cpu_present(cpu)) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  if (online_[cpu] == online) return false;
  if (!online) {
    // kernel/cpu.c cpu_down_maps_locked / _cpu_down: the last CPU stays.
    if (std::count(online_.begin(), online_.end(), true) == 1) return core::Errno{EBUSY};
  }
  online_[cpu] = online;
  return true;
}

std::vector<int> NumaModel::nodes_with_memory() const {
  core::MutexLock lock(mu_);
  return memory_nodes_locked();
}

std::vector<int> NumaModel::memory_nodes_locked() const {
  std::vector<int> out;
  for (int nid = 0; nid < nr_node_ids(); ++nid)
    if (has_memory_locked(nid)) out.push_back(nid);
  return out;
}

std::vector<int> NumaModel::nodes_with_cpu() const {
  core::MutexLock lock(mu_);
  std::vector<int> out;
  for (int nid = 0; nid < nr_node_ids(); ++nid)
    for (unsigned cpu : node_cpus_[nid])
      if (online_[cpu]) {
        out.push_back(nid);
        break;
      }
  return out;
}

// __build_all_zonelists + build_zonelists + find_next_best_node (modern
// mm/page_alloc.c; docs/kernel-semantics.md section 4.8). node_load[] is reset once and then
// accumulates across the nodes, in node id order: that is what spreads
// the fallback of equally distant nodes round-robin.
//
// The penalty for "the first node of a new distance group" has changed
// over the years: node_load[node] += load with load counting down
// (2.6.18), = load (2.6.23 to 5.15), += load again (5.16, "use accumulated
// load when building node fallback list"), then += nr_online_nodes and
// += 1 in current kernels (the last two order nodes identically). The
// machine description picks one (NodeLoadPenalty); current is the default.
// Every variant here uses the modern candidate set (nodes with memory).
void NumaModel::build_all_zonelists_locked() {
  mu_.assert_held();
  const int n = nr_node_ids();
  std::vector<std::int64_t> node_load(n, 0);
  const std::vector<int> memory_nodes = memory_nodes_locked();

  auto find_next_best_node = [&](int node, std::vector<bool>& used) -> int {
    // Use the local node if we haven't already, but a memoryless local
    // node is skipped.
    if (!used[node] && has_memory_locked(node)) {
      used[node] = true;
      return node;
    }
    std::int64_t min_val = LLONG_MAX;
    int best = -1;
    for (int cand : memory_nodes) {
      if (used[cand]) continue;
      std::int64_t val = distance_[node][cand];
      val += (cand < node) ? 1 : 0;  // penalise nodes under us ("prefer the next node")
      if (!node_cpus_[cand].empty()) val += kPenaltyForNodeWithCpus;  // prefer headless nodes
      val *= kMaxNumNodes;
      val += node_load[cand];  // slight preference for the less loaded node
      if (val < min_val) {
        min_val = val;
        best = cand;
      }
    }
    if (best >= 0) used[best] = true;
    return best;
  };

  for (int local = 0; local < n; ++local) {
    std::vector<bool> used(n, false);
    std::vector<int> order;
    int prev = local;
    int node;
    std::int64_t load = n;  // nr_online_nodes, for the older penalties
    while ((node = find_next_best_node(local, used)) >= 0) {
      if (distance_[local][node] != distance_[local][prev]) {
        switch (node_load_penalty_) {
          case NodeLoadPenalty::Add1: node_load[node] += 1; break;
          case NodeLoadPenalty::AddCountdown: node_load[node] += load; break;
          case NodeLoadPenalty::Assign: node_load[node] = load; break;
        }
      }
      --load;
      order.push_back(node);
      prev = node;
    }
    pgdat_[local].zonelist = std::move(order);
  }
}

std::vector<int> NumaModel::zonelist(int nid) const {
  core::MutexLock lock(mu_);
  return pgdat_.at(nid).zonelist;
}

core::Result<Allocation> NumaModel::alloc(const AllocRequest& req) {
  if (req.pages == 0) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  if (req.cpu >= online_.size() || !online_[req.cpu]) return core::Errno{EINVAL};
  const int local = topo_[req.cpu].node;  // numa_node_id()
  const int n = nr_node_ids();

  // The policy's nodes, contextualised to the nodes with memory
  // (mpol_set_nodemask: nodes_and with N_MEMORY); empty is EINVAL.
  std::vector<bool> in_set(n, false);
  std::vector<int> set;
  for (int nid : req.policy.nodes) {
    if (nid < 0 || nid >= n) return core::Errno{EINVAL};
    if (has_memory_locked(nid) && !in_set[nid]) {
      in_set[nid] = true;
      set.push_back(nid);
    }
  }
  std::sort(set.begin(), set.end());
  if (req.policy.mode != PolicyMode::Default && set.empty()) return core::Errno{EINVAL};
  if (req.policy.mode == PolicyMode::Preferred && req.policy.nodes.size() != 1) return core::Errno{EINVAL};

  Allocation a;
  a.cpu = req.cpu;
  a.policy = req.policy;
  a.kind = req.kind;
  a.pages = req.pages;
  a.per_node.assign(n, 0);
  const auto kind = static_cast<std::size_t>(req.kind);

  // One batch of `count` pages from zone `z` for a request whose preferred
  // zone (first usable zone of its zonelist) is `preferred`:
  // zone_statistics(preferred_zone, z, count).
  auto take = [&](int preferred, int z, std::uint64_t count) {
    Pgdat& zp = pgdat_[z];
    zp.free -= count;
    zp.used[kind] += count;
    a.per_node[z] += count;
    if (z == preferred) {
      zp.stat.numa_hit += count;
    } else {
      zp.stat.numa_miss += count;
      pgdat_[preferred].stat.numa_foreign += count;
    }
    if (z == local)
      zp.stat.local_node += count;
    else
      zp.stat.other_node += count;
  };

  if (req.policy.mode == PolicyMode::Interleave) {
    // alloc_page_interleave(gfp, order, interleave_nodes(pol)): the page is
    // asked of node S[i] with no nodemask, so it may fall back along that
    // node's zonelist; NUMA_INTERLEAVE_HIT when it came from S[i] itself.
    std::uint64_t total = 0;
    for (int nid : memory_nodes_locked()) total += pgdat_[nid].free;
    if (total < req.pages) return core::Errno{ENOMEM};
    const std::size_t k = set.size();
    auto supplier = [&](int target) {
      for (int z : pgdat_[target].zonelist)
        if (pgdat_[z].free > 0) return z;
      return -1;  // unreachable: total free covers what remains
    };
    auto take_interleaved = [&](int target, int z, std::uint64_t count) {
      take(target, z, count);
      if (z == target) pgdat_[z].stat.interleave_hit += count;
    };
    std::uint64_t remaining = req.pages;
    std::size_t idx = 0;  // il_prev starts before the first node of the set
    while (remaining > 0) {
      if (idx == 0 && remaining >= k) {
        // Whole rounds at once while every target's supplier stays the same.
        std::vector<int> sup(k);
        std::vector<std::uint64_t> per(n, 0);
        for (std::size_t j = 0; j < k; ++j) {
          sup[j] = supplier(set[j]);
          per[sup[j]]++;
        }
        std::uint64_t rounds = remaining / k;
        for (int z = 0; z < n; ++z)
          if (per[z]) rounds = std::min(rounds, pgdat_[z].free / per[z]);
        if (rounds > 0) {
          for (std::size_t j = 0; j < k; ++j) take_interleaved(set[j], sup[j], rounds);
          remaining -= rounds * k;
          continue;
        }
      }
      const int target = set[idx];
      take_interleaved(target, supplier(target), 1);
      --remaining;
      idx = (idx + 1) % k;
    }
  } else {
    // get_page_from_freelist over the zonelist, filtered by the nodemask
    // (bind); the preferred zone is the first zone of that filtered walk
    // (first_zones_zonelist), whether or not it has free pages.
    const int start = req.policy.mode == PolicyMode::Preferred ? set.front() : local;
    std::vector<int> walk;
    for (int z : pgdat_[start].zonelist)
      if (req.policy.mode != PolicyMode::Bind || in_set[z]) walk.push_back(z);
    if (walk.empty()) return core::Errno{ENOMEM};
    std::uint64_t total = 0;
    for (int z : walk) total += pgdat_[z].free;
    if (total < req.pages) return core::Errno{ENOMEM};
    const int preferred = walk.front();
    std::uint64_t remaining = req.pages;
    for (int z : walk) {
      const std::uint64_t t = std::min(remaining, pgdat_[z].free);
      if (t) take(preferred, z, t);
      remaining -= t;
      if (!remaining) break;
    }
  }

  a.id = next_id_++;
  last_id_ = a.id;
  allocations_.emplace(a.id, a);
  return a;
}

core::Result<Allocation> NumaModel::free(std::uint64_t id) {
  core::MutexLock lock(mu_);
  auto it = allocations_.find(id);
  if (it == allocations_.end()) return core::Errno{ENOENT};
  Allocation a = std::move(it->second);
  allocations_.erase(it);
  const auto kind = static_cast<std::size_t>(a.kind);
  for (int z = 0; z < nr_node_ids(); ++z) {
    pgdat_[z].free += a.per_node[z];
    pgdat_[z].used[kind] -= a.per_node[z];
  }
  return a;
}

std::vector<Allocation> NumaModel::allocations() const {
  core::MutexLock lock(mu_);
  std::vector<Allocation> out;
  for (const auto& [id, a] : allocations_) out.push_back(a);
  return out;
}

std::uint64_t NumaModel::last_alloc_id() const {
  core::MutexLock lock(mu_);
  return last_id_;
}

std::uint64_t NumaModel::set_nr_hugepages(int nid, std::uint64_t count, HugeSize size) {
  if (!hstate_exists(size)) return 0;  // no hstate: no pool (no file reaches here)
  const auto h = static_cast<std::size_t>(size);
  const std::uint64_t per = huge_page_pages(size);
  core::MutexLock lock(mu_);
  Pgdat& p = pgdat_.at(nid);
  auto& pool = p.huge[h];
  // The hstate's round-robin cursors are shared: with a one-node mask,
  // hstate_next_node_to_{alloc,free} leave them on that node.
  if (count > pool.nr) next_nid_to_alloc_[h] = nid;
  if (count < pool.nr) next_nid_to_free_[h] = nid;
  if (count > pool.nr) {
    // alloc_pool_huge_folio with __GFP_THISNODE until it fails; for a
    // gigantic page alloc_gigantic_folio -> alloc_contig_pages (no
    // fragmentation in the model: the free count decides).
    const std::uint64_t grow = std::min(count - pool.nr, p.free / per);
    p.free -= grow * per;
    pool.nr += grow;
    pool.free += grow;
  } else if (count < pool.nr) {
    // Only free huge pages can go back to the buddy allocator.
    const std::uint64_t shrink = std::min(pool.nr - count, pool.free);
    p.free += shrink * per;
    pool.nr -= shrink;
    pool.free -= shrink;
  }
  return pool.nr;
}

core::Status NumaModel::reserve_kernel_pages(int nid, std::uint64_t pages) {
  if (nid < 0 || nid >= nr_node_ids()) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  Pgdat& p = pgdat_[nid];
  if (pages > p.free) return core::Errno{ENOMEM};
  p.free -= pages;
  p.used[static_cast<std::size_t>(PageKind::SlabUnreclaimable)] += pages;
  p.kernel += pages;
  return {};
}

namespace {

// `want` single-page steps round-robin over the nodes from `*next`, each
// step going to the next node (cyclically) that still has capacity, the
// cursor left after the node served (for_each_node_mask_to_alloc/free:
// every node tried advances it). Done in bulk: whole rounds over the nodes
// with capacity, then one partial round. Returns the pages per node.
std::vector<std::uint64_t> round_robin(std::vector<std::uint64_t> cap, std::uint64_t want,
                                       int* next) {
  const int n = static_cast<int>(cap.size());
  std::vector<std::uint64_t> got(cap.size(), 0);
  while (want > 0) {
    std::uint64_t live = 0, min_cap = UINT64_MAX;
    for (auto c : cap)
      if (c > 0) {
        ++live;
        min_cap = std::min(min_cap, c);
      }
    if (live == 0) break;  // every node failed: the cursor went round once
    const std::uint64_t rounds = std::min(min_cap, want / live);
    if (rounds > 0) {
      for (int i = 0; i < n; ++i)
        if (cap[i] > 0) {
          cap[i] -= rounds;
          got[i] += rounds;
        }
      want -= rounds * live;
      continue;
    }
    // Fewer than one page per live node left: one partial round, from
    // where the cursor stood when the round began.
    const int start = *next;
    for (int k = 0; k < n && want > 0; ++k) {
      const int nid = (start + k) % n;
      if (cap[nid] == 0) continue;
      --cap[nid];
      ++got[nid];
      --want;
      *next = (nid + 1) % n;
    }
  }
  return got;
}

}  // namespace

std::uint64_t NumaModel::set_global_nr_hugepages(std::uint64_t count, HugeSize size) {
  if (!hstate_exists(size)) return 0;
  const auto h = static_cast<std::size_t>(size);
  const std::uint64_t per = huge_page_pages(size);
  core::MutexLock lock(mu_);
  std::uint64_t total = 0;
  for (const auto& p : pgdat_) total += p.huge[h].nr;
  const int n = nr_node_ids();
  if (count > total) {
    std::vector<std::uint64_t> cap;
    for (const auto& p : pgdat_) cap.push_back(p.free / per);
    const auto got = round_robin(std::move(cap), count - total, &next_nid_to_alloc_[h]);
    for (int i = 0; i < n; ++i) {
      pgdat_[i].free -= got[i] * per;
      pgdat_[i].huge[h].nr += got[i];
      pgdat_[i].huge[h].free += got[i];
      total += got[i];
    }
  } else if (count < total) {
    // Only free huge pages go back (min_count: the ones in use stay).
    std::vector<std::uint64_t> cap;
    for (const auto& p : pgdat_) cap.push_back(p.huge[h].free);
    const auto got = round_robin(std::move(cap), total - count, &next_nid_to_free_[h]);
    for (int i = 0; i < n; ++i) {
      pgdat_[i].free += got[i] * per;
      pgdat_[i].huge[h].nr -= got[i];
      pgdat_[i].huge[h].free -= got[i];
      total -= got[i];
    }
  }
  return total;
}

NumaModel::HugeTotals NumaModel::huge_totals(HugeSize size) const {
  const auto h = static_cast<std::size_t>(size);
  core::MutexLock lock(mu_);
  HugeTotals t;
  for (const auto& p : pgdat_) {
    t.nr += p.huge[h].nr;
    t.free += p.huge[h].free;  // no surplus pages: nothing overcommits (surplus stays 0)
  }
  return t;
}

// demote_store + demote_pool_huge_page (6.12): while pages are wanted and
// the mask's nodes have free gigantic pages, walk the nodes once from
// next_nid_to_free (for_each_node_mask_to_free: each node visited moves
// the cursor past it), taking every free page a node has up to what is
// still wanted; demote_free_hugetlb_folios turns each into
// pages_per_huge_page(src) / pages_per_huge_page(dst) = 512 free pages of
// the 2 MiB hstate on the same node (prep_new_hugetlb_folio(dst, folio,
// nid)). Nothing goes back to the buddy allocator.
std::uint64_t NumaModel::demote_gigantic(int nid, std::uint64_t count) {
  constexpr auto kSrc = static_cast<std::size_t>(HugeSize::k1G);
  constexpr auto kDst = static_cast<std::size_t>(HugeSize::k2M);
  constexpr std::uint64_t kSplit = kGiganticPagePages / kHugePagePages;
  core::MutexLock lock(mu_);
  const int n = nr_node_ids();
  std::uint64_t done = 0;
  auto demote_on = [&](int node) {
    auto& src = pgdat_[node].huge[kSrc];
    auto& dst = pgdat_[node].huge[kDst];
    const std::uint64_t k = std::min(src.free, count - done);
    src.nr -= k;
    src.free -= k;
    dst.nr += k * kSplit;
    dst.free += k * kSplit;
    done += k;
  };
  if (nid >= 0) {
    // A node's demote file: the mask is that node, so a demotion leaves
    // the cursor on it; with nothing to demote the loop never starts.
    if (count == 0 || pgdat_.at(nid).huge[kSrc].free == 0) return 0;
    next_nid_to_free_[kSrc] = nid;
    demote_on(nid);
    return done;
  }
  auto available = [&] {
    std::uint64_t a = 0;
    for (const auto& p : pgdat_) a += p.huge[kSrc].free;  // less resv_huge_pages: 0
    return a;
  };
  while (done < count && available() > 0) {
    for (int k = 0; k < n && done < count; ++k) {
      const int node = next_nid_to_free_[kSrc];
      next_nid_to_free_[kSrc] = (node + 1) % n;
      demote_on(node);
    }
  }
  return done;
}

core::Status NumaModel::add_present_pages(int nid, std::uint64_t pages) {
  if (nid < 0 || nid >= nr_node_ids()) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  Pgdat& p = pgdat_[nid];
  if (pages > UINT64_MAX - p.present) return core::Errno{EINVAL};
  p.present += pages;
  p.free += pages;
  // online_pages: node_states_set_node for a node gaining its first
  // memory, then build_all_zonelists.
  if (!p.n_memory && p.present > 0) {
    p.n_memory = true;
    build_all_zonelists_locked();
  }
  return {};
}

core::Result<std::uint64_t> NumaModel::remove_present_pages(int nid, std::uint64_t pages) {
  if (nid < 0 || nid >= nr_node_ids()) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  Pgdat& p = pgdat_[nid];
  const std::uint64_t got = std::min(pages, p.free);
  p.free -= got;
  p.present -= got;
  // offline_pages: node_states_clear_node once the node has no present
  // pages left, and the zonelists are rebuilt without it.
  if (got && p.present == 0 && p.n_memory) {
    p.n_memory = false;
    build_all_zonelists_locked();
  }
  return got;
}

core::Result<std::uint64_t> NumaModel::balloon_take_pages(int nid, std::uint64_t pages, int local) {
  if (nid < 0 || nid >= nr_node_ids() || local < 0 || local >= nr_node_ids())
    return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  Pgdat& p = pgdat_[nid];
  const std::uint64_t got = std::min(pages, p.free);
  p.free -= got;
  p.present -= got;  // adjust_managed_page_count(page, -1)
  // zone_statistics(preferred_zone = local's, page's zone).
  if (nid == local) {
    p.stat.numa_hit += got;
    p.stat.local_node += got;
  } else {
    p.stat.numa_miss += got;
    p.stat.other_node += got;
    pgdat_[local].stat.numa_foreign += got;
  }
  return got;
}

core::Status NumaModel::balloon_give_pages(int nid, std::uint64_t pages) {
  if (nid < 0 || nid >= nr_node_ids()) return core::Errno{EINVAL};
  core::MutexLock lock(mu_);
  Pgdat& p = pgdat_[nid];
  if (pages > UINT64_MAX - p.present) return core::Errno{EINVAL};
  p.present += pages;  // adjust_managed_page_count(page, +1)
  p.free += pages;
  if (!p.n_memory && p.present > 0) {
    p.n_memory = true;
    build_all_zonelists_locked();
  }
  return {};
}

NodeSnapshot NumaModel::node(int nid) const {
  core::MutexLock lock(mu_);
  const Pgdat& p = pgdat_.at(nid);
  NodeSnapshot s;
  s.id = nid;
  s.cpus = node_cpus_[nid];
  s.present = p.present;
  s.free = p.free;
  s.used = p.used;
  s.huge_nr = p.huge[0].nr;
  s.huge_free = p.huge[0].free;
  s.gigantic_nr = p.huge[1].nr;
  s.gigantic_free = p.huge[1].free;
  s.kernel = p.kernel;
  s.stat = p.stat;
  return s;
}

std::string_view cache_type_name(CacheType t) {
  switch (t) {
    case CacheType::Data:
      return "Data";
    case CacheType::Instruction:
      return "Instruction";
    case CacheType::Unified:
      return "Unified";
  }
  return "Unified";
}

unsigned NumaModel::cache_id(unsigned cpu, const CacheLeaf& leaf) const {
  const CpuTopology& t = topo_.at(cpu);
  const auto pkg = static_cast<unsigned>(t.package);
  return leaf.per_package ? pkg : (pkg << core_bits_) | static_cast<unsigned>(t.core_id);
}

std::vector<unsigned> NumaModel::cache_cpus(unsigned cpu, const CacheLeaf& leaf) const {
  return leaf.per_package ? package_cpus(cpu) : core_cpus(cpu);
}

std::shared_ptr<NumaModel> numa_model_of(const Machine& machine) {
  Registry& r = registry();
  core::MutexLock lock(r.mu);
  auto it = r.models.find(&machine);
  return it == r.models.end() ? nullptr : it->second.lock();
}

void set_numa_model(const Machine& machine, std::shared_ptr<NumaModel> model) {
  Registry& r = registry();
  core::MutexLock lock(r.mu);
  r.models[&machine] = model;
}

}  // namespace vsysfs::devices
