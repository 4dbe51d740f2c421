// Unit tests for the default NUMA topology of a machine without [numa]
// (devices/numa/numa_machine.cpp): devices/system/cpu and node0 exist on
// every machine, and their widths are the ones [net] and [xen] declare.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "devices/machine/machine.hpp"
#include "devices/numa/numa_model.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;

namespace {

std::string slurp(const char* path) {
  std::ifstream f(path);
  REQUIRE(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// MemTotal of a node's meminfo, in kB.
std::uint64_t node_memtotal_kb(TestMachine& m, int nid) {
  const std::string mi = m.read(fmt::format("devices/system/node/node{}/meminfo", nid));
  const std::string key = fmt::format("Node {} MemTotal:", nid);
  const auto at = mi.find(key);
  REQUIRE(at != std::string::npos);
  return std::stoull(mi.substr(at + key.size()));
}

}  // namespace

TEST_SUITE("numa") {

TEST_CASE("a machine without [numa] has one node with 4 CPUs and 4 GiB") {
  TestMachine m("[machine]\nname = \"bare\"\n");
  CHECK(m.read("devices/system/node/online") == "0\n");
  CHECK(m.read("devices/system/node/possible") == "0\n");
  CHECK(m.read("devices/system/node/node0/cpulist") == "0-3\n");
  CHECK(m.read("devices/system/cpu/possible") == "0-3\n");
  CHECK(m.read("devices/system/cpu/online") == "0-3\n");
  CHECK(m.read("devices/system/cpu/cpu3/topology/core_id") == "3\n");
  CHECK(m.read("devices/system/cpu/cpu3/topology/thread_siblings_list") == "3\n");
  CHECK(m.link_target("devices/system/cpu/cpu2/node0") == "../../node/node0");
  CHECK(node_memtotal_kb(m, 0) == 4 * 1024 * 1024);
  auto model = vsysfs::devices::numa_model_of(m.machine);
  REQUIRE(model);
  CHECK(model->implicit());
}

TEST_CASE("the default topology takes its widths from [net]") {
  TestMachine m(R"([net]
nr_cpu_ids = 8
nr_node_ids = 2

[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
numa_node = 1
)");
  CHECK(m.read("devices/system/node/online") == "0-1\n");
  CHECK(m.read("devices/system/node/node0/cpulist") == "0-3\n");
  CHECK(m.read("devices/system/node/node1/cpulist") == "4-7\n");
  CHECK(m.read("devices/system/cpu/cpu5/topology/physical_package_id") == "1\n");
  CHECK(node_memtotal_kb(m, 0) + node_memtotal_kb(m, 1) == 4 * 1024 * 1024);
  CHECK(m.read("devices/pci0000:00/0000:00:03.0/numa_node") == "1\n");
}

TEST_CASE("a Xen guest without [numa]: node0 holds its boot memory, the balloon keeps `used`") {
  TestMachine m(R"([xen]
host_memory = "16G"
memory = "3G"
used = "1G"
)");
  CHECK(node_memtotal_kb(m, 0) == 3 * 1024 * 1024);
  CHECK(m.read("devices/system/xen_memory/xen_memory0/info/current_kb") == "3145728\n");
  // Not NUMA-backed: used_kb (hidden with a [numa] section) is there.
  CHECK(m.exists("kernel/debug/vsysfs/xen/guest/used_kb"));
}

TEST_CASE("an explicit [numa] is not the default topology") {
  TestMachine m("[numa]\n[[numa.node]]\ncpus = \"0-1\"\nmemory_mb = 1024\n");
  auto model = vsysfs::devices::numa_model_of(m.machine);
  REQUIRE(model);
  CHECK_FALSE(model->implicit());
  CHECK(m.read("devices/system/cpu/possible") == "0-1\n");
}

TEST_CASE("every shipped machine has devices/system/cpu and node0 (run from the repository root)") {
  for (const char* file : {"machines/default.toml", "machines/net-lab.toml",
                           "machines/xen-host-3dom.toml", "machines/dell-poweredge-300.toml",
                           "machines/dell-poweredge-750.toml", "machines/dell-poweredge-1400.toml",
                           "machines/numa-4node.toml", "machines/numa-8node.toml"}) {
    CAPTURE(file);
    TestMachine m(slurp(file));
    CHECK(m.exists("devices/system/node/node0/cpulist"));
    CHECK(m.exists("devices/system/cpu/cpu0/topology/core_id"));
    CHECK(m.exists("bus/cpu/devices/cpu0"));
  }
}

}  // TEST_SUITE("numa")
