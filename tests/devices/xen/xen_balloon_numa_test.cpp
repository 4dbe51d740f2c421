// The Xen balloon on a NUMA guest (devices/xen_balloon_memory.hpp, NUMA
// back end): the guest's memory is its nodes' memory. After every balloon
// step, up or down, info/current_kb is the sum of the nodes' MemTotal and
// host free + every domain's current = host total.
#include <doctest/doctest.h>

#include <fcntl.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <chrono>
#include <random>
#include <sstream>
#include <thread>
#include <vector>
#include <string>

#include "core/config.hpp"
#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/event_log.hpp"
#include "devices/machine/machine.hpp"
#include "devices/numa/numa_model.hpp"
#include "devices/xen/xen_balloon.hpp"
#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

using vsysfs::core::ConfigError;

// Two nodes of 64 MiB (16384 pages each); this guest is their 128 MiB of a
// 256 MiB maximum on a 512 MiB host with one other domain of 128 MiB, so
// 256 MiB of the host is free.
constexpr std::string_view kNuma =
    "[numa]\n"
    "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 64\n"
    "[[numa.node]]\ncpus = \"1\"\nmemory_mb = 64\n";

// The scenarios below count every node page as the balloon's to take:
// they pin kernel_memory to 0 unless xen_extra sets it (the default, 1/64
// of each node, is xen_balloon_kernel_test.cpp's).
std::string numa_machine(std::string_view xen_extra = "") {
  std::string s(kNuma);
  s.append("[xen]\nhost_memory = \"512M\"\nmax_memory = \"256M\"\ndriver = \"workqueue\"\n"
           "max_retry_count = 0\n");
  if (xen_extra.find("kernel_memory") == std::string_view::npos) s.append("kernel_memory = 0\n");
  s.append(xen_extra);
  s.append("[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"128M\"\n");
  return s;
}

// "Node N <label>:   <kb> kB" from nodeN/meminfo.
std::uint64_t node_kb(TestMachine& m, int nid, std::string_view label) {
  std::istringstream in(m.read("devices/system/node/node" + std::to_string(nid) + "/meminfo"));
  std::string line;
  const std::string want = std::string(label) + ":";
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string node, id, name;
    std::uint64_t kb = 0;
    f >> node >> id >> name >> kb;
    if (name == want) return kb;
  }
  FAIL("no " << label << " in node" << nid << "/meminfo");
  return 0;
}

// The sum over every node the machine has.
std::uint64_t nodes_kb(TestMachine& m, std::string_view label) {
  std::uint64_t sum = 0;
  for (int nid = 0; m.exists("devices/system/node/node" + std::to_string(nid)); ++nid)
    sum += node_kb(m, nid, label);
  return sum;
}

// The two invariants of the issue, checked together.
void check_accounts(TestMachine& m) {
  CHECK(current_kb(m) == nodes_kb(m, "MemTotal"));
  CHECK(memory_consistent(m));
}

// One balloon step: a new target at most one batch (512 pages, 2048 KiB)
// away, and the worker run at once.
void step_to(TestMachine& m, std::uint64_t target_kb) {
  REQUIRE(m.write(dev("target_kb"), std::to_string(target_kb) + "\n") > 0);
  m.advance_ms(0);
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("NUMA guest: boots with its nodes' memory; used_kb gives way to numa/alloc") {
  TestMachine m(numa_machine());
  CHECK(current_kb(m) == 131072);
  CHECK(nodes_kb(m, "MemTotal") == 131072);
  CHECK(m.read(dev("info/low_kb")) == "131072\n");  // 256 - 128 MiB in the balloon
  CHECK(read_u64(m, knob("guest/max_kb")) == 262144);
  CHECK(read_u64(m, knob("guest/free_kb")) == nodes_kb(m, "MemFree"));
  CHECK(m.open_errno(knob("guest/used_kb"), O_RDONLY) == -ENOENT);
  check_accounts(m);
  // The numa workload is what the balloon's free pages come from.
  REQUIRE(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1000 cpu=0\n") > 0);
  CHECK(read_u64(m, knob("guest/free_kb")) == 131072 - 4000);
  CHECK(read_u64(m, knob("guest/free_kb")) == nodes_kb(m, "MemFree"));
  check_accounts(m);
}

TEST_CASE("NUMA guest: ballooning up, one batch at a time, spreads new pages over the nodes") {
  TestMachine m(numa_machine());
  std::uint64_t target = 131072;
  while (target < 262144) {
    target += 2048;
    step_to(m, target);
    CAPTURE(target);
    REQUIRE(current_kb(m) == target);
    check_accounts(m);
    // Round robin one page at a time: the nodes never differ by more
    // than one page.
    const std::uint64_t n0 = node_kb(m, 0, "MemTotal"), n1 = node_kb(m, 1, "MemTotal");
    CHECK((n0 > n1 ? n0 - n1 : n1 - n0) <= 4);
  }
  CHECK(node_kb(m, 0, "MemTotal") == 131072);
  CHECK(node_kb(m, 1, "MemTotal") == 131072);
  CHECK(nodes_kb(m, "MemFree") == 262144);
  CHECK(m.read(dev("info/low_kb")) == "0\n");
}

TEST_CASE("NUMA guest: round robin of odd grants alternates the node that gets the extra page") {
  TestMachine m(numa_machine());
  step_to(m, 131072 + 12);  // 3 pages
  CHECK(node_kb(m, 0, "MemTotal") == 65536 + 8);
  CHECK(node_kb(m, 1, "MemTotal") == 65536 + 4);
  step_to(m, 131072 + 24);  // 3 more
  CHECK(node_kb(m, 0, "MemTotal") == 65536 + 12);
  CHECK(node_kb(m, 1, "MemTotal") == 65536 + 12);
  check_accounts(m);
}

TEST_CASE("NUMA guest: ballooning down takes node 0's free pages first, then node 1's") {
  TestMachine m(numa_machine());
  std::uint64_t target = 131072;
  while (target > 16384) {
    target -= 2048;
    step_to(m, target);
    CAPTURE(target);
    REQUIRE(current_kb(m) == target);
    check_accounts(m);
    // Node 0's zonelist (0, 1) is the order: node 1 gives nothing until
    // node 0 is empty.
    if (target >= 65536) CHECK(node_kb(m, 1, "MemTotal") == 65536);
  }
  CHECK(node_kb(m, 0, "MemTotal") == 0);
  CHECK(node_kb(m, 1, "MemTotal") == 16384);
  CHECK(m.read(dev("info/low_kb")) == std::to_string(262144 - 16384) + "\n");
  // Node 0 has no managed page left, but ballooning is no memory hotplug:
  // it stays in N_MEMORY and in every zonelist, and an allocation bound to
  // it fails for want of pages (ENOMEM), not for an empty node set.
  CHECK(m.read("devices/system/node/has_memory") == "0-1\n");
  CHECK(m.read("devices/system/node/has_normal_memory") == "0-1\n");
  CHECK(m.read("kernel/debug/vsysfs/numa/zonelists") ==
        "Fallback order for Node 0: 0 1 \nFallback order for Node 1: 1 0 \n");
  CHECK(m.write("kernel/debug/vsysfs/numa/alloc", "pages=1 cpu=0 policy=bind:0\n") == -ENOMEM);

  // Back up: the ballooned pfns return to the nodes they came from, node 0
  // first (it gave first), before any new page is spread.
  while (target < 131072) {
    target += 2048;
    step_to(m, target);
    CAPTURE(target);
    REQUIRE(current_kb(m) == target);
    check_accounts(m);
  }
  CHECK(node_kb(m, 0, "MemTotal") == 65536);
  CHECK(node_kb(m, 1, "MemTotal") == 65536);
  CHECK(m.read("devices/system/node/has_memory") == "0-1\n");
}

TEST_CASE("NUMA guest: with no free node pages ballooning down waits (EAGAIN) and resumes") {
  TestMachine m(numa_machine());
  // The workload takes all but 100 pages of node 0 and all of node 1.
  REQUIRE(m.write("kernel/debug/vsysfs/numa/alloc", "pages=16284 cpu=0 policy=bind:0\n") > 0);
  REQUIRE(m.write("kernel/debug/vsysfs/numa/alloc", "pages=16384 cpu=1 policy=bind:1\n") > 0);
  const std::uint64_t id = read_u64(m, "kernel/debug/vsysfs/numa/last_alloc_id");
  CHECK(nodes_kb(m, "MemFree") == 400);

  REQUIRE(m.write(dev("target_kb"), "65536\n") > 0);
  m.advance_ms(0);
  auto s = m.events_of("xen_balloon", "step");
  REQUIRE(!s.empty());
  CHECK(s.back().result == "EAGAIN");
  CHECK(s.back().field("requested") == "512");
  CHECK(s.back().field("granted") == "100");
  CHECK(current_kb(m) == 131072 - 400);
  CHECK(node_kb(m, 0, "MemFree") == 0);
  CHECK(m.read(knob("guest/state")) == "EAGAIN\n");
  check_accounts(m);

  // The retries find nothing and change nothing.
  for (int i = 0; i < 10; ++i) {
    m.advance_ms(1000);
    CHECK(current_kb(m) == 131072 - 400);
    check_accounts(m);
  }
  CHECK(m.events_of("xen_balloon", "step").back().field("granted") == "0");

  // The workload frees node 1's pages: the next retry goes on down.
  REQUIRE(m.write("kernel/debug/vsysfs/numa/free", std::to_string(id) + "\n") > 0);
  for (int i = 0; i < 64 && current_kb(m) != 65536; ++i) {
    m.advance_ms(1000);
    check_accounts(m);
  }
  CHECK(current_kb(m) == 65536);
  CHECK(node_kb(m, 0, "MemTotal") == 65536 - 400);
  CHECK(node_kb(m, 1, "MemTotal") == 400);
  CHECK(m.read(knob("guest/state")) == "DONE\n");
}

TEST_CASE("NUMA guest: [xen] memory must be the nodes' total; no used key") {
  CHECK_NOTHROW(TestMachine(numa_machine("memory = \"128M\"\n")));
  CHECK_THROWS_WITH_AS(TestMachine(numa_machine("memory = \"64M\"\n")),
                       doctest::Contains("memory"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine(numa_machine("used = \"16M\"\n")),
                       doctest::Contains("used"), ConfigError);
  // A maximum below the nodes' memory is refused too.
  CHECK_THROWS_AS(TestMachine(std::string(kNuma).append("[xen]\nmax_memory = \"64M\"\n")),
                  ConfigError);
}

TEST_CASE("every machines/*.toml loads, and the built-in default is machines/default.toml") {
  // Run from the source tree (as make runs the tests).
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("machines")) {
    if (entry.path().extension() != ".toml") continue;
    CAPTURE(entry.path().string());
    std::ifstream in(entry.path());
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    if (entry.path().filename() == "default.toml")
      // (the generated raw string starts with the newline after its opening)
      CHECK(s.str() == vsysfs::devices::default_machine_toml().substr(1));
    CHECK_NOTHROW(TestMachine{s.str()});
    ++count;
  }
  CHECK(count >= 7);
  // The default machine's dom0 is its one 16 GiB node, the vNUMA guest its
  // two 8 GiB nodes, and the host adds up.
  TestMachine m(vsysfs::devices::default_machine_toml());
  CHECK(current_kb(m) == 16777216);
  CHECK(node_kb(m, 0, "MemTotal") == 16777216);
  check_accounts(m);
  TestMachine g(vsysfs::testing::machine_file_text("xen-guest-vnuma.toml"));
  CHECK(current_kb(g) == 16777216);
  CHECK(node_kb(g, 1, "MemTotal") == 8388608);
  check_accounts(g);
}

TEST_CASE("NUMA guest: concurrent targets, numa workload, readers and worker keep the accounts") {
  using namespace vsysfs;
  core::SystemClock clock;
  core::EventLog events{clock};
  core::Env env{clock, events};
  devices::NumaConfig cfg;
  cfg.nodes = {{.cpus = {0}, .present_pages = 16384}, {.cpus = {1}, .present_pages = 16384}};
  auto numa = std::make_shared<devices::NumaModel>(cfg);
  constexpr std::uint64_t kMiB = 256;  // pages
  devices::XenHypervisor::DomainSpec guest{"guest", 1, 128 * kMiB, 128 * kMiB, 256 * kMiB, 0};
  std::vector<devices::XenHypervisor::DomainSpec> others = {
      {"other", 2, 300 * kMiB, 300 * kMiB, 400 * kMiB, 40 * kMiB}};
  auto hv = std::make_shared<devices::XenHypervisor>(env, 512 * kMiB, guest, others);
  devices::XenBalloon::Params params;
  params.target_pages = 128 * kMiB;
  params.max_schedule_delay = 0;  // retry every 4 ms: keep the worker busy
  auto balloon = std::make_shared<devices::XenBalloon>(
      env, hv, devices::XenGuestMemory(numa, 256 * kMiB), params);
  auto domain = hv->other_domains().at(0);
  clock.start();
  hv->start();

  const core::Caller root = core::Caller::root();
  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // the toolstack moves this guest's target
    std::mt19937 rng(1);
    for (int i = 0; i < 300; ++i) {
      (void)balloon->target_kb_store(root, std::to_string((16 + rng() % 240) * 1024) + "\n");
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  threads.emplace_back([&] {  // host pressure comes and goes
    for (int i = 0; !stop; ++i) {
      (void)domain->target_kb_store(root, i % 3 ? "204800\n" : "307200\n");
      std::this_thread::sleep_for(std::chrono::microseconds(700));
    }
  });
  threads.emplace_back([&] {  // the guest's workload on both nodes
    std::mt19937 rng(2);
    std::vector<std::uint64_t> live;
    for (int i = 0; !stop; ++i) {
      if (live.size() < 8 && rng() % 2) {
        devices::AllocRequest req;
        req.cpu = rng() % 2;
        req.pages = 1 + rng() % 4096;
        if (auto a = numa->alloc(req)) live.push_back(a->id);
      } else if (!live.empty()) {
        (void)numa->free(live.back());
        live.pop_back();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(400));
    }
  });
  threads.emplace_back([&] {  // readers
    while (!stop) {
      (void)testing::show(*balloon, "info/current_kb");
      (void)testing::show(*balloon, "free_kb", devices::XenBalloon::knob_groups());
      (void)numa->node(0);
      if (!hv->consistent()) ++inconsistent;
    }
  });
  threads[0].join();
  stop = true;
  for (std::size_t i = 1; i < threads.size(); ++i) threads[i].join();

  CHECK(inconsistent == 0);
  CHECK(hv->consistent());
  CHECK(balloon->accounts_agree());  // guest current = sum of node present = Xen's view
  CHECK(devices::XenGuestMemory::numa_total_pages(*numa) == hv->domain_current_pages(1));
  balloon.reset();
  hv.reset();
}

}  // TEST_SUITE
