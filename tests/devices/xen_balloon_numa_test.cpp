// The Xen balloon on a NUMA guest (devices/xen_balloon_memory.hpp, NUMA
// back end): the guest's memory is its nodes' memory. After every balloon
// step, up or down, info/current_kb is the sum of the nodes' MemTotal and
// host free + every domain's current = host total.
#include <doctest/doctest.h>

#include <fcntl.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/config.hpp"
#include "devices/machine.hpp"
#include "tests/devices/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

using vsysfs::core::ConfigError;

// Two nodes of 64 MiB (16384 pages each); this guest is their 128 MiB of a
// 256 MiB maximum on a 512 MiB host with one other domain of 128 MiB, so
// 256 MiB of the host is free.
constexpr std::string_view kNuma =
    "[numa]\n"
    "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 64\n"
    "[[numa.node]]\ncpus = \"1\"\nmemory_mb = 64\n";

std::string numa_machine(std::string_view xen_extra = "") {
  return std::string(kNuma) +
         "[xen]\nhost_memory = \"512M\"\nmax_memory = \"256M\"\n" + std::string(xen_extra) +
         "[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"128M\"\n";
}

// "Node N <label>:   <kb> kB" from nodeN/meminfo.
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

std::uint64_t nodes_kb(TestMachine& m, std::string_view label) {
  return node_kb(m, 0, label) + node_kb(m, 1, label);
}

// The two invariants of the issue, checked together.
void check_accounts(TestMachine& m) {
  CHECK(current_kb(m) == nodes_kb(m, "MemTotal"));
  CHECK(memory_consistent(m));
}

// One balloon step: a new target at most one batch (512 pages, 2048 KiB)
// away, and the worker run at once.
void step_to(TestMachine& m, std::uint64_t target_kb) {
  REQUIRE(m.write(dev("target_kb"), std::to_string(target_kb) + "\n") > 0);
  m.advance_ms(0);
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("NUMA guest: boots with its nodes' memory; used_kb gives way to numa/alloc") {
  TestMachine m(numa_machine());
  CHECK(current_kb(m) == 131072);
  CHECK(nodes_kb(m, "MemTotal") == 131072);
  CHECK(m.read(dev("info/low_kb")) == "131072\n");  // 256 - 128 MiB in the balloon
  CHECK(read_u64(m, knob("guest/max_kb")) == 262144);
  CHECK(read_u64(m, knob("guest/free_kb")) == nodes_kb(m, "MemFree"));
  CHECK(m.open_errno(knob("guest/used_kb"), O_RDONLY) == -ENOENT);
  check_accounts(m);
  // The numa workload is what the balloon's free pages come from.
  REQUIRE(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1000 cpu=0\n") > 0);
  CHECK(read_u64(m, knob("guest/free_kb")) == 131072 - 4000);
  CHECK(read_u64(m, knob("guest/free_kb")) == nodes_kb(m, "MemFree"));
  check_accounts(m);
}

TEST_CASE("NUMA guest: ballooning up, one batch at a time, spreads new pages over the nodes") {
  TestMachine m(numa_machine());
  std::uint64_t target = 131072;
  while (target < 262144) {
    target += 2048;
    step_to(m, target);
    CAPTURE(target);
    REQUIRE(current_kb(m) == target);
    check_accounts(m);
    // Round robin one page at a time: the nodes never differ by more
    // than one page.
    const std::uint64_t n0 = node_kb(m, 0, "MemTotal"), n1 = node_kb(m, 1, "MemTotal");
    CHECK((n0 > n1 ? n0 - n1 : n1 - n0) <= 4);
  }
  CHECK(node_kb(m, 0, "MemTotal") == 131072);
  CHECK(node_kb(m, 1, "MemTotal") == 131072);
  CHECK(nodes_kb(m, "MemFree") == 262144);
  CHECK(m.read(dev("info/low_kb")) == "0\n");
}

TEST_CASE("NUMA guest: round robin of odd grants alternates the node that gets the extra page") {
  TestMachine m(numa_machine());
  step_to(m, 131072 + 12);  // 3 pages
  CHECK(node_kb(m, 0, "MemTotal") == 65536 + 8);
  CHECK(node_kb(m, 1, "MemTotal") == 65536 + 4);
  step_to(m, 131072 + 24);  // 3 more
  CHECK(node_kb(m, 0, "MemTotal") == 65536 + 12);
  CHECK(node_kb(m, 1, "MemTotal") == 65536 + 12);
  check_accounts(m);
}

TEST_CASE("NUMA guest: ballooning down takes node 0's free pages first, then node 1's") {
  TestMachine m(numa_machine());
  std::uint64_t target = 131072;
  while (target > 16384) {
    target -= 2048;
    step_to(m, target);
    CAPTURE(target);
    REQUIRE(current_kb(m) == target);
    check_accounts(m);
    // Node 0's zonelist (0, 1) is the order: node 1 gives nothing until
    // node 0 is empty.
    if (target >= 65536) CHECK(node_kb(m, 1, "MemTotal") == 65536);
  }
  CHECK(node_kb(m, 0, "MemTotal") == 0);
  CHECK(node_kb(m, 1, "MemTotal") == 16384);
  CHECK(m.read(dev("info/low_kb")) == std::to_string(262144 - 16384) + "\n");
  // Node 0 lost all its memory: it left N_MEMORY (zonelists rebuilt).
  CHECK(m.read("devices/system/node/has_memory") == "1\n");

  // Back up: the ballooned pfns return to the nodes they came from, node 0
  // first (it gave first), before any new page is spread.
  while (target < 131072) {
    target += 2048;
    step_to(m, target);
    CAPTURE(target);
    REQUIRE(current_kb(m) == target);
    check_accounts(m);
  }
  CHECK(node_kb(m, 0, "MemTotal") == 65536);
  CHECK(node_kb(m, 1, "MemTotal") == 65536);
  CHECK(m.read("devices/system/node/has_memory") == "0-1\n");
}

TEST_CASE("NUMA guest: with no free node pages ballooning down waits (EAGAIN) and resumes") {
  TestMachine m(numa_machine());
  // The workload takes all but 100 pages of node 0 and all of node 1.
  REQUIRE(m.write("kernel/debug/vsysfs/numa/alloc", "pages=16284 cpu=0 policy=bind:0\n") > 0);
  REQUIRE(m.write("kernel/debug/vsysfs/numa/alloc", "pages=16384 cpu=1 policy=bind:1\n") > 0);
  const std::uint64_t id = read_u64(m, "kernel/debug/vsysfs/numa/last_alloc_id");
  CHECK(nodes_kb(m, "MemFree") == 400);

  REQUIRE(m.write(dev("target_kb"), "65536\n") > 0);
  m.advance_ms(0);
  auto s = m.events_of("xen_balloon", "step");
  REQUIRE(!s.empty());
  CHECK(s.back().result == "EAGAIN");
  CHECK(s.back().field("requested") == "512");
  CHECK(s.back().field("granted") == "100");
  CHECK(current_kb(m) == 131072 - 400);
  CHECK(node_kb(m, 0, "MemFree") == 0);
  CHECK(m.read(knob("guest/state")) == "EAGAIN\n");
  check_accounts(m);

  // The retries find nothing and change nothing.
  for (int i = 0; i < 10; ++i) {
    m.advance_ms(1000);
    CHECK(current_kb(m) == 131072 - 400);
    check_accounts(m);
  }
  CHECK(m.events_of("xen_balloon", "step").back().field("granted") == "0");

  // The workload frees node 1's pages: the next retry goes on down.
  REQUIRE(m.write("kernel/debug/vsysfs/numa/free", std::to_string(id) + "\n") > 0);
  for (int i = 0; i < 64 && current_kb(m) != 65536; ++i) {
    m.advance_ms(1000);
    check_accounts(m);
  }
  CHECK(current_kb(m) == 65536);
  CHECK(node_kb(m, 0, "MemTotal") == 65536 - 400);
  CHECK(node_kb(m, 1, "MemTotal") == 400);
  CHECK(m.read(knob("guest/state")) == "DONE\n");
}

TEST_CASE("NUMA guest: [xen] memory must be the nodes' total; no used key") {
  CHECK_NOTHROW(TestMachine(numa_machine("memory = \"128M\"\n")));
  CHECK_THROWS_WITH_AS(TestMachine(numa_machine("memory = \"64M\"\n")),
                       doctest::Contains("memory"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine(numa_machine("used = \"16M\"\n")),
                       doctest::Contains("used"), ConfigError);
  // A maximum below the nodes' memory is refused too.
  CHECK_THROWS_AS(TestMachine(std::string(kNuma) + "[xen]\nmax_memory = \"64M\"\n"), ConfigError);
}

TEST_CASE("every machines/*.toml loads, and the built-in default is machines/default.toml") {
  // Run from the source tree (as make runs the tests).
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("machines")) {
    if (entry.path().extension() != ".toml") continue;
    CAPTURE(entry.path().string());
    std::ifstream in(entry.path());
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    if (entry.path().filename() == "default.toml")
      // (the generated raw string starts with the newline after its opening)
      CHECK(s.str() == vsysfs::devices::default_machine_toml().substr(1));
    CHECK_NOTHROW(TestMachine{s.str()});
    ++count;
  }
  CHECK(count >= 7);
  // The default machine's guest is its two 8 GiB nodes, and the host adds up.
  TestMachine m(vsysfs::devices::default_machine_toml());
  CHECK(current_kb(m) == 16777216);
  check_accounts(m);
}

}  // TEST_SUITE
