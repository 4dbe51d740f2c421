// Unit tests of the page_alloc failure point on numa/alloc
// (devices/numa/numa_fault.cpp, mm/fail_page_alloc.c).
#include "devices/numa/numa_fault.hpp"

#include <cerrno>

#include <doctest/doctest.h>

#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;

namespace {

constexpr const char* kTwoNodes = R"([numa]
[[numa.node]]
cpus = "0-1"
memory_mb = 64
[[numa.node]]
cpus = "2-3"
memory_mb = 64
)";
constexpr const char* kAlloc = "kernel/debug/vsysfs/numa/alloc";
std::string f(std::string_view file) {
  return "kernel/debug/vsysfs/fail/page_alloc/" + std::string(file);
}

}  // namespace

TEST_SUITE("numa") {

TEST_CASE("page_alloc: order and gfp of a numa/alloc request") {
  using vsysfs::devices::numa_alloc_order;
  CHECK(numa_alloc_order(1) == 0);
  CHECK(numa_alloc_order(2) == 1);
  CHECK(numa_alloc_order(3) == 2);
  CHECK(numa_alloc_order(1024) == 10);
  CHECK(numa_alloc_order(1025) == 11);
  CHECK(vsysfs::devices::numa_alloc_gfp(vsysfs::devices::PageKind::Anon).highmem);
  CHECK_FALSE(vsysfs::devices::numa_alloc_gfp(vsysfs::devices::PageKind::PageTables).highmem);
}

TEST_CASE("page_alloc: with the kernel's defaults user and kernel allocations are exempt") {
  TestMachine m(kTwoNodes);
  REQUIRE(m.write(f("probability"), "100") == 3);
  CHECK(m.write(kAlloc, "pages=100\n") == 10);  // ignore-gfp-wait (and -highmem)
  CHECK(m.write(kAlloc, "pages=100 kind=slab\n") == 20);
  CHECK(m.read(f("injected")) == "0\n");
}

TEST_CASE("page_alloc: ENOMEM once the filters let it through, and nothing is allocated") {
  TestMachine m(kTwoNodes);
  REQUIRE(m.write(f("probability"), "100") == 3);
  REQUIRE(m.write(f("ignore-gfp-wait"), "N") == 1);
  REQUIRE(m.write(f("times"), "-1") == 2);
  const std::string before = m.read("devices/system/node/node0/meminfo");
  CHECK(m.write(kAlloc, "pages=100 kind=slab\n") == -ENOMEM);
  CHECK(m.write(kAlloc, "pages=1 kind=slab\n") == 18);  // order 0 < min-order 1
  CHECK(m.write(kAlloc, "pages=100\n") == 10);          // highmem still ignored
  REQUIRE(m.write(f("ignore-gfp-highmem"), "N") == 1);
  CHECK(m.write(kAlloc, "pages=100\n") == -ENOMEM);
  CHECK(m.read(f("injected")) == "2\n");
  CHECK(m.read("kernel/debug/vsysfs/numa/last_alloc_id") == "2\n");
  auto ev = m.events_of("numa", "alloc");
  CHECK(ev.back().result == "ENOMEM");
  CHECK(ev.back().field("fault") == "true");
}

TEST_CASE("page_alloc: space is charged in pages before anything fails") {
  TestMachine m(kTwoNodes);
  REQUIRE(m.write(f("probability"), "100") == 3);
  REQUIRE(m.write(f("ignore-gfp-wait"), "N") == 1);
  REQUIRE(m.write(f("ignore-gfp-highmem"), "N") == 1);
  REQUIRE(m.write(f("space"), "150") == 3);
  CHECK(m.write(kAlloc, "pages=100\n") == 10);
  CHECK(m.read(f("space")) == "50\n");
  CHECK(m.write(kAlloc, "pages=100\n") == -ENOMEM);
}

}  // TEST_SUITE("numa")
