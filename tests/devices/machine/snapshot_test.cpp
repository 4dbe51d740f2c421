// Unit tests of kernel/debug/vsysfs/machine/{snapshot,restore,diff}
// (devices/machine/snapshot): bounds and names, the refusal of a machine
// with a section that keeps no StateHandler, and, over a device that does
// (a counter with a timer), that a restore brings back values, time,
// pending timers (firing at the same simulated instant), modes and owners,
// and that the diff lists exactly the changed paths.
#include <sys/fsuid.h>

#include <cerrno>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "core/parse.hpp"
#include "core/snapshot_file.hpp"
#include "devices/machine/snapshot.hpp"
#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;

namespace {

std::string data_of(const core::Event& e) {
  std::string out;
  for (const auto& f : e.data) out += f.key + "=" + f.json + " ";
  return out;
}

// A device with state, a timer and a StateHandler: "value" (0644) and
// "tick_ms" (0200: arms the timer, which adds 100 to value when it fires).
class Counter {
 public:
  explicit Counter(core::Env& env) : env_(env), timer_(env.clock, [this] { fire(); }) {}

  core::Status value_show(core::PageBuffer& buf) const {
    core::MutexLock lock(mu_);
    buf.emit("{}\n", value_);
    return {};
  }
  core::Result<std::size_t> value_store(const core::Caller& c, std::string_view in) {
    auto v = core::kstrtoull(in, 0);
    if (!v) return v.error();
    {
      core::MutexLock lock(mu_);
      value_ = *v;
    }
    env_.log(&c, "counter", "store", "OK", {{"value", *v}});
    return in.size();
  }
  core::Result<std::size_t> tick_ms_store(const core::Caller&, std::string_view in) {
    auto v = core::kstrtoull(in, 0);
    if (!v) return v.error();
    timer_.schedule_in(std::chrono::milliseconds(*v));
    return in.size();
  }

  void save(core::StateWriter& w) const {
    core::MutexLock lock(mu_);
    w.put_u64("value", value_);
    w.put_bool("timer.pending", timer_.pending());
    w.put_u64("timer.expires_ns", static_cast<std::uint64_t>(timer_.expires().count()));
  }
  core::Status load(const core::StateReader& r) {
    auto v = r.u64("value");
    auto p = r.boolean("timer.pending");
    auto e = r.u64("timer.expires_ns");
    if (!v || !p || !e) return core::Errno{EINVAL};
    timer_.del_timer_sync();
    {
      core::MutexLock lock(mu_);
      value_ = *v;
    }
    if (*p) timer_.mod_timer(core::Nanos(*e));
    return {};
  }

  static std::span<const core::AttributeGroup<Counter>> groups();

 private:
  void fire() {
    std::uint64_t v;
    {
      core::MutexLock lock(mu_);
      v = value_ += 100;
    }
    env_.log(nullptr, "counter", "tick", "OK", {{"value", v}});
  }
  core::Env& env_;
  mutable core::Mutex mu_{"counter.mu"};
  std::uint64_t value_ GUARDED_BY(mu_) = 7;
  core::Timer timer_;
};

constexpr core::DeviceAttribute<Counter> kCounterAttrs[] = {
    VSYSFS_ATTR_RW(Counter, value),
    VSYSFS_ATTR_WO(Counter, tick_ms),
};
constexpr core::AttributeGroup<Counter> kCounterGroups[] = {{.name = "", .attrs = kCounterAttrs}};
std::span<const core::AttributeGroup<Counter>> Counter::groups() { return kCounterGroups; }

// A machine of two counters and the snapshot files, driven through
// fs::Server like the FUSE ops. No Machine::build: no section, so the
// handlers registered here are all there is.
struct Rig {
  testing::TestEnv t;
  core::Tree tree;
  core::LockService locks{t.env};
  devices::Machine machine{t.env, tree, &t.clock, locks};
  std::shared_ptr<devices::MachineSnapshots> snaps;
  std::vector<std::shared_ptr<Counter>> counters;

  Rig() {
    for (int i = 0; i < 2; ++i) {
      auto c = std::make_shared<Counter>(t.env);
      tree.add_device<Counter>(fmt::format("devices/counter{}", i), c, Counter::groups());
      machine.register_state({.name = fmt::format("counter{}", i),
                              .version = 1,
                              .save = [c](core::StateWriter& w) { c->save(w); },
                              .load = [c](const core::StateReader& r) { return c->load(r); },
                              .loads_into_new_boot = {},
                              .section = "counter"});
      counters.push_back(c);
    }
    snaps = std::make_shared<devices::MachineSnapshots>(t.env, tree, machine, &t.clock);
    tree.add_device<devices::MachineSnapshots>("kernel/debug/vsysfs/machine", snaps,
                                               devices::MachineSnapshots::groups());
  }
  std::string read(std::string_view path) {
    core::PageBuffer buf;
    auto st = tree.find(path)->show(buf);
    return st ? std::string(buf.view()) : "<err>";
  }
  long write(std::string_view path, std::string_view in) {
    auto r = tree.find(path)->store(core::Caller::root(), in);
    return r ? static_cast<long>(*r) : -static_cast<long>(r.error().value());
  }
  std::string seq(std::string_view path) {
    std::string out;
    (void)tree.find(path)->seq_show(out);
    return out;
  }
  // The events after `from` as "device what data" lines (no seq, no time).
  std::vector<std::string> events_since(std::uint64_t from) {
    std::vector<std::string> out;
    for (const auto& e : t.events.snapshot())
      if (e.seq > from && e.device == "counter") out.push_back(e.what + " " + data_of(e));
    return out;
  }
};

// A section whose builder registers no StateHandler (every real section
// has one): a machine with it cannot be restored.
void build_nostate(devices::MachineContext& ctx, const core::ConfigValue&) {
  ctx.tree.mkdir_p("devices/virtual/nostate");
}
const devices::SectionRegistrar kNoStateSection{"snapshot_test_nostate", &build_nostate};

constexpr const char* kSnap = "kernel/debug/vsysfs/machine/snapshot";
constexpr const char* kRestore = "kernel/debug/vsysfs/machine/restore";
constexpr const char* kDiff = "kernel/debug/vsysfs/machine/diff";

}  // namespace

TEST_SUITE("snapshot") {

TEST_CASE("snapshot: names, the bound, replace, the list") {
  Rig m;
  CHECK(m.write(kSnap, "\n") == -EINVAL);
  CHECK(m.write(kSnap, "now\n") == -EINVAL);
  CHECK(m.write(kSnap, "a b\n") == -EINVAL);
  CHECK(m.write(kSnap, "a/b") == -EINVAL);
  CHECK(m.write(kSnap, "..") == -EINVAL);
  CHECK(m.write(kSnap, std::string(devices::MachineSnapshots::kMaxName + 1, 'x')) == -ENAMETOOLONG);
  CHECK(m.seq(kSnap) == "");  // refused names changed nothing
  CHECK(m.write(kSnap, std::string(devices::MachineSnapshots::kMaxName, 'x')) ==
        static_cast<long>(devices::MachineSnapshots::kMaxName));
  for (std::size_t i = 1; i < devices::MachineSnapshots::kMaxSnapshots; ++i)
    CHECK(m.write(kSnap, fmt::format("s{}\n", i)) > 0);
  CHECK(m.write(kSnap, "one-too-many\n") == -ENOSPC);
  // An existing name is replaced, even when full; it moves to the end.
  m.t.advance_ms(5);
  CHECK(m.write(kSnap, "s1\n") == 3);
  const auto list = m.seq(kSnap);
  CHECK(std::count(list.begin(), list.end(), '\n') ==
        static_cast<long>(devices::MachineSnapshots::kMaxSnapshots));
  const auto last = list.substr(list.rfind('\n', list.size() - 2) + 1);
  CHECK(last.rfind("s1 5000000 ", 0) == 0);
  CHECK(m.write(kRestore, "nosuch\n") == -ENOENT);
  CHECK(m.write(kRestore, "bad name\n") == -EINVAL);
}

TEST_CASE("restore: values, time, a pending timer at the same instant, modes and owners") {
  Rig m;
  m.t.advance_ms(10);
  CHECK(m.write("devices/counter0/value", "5") == 1);
  CHECK(m.write("devices/counter1/tick_ms", "30") == 2);  // fires at 40 ms
  CHECK(m.write(kSnap, "base\n") == 5);

  CHECK(m.write("devices/counter0/value", "99") == 2);
  const core::Ino ino = m.tree.resolve("devices/counter0/value");
  REQUIRE(m.tree.set_mode(ino, 0600));
  REQUIRE(m.tree.set_owner(ino, 1000, 1000));
  m.t.advance_ms(50);  // the timer fires: counter1 = 107
  CHECK(m.read("devices/counter1/value") == "107\n");
  CHECK(m.write("devices/counter1/tick_ms", "1000") == 4);  // pending, not in the snapshot

  CHECK(m.write(kDiff, "base now\n") == 9);
  CHECK(m.seq(kDiff) ==
        "devices/counter0/value: 5 -> 99\n"
        "devices/counter1/value: 7 -> 107\n");

  CHECK(m.write(kRestore, "base\n") == 5);
  CHECK(m.t.clock.now() == std::chrono::milliseconds(10));
  CHECK(m.read("devices/counter0/value") == "5\n");
  CHECK(m.read("devices/counter1/value") == "7\n");
  const auto node = m.tree.get(ino);
  CHECK(node->mode.load() == 0644);
  CHECK(node->uid.load() == 0);
  CHECK(node->gid.load() == 0);
  CHECK(m.write(kDiff, "base now\n") == 9);
  CHECK(m.seq(kDiff) == "");
  // The snapshot's timer, and only it: 29 ms on nothing, at 30 the tick.
  m.t.advance_ms(29);
  CHECK(m.read("devices/counter1/value") == "7\n");
  m.t.advance_ms(1);
  CHECK(m.read("devices/counter1/value") == "107\n");
  m.t.advance_ms(5000);  // the 1000 ms timer armed after the snapshot is gone
  CHECK(m.read("devices/counter1/value") == "107\n");
  const auto restores = [&] {
    int n = 0;
    for (const auto& e : m.t.events.snapshot()) n += e.device == "machine" && e.what == "restore";
    return n;
  }();
  CHECK(restores == 1);  // the log records the restore; it is not rewound
}

// A restore compares only the nodes whose mode or owner changed since the
// snapshot, or since its last restore (Tree::attr_changes_since). Every
// mode and owner must be right after each restore however the snapshots
// and changes interleave: between two snapshots, between two restores of
// the same snapshot, a node made again at a path, and a log that overflowed.
TEST_CASE("restore: modes and owners across snapshots and changes between restores") {
  Rig m;
  const char* v0 = "devices/counter0/value";
  const char* v1 = "devices/counter1/value";
  const char* dir1 = "devices/counter1";
  auto mode = [&](const char* p) { return m.tree.find(p)->mode.load(); };
  auto owner = [&](const char* p) {
    const auto n = m.tree.find(p);
    return std::pair{n->uid.load(), n->gid.load()};
  };
  auto chmod = [&](const char* p, mode_t md) { REQUIRE(m.tree.set_mode(m.tree.resolve(p), md)); };
  auto chown = [&](const char* p, uid_t u, gid_t g) {
    REQUIRE(m.tree.set_owner(m.tree.resolve(p), u, g));
  };
  using Owner = std::pair<uid_t, gid_t>;
  // A: v0 0600 (changed before any snapshot), v1 root's, dir1 0755.
  chmod(v0, 0600);
  CHECK(m.write(kSnap, "A") == 1);
  // B: v0 0640, v1 owned by 1000:1001, dir1 0700.
  chmod(v0, 0640);
  chown(v1, 1000, 1001);
  chmod(dir1, 0700);
  CHECK(m.write(kSnap, "B") == 1);
  auto is_a = [&] {
    CHECK(mode(v0) == 0600);
    CHECK(owner(v1) == Owner{0, 0});
    CHECK(mode(dir1) == 0755);
    CHECK(mode(v1) == 0644);
  };
  auto is_b = [&] {
    CHECK(mode(v0) == 0640);
    CHECK(owner(v1) == Owner{1000, 1001});
    CHECK(mode(dir1) == 0700);
    CHECK(mode(v1) == 0644);
  };
  CHECK(m.write(kRestore, "A") == 1);
  is_a();
  CHECK(m.write(kRestore, "B") == 1);
  is_b();
  CHECK(m.write(kRestore, "A") == 1);
  is_a();
  // Restored twice in a row, with nothing in between, then with changes.
  CHECK(m.write(kRestore, "A") == 1);
  is_a();
  chmod(v0, 0444);
  chown(v1, 5, 6);
  chmod(v1, 0400);
  CHECK(m.write(kRestore, "A") == 1);
  is_a();
  // A change that puts back what A has, then a restore of B and of A.
  chmod(v0, 0600);
  CHECK(m.write(kRestore, "B") == 1);
  is_b();
  chmod(v0, 0444);
  CHECK(m.write(kRestore, "B") == 1);
  is_b();
  CHECK(m.write(kRestore, "A") == 1);
  is_a();
  // A taken again later: the new A, not the old one.
  chmod(v0, 0604);
  CHECK(m.write(kSnap, "A") == 1);
  chmod(v0, 0600);
  CHECK(m.write(kRestore, "A") == 1);
  CHECK(mode(v0) == 0604);
  CHECK(m.write(kRestore, "B") == 1);
  is_b();

  // A device removed and added again (hotplug): its new nodes have their
  // own modes, and the snapshot's are set on them.
  REQUIRE(m.tree.remove(dir1));
  m.tree.add_device<Counter>(dir1, m.counters[1], Counter::groups());
  CHECK(mode(dir1) == 0755);
  CHECK(owner(v1) == Owner{0, 0});
  CHECK(m.write(kRestore, "B") == 1);
  is_b();

  // More changes than the log keeps: the restore compares every node.
  for (std::size_t i = 0; i <= core::Tree::kMaxAttrLog; ++i) chmod(v1, i % 2 ? 0600 : 0400);
  chmod(v0, 0444);
  CHECK(m.write(kRestore, "B") == 1);
  is_b();
  for (std::size_t i = 0; i <= core::Tree::kMaxAttrLog; ++i) chmod(v1, 0400);
  CHECK(m.write(kRestore, "B") == 1);
  is_b();
}

TEST_CASE("diff: absent paths, now-now, bad input changes nothing") {
  Rig m;
  CHECK(m.write(kSnap, "a") == 1);
  CHECK(m.write(kDiff, "a now") == 5);
  CHECK(m.seq(kDiff) == "");
  CHECK(m.write("devices/counter0/value", "1") == 1);
  CHECK(m.write(kDiff, " a\tnow \n") > 0);
  CHECK(m.seq(kDiff) == "devices/counter0/value: 7 -> 1\n");
  CHECK(m.write(kDiff, "a") == -EINVAL);
  CHECK(m.write(kDiff, "a now now") == -EINVAL);
  CHECK(m.write(kDiff, "a zz") == -ENOENT);
  CHECK(m.write(kDiff, "a b/c") == -EINVAL);
  CHECK(m.seq(kDiff) == "devices/counter0/value: 7 -> 1\n");  // the last good diff
  CHECK(m.write(kDiff, "now a") > 0);
  CHECK(m.seq(kDiff) == "devices/counter0/value: 1 -> 7\n");
}

TEST_CASE("restore refuses a machine with a section that keeps no state") {
  Rig m;
  CHECK(m.write(kSnap, "a") == 1);
  m.machine.register_state({.name = "x",
                            .version = 1,
                            .save = {},
                            .load = {},
                            .loads_into_new_boot = {},
                            .section = "other"});  // stateless: covered
  CHECK(m.write(kRestore, "a") == 1);
  testing::TestMachine full(R"([snapshot_test_nostate]
)");
  CHECK(full.write(kSnap, "a\n") == 2);
  CHECK(full.write("kernel/debug/vsysfs/clock/advance_ms", "10") == 2);
  CHECK(full.write(kRestore, "a\n") == -EOPNOTSUPP);
  CHECK(full.read("kernel/debug/vsysfs/clock/now_ns") == "10000000\n");  // nothing changed
  const auto ev = full.events_of("machine", "restore");
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].result == "EOPNOTSUPP");
  CHECK(ev[0].field("unsupported") == "\"snapshot_test_nostate\"");
  CHECK(full.write(kDiff, "a now\n") == 6);
  CHECK(full.read(kDiff) == "kernel/debug/vsysfs/clock/now_ns: 0 -> 10000000\n");
}

TEST_CASE("restore with the real clock is EOPNOTSUPP") {
  testing::TestEnv t;
  core::Tree tree;
  core::LockService locks{t.env};
  devices::Machine machine{t.env, tree, nullptr, locks};
  devices::MachineSnapshots snaps(t.env, tree, machine, nullptr);
  REQUIRE(snaps.take(nullptr, "a"));
  CHECK(snaps.restore(nullptr, "a").error().value() == EOPNOTSUPP);
}

// The determinism property (docs/snapshot.md "Determinism"): with the
// manual clock, snapshot A; ops; restore A; the same ops gives the same
// values and the same events (what and data) both times.
TEST_CASE("restore is deterministic over random op sequences") {
  const unsigned seeds = 20;
  for (unsigned seed = 1; seed <= seeds; ++seed) {
    Rig m;
    std::mt19937 rng(seed);
    m.t.advance_ms(rng() % 100);
    CHECK(m.write("devices/counter1/tick_ms", "25") == 2);
    REQUIRE(m.snaps->take(nullptr, "A"));
    std::vector<std::pair<std::string, std::string>> ops;
    const int n = 5 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      const int dev = static_cast<int>(rng() % 2);
      switch (rng() % 3) {
        case 0:
          ops.emplace_back(fmt::format("devices/counter{}/value", dev),
                           fmt::format("{}", rng() % 1000));
          break;
        case 1:
          ops.emplace_back(fmt::format("devices/counter{}/tick_ms", dev),
                           fmt::format("{}", rng() % 50));
          break;
        default:
          ops.emplace_back("advance", fmt::format("{}", rng() % 40));
          break;
      }
    }
    auto run = [&] {
      const std::uint64_t from =
          m.t.events.snapshot().empty() ? 0 : m.t.events.snapshot().back().seq;
      for (const auto& [path, v] : ops) {
        if (path == "advance") {
          m.t.advance_ms(std::stoull(v));
        } else {
          CHECK(m.write(path, v) > 0);
        }
      }
      return std::pair{m.events_since(from), m.read("devices/counter0/value") +
                                                 m.read("devices/counter1/value") +
                                                 fmt::format("{}", m.t.clock.now().count())};
    };
    const auto first = run();
    REQUIRE(m.snaps->restore(nullptr, "A"));
    const auto second = run();
    CHECK_MESSAGE(first.first == second.first, "seed ", seed);
    CHECK_MESSAGE(first.second == second.second, "seed ", seed);
  }
}

// A machine whose every section has a StateHandler (the control plane,
// locks, the default NUMA topology, the clocksource, the test device).
TEST_CASE("restore of a whole machine: every value back, hotplug undone") {
  testing::TestMachine m(R"([testdev]
value = 7
)");
  const auto K = [](std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); };
  CHECK(m.write(K("testdev/hotplug"), "add kept") == 8);
  CHECK(m.write(K("testdev/timer_ms"), "40") == 2);
  CHECK(m.write(K("machine/snapshot"), "base") == 4);
  const auto list_before = m.read("devices/system/cpu/cpu1/cpuidle/state1/disable");
  CHECK(m.write(K("testdev/set"), "5") == 1);
  CHECK(m.write(K("testdev/hotplug"), "remove kept") == 11);
  CHECK(m.write(K("testdev/hotplug"), "add extra") == 9);
  CHECK(m.write("devices/system/cpu/cpu1/online", "0") == 1);
  CHECK(m.write("kernel/mm/ksm/advisor_mode", "scan-time") == 9);
  CHECK(m.write("devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", "4") == 1);
  CHECK(m.write(K("numa/alloc"), "pages=10") == 8);
  CHECK(m.write(K("fail/smi/probability"), "7") == 1);
  CHECK(m.write(K("fail/seed"), "3") == 1);
  CHECK(m.write("devices/system/clocksource/clocksource0/unbind_clocksource", "hpet") == 4);
  m.advance_ms(100);
  CHECK(m.read(K("testdev/fired")) == "1\n");
  CHECK_FALSE(m.exists("devices/system/cpu/cpu1/cpuidle"));
  CHECK(m.write(K("machine/diff"), "base now") == 8);
  CHECK(m.read(K("machine/diff")) != "");

  CHECK(m.write(K("machine/restore"), "base") == 4);
  CHECK(m.write(K("machine/diff"), "base now") == 8);
  // testdev0's read counters count the snapshot's own reads: not state.
  CHECK(m.read(K("machine/diff")) ==
        "devices/virtual/vsysfs_test/testdev0/shows: 2 -> 8\n"
        "devices/virtual/vsysfs_test/testdev0/stats/count: 3 -> 9\n");
  CHECK(m.exists("devices/virtual/vsysfs_test/kept/value"));
  CHECK_FALSE(m.exists("devices/virtual/vsysfs_test/extra"));
  CHECK(m.read("devices/system/cpu/cpu1/cpuidle/state1/disable") == list_before);
  CHECK(m.read(K("testdev/fired")) == "0\n");
  m.advance_ms(40);
  CHECK(m.read(K("testdev/fired")) == "1\n");
}

// The determinism property across device families on a whole machine
// (control plane, NUMA, clocksource, the test device with its timer and
// hotplug, network interfaces with their senders, watchdogs, rings, BQL
// and links): snapshot A; random ops; restore A; the same ops gives the
// same attribute values and the same events (device, what, result, data,
// in order: timers due at the same instant keep their order).
TEST_CASE("restore is deterministic on a whole machine across device families") {
  const auto K = [](std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); };
  const unsigned seeds = 8;
  std::size_t net_events = 0;  // the net ops did something (a path typo would not)
  for (unsigned seed = 1; seed <= seeds; ++seed) {
    testing::TestMachine m(R"([testdev]
value = 7

[net]
nr_cpu_ids = 4

[[net.interface]]
name = "lo"
kind = "loopback"

[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
max_mtu = 9000
peer = "eth1"
change_carrier = true

[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
lltx = true
mmio_seed = 7

[[net.interface]]
name = "eth2"
pci = "0000:00:05.0"
speed = 10
ring_size = 16
watchdog_timeo_ms = 200
bql = true
peer = "eth3"

[[net.interface]]
name = "eth3"
pci = "0000:00:06.0"
speed = 10
ring_size = 16
bql = true
)");
    std::mt19937 rng(seed);
    const auto pick = [&](std::initializer_list<const char*> v) {
      return std::string(*(v.begin() + rng() % v.size()));
    };
    std::vector<std::pair<std::string, std::string>> ops;
    const int n = 10 + static_cast<int>(rng() % 20);
    const auto iface = [&] { return pick({"lo", "eth0", "eth1", "eth2", "eth3"}); };
    const auto nic = [&] { return pick({"eth0", "eth1", "eth2", "eth3"}); };
    // An interface's directory (the tree's paths do not go through class/net).
    const auto dir = [](const std::string& ifname) -> std::string {
      if (ifname == "lo") return "devices/virtual/net/lo";
      const char slot = static_cast<char>('3' + (ifname[3] - '0'));
      return fmt::format("devices/pci0000:00/0000:00:0{}.0/net/{}", slot, ifname);
    };
    for (int i = 0; i < n; ++i) {
      switch (rng() % 16) {
        case 9:  // ip link set up/down, promisc
          ops.emplace_back(dir(iface()) + "/flags", pick({"0x1002", "0x1003", "0x1103"}));
          break;
        case 10:
          ops.emplace_back(K("net/" + iface() + "/traffic"),
                           pick({"start", "start", "stop", "count 0 size 1000 rate 3000",
                                 "count 40 rate 20000 cpus 3", "size 64 rate 100000"}));
          break;
        case 11:
          ops.emplace_back(K("net/" + nic() + "/link"), pick({"up", "down", "up"}));
          break;
        case 12:
          ops.emplace_back(K("net/" + nic() + "/faults"),
                           pick({"hang_tx 1", "hang_tx 0", "drop_rx 3", "skip_queue_stop 1",
                                 "skip_queue_stop 0"}));
          break;
        case 13:
          ops.emplace_back(dir("eth0") + "/" + pick({"mtu", "carrier"}),
                           pick({"9000", "1500", "0", "1"}));
          break;
        case 14:
          ops.emplace_back(dir("eth2") + "/queues/tx-0/byte_queue_limits/" +
                               pick({"limit_max", "limit_min", "hold_time"}),
                           fmt::format("{}", rng() % 20000));
          break;
        case 0:
          ops.emplace_back(K("testdev/set"), fmt::format("{}", rng() % 100));
          break;
        case 1:
          ops.emplace_back(K("testdev/timer_ms"), fmt::format("{}", rng() % 50));
          break;
        case 2:
          ops.emplace_back(K("testdev/hotplug"), pick({"add a", "add b", "remove a", "remove b"}));
          break;
        case 3:
          ops.emplace_back(fmt::format("devices/system/cpu/cpu{}/online", 1 + rng() % 3),
                           pick({"0", "1"}));
          break;
        case 4:
          ops.emplace_back(K("numa/alloc"), fmt::format("pages={}", 1 + rng() % 1000));
          break;
        case 5:
          ops.emplace_back("kernel/mm/ksm/" + pick({"run", "pages_to_scan", "advisor_mode"}),
                           pick({"1", "0", "scan-time", "none", "200"}));
          break;
        case 6:
          ops.emplace_back("devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
                           fmt::format("{}", rng() % 8));
          break;
        case 7:
          ops.emplace_back(K("fail/seed"), fmt::format("{}", rng() % 10));
          break;
        default:
          ops.emplace_back(K("clock/advance_ms"), fmt::format("{}", rng() % 40));
          break;
      }
    }
    m.advance_ms(rng() % 100);
    CHECK(m.write(K("testdev/timer_ms"), "25") == 2);
    // Senders running at the snapshot: eth2's stalls its slow link (BQL,
    // a full ring), so their timers, the MACs', NAPI's and the chipset's
    // are pending at A.
    CHECK(m.write(K("net/eth0/traffic"), "count 0 rate 2000") > 0);
    CHECK(m.write(K("net/eth0/traffic"), "start") > 0);
    CHECK(m.write(K("net/eth2/traffic"), "count 0 size 1000 rate 3000") > 0);
    CHECK(m.write(K("net/eth2/traffic"), "start") > 0);
    m.advance_ms(1 + rng() % 30);
    REQUIRE(m.write(K("machine/snapshot"), "A") == 1);
    auto run = [&] {
      const std::uint64_t from = m.events.snapshot().back().seq;
      std::vector<long> results;
      for (const auto& [path, v] : ops) results.push_back(m.write(path, v));
      std::vector<std::string> evs;
      for (const auto& e : m.events.since(from))
        evs.push_back(e.device + " " + e.what + " " + e.result + " " + data_of(e));
      // Every attribute value, as the snapshot renders them.
      REQUIRE(m.write(K("machine/snapshot"), "end") == 3);
      return std::tuple{results, evs};
    };
    const auto first = run();
    for (const auto& e : std::get<1>(first)) net_events += e.rfind("eth", 0) == 0;
    REQUIRE(m.write(K("machine/snapshot"), "end1") == 4);
    REQUIRE(m.write(K("machine/restore"), "A") == 1);
    const auto second = run();
    CHECK_MESSAGE(std::get<0>(first) == std::get<0>(second), "seed ", seed);
    CHECK_MESSAGE(std::get<1>(first) == std::get<1>(second), "seed ", seed);
    CHECK(m.write(K("machine/diff"), "end1 end") == 8);
    // The read counters of testdev0 count the snapshots' own reads.
    std::string d = m.read(K("machine/diff"));
    std::string rest;
    for (std::size_t pos = 0; pos < d.size();) {
      const auto nl = d.find('\n', pos);
      const auto line = d.substr(pos, nl - pos);
      if (line.find("/shows: ") == std::string::npos &&
          line.find("/stats/count: ") == std::string::npos)
        rest += line + "\n";
      pos = nl + 1;
    }
    CHECK_MESSAGE(rest == "", "seed ", seed);
  }
  CHECK(net_events > 30);
}

// --- snapshot files (machine/save, machine/load; docs/snapshot.md) --------

namespace {

struct TmpDir {
  std::string path;
  TmpDir() {
    char tmpl[] = "/tmp/vsysfs-snapfile-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TmpDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

constexpr const char* kSave = "kernel/debug/vsysfs/machine/save";
constexpr const char* kLoad = "kernel/debug/vsysfs/machine/load";

}  // namespace

TEST_CASE("save and load: a file round trip restores the machine; the list gets the name") {
  Rig m;
  TmpDir d;
  const std::string f = d / "base.snap";
  m.write("devices/counter0/value", "11");
  m.t.clock.advance(std::chrono::milliseconds(5));
  REQUIRE(m.write(kSnap, "base\n") == 5);
  CHECK(m.write(kSave, "nosuch " + f) == -ENOENT);
  CHECK(access(f.c_str(), F_OK) != 0);
  const std::string in = "base " + f + "\n";
  REQUIRE(m.write(kSave, in) == static_cast<long>(in.size()));
  struct stat st {};
  REQUIRE(stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto img = core::decode_snapshot(slurp_file(f));
  REQUIRE(img);
  CHECK(img->name == "base");
  CHECK(img->now_ns == 5000000);
  CHECK(img->values.at("devices/counter0/value") == "11\n");

  m.write("devices/counter0/value", "99");
  m.t.clock.advance(std::chrono::milliseconds(5));
  // A path alone: the file's name. "NAME PATH": that name.
  REQUIRE(m.write(kLoad, f) > 0);
  REQUIRE(m.write(kLoad, "copy  " + f + "\n") > 0);
  CHECK(m.seq(kSnap).find("copy 5000000 ") != std::string::npos);
  CHECK(m.read("devices/counter0/value") == "99\n");  // load changes no device
  REQUIRE(m.write(kRestore, "copy") == 4);
  CHECK(m.read("devices/counter0/value") == "11\n");
  CHECK(m.t.clock.now() == core::Nanos(5000000));
}

TEST_CASE("load: a damaged, truncated, other-version or other-machine file changes nothing") {
  Rig m;
  TmpDir d;
  const std::string f = d / "s";
  REQUIRE(m.write(kSnap, "base") == 4);
  REQUIRE(m.write(kSave, "base " + f) > 0);
  const std::string good = slurp_file(f);
  const std::string list = m.seq(kSnap);
  auto refused = [&](const std::string& bytes) {
    spit(f, bytes);
    return m.write(kLoad, "other " + f);
  };
  std::string flipped = good;
  flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x10);
  CHECK(refused(flipped) == -EINVAL);
  CHECK(refused(good.substr(0, good.size() - 1)) == -EINVAL);
  CHECK(refused(good.substr(0, 10)) == -EINVAL);
  CHECK(refused("") == -EINVAL);
  std::string v2 = good;
  v2[16] = 2;
  CHECK(refused(v2) == -EINVAL);
  auto img = core::decode_snapshot(good);
  REQUIRE(img);
  img->machine_id = "ffffffffffffffff";
  CHECK(refused(core::encode_snapshot(*img)) == -EXDEV);
  img = core::decode_snapshot(good);
  img->states.erase("counter1");
  CHECK(refused(core::encode_snapshot(*img)) == -EINVAL);
  img = core::decode_snapshot(good);
  img->states["counter1"] = "version=9\n";
  CHECK(refused(core::encode_snapshot(*img)) == -EINVAL);
  CHECK(m.seq(kSnap) == list);
  // The reason is in the event.
  bool seen = false;
  for (const auto& e : m.t.events.snapshot())
    seen = seen || (e.what == "load" && e.result == "EXDEV" &&
                    data_of(e).find("not of this machine") != std::string::npos);
  CHECK(seen);
  spit(f, good);
  CHECK(m.write(kLoad, "other " + f) > 0);
}

TEST_CASE("save and load: paths are absolute, no symlink at the end, the caller's permissions") {
  Rig m;
  TmpDir d;
  REQUIRE(m.write(kSnap, "base") == 4);
  CHECK(m.write(kSave, "base relative/file") == -EINVAL);
  CHECK(m.write(kSave, "base") == -EINVAL);
  CHECK(m.write(kSave, "bad/name /tmp/x") == -EINVAL);
  CHECK(m.write(kSave, "base " + d / "missing/file") == -ENOENT);
  CHECK(m.write(kLoad, "relative") == -EINVAL);
  CHECK(m.write(kLoad, d.path) == -EISDIR);
  REQUIRE(m.write(kSave, "base " + d / "real") > 0);
  REQUIRE(symlink((d / "real").c_str(), (d / "link").c_str()) == 0);
  CHECK(m.write(kLoad, d / "link") == -ELOOP);
  CHECK(m.write(kLoad, "/dev/null") == -EINVAL);
  // Saving over a symbolic link replaces the link, never its target.
  REQUIRE(m.write(kSave, "base " + d / "link") > 0);
  struct stat st {};
  REQUIRE(lstat((d / "link").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  if (geteuid() == 0) {
    // A root daemon opens as the caller: an unprivileged writer cannot
    // read or create what it could not itself.
    REQUIRE(chmod(d.path.c_str(), 0700) == 0);
    const auto nobody = core::Caller::user(65534);
    auto save = m.tree.find(kSave)->store(nobody, "base " + d / "x");
    REQUIRE(!save);
    CHECK(save.error() == core::Errno{EACCES});
    CHECK(access((d / "x").c_str(), F_OK) != 0);
    auto load = m.tree.find(kLoad)->store(nobody, d / "real");
    REQUIRE(!load);
    CHECK(load.error() == core::Errno{EACCES});
    // ... and the daemon's own identity is back afterwards.
    CHECK(setfsuid(static_cast<uid_t>(-1)) == 0);
    REQUIRE(m.write(kSave, "base " + d / "y") > 0);
  }
}

TEST_CASE("state base: the machine and the list, loaded into a fresh machine") {
  std::string base;
  {
    Rig m;
    m.write("devices/counter0/value", "21");
    REQUIRE(m.write(kSnap, "one") == 3);
    m.write("devices/counter1/value", "22");
    m.write("devices/counter1/tick_ms", "50");
    m.t.clock.advance(std::chrono::milliseconds(10));
    auto b = m.snaps->state_base();
    REQUIRE(b);
    base = *b;
  }
  Rig fresh;
  std::string problem;
  REQUIRE(fresh.snaps->load_state_base(base, &problem));
  CHECK(fresh.read("devices/counter0/value") == "21\n");
  CHECK(fresh.read("devices/counter1/value") == "22\n");
  CHECK(fresh.t.clock.now() == core::Nanos(10000000));
  CHECK(fresh.seq(kSnap).starts_with("one "));
  fresh.t.clock.advance(std::chrono::milliseconds(40));
  CHECK(fresh.read("devices/counter1/value") == "122\n");  // the timer came along
  REQUIRE(fresh.write(kRestore, "one") == 3);
  CHECK(fresh.read("devices/counter1/value") == "7\n");
  // A damaged base changes nothing.
  Rig other;
  std::string bad = base;
  bad[bad.size() - 1] = static_cast<char>(bad[bad.size() - 1] ^ 1);
  CHECK(!other.snaps->load_state_base(bad, &problem));
  CHECK(other.read("devices/counter0/value") == "7\n");
  CHECK(other.seq(kSnap).empty());
}

TEST_CASE("restore is deterministic on a machine with Xen and dcdbas") {
  const auto K = [](std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); };
  const std::string X = "devices/system/xen_memory/xen_memory0/";
  const std::string D = "devices/platform/dcdbas/";
  const unsigned seeds = 8;
  // Over all seeds: Xen and dcdbas stores that succeeded, balloon steps
  // and pacing steps (so the property is not about refused writes only).
  std::size_t xd_ok = 0, steps = 0, domain_steps = 0;
  for (unsigned seed = 1; seed <= seeds; ++seed) {
    testing::TestMachine m(R"([testdev]
value = 7

[xen]
host_memory = "8G"
memory = "2G"
max_memory = "3G"
used = "256M"

[[xen.domain]]
name = "db"
domid = 2
memory = "2G"
target = "1G"
pace = 25600

[dcdbas]
model = "PowerEdge 1400"
asset_tag = "ASSET-42"

[[dcdbas.setting]]
location = 0x20
value = 3
min = 0
max = 9
)");
    std::mt19937 rng(seed);
    const auto pick = [&](std::initializer_list<const char*> v) {
      return std::string(*(v.begin() + rng() % v.size()));
    };
    std::vector<std::pair<std::string, std::string>> ops;
    const int n = 10 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      switch (rng() % 20) {
        case 0:
          ops.emplace_back(K("testdev/set"), fmt::format("{}", rng() % 100));
          break;
        case 1:
          ops.emplace_back(K("testdev/timer_ms"), fmt::format("{}", rng() % 50));
          break;
        case 2:
          ops.emplace_back(K("testdev/hotplug"), pick({"add a", "add b", "remove a", "remove b"}));
          break;
        case 3:
          ops.emplace_back(fmt::format("devices/system/cpu/cpu{}/online", 1 + rng() % 3),
                           pick({"0", "1"}));
          break;
        case 4:
          ops.emplace_back(K("numa/alloc"), fmt::format("pages={}", 1 + rng() % 1000));
          break;
        case 5:
          ops.emplace_back("kernel/mm/ksm/" + pick({"run", "pages_to_scan", "advisor_mode"}),
                           pick({"1", "0", "scan-time", "none", "200"}));
          break;
        case 6:
          ops.emplace_back("devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages",
                           fmt::format("{}", rng() % 8));
          break;
        case 7:
          ops.emplace_back(K("fail/seed"), fmt::format("{}", rng() % 10));
          break;
        case 8:
          ops.emplace_back(X + pick({"target_kb", "max_schedule_delay", "max_retry_count"}),
                           pick({"1048576", "2097152", "3145728", "1", "3"}));
          break;
        case 9:
          ops.emplace_back(K("xen/domain/db/") + pick({"target_kb", "current_kb", "pace"}),
                           pick({"524288", "1048576", "2097152", "30000"}));
          break;
        case 10:
          ops.emplace_back(K("xen/") + pick({"host_free_kb", "populate_fail"}),
                           pick({"0", "1", "2", "1048576"}));
          break;
        case 11:
          ops.emplace_back(K("xen/xenstore"),
                           fmt::format("/local/domain/{}/memory/target {}\n", pick({"1", "2"}),
                                       pick({"786432", "2097152", "2621440"})));
          break;
        case 12: {
          // A calling-interface SMI writing the NV setting (0..9 valid).
          const auto v = static_cast<std::uint32_t>(rng() % 12);
          ops.emplace_back(D + "smi_data",
                           testing::dcdbas::ci_command(0xb2, 0xda, 1, 0, {0x20, v, 0, 0}));
          ops.emplace_back(D + "smi_request", "1");
          break;
        }
        case 13:
          ops.emplace_back(D + pick({"host_control_action", "host_control_smi_type",
                                     "host_control_on_shutdown", "smi_data_buf_size"}),
                           pick({"0", "1", "2", "4", "300", "8192"}));
          break;
        case 14:
          ops.emplace_back(K("dcdbas/smi_answers"),
                           pick({"add 1 0 res=-1", "add 0 0 in=0x20,*,*,* out=7,0,0", "clear"}));
          break;
        case 15:
          ops.emplace_back(D + pick({"driver_override", "power/control"}),
                           pick({"on", "auto", "x"}));
          break;
        case 16:
          ops.emplace_back(K("machine/shutdown"), "reboot");
          break;
        case 17:
          ops.emplace_back(K("dcdbas/cmos"), pick({"\x12\x34", "\x70", "zz"}));
          break;
        case 18:
          // Long enough for the balloon's back-off and the pacing ticks.
          ops.emplace_back(K("clock/advance_ms"), pick({"1000", "2500"}));
          break;
        default:
          ops.emplace_back(K("clock/advance_ms"), fmt::format("{}", rng() % 40));
          break;
      }
    }
    m.advance_ms(rng() % 100);
    CHECK(m.write(K("testdev/timer_ms"), "25") == 2);
    // The balloon's worker pending at the snapshot too: a failed populate
    // backs it off for 2 s.
    CHECK(m.write(K("xen/populate_fail"), "1") == 1);
    CHECK(m.write(X + "target_kb", "3145728") == 7);
    m.advance_ms(1);
    REQUIRE(m.write(K("machine/snapshot"), "A") == 1);
    auto run = [&] {
      const std::uint64_t from = m.events.snapshot().back().seq;
      std::vector<long> results;
      for (const auto& [path, v] : ops) {
        results.push_back(m.write(path, v));
        if (results.back() > 0 &&
            (path.find("xen") != std::string::npos || path.find("dcdbas") != std::string::npos))
          ++xd_ok;
      }
      std::vector<std::string> evs;
      for (const auto& e : m.events.since(from)) {
        evs.push_back(e.device + " " + e.what + " " + e.result + " " + data_of(e));
        steps += e.device == "xen_balloon" && e.what == "step";
        domain_steps += e.device == "xen" && e.what == "domain_step";
      }
      // Every attribute value, as the snapshot renders them.
      REQUIRE(m.write(K("machine/snapshot"), "end") == 3);
      return std::tuple{results, evs};
    };
    const auto first = run();
    REQUIRE(m.write(K("machine/snapshot"), "end1") == 4);
    REQUIRE(m.write(K("machine/restore"), "A") == 1);
    const auto second = run();
    CHECK_MESSAGE(std::get<0>(first) == std::get<0>(second), "seed ", seed);
    CHECK_MESSAGE(std::get<1>(first) == std::get<1>(second), "seed ", seed);
    CHECK(m.write(K("machine/diff"), "end1 end") == 8);
    // The read counters of testdev0 count the snapshots' own reads.
    std::string d = m.read(K("machine/diff"));
    std::string rest;
    for (std::size_t pos = 0; pos < d.size();) {
      const auto nl = d.find('\n', pos);
      const auto line = d.substr(pos, nl - pos);
      if (line.find("/shows: ") == std::string::npos &&
          line.find("/stats/count: ") == std::string::npos)
        rest += line + "\n";
      pos = nl + 1;
    }
    CHECK_MESSAGE(rest == "", "seed ", seed);
  }
  CHECK(xd_ok > 10);
  CHECK(steps > 0);
  CHECK(domain_steps > 0);
}

}  // TEST_SUITE("snapshot")
