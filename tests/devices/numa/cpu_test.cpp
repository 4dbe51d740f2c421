// Unit tests for devices/cpu: /sys/devices/system/cpu root files, cpuN/online
// (hotplug), cpuN/topology and the agreement between every CPU view.

#include "devices/numa/cpu.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <map>

#include <fmt/format.h>

#include "core/parse.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

namespace {

std::string cpu_file(unsigned cpu, std::string_view f) {
  return fmt::format("devices/system/cpu/cpu{}/{}", cpu, f);
}
std::string root(std::string_view f) { return fmt::format("devices/system/cpu/{}", f); }

std::vector<unsigned> parse_list(const std::string& s) {
  auto r = vsysfs::core::bitmap_parselist(s, 8192);
  REQUIRE(r);
  return *r;
}

// Every view of the CPUs agrees: cpu/online, possible, present, offline;
// the cpuN directories and their online files; each online CPU in exactly
// one node's cpulist and cpumap; each node's cpuN links.
void check_views_agree(TestMachine& m) {
  const auto online = parse_list(m.read(root("online")));
  const auto possible = parse_list(m.read(root("possible")));
  const auto present = parse_list(m.read(root("present")));
  const auto offline = parse_list(m.read(root("offline")));
  std::vector<unsigned> dirs;
  for (unsigned c : possible) {
    CAPTURE(c);
    if (!m.exists(fmt::format("devices/system/cpu/cpu{}", c))) continue;
    dirs.push_back(c);
    const bool on = std::find(online.begin(), online.end(), c) != online.end();
    if (c != 0) CHECK(m.read(cpu_file(c, "online")) == (on ? "1\n" : "0\n"));
    CHECK(m.exists(cpu_file(c, "topology")) == on);
    const bool listed_offline = std::find(offline.begin(), offline.end(), c) != offline.end();
    CHECK(listed_offline == !on);
  }
  CHECK(dirs == present);
  std::map<unsigned, int> owner;
  const auto nodes = parse_list(m.read("devices/system/node/online"));
  for (unsigned nid : nodes) {
    const auto list = parse_list(m.read(fmt::format("devices/system/node/node{}/cpulist", nid)));
    // cpumap, decoded: the same set.
    std::string map = m.read(fmt::format("devices/system/node/node{}/cpumap", nid));
    std::erase(map, ','), std::erase(map, '\n');
    std::vector<unsigned> from_map;
    for (std::size_t i = 0; i < map.size(); ++i) {
      const unsigned nibble = std::stoul(std::string(1, map[map.size() - 1 - i]), nullptr, 16);
      for (unsigned b = 0; b < 4; ++b)
        if (nibble & (1u << b)) from_map.push_back(static_cast<unsigned>(i * 4 + b));
    }
    CHECK(from_map == list);
    for (unsigned c : list) {
      CHECK_MESSAGE(owner.emplace(c, static_cast<int>(nid)).second, "cpu ", c, " in two nodes");
      CHECK(m.link_target(fmt::format("devices/system/node/node{}/cpu{}", nid, c)) ==
            fmt::format("../../cpu/cpu{}", c));
      CHECK(m.link_target(cpu_file(c, fmt::format("node{}", nid))) == fmt::format("../../node/node{}", nid));
    }
  }
  std::vector<unsigned> in_nodes;
  for (auto& [c, n] : owner) in_nodes.push_back(c);
  CHECK(in_nodes == online);
}

constexpr const char* kHotplug = R"(
[numa]
threads_per_core = 2
possible_cpus = 12
offline_cpus = "5"
[[numa.node]]
cpus = "0-1,4-5"
memory_mb = 16
[[numa.node]]
cpus = "2-3,6-7"
memory_mb = 16
)";

}  // namespace

TEST_SUITE("numa") {

TEST_CASE("cpu root files on the default machine") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  CHECK(m.read(root("online")) == "0-7\n");
  CHECK(m.read(root("possible")) == "0-7\n");
  CHECK(m.read(root("present")) == "0-7\n");
  CHECK(m.read(root("offline")) == "\n");
  CHECK(m.read(root("kernel_max")) == "8191\n");
  for (const char* f : {"online", "possible", "present", "offline", "kernel_max"}) {
    CAPTURE(f);
    CHECK(m.tree.find(root(f))->mode.load() == 0444);
    CHECK(m.open_errno(root(f), O_WRONLY) == -EACCES);
  }
  check_views_agree(m);
}

TEST_CASE("topology: package, core and sibling masks (2 sockets x 2 cores x 2 threads)") {
  // The bare-metal R740: one node per socket.
  TestMachine m(vsysfs::testing::machine_file_text("dell-poweredge-r740.toml"));
  CHECK(m.read(cpu_file(4, "topology/physical_package_id")) == "0\n");
  CHECK(m.read(cpu_file(6, "topology/physical_package_id")) == "1\n");
  CHECK(m.read(cpu_file(4, "topology/core_id")) == "0\n");
  CHECK(m.read(cpu_file(5, "topology/core_id")) == "1\n");
  CHECK(m.read(cpu_file(7, "topology/die_id")) == "0\n");
  CHECK(m.read(cpu_file(4, "topology/thread_siblings")) == "11\n");
  CHECK(m.read(cpu_file(4, "topology/thread_siblings_list")) == "0,4\n");
  CHECK(m.read(cpu_file(4, "topology/core_cpus")) == "11\n");
  CHECK(m.read(cpu_file(4, "topology/core_cpus_list")) == "0,4\n");
  CHECK(m.read(cpu_file(3, "topology/core_siblings")) == "cc\n");
  CHECK(m.read(cpu_file(3, "topology/core_siblings_list")) == "2-3,6-7\n");
  CHECK(m.read(cpu_file(3, "topology/package_cpus_list")) == "2-3,6-7\n");
  CHECK(m.read(cpu_file(3, "topology/die_cpus")) == "cc\n");
  CHECK(m.tree.find(cpu_file(3, "topology/die_cpus_list"))->size() == 28672);
  CHECK(m.tree.find(cpu_file(3, "topology/core_id"))->size() == 4096);
  CHECK(m.open_errno(cpu_file(3, "topology/core_id"), O_WRONLY) == -EACCES);
}

TEST_CASE("topology of the default machine: dom0's 8 vCPUs, 4 cores x 2 threads in one package") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  for (unsigned cpu = 0; cpu < 8; ++cpu) {
    CAPTURE(cpu);
    CHECK(m.read(cpu_file(cpu, "topology/physical_package_id")) == "0\n");
    CHECK(m.read(cpu_file(cpu, "topology/core_id")) == std::to_string(cpu % 4) + "\n");
    CHECK(m.read(cpu_file(cpu, "topology/package_cpus_list")) == "0-7\n");
  }
  CHECK(m.read(cpu_file(4, "topology/thread_siblings_list")) == "0,4\n");
  CHECK(m.read(cpu_file(3, "topology/core_siblings")) == "ff\n");
}

TEST_CASE("cpu0 has no online file (kernel quirk)") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  CHECK(!m.exists(cpu_file(0, "online")));
  CHECK(m.exists(cpu_file(1, "online")));
  CHECK(m.tree.find(cpu_file(1, "online"))->mode.load() == 0644);
}

TEST_CASE("possible but absent CPUs and CPUs offline at boot") {
  TestMachine m(kHotplug);
  CHECK(m.read(root("possible")) == "0-11\n");
  CHECK(m.read(root("present")) == "0-7\n");
  CHECK(m.read(root("online")) == "0-4,6-7\n");
  CHECK(m.read(root("offline")) == "5,8-11\n");
  CHECK(!m.exists("devices/system/cpu/cpu8"));
  CHECK(m.read(cpu_file(5, "online")) == "0\n");
  CHECK(!m.exists(cpu_file(5, "topology")));
  // nr_cpu_ids = 12: three hex digits, offline CPU 5 left out of cpumap.
  CHECK(m.read("devices/system/node/node0/cpumap") == "013\n");
  CHECK(m.read("devices/system/node/node0/cpulist") == "0-1,4\n");
  CHECK(m.link_target("devices/system/node/node0/cpu5") == "../../cpu/cpu5");
  // Sibling masks only hold online CPUs.
  CHECK(m.read(cpu_file(1, "topology/thread_siblings_list")) == "1\n");
  CHECK(m.read(cpu_file(1, "topology/core_siblings_list")) == "0-1,4\n");
  check_views_agree(m);
}

TEST_CASE("cpuN/online: store-then-show, topology and node views follow") {
  TestMachine m(kHotplug);
  CHECK(m.write(cpu_file(3, "online"), "0\n") == 2);
  CHECK(m.read(cpu_file(3, "online")) == "0\n");
  CHECK(m.read(root("online")) == "0-2,4,6-7\n");
  CHECK(m.read(root("offline")) == "3,5,8-11\n");
  CHECK(m.read("devices/system/node/node1/cpulist") == "2,6-7\n");
  CHECK(!m.exists(cpu_file(3, "topology")));
  CHECK(m.read(cpu_file(7, "topology/thread_siblings_list")) == "7\n");
  check_views_agree(m);

  CHECK(m.write(cpu_file(3, "online"), "1") == 1);
  CHECK(m.write(cpu_file(5, "online"), "on\n") == 3);
  CHECK(m.read(root("online")) == "0-7\n");
  CHECK(m.read(cpu_file(5, "topology/core_id")) == "1\n");
  CHECK(m.read("devices/system/node/node0/cpumap") == "033\n");
  check_views_agree(m);
  // Writing the current state again is not an error.
  CHECK(m.write(cpu_file(5, "online"), "y") == 1);
  // A node whose CPUs all go offline leaves N_CPU.
  for (unsigned c : {2u, 3u, 6u, 7u}) REQUIRE(m.write(cpu_file(c, "online"), "0") == 1);
  CHECK(m.read("devices/system/node/has_cpu") == "0\n");
  CHECK(m.read("devices/system/node/node1/cpumap") == "000\n");
  CHECK(m.read("devices/system/node/node1/cpulist") == "\n");
  check_views_agree(m);
  CHECK(m.events_of("numa", "cpu_online").size() == 8);
}

TEST_CASE("cpuN/online bad input (kstrtobool): EINVAL and nothing changes (kernel quirk)") {
  TestMachine m(kHotplug);
  for (const char* bad : {"\n", "junk", "2", "-1", " 1", "\t0", "oo", "o"}) {
    CAPTURE(bad);
    CHECK(m.write(cpu_file(3, "online"), bad) == -EINVAL);
  }
  CHECK(m.read(cpu_file(3, "online")) == "1\n");
  CHECK(m.read(root("online")) == "0-4,6-7\n");
  // Kernel quirk: kstrtobool decides on the first characters only.
  CHECK(m.write(cpu_file(3, "online"), "no way") == 6);
  CHECK(m.read(cpu_file(3, "online")) == "0\n");
  CHECK(m.write(cpu_file(3, "online"), "1junk") == 5);
  CHECK(m.read(cpu_file(3, "online")) == "1\n");
  CHECK(m.write(cpu_file(3, "online"), "0x1") == 3);  // '0' decides: offline
  CHECK(m.read(cpu_file(3, "online")) == "0\n");
}

TEST_CASE(
    "cpuN/uevent: the modelled CPU's MODALIAS, or the recorded one, and an empty line (kernel "
    "quirk)") {
  TestMachine plain("[numa]\n[[numa.node]]\ncpus = \"0-1\"\nmemory_mb = 16\n");
  const std::string modelled = plain.read(cpu_file(1, "uevent"));
  CHECK(modelled.starts_with("MODALIAS=cpu:type:x86,ven0000fam0006mod0055:feature:,0000,0001,"));
  CHECK(modelled.ends_with(",001F\n\n"));  // the value's own newline, then uevent_show's
  const std::string host =
      "cpu:type:x86,ven0000fam0006mod00A7:feature:,0000,0001,0002,0003,00C0,00E2";
  TestMachine rec("[numa]\ncpu_modalias = \"" + host +
                  "\"\n[[numa.node]]\ncpus = \"0-1\"\nmemory_mb = 16\n");
  for (unsigned c : {0u, 1u}) CHECK(rec.read(cpu_file(c, "uevent")) == "MODALIAS=" + host + "\n\n");
  // A synthetic uevent carries MODALIAS once, and no empty variable.
  REQUIRE(rec.write(cpu_file(1, "uevent"), "add") == 3);
  const auto ev = rec.events_of("cpu1", "uevent");
  REQUIRE(!ev.empty());
  const std::string env = ev.back().field("env");
  CHECK(env.find("MODALIAS=" + host + " SEQNUM=") != std::string::npos);
  CHECK(env.find("  ") == std::string::npos);
  for (const char* bad : {"", "x86,ven0000", "cpu:type:x86 feature", "cpu:type:x86,\\u0001"}) {
    CAPTURE(bad);
    CHECK_THROWS(TestMachine(std::string("[numa]\ncpu_modalias = \"") + bad +
                             "\"\n[[numa.node]]\ncpus = \"0\"\nmemory_mb = 16\n"));
  }
  CHECK_THROWS(TestMachine("[numa]\ncpu_modalias = \"cpu:type:" + std::string(4000, 'a') +
                           "\"\n[[numa.node]]\ncpus = \"0\"\nmemory_mb = 16\n"));
}

}  // TEST_SUITE
