// fs::Server with a state journal, and fs::replay_all: what a write, a
// chmod and a chown journal, and that a fresh machine replays them to the
// same state (the -o state=FILE round trip without a mount).
#include "fs/state_replay.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::core::StateRecord;
using vsysfs::testing::TestMachine;
namespace core = vsysfs::core;

namespace {
constexpr const char* kMachine = "[testdev]\nvalue = 3\n";
const std::string kDev = "devices/virtual/vsysfs_test/testdev0/";

struct TempState {
  TempState() {
    char tmpl[] = "/tmp/vsysfs-replay-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    path = dir + "/state";
  }
  ~TempState() {
    std::remove(path.c_str());
    rmdir(dir.c_str());
  }
  std::string dir, path;
};

void chmod_(TestMachine& m, const std::string& path, mode_t mode) {
  vsysfs::fs::SetAttrIn in;
  in.set_mode = true;
  in.mode = mode;
  REQUIRE(m.server.setattr(Caller::root(), m.tree.resolve(path), in));
}
}  // namespace

TEST_SUITE("state_journal") {
  TEST_CASE("acknowledged changes are journaled; refused ones are not") {
    TempState tmp;
    core::StateJournal j(tmp.path);
    j.rewrite({});
    TestMachine m(kMachine);
    m.server.set_journal(&j);
    CHECK(m.write(kDev + "value", "5\n") == 2);
    CHECK(m.write(kDev + "value", "junk") == -EINVAL);
    CHECK(m.write(kDev + "blob", "xyz", Caller::root(), 3) == 3);
    chmod_(m, kDev + "value", 0600);
    CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "add t1\n") == 7);
    CHECK(m.write("devices/virtual/vsysfs_test/t1/value", "77\n") == 3);
    const auto d = j.load();
    CHECK(d.problem.empty());
    REQUIRE(d.records.size() == 5);
    CHECK(d.records[0] == StateRecord::store(kDev + "value", "5\n"));
    CHECK(d.records[1].kind == StateRecord::Kind::BinWrite);
    CHECK(d.records[1].offset == 3);
    CHECK(d.records[2].mode == 0600);
  }

  TEST_CASE("replay on a fresh machine reproduces the acknowledged state, in order") {
    TempState tmp;
    core::StateJournal j(tmp.path);
    j.rewrite({});
    {
      TestMachine m(kMachine);
      m.server.set_journal(&j);
      m.write(kDev + "value", "5\n");
      m.write(kDev + "blob", "xyz", Caller::root(), 3);
      chmod_(m, kDev + "value", 0600);
      m.write("kernel/debug/vsysfs/testdev/hotplug", "add t1\n");
      m.write("devices/virtual/vsysfs_test/t1/value", "77\n");
      m.write("kernel/debug/vsysfs/testdev/hotplug", "remove t1\n");
      m.write("kernel/debug/vsysfs/testdev/hotplug", "add t1\n");
      chmod_(m, "devices/virtual/vsysfs_test/t1/value", 0400);
    }
    TestMachine fresh(kMachine);
    const auto summary = vsysfs::fs::replay_all(fresh.env, fresh.tree, j.load().records);
    CHECK(summary.failed == 0);
    CHECK(summary.applied == 8);
    CHECK(fresh.read(kDev + "value") == "5\n");
    CHECK(fresh.tree.find(kDev + "value")->mode.load() == 0600);
    CHECK(fresh.pread(kDev + "blob", 6, 0) == std::string("\0\0\0xyz", 6));
    // t1 was re-added: its value is the default again, its mode the last chmod
    CHECK(fresh.read("devices/virtual/vsysfs_test/t1/value") == "0\n");
    CHECK(fresh.tree.find("devices/virtual/vsysfs_test/t1/value")->mode.load() == 0400);
  }

  TEST_CASE("a record whose file is gone fails alone and is logged") {
    TestMachine fresh(kMachine);
    const std::vector<StateRecord> recs{StateRecord::store("devices/nope/value", "1\n"),
                                        StateRecord::store(kDev + "value", "9\n")};
    const auto summary = vsysfs::fs::replay_all(fresh.env, fresh.tree, recs);
    CHECK(summary.failed == 1);
    CHECK(summary.applied == 1);
    CHECK(fresh.read(kDev + "value") == "9\n");
    CHECK(fresh.events_of("vsysfs", "state_replay").size() == 1);
  }
}
