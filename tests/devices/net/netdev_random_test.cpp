// Seeded random operations on an in-process network machine, with the
// net family's invariants checked after every step.
//
// Machine: lo; eth0 <-> eth1 (netif_tx_lock drivers, small rings, a slow
// link so the ring fills); eth2 <-> eth3 (LLTX drivers with BQL). Steps go
// through the files as a user's writes would (fs::Server, no mount):
// traffic run settings/start/stop, the link knob, the DMA hang fault,
// flags down/up, the carrier switched in software (carrier, proto_down),
// mtu stores (valid and not), and clock advances of random sizes (1 us ..
// 3 s, log-uniform).
//
// Invariants, after every step:
//  1. conservation on each cable: tx_packets of one end == rx_packets +
//     rx_dropped + rx_missed_errors of the other, plus the frames in
//     flight (the receiver's RX ring, which NAPI has drained by the time a
//     step returns: asserted empty);
//  2. nothing reaches the driver of a NIC in a step it began down
//     (!IFF_UP) or without carrier (its ring does not grow), and no TX
//     counter (tx_packets/bytes/errors/dropped) moves; with the carrier
//     switched off in software while the PHY has link, the frames already
//     in the ring may still leave and count, nothing more;
//  3. with the flushing read (the default ordering) no doorbell reaches a
//     device backwards;
//  4. the watchdog fires exactly when a stopped queue made no progress for
//     watchdog_timeo: every tx_timeout event reports exactly watchdog_timeo
//     since the last transmit, their number equals queues/tx-0/tx_timeout,
//     and no running queue with carrier is left stopped for watchdog_timeo
//     or longer;
//  5. ring state: a NIC that is down has an empty ring and an empty
//     hardware ring (head == tail == 0 after its reset); in use <= size;
//  6. stores: mtu reads back what was accepted, bad input (EINVAL) changes
//     nothing; traffic start is ENETDOWN exactly when down, EBUSY exactly
//     when running.
//
// Runs VSYSFS_NET_RANDOM_RUNS seeds (default 24) of VSYSFS_NET_RANDOM_STEPS
// steps (default 300) from seed 1; VSYSFS_NET_RANDOM_SEED=N runs seed N
// only. A failure prints the seed and every step up to the failing one.

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "devices/net/netdev.hpp"
#include "devices/net/netdev_nic.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::devices::NetDevice;
using vsysfs::devices::VnicDriver;
using vsysfs::testing::TestMachine;

namespace {

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
speed = 10
ring_size = 16
watchdog_timeo_ms = 500
change_carrier = true
change_proto_down = true
peer = "eth1"
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
mac = "52:54:00:00:00:02"
max_mtu = 9000
speed = 10
ring_size = 16
watchdog_timeo_ms = 700
[[net.interface]]
name = "eth2"
pci = "0000:00:05.0"
mac = "52:54:00:00:00:03"
max_mtu = 9000
speed = 100
ring_size = 8
lltx = true
bql = true
watchdog_timeo_ms = 300
change_carrier = true
change_proto_down = true
mmio_seed = 7
peer = "eth3"
[[net.interface]]
name = "eth3"
pci = "0000:00:06.0"
mac = "52:54:00:00:00:04"
max_mtu = 9000
speed = 100
ring_size = 8
lltx = true
bql = true
mmio_seed = 9
)";

const char* const kKnobs = "kernel/debug/vsysfs/net/";

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 0) : fallback;
}

struct Nic {
  std::string name, dir, peer;
  unsigned ring = 0;
  std::int64_t timeo_ms = 0;
  NetDevice* dev = nullptr;
  VnicDriver* drv = nullptr;
  int mtu = 1500;  // the model's expectation
};

struct Counters {
  std::uint64_t tx_packets, tx_bytes, tx_errors, tx_dropped, rx_packets, rx_dropped, rx_missed;
};

class Run {
 public:
  explicit Run(std::uint64_t seed) : seed_(seed), rng_(seed) {
    const char* names[] = {"eth0", "eth1", "eth2", "eth3"};
    const char* slots[] = {"0000:00:03.0", "0000:00:04.0", "0000:00:05.0", "0000:00:06.0"};
    const char* peers[] = {"eth1", "eth0", "eth3", "eth2"};
    const unsigned rings[] = {16, 16, 8, 8};
    const std::int64_t timeos[] = {500, 700, 300, 5000};
    for (int i = 0; i < 4; ++i) {
      Nic n;
      n.name = names[i];
      n.dir = std::string("devices/pci0000:00/") + slots[i] + "/net/" + names[i] + "/";
      n.peer = peers[i];
      n.ring = rings[i];
      n.timeo_ms = timeos[i];
      auto node = m_.tree.find(n.dir + "mtu");
      REQUIRE(node);
      n.dev = static_cast<NetDevice*>(node->dev);
      n.drv = dynamic_cast<VnicDriver*>(&n.dev->ops());
      REQUIRE(n.drv);
      nics_.push_back(n);
    }
  }

  // What the run exercised (the test asserts the seeds reach each case).
  struct Coverage {
    std::uint64_t timeouts = 0, frozen_steps = 0, stopped_queues = 0, frames = 0, downs_in_flight = 0;
  };
  const Coverage& coverage() const { return cov_; }

  // Runs `steps` random steps; "" or the failure, with the step list.
  std::string go(unsigned steps) {
    for (unsigned i = 0; i < steps; ++i) {
      const std::string failure = step();
      if (!failure.empty()) {
        std::ostringstream os;
        os << "seed " << seed_ << " failed at step " << i << ": " << failure
           << "\nsteps (reproduce: VSYSFS_NET_RANDOM_SEED=" << seed_ << "):\n";
        for (std::size_t j = 0; j < log_.size(); ++j) os << "  " << j << ": " << log_[j] << "\n";
        return os.str();
      }
    }
    return {};
  }

 private:
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng_);
  }
  Nic& any_nic() { return nics_[pick(0, nics_.size() - 1)]; }
  Nic& nic(const std::string& name) {
    for (auto& n : nics_)
      if (n.name == name) return n;
    FAIL("no nic " << name);
    return nics_[0];
  }

  std::uint64_t stat(const Nic& n, const char* name) {
    const std::string s = m_.read(n.dir + "statistics/" + name);
    return std::stoull(s);
  }
  Counters counters(const Nic& n) {
    return {stat(n, "tx_packets"), stat(n, "tx_bytes"),   stat(n, "tx_errors"),
            stat(n, "tx_dropped"), stat(n, "rx_packets"), stat(n, "rx_dropped"),
            stat(n, "rx_missed_errors")};
  }
  std::string knob(const Nic& n, const char* which) { return m_.read(kKnobs + n.name + "/" + which); }
  static std::uint64_t field(const std::string& text, const std::string& key) {
    const std::string s = "\n" + text;
    const auto at = s.find("\n" + key + " ");
    return at == std::string::npos ? ~0ULL : std::stoull(s.substr(at + key.size() + 2));
  }
  bool up(const Nic& n) const { return (n.dev->flags() & vsysfs::devices::IFF_UP) != 0; }
  bool transmitting(const Nic& n) const { return up(n) && n.dev->netif_carrier_ok(); }

  long write(const std::string& path, const std::string& data) { return m_.write(path, data); }

  std::string step() {
    // Which NICs may not transmit during this step (invariant 2).
    struct Frozen {
      Counters c;
      unsigned in_use;
      bool phy;  // the PHY has link: only a software carrier-off (carrier, proto_down)
    };
    std::map<std::string, Frozen> frozen;
    for (auto& n : nics_) {
      if (!transmitting(n))
        frozen[n.name] = {counters(n), n.drv->ring_in_use(), up(n) && n.drv->hardware().link_ok()};
      if (n.dev->netif_queue_stopped()) ++cov_.stopped_queues;
    }
    cov_.frozen_steps += frozen.empty() ? 0 : 1;

    std::string failure = do_op();
    if (!failure.empty()) return failure;

    for (auto& [name, f] : frozen) {
      const Counters& before = f.c;
      const Counters now = counters(nic(name));
      // Nothing reaches the driver: no new descriptor in the ring.
      const unsigned in_use = nic(name).drv->ring_in_use();
      if (in_use > f.in_use)
        return name + ": the ring grew from " + std::to_string(f.in_use) + " to " +
               std::to_string(in_use) + " while down or without carrier";
      // With the PHY link up and the carrier switched off in software, the
      // frames already in the ring may still leave (the MAC has link);
      // nothing else does, and the watchdog is off.
      const std::uint64_t may_leave = f.phy ? f.in_use : 0;
      if (now.tx_packets > before.tx_packets + may_leave || now.tx_packets < before.tx_packets ||
          now.tx_errors != before.tx_errors || now.tx_dropped != before.tx_dropped ||
          (now.tx_packets == before.tx_packets && now.tx_bytes != before.tx_bytes))
        return name + ": TX counters moved while it was down or without carrier (tx_packets " +
               std::to_string(before.tx_packets) + " -> " + std::to_string(now.tx_packets) +
               " with " + std::to_string(may_leave) + " in the ring, tx_errors " +
               std::to_string(before.tx_errors) + " -> " + std::to_string(now.tx_errors) +
               ", tx_dropped " + std::to_string(before.tx_dropped) + " -> " +
               std::to_string(now.tx_dropped) + ")";
    }
    return check();
  }

  std::string do_op() {
    const std::uint64_t r = pick(0, 99);
    Nic& n = any_nic();
    const std::string k = kKnobs + n.name + "/";
    if (r < 30) {  // advance the clock, 1 us .. 3 s, log-uniform
      const double e = std::uniform_real_distribution<double>(3.0, 9.48)(rng_);
      const auto ns = static_cast<std::int64_t>(std::pow(10.0, e));
      log_.push_back("advance " + std::to_string(ns) + " ns");
      m_.clock.advance(std::chrono::nanoseconds(ns));
      return {};
    }
    if (r < 48) {  // a traffic run: settings, then start
      // Bounded work: a run either has a count or a low rate.
      const bool endless = pick(0, 4) == 0;
      const std::uint64_t count = endless ? 0 : pick(1, 300);
      const std::uint64_t rate = endless ? pick(100, 5000) : pick(100, 300000);
      const std::uint64_t size = pick(14, 1500);
      const std::uint64_t cpus = pick(1, 4);
      const std::string settings = "count " + std::to_string(count) + " size " +
                                   std::to_string(size) + " rate " + std::to_string(rate) +
                                   " cpus " + std::to_string(cpus);
      const bool running = knob(n, "traffic").find("state stopped") == std::string::npos;
      log_.push_back(n.name + " traffic '" + settings + "' + start");
      const long w = write(k + "traffic", settings);
      if (running ? w != -EBUSY : w != static_cast<long>(settings.size()))
        return n.name + ": traffic settings store gave " + std::to_string(w) +
               (running ? " while running (want EBUSY)" : "");
      const long s = write(k + "traffic", "start");
      const long want = !up(n) ? -ENETDOWN : running ? -EBUSY : 5;
      if (s != want)
        return n.name + ": traffic start gave " + std::to_string(s) + ", want " +
               std::to_string(want);
      return {};
    }
    if (r < 54) {
      log_.push_back(n.name + " traffic stop");
      if (write(k + "traffic", "stop") != 4) return n.name + ": traffic stop failed";
      return {};
    }
    if (r < 66) {
      const bool cable = pick(0, 1) == 1;
      log_.push_back(n.name + " link " + (cable ? "up" : "down"));
      if (write(k + "link", cable ? "up" : "down") != (cable ? 2 : 4)) return "link store failed";
      return {};
    }
    if (r < 72) {
      const bool hang = pick(0, 1) == 0;
      log_.push_back(n.name + " faults hang_tx " + (hang ? "1" : "0"));
      if (write(k + "faults", hang ? "hang_tx 1" : "hang_tx 0") != 9) return "faults store failed";
      return {};
    }
    if (r < 80) {
      const bool want_up = pick(0, 2) != 0;
      const std::string v = want_up ? "0x1003" : "0x1002";
      log_.push_back(n.name + " flags " + v);
      if (!want_up && up(n) && n.drv->ring_in_use() != 0) ++cov_.downs_in_flight;
      if (write(n.dir + "flags", v) != 6) return n.name + ": flags store failed";
      if (up(n) != want_up) return n.name + ": flags did not take IFF_UP";
      return {};
    }
    if (r < 88) {
      // The carrier switched in software: the carrier file (ndo_change_carrier,
      // EINVAL while down) or proto_down (dev_change_proto_down). Only eth0
      // and eth2 have the ops; the others answer EOPNOTSUPP.
      const bool on = pick(0, 1) == 1;
      const bool proto = pick(0, 1) == 1;
      const bool has_op = n.name == "eth0" || n.name == "eth2";
      const std::string file = proto ? "proto_down" : "carrier";
      const std::string v = proto ? (on ? "0" : "1") : (on ? "1" : "0");
      log_.push_back(n.name + " " + file + " " + v);
      const long w = write(n.dir + file, v);
      const long want = !has_op ? -EOPNOTSUPP : (!proto && !up(n)) ? -EINVAL : 1;
      if (w != want)
        return n.name + ": " + file + " store gave " + std::to_string(w) + ", want " +
               std::to_string(want);
      if (w == 1 && n.dev->netif_carrier_ok() != on)
        return n.name + ": " + file + " " + v + " left the carrier " +
               (n.dev->netif_carrier_ok() ? "on" : "off");
      return {};
    }
    // mtu: valid or not
    const std::int64_t mtu = pick(0, 3) == 0 ? static_cast<std::int64_t>(pick(0, 67))
                                             : static_cast<std::int64_t>(pick(68, 9100));
    log_.push_back(n.name + " mtu " + std::to_string(mtu));
    const long w = write(n.dir + "mtu", std::to_string(mtu));
    const bool valid = mtu >= 68 && mtu <= 9000;
    if (valid ? w <= 0 : w != -EINVAL)
      return n.name + ": mtu " + std::to_string(mtu) + " store gave " + std::to_string(w);
    if (valid) n.mtu = static_cast<int>(mtu);
    return {};
  }

  std::string check() {
    const auto now = m_.clock.now();
    // New events since the last check.
    std::vector<vsysfs::core::Event> fresh;
    for (auto& e : m_.events.snapshot())
      if (e.seq > last_seq_) fresh.push_back(e);
    if (!fresh.empty()) last_seq_ = fresh.back().seq;

    for (auto& n : nics_) {
      const Counters c = counters(n);
      const Counters p = counters(nic(n.peer));
      // 1. conservation on the cable (the peer's RX ring counts as in flight
      //    and is empty once a step's timers have run).
      if (n.drv->hardware().rx_pending() && up(n))
        return n.name + ": RX ring not drained after the step";
      if (c.tx_packets != p.rx_packets + p.rx_dropped + p.rx_missed)
        return n.name + " -> " + n.peer + ": tx_packets " + std::to_string(c.tx_packets) +
               " != peer rx_packets " + std::to_string(p.rx_packets) + " + rx_dropped " +
               std::to_string(p.rx_dropped) + " + rx_missed " + std::to_string(p.rx_missed);
      cov_.frames = std::max(cov_.frames, c.tx_packets);
      // 3. doorbells
      const std::uint64_t back = field(knob(n, "mmio"), "doorbell_backwards");
      if (back != 0) return n.name + ": " + std::to_string(back) + " backward doorbells";
      // 4. watchdog
      for (auto& e : fresh) {
        if (e.device != n.name || e.what != "tx_timeout") continue;
        ++timeouts_[n.name];
        ++cov_.timeouts;
        if (e.field("timeout_ms") != std::to_string(n.timeo_ms))
          return n.name + ": watchdog fired after " + e.field("timeout_ms") + " ms, watchdog_timeo " +
                 std::to_string(n.timeo_ms) + " ms";
      }
      const std::string tt = m_.read(n.dir + "queues/tx-0/tx_timeout");
      if (std::stoull(tt) != timeouts_[n.name])
        return n.name + ": tx_timeout " + tt + " but " + std::to_string(timeouts_[n.name]) +
               " watchdog events";
      if (transmitting(n) && n.dev->netif_queue_stopped() &&
          now - n.dev->trans_start() >= std::chrono::milliseconds(n.timeo_ms))
        return n.name + ": queue stopped for " +
               std::to_string((now - n.dev->trans_start()).count()) +
               " ns with carrier, and the watchdog did not fire";
      // 5. ring state
      const unsigned in_use = n.drv->ring_in_use();
      if (in_use > n.ring) return n.name + ": ring in use " + std::to_string(in_use);
      if (!up(n) && (in_use != 0 || n.drv->hardware().completed() != 0))
        return n.name + ": down with ring in use " + std::to_string(in_use) + ", hardware head " +
               std::to_string(n.drv->hardware().completed());
      // 6. mtu
      if (m_.read(n.dir + "mtu") != std::to_string(n.mtu) + "\n")
        return n.name + ": mtu reads " + m_.read(n.dir + "mtu") + ", want " +
               std::to_string(n.mtu);
    }
    return {};
  }

  const std::uint64_t seed_;
  std::mt19937_64 rng_;
  TestMachine m_{kMachine};
  std::vector<Nic> nics_;
  std::vector<std::string> log_;
  std::uint64_t last_seq_ = 0;
  std::map<std::string, std::uint64_t> timeouts_;
  Coverage cov_;
};

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("random net operations keep the invariants (seeded)") {
  const std::uint64_t only = env_u64("VSYSFS_NET_RANDOM_SEED", 0);
  const std::uint64_t runs = only ? 1 : env_u64("VSYSFS_NET_RANDOM_RUNS", 24);
  const auto steps = static_cast<unsigned>(env_u64("VSYSFS_NET_RANDOM_STEPS", 300));
  Run::Coverage total;
  for (std::uint64_t i = 0; i < runs; ++i) {
    const std::uint64_t seed = only ? only : i + 1;
    Run run(seed);
    const std::string failure = run.go(steps);
    if (!failure.empty()) FAIL(failure);
    total.timeouts += run.coverage().timeouts;
    total.frozen_steps += run.coverage().frozen_steps;
    total.stopped_queues += run.coverage().stopped_queues;
    total.frames += run.coverage().frames;
    total.downs_in_flight += run.coverage().downs_in_flight;
  }
  MESSAGE("watchdog timeouts " << total.timeouts << ", steps with a NIC offline "
          << total.frozen_steps << ", stopped-queue sightings " << total.stopped_queues
          << ", downs with frames in the ring " << total.downs_in_flight
          << ", frames (max per NIC, summed) " << total.frames);
  if (!only && runs >= 24 && steps >= 300) {
    // The default seeds reach every case the invariants are about.
    CHECK(total.timeouts > 0);
    CHECK(total.frozen_steps > 0);
    CHECK(total.stopped_queues > 0);
    CHECK(total.downs_in_flight > 0);
    CHECK(total.frames > 1000);
  }
}

}  // TEST_SUITE
