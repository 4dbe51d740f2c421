// Machine snapshots of the [net] section (devices/net/netdev_state.hpp,
// docs/snapshot.md): after a restore every file under the interfaces
// reads as at the snapshot, interfaces that went up or down since are back
// with their carrier, operstate, queue and ring state, and the timers
// pending at the snapshot (MAC, watchdog, senders, chipset) fire at the
// same instants with the same events, while timers armed later never do.
// A malformed record is EINVAL and changes nothing; a link_flap schedule
// running at the snapshot flaps at the same instants after the restore.
#include <cerrno>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "devices/machine/snapshot.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;

namespace {

// machines/net-lab.toml without the comments: lo, eth0<->eth1 (eth1 LLTX),
// eth2<->eth3 (10 Mb/s, 16-slot rings, BQL, 2 s watchdog, 4 queues on
// eth2), eth4 without a cable.
constexpr const char* kLab = R"([net]
nr_cpu_ids = 8
nr_node_ids = 2

[[net.interface]]
name = "lo"
kind = "loopback"

[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
mac = "52:54:00:00:00:10"
numa_node = 0
max_mtu = 9000
peer = "eth1"
change_carrier = true
change_proto_down = true

[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
mac = "52:54:00:00:00:11"
numa_node = 0
lltx = true
mmio_seed = 7

[[net.interface]]
name = "eth2"
pci = "0000:80:05.0"
mac = "52:54:00:00:00:20"
numa_node = 1
speed = 10
duplex = "half"
ring_size = 16
watchdog_timeo_ms = 2000
bql = true
peer = "eth3"
rx_queues = 4
tx_queues = 4

[[net.interface]]
name = "eth3"
pci = "0000:80:06.0"
mac = "52:54:00:00:00:21"
numa_node = 1
speed = 10
duplex = "half"
ring_size = 16
watchdog_timeo_ms = 2000
bql = true

[[net.interface]]
name = "eth4"
pci = "0000:00:07.0"
numa_node = 0
mac = "52:54:00:00:00:30"
link = "down"
name_assign_type = 4
)";

std::string K(std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); }
// The PCI function of each NIC (the tree's paths do not go through the
// class/net and bus/pci/devices links).
std::string pci_of(std::string_view ifname) {
  if (ifname == "eth0") return "devices/pci0000:00/0000:00:03.0";
  if (ifname == "eth1") return "devices/pci0000:00/0000:00:04.0";
  if (ifname == "eth2") return "devices/pci0000:80/0000:80:05.0";
  if (ifname == "eth3") return "devices/pci0000:80/0000:80:06.0";
  return "devices/pci0000:00/0000:00:07.0";
}
std::string N(std::string_view ifname, std::string_view f) {
  const std::string dir =
      ifname == "lo" ? "devices/virtual/net/lo" : pci_of(ifname) + "/net/" + std::string(ifname);
  return dir + "/" + std::string(f);
}
std::string T(std::string_view ifname) { return K("net/") + std::string(ifname) + "/traffic"; }

std::string data_of(const core::Event& e) {
  std::string out;
  for (const auto& f : e.data) out += f.key + "=" + f.json + " ";
  return out;
}

// The events after `from` with their simulated time: what a timer did
// and when.
std::vector<std::string> timed_events(const testing::TestMachine& m, std::uint64_t from) {
  std::vector<std::string> out;
  for (const auto& e : m.events.since(from))
    out.push_back(
        fmt::format("{} {} {} {} {}", e.time.count(), e.device, e.what, e.result, data_of(e)));
  return out;
}

std::uint64_t last_seq(const testing::TestMachine& m) { return m.events.snapshot().back().seq; }

const devices::StateHandler& net_handler(const testing::TestMachine& m) {
  for (const auto& h : m.machine.state_handlers())
    if (h.name == "net") return h;
  FAIL("no net handler");
  throw std::logic_error("unreachable");
}

std::string save_net(const testing::TestMachine& m) {
  const auto& h = net_handler(m);
  core::StateWriter w(h.version);
  h.save(w);
  return w.text();
}

// The record with field `key` replaced by `value` (or dropped when
// value is null).
std::string edit(const std::string& rec, const std::string& key, const char* value) {
  std::string out;
  bool found = false;
  for (std::size_t pos = 0; pos < rec.size();) {
    const auto nl = rec.find('\n', pos);
    const std::string line = rec.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind(key + "=", 0) == 0) {
      found = true;
      if (value) out += key + "=" + value + "\n";
      continue;
    }
    out += line + "\n";
  }
  REQUIRE_MESSAGE(found, key);
  return out;
}

}  // namespace

TEST_SUITE("snapshot") {

TEST_CASE("net snapshot: every file back, up/down undone, pending timers at the same instants") {
  testing::TestMachine m(kLab);
  // Before the snapshot: eth1 down (so eth0 has no carrier), traffic on
  // the slow eth2 link filling its 16-slot ring (BQL moves, the queue
  // stalls), a DMA hang on eth2 so its watchdog fires 2 s after the last
  // transmit, and settings off their defaults.
  REQUIRE(m.write(N("eth1", "flags"), "0x1002") > 0);
  CHECK(m.read(N("eth0", "operstate")) == "down\n");
  REQUIRE(m.write(T("eth2"), "count 0 size 1000 rate 2000 cpus 3") > 0);
  REQUIRE(m.write(T("eth2"), "start") > 0);
  m.advance_ms(30);
  REQUIRE(m.write(K("net/eth2/faults"), "hang_tx 1") > 0);
  m.advance_ms(7);
  REQUIRE(m.write(N("eth3", "ifalias"), "uplink\n") > 0);
  REQUIRE(m.write(N("eth2", "queues/tx-0/byte_queue_limits/limit_max"), "60000") > 0);
  CHECK(m.read(N("eth2", "queues/tx-0/byte_queue_limits/inflight")) != "0\n");
  CHECK(m.read(N("eth2", "statistics/tx_packets")) != "0\n");
  CHECK(m.read(N("eth3", "statistics/rx_packets")) != "0\n");
  const std::string config_before = m.pread(pci_of("eth0") + "/config", 256, 0);
  REQUIRE(m.write(K("machine/snapshot"), "base") == 4);
  const std::uint64_t at_snapshot = last_seq(m);

  // What the timers pending at the snapshot do over 3 s: the MAC, the
  // sender, the watchdog (tx_timeout and its ring reset), NAPI.
  m.advance_ms(3000);
  const auto first = timed_events(m, at_snapshot);
  bool watchdog = false;
  for (const auto& e : first)
    watchdog = watchdog || e.find("tx_timeout NETDEV WATCHDOG") != std::string::npos;
  CHECK(watchdog);

  // Every kind of change: up and down through flags, each writable file,
  // the knobs, the PCI function, and traffic with new timers.
  REQUIRE(m.write(N("eth1", "flags"), "0x1003") > 0);  // up: eth0 gets its carrier
  CHECK(m.read(N("eth0", "operstate")) == "up\n");
  REQUIRE(m.write(N("eth3", "flags"), "0x1002") > 0);  // down: eth2 loses its carrier
  REQUIRE(m.write(N("eth0", "mtu"), "9000") > 0);
  REQUIRE(m.write(N("eth0", "tx_queue_len"), "77") > 0);
  REQUIRE(m.write(N("eth0", "netdev_group"), "5") > 0);
  REQUIRE(m.write(N("eth0", "ifalias"), "changed") > 0);
  REQUIRE(m.write(N("eth3", "ifalias"), "\n") > 0);
  REQUIRE(m.write(N("eth0", "gro_flush_timeout"), "20000") > 0);
  REQUIRE(m.write(N("eth0", "napi_defer_hard_irqs"), "3") > 0);
  REQUIRE(m.write(N("eth0", "threaded"), "1") > 0);
  REQUIRE(m.write(N("eth0", "flags"), "0x1103") > 0);  // promiscuous
  REQUIRE(m.write(N("eth2", "queues/rx-1/rps_cpus"), "f0") > 0);
  REQUIRE(m.write(N("eth2", "queues/rx-1/rps_flow_cnt"), "100") > 0);
  REQUIRE(m.write(N("eth2", "queues/tx-2/xps_cpus"), "3") > 0);
  REQUIRE(m.write(N("eth2", "queues/tx-0/byte_queue_limits/limit_min"), "3000") > 0);
  REQUIRE(m.write(N("eth2", "queues/tx-0/byte_queue_limits/hold_time"), "50") > 0);
  REQUIRE(m.write(pci_of("eth0") + "/numa_node", "1") > 0);
  REQUIRE(m.write(pci_of("eth0") + "/power/control", "auto") > 0);
  REQUIRE(m.write(pci_of("eth0") + "/config", std::string("\x03\x00", 2), core::Caller::root(),
                  4) == 2);
  REQUIRE(m.write(K("net/eth4/link"), "up") > 0);
  REQUIRE(m.write(K("net/eth0/faults"), "drop_rx 3") > 0);
  REQUIRE(m.write(K("net/eth0/faults"), "fail_open ENOMEM") > 0);
  REQUIRE(m.write(K("net/eth1/ordering"), "posted") > 0);
  REQUIRE(m.write(T("eth0"), "count 0 rate 5000 cpus 4") > 0);
  REQUIRE(m.write(T("eth0"), "start") > 0);  // timers armed after the snapshot
  REQUIRE(m.write(T("lo"), "count 50 rate 100000") > 0);
  REQUIRE(m.write(T("lo"), "start") > 0);
  m.advance_ms(20);
  REQUIRE(m.write(N("eth0", "proto_down"), "1") > 0);  // a carrier change
  REQUIRE(m.write(N("eth0", "proto_down"), "0") > 0);
  REQUIRE(m.write(N("eth0", "carrier"), "0") > 0);
  CHECK(m.read(N("eth0", "carrier_changes")) != "0\n");
  REQUIRE(m.write(K("machine/diff"), "base now") > 0);
  const std::string changed = m.read(K("machine/diff"));
  for (const char* p :
       {"net/eth0/mtu", "net/eth1/flags", "net/eth3/operstate", "net/eth0/ifalias", "rx-1/rps_cpus",
        "tx-2/xps_cpus", "0000:00:03.0/numa_node", "power/control", "eth0/statistics/tx_packets",
        "eth0/carrier_changes", "vsysfs/net/eth0/traffic", "vsysfs/net/eth4/link",
        "vsysfs/net/eth0/faults", "vsysfs/net/eth1/ordering", "byte_queue_limits/limit_min"})
    CHECK_MESSAGE(changed.find(p) != std::string::npos, p);

  REQUIRE(m.write(K("machine/restore"), "base") == 4);
  REQUIRE(m.write(K("machine/diff"), "base now") > 0);
  CHECK(m.read(K("machine/diff")) == "");
  CHECK(m.pread(pci_of("eth0") + "/config", 256, 0) == config_before);
  CHECK(m.read(N("eth1", "operstate")) == "down\n");
  CHECK(m.read(N("eth1", "carrier")) == "<EINVAL>");
  CHECK(m.read(N("eth0", "operstate")) == "down\n");
  CHECK(m.read(N("eth3", "operstate")) == "up\n");

  // The same 3 s again: the same events at the same instants; nothing of
  // eth0's or lo's senders, started after the snapshot.
  const std::uint64_t at_restore = last_seq(m);
  m.advance_ms(3000);
  const auto second = timed_events(m, at_restore);
  CHECK(first == second);
  for (const auto& e : second) CHECK(e.find(" traffic start") == std::string::npos);
}

// Two senders due at the same instants, eth3's armed first: after a
// restore they still run in that order (their events too), although the
// handler re-arms eth0's first.
TEST_CASE("net snapshot: timers due at the same instant keep their order") {
  testing::TestMachine m(kLab);
  REQUIRE(m.write(T("eth3"), "count 5 rate 1000") > 0);
  REQUIRE(m.write(T("eth0"), "count 5 rate 1000") > 0);
  REQUIRE(m.write(T("eth3"), "start") > 0);
  REQUIRE(m.write(T("eth0"), "start") > 0);
  REQUIRE(m.write(K("machine/snapshot"), "both") == 4);
  const std::uint64_t at_snapshot = last_seq(m);
  m.advance_ms(10);
  const auto first = timed_events(m, at_snapshot);
  std::vector<std::string> done;
  for (const auto& e : first)
    if (e.find(" traffic done ") != std::string::npos)
      done.push_back(e.substr(0, e.find(" traffic")));
  CHECK(done == std::vector<std::string>{"4000000 eth3", "4000000 eth0"});
  REQUIRE(m.write(K("machine/restore"), "both") == 4);
  const std::uint64_t at_restore = last_seq(m);
  m.advance_ms(10);
  CHECK(timed_events(m, at_restore) == first);
}

TEST_CASE("net snapshot: a malformed record is EINVAL and changes nothing") {
  testing::TestMachine m(kLab);
  REQUIRE(m.write(T("eth2"), "count 0 size 500 rate 3000") > 0);
  REQUIRE(m.write(T("eth2"), "start") > 0);
  m.advance_ms(15);
  const std::string good = save_net(m);
  REQUIRE(m.write(K("machine/snapshot"), "s") == 1);
  const auto& h = net_handler(m);
  const std::vector<std::pair<std::string, const char*>> bad = {
      {"if0.name", "eth9"},  // another machine's interface
      {"if2.kind", "loopback"},
      {"net.interfaces", "5"},
      {"if1.operstate", "7"},  // no such IF_OPER_*
      {"if1.mtu", "9001"},     // above max_mtu
      {"if1.mtu", "x"},
      {"if3.traffic.rate", "0"},  // the sender divides by it
      {"if3.traffic.cpus", "9"},  // nr_cpu_ids is 8
      {"if3.nic.tx_tail", "99"},  // more than the ring holds
      {"if3.hw.descriptors", "1:2:3"},
      {"if3.hw.rx_ring", "64:1:2"},
      {"if3.mmio.rng", "7 8"},
      {"if3.dql0.limit", "4294967296"},
      {"if3.nic.fail_open", "5000"},
      {"if3.rx1.rps_cpus", "101"},      // not nr_cpu_ids wide
      {"if3.rx1.rps_flow_cnt", "100"},  // not a power of two
      {"if3.pci.numa_node", "2"},       // nr_node_ids is 2
      {"if3.watchdog.pending", "maybe"},
      {"if0.ifalias", nullptr},  // a field missing
      {"if3.traffic.timer.order", nullptr},
  };
  for (const auto& [key, value] : bad) {
    auto rec = core::StateReader::parse(edit(good, key, value));
    REQUIRE(rec);
    const auto st = h.load(*rec);
    CHECK_MESSAGE(!st, key);
    if (!st) CHECK_MESSAGE(st.error().value() == EINVAL, key);
    CHECK_MESSAGE(save_net(m) == good, key);
  }
  // Fields for a sixth interface, or a CPU queue the bus lacks.
  for (const char* extra : {"if6.name=eth9\n", "if3.mmio.cpu8=1:8:1\n"}) {
    auto rec = core::StateReader::parse(good + extra);
    REQUIRE(rec);
    const auto st = h.load(*rec);
    CHECK_MESSAGE(!st, extra);
    CHECK(save_net(m) == good);
  }
  REQUIRE(m.write(K("machine/diff"), "s now") > 0);
  CHECK(m.read(K("machine/diff")) == "");
  // The good record loads (the control: the edits above were the fault).
  auto rec = core::StateReader::parse(good);
  REQUIRE(rec);
  CHECK(h.load(*rec));
  CHECK(save_net(m) == good);
}

TEST_CASE(
    "net snapshot: a link_flap schedule taken mid-flap toggles the links at the same instants") {
  testing::TestMachine m(kLab);
  REQUIRE(m.write(K("machine/snapshot"), "quiet") == 5);
  REQUIRE(m.write(K("fail/link_flap/ifaces"), "eth0") > 0);
  REQUIRE(m.write(K("fail/link_flap/probability"), "100") > 0);
  REQUIRE(m.write(K("fail/link_flap/times"), "-1") > 0);
  REQUIRE(m.write(K("fail/link_flap/count"), "3") > 0);  // periods at 1000, 2000, 3000
  m.advance_ms(1050);                                    // the first flap: eth0 down until 1100
  CHECK(m.read(N("eth0", "operstate")) == "down\n");
  REQUIRE(m.write(K("machine/snapshot"), "flapping") == 8);
  const std::uint64_t at_snapshot = last_seq(m);
  m.advance_ms(3000);
  const auto first = timed_events(m, at_snapshot);
  std::vector<std::string> flaps;
  for (const auto& e : first)
    if (e.find(" link_flap ") != std::string::npos)
      flaps.push_back(e.substr(0, e.find_last_not_of(' ') + 1));
  CHECK(flaps ==
        std::vector<std::string>{"1100000000 eth0 link_flap up", "2000000000 eth0 link_flap down",
                                 "2100000000 eth0 link_flap up", "3000000000 eth0 link_flap down",
                                 "3100000000 eth0 link_flap up"});
  CHECK(m.read(K("fail/link_flap/count")) == "0\n");
  CHECK(m.read(N("eth0", "operstate")) == "up\n");

  REQUIRE(m.write(K("machine/restore"), "flapping") == 8);
  CHECK(m.read(N("eth0", "operstate")) == "down\n");
  CHECK(m.read(N("eth1", "operstate")) == "down\n");  // the cabled peer
  CHECK(m.read(K("fail/link_flap/count")) == "2\n");
  REQUIRE(m.write(K("machine/diff"), "flapping now") > 0);
  CHECK(m.read(K("machine/diff")) == "");
  const std::uint64_t at_restore = last_seq(m);
  m.advance_ms(3000);
  CHECK(timed_events(m, at_restore) == first);

  // A restore while a flap holds the link down ends it: the snapshot had
  // no schedule, its links come back up, nothing flaps later.
  REQUIRE(m.write(K("machine/restore"), "flapping") == 8);
  CHECK(m.read(N("eth0", "operstate")) == "down\n");
  REQUIRE(m.write(K("machine/restore"), "quiet") == 5);
  CHECK(m.read(N("eth0", "operstate")) == "up\n");
  CHECK(m.read(K("fail/link_flap/count")) == "0\n");
  const std::uint64_t at_quiet = last_seq(m);
  m.advance_ms(5000);
  for (const auto& e : timed_events(m, at_quiet)) CHECK(e.find(" link_flap ") == std::string::npos);
  CHECK(m.read(N("eth0", "operstate")) == "up\n");
  REQUIRE(m.write(K("machine/snapshot"), "after") == 5);
  REQUIRE(m.write(K("machine/restore"), "quiet") == 5);
  REQUIRE(m.write(K("machine/diff"), "quiet now") > 0);
  CHECK(m.read(K("machine/diff")) == "");
}

}  // TEST_SUITE("snapshot")
