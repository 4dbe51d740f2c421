// Unit tests for devices/numa/cpu_cache: cpuN/cache/indexM (geometry,
// shared CPU sets against the topology, hotplug) and
// devices/system/cpu/vulnerabilities.

#include "devices/numa/cpu_cache.hpp"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;

namespace {

std::string idx(unsigned cpu, unsigned index, std::string_view f) {
  return fmt::format("devices/system/cpu/cpu{}/cache/index{}/{}", cpu, index, f);
}

// Two packages (nodes) of 2 cores x 2 threads: CPUs 0-1 + 4-5 and 2-3 + 6-7,
// as machines/default.toml.
constexpr const char* kTwoSockets = R"([numa]
threads_per_core = 2
[[numa.node]]
cpus = "0-1,4-5"
memory_mb = 64
[[numa.node]]
cpus = "2-3,6-7"
memory_mb = 64
)";

}  // namespace

TEST_SUITE("numa") {

TEST_CASE("default cache geometry: L1d, L1i, L2 per core, L3 per package") {
  TestMachine m(kTwoSockets);
  CHECK(m.read(idx(0, 0, "level")) == "1\n");
  CHECK(m.read(idx(0, 0, "type")) == "Data\n");
  CHECK(m.read(idx(0, 0, "size")) == "32K\n");
  CHECK(m.read(idx(0, 0, "ways_of_associativity")) == "8\n");
  CHECK(m.read(idx(0, 0, "coherency_line_size")) == "64\n");
  CHECK(m.read(idx(0, 0, "number_of_sets")) == "64\n");  // 32768 / (8 * 64)
  CHECK(m.read(idx(0, 0, "physical_line_partition")) == "1\n");
  CHECK(m.read(idx(0, 1, "type")) == "Instruction\n");
  CHECK(m.read(idx(0, 2, "type")) == "Unified\n");
  CHECK(m.read(idx(0, 2, "level")) == "2\n");
  CHECK(m.read(idx(0, 2, "size")) == "1024K\n");
  CHECK(m.read(idx(0, 2, "number_of_sets")) == "1024\n");
  CHECK(m.read(idx(0, 3, "level")) == "3\n");
  CHECK(m.read(idx(0, 3, "size")) == "2816K\n");  // 2 cores x 1408 KiB
  CHECK(m.read(idx(0, 3, "ways_of_associativity")) == "11\n");
  CHECK(m.read(idx(0, 3, "number_of_sets")) == "4096\n");
  CHECK_FALSE(m.exists(idx(0, 4, "level")));
  // x86 shows no policy files.
  CHECK_FALSE(m.exists(idx(0, 0, "allocation_policy")));
  CHECK_FALSE(m.exists(idx(0, 0, "write_policy")));
  CHECK(m.read(idx(0, 0, "uevent")).empty());
  CHECK(m.read("devices/system/cpu/cpu0/cache/uevent").empty());
}

TEST_CASE("shared_cpu_map/list follow the topology; ids are core and package") {
  TestMachine m(kTwoSockets);
  // cpu0 and cpu4 are the two threads of package 0's core 0.
  CHECK(m.read(idx(0, 0, "shared_cpu_list")) == "0,4\n");
  CHECK(m.read(idx(0, 0, "shared_cpu_map")) == "11\n");
  CHECK(m.read(idx(4, 2, "shared_cpu_list")) == "0,4\n");
  CHECK(m.read(idx(0, 3, "shared_cpu_list")) == "0-1,4-5\n");
  CHECK(m.read(idx(0, 3, "shared_cpu_map")) == "33\n");
  CHECK(m.read(idx(6, 3, "shared_cpu_list")) == "2-3,6-7\n");
  // Every CPU's leaf agrees with its topology files.
  for (unsigned cpu = 0; cpu < 8; ++cpu) {
    CAPTURE(cpu);
    const std::string topo = fmt::format("devices/system/cpu/cpu{}/topology/", cpu);
    CHECK(m.read(idx(cpu, 0, "shared_cpu_list")) == m.read(topo + "thread_siblings_list"));
    CHECK(m.read(idx(cpu, 3, "shared_cpu_list")) == m.read(topo + "core_siblings_list"));
    CHECK(m.read(idx(cpu, 3, "id")) == m.read(topo + "physical_package_id"));
  }
  // L1 ids: package << 1 (2 cores) | core_id.
  CHECK(m.read(idx(0, 0, "id")) == "0\n");
  CHECK(m.read(idx(1, 0, "id")) == "1\n");
  CHECK(m.read(idx(2, 0, "id")) == "2\n");
  CHECK(m.read(idx(7, 1, "id")) == "3\n");
}

TEST_CASE("an offline CPU has no cache/ and leaves the others' shared maps") {
  TestMachine m(kTwoSockets);
  CHECK(m.write("devices/system/cpu/cpu4/online", "0\n") == 2);
  CHECK_FALSE(m.exists("devices/system/cpu/cpu4/cache"));
  CHECK(m.read(idx(0, 0, "shared_cpu_list")) == "0\n");
  CHECK(m.read(idx(0, 3, "shared_cpu_list")) == "0-1,5\n");
  CHECK(m.write("devices/system/cpu/cpu4/online", "1\n") == 2);
  CHECK(m.read(idx(4, 0, "shared_cpu_list")) == "0,4\n");
  CHECK(m.read(idx(0, 3, "shared_cpu_list")) == "0-1,4-5\n");
}

TEST_CASE("[[numa.cache]] overrides the geometry") {
  TestMachine m(R"([numa]
[[numa.node]]
cpus = "0-3"
memory_mb = 64
[[numa.cache]]
level = 1
type = "Data"
size_kb = 48
ways = 12
[[numa.cache]]
level = 2
type = "Unified"
size_kb = 2048
ways = 16
shared = "package"
)");
  CHECK(m.read(idx(1, 0, "size")) == "48K\n");
  CHECK(m.read(idx(1, 0, "number_of_sets")) == "64\n");
  CHECK(m.read(idx(1, 0, "shared_cpu_list")) == "1\n");
  CHECK(m.read(idx(1, 1, "shared_cpu_list")) == "0-3\n");
  CHECK_FALSE(m.exists(idx(1, 2, "size")));
}

TEST_CASE("a cache that is not a whole number of sets is a machine-file error") {
  CHECK_THROWS_WITH_AS(TestMachine(R"([numa]
[[numa.node]]
cpus = "0"
memory_mb = 64
[[numa.cache]]
level = 1
type = "Data"
size_kb = 33
ways = 7
)"),
                       doctest::Contains("whole number of sets"), vsysfs::core::ConfigError);
  CHECK_THROWS_AS(TestMachine("[numa]\n[[numa.node]]\ncpus = \"0\"\n[[numa.cache]]\nlevel = 1\n"
                              "type = \"data\"\nsize_kb = 32\nways = 8\n"),
                  vsysfs::core::ConfigError);
}

TEST_CASE("vulnerabilities: the 6.12 files, defaults and overrides") {
  TestMachine m(
      std::string(kTwoSockets).append("[numa.vulnerabilities]\nmeltdown = \"Not affected\"\n"));
  for (auto name : vsysfs::devices::CpuVulnerabilities::kNames) {
    CAPTURE(name);
    const std::string v = m.read(fmt::format("devices/system/cpu/vulnerabilities/{}", name));
    CHECK(v.size() > 1);
    CHECK(v.back() == '\n');
  }
  CHECK(m.read("devices/system/cpu/vulnerabilities/meltdown") == "Not affected\n");
  CHECK(m.read("devices/system/cpu/vulnerabilities/mds") ==
        "Mitigation: Clear CPU buffers; SMT vulnerable\n");
  CHECK(m.write("devices/system/cpu/vulnerabilities/mds", "x") < 0);
  CHECK_THROWS_WITH_AS(
      TestMachine(std::string(kTwoSockets).append("[numa.vulnerabilities]\nghostwrite = \"x\"\n")),
      doctest::Contains("not a Linux 6.12 vulnerability file"), vsysfs::core::ConfigError);
  TestMachine bare("[machine]\nname = \"x\"\n");
  CHECK(bare.read("devices/system/cpu/vulnerabilities/meltdown") == "Mitigation: PTI\n");
}

}  // TEST_SUITE("numa")
