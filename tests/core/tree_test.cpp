#include "core/tree.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/test_env.hpp"

TEST_SUITE("control_plane") {

TEST_CASE("advance_ms fires timers exactly at their deadline, in order") {
  vsysfs::testing::TestMachine m("");
  std::vector<int> fired;
  vsysfs::core::Timer a(m.clock, [&] { fired.push_back(1); });
  vsysfs::core::Timer b(m.clock, [&] { fired.push_back(2); });
  a.schedule_in(std::chrono::milliseconds(1000));
  b.schedule_in(std::chrono::milliseconds(500));
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "499\n") == 4);
  CHECK(fired.empty());
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "1\n") == 2);
  CHECK(fired == std::vector<int>{2});
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "500") == 3);
  CHECK(fired == std::vector<int>{2, 1});
  CHECK(m.read("kernel/debug/vsysfs/clock/now_ns") == "1000000000\n");
}

TEST_CASE("an interrupted advance_ms is EINTR after a whole ms, logged with how far it got") {
  vsysfs::testing::TestMachine m("");
  std::size_t fired = 0;
  std::function<void()> tick = [&] {
    ++fired;
    m.clock.add_timer(m.clock.now() + std::chrono::microseconds(100), tick);
  };
  m.clock.add_timer(std::chrono::microseconds(100), tick);
  int asked = 0;
  auto caller = vsysfs::core::Caller::root();
  caller.set_interrupt_check([](void* n) { return ++*static_cast<int*>(n) >= 3; }, &asked);
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "100000", caller) == -EINTR);
  // Third question at 192 timers (19.2 ms): stops at 20 ms.
  CHECK(m.read("kernel/debug/vsysfs/clock/now_ns") == "20000000\n");
  CHECK(fired == 200);
  REQUIRE(caller.applied());
  CHECK(*caller.applied() == "20");
  auto ev = m.events_of("clock", "advance");
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].result == "OK");
  CHECK(ev[1].result == "EINTR");
  CHECK(ev[1].field("ms") == "100000");
  CHECK(ev[1].field("applied_ms") == "20");
  // Not interrupted: the whole step, as before.
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "5") == 1);
  CHECK(m.read("kernel/debug/vsysfs/clock/now_ns") == "25000000\n");
}

TEST_CASE("advance_ms bad input is EINVAL/ERANGE and moves nothing") {
  vsysfs::testing::TestMachine m("");
  for (const char* bad : {"", "\n", "junk", "-1", "1.5", " 5", "0x"}) {
    CAPTURE(bad);
    const long r = m.write("kernel/debug/vsysfs/clock/advance_ms", bad);
    if (*bad == '\0') {
      CHECK(r == 0);  // a zero-length write never reaches store()
    } else {
      CHECK(r == -EINVAL);
    }
  }
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "18446744073709551616") == -ERANGE);
  CHECK(m.read("kernel/debug/vsysfs/clock/now_ns") == "0\n");
}

TEST_CASE("machine/shutdown runs once and records the power state") {
  vsysfs::testing::TestMachine m("");
  CHECK(m.read("kernel/debug/vsysfs/machine/power_state") == "on\n");
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "sleep\n") == -EINVAL);
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "halt\n") == 5);
  CHECK(m.read("kernel/debug/vsysfs/machine/power_state") == "halted\n");
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "reboot\n") == -EBUSY);
  CHECK(m.events_of("machine", "shutdown").size() == 1);
}

TEST_CASE("unknown sections and keys name the line") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(vsysfs::testing::TestMachine("[machine]\nname='x'\n[bogus]\na=1\n"),
                       doctest::Contains("<test>:3"), ConfigError);
  CHECK_THROWS_WITH_AS(vsysfs::testing::TestMachine("[machine]\nnmae='x'\n"),
                       doctest::Contains("machine.nmae"), ConfigError);
  CHECK_THROWS_AS(vsysfs::testing::TestMachine("[machine\n"), ConfigError);
}

}  // TEST_SUITE

namespace {

using vsysfs::core::Ino;
using vsysfs::core::Name;
using vsysfs::core::Node;
using vsysfs::core::NodeKind;
using vsysfs::core::Tree;
using vsysfs::core::TreeError;

// A device with a text attribute in its directory and one in a group.
struct TreeTestDev {
  vsysfs::core::Status value_show(vsysfs::core::PageBuffer& buf) const {
    buf.emit("{}\n", value);
    return {};
  }
  vsysfs::core::Status count_show(vsysfs::core::PageBuffer& buf) const {
    buf.emit("{}\n", value * 2);
    return {};
  }
  int value = 7;
};

constexpr vsysfs::core::DeviceAttribute<TreeTestDev> kTreeTestAttrs[] = {
    VSYSFS_ATTR_RO(TreeTestDev, value)};
constexpr vsysfs::core::DeviceAttribute<TreeTestDev> kTreeTestStats[] = {
    VSYSFS_ATTR_RO(TreeTestDev, count)};
constexpr vsysfs::core::AttributeGroup<TreeTestDev> kTreeTestGroups[] = {
    {.name = "", .attrs = kTreeTestAttrs}, {.name = "stats", .attrs = kTreeTestStats}};

}  // namespace

TEST_SUITE("tree") {

TEST_CASE("only directories carry an entry map and only symlinks a target") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  tree.add_symlink("class/t/t0", "../../devices/virtual/t/t0");

  auto dir = tree.find("devices/virtual/t/t0");
  auto file = tree.find("devices/virtual/t/t0/value");
  auto link = tree.find("class/t/t0");
  REQUIRE(dir);
  REQUIRE(file);
  REQUIRE(link);
  CHECK(dir->kind == NodeKind::Dir);
  CHECK(dir->children() != nullptr);
  CHECK(file->kind == NodeKind::Text);
  CHECK(file->children() == nullptr);
  CHECK(file->target().empty());
  CHECK(link->kind == NodeKind::Symlink);
  CHECK(link->children() == nullptr);
  CHECK(link->target() == "../../devices/virtual/t/t0");

  // Lookups and listings below a file find nothing (no map to search).
  CHECK(tree.lookup(file->ino, "x") == nullptr);
  CHECK(tree.lookup(link->ino, "x") == nullptr);
  CHECK(tree.resolve("devices/virtual/t/t0/value/x") == 0);
  CHECK(tree.list(file->ino).error().value() == ENOTDIR);
  auto entries = tree.list(dir->ino);
  REQUIRE(entries);
  REQUIRE(entries->size() == 2);
  CHECK((*entries)[0].name == "stats");
  CHECK((*entries)[1].name == "value");
  CHECK(tree.path_of(tree.resolve("devices/virtual/t/t0/stats/count")) == "devices/virtual/t/t0/stats/count");

  vsysfs::core::PageBuffer buf;
  REQUIRE(tree.find("devices/virtual/t/t0/stats/count")->show(buf));
  CHECK(buf.view() == "14\n");
}

TEST_CASE("a directory, symlink or group below a file is a TreeError and adds nothing") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  tree.add_symlink("class/t/t0", "../../devices/virtual/t/t0");
  const std::size_t before = tree.node_count();
  CHECK_THROWS_AS(tree.mkdir_p("devices/virtual/t/t0/value/sub"), TreeError);
  CHECK_THROWS_AS(tree.add_symlink("devices/virtual/t/t0/value/l", "x"), TreeError);
  CHECK_THROWS_AS(tree.mkdir_p("class/t/t0/sub"), TreeError);  // a symlink is not followed
  CHECK_THROWS_AS(tree.add_device<TreeTestDev>("devices/virtual/t/t0/value", dev, kTreeTestGroups),
                  TreeError);
  CHECK(tree.node_count() == before);
}

TEST_CASE("remove kills a subtree; nodes the kernel holds stay until forgotten") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  const Ino held = tree.resolve("devices/virtual/t/t0/stats/count");
  tree.looked_up(*tree.get(held));
  const std::size_t before = tree.node_count();
  REQUIRE(tree.remove("devices/virtual/t/t0"));
  CHECK(tree.resolve("devices/virtual/t/t0") == 0);
  // t0, stats and value went at once; count stays, dead, until forgotten.
  CHECK(tree.node_count() == before - 3);
  REQUIRE(tree.get(held));
  CHECK_FALSE(tree.get(held)->alive.load());
  tree.forget(held, 1);
  CHECK(tree.get(held) == nullptr);
  CHECK(tree.node_count() == before - 4);
  // The name can be used again, for a new node: a new (ino, generation).
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  auto again = tree.find("devices/virtual/t/t0/stats/count");
  REQUIRE(again);
  CHECK(again->alive.load());
  if (again->ino == held) CHECK(again->generation > 0);
}

TEST_CASE("hotplug reuses inode slots: the table stays flat over 10,000 add/remove cycles") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  REQUIRE(tree.remove("devices/virtual/t/t0"));
  const std::size_t slots = tree.slot_count();
  const std::size_t nodes = tree.node_count();
  for (int i = 0; i < 10000; ++i) {
    tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
    // Half the cycles the kernel looked a file up and forgets it only after
    // the removal (the slot is freed by forget, not by remove).
    const Ino held = tree.resolve("devices/virtual/t/t0/value");
    if (i % 2) REQUIRE(tree.looked_up(*tree.get(held)));
    REQUIRE(tree.remove("devices/virtual/t/t0"));
    if (i % 2) tree.forget(held, 1);
  }
  CHECK(tree.slot_count() == slots);
  CHECK(tree.node_count() == nodes);
}

TEST_CASE("a name is stored once however many entries carry it, and freed with the last") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  const std::size_t base = Name::interned();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  const std::size_t one = Name::interned();
  CHECK(one > base);
  // 99 more devices: only their directory names are new, the attribute
  // and group names are the first device's.
  for (int i = 1; i < 100; ++i)
    tree.add_device<TreeTestDev>("devices/virtual/t/t" + std::to_string(i), dev, kTreeTestGroups);
  CHECK(Name::interned() == one + 99);
  // Their class links: "class" is new, "t" and "t0".."t99" are not.
  for (int i = 0; i < 100; ++i)
    tree.add_symlink("class/t/t" + std::to_string(i),
                     "../../devices/virtual/t/t" + std::to_string(i));
  CHECK(Name::interned() == one + 100);
  // A node held past its removal (an open file) keeps its name.
  auto held = tree.find("devices/virtual/t/t7");
  REQUIRE(held);
  REQUIRE(tree.remove("class"));
  REQUIRE(tree.remove("devices"));
  CHECK(held->name == "t7");
  CHECK(std::string(held->name.data()) == "t7");
  CHECK(Name::interned() == base + 1);
  held.reset();
  CHECK(Name::interned() == base);
}

TEST_CASE("a reused inode number comes with a higher generation; a held slot is not reused") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  auto first = tree.find("devices/virtual/t/t0/value");
  REQUIRE(first);
  const Ino ino = first->ino;
  const std::uint64_t gen = first->generation;
  REQUIRE(tree.looked_up(*first));  // the kernel holds it
  REQUIRE(tree.remove("devices/virtual/t/t0"));
  // Dead but held: the slot still answers with the old, dead node.
  tree.add_device<TreeTestDev>("devices/virtual/t/t1", dev, kTreeTestGroups);
  for (const char* f : {"devices/virtual/t/t1", "devices/virtual/t/t1/value",
                        "devices/virtual/t/t1/stats/count"})
    CHECK(tree.resolve(f) != ino);
  REQUIRE(tree.get(ino) == first);
  CHECK_FALSE(first->alive.load());
  // A lookup that raced the removal is refused: nothing to hand out.
  CHECK_FALSE(tree.looked_up(*first));
  tree.forget(ino, 1);
  CHECK(tree.get(ino) == nullptr);
  // Now free: the next node takes the slot, one generation up.
  tree.add_device<TreeTestDev>("devices/virtual/t/t2", dev, kTreeTestGroups);
  auto reused = tree.get(ino);
  REQUIRE(reused);
  CHECK(reused->alive.load());
  CHECK(reused->generation == gen + 1);
  CHECK(tree.path_of(ino).rfind("devices/virtual/t/t2", 0) == 0);
  // The old node (an open file still has it) stays dead: I/O gives ENODEV.
  CHECK_FALSE(first->alive.load());
}

TEST_CASE("a removed directory finds nothing, even once its entries' slots serve other nodes") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  auto dir = tree.find("devices/virtual/t/t0");
  REQUIRE(tree.looked_up(*dir));  // the kernel holds the directory
  REQUIRE(tree.remove("devices/virtual/t/t0"));
  tree.add_device<TreeTestDev>("devices/virtual/t/t1", dev, kTreeTestGroups);
  CHECK(tree.lookup(dir->ino, "value") == nullptr);
  CHECK(tree.lookup(dir->ino, "..") == nullptr);
  auto entries = tree.list(dir->ino);
  REQUIRE(entries);
  CHECK(entries->empty());
}

TEST_CASE("a node stays small: a million of them fit the 256-byte-per-file budget") {
  // Node is allocated with make_shared (16-byte control block) and glibc
  // adds 8 bytes and rounds to 16: up to 104 bytes make a 128-byte chunk.
  // The parent's entry (4 bytes), the inode table slot (16-32), the
  // interned names (shared) and the device's own state come on top
  // (docs/performance.md "RSS per file"). Growing Node past this needs a
  // look at the RSS rows of docs/performance.md (make bench).
  CHECK(sizeof(Node) <= 104);
  CHECK(sizeof(Name) == sizeof(void*));
}

}  // TEST_SUITE

TEST_SUITE("tree") {

TEST_CASE("the mode and owner log: chmod, chown and new nodes after a mark, each once") {
  using vsysfs::core::Ino;
  vsysfs::core::Tree tree;
  const Ino a = tree.mkdir_p("devices/a");
  const Ino b = tree.mkdir_p("devices/b");
  REQUIRE(tree.set_mode(a, 0700));  // before the first mark: not logged
  const auto m0 = tree.attr_mark();
  CHECK(tree.attr_changes_since(m0) == std::vector<Ino>{});
  REQUIRE(tree.set_mode(b, 0700));
  REQUIRE(tree.set_owner(a, 1, 2));
  REQUIRE(tree.set_owner(a, 3, 4));
  const auto m1 = tree.attr_mark();
  const Ino c = tree.mkdir_p("devices/c");
  auto since0 = tree.attr_changes_since(m0);
  REQUIRE(since0);
  std::vector<Ino> want{a, b, c};
  std::sort(want.begin(), want.end());
  CHECK(*since0 == want);
  CHECK(tree.attr_changes_since(m1) == std::vector<Ino>{c});
  CHECK(tree.attr_changes_since(tree.attr_mark()) == std::vector<Ino>{});
  // A mark the log does not reach: from another log, or overflowed.
  CHECK_FALSE(tree.attr_changes_since(tree.attr_mark() + 1));
  for (std::size_t i = 0; i < vsysfs::core::Tree::kMaxAttrLog; ++i) REQUIRE(tree.set_mode(a, 0700));
  CHECK_FALSE(tree.attr_changes_since(m0));
  const auto m2 = tree.attr_mark();
  REQUIRE(tree.set_mode(b, 0755));
  CHECK(tree.attr_changes_since(m2) == std::vector<Ino>{b});
}

TEST_CASE("a duplicate name is a TreeError naming the path, and the first entry stays") {
  Tree tree;
  auto dev = std::make_shared<TreeTestDev>();
  tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups);
  const Ino value = tree.resolve("devices/virtual/t/t0/value");
  const std::size_t before = tree.node_count();
  try {
    tree.add_symlink("devices/virtual/t/t0/value", "x");
    FAIL("no TreeError");
  } catch (const TreeError& e) {
    CHECK(std::string(e.what()) == "duplicate name: devices/virtual/t/t0/value");
  }
  CHECK_THROWS_AS(tree.add_device<TreeTestDev>("devices/virtual/t/t0", dev, kTreeTestGroups), TreeError);
  CHECK(tree.node_count() == before);
  CHECK(tree.resolve("devices/virtual/t/t0/value") == value);
  CHECK(tree.find("devices/virtual/t/t0/value")->kind == NodeKind::Text);
  // Directories made in any order list sorted (the insert hint keeps order).
  for (const char* d : {"m", "a", "z", "b", "y"}) tree.mkdir_p(std::string("d/") + d + "/x");
  auto entries = tree.list(tree.resolve("d"));
  REQUIRE(entries);
  std::string names;
  for (const auto& e : *entries) names += e.name;
  CHECK(names == "abmyz");
}

}  // TEST_SUITE

// Orders read with os.listdir from the real /sys of a 6.x kernel (x86_64):
// kernfs returns a directory's entries by kernfs_name_hash, then by name.
TEST_CASE("kernfs_name_hash orders entries as a real /sys lists them") {
  using vsysfs::core::kernfs_name_hash;
  const std::vector<std::vector<std::string>> real = {
      {"mempolicy", "hugepages", "transparent_hugepage", "damon", "swap", "ksm", "numa"},
      {"cpuidle", "uevent", "hotplug", "node0", "power", "topology", "cpu_capacity", "cache",
       "subsystem"},
      {"memory188", "memory99", "memory121", "memory32", "memory60", "memory3", "uevent",
       "memory178", "memory89", "memory111", "memory22", "distance", "memory50"},
  };
  for (const auto& listing : real) {
    auto sorted = listing;
    std::sort(sorted.begin(), sorted.end(), [](const std::string& a, const std::string& b) {
      const auto ha = kernfs_name_hash(a), hb = kernfs_name_hash(b);
      return ha != hb ? ha < hb : a < b;
    });
    CHECK(sorted == listing);
  }
  // 0, 1 and INT_MAX are kept for ".", ".." and the end of the directory.
  for (const char* name : {"", "a", "uevent", "power", "subsystem"}) {
    CHECK(kernfs_name_hash(name) >= 2u);
    CHECK(kernfs_name_hash(name) < 0x7fffffffu);
  }
}
