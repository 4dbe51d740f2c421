// devices/xen/xen_xenstore.cpp: the simulated xenstore and the domains'
// memory/target watches (drivers/xen/xen-balloon.c watch_target).
#include "devices/xen/xen_xenstore.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;
using vsysfs::devices::XenStore;

namespace {

// 16 GiB host; this guest (web, domid 1) 4 of 8 GiB; Domain-0 4 GiB;
// db 6 of 8 GiB. Workqueue driver: no idle kthread timer.
std::string three_domains(std::string_view extra = "") {
  return std::string(R"([xen]
driver = "workqueue"
host_memory = "16G"
name = "web"
domid = 1
memory = "4G"
max_memory = "8G"
)") + std::string(extra) +
         R"(
[[xen.domain]]
name = "Domain-0"
domid = 0
memory = "4G"
pace = 1024

[[xen.domain]]
name = "db"
domid = 2
memory = "6G"
max_memory = "8G"
pace = 2048
)";
}

const std::string kStore = knob("xenstore");

// The value of one node, from the xenstore-ls dump (the last path
// component at the indentation of its depth, under the right parents).
std::string node_value(TestMachine& m, std::string_view path) {
  std::string dump = m.read(kStore);
  std::vector<std::string> stack;
  std::size_t pos = 0;
  while (pos < dump.size()) {
    const std::size_t nl = dump.find('\n', pos);
    const std::string line = dump.substr(pos, nl - pos);
    pos = nl + 1;
    const std::size_t depth = line.find_first_not_of(' ');
    const std::size_t eq = line.find(" = \"");
    stack.resize(depth);
    stack.push_back(line.substr(depth, eq - depth));
    std::string full;
    for (const auto& s : stack) full += "/" + s;
    if (full == path) return line.substr(eq + 4, line.size() - eq - 5);
  }
  return "<absent>";
}

std::string target_kb(TestMachine& m) { return m.read(dev("target_kb")); }

}  // namespace

TEST_SUITE("xen_xenstore") {

TEST_CASE("boot tree: what the toolstack wrote, as xenstore-ls prints it; 0600") {
  TestMachine m(three_domains());
  CHECK(m.tree.find(kStore)->mode.load() == 0600);
  const std::string dump = m.read(kStore);
  CHECK(
      dump.starts_with("tool = \"\"\n xenstored = \"\"\nlocal = \"\"\n domain = \"\"\n"
                       "  0 = \"\"\n   vm = \"/vm/00000000-0000-0000-0000-000000000000\"\n"
                       "   name = \"Domain-0\"\n   domid = \"0\"\n   memory = \"\"\n"
                       "    static-max = \"4194304\"\n    target = \"4194304\"\n  1 = \"\"\n"));
  const std::string uuid = m.read("hypervisor/uuid");
  CHECK(node_value(m, "/local/domain/1/vm") == "/vm/" + uuid.substr(0, uuid.size() - 1));
  CHECK(node_value(m, "/local/domain/1/name") == "web");
  CHECK(node_value(m, "/local/domain/1/memory/static-max") == "8388608");
  CHECK(node_value(m, "/local/domain/1/memory/target") == "4194304");
  CHECK(node_value(m, "/local/domain/2/memory/static-max") == "8388608");
  CHECK(node_value(m, "/local/domain/2/memory/target") == "6291456");
  CHECK(node_value(m, "/vm/" + uuid.substr(0, uuid.size() - 1) + "/memory") == "4096");
  // register_xenbus_watch fired each watch once; nothing changed.
  const auto w = m.events_of("xenstore", "watch");
  REQUIRE(w.size() == 3);
  CHECK(w[1].field("domid") == "1");
  CHECK(w[1].field("first") == "true");
  CHECK(w[1].field("target_diff_kb") == "0");
  CHECK(m.events_of("xen_balloon", "target").empty());
  CHECK(m.events_of("xen", "domain_target").empty());
  CHECK(m.clock.pending_timers() == 0);
}

TEST_CASE("a memory/target write sets the guest's balloon target, KiB to pages") {
  TestMachine m(three_domains());
  const std::string line = "/local/domain/1/memory/target 6291455\n";
  CHECK(m.write(kStore, line) == static_cast<long>(line.size()));
  // 6291455 KiB >> 2 = 1572863 pages = 6291452 KiB.
  CHECK(target_kb(m) == "6291452\n");
  CHECK(node_value(m, "/local/domain/1/memory/target") == "6291455");
  const auto w = m.events_of("xenstore", "watch");
  REQUIRE(w.size() == 4);
  CHECK(w[3].field("path") == "\"/local/domain/1/memory/target\"");
  CHECK(w[3].field("value") == "\"6291455\"");
  CHECK(w[3].field("target_kb") == "6291452");
  CHECK(w[3].field("first") == "false");
  const auto t = m.events_of("xen_balloon", "target");
  REQUIRE(t.size() == 1);
  CHECK(t[0].field("via") == "\"xenstore\"");
  // The worker moves the guest there (2 GiB of the host is free).
  m.advance_ms(0);
  CHECK(current_kb(m) == 6291452);
  CHECK(memory_consistent(m));
}

TEST_CASE("%llu as vsscanf reads it: junk is stored and ignored; wraps; stops at a non-digit") {
  TestMachine m(three_domains());
  struct Case {
    const char* value;
    const char* target;  // target_kb afterwards; "" = unchanged (ignored)
  };
  const Case cases[] = {
      {"abc", ""},
      {"-1", ""},
      {"+5", ""},
      {"", ""},
      {"   20", "20\n"},
      {"12abc", "12\n"},
      {"0x40", "0\n"},
      // 2^64 + 4096 wraps to 4096.
      {"18446744073709555712", "4096\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.value);
    const std::string before = target_kb(m);
    const std::string line = std::string("/local/domain/1/memory/target ") + c.value;
    REQUIRE(m.write(kStore, line) == static_cast<long>(line.size()));
    CHECK(node_value(m, "/local/domain/1/memory/target") == c.value);
    const auto w = m.events_of("xenstore", "watch");
    if (*c.target == '\0') {
      CHECK(target_kb(m) == before);
      CHECK(w.back().result == "ignored");
    } else {
      CHECK(target_kb(m) == c.target);
      CHECK(w.back().result == "OK");
    }
  }
}

TEST_CASE("watches fire for the node and below it, on every write, in line order") {
  TestMachine m(three_domains());
  const std::size_t boot = m.events_of("xenstore", "watch").size();
  // Not the watched node: no fire.
  CHECK(m.write(kStore, "/local/domain/1/memory/static-max 9999999\n") > 0);
  CHECK(m.write(kStore, "/local/domain/1/memory 1\n") > 0);
  CHECK(m.events_of("xenstore", "watch").size() == boot);
  // A child of memory/target fires it; the driver reads memory/target.
  CHECK(m.write(kStore, "/local/domain/1/memory/target/x 5\n") > 0);
  auto w = m.events_of("xenstore", "watch");
  REQUIRE(w.size() == boot + 1);
  CHECK(w.back().field("path") == "\"/local/domain/1/memory/target/x\"");
  CHECK(w.back().field("value") == "\"4194304\"");
  // The same value again still fires (xenstored fires on every write).
  CHECK(m.write(kStore, "/local/domain/1/memory/target 4194304\n") > 0);
  CHECK(m.events_of("xenstore", "watch").size() == boot + 2);
  // Two domains in one write: two fires, in line order, each reading the
  // store after the whole write.
  CHECK(m.write(kStore,
                "/local/domain/2/memory/target 4194304\n"
                "/local/domain/1/memory/target 5242880\n"
                "/local/domain/1/memory/target 5242884\n") > 0);
  w = m.events_of("xenstore", "watch");
  REQUIRE(w.size() == boot + 5);
  CHECK(w[boot + 2].field("domid") == "2");
  CHECK(w[boot + 3].field("value") == "\"5242884\"");
  CHECK(w[boot + 4].field("value") == "\"5242884\"");
  CHECK(target_kb(m) == "5242884\n");
}

TEST_CASE("another domain's target moves its memory at its pace, clamped to its max") {
  TestMachine m(three_domains());
  CHECK(m.write(kStore, "/local/domain/2/memory/target 4194304\n") > 0);
  CHECK(m.read(knob("domain/db/target_kb")) == "4194304\n");
  REQUIRE(m.events_of("xen", "domain_target").size() == 1);
  m.advance_ms(1000);  // 2048 pages a second
  CHECK(m.read(knob("domain/db/current_kb")) == std::to_string(6291456 - 2048 * 4) + "\n");
  CHECK(memory_consistent(m));
  // Above db's 8 GiB maximum: its driver can only reach the maximum.
  CHECK(m.write(kStore, "/local/domain/2/memory/target 16777216\n") > 0);
  CHECK(m.read(knob("domain/db/target_kb")) == "8388608\n");
  // Domain-0 (domid 0) too.
  CHECK(m.write(kStore, "/local/domain/0/memory/target 2097152\n") > 0);
  CHECK(m.read(knob("domain/Domain-0/target_kb")) == "2097152\n");
}

TEST_CASE("target_diff: fixed at the boot fire from static-max; HVM only") {
  // static-max 8 MiB above what the guest sees: target_diff 2048 pages.
  TestMachine hvm(three_domains("[xen.xenstore]\nstatic_max_kb = 8396800\n"));
  CHECK(node_value(hvm, "/local/domain/1/memory/static-max") == "8396800");
  CHECK(node_value(hvm, "/local/domain/1/memory/target") == "4202496");  // 4 GiB + 8 MiB
  CHECK(target_kb(hvm) == "4194304\n");
  CHECK(hvm.events_of("xenstore", "watch")[1].field("target_diff_kb") == "8192");
  CHECK(hvm.write(kStore, "/local/domain/1/memory/target 6299648\n") > 0);
  CHECK(target_kb(hvm) == "6291456\n");
  // QUIRK: static-max is read on the first fire only.
  CHECK(hvm.write(kStore, "/local/domain/1/memory/static-max 16777216\n") > 0);
  CHECK(hvm.write(kStore, "/local/domain/1/memory/target 6299648\n") > 0);
  CHECK(target_kb(hvm) == "6291456\n");
  // Below target_diff the unsigned difference wraps.
  CHECK(hvm.write(kStore, "/local/domain/1/memory/target 4096\n") > 0);
  const std::uint64_t pages = 1024 - std::uint64_t{2048};
  CHECK(target_kb(hvm) == std::to_string(pages * 4) + "\n");

  // A PV guest: xen_pv_domain(), target_diff 0 whatever static-max says.
  TestMachine pv(
      three_domains("[xen.xenstore]\nstatic_max_kb = 8396800\n"
                    "[xen.hypervisor]\nguest_type = \"PV\"\n"));
  CHECK(node_value(pv, "/local/domain/1/memory/target") == "4194304");
  CHECK(pv.write(kStore, "/local/domain/1/memory/target 6299648\n") > 0);
  CHECK(target_kb(pv) == "6299648\n");
}

TEST_CASE("bad input: the errno, and nothing changes") {
  TestMachine m(three_domains());
  const std::string big(XenStore::kMaxValueBytes + 1, 'v');
  struct Case {
    std::string in;
    int err;
  };
  const Case cases[] = {
      {"\n", EINVAL},
      {"\n\n", EINVAL},
      {"local/domain/1/memory/target 1\n", EINVAL},
      {"/local/domain/1/memory/target\n", EINVAL},
      {"/local/domain/1/memory/target 1\n\n/tool/x 1\n", EINVAL},  // an empty line
      {"//tool 1\n", EINVAL},
      {"/tool/ 1\n", EINVAL},
      {"/ 1\n", EINVAL},
      {"/tool/a.b 1\n", EINVAL},
      {"/tool/x 1\t2\n", EINVAL},
      {std::string("/tool/x 1\0", 10), EINVAL},
      {"/tool/x \x7f\n", EINVAL},
      {"/tool/x \xc3\xa9\n", EINVAL},
      {"/tool/" + std::string(XenStore::kMaxPathBytes, 'p') + " 1\n", EINVAL},
      // a good line first: all or nothing
      {"/local/domain/1/memory/target 1\nbad\n", EINVAL},
      {"/local/domain/7/memory/target 1\n", ENOENT},
      {"/local/domain/01/memory/target 1\n", ENOENT},
      {"/local/domain/1/memory/target 1\n/local/domain/3/x 1\n", ENOENT},
      {"/vm/00000000-0000-0000-0000-00000000000f/memory 1\n", ENOENT},
      {"/local/domain/1/memory/target 1\n/tool/x " + big + "\n", ENOSPC},
  };
  const std::string before = m.read(kStore);
  const std::string before_target = target_kb(m);
  const std::size_t watches = m.events_of("xenstore", "watch").size();
  for (const Case& c : cases) {
    CAPTURE(c.in.substr(0, 60));
    CHECK(m.write(kStore, c.in) == -c.err);
    CHECK(m.read(kStore) == before);
    CHECK(target_kb(m) == before_target);
    CHECK(m.events_of("xenstore", "watch").size() == watches);
  }
  // The boundaries themselves are fine.
  CHECK(m.write(kStore, "/tool/x " + std::string(XenStore::kMaxValueBytes, 'v') + "\n") > 0);
  CHECK(m.write(kStore, "/tool/x \n") > 0);
  CHECK(node_value(m, "/tool/x") == "");
  CHECK(m.write(kStore, "/tool/b a\\b \"q\"\n") > 0);
  CHECK(m.read(kStore).find("\n b = \"a\\\\b \"q\"\"\n") != std::string::npos);
}

TEST_CASE("bounded: at most kMaxNodes nodes; the write that would pass it changes nothing") {
  TestMachine m(three_domains());
  int n = 0;
  long r = 0;
  while (true) {
    std::string in;
    for (int i = 0; i < 100; ++i) in += "/tool/n" + std::to_string(n + i) + " x\n";
    r = m.write(kStore, in);
    if (r < 0) break;
    n += 100;
  }
  CHECK(r == -ENOSPC);
  // Fill up one by one, then the next new node is refused.
  long one = 0;
  while ((one = m.write(kStore, "/tool/n" + std::to_string(n) + " x\n")) > 0) ++n;
  CHECK(one == -ENOSPC);
  const std::string full = m.read(kStore);
  std::size_t lines = 0;
  for (char c : full) lines += c == '\n';
  CHECK(lines + 1 == XenStore::kMaxNodes);  // every node but the root is a line
  // A full store still takes writes to existing nodes and fires watches.
  CHECK(m.write(kStore, "/local/domain/1/memory/target 5242880\n") > 0);
  CHECK(target_kb(m) == "5242880\n");
  // A deep path that needs several new nodes is refused as a whole.
  CHECK(m.write(kStore, "/tool/n0/a/b/c 1\n") == -ENOSPC);
  CHECK(node_value(m, "/tool/n0/a") == "<absent>");
}

TEST_CASE("concurrent writers, readers and the clock: every write fires once, accounts balance") {
  // The lock-order check is on in debug builds: an inversion between
  // xenwatch_mutex, the store, balloon_mutex and the hypervisor aborts.
  TestMachine m(three_domains());
  constexpr int kWrites = 200;
  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // the toolstack moves this guest
    for (int i = 0; i < kWrites; ++i)
      CHECK(m.write(kStore, "/local/domain/1/memory/target " +
                                std::to_string((3 + i % 4) * 1048576) + "\n") > 0);
  });
  threads.emplace_back([&] {  // and the other two, in one write each
    for (int i = 0; i < kWrites; ++i)
      CHECK(m.write(kStore, "/local/domain/2/memory/target " +
                                std::to_string((5 + i % 3) * 1048576) +
                                "\n/local/domain/0/memory/target " +
                                std::to_string((2 + i % 2) * 1048576) + "\n") > 0);
  });
  threads.emplace_back([&] {  // someone else writes the knobs and the guest's sysfs
    for (int i = 0; i < kWrites; ++i) {
      CHECK(m.write(knob("domain/db/target_kb"), i % 2 ? "6291456\n" : "5242880\n") > 0);
      CHECK(m.write(dev("target_kb"), i % 2 ? "4194304\n" : "5242880\n") > 0);
    }
  });
  threads.emplace_back([&] {  // readers
    for (int i = 0; i < kWrites; ++i) {
      CHECK(m.read(kStore).starts_with("tool = "));
      CHECK(!m.read(dev("target_kb")).empty());
    }
  });
  threads.emplace_back([&] {  // simulated time moves on
    for (int i = 0; i < kWrites; ++i) m.advance_ms(50);
  });
  for (auto& t : threads) t.join();
  CHECK(m.events_of("xenstore", "watch").size() == 3 + 3 * kWrites);
  m.advance_ms(120000);
  CHECK(memory_consistent(m));
}

}  // TEST_SUITE("xen_xenstore")
