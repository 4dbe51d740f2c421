// The guest kernel's own memory under the Xen balloon ([xen]
// kernel_memory, devices/xen/xen_balloon_memory.hpp): decrease_reservation
// takes pages by allocating them (drivers/xen/balloon.c), so it never gets
// the kernel's; ballooning changes managed pages only
// (adjust_managed_page_count in mm/page_alloc.c), so node states and
// zonelists stay; a node the balloon emptied answers a bound allocation
// with ENOMEM. And one step event per worker run.
#include <doctest/doctest.h>

#include <cerrno>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "devices/machine/machine.hpp"
#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

using vsysfs::core::ConfigError;

std::uint64_t node_kb(TestMachine& m, int nid, std::string_view label) {
  std::istringstream in(m.read("devices/system/node/node" + std::to_string(nid) + "/meminfo"));
  std::string line;
  const std::string want = std::string(label) + ":";
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string node, id, name;
    std::uint64_t kb = 0;
    f >> node >> id >> name >> kb;
    if (name == want) return kb;
  }
  FAIL("no " << label << " in node" << nid << "/meminfo");
  return 0;
}

// Two nodes (64 MiB and 192 MiB) of a 256 MiB guest with a 512 MiB
// maximum on a 1 GiB host.
std::string two_nodes(std::string_view driver, std::string_view xen_extra = "") {
  return std::string(
             "[numa]\n"
             "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 64\n"
             "[[numa.node]]\ncpus = \"1\"\nmemory_mb = 192\n"
             "[xen]\nhost_memory = \"1G\"\nmax_memory = \"512M\"\nmax_retry_count = 0\n"
             "driver = \"") +
         std::string(driver) + "\"\n" + std::string(xen_extra);
}

struct NodeView {
  std::uint64_t total, free, used, sunreclaim;
};

NodeView view(TestMachine& m, int nid) {
  return {node_kb(m, nid, "MemTotal"), node_kb(m, nid, "MemFree"), node_kb(m, nid, "MemUsed"),
          node_kb(m, nid, "SUnreclaim")};
}

// The balloon x NUMA invariants, at any point between worker steps.
// `kernel` holds each node's kernel KiB from boot.
void check_invariants(TestMachine& m, const std::vector<std::uint64_t>& kernel,
                      const std::string& has_memory, const std::string& zonelists) {
  std::uint64_t total = 0, free = 0, kernel_sum = 0;
  for (int nid = 0; nid < static_cast<int>(kernel.size()); ++nid) {
    CAPTURE(nid);
    const NodeView v = view(m, nid);
    CHECK(v.total == v.free + v.used);
    CHECK(v.used >= kernel[nid]);        // the kernel's pages are intact...
    CHECK(v.sunreclaim >= kernel[nid]);  // ...and still its own
    total += v.total;
    free += v.free;
    kernel_sum += kernel[nid];
  }
  CHECK(current_kb(m) == total);
  CHECK(read_u64(m, knob("guest/kernel_kb")) == kernel_sum);
  CHECK(read_u64(m, knob("guest/free_kb")) == free);
  CHECK(read_u64(m, knob("guest/max_kb")) == total + read_u64(m, dev("info/low_kb")));
  CHECK(m.read("devices/system/node/has_memory") == has_memory);
  CHECK(m.read("devices/system/node/has_normal_memory") == has_memory);
  CHECK(m.read("kernel/debug/vsysfs/numa/zonelists") == zonelists);
  CHECK(memory_consistent(m));
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("kernel_memory: default 1/64 of each node, held from boot in SUnreclaim") {
  TestMachine m(two_nodes("kthread"));
  CHECK(read_u64(m, knob("guest/kernel_kb")) == 4096);
  CHECK(view(m, 0).used == 1024);
  CHECK(view(m, 1).used == 3072);
  CHECK(view(m, 1).sunreclaim == 3072);
  CHECK(view(m, 1).free == 192 * 1024 - 3072);
  CHECK(current_kb(m) == 262144);  // MemTotal is unchanged: the pages are allocated
  CHECK(read_u64(m, knob("guest/free_kb")) == 262144 - 4096);
  // The two-vnode guest: 128 MiB on each 8 GiB node.
  TestMachine d(vsysfs::testing::machine_file_text("xen-guest-vnuma.toml"));
  CHECK(read_u64(d, knob("guest/kernel_kb")) == 262144);
  CHECK(node_kb(d, 0, "MemUsed") == 131072);
  CHECK(node_kb(d, 1, "MemUsed") == 131072);
  // The default machine's dom0: 256 MiB of its one 16 GiB node.
  TestMachine z(vsysfs::devices::default_machine_toml());
  CHECK(read_u64(z, knob("guest/kernel_kb")) == 262144);
  CHECK(node_kb(z, 0, "MemUsed") == 262144);
}

TEST_CASE("kernel_memory: a size is split in proportion to the nodes' memory; bad sizes refused") {
  TestMachine m(two_nodes("kthread", "kernel_memory = \"16M\"\n"));
  CHECK(read_u64(m, knob("guest/kernel_kb")) == 16384);
  CHECK(view(m, 0).used == 4096);
  CHECK(view(m, 1).used == 12288);
  // An odd page count: the remainder goes to the first node with memory.
  TestMachine odd(two_nodes("kthread", "kernel_memory = 12\n"));
  CHECK(view(odd, 0).used == 4);
  CHECK(view(odd, 1).used == 8);
  TestMachine zero(two_nodes("kthread", "kernel_memory = 0\n"));
  CHECK(view(zero, 0).used == 0);
  CHECK_THROWS_WITH_AS(TestMachine(two_nodes("kthread", "kernel_memory = \"300M\"\n")),
                       doctest::Contains("kernel_memory"), ConfigError);
  CHECK_THROWS_AS(TestMachine(two_nodes("kthread", "kernel_memory = 6\n")), ConfigError);
  // Hugepages leave node 0 too little for its share.
  CHECK_THROWS_WITH_AS(
      TestMachine("[numa]\n[[numa.node]]\ncpus = \"0\"\nmemory_mb = 64\nhugepages_2m = 31\n"
                  "[[numa.node]]\ncpus = \"1\"\nmemory_mb = 64\n"
                  "[xen]\nkernel_memory = \"8M\"\n"),
      doctest::Contains("node 0"), ConfigError);
  // Without [numa]: kernel_memory + used must fit in memory.
  TestMachine flat(small_machine("kernel_memory = \"32M\"\n"));
  CHECK(read_u64(flat, knob("guest/kernel_kb")) == 32768);
  CHECK(read_u64(flat, knob("guest/free_kb")) == 262144 - 32768 - 65536);
  CHECK(flat.write(knob("guest/used_kb"), "229380\n") == -ENOMEM);
  CHECK(flat.write(knob("guest/used_kb"), "229376\n") == 7);
  CHECK(read_u64(flat, knob("guest/free_kb")) == 0);
  CHECK_THROWS_AS(TestMachine(small_machine("kernel_memory = \"200M\"\n")), ConfigError);
}

TEST_CASE("workqueue: ballooning to 0 takes every free page, keeps the kernel's, and retries") {
  TestMachine m(two_nodes("workqueue"));
  const std::vector<std::uint64_t> kernel = {1024, 3072};
  const std::string has_memory = "0-1\n";
  const std::string zonelists = m.read("kernel/debug/vsysfs/numa/zonelists");
  REQUIRE(zonelists == "Fallback order for Node 0: 0 1 \nFallback order for Node 1: 1 0 \n");
  check_invariants(m, kernel, has_memory, zonelists);
  REQUIRE(m.write(dev("target_kb"), "0\n") == 2);
  for (int s = 0; s < 40; ++s) {
    m.advance_ms(1000);
    CAPTURE(s);
    check_invariants(m, kernel, has_memory, zonelists);
  }
  CHECK(current_kb(m) == 4096);  // the kernel's pages, nothing else
  CHECK(view(m, 0).total == 1024);
  CHECK(view(m, 1).total == 3072);
  CHECK(view(m, 0).free == 0);
  CHECK(view(m, 1).free == 0);
  CHECK(m.read(knob("guest/state")) == "EAGAIN\n");
  // A full node answers a bound allocation with ENOMEM, not EINVAL: it is
  // still in N_MEMORY, it just has no free page.
  CHECK(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1 cpu=0 policy=bind:0\n") == -ENOMEM);
  CHECK(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1 cpu=1 policy=bind:1\n") == -ENOMEM);
  CHECK(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1 cpu=0\n") == -ENOMEM);
  // The balloon's alloc_page calls count in numastat (zone_statistics):
  // the kworker is on node 0, so node 1's pages are misses there.
  auto stat = [&](int nid, std::string_view key) {
    std::istringstream in(m.read("devices/system/node/node" + std::to_string(nid) + "/numastat"));
    std::string k;
    std::uint64_t v = 0;
    while (in >> k >> v)
      if (k == key) return v;
    FAIL("no " << key);
    return std::uint64_t{0};
  };
  CHECK(stat(0, "numa_hit") == 63 * 256);
  CHECK(stat(0, "local_node") == 63 * 256);
  CHECK(stat(1, "numa_miss") == 189 * 256);
  CHECK(stat(1, "other_node") == 189 * 256);
  CHECK(stat(0, "numa_foreign") == 189 * 256);
  CHECK(stat(1, "numa_hit") == 0);
  // The run that emptied the guest is one event; each retry since, one
  // event with nothing moved.
  const auto steps = m.events_of("xen_balloon", "step");
  REQUIRE(steps.size() >= 2);
  CHECK(steps[0].field("direction") == "\"decrease\"");
  CHECK(steps[0].field("granted") == std::to_string((262144 - 4096) / 4));
  CHECK(steps[0].field("current_kb") == "4096");
  CHECK(steps[0].result == "EAGAIN");
  for (std::size_t i = 1; i < steps.size(); ++i) {
    CHECK(steps[i].field("granted") == "0");
    CHECK(steps[i].result == "EAGAIN");
  }
  // Growing again (once the pending retry runs: a target store does not
  // re-queue the work) gives the pages back to the nodes they came from.
  REQUIRE(m.write(dev("target_kb"), "262144\n") == 7);
  for (int s = 0; s < 64 && current_kb(m) != 262144; ++s) m.advance_ms(1000);
  CHECK(view(m, 0).total == 65536);
  CHECK(view(m, 1).total == 196608);
  CHECK(m.read(knob("guest/state")) == "DONE\n");
  check_invariants(m, kernel, has_memory, zonelists);
}

TEST_CASE("kthread on the two-vnode guest: ballooning to 0 stops above the kernel's memory") {
  TestMachine m(vsysfs::testing::machine_file_text("xen-guest-vnuma.toml"));
  const std::vector<std::uint64_t> kernel = {131072, 131072};
  const std::string has_memory = "0-1\n";
  const std::string zonelists = m.read("kernel/debug/vsysfs/numa/zonelists");
  const std::uint64_t reserve = read_u64(m, knob("guest/reserve_kb"));
  REQUIRE(m.write(dev("target_kb"), "0\n") == 2);
  std::uint64_t last = current_kb(m);
  for (int s = 0; s < 30; ++s) {
    m.advance_ms(1000);
    CAPTURE(s);
    check_invariants(m, kernel, has_memory, zonelists);
    CHECK(current_kb(m) <= last);
    last = current_kb(m);
  }
  // si_mem_available() keeps totalreserve_pages free; after
  // max_retry_count failed retries the thread gives up (BP_ECANCELED).
  // Once si_mem_available() is below totalreserve_pages, every pass is
  // BP_EAGAIN (balloon_thread: n_pages < totalreserve_pages); after
  // max_retry_count (4) the thread gives up (BP_ECANCELED) for an hour.
  CHECK(m.read(knob("guest/state")) == "ECANCELED\n");
  CHECK(read_u64(m, knob("guest/free_kb")) >= reserve);
  CHECK(read_u64(m, knob("guest/free_kb")) < 2 * reserve);
  CHECK(view(m, 0).free == 0);  // node 0 went first (its zonelist)
  CHECK(view(m, 0).total == 131072);
  CHECK(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1 cpu=0 policy=bind:0\n") == -ENOMEM);
  // The 16 GiB went in whole runs (at most kMaxPassesPerRun frame_lists
  // each), not one event per 512 pages.
  const auto steps = m.events_of("xen_balloon", "step");
  std::uint64_t moved = 0;
  for (const auto& e : steps) moved += std::stoull(e.field("granted"));
  CHECK(moved * 4 == 16777216 - current_kb(m));
  CHECK(steps.size() <= 4 + 4);  // 4 runs of up to 2048 passes, then the retries

  // Hourly retries take the rest down to totalreserve_pages, never further.
  for (int s = 0; s < 12 * 60; ++s) {
    m.advance_ms(60 * 1000);
    CAPTURE(s);
    check_invariants(m, kernel, has_memory, zonelists);
  }
  CHECK(current_kb(m) == 262144 + reserve);
  CHECK(read_u64(m, knob("guest/free_kb")) == reserve);
}

}  // TEST_SUITE("xen_balloon")
