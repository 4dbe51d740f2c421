// Batched traffic (devices/net/netdev_traffic_batch.cpp) against frame by
// frame: two identical machines run the same seeded random scenario, one
// with every traffic knob batching (the default), one sending frame by
// frame (NetKnobs::set_batching(false)); after every step every
// observable must be the same on both:
//  * every readable file of every interface (statistics, queues/tx-N with
//    tx_timeout and byte_queue_limits, flags, carrier, operstate, ...) and
//    of its knobs (traffic with sent/stalls/achieved/lag, mmio's bus
//    counters, faults, link, ordering);
//  * what the files do not show: each NIC's ring in use and hardware
//    head, the queue's stop bits, trans_start, NAPI polls, the number of
//    armed timers and the deadline of the generator's timer;
//  * the event log: time, device, what, result and data of every event.
// Steps: traffic settings (rates from 100/s to past the line rate, frame
// sizes 14..1514, counts, 1..4 CPUs) and start/stop, clock advances of
// random lengths (1 us .. 50 ms, log-uniform), link up/down, flags
// down/up, mtu stores, hang_tx, drop_rx, ordering posted/flush, and
// K/fail/net_xmit and net_rx armed with random kinds, probabilities, times
// and ifaces lists (batches stand aside only while a point may fail for
// the sender or its peer: FaultInjection::may_fail_iface).
//
// Runs VSYSFS_NET_BATCH_RUNS seeds (default 8, 2 in a sanitizer build) of
// VSYSFS_RANDOM_STEPS steps (default 160); VSYSFS_RANDOM_SEED=N runs seed
// N only.

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "devices/net/netdev.hpp"
#include "devices/net/netdev_knobs.hpp"
#include "devices/net/netdev_nic.hpp"
#include "tests/random/random_seq.hpp"
#include "tests/support/test_env.hpp"

namespace rnd = vsysfs::testing::rnd;
using vsysfs::devices::NetDevice;
using vsysfs::devices::NetKnobs;
using vsysfs::devices::VnicDriver;
using vsysfs::testing::TestMachine;

namespace {

// eth0 <-> eth1: 1 Gb/s, netif_tx_lock, a ring of 64; eth2 <-> eth3: LLTX
// with BQL, 100 Mb/s, a ring of 8; eth4 <-> eth5: BQL, 1 Gb/s, 256 slots
// (the default machine's NIC); lo (batches leave it frame by frame).
constexpr const char* kMachine = R"(
[net]
nr_cpu_ids = 4
[[net.interface]]
name = "lo"
kind = "loopback"
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
mac = "52:54:00:00:00:01"
max_mtu = 9000
ring_size = 64
watchdog_timeo_ms = 40
peer = "eth1"
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
mac = "52:54:00:00:00:02"
max_mtu = 9000
ring_size = 64
watchdog_timeo_ms = 70
[[net.interface]]
name = "eth2"
pci = "0000:00:05.0"
mac = "52:54:00:00:00:03"
speed = 100
ring_size = 8
lltx = true
bql = true
watchdog_timeo_ms = 30
mmio_seed = 7
peer = "eth3"
[[net.interface]]
name = "eth3"
pci = "0000:00:06.0"
mac = "52:54:00:00:00:04"
speed = 100
ring_size = 8
lltx = true
bql = true
mmio_seed = 9
[[net.interface]]
name = "eth4"
pci = "0000:00:07.0"
mac = "52:54:00:00:00:05"
bql = true
watchdog_timeo_ms = 50
mmio_seed = 11
peer = "eth5"
[[net.interface]]
name = "eth5"
pci = "0000:00:08.0"
mac = "52:54:00:00:00:06"
bql = true
mmio_seed = 13
)";

struct If {
  const char* name;
  const char* dir;  // mount-relative
};
constexpr If kIfs[] = {
    {"lo", "devices/virtual/net/lo"},
    {"eth0", "devices/pci0000:00/0000:00:03.0/net/eth0"},
    {"eth1", "devices/pci0000:00/0000:00:04.0/net/eth1"},
    {"eth2", "devices/pci0000:00/0000:00:05.0/net/eth2"},
    {"eth3", "devices/pci0000:00/0000:00:06.0/net/eth3"},
    {"eth4", "devices/pci0000:00/0000:00:07.0/net/eth4"},
    {"eth5", "devices/pci0000:00/0000:00:08.0/net/eth5"},
};
const std::string kKnobs = "kernel/debug/vsysfs/net/";

struct Step {
  enum Kind { write, advance, fault } kind;
  std::string path, data;
  std::uint64_t n = 0;  // advance: ns; fault: point (0 net_xmit, 1 net_rx)
  std::uint64_t kind2 = 0, prob = 0;
  std::int64_t times = 0;
  std::string ifaces = {};  // the point's ifaces list: "" (every interface) or one name
};

std::string describe(const Step& s) {
  switch (s.kind) {
    case Step::write:
      return fmt::format("write {} <- {:?}", s.path, s.data);
    case Step::advance:
      return fmt::format("advance {} ns", s.n);
    case Step::fault:
      return fmt::format("arm {} kind {} probability {} times {} ifaces {:?}",
                         s.n ? "net_rx" : "net_xmit", s.kind2, s.prob, s.times, s.ifaces);
  }
  return {};
}

std::vector<Step> generate(std::uint64_t seed, std::size_t count) {
  rnd::Gen g(seed);
  std::vector<Step> steps;
  const char* nics[] = {"eth0", "eth1", "eth2", "eth3", "eth4", "eth5"};
  while (steps.size() < count) {
    const std::uint64_t r = g.below(100);
    const std::size_t which = g.below(6);
    const std::string nic = nics[which];
    const If& itf = kIfs[1 + which];
    const std::string k = kKnobs + nic + "/";
    if (r < 40) {
      // Mostly short steps (a batch ends at an advance), some long.
      const double e = std::uniform_real_distribution<double>(3.0, 7.7)(g.engine());
      steps.push_back({Step::advance, "", "", static_cast<std::uint64_t>(std::pow(10.0, e))});
    } else if (r < 58) {
      // 64-byte frames at 1 Gb/s: 1420454/s is the line rate; up to 3 Mpps
      // fills the ring and stops the queue.
      const bool endless = g.below(3) == 0;
      const std::uint64_t cnt = endless ? 0 : g.between(1, 20000);
      const std::uint64_t rate = g.chance(0.3) ? 1420454 : g.between(100, 3000000);
      const std::uint64_t size = g.chance(0.5) ? 64 : g.between(14, 1514);
      steps.push_back(
          {Step::write, k + "traffic",
           fmt::format("count {} size {} rate {} cpus {}", cnt, size, rate, g.between(1, 4)), 0});
      steps.push_back({Step::write, k + "traffic", "start", 0});
    } else if (r < 62) {
      steps.push_back({Step::write, k + "traffic", "stop", 0});
    } else if (r < 67) {
      steps.push_back({Step::write, k + "link", g.chance(0.6) ? "up" : "down", 0});
    } else if (r < 71) {
      steps.push_back({Step::write, k + "faults", g.chance(0.4) ? "hang_tx 1" : "hang_tx 0", 0});
    } else if (r < 74) {
      steps.push_back({Step::write, k + "faults",
                       fmt::format("drop_rx {}", g.chance(0.5) ? 0 : g.below(5)), 0});
    } else if (r < 77) {
      steps.push_back({Step::write, k + "ordering", g.chance(0.25) ? "posted" : "flush", 0});
    } else if (r < 83) {
      steps.push_back(
          {Step::write, std::string(itf.dir) + "/flags", g.below(3) != 0 ? "0x1003" : "0x1002", 0});
    } else if (r < 87) {
      steps.push_back({Step::write, std::string(itf.dir) + "/mtu",
                       std::to_string(g.below(4) == 0 ? g.below(68) : g.between(68, 9100)), 0});
    } else if (r < 93) {
      Step s{Step::fault, "", "", g.below(2)};
      s.kind2 = g.below(3);
      // Armed half of the time: while a point is armed, batches stand aside.
      s.prob = g.chance(0.5) ? 0 : g.between(1, 100);
      s.times = g.chance(0.5) ? -1 : static_cast<std::int64_t>(g.between(1, 50));
      if (g.chance(0.5)) s.ifaces = nic;
      steps.push_back(s);
    } else {
      steps.push_back({Step::write, "kernel/debug/vsysfs/net/lo/traffic",
                       g.chance(0.5) ? "count 300 size 64 rate 200000" : "start", 0});
    }
  }
  steps.resize(count);
  return steps;
}

void apply(TestMachine& m, const Step& s) {
  switch (s.kind) {
    case Step::write:
      (void)m.write(s.path, s.data);
      break;
    case Step::advance:
      m.clock.advance(std::chrono::nanoseconds(s.n));
      break;
    case Step::fault: {
      using vsysfs::core::FaultPoint;
      using vsysfs::core::FaultSettings;
      const FaultPoint p = s.n ? FaultPoint::NetRx : FaultPoint::NetXmit;
      if (s.n) {
        m.faults.set(
            p, &FaultSettings::rx_kind,
            s.kind2 % 2 ? vsysfs::core::NetRxFault::Corrupt : vsysfs::core::NetRxFault::Drop);
      } else {
        const vsysfs::core::NetXmitFault k[] = {vsysfs::core::NetXmitFault::Busy,
                                                vsysfs::core::NetXmitFault::Drop,
                                                vsysfs::core::NetXmitFault::Hang};
        m.faults.set(p, &FaultSettings::xmit_kind, k[s.kind2]);
      }
      m.faults.set(p, &FaultSettings::times, static_cast<int>(s.times));
      m.faults.set_paths(
          p, s.ifaces.empty() ? std::vector<std::string>{} : std::vector<std::string>{s.ifaces});
      m.faults.set(p, &FaultSettings::probability, static_cast<unsigned long>(s.prob));
      break;
    }
  }
}

NetKnobs* knobs_of(TestMachine& m, const char* ifname) {
  auto node = m.tree.find(kKnobs + ifname + "/traffic");
  return node ? static_cast<NetKnobs*>(node->dev) : nullptr;
}

// Everything the two machines must agree on, one "name value" a line.
std::string observe(TestMachine& m, const std::vector<std::string>& files) {
  std::string out;
  for (const auto& f : files) out += f + ": " + m.read(f) + "\n";
  for (const If& itf : kIfs) {
    auto node = m.tree.find(std::string(itf.dir) + "/mtu");
    if (!node) continue;
    const auto* dev = static_cast<const NetDevice*>(node->dev);
    out += fmt::format("{}: xoff {} tx_stopped {} trans_start {} napi_polls {} napi {}\n", itf.name,
                       dev->netif_queue_stopped(), dev->netif_tx_queue_stopped(),
                       dev->trans_start().count(), dev->napi_polls(), dev->napi_scheduled());
    if (const auto* drv = dynamic_cast<const VnicDriver*>(&dev->ops()))
      out +=
          fmt::format("{}: ring {} hw_completed {} rx_pending {}\n", itf.name, drv->ring_in_use(),
                      drv->hardware().completed(), drv->hardware().rx_pending());
  }
  out += fmt::format("timers {} now {}\n", m.clock.pending_timers(), m.clock.now().count());
  return out;
}

std::string events_since(TestMachine& m, std::uint64_t* seen) {
  std::string out;
  for (const auto& e : m.events.snapshot()) {
    if (e.seq <= *seen) continue;
    *seen = e.seq;
    out += fmt::format("{} {} {} {}", e.time.count(), e.device, e.what, e.result);
    for (const auto& d : e.data) out += " " + d.key + "=" + d.json;
    out += "\n";
  }
  return out;
}

// The first line where a and b differ.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  while (true) {
    const bool ga = static_cast<bool>(std::getline(sa, la));
    const bool gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return {};
    if (!ga || !gb || la != lb)
      return fmt::format("batched:        {}\nframe by frame: {}", ga ? la : "(end)",
                         gb ? lb : "(end)");
  }
}

struct Outcome {
  std::string failure;
  std::uint64_t frames = 0, batched = 0;
};

Outcome run(std::uint64_t seed, std::size_t nsteps) {
  TestMachine batched(kMachine), single(kMachine);
  for (const If& itf : kIfs) {
    if (auto* k = knobs_of(single, itf.name)) k->set_batching(false);
    if (auto* k = knobs_of(batched, itf.name)) REQUIRE(k->batching());
  }
  std::vector<std::string> prefixes;
  for (const If& itf : kIfs) {
    prefixes.emplace_back(itf.dir);
    prefixes.push_back(kKnobs + itf.name);
  }
  const auto files = rnd::readable_files(batched, prefixes);
  REQUIRE(files.size() > 100);
  std::uint64_t seen_b = 0, seen_s = 0;
  Outcome o;
  const auto steps = generate(seed, nsteps);
  for (std::size_t i = 0; i <= steps.size(); ++i) {
    if (i > 0) {
      apply(batched, steps[i - 1]);
      apply(single, steps[i - 1]);
    }
    const std::string a = observe(batched, files) + events_since(batched, &seen_b);
    const std::string b = observe(single, files) + events_since(single, &seen_s);
    if (a != b) {
      std::string trail;
      for (std::size_t j = 0; j < i; ++j)
        trail += fmt::format("  {:3} {}\n", j, describe(steps[j]));
      o.failure =
          fmt::format("seed {} step {} ({}):\n{}\nsteps:\n{}", seed, i ? i - 1 : 0,
                      i ? describe(steps[i - 1]) : "initial", first_difference(a, b), trail);
      return o;
    }
  }
  for (const If& itf : kIfs) {
    const auto tx = rnd::num(single.read(std::string(itf.dir) + "/statistics/tx_packets"));
    o.frames += tx.value_or(0);
    if (auto* k = knobs_of(batched, itf.name)) o.batched += k->batched_frames();
    if (auto* k = knobs_of(single, itf.name)) CHECK(k->batched_frames() == 0);
  }
  return o;
}

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("traffic batches: seeded random scenarios give frame-by-frame's every observable") {
  const std::uint64_t only = rnd::seed_from_env(0);
  const char* runs_env = std::getenv("VSYSFS_NET_BATCH_RUNS");
  const std::uint64_t runs = only                    ? 1
                             : runs_env && *runs_env ? std::strtoull(runs_env, nullptr, 0)
                             : rnd::kSanitized       ? 1
                                                     : 8;
  const std::size_t steps = rnd::steps_from_env(rnd::kThreadSanitized ? 40 : 160);
  std::uint64_t frames = 0, batched = 0;
  for (std::uint64_t i = 0; i < runs; ++i) {
    const auto o = run(only ? only : i + 1, steps);
    if (!o.failure.empty()) FAIL(o.failure);
    frames += o.frames;
    batched += o.batched;
  }
  MESSAGE("frames sent in all runs: " << frames << ", of them in batches: " << batched);
  // The scenarios reach the batches (most frames), and the frame-by-frame
  // machine never batches.
  if (!only && runs >= 8 && steps >= 160) {
    CHECK(frames > 100000);
    CHECK(batched > frames / 2);
  }
}

TEST_CASE("traffic batches: line rate between two NICs, long steps") {
  // The bench's case: 64-byte frames at the line rate on eth4 -> eth5
  // (BQL), advanced in steps of 1..37 ms; batched and frame by frame agree
  // at every step, and the run sends on schedule.
  TestMachine batched(kMachine), single(kMachine);
  knobs_of(single, "eth4")->set_batching(false);
  std::vector<std::string> prefixes;
  for (const If& itf : kIfs) {
    prefixes.emplace_back(itf.dir);
    prefixes.push_back(kKnobs + itf.name);
  }
  const auto files = rnd::readable_files(batched, prefixes);
  std::uint64_t seen_b = 0, seen_s = 0;
  for (TestMachine* m : {&batched, &single}) {
    REQUIRE(m->write(kKnobs + "eth4/traffic", "count 0 size 64 rate 1420454") > 0);
    REQUIRE(m->write(kKnobs + "eth4/traffic", "start") > 0);
  }
  // 246 ms of line rate (349,000 frames each way); 34 ms under TSan.
  const int nsteps = rnd::kThreadSanitized ? 4 : 12;
  for (int i = 1; i <= nsteps; ++i) {
    for (TestMachine* m : {&batched, &single})
      m->advance_ms(static_cast<std::uint64_t>(i * 3 % 37 + 1));
    const std::string a = observe(batched, files) + events_since(batched, &seen_b);
    const std::string b = observe(single, files) + events_since(single, &seen_s);
    const std::string diff = first_difference(a, b);
    INFO("step " << i << "\n" << diff);
    REQUIRE(diff.empty());
  }
  const auto sent = rnd::field(batched.read(kKnobs + "eth4/traffic"), "sent");
  REQUIRE(sent);
  CHECK(*sent > (rnd::kThreadSanitized ? 40000U : 100000U));
  CHECK(rnd::field(batched.read(kKnobs + "eth4/traffic"), "lag_ns") == 0);
  // Nearly every frame went in a batch (a batch ends at each step and
  // before each watchdog run; the frame that ends it goes alone).
  CHECK(knobs_of(batched, "eth4")->batched_frames() > *sent * 9 / 10);
}

}  // TEST_SUITE("netdev")
