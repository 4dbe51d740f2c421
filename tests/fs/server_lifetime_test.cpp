// Regression (found by make test-load): a read's reply must not refer to
// the OpenFile, which release() frees as soon as the kernel closes the
// file, possibly on another worker while the reply is still in flight.
#include <doctest/doctest.h>
#include <fcntl.h>

#include "fs/server.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

TEST_SUITE("server") {
  TEST_CASE("a text read's result outlives the release of its open file") {
    TestMachine m("[testdev]\nvalue = 3\n");
    const auto ino = m.tree.resolve("devices/virtual/vsysfs_test/testdev0/value");
    auto fh = m.server.open(ino, O_RDONLY);
    REQUIRE(fh);
    auto r = m.server.read(Caller::root(), fh->fh, 4096, 0);
    REQUIRE(r);
    m.server.release(fh->fh);  // what a concurrent close does; the reply owns its bytes
    CHECK(std::string(r->bytes()) == "3\n");
  }

  TEST_CASE("a read at an offset slices a copy of the snapshot") {
    TestMachine m("[testdev]\nvalue = 1234\n");
    const auto ino = m.tree.resolve("devices/virtual/vsysfs_test/testdev0/value");
    auto fh = m.server.open(ino, O_RDONLY);
    REQUIRE(fh);
    {
      auto r0 = m.server.read(Caller::root(), fh->fh, 2, 0);
      REQUIRE(r0);
      CHECK(std::string(r0->bytes()) == "12");
    }
    auto r1 = m.server.read(Caller::root(), fh->fh, 4096, 2);
    REQUIRE(r1);
    m.server.release(fh->fh);
    CHECK(std::string(r1->bytes()) == "34\n");
  }
}
