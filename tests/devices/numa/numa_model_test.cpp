// Unit tests for devices/numa/numa_model: the kernel's zonelist
// construction (find_next_best_node/build_zonelists,
// docs/kernel-semantics.md section 4.8) against hand-computed orders, and
// numastat accounting (zone_statistics, docs/kernel-semantics.md section
// 4.5) after scripted allocations under each policy.

#include "devices/numa/numa_model.hpp"

#include <doctest/doctest.h>

#include <string>

#include "core/state_record.hpp"

#include <cerrno>
#include <atomic>
#include <stdexcept>
#include <thread>

using vsysfs::devices::AllocRequest;
using vsysfs::devices::HugeSize;
using vsysfs::devices::kGiganticPagePages;
using vsysfs::devices::MemPolicy;
using vsysfs::devices::NumaConfig;
using vsysfs::devices::NumaModel;
using vsysfs::devices::NumaStat;
using vsysfs::devices::PageKind;
using vsysfs::devices::PolicyMode;

namespace {

// n nodes with two CPUs each (2i, 2i+1) and `pages` pages each.
NumaConfig uniform(int n, std::uint64_t pages, std::vector<std::vector<int>> distance = {}) {
  NumaConfig c;
  for (int i = 0; i < n; ++i) {
    NumaConfig::Node node;
    node.cpus = {static_cast<unsigned>(2 * i), static_cast<unsigned>(2 * i + 1)};
    node.present_pages = pages;
    c.nodes.push_back(node);
  }
  c.distance = std::move(distance);
  return c;
}

std::vector<std::vector<int>> zonelists(const NumaModel& m) {
  std::vector<std::vector<int>> out;
  for (int nid = 0; nid < m.nr_node_ids(); ++nid) out.push_back(m.zonelist(nid));
  return out;
}

AllocRequest req(unsigned cpu, std::uint64_t pages, PolicyMode mode = PolicyMode::Default,
                 std::vector<int> nodes = {}, PageKind kind = PageKind::Anon) {
  AllocRequest r;
  r.cpu = cpu;
  r.pages = pages;
  r.policy = MemPolicy{mode, std::move(nodes)};
  r.kind = kind;
  return r;
}

NumaStat stat(std::uint64_t hit, std::uint64_t miss, std::uint64_t foreign, std::uint64_t il,
              std::uint64_t local, std::uint64_t other) {
  return NumaStat{hit, miss, foreign, il, local, other};
}

}  // namespace

TEST_SUITE("numa") {

TEST_CASE("zonelists: default distances (10 local, 20 remote)") {
  NumaModel m(uniform(2, 100));
  CHECK(m.node_distance(0, 1) == 20);
  CHECK(m.node_distance(1, 1) == 10);
  CHECK(zonelists(m) == std::vector<std::vector<int>>{{0, 1}, {1, 0}});
}

TEST_CASE("zonelists: 4-node ring (neighbours 16, opposite 22)") {
  // Hand computation (val = (distance + (n < local) + 1) * 1024 + node_load):
  // node 0 ties 1 and 3 at 16 and takes 1 (lower id first), which gets
  // node_load 1, then 3, then 2 (load 1). Node 1 prefers 2 (16) over 0
  // (16 + 1 for being "under" it). Node 3 ties 0 and 2 at 17 and takes 0
  // because node 2 has collected more load (2 vs 1) by then.
  NumaModel m(uniform(4, 100, {{10, 16, 22, 16}, {16, 10, 16, 22}, {22, 16, 10, 16}, {16, 22, 16, 10}}));
  CHECK(zonelists(m) ==
        std::vector<std::vector<int>>{{0, 1, 3, 2}, {1, 2, 0, 3}, {2, 3, 1, 0}, {3, 0, 2, 1}});
}

TEST_CASE("zonelists: two pairs, the fallback order commit 54d032ced983 expects") {
  // The example from "mm/page_alloc: use accumulated load when building
  // node fallback list": with node_load assigned instead of accumulated,
  // node 3 fell back to 0 before 1; the accumulated load gives 3 2 1 0.
  NumaModel m(uniform(4, 100, {{10, 12, 32, 32}, {12, 10, 32, 32}, {32, 32, 10, 12}, {32, 32, 12, 10}}));
  CHECK(zonelists(m) ==
        std::vector<std::vector<int>>{{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}});
}

TEST_CASE("zonelists: the older node_load rules reproduce the older kernels' orders") {
  const std::vector<std::vector<int>> pairs = {
      {10, 12, 32, 32}, {12, 10, 32, 32}, {32, 32, 10, 12}, {32, 32, 12, 10}};
  // = load (2.6.23 to 5.15): node 2's list re-assigned node 0 a load of 2
  // (overwriting the 3 it got from node 1's list) while node 1 keeps 3, so
  // node 3 falls back to 0 before 1: "3 2 0 1", the "unexpected fallback
  // order" commit 54d032ced983 fixed by accumulating.
  auto assign = uniform(4, 100, pairs);
  assign.node_load = vsysfs::devices::NodeLoadPenalty::Assign;
  CHECK(zonelists(NumaModel(assign)) ==
        std::vector<std::vector<int>>{{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 0, 1}});
  auto countdown = uniform(4, 100, pairs);
  countdown.node_load = vsysfs::devices::NodeLoadPenalty::AddCountdown;
  CHECK(zonelists(NumaModel(countdown)) ==
        std::vector<std::vector<int>>{{0, 1, 2, 3}, {1, 0, 3, 2}, {2, 3, 0, 1}, {3, 2, 1, 0}});
}

TEST_CASE("zonelists: 8 nodes on two sockets (12 same socket, 32 across)") {
  std::vector<std::vector<int>> d(8, std::vector<int>(8));
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) d[i][j] = i == j ? 10 : (i / 4 == j / 4 ? 12 : 32);
  NumaModel m(uniform(8, 100, d));
  // Each node rotates through its own socket first, and the remote socket
  // is entered at a different node each time (round robin by node_load).
  CHECK(zonelists(m) == std::vector<std::vector<int>>{
                            {0, 1, 2, 3, 4, 5, 6, 7},
                            {1, 2, 3, 0, 5, 6, 7, 4},
                            {2, 3, 0, 1, 6, 7, 4, 5},
                            {3, 0, 1, 2, 7, 4, 5, 6},
                            {4, 5, 6, 7, 0, 1, 2, 3},
                            {5, 6, 7, 4, 1, 2, 3, 0},
                            {6, 7, 4, 5, 2, 3, 0, 1},
                            {7, 4, 5, 6, 3, 0, 1, 2},
                        });
}

TEST_CASE("zonelists: asymmetric matrix, a headless node and a memoryless node") {
  // Node 2 has memory but no CPUs (no PENALTY_FOR_NODE_WITH_CPUS), node 3
  // has CPUs but no memory (in no zonelist; its own list starts elsewhere).
  NumaConfig c;
  c.nodes.resize(4);
  c.nodes[0].cpus = {0};
  c.nodes[1].cpus = {1};
  c.nodes[3].cpus = {2};
  c.nodes[0].present_pages = c.nodes[1].present_pages = c.nodes[2].present_pages = 100;
  c.distance = {{10, 20, 20, 25}, {30, 10, 20, 25}, {20, 20, 10, 25}, {17, 21, 21, 10}};
  NumaModel m(c);
  // 0: 1 scores 21 (cpu penalty), 2 scores 20 -> 2 first, then 1.
  // 1: 0 scores 30+1+1, 2 scores 20 -> 2, 0.
  // 2: 0 and 1 both 22; node 0 carries load 1 from node 1's list -> 1, 0.
  // 3: memoryless, skips itself: 0 (17+1+1) < 2 (21+1) < 1 (21+1+1).
  CHECK(zonelists(m) == std::vector<std::vector<int>>{{0, 2, 1}, {1, 2, 0}, {2, 1, 0}, {0, 2, 1}});
  CHECK(m.nodes_with_memory() == std::vector<int>{0, 1, 2});
  CHECK(m.nodes_with_cpu() == std::vector<int>{0, 1, 3});
}

TEST_CASE("invalid machine descriptions are refused") {
  auto bad = [](NumaConfig c) { CHECK_THROWS_AS(NumaModel{std::move(c)}, std::invalid_argument); };
  bad(NumaConfig{});
  bad(uniform(2, 100, {{10, 20}}));                 // rows
  bad(uniform(2, 100, {{10, 20}, {20, 11}}));       // diagonal not LOCAL_DISTANCE
  bad(uniform(2, 100, {{10, 10}, {20, 10}}));       // remote not above local
  bad(uniform(2, 100, {{10, 256}, {20, 10}}));      // not a u8
  auto dup = uniform(2, 100);
  dup.nodes[1].cpus = {1, 2};
  bad(dup);
  auto no_cpu0 = uniform(1, 100);
  no_cpu0.nodes[0].cpus = {1};
  bad(no_cpu0);
  auto threads = uniform(1, 100);
  threads.nodes[0].cpus = {0, 1, 2};
  threads.threads_per_core = 2;
  bad(threads);
  auto off0 = uniform(1, 100);
  off0.offline_cpus = {0};
  bad(off0);
  auto huge = uniform(1, 1000);
  huge.nodes[0].hugepages = 2;  // 1024 pages > 1000
  bad(huge);
  auto giga = uniform(1, 2 * kGiganticPagePages - 1);
  giga.nodes[0].hugepages_1g = 2;  // one page short
  bad(giga);
  auto no_gbpages = uniform(1, 2 * kGiganticPagePages);
  no_gbpages.nodes[0].hugepages_1g = 1;
  no_gbpages.gbpages = false;  // hugepagesz=1G is not a valid size without GBPAGES
  bad(no_gbpages);
  // The boot pools: 1 GiB pages first, then the 2 MiB ones from what is left.
  auto both = uniform(1, kGiganticPagePages + 512);
  both.nodes[0].hugepages_1g = 1;
  both.nodes[0].hugepages = 1;
  NumaModel ok(both);
  CHECK(ok.node(0).free == 0);
  CHECK(ok.node(0).gigantic_nr == 1);
  CHECK(ok.node(0).gigantic_free == 1);
  CHECK(ok.node(0).huge_nr == 1);
  both.nodes[0].hugepages = 2;
  bad(both);
}

TEST_CASE("default policy: local node first, then the zonelist; miss/foreign split") {
  NumaModel m(uniform(2, 1000));
  auto a = m.alloc(req(0, 300));
  REQUIRE(a);
  CHECK(a->per_node == std::vector<std::uint64_t>{300, 0});
  CHECK(m.node(0).stat == stat(300, 0, 0, 0, 300, 0));

  // 800 more from cpu 1 (node 0): node 0 has 700 left, node 1 supplies 100.
  auto b = m.alloc(req(1, 800));
  REQUIRE(b);
  CHECK(b->per_node == std::vector<std::uint64_t>{700, 100});
  CHECK(m.node(0).stat == stat(1000, 0, 100, 0, 1000, 0));
  CHECK(m.node(1).stat == stat(0, 100, 0, 0, 0, 100));
  CHECK(m.node(0).free == 0);
  CHECK(m.node(1).free == 900);
  CHECK(m.node(0).used[static_cast<int>(PageKind::Anon)] == 1000);
}

TEST_CASE("preferred policy: the preferred node's zonelist; local/other by the CPU") {
  NumaModel m(uniform(2, 1000));
  auto a = m.alloc(req(0, 50, PolicyMode::Preferred, {1}, PageKind::File));
  REQUIRE(a);
  CHECK(m.node(1).stat == stat(50, 0, 0, 0, 0, 50));
  CHECK(m.node(1).used[static_cast<int>(PageKind::File)] == 50);
  // Beyond node 1: falls back to node 0, charged as a miss there.
  auto b = m.alloc(req(2, 1000, PolicyMode::Preferred, {1}));
  REQUIRE(b);
  CHECK(b->per_node == std::vector<std::uint64_t>{50, 950});
  CHECK(m.node(1).stat == stat(1000, 0, 50, 0, 950, 50));
  CHECK(m.node(0).stat == stat(0, 50, 0, 0, 0, 50));
}

TEST_CASE("bind policy: the preferred zone is the first allowed zone of the local zonelist") {
  NumaModel m(uniform(3, 1000));
  // From node 0, bound to {1,2}: node 1 comes first in node 0's zonelist,
  // so pages from node 1 are hits, not misses.
  auto a = m.alloc(req(0, 1200, PolicyMode::Bind, {1, 2}));
  REQUIRE(a);
  CHECK(a->per_node == std::vector<std::uint64_t>{0, 1000, 200});
  CHECK(m.node(1).stat == stat(1000, 0, 200, 0, 0, 1000));
  CHECK(m.node(2).stat == stat(0, 200, 0, 0, 0, 200));
  CHECK(m.node(0).stat == NumaStat{});
  // Bound nodes are exhausted except 800 on node 2: 801 is ENOMEM even
  // though node 0 is empty, and nothing changes.
  const auto before1 = m.node(1), before2 = m.node(2);
  CHECK(m.alloc(req(0, 801, PolicyMode::Bind, {1, 2})).error() == vsysfs::core::Errno{ENOMEM});
  CHECK(m.node(1).stat == before1.stat);
  CHECK(m.node(2).free == before2.free);
  CHECK(m.allocations().size() == 1);
}

TEST_CASE("interleave policy: round robin from the first node, interleave_hit on the target") {
  NumaModel m(uniform(4, 1000));
  auto a = m.alloc(req(2, 1000, PolicyMode::Interleave, {0, 1, 2, 3}));
  REQUIRE(a);
  CHECK(a->per_node == std::vector<std::uint64_t>{250, 250, 250, 250});
  CHECK(m.node(0).stat == stat(250, 0, 0, 250, 0, 250));
  CHECK(m.node(1).stat == stat(250, 0, 0, 250, 250, 0));  // cpu 2 is on node 1
  // Odd counts: the first nodes of the set get the extra pages.
  auto b = m.alloc(req(0, 6, PolicyMode::Interleave, {1, 3}));
  REQUIRE(b);
  CHECK(b->per_node == std::vector<std::uint64_t>{0, 3, 0, 3});
  auto c = m.alloc(req(0, 5, PolicyMode::Interleave, {0, 2, 3}));
  REQUIRE(c);
  CHECK(c->per_node == std::vector<std::uint64_t>{2, 0, 2, 1});
}

TEST_CASE("interleave policy: an exhausted target falls back without interleave_hit") {
  NumaModel m(uniform(2, 1000));
  REQUIRE(m.alloc(req(0, 1000)));  // node 0 full
  auto a = m.alloc(req(0, 10, PolicyMode::Interleave, {0, 1}));
  REQUIRE(a);
  CHECK(a->per_node == std::vector<std::uint64_t>{0, 10});
  // 5 were meant for node 0 (misses on node 1, foreign on node 0), 5 for
  // node 1 (hits and interleave hits).
  CHECK(m.node(1).stat == stat(5, 5, 0, 5, 0, 10));
  CHECK(m.node(0).stat == stat(1000, 0, 5, 0, 1000, 0));
}

TEST_CASE("interleave bulk path agrees with page-by-page accounting when targets run dry") {
  // Node 0 has 10 free pages, node 1 plenty: 100 interleaved pages give
  // node 0 its 10 (+ interleave hits), the other 40 meant for node 0 come
  // from node 1 as misses.
  auto c = uniform(2, 1000);
  NumaModel m(c);
  REQUIRE(m.alloc(req(0, 990)));
  auto a = m.alloc(req(0, 100, PolicyMode::Interleave, {0, 1}));
  REQUIRE(a);
  CHECK(a->per_node == std::vector<std::uint64_t>{10, 90});
  CHECK(m.node(0).stat.interleave_hit == 10);
  CHECK(m.node(1).stat == stat(50, 40, 0, 50, 0, 90));
  CHECK(m.node(0).stat.numa_foreign == 40);
}

TEST_CASE("ENOMEM and EINVAL change nothing; free returns pages but keeps numastat") {
  NumaModel m(uniform(2, 1000));
  CHECK(m.alloc(req(0, 2001)).error() == vsysfs::core::Errno{ENOMEM});
  CHECK(m.alloc(req(0, 0)).error() == vsysfs::core::Errno{EINVAL});
  CHECK(m.alloc(req(9, 1)).error() == vsysfs::core::Errno{EINVAL});                      // no cpu 9
  CHECK(m.alloc(req(0, 1, PolicyMode::Bind, {})).error() == vsysfs::core::Errno{EINVAL});
  CHECK(m.alloc(req(0, 1, PolicyMode::Bind, {5})).error() == vsysfs::core::Errno{EINVAL});
  CHECK(m.alloc(req(0, 1, PolicyMode::Preferred, {0, 1})).error() == vsysfs::core::Errno{EINVAL});
  CHECK(m.node(0).stat == NumaStat{});
  CHECK(m.node(0).free == 1000);
  CHECK(m.last_alloc_id() == 0);

  auto a = m.alloc(req(0, 1500, PolicyMode::Default, {}, PageKind::Shmem));
  REQUIRE(a);
  CHECK(a->id == 1);
  auto freed = m.free(a->id);
  REQUIRE(freed);
  CHECK(m.node(0).free == 1000);
  CHECK(m.node(1).free == 1000);
  CHECK(m.node(0).used[static_cast<int>(PageKind::Shmem)] == 0);
  CHECK(m.node(0).stat.numa_hit == 1000);  // the kernel never un-counts
  CHECK(m.free(a->id).error() == vsysfs::core::Errno{ENOENT});
}

TEST_CASE("memoryless local node: allocations are hits on the nearest node with memory") {
  NumaConfig c = uniform(2, 1000);
  c.nodes[1].present_pages = 0;
  NumaModel m(c);
  auto a = m.alloc(req(2, 10));  // cpu 2 is on memoryless node 1
  REQUIRE(a);
  CHECK(m.node(0).stat == stat(10, 0, 0, 0, 0, 10));
  CHECK(m.alloc(req(2, 1, PolicyMode::Bind, {1})).error() == vsysfs::core::Errno{EINVAL});
}

TEST_CASE("balloon API: pages move in and out of a node; N_MEMORY and zonelists follow") {
  NumaConfig c = uniform(2, 1000);
  c.nodes[1].present_pages = 0;
  NumaModel m(c);
  CHECK(m.zonelist(1) == std::vector<int>{0});
  REQUIRE(m.add_present_pages(1, 500));
  CHECK(m.node(1).present == 500);
  CHECK(m.node(1).free == 500);
  CHECK(m.zonelist(1) == std::vector<int>{1, 0});
  CHECK(m.zonelist(0) == std::vector<int>{0, 1});
  REQUIRE(m.alloc(req(2, 100)));
  auto got = m.remove_present_pages(1, 1000);
  REQUIRE(got);
  CHECK(*got == 400);  // only free pages can be ballooned out
  CHECK(m.node(1).present == 100);
  CHECK(m.remove_present_pages(7, 1).error() == vsysfs::core::Errno{EINVAL});
  CHECK(!m.add_present_pages(-1, 1));
}

TEST_CASE("hugepages: grow from the node's free pages, shrink only free ones") {
  NumaModel m(uniform(1, 2000));
  CHECK(m.set_nr_hugepages(0, 10) == 3);  // 3 * 512 fit in 2000
  CHECK(m.node(0).free == 2000 - 3 * 512);
  CHECK(m.set_nr_hugepages(0, 1) == 1);
  CHECK(m.node(0).free == 2000 - 512);
  CHECK(m.node(0).huge_free == 1);
}

TEST_CASE("hugepages: a partial round-robin round visits the nodes in order from the cursor") {
  // for_each_node_mask_to_alloc: fewer pages than nodes go to the next
  // nodes in turn, none skipped (three nodes: 0 and 1, then 2 and 0).
  NumaModel m(uniform(3, 4096));
  CHECK(m.set_global_nr_hugepages(2) == 2);
  CHECK(m.node(0).huge_nr == 1);
  CHECK(m.node(1).huge_nr == 1);
  CHECK(m.node(2).huge_nr == 0);
  CHECK(m.set_global_nr_hugepages(4) == 4);
  CHECK(m.node(2).huge_nr == 1);
  CHECK(m.node(0).huge_nr == 2);
}

TEST_CASE("1 GiB hugepages: a node grows while its free pages hold a whole gigantic page") {
  NumaModel m(uniform(2, 3 * kGiganticPagePages - 1));
  CHECK(m.gigantic_pages());
  // Two fit on node 0 (the third would need one page more).
  CHECK(m.set_nr_hugepages(0, 5, HugeSize::k1G) == 2);
  CHECK(m.node(0).free == kGiganticPagePages - 1);
  CHECK(m.node(0).gigantic_nr == 2);
  CHECK(m.node(0).gigantic_free == 2);
  CHECK(m.node(0).huge_nr == 0);  // the 2 MiB pool is another hstate
  CHECK(m.huge_totals(HugeSize::k1G).nr == 2);
  CHECK(m.huge_totals(HugeSize::k2M).nr == 0);
  // Shrinking gives whole gigantic pages back.
  CHECK(m.set_nr_hugepages(0, 1, HugeSize::k1G) == 1);
  CHECK(m.node(0).free == 2 * kGiganticPagePages - 1);
  CHECK(m.set_nr_hugepages(0, 0, HugeSize::k1G) == 0);
  CHECK(m.node(0).free == 3 * kGiganticPagePages - 1);
}

TEST_CASE("1 GiB hugepages: a node that lacks the memory gets none; the others are untouched") {
  NumaModel m(uniform(2, kGiganticPagePages + 100));
  // Half the node in use: 1 GiB no longer fits although most of it is free.
  REQUIRE(m.alloc(req(0, 200)));
  CHECK(m.node(0).free == kGiganticPagePages - 100);
  CHECK(m.set_nr_hugepages(0, 1, HugeSize::k1G) == 0);
  CHECK(m.node(0).free == kGiganticPagePages - 100);
  CHECK(m.node(0).gigantic_nr == 0);
  // 2 MiB pages use the rest: a gigantic page then cannot come from node 1
  // either, once it is short by one 2 MiB page.
  CHECK(m.set_nr_hugepages(1, 1, HugeSize::k2M) == 1);
  CHECK(m.set_nr_hugepages(1, 1, HugeSize::k1G) == 0);
  CHECK(m.set_global_nr_hugepages(3, HugeSize::k1G) == 0);
  CHECK(m.node(1).free == kGiganticPagePages + 100 - 512);
}

TEST_CASE("1 GiB hugepages: the global store interleaves from the 1 GiB hstate's own cursor") {
  NumaModel m(uniform(3, 2 * kGiganticPagePages));
  // The 2 MiB hstate's cursor moves; the 1 GiB one starts on node 0 still.
  CHECK(m.set_global_nr_hugepages(2, HugeSize::k2M) == 2);  // nodes 0, 1
  CHECK(m.set_global_nr_hugepages(2, HugeSize::k1G) == 2);
  CHECK(m.node(0).gigantic_nr == 1);
  CHECK(m.node(1).gigantic_nr == 1);
  CHECK(m.node(2).gigantic_nr == 0);
  // Node 0 and 1 cannot give a second one (2 MiB pages took 512 pages);
  // node 2 gives two.
  CHECK(m.set_global_nr_hugepages(10, HugeSize::k1G) == 4);
  CHECK(m.node(2).gigantic_nr == 2);
  CHECK(m.set_global_nr_hugepages(1, HugeSize::k1G) == 1);
  CHECK(m.huge_totals(HugeSize::k1G).free == 1);
}

TEST_CASE("1 GiB hugepages: demote splits free gigantic pages into 2 MiB pages on their node") {
  NumaModel m(uniform(2, 2 * kGiganticPagePages));
  REQUIRE(m.set_nr_hugepages(0, 2, HugeSize::k1G) == 2);
  REQUIRE(m.set_nr_hugepages(1, 1, HugeSize::k1G) == 1);
  const std::uint64_t free0 = m.node(0).free, free1 = m.node(1).free;
  // A node's demote: that node only.
  CHECK(m.demote_gigantic(1, 5) == 1);
  CHECK(m.node(1).gigantic_nr == 0);
  CHECK(m.node(1).huge_nr == 512);
  CHECK(m.node(1).huge_free == 512);
  CHECK(m.node(1).free == free1);       // nothing goes back to the buddy allocator
  CHECK(m.demote_gigantic(1, 1) == 0);  // none left there: no error
  // The global demote: from the hstate's next_nid_to_free.
  CHECK(m.demote_gigantic(-1, 1) == 1);
  CHECK(m.node(0).gigantic_nr == 1);
  CHECK(m.node(0).huge_nr == 512);
  CHECK(m.huge_totals(HugeSize::k2M).nr == 1024);
  CHECK(m.demote_gigantic(-1, 0) == 0);
  CHECK(m.demote_gigantic(-1, 7) == 1);
  CHECK(m.huge_totals(HugeSize::k1G).nr == 0);
  CHECK(m.huge_totals(HugeSize::k2M).free == 3 * 512);
  CHECK(m.node(0).free == free0);
  // The demoted pages are 2 MiB pages like any other: shrinking frees them.
  CHECK(m.set_global_nr_hugepages(0) == 0);
  CHECK(m.node(0).free == 2 * kGiganticPagePages);
  CHECK(m.node(1).free == 2 * kGiganticPagePages);
}

TEST_CASE("snapshot record: the 1 GiB pools and cursors come back; a malformed record is EINVAL") {
  using vsysfs::core::StateReader;
  using vsysfs::core::StateWriter;
  NumaModel a(uniform(2, 2 * kGiganticPagePages));
  REQUIRE(a.set_nr_hugepages(1, 1, HugeSize::k1G) == 1);      // the cursor stays on node 1 ...
  REQUIRE(a.set_global_nr_hugepages(2, HugeSize::k1G) == 2);  // ... gives one more, moves to 0
  REQUIRE(a.node(1).gigantic_nr == 2);
  StateWriter w(2);
  a.save_state(w);
  const std::string rec = w.text();
  CHECK(rec.find("numa.node1.huge1g_nr=2\n") != std::string::npos);
  NumaModel b(uniform(2, 2 * kGiganticPagePages));
  auto r = StateReader::parse(rec);
  REQUIRE(r);
  REQUIRE(b.load_state(*r));
  CHECK(b.node(0).gigantic_nr == a.node(0).gigantic_nr);
  CHECK(b.node(1).gigantic_free == 2);
  CHECK(b.node(1).free == a.node(1).free);
  // The cursor came back too: the next global page goes where it would on a.
  CHECK(a.set_global_nr_hugepages(3, HugeSize::k1G) == 3);
  CHECK(b.set_global_nr_hugepages(3, HugeSize::k1G) == 3);
  CHECK(b.node(0).gigantic_nr == a.node(0).gigantic_nr);
  CHECK(b.node(1).gigantic_nr == a.node(1).gigantic_nr);

  auto refused = [&](const std::string& text) {
    auto rr = StateReader::parse(text);
    REQUIRE(rr);
    const auto before = b.node(1);
    const bool ok = static_cast<bool>(b.load_state(*rr));
    CHECK(b.node(1).gigantic_nr == before.gigantic_nr);  // nothing changed
    CHECK(b.node(1).free == before.free);
    return !ok;
  };
  auto edit = [&](std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  // A version-1 record (no 1 GiB fields), a pool with more free pages than
  // pages, a cursor on no node, junk.
  CHECK(refused(edit(rec, "numa.node0.huge1g_nr=", "numa.node0.other=")));
  CHECK(refused(edit(rec, "numa.node1.huge1g_free=2", "numa.node1.huge1g_free=3")));
  CHECK(refused(edit(rec, "numa.huge1g.next_nid_to_free=", "numa.huge1g.next_nid_to_free=7")));
  CHECK(refused(edit(rec, "numa.node1.huge1g_nr=2", "numa.node1.huge1g_nr=x")));
  // A record with a 1 GiB pool for a machine without GBPAGES.
  auto no_gb = uniform(2, 2 * kGiganticPagePages);
  no_gb.gbpages = false;
  NumaModel c(no_gb);
  auto rc = StateReader::parse(rec);
  REQUIRE(rc);
  CHECK_FALSE(c.load_state(*rc));
  CHECK(c.node(1).free == 2 * kGiganticPagePages);
}

TEST_CASE("without GBPAGES there is no 1 GiB hstate") {
  auto c = uniform(1, 4 * kGiganticPagePages);
  c.gbpages = false;
  NumaModel m(c);
  CHECK_FALSE(m.gigantic_pages());
}

TEST_CASE(
    "without PSE there is no hstate: the pools stay empty, a boot pool or record is refused") {
  using vsysfs::core::StateReader;
  using vsysfs::core::StateWriter;
  auto c = uniform(2, 4 * kGiganticPagePages);
  c.pse = false;
  NumaModel m(c);
  CHECK_FALSE(m.hugetlb_supported());
  CHECK_FALSE(m.gigantic_pages());  // GBPAGES alone makes no hstate sysfs
  CHECK_FALSE(m.hstate_exists(HugeSize::k2M));
  CHECK(m.set_nr_hugepages(0, 4) == 0);
  CHECK(m.set_global_nr_hugepages(4) == 0);
  CHECK(m.set_nr_hugepages(0, 1, HugeSize::k1G) == 0);
  CHECK(m.node(0).free == 4 * kGiganticPagePages);
  CHECK(m.huge_totals().nr == 0);
  auto boot = c;
  boot.nodes[1].hugepages = 1;
  CHECK_THROWS_WITH_AS(NumaModel{boot},
                       doctest::Contains("node 1: hugepages_2m needs a CPU with pse"),
                       std::invalid_argument);
  boot = c;
  boot.nodes[0].hugepages_1g = 1;
  CHECK_THROWS_WITH_AS(NumaModel{boot},
                       doctest::Contains("node 0: hugepages_1g needs a CPU with pse"),
                       std::invalid_argument);
  // A record with a 2 MiB pool (from a machine with PSE) does not load.
  NumaModel a(uniform(2, 4 * kGiganticPagePages));
  REQUIRE(a.set_nr_hugepages(1, 2) == 2);
  StateWriter w(2);
  a.save_state(w);
  auto r = StateReader::parse(w.text());
  REQUIRE(r);
  CHECK_FALSE(m.load_state(*r));
  CHECK(m.node(1).free == 4 * kGiganticPagePages);
  // One without pools does.
  StateWriter w0(2);
  m.save_state(w0);
  auto r0 = StateReader::parse(w0.text());
  REQUIRE(r0);
  CHECK(m.load_state(*r0));
}

TEST_CASE("topology: threads enumerate after all first threads of a package") {
  NumaConfig c;
  c.nodes.resize(2);
  c.nodes[0].cpus = {0, 1, 4, 5};
  c.nodes[1].cpus = {2, 3, 6, 7};
  c.nodes[0].present_pages = c.nodes[1].present_pages = 10;
  c.threads_per_core = 2;
  NumaModel m(c);
  CHECK(m.topology(4).core_id == 0);
  CHECK(m.topology(5).core_id == 1);
  CHECK(m.topology(6).package == 1);
  CHECK(m.core_cpus(1) == std::vector<unsigned>{1, 5});
  CHECK(m.package_cpus(7) == std::vector<unsigned>{2, 3, 6, 7});
  CHECK(m.nr_cpu_ids() == 8);
}

TEST_CASE("cpu hotplug: the last online CPU stays") {
  NumaModel m(uniform(1, 10));
  CHECK(*m.set_cpu_online(1, false));
  CHECK(!*m.set_cpu_online(1, false));
  CHECK(m.set_cpu_online(0, false).error() == vsysfs::core::Errno{EBUSY});
  CHECK(m.online_cpus() == std::vector<unsigned>{0});
  CHECK(m.nodes_with_cpu() == std::vector<int>{0});
  CHECK(m.alloc(req(1, 1)).error() == vsysfs::core::Errno{EINVAL});  // offline CPU
}

}  // TEST_SUITE

TEST_SUITE("numa") {

TEST_CASE("concurrent allocations, frees, hotplug and balloon moves keep every page accounted") {
  // Four threads allocate under every policy and free again while a fifth
  // offlines/onlines a CPU and moves pages through the balloon API. At the
  // end, with everything freed, each node's free pages equal its present
  // pages and numa_hit + numa_miss over all nodes equals the pages handed
  // out (every page is charged exactly once to its supplier).
  NumaModel m(uniform(4, 4096));
  std::atomic<std::uint64_t> handed_out{0};
  auto worker = [&](unsigned seed) {
    std::uint64_t x = seed * 2654435761u + 1;
    auto next = [&] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL; };
    std::vector<std::uint64_t> mine;
    for (int i = 0; i < 2000; ++i) {
      const auto r = next();
      if (!mine.empty() && (r >> 60) < 6) {
        CHECK(m.free(mine.back()));
        mine.pop_back();
        continue;
      }
      static const PolicyMode modes[] = {PolicyMode::Default, PolicyMode::Preferred,
                                         PolicyMode::Bind, PolicyMode::Interleave};
      const PolicyMode mode = modes[(r >> 8) % 4];
      std::vector<int> nodes;
      if (mode == PolicyMode::Preferred) nodes = {static_cast<int>((r >> 12) % 4)};
      if (mode == PolicyMode::Bind || mode == PolicyMode::Interleave) nodes = {1, 3};
      auto a = m.alloc(req(static_cast<unsigned>((r >> 16) % 2) * 2, 1 + (r >> 20) % 700, mode, nodes));
      if (a) {
        mine.push_back(a->id);
        handed_out += a->pages;
      } else {
        CHECK((a.error() == vsysfs::core::Errno{ENOMEM} || a.error() == vsysfs::core::Errno{EINVAL}));
      }
    }
    for (auto id : mine) CHECK(m.free(id));
  };
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    while (!stop) {
      (void)m.set_cpu_online(3, false);
      (void)m.set_cpu_online(3, true);
      auto got = m.remove_present_pages(2, 64);
      if (got) CHECK(m.add_present_pages(2, *got));
    }
  });
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) threads.emplace_back(worker, t + 1);
  for (auto& t : threads) t.join();
  stop = true;
  churn.join();
  std::uint64_t charged = 0;
  for (int nid = 0; nid < 4; ++nid) {
    const auto s = m.node(nid);
    CHECK(s.free == s.present);
    CHECK(s.present == 4096);
    for (auto u : s.used) CHECK(u == 0);
    charged += s.stat.numa_hit + s.stat.numa_miss;
    CHECK(s.stat.local_node + s.stat.other_node == s.stat.numa_hit + s.stat.numa_miss);
  }
  CHECK(charged == handed_out.load());
  std::uint64_t foreign = 0, miss = 0;
  for (int nid = 0; nid < 4; ++nid) {
    foreign += m.node(nid).stat.numa_foreign;
    miss += m.node(nid).stat.numa_miss;
  }
  CHECK(foreign == miss);
  CHECK(m.allocations().empty());
}

}  // TEST_SUITE
