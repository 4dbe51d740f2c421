// Random operation sequences for the NUMA family (devices/numa): the
// workload knobs under kernel/debug/vsysfs/numa (alloc lines with every
// policy, kind and CPU, valid and not; frees of live, dead and junk ids),
// every writable file under devices/system/node and devices/system/cpu
// (hugepage pools, CPU online 0/1) and clock advances, on a four-node
// machine with a CPU-less node and a memoryless node. Invariants after
// every step (docs/random-tests.md; reference 4.4, 4.5, 4.8):
//   numastat monotone   no numastat counter of any node ever decreases
//                       (numa/free does not un-count, as in the kernel)
//   numastat sums       over all nodes, numa_hit + numa_miss and
//                       local_node + other_node each equal the pages
//                       allocated so far; numa_miss == numa_foreign;
//                       interleave_hit <= the pages of interleave allocations
//   numastat attribution a successful alloc adds to each node exactly the
//                       pages that node supplied (allocations file), in
//                       hit+miss and in local+other; nothing else moves them
//   alloc ids           a successful alloc takes last_alloc_id + 1, and its
//                       per-node pages sum to its pages=
//   free pages          per node MemFree <= MemTotal (never "negative"), and
//                       MemTotal - MemFree == 2048 kB * HugePages_Total +
//                       1048576 kB * the node's 1 GiB nr_hugepages + the
//                       live allocations' pages on that node
//   meminfo kinds       each node's AnonPages, Shmem, FilePages, Inactive(*),
//                       PageTables, KernelStack, Slab lines equal the live
//                       allocations' pages of their kinds on that node
//   hugepage pool       a write of N to nodeN's nr_hugepages shrinks to N or
//                       grows to min(N, old + MemFree / page size) (mm/hugetlb.c
//                       set_max_huge_pages, __GFP_THISNODE); free == nr and
//                       no surplus, since nothing uses huge pages here
//   zonelists           the fallback orders never change (allocation,
//                       hugepages and CPU hotplug leave them alone)
//   cpu online          nodeN/cpulist lists the node's online CPUs and
//                       node/has_cpu the nodes with one (reference 4.1-4.3),
//                       from the cpuN/online files; CPU 0 stays online
#include <doctest/doctest.h>

#include <map>
#include <sstream>

#include <fmt/format.h>

#include "tests/random/random_seq.hpp"

namespace rnd = vsysfs::testing::rnd;
using vsysfs::testing::TestMachine;

namespace {

constexpr int kNodes = 4;

// node0: CPUs 0-1, 16 MiB, two huge pages at boot; node1: CPUs 2-3, 16 MiB;
// node2: no CPU, 8 MiB; node3: CPU 4, no memory. Distances unequal enough
// that the zonelists differ per node.
const std::string kMachine =
    "[numa]\n"
    "distance = [[10, 20, 30, 25], [20, 10, 25, 30], [30, 25, 10, 20], [25, 30, 20, 10]]\n"
    "[[numa.node]]\ncpus = \"0-1\"\nmemory_mb = 16\nhugepages_2m = 2\n"
    "[[numa.node]]\ncpus = \"2-3\"\nmemory_mb = 16\n"
    "[[numa.node]]\ncpus = \"\"\nmemory_mb = 8\n"
    "[[numa.node]]\ncpus = \"4\"\nmemory_mb = 0\n";

std::string node_list(rnd::Gen& g) {
  switch (g.below(4)) {
    case 0: return std::to_string(g.below(kNodes + 1));
    case 1: return fmt::format("{}-{}", g.below(2), g.between(1, kNodes - 1));
    case 2: return fmt::format("{},{}", g.below(kNodes), g.below(kNodes));
    default: return fmt::format("{}-{}", g.below(kNodes), g.below(kNodes));  // may be reversed
  }
}

std::string alloc_line(rnd::Gen& g) {
  if (g.chance(0.15)) return g.hostile();
  std::vector<std::string> tok;
  // Pages: mostly small, sometimes more than a node or the machine has.
  const std::uint64_t pages = g.chance(0.8) ? g.between(1, 600) : g.between(0, 20000);
  tok.push_back("pages=" + (g.chance(0.9) ? std::to_string(pages) : fmt::format("{:#x}", pages)));
  if (g.chance(0.8))
    tok.push_back("cpu=" + std::to_string(g.chance(0.4) ? 0 : g.chance(0.9) ? g.below(5) : g.below(7)));
  if (g.chance(0.8)) {
    switch (g.below(6)) {
      case 0: tok.push_back("policy=default"); break;
      case 1: tok.push_back("policy=local"); break;
      case 2: tok.push_back("policy=preferred:" + std::to_string(g.below(kNodes + 1))); break;
      case 3: tok.push_back("policy=bind:" + node_list(g)); break;
      case 4: tok.push_back("policy=interleave"); break;
      default: tok.push_back("policy=interleave:" + node_list(g)); break;
    }
  }
  if (g.chance(0.6))
    tok.push_back("kind=" + g.pick(std::vector<std::string>{
                                "anon", "file", "shmem", "slab", "slab_reclaimable",
                                "slab_unreclaimable", "pagetables", "kernel_stack", "bogus"}));
  if (g.chance(0.05)) tok.push_back(tok.front());  // a repeated key: EINVAL
  std::shuffle(tok.begin() + 1, tok.end(), g.engine());
  std::string line;
  for (const auto& t : tok) line += (line.empty() ? "" : " ") + t;
  return g.chance(0.7) ? line + "\n" : line;
}

std::vector<rnd::Step> generate(rnd::Gen& g, TestMachine& m, std::size_t n) {
  const auto files = rnd::writable_files(
      m, {"devices/system/node", "devices/system/cpu", "kernel/debug/vsysfs/numa"});
  REQUIRE(files.size() >= 6);  // nr_hugepages x3, cpuN/online, alloc, free: from the tree
  std::vector<rnd::Step> steps;
  for (std::size_t i = 0; i < n; ++i) {
    if (g.chance(0.1)) {
      steps.push_back({"kernel/debug/vsysfs/clock/advance_ms", g.advance_ms()});
      (void)m.write(steps.back().path, steps.back().data);
      continue;
    }
    // Half the steps are allocations; the rest spread over every file.
    const std::string f = g.chance(0.4)   ? "kernel/debug/vsysfs/numa/alloc"
                          : g.chance(0.3) ? "kernel/debug/vsysfs/numa/free"
                                          : g.pick(files);
    const std::string b = f.substr(f.rfind('/') + 1);
    std::string v;
    // Generation runs the sequence on its own machine, so frees can name
    // ids that are live.
    const std::uint64_t allocs =
        rnd::num(m.read("kernel/debug/vsysfs/numa/last_alloc_id")).value_or(0);
    if (b == "alloc") {
      v = alloc_line(g);
    } else if (b == "free") {
      // Mostly a recent id (often live), sometimes 0, an old or a future one.
      const std::uint64_t id = g.chance(0.7) ? allocs - std::min<std::uint64_t>(allocs, g.below(4))
                                             : g.below(allocs + 2);
      v = g.chance(0.15) ? g.hostile() : std::to_string(id) + (g.chance(0.5) ? "\n" : "");
    } else if (b == "nr_hugepages") {
      v = g.chance(0.15) ? g.hostile() : g.number(g.below(12));
    } else if (b == "online") {
      v = g.chance(0.15) ? g.hostile()
                         : g.pick(std::vector<std::string>{"0", "1", "0\n", "1\n", "y", "n"});
    } else {
      v = g.chance(0.5) ? g.hostile() : g.number(g.below(10));
    }
    (void)m.write(f, v);
    steps.push_back({f, v});
  }
  return steps;
}

struct Stat {
  std::uint64_t hit = 0, miss = 0, foreign = 0, ihit = 0, local = 0, other = 0;
};

struct Alloc {
  std::uint64_t pages = 0;
  bool interleave = false;
  std::string kind;
  std::vector<std::uint64_t> node = std::vector<std::uint64_t>(kNodes, 0);
};

// kernel/debug/vsysfs/numa/allocations: "id=1 cpu=3 pages=1000
// policy=interleave:0-3 kind=anon node0=250 node1=250 ..."
std::map<std::uint64_t, Alloc> allocations(TestMachine& m) {
  std::map<std::uint64_t, Alloc> out;
  std::istringstream in(m.read("kernel/debug/vsysfs/numa/allocations"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string tok;
    std::uint64_t id = 0;
    Alloc a;
    while (f >> tok) {
      const auto eq = tok.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
      if (k == "id") id = std::stoull(v);
      if (k == "pages") a.pages = std::stoull(v);
      if (k == "policy") a.interleave = v.rfind("interleave", 0) == 0;
      if (k == "kind") a.kind = v;
      if (k.rfind("node", 0) == 0) a.node.at(std::stoul(k.substr(4))) = std::stoull(v);
    }
    out[id] = a;
  }
  return out;
}

class NumaChecker : public rnd::Checker {
 public:
  std::string initial(TestMachine& m) override {
    zonelists_ = m.read("kernel/debug/vsysfs/numa/zonelists");
    if (zonelists_.empty() || zonelists_[0] == '<') return "read: zonelists";
    stat_ = stats(m);
    for (const Stat& s : stat_) {
      base_hm_ += s.hit + s.miss;
      base_lo_ += s.local + s.other;
      base_ihit_ += s.ihit;
    }
    return check(m, nullptr, 0);
  }
  void before(TestMachine& m, const rnd::Step& s) override {
    last_id_ = rnd::num(m.read("kernel/debug/vsysfs/numa/last_alloc_id")).value_or(0);
    if (s.path.ends_with("/nr_hugepages")) {
      const std::string dir = s.path.substr(0, s.path.find("/hugepages/"));
      huge0_ = rnd::num(m.read(s.path)).value_or(0);
      free0_kb_ = rnd::meminfo_kb(m.read(dir + "/meminfo"), "MemFree").value_or(0);
    }
  }
  std::string after(TestMachine& m, const rnd::Step& s, long rc) override {
    return check(m, &s, rc);
  }

 private:
  std::vector<Stat> stats(TestMachine& m) {
    std::vector<Stat> out;
    for (int n = 0; n < kNodes; ++n) {
      const std::string t = m.read(fmt::format("devices/system/node/node{}/numastat", n));
      Stat s;
      s.hit = rnd::field(t, "numa_hit").value_or(0);
      s.miss = rnd::field(t, "numa_miss").value_or(0);
      s.foreign = rnd::field(t, "numa_foreign").value_or(0);
      s.ihit = rnd::field(t, "interleave_hit").value_or(0);
      s.local = rnd::field(t, "local_node").value_or(0);
      s.other = rnd::field(t, "other_node").value_or(0);
      out.push_back(s);
    }
    return out;
  }

  std::string check(TestMachine& m, const rnd::Step* s, long rc) {
    if (m.read("kernel/debug/vsysfs/numa/zonelists") != zonelists_)
      return "zonelists: changed: " + m.read("kernel/debug/vsysfs/numa/zonelists");

    const auto live = allocations(m);
    const std::uint64_t id = rnd::num(m.read("kernel/debug/vsysfs/numa/last_alloc_id")).value_or(0);
    const bool alloc_ok = s && s->path == "kernel/debug/vsysfs/numa/alloc" && rc > 0;
    Alloc fresh;
    if (alloc_ok) {
      if (id != last_id_ + 1)
        return fmt::format("alloc ids: last_alloc_id {} after {}", id, last_id_);
      const auto it = live.find(id);
      if (it == live.end()) return fmt::format("alloc ids: allocation {} not listed", id);
      fresh = it->second;
      std::uint64_t sum = 0;
      for (auto p : fresh.node) sum += p;
      if (sum != fresh.pages || fresh.pages == 0)
        return fmt::format("alloc ids: allocation {} has {} pages over its nodes, pages={}", id,
                           sum, fresh.pages);
      allocated_ += fresh.pages;
      ++allocs_;
      if (fresh.interleave) interleaved_ += fresh.pages;
    } else if (s && id != last_id_) {
      return fmt::format("alloc ids: last_alloc_id moved {} -> {} without an allocation", last_id_,
                         id);
    }

    if (s && rc < 0 && s->path == "kernel/debug/vsysfs/numa/alloc") ++(rc == -ENOMEM ? enomem_ : einval_);
    if (s && rc > 0 && s->path == "kernel/debug/vsysfs/numa/free") ++frees_;
    if (s && rc > 0 && s->path.ends_with("/online")) ++onlines_;
    if (s && rc > 0 && s->path.ends_with("/nr_hugepages")) ++huge_;
    // set_max_huge_pages on one node (mm/hugetlb.c): shrinking frees
    // unused huge pages (all are unused here), growing takes 2 MiB (or
    // 1 GiB) blocks of the node's free pages as far as they go.
    if (s && rc > 0 && s->path.ends_with("/nr_hugepages")) {
      std::string_view d = s->data;
      if (!d.empty() && d.back() == '\n') d.remove_suffix(1);
      const bool plain = !d.empty() && d.size() < 12 &&
                         d.find_first_not_of("0123456789") == std::string_view::npos;
      if (plain) {
        const std::uint64_t want = std::stoull(std::string(d));
        const std::uint64_t page_kb =
            s->path.find("/hugepages-1048576kB/") != std::string::npos ? 1048576 : 2048;
        const std::uint64_t expect =
            want <= huge0_ ? want : std::min(want, huge0_ + free0_kb_ / page_kb);
        const auto got = rnd::num(m.read(s->path));
        if (got != expect)
          return fmt::format("hugepage pool: {} of {} with {} kB free made {}, expected {}", want,
                             huge0_, free0_kb_, got.value_or(~0ull), expect);
      }
      const std::string dir = s->path.substr(0, s->path.rfind('/'));
      if (m.read(dir + "/free_hugepages") != m.read(s->path) ||
          m.read(dir + "/surplus_hugepages") != "0\n")
        return "hugepage pool: free_hugepages != nr_hugepages or a surplus, with nothing using them";
    }
    const auto now = stats(m);
    std::uint64_t hm = 0, lo = 0, miss = 0, foreign = 0, ihit = 0;
    for (int n = 0; n < kNodes; ++n) {
      const Stat &a = stat_[n], &b = now[n];
      if (b.hit < a.hit || b.miss < a.miss || b.foreign < a.foreign || b.ihit < a.ihit ||
          b.local < a.local || b.other < a.other)
        return fmt::format("numastat monotone: node{} went back", n);
      const std::uint64_t supplied = fresh.node[n];
      if ((b.hit + b.miss) - (a.hit + a.miss) != supplied ||
          (b.local + b.other) - (a.local + a.other) != supplied)
        return fmt::format(
            "numastat attribution: node{} hit+miss grew {} and local+other {}, supplied {}", n,
            (b.hit + b.miss) - (a.hit + a.miss), (b.local + b.other) - (a.local + a.other),
            supplied);
      hm += b.hit + b.miss;
      lo += b.local + b.other;
      miss += b.miss;
      foreign += b.foreign;
      ihit += b.ihit;
    }
    stat_ = now;
    if (hm - base_hm_ != allocated_ || lo - base_lo_ != allocated_)
      return fmt::format("numastat sums: hit+miss {} local+other {}, allocated {}", hm - base_hm_,
                         lo - base_lo_, allocated_);
    if (miss != foreign) return fmt::format("numastat sums: numa_miss {} != numa_foreign {}", miss, foreign);
    if (ihit - base_ihit_ > interleaved_)
      return fmt::format("numastat sums: interleave_hit {} > interleaved pages {}", ihit - base_ihit_,
                         interleaved_);

    // The node's CPUs by the machine description: 0-1, 2-3, none, 4.
    static const std::vector<std::vector<int>> kCpus = {{0, 1}, {2, 3}, {}, {4}};
    std::string has_cpu;
    for (int n = 0; n < kNodes; ++n) {
      std::string list;
      for (int c : kCpus[n]) {
        const std::string on =
            c == 0 ? "1\n" : m.read(fmt::format("devices/system/cpu/cpu{}/online", c));
        if (on != "0\n" && on != "1\n") return fmt::format("cpu online: cpu{} online reads {}", c, on);
        if (on == "1\n") list += (list.empty() ? "" : ",") + std::to_string(c);
      }
      if (list == "0,1") list = "0-1";
      if (list == "2,3") list = "2-3";
      const std::string got = m.read(fmt::format("devices/system/node/node{}/cpulist", n));
      if (got != list + "\n")
        return fmt::format("cpu online: node{} cpulist {:?}, online CPUs {:?}", n, got, list);
      if (!list.empty()) has_cpu += (has_cpu.empty() ? "" : ",") + std::to_string(n);
    }
    // "%*pbl": runs of consecutive nodes as a range.
    if (has_cpu == "0,1") has_cpu = "0-1";
    if (has_cpu == "0,1,3") has_cpu = "0-1,3";
    const std::string got_has = m.read("devices/system/node/has_cpu");
    if (got_has != has_cpu + "\n")
      return fmt::format("cpu online: has_cpu {:?}, nodes with an online CPU {:?}", got_has, has_cpu);

    for (int n = 0; n < kNodes; ++n) {
      const std::string mi = m.read(fmt::format("devices/system/node/node{}/meminfo", n));
      const auto total = rnd::meminfo_kb(mi, "MemTotal"), free = rnd::meminfo_kb(mi, "MemFree");
      const auto huge = rnd::meminfo_kb(mi, "HugePages_Total");
      if (!total || !free || !huge) return fmt::format("read: node{} meminfo", n);
      if (*free > *total)
        return fmt::format("free pages: node{} MemFree {} > MemTotal {}", n, *free, *total);
      std::uint64_t used = 0;
      std::map<std::string, std::uint64_t> kind;  // pages by the allocations' kind names
      for (const auto& [aid, a] : live) {
        used += a.node[n];
        kind[a.kind] += a.node[n];
      }
      // The 1 GiB pool is not in meminfo (hugetlb_report_node_meminfo prints
      // the default hstate's), but its pages are not free.
      const std::uint64_t giga =
          rnd::num(m.read(fmt::format(
                       "devices/system/node/node{}/hugepages/hugepages-1048576kB/nr_hugepages", n)))
              .value_or(0);
      if (*total - *free != *huge * 2048 + giga * 1048576 + used * 4)
        return fmt::format(
            "free pages: node{} MemTotal {} - MemFree {} != huge {} x 2048 + {} x 1048576 + {} "
            "pages",
            n, *total, *free, *huge, giga, used);
      // Each kind feeds its meminfo lines (numa_model.hpp PageKind, reference 4.4).
      const std::uint64_t anon = kind["anon"], file = kind["file"], shmem = kind["shmem"],
                          sr = kind["slab_reclaimable"], su = kind["slab_unreclaimable"];
      const std::pair<std::string_view, std::uint64_t> want[] = {
          {"MemUsed", *total - *free},
          {"AnonPages", anon * 4},
          {"Shmem", shmem * 4},
          {"FilePages", (file + shmem) * 4},
          {"Inactive(anon)", (anon + shmem) * 4},
          {"Inactive(file)", file * 4},
          {"Inactive", (anon + shmem + file) * 4},
          {"PageTables", kind["pagetables"] * 4},
          {"KernelStack", kind["kernel_stack"] * 4},
          {"SReclaimable", sr * 4},
          {"KReclaimable", sr * 4},
          {"SUnreclaim", su * 4},
          {"Slab", (sr + su) * 4},
      };
      for (const auto& [label, kb] : want) {
        const auto got = rnd::meminfo_kb(mi, label);
        if (got != kb)
          return fmt::format("meminfo kinds: node{} {} {} kB, the live allocations make {} kB", n,
                             label, got.value_or(~0ull), kb);
      }
    }
    return {};
  }

  std::string coverage() const override {
    return fmt::format("{} allocations ({} pages, {} interleaved; {} ENOMEM, {} other errors), "
                       "{} frees, {} online and {} hugepage writes taken",
                       allocs_, allocated_, interleaved_, enomem_, einval_, frees_, onlines_, huge_);
  }

  std::size_t allocs_ = 0, enomem_ = 0, einval_ = 0, frees_ = 0, onlines_ = 0, huge_ = 0;
  std::string zonelists_;
  std::uint64_t huge0_ = 0, free0_kb_ = 0;
  std::vector<Stat> stat_;
  std::uint64_t base_hm_ = 0, base_lo_ = 0, base_ihit_ = 0;
  std::uint64_t allocated_ = 0, interleaved_ = 0, last_id_ = 0;
};

rnd::Family numa_family() {
  rnd::Family f;
  f.name = "numa";
  f.toml = kMachine;
  f.generate = generate;
  f.make_checker = [] { return std::make_unique<NumaChecker>(); };
  // The CPU side by its masks and online files, not its ~100 cache and
  // topology files (a snapshot of each per step made this suite the slow
  // one under ASan).
  f.observed = {"devices/system/node", "kernel/debug/vsysfs/numa", "kernel/debug/vsysfs/clock/now_ns",
                "devices/system/cpu/online", "devices/system/cpu/offline", "devices/system/cpu/present"};
  for (int cpu = 0; cpu <= 4; ++cpu) f.observed.push_back(fmt::format("devices/system/cpu/cpu{}/online", cpu));
  return f;
}

}  // namespace

TEST_CASE("numa random: numastat, free pages and zonelists hold over random allocations") {
  const auto f = numa_family();
  const auto o = rnd::run_random(f, rnd::seed_from_env(4242), rnd::steps_from_env(300));
  INFO(rnd::report(f, o));
  CHECK(!o.failure);
}
