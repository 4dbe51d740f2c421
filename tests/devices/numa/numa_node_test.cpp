// Unit tests for the node sysfs files (devices/numa/numa_node,
// docs/kernel-semantics.md sections 4.1 to 4.7),
// the [numa] machine section and the workload knobs (devices/numa_debug),
// driven through the real fs::Server by TestMachine.

#include "devices/numa/numa_node.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "core/parse.hpp"
#include "devices/numa/numa_debug.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

namespace {

constexpr const char* kNode = "devices/system/node/";
constexpr const char* kKnob = "kernel/debug/vsysfs/numa/";

std::string node_file(int nid, std::string_view f) { return fmt::format("{}node{}/{}", kNode, nid, f); }
std::string knob(std::string_view f) { return std::string(kKnob) + std::string(f); }

// A golden file under tests/golden/numa/ (the unit tests run from the
// repository root, as `make unit` does).
std::string golden(std::string_view name) {
  std::ifstream in("tests/golden/numa/" + std::string(name));
  REQUIRE_MESSAGE(in.good(), "missing golden file tests/golden/numa/", name);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Four nodes on a ring (AMD Opteron 4-socket style SLIT), 2 CPUs and
// 64 MiB (16384 pages) each, node 3 with two 2 MiB hugepages.
constexpr const char* kRing = R"(
[numa]
distance = [[10, 16, 22, 16], [16, 10, 16, 22], [22, 16, 10, 16], [16, 22, 16, 10]]
[[numa.node]]
cpus = "0-1"
memory_mb = 64
[[numa.node]]
cpus = "2-3"
memory_mb = 64
[[numa.node]]
cpus = "4-5"
memory_mb = 64
[[numa.node]]
cpus = "6-7"
memory_mb = 64
hugepages_2m = 2
)";

std::string two_nodes(unsigned ncpus, std::string_view extra = "") {
  return fmt::format(
      "[numa]\n{}\n[[numa.node]]\ncpus = \"0-{}\"\nmemory_mb = 16\n[[numa.node]]\ncpus = \"{}-{}\"\n"
      "memory_mb = 16\n",
      extra, ncpus / 2 - 1, ncpus / 2, ncpus - 1);
}

}  // namespace

TEST_SUITE("numa") {

TEST_CASE("nodeN/uevent is empty and takes kobject_synth_uevent input") {
  TestMachine m(R"(
[numa]
[[numa.node]]
cpus = "0-1"
memory_mb = 16
)");
  const std::string f = node_file(0, "uevent");
  CHECK(m.read(f) == "");
  CHECK(m.write(f, "online\n") == 7);
  CHECK(m.write(f, "add 1234") == -EINVAL);
  const auto ev = m.events_of("node0", "uevent");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].field("env").starts_with("\"ACTION=online DEVPATH=/devices/system/node/node0 SUBSYSTEM=node SYNTH_UUID=0 SEQNUM="));
  CHECK(ev[1].result == "EINVAL");
}

TEST_CASE("node root files list the node states") {
  TestMachine m(R"(
[numa]
[[numa.node]]
cpus = "0-1"
memory_mb = 16
[[numa.node]]
memory_mb = 16
[[numa.node]]
cpus = "2"
)");
  CHECK(m.read(std::string(kNode).append("possible")) == "0-2\n");
  CHECK(m.read(std::string(kNode).append("online")) == "0-2\n");
  CHECK(m.read(std::string(kNode).append("has_memory")) == "0-1\n");
  CHECK(m.read(std::string(kNode).append("has_normal_memory")) == "0-1\n");
  CHECK(m.read(std::string(kNode).append("has_cpu")) == "0,2\n");
  CHECK(m.read(std::string(kNode).append("has_generic_initiator")) == "\n");
  CHECK(m.read(node_file(1, "cpulist")) == "\n");  // a CPU-less node: empty list
  CHECK(m.read(node_file(1, "cpumap")) == "0\n");  // 3 CPUs wide
  CHECK(m.read(node_file(2, "distance")) == "20 20 10\n");
  CHECK(m.read(node_file(2, "meminfo")).starts_with("Node 2 MemTotal:              0 kB\n"));
  for (const char* f : {"possible", "online", "has_memory", "has_cpu"}) {
    CAPTURE(f);
    CHECK(m.open_errno(std::string(kNode) + f, O_WRONLY) == -EACCES);
  }
}

TEST_CASE("cpumap widths follow nr_cpu_ids: 4, 32, 40, 64 and 96 CPUs") {
  struct Case {
    unsigned ncpus;
    const char* map0;
    const char* map1;
  };
  const Case cases[] = {
      {4, "3\n", "c\n"},
      {32, "0000ffff\n", "ffff0000\n"},
      {40, "00,000fffff\n", "ff,fff00000\n"},
      {64, "00000000,ffffffff\n", "ffffffff,00000000\n"},
      {96, "00000000,0000ffff,ffffffff\n", "ffffffff,ffff0000,00000000\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.ncpus);
    TestMachine m(two_nodes(c.ncpus));
    CHECK(m.read(node_file(0, "cpumap")) == c.map0);
    CHECK(m.read(node_file(1, "cpumap")) == c.map1);
    CHECK(m.read(node_file(0, "cpulist")) == fmt::format("0-{}\n", c.ncpus / 2 - 1));
    CHECK(m.read(node_file(1, "cpulist")) == fmt::format("{}-{}\n", c.ncpus / 2, c.ncpus - 1));
  }
  // A single node with 4 CPUs is the reference's "W=4, CPUs 0-3 -> f".
  TestMachine one("[numa]\n[[numa.node]]\ncpus = \"0-3\"\nmemory_mb = 1\n");
  CHECK(one.read(node_file(0, "cpumap")) == "f\n");
  // Possible CPUs beyond the present ones widen the mask (nr_cpu_ids = 40):
  // the reference's "W=40, CPU 0 only -> 00,00000001".
  TestMachine wide("[numa]\npossible_cpus = 40\n[[numa.node]]\ncpus = \"0\"\nmemory_mb = 1\n");
  CHECK(wide.read(node_file(0, "cpumap")) == "00,00000001\n");
}

TEST_CASE("cpumap and cpulist are bin files sized for NR_CPUS, read at any offset") {
  TestMachine m(two_nodes(40));
  auto size = [&](const std::string& p) { return m.tree.find(p)->size(); };
  CHECK(size(node_file(0, "cpumap")) == 4096);    // 8192*9/32-1 = 2303 < PAGE_SIZE
  CHECK(size(node_file(0, "cpulist")) == 28672);  // 8192*7/2
  CHECK(size(node_file(0, "meminfo")) == 4096);
  CHECK(m.pread(node_file(1, "cpumap"), 5, 3) == "fff00");
  CHECK(m.pread(node_file(1, "cpumap"), 100, 12) == "");
  TestMachine big(two_nodes(4, "nr_cpus = 16384"));
  CHECK(big.tree.find(node_file(0, "cpumap"))->size() == 16384 * 9 / 32 - 1);
  CHECK(big.read("devices/system/cpu/kernel_max") == "16383\n");
}

TEST_CASE("meminfo, numastat, vmstat and distance match the golden files") {
  TestMachine m(kRing);
  // A scripted workload: local anon from cpu 0, file pages preferred on
  // node 1 from cpu 0, slab bound to node 2, and 8 pages of page tables
  // interleaved over 0-3 from cpu 6.
  REQUIRE(m.write(knob("alloc"), "cpu=0 pages=1000\n") > 0);
  REQUIRE(m.write(knob("alloc"), "cpu=0 pages=300 policy=preferred:1 kind=file\n") > 0);
  REQUIRE(m.write(knob("alloc"), "cpu=4 pages=50 policy=bind:2 kind=slab\n") > 0);
  REQUIRE(m.write(knob("alloc"), "cpu=6 pages=8 policy=interleave kind=pagetables\n") > 0);
  std::string all;
  for (int nid = 0; nid < 4; ++nid)
    for (const char* f : {"meminfo", "numastat", "distance"})
      all += fmt::format("== node{}/{}\n{}", nid, f, m.read(node_file(nid, f)));
  CHECK(all == golden("ring-after-workload.txt"));
  CHECK(m.read(node_file(3, "vmstat")) == golden("ring-node3-vmstat.txt"));
  CHECK(m.read(knob("zonelists")) == golden("ring-zonelists.txt"));
}

TEST_CASE("meminfo fields line up in the kernel's 16-column label field") {
  TestMachine m(two_nodes(4));
  // 10 GiB of file pages on a big node pushes MemTotal to 8 digits and beyond.
  TestMachine big("[numa]\n[[numa.node]]\ncpus = \"0\"\nmemory_mb = 2000000\n");
  const std::string mi = big.read(node_file(0, "meminfo"));
  CHECK(mi.starts_with("Node 0 MemTotal:       2048000000 kB\n"));
  std::istringstream lines(m.read(node_file(0, "meminfo")));
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    CAPTURE(line);
    if (line.find("HugePages_") != std::string::npos) {
      CHECK(line.size() == std::string("Node 0 HugePages_Total: ").size() + 5);
    } else {
      CHECK(line.size() == std::string("Node 0 ").size() + 16 + 8 + 3);
      CHECK(line.ends_with(" kB"));
    }
  }
  CHECK(n == 36);
}

TEST_CASE("nr_hugepages: store-then-show, the pool comes out of MemFree") {
  TestMachine m(kRing);
  const std::string nr = node_file(0, "hugepages/hugepages-2048kB/nr_hugepages");
  const std::string fr = node_file(0, "hugepages/hugepages-2048kB/free_hugepages");
  const std::string su = node_file(0, "hugepages/hugepages-2048kB/surplus_hugepages");
  CHECK(m.read(nr) == "0\n");
  CHECK(m.write(nr, "4\n") == 2);
  CHECK(m.read(nr) == "4\n");
  CHECK(m.read(fr) == "4\n");
  CHECK(m.read(su) == "0\n");
  CHECK(m.read(node_file(0, "meminfo")).find("Node 0 MemFree:           57344 kB\n") != std::string::npos);
  CHECK(m.read(node_file(0, "meminfo")).find("Node 0 HugePages_Total:     4\n") != std::string::npos);
  // More than the node holds: as many as fit (64 MiB = 32 pages), no error.
  CHECK(m.write(nr, "1000") == 4);
  CHECK(m.read(nr) == "32\n");
  CHECK(m.write(nr, "0") == 1);
  CHECK(m.read(nr) == "0\n");
  CHECK(m.tree.find(nr)->mode.load() == 0644);
  CHECK(m.open_errno(fr, O_WRONLY) == -EACCES);
  // Bad input (kstrtoul base 10): EINVAL/ERANGE, nothing changes.
  REQUIRE(m.write(nr, "3") == 1);
  for (const char* bad : {"\n", "junk", "0x2", "-1", "+", "3 ", " 3", "1.5", "3\n\n"}) {
    CAPTURE(bad);
    CHECK(m.write(nr, bad) == -EINVAL);
  }
  CHECK(m.write(nr, "18446744073709551616") == -ERANGE);
  CHECK(m.read(nr) == "3\n");
  // The parser sees a C string: "2\0 5" is "2" (the whole count is consumed).
  CHECK(m.write(nr, std::string_view("2\0 5", 4)) == 4);
  CHECK(m.read(nr) == "2\n");
  CHECK(m.events_of("numa", "nr_hugepages").size() >= 4);
}

// Two nodes of 2 GiB + 4 MiB; node 1 boots with one 1 GiB page.
constexpr const char* kGiga = R"(
[numa]
[[numa.node]]
cpus = "0-1"
memory_mb = 2052
[[numa.node]]
cpus = "2-3"
memory_mb = 2052
hugepages_1g = 1
)";

// The names and modes in a directory, sorted ("name 644").
std::string listing(TestMachine& m, std::string_view dir) {
  auto l = m.tree.list(m.tree.resolve(dir));
  REQUIRE(l);
  std::vector<std::string> out;
  for (const auto& e : *l)
    out.push_back(
        fmt::format("{} {:o}", e.name, m.tree.find(std::string(dir) + "/" + e.name)->mode.load()));
  std::sort(out.begin(), out.end());
  return fmt::format("{}", fmt::join(out, ","));
}

TEST_CASE("hugepages-1048576kB: the files and modes of a 6.12 x86 kernel, with demote") {
  TestMachine m(kGiga);
  CHECK(listing(m, "kernel/mm/hugepages") == "hugepages-1048576kB 755,hugepages-2048kB 755");
  CHECK(listing(m, "kernel/mm/hugepages/hugepages-1048576kB") ==
        "demote 200,demote_size 644,free_hugepages 444,nr_hugepages 644,"
        "nr_hugepages_mempolicy 644,nr_overcommit_hugepages 644,resv_hugepages 444,"
        "surplus_hugepages 444");
  // The 2 MiB hstate has no smaller one to demote into.
  CHECK(listing(m, "kernel/mm/hugepages/hugepages-2048kB") ==
        "free_hugepages 444,nr_hugepages 644,nr_hugepages_mempolicy 644,"
        "nr_overcommit_hugepages 644,resv_hugepages 444,surplus_hugepages 444");
  CHECK(listing(m, node_file(0, "hugepages")) == "hugepages-1048576kB 755,hugepages-2048kB 755");
  CHECK(listing(m, node_file(0, "hugepages/hugepages-1048576kB")) ==
        "demote 200,demote_size 644,free_hugepages 444,nr_hugepages 644,surplus_hugepages 444");
  CHECK(listing(m, node_file(0, "hugepages/hugepages-2048kB")) ==
        "free_hugepages 444,nr_hugepages 644,surplus_hugepages 444");
  // The boot pool.
  CHECK(m.read(node_file(1, "hugepages/hugepages-1048576kB/nr_hugepages")) == "1\n");
  CHECK(m.read(node_file(1, "hugepages/hugepages-1048576kB/free_hugepages")) == "1\n");
  CHECK(m.read("kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages") == "1\n");
  CHECK(m.read("kernel/mm/hugepages/hugepages-1048576kB/demote_size") == "2048kB\n");
  CHECK(m.read(node_file(0, "hugepages/hugepages-1048576kB/demote_size")) == "2048kB\n");
  CHECK(m.open_errno("kernel/mm/hugepages/hugepages-1048576kB/demote", O_RDONLY) == -EACCES);
}

TEST_CASE("hugepages-1048576kB: a node store takes 1 GiB of MemFree; meminfo counts 2 MiB only") {
  TestMachine m(kGiga);
  const std::string nr = node_file(0, "hugepages/hugepages-1048576kB/nr_hugepages");
  const std::string global = "kernel/mm/hugepages/hugepages-1048576kB/";
  CHECK(m.read(node_file(0, "meminfo")).find("Node 0 MemFree:         2101248 kB\n") !=
        std::string::npos);
  CHECK(m.write(nr, "1\n") == 2);
  CHECK(m.read(nr) == "1\n");
  const std::string mi = m.read(node_file(0, "meminfo"));
  CHECK(mi.find("Node 0 MemFree:         1052672 kB\n") != std::string::npos);
  CHECK(mi.find("Node 0 MemUsed:         1048576 kB\n") != std::string::npos);
  // hugetlb_report_node_meminfo prints the default hstate's counts.
  CHECK(mi.find("Node 0 HugePages_Total:     0\n") != std::string::npos);
  CHECK(m.read(global + "nr_hugepages") == "2\n");
  CHECK(m.read(global + "free_hugepages") == "2\n");
  CHECK(m.read("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages") == "0\n");
  // A third does not fit (4 MiB left after the second): no error.
  CHECK(m.write(nr, "3") == 1);
  CHECK(m.read(nr) == "2\n");
  CHECK(m.read(node_file(0, "meminfo")).find("Node 0 MemFree:            4096 kB\n") !=
        std::string::npos);
  // Bad input: EINVAL, nothing changes.
  for (const char* bad : {"junk", "-1", "0x1", "1 "}) {
    CAPTURE(bad);
    CHECK(m.write(nr, bad) == -EINVAL);
  }
  CHECK(m.read(nr) == "2\n");
  // The global file shrinks the pools round-robin.
  CHECK(m.write(global + "nr_hugepages", "0") == 1);
  CHECK(m.read(global + "nr_hugepages") == "0\n");
  CHECK(m.read(node_file(0, "meminfo")).find("Node 0 MemFree:         2101248 kB\n") !=
        std::string::npos);
  CHECK(m.write(global + "nr_hugepages_mempolicy", "2") == 1);
  CHECK(m.read(node_file(0, "hugepages/hugepages-1048576kB/nr_hugepages")) == "1\n");
  CHECK(m.read(node_file(1, "hugepages/hugepages-1048576kB/nr_hugepages")) == "1\n");
  // QUIRK (6.12 nr_overcommit_hugepages_store): no overcommit for a
  // gigantic hstate, EINVAL before the input is parsed.
  CHECK(m.write(global + "nr_overcommit_hugepages", "1") == -EINVAL);
  CHECK(m.write(global + "nr_overcommit_hugepages", "junk") == -EINVAL);
  CHECK(m.read(global + "nr_overcommit_hugepages") == "0\n");
  CHECK(m.write("kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages", "1") == 1);
  CHECK(m.events_of("numa", "nr_hugepages").size() >= 4);
}

TEST_CASE("hugepages-1048576kB: demote turns free 1 GiB pages into 512 free 2 MiB pages") {
  TestMachine m(kGiga);
  const std::string g1 = "kernel/mm/hugepages/hugepages-1048576kB/";
  const std::string g2 = "kernel/mm/hugepages/hugepages-2048kB/";
  REQUIRE(m.write(node_file(0, "hugepages/hugepages-1048576kB/nr_hugepages"), "1") == 1);
  const std::string free_before = m.read(node_file(0, "meminfo"));
  // A node's demote: only that node's pages.
  CHECK(m.write(node_file(1, "hugepages/hugepages-1048576kB/demote"), "1\n") == 2);
  CHECK(m.read(node_file(1, "hugepages/hugepages-1048576kB/nr_hugepages")) == "0\n");
  CHECK(m.read(node_file(1, "hugepages/hugepages-2048kB/nr_hugepages")) == "512\n");
  CHECK(m.read(node_file(1, "hugepages/hugepages-2048kB/free_hugepages")) == "512\n");
  CHECK(m.read(node_file(0, "hugepages/hugepages-1048576kB/nr_hugepages")) == "1\n");
  CHECK(m.read(node_file(1, "meminfo")).find("Node 1 HugePages_Total:   512\n") !=
        std::string::npos);
  // Nothing left on node 1: no error, nothing changes.
  CHECK(m.write(node_file(1, "hugepages/hugepages-1048576kB/demote"), "3") == 1);
  CHECK(m.read(node_file(1, "hugepages/hugepages-2048kB/nr_hugepages")) == "512\n");
  // The global demote; more than there are is no error.
  CHECK(m.write(g1 + "demote", "5") == 1);
  CHECK(m.read(g1 + "nr_hugepages") == "0\n");
  CHECK(m.read(g2 + "nr_hugepages") == "1024\n");
  CHECK(m.read(g2 + "free_hugepages") == "1024\n");
  CHECK(m.read(node_file(0, "meminfo")) != free_before);  // HugePages_Total moved ...
  CHECK(m.read(node_file(0, "meminfo")).find("Node 0 MemFree:         1052672 kB\n") !=
        std::string::npos);  // ... MemFree did not
  // Bad input: kstrtoul base 10.
  for (const char* bad : {"junk", "-1", "1x", "\n"}) {
    CAPTURE(bad);
    CHECK(m.write(g1 + "demote", bad) == -EINVAL);
  }
  CHECK(m.events_of("numa", "demote").size() >= 3);
  // demote_size: memparse, then the only hstate below 1 GiB (2 MiB).
  for (const char* ok : {"2M", "2048K", "2097152\n", "0x200000"}) {
    CAPTURE(ok);
    CHECK(m.write(g1 + "demote_size", ok) == static_cast<long>(std::strlen(ok)));
  }
  for (const char* bad : {"1G", "4K", "4M", "junk", "0", "\n"}) {
    CAPTURE(bad);
    CHECK(m.write(g1 + "demote_size", bad) == -EINVAL);
    CHECK(m.write(node_file(0, "hugepages/hugepages-1048576kB/demote_size"), bad) == -EINVAL);
  }
  CHECK(m.read(g1 + "demote_size") == "2048kB\n");
}

TEST_CASE("pdpe1gb = false: no 1 GiB hstate, as on a CPU without GBPAGES") {
  TestMachine m("[numa]\npdpe1gb = false\n[[numa.node]]\ncpus = \"0\"\nmemory_mb = 2048\n");
  CHECK(listing(m, "kernel/mm/hugepages") == "hugepages-2048kB 755");
  CHECK(listing(m, node_file(0, "hugepages")) == "hugepages-2048kB 755");
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[numa]\npdpe1gb = false\n[[numa.node]]\ncpus = \"0\"\n"
                                   "memory_mb = 2048\nhugepages_1g = 1\n"),
                       doctest::Contains("pdpe1gb"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[numa]\n[[numa.node]]\ncpus = \"0\"\n"
                                   "memory_mb = 1023\nhugepages_1g = 1\n"),
                       doctest::Contains("1 GiB hugepages do not fit"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[numa]\npdpe1gb = 1\n[[numa.node]]\ncpus = \"0\"\n"), ConfigError);
  // The default: present, also on a machine without [numa].
  TestMachine plain("");
  CHECK(plain.exists("kernel/mm/hugepages/hugepages-1048576kB/demote"));
  CHECK(plain.exists(node_file(0, "hugepages/hugepages-1048576kB/nr_hugepages")));
  // Xen offers PAGE1GB to HVM guests only: a PV guest has no 1 GiB hstate
  // unless its machine file says pdpe1gb = true.
  TestMachine hvm("[xen]\n[xen.hypervisor]\nguest_type = \"HVM\"\n");
  CHECK(hvm.exists("kernel/mm/hugepages/hugepages-1048576kB"));
  TestMachine pv("[xen]\n[xen.hypervisor]\nguest_type = \"PV\"\n");
  CHECK_FALSE(pv.exists("kernel/mm/hugepages/hugepages-1048576kB"));
  // Nor PSE: no hugetlb at all (the next test case).
  CHECK_FALSE(pv.exists("kernel/mm/hugepages/hugepages-2048kB"));
  TestMachine pv_gb(
      "[xen]\n[xen.hypervisor]\nguest_type = \"PV\"\n[numa]\npse = true\npdpe1gb = true\n"
      "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 2048\n");
  CHECK(pv_gb.exists("kernel/mm/hugepages/hugepages-1048576kB"));
  // pdpe1gb without pse: the 1 GiB hstate has no sysfs either.
  TestMachine pv_gb_only(
      "[xen]\n[xen.hypervisor]\nguest_type = \"PV\"\n[numa]\npdpe1gb = true\n"
      "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 2048\n");
  CHECK_FALSE(pv_gb_only.exists("kernel/mm/hugepages"));
}

TEST_CASE("pse: a Xen PV guest (the default machine) has no hugetlb; pse = true brings it back") {
  using vsysfs::core::ConfigError;
  // hugetlb_init returns early without X86_FEATURE_PSE, which Xen does not
  // offer a PV guest: no kernel/mm/hugepages (kernel/mm stays), no node
  // hugepages directory, no HugePages_* lines in the node's meminfo; the
  // THP lines of node_read_meminfo stay.
  TestMachine dflt(vsysfs::devices::default_machine_toml());
  CHECK(dflt.exists("kernel/mm/ksm/run"));
  CHECK_FALSE(dflt.exists("kernel/mm/hugepages"));
  CHECK(listing(dflt, "kernel/mm").find("hugepages") == std::string::npos);
  CHECK_FALSE(dflt.exists(node_file(0, "hugepages")));
  CHECK(listing(dflt, std::string(kNode).append("node0")).find("hugepages") == std::string::npos);
  const std::string mi = dflt.read(node_file(0, "meminfo"));
  CHECK(mi.find("HugePages_") == std::string::npos);
  CHECK(mi.find("Node 0 AnonHugePages:") != std::string::npos);
  CHECK(mi.find("Node 0 ShmemHugePages:") != std::string::npos);
  CHECK(mi.ends_with("Node 0 FilePmdMapped:         0 kB\n"));
  // A store to a hugepage file has no file to go to.
  CHECK(dflt.write(node_file(0, "hugepages/hugepages-2048kB/nr_hugepages"), "1") == -ENOENT);
  CHECK(dflt.write("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "1") == -ENOENT);

  // A machine file asking a PV guest for a boot pool is refused.
  const std::string pv = "[xen]\n[xen.hypervisor]\nguest_type = \"PV\"\n";
  const std::string node = "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 2048\n";
  CHECK_THROWS_WITH_AS(TestMachine(pv + "[numa]\n" + node + "hugepages_2m = 4\n"),
                       doctest::Contains("hugepages_2m needs a CPU with pse (X86_FEATURE_PSE)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine(pv + "[numa]\npdpe1gb = true\n" + node + "hugepages_1g = 1\n"),
                       doctest::Contains("hugepages_1g needs a CPU with pse"), ConfigError);
  // Bare metal with pse = false: the same.
  CHECK_THROWS_WITH_AS(TestMachine("[numa]\npse = false\n" + node + "hugepages_2m = 1\n"),
                       doctest::Contains("Xen PV guest does not have"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[numa]\npse = 1\n" + node), ConfigError);

  // pse = true on the PV guest: the 2 MiB hstate, its pools and lines.
  TestMachine with(pv + "[numa]\npse = true\n" + node + "hugepages_2m = 3\n");
  CHECK(listing(with, "kernel/mm/hugepages") == "hugepages-2048kB 755");
  CHECK(listing(with, node_file(0, "hugepages")) == "hugepages-2048kB 755");
  CHECK(with.read("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages") == "3\n");
  CHECK(with.read(node_file(0, "meminfo"))
            .ends_with("Node 0 HugePages_Total:     3\n"
                       "Node 0 HugePages_Free:      3\n"
                       "Node 0 HugePages_Surp:      0\n"));

  // An HVM guest (Xen offers it PSE) keeps them, and so does bare metal.
  for (const char* file : {"xen-guest-vnuma.toml", "dell-poweredge-r740.toml"}) {
    CAPTURE(file);
    TestMachine m(vsysfs::testing::machine_file_text(file));
    CHECK(m.exists("kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"));
    CHECK(m.exists(node_file(1, "hugepages/hugepages-2048kB/nr_hugepages")));
    CHECK(m.read(node_file(1, "meminfo")).find("Node 1 HugePages_Total:") != std::string::npos);
  }
}

TEST_CASE("symlinks: node to cpu, cpu to node, bus/node") {
  TestMachine m(kRing);
  CHECK(m.link_target(node_file(2, "cpu5")) == "../../cpu/cpu5");
  CHECK(m.link_target("devices/system/cpu/cpu5/node2") == "../../node/node2");
  CHECK(m.link_target("bus/node/devices/node3") == "../../../devices/system/node/node3");
  CHECK(m.link_target("bus/cpu/devices/cpu7") == "../../../devices/system/cpu/cpu7");
  CHECK(!m.exists(node_file(2, "cpu1")));
}

TEST_CASE("knobs: alloc returns an id through last_alloc_id; free returns the pages") {
  TestMachine m(kRing);
  CHECK(m.read(knob("last_alloc_id")) == "0\n");
  CHECK(m.write(knob("alloc"), "cpu=3 pages=1000 policy=interleave") == 34);
  CHECK(m.read(knob("last_alloc_id")) == "1\n");
  CHECK(m.read(knob("allocations")) ==
        "id=1 cpu=3 pages=1000 policy=interleave:0-3 kind=anon node0=250 node1=250 node2=250 node3=250\n");
  CHECK(m.read(node_file(0, "numastat")) ==
        "numa_hit 250\nnuma_miss 0\nnuma_foreign 0\ninterleave_hit 250\nlocal_node 0\nother_node 250\n");
  CHECK(m.read(node_file(1, "numastat")).find("local_node 250\n") != std::string::npos);
  CHECK(m.write(knob("alloc"), "cpu=0 pages=500 policy=bind:1,2 kind=file\n") > 0);
  CHECK(m.read(knob("last_alloc_id")) == "2\n");
  auto ev = m.events_of("numa", "alloc");
  REQUIRE(ev.size() == 2);
  CHECK(ev[1].field("id") == "2");
  CHECK(ev[1].field("node1") == "500");
  CHECK(m.write(knob("free"), "1\n") == 2);
  CHECK(m.read(knob("allocations")).starts_with("id=2 "));
  CHECK(m.read(node_file(0, "meminfo")).starts_with("Node 0 MemTotal:          65536 kB\nNode 0 MemFree:           65536 kB\n"));
  CHECK(m.write(knob("free"), "1\n") == -ENOENT);
  CHECK(m.write(knob("free"), "x\n") == -EINVAL);
  CHECK(m.write(knob("free"), "-1") == -EINVAL);
  CHECK(m.read(knob("last_alloc_id")) == "2\n");  // ids are not reused
}

TEST_CASE("knobs: a local allocation beyond the node falls back in zonelist order") {
  TestMachine m(kRing);
  // Node 1's zonelist is 1 2 0 3: 16384 + 16384 + 100 pages.
  CHECK(m.read(knob("zonelists")).find("Fallback order for Node 1: 1 2 0 3 \n") != std::string::npos);
  REQUIRE(m.write(knob("alloc"), "cpu=2 pages=32868\n") > 0);
  CHECK(m.read(knob("allocations")).ends_with("node0=100 node1=16384 node2=16384 node3=0\n"));
  CHECK(m.read(node_file(1, "numastat")) ==
        "numa_hit 16384\nnuma_miss 0\nnuma_foreign 16484\ninterleave_hit 0\nlocal_node 16384\nother_node 0\n");
  CHECK(m.read(node_file(2, "numastat")).starts_with("numa_hit 0\nnuma_miss 16384\n"));
  CHECK(m.read(node_file(0, "numastat")).starts_with("numa_hit 0\nnuma_miss 100\n"));
}

TEST_CASE("knobs: bad alloc lines are EINVAL, ENOMEM changes nothing, root only") {
  TestMachine m(kRing);
  const char* bad[] = {
      "\n", "junk", "pages=", "pages=0", "pages=-1", "pages=1x", "pages=18446744073709551616",
      "cpu=0", "cpu=8 pages=1", "cpu=x pages=1", "pages=1 pages=2", "pages=1 colour=red",
      "pages=1 policy=", "pages=1 policy=random", "pages=1 policy=bind", "pages=1 policy=bind:",
      "pages=1 policy=bind:4", "pages=1 policy=bind:9", "pages=1 policy=preferred:0-1",
      "pages=1 policy=default:1", "pages=1 kind=gold", "=1 pages=1", "pages=1 policy=interleave:3-1",
  };
  for (const char* line : bad) {
    CAPTURE(line);
    CHECK(m.write(knob("alloc"), line) == -EINVAL);
  }
  CHECK(m.write(knob("alloc"), std::string_view("pages=1\0cpu=1", 13)) == -EINVAL);
  CHECK(m.write(knob("alloc"), "pages=70000") == -ENOMEM);  // 4 x 16384 minus 2 hugepages
  CHECK(m.write(knob("alloc"), "pages=16385 policy=bind:0") == -ENOMEM);
  CHECK(m.write(knob("alloc"), "pages=1", Caller::user(1000)) == -EPERM);
  CHECK(m.write(knob("free"), "1", Caller::user(1000)) == -EPERM);
  CHECK(m.read(knob("last_alloc_id")) == "0\n");
  CHECK(m.read(knob("allocations")) == "");
  for (int nid = 0; nid < 4; ++nid)
    CHECK(m.read(node_file(nid, "numastat")) ==
          "numa_hit 0\nnuma_miss 0\nnuma_foreign 0\ninterleave_hit 0\nlocal_node 0\nother_node 0\n");
  // Tabs and repeated spaces separate tokens; "local" is the default policy.
  CHECK(m.write(knob("alloc"), "  pages=0x10\tcpu=7   policy=local  \n") > 0);
  CHECK(m.read(node_file(3, "numastat")).starts_with("numa_hit 16\n"));
  for (const char* f : {"alloc", "free"}) CHECK(m.tree.find(knob(f))->mode.load() == 0200);
  for (const char* f : {"last_alloc_id", "allocations", "zonelists"})
    CHECK(m.tree.find(knob(f))->mode.load() == 0400);
}

TEST_CASE("[numa] section errors name the key") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[numa]\n"), doctest::Contains("numa.node"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[numa]\n[[numa.node]]\ncpus = \"0-\"\n"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[numa]\n[[numa.node]]\ncpus = \"0\"\nmemroy_mb = 1\n"),
                       doctest::Contains("memroy_mb"), ConfigError);
  CHECK_THROWS_WITH_AS(
      TestMachine("[numa]\ndistance = [[10, 20], [20, 10]]\n[[numa.node]]\ncpus = \"0\"\n"),
      doctest::Contains("distance has 2 rows for 1 nodes"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[numa]\ndistance = [[10, 300]]\n[[numa.node]]\ncpus = \"0\"\n"),
                  ConfigError);
  CHECK_THROWS_WITH_AS(
      TestMachine("[numa]\nzonelist_penalty = \"bogus\"\n[[numa.node]]\ncpus = \"0\"\n"),
      doctest::Contains("zonelist_penalty: one of add1"), ConfigError);
  TestMachine assign(
      "[numa]\nzonelist_penalty = \"assign\"\n"
      "distance = [[10, 12, 32, 32], [12, 10, 32, 32], [32, 32, 10, 12], [32, 32, 12, 10]]\n"
      "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 1\n[[numa.node]]\ncpus = \"1\"\nmemory_mb = 1\n"
      "[[numa.node]]\ncpus = \"2\"\nmemory_mb = 1\n[[numa.node]]\ncpus = \"3\"\nmemory_mb = 1\n");
  // The 2.6.23-5.15 rule, chosen in the machine file, gives the old "3 2 0 1".
  CHECK(assign.read(knob("zonelists")).ends_with("Fallback order for Node 3: 3 2 0 1 \n"));
}

TEST_CASE("the default machine is dom0 of a Xen host: one node (numa_off), 8 CPUs, 16 GiB") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  CHECK(m.read(std::string(kNode).append("online")) == "0\n");
  CHECK(m.read(std::string(kNode).append("possible")) == "0\n");
  CHECK(m.read(node_file(0, "cpulist")) == "0-7\n");
  CHECK(m.read(node_file(0, "distance")) == "10\n");
  CHECK(m.read(node_file(0, "meminfo")).starts_with("Node 0 MemTotal:       16777216 kB\n"));
  CHECK(!m.exists(node_file(1, "meminfo")));
  CHECK(m.read("devices/system/cpu/online") == "0-7\n");
}

TEST_CASE("the bare-metal R740 and the vNUMA Xen guest: 2 nodes, 8 CPUs, 8 GiB each") {
  for (const char* file : {"dell-poweredge-r740.toml", "xen-guest-vnuma.toml"}) {
    CAPTURE(file);
    TestMachine m(vsysfs::testing::machine_file_text(file));
    CHECK(m.read(std::string(kNode).append("online")) == "0-1\n");
    CHECK(m.read(node_file(0, "cpulist")) == "0-1,4-5\n");
    CHECK(m.read(node_file(1, "cpumap")) == "cc\n");
    CHECK(m.read(node_file(0, "distance")) == "10 21\n");
    CHECK(m.read(node_file(1, "meminfo")).starts_with("Node 1 MemTotal:        8388608 kB\n"));
    CHECK(m.read("devices/system/cpu/online") == "0-7\n");
    CHECK(vsysfs::devices::numa_model_of(m.machine) != nullptr);
  }
}

TEST_CASE("example machines: 4 and 8 nodes with their SLITs") {
  auto text = [](const char* path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing ", path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  };
  TestMachine four(text("machines/numa-4node.toml"));
  CHECK(four.read(node_file(0, "cpumap")) == "00000000,00000000,00ffffff\n");
  CHECK(four.read(node_file(3, "cpumap")) == "ffffff00,00000000,00000000\n");
  CHECK(four.read(node_file(2, "distance")) == "26 26 10 26\n");
  CHECK(four.read(knob("zonelists")) ==
        "Fallback order for Node 0: 0 1 2 3 \nFallback order for Node 1: 1 2 3 0 \n"
        "Fallback order for Node 2: 2 3 0 1 \nFallback order for Node 3: 3 0 1 2 \n");
  TestMachine eight(text("machines/numa-8node.toml"));
  CHECK(eight.read(node_file(7, "distance")) == "65 65 79 79 65 79 79 10\n");
  CHECK(eight.read(node_file(0, "meminfo")).starts_with("Node 0 MemTotal:       32463872 kB\n"));
  CHECK(eight.read("devices/system/cpu/present") == "0-63\n");
  // Node 7 is 65 from 0, 1 and 4 and 79 from the rest; which 65-node
  // comes first is decided by the node_load the lists of nodes 0-6 left.
  CHECK(eight.read(knob("zonelists")).ends_with("Fallback order for Node 7: 7 4 0 1 2 3 5 6 \n"));
}

TEST_CASE("a read's reply survives a close racing it (the hwloc crash)") {
  // hwloc opens, reads and closes hundreds of node and cpu files; the
  // kernel can deliver a read's data and send RELEASE before the worker
  // that replied is done. The reply owns its bytes, so the release may
  // free the open file at once.
  TestMachine m(kRing);
  const auto ino = m.tree.resolve(node_file(0, "distance"));
  auto fh = m.server.open(ino, O_RDONLY);
  REQUIRE(fh);
  auto r = m.server.read(Caller::root(), fh->fh, 4096, 0);
  REQUIRE(r);
  std::thread closer([&] { m.server.release(fh->fh); });
  closer.join();
  CHECK(std::string(r->bytes()) == "10 16 22 16\n");
}

}  // TEST_SUITE
