// Regression tests for the NIC's paths through open/stop and carrier loss,
// and for loopback/queue details checked against Linux 6.12, on the default
// machine driven through its files (eth0 cabled to eth1; knobs under
// kernel/debug/vsysfs/net/).
//
//  - down and up after traffic: the driver's open() restarts its TX ring at
//    0, and so must the hardware (e1000_configure_tx writes TDH = TDT = 0),
//    or every later doorbell looks backwards and nothing is sent again;
//  - no carrier: pktgen_xmit sends nothing to an offline device, and the
//    MAC sends nothing without link: no TX counter moves;
//  - lo: name_assign_type 2 (NET_NAME_PREDICTABLE), no byte_queue_limits/
//    on LLTX devices (netdev_uses_bql), xps_cpus ENOENT before EPERM.

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "devices/machine/machine.hpp"
#include "devices/net/netdev.hpp"
#include "devices/net/netdev_nic.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::devices::NetDevice;
using vsysfs::devices::VnicDriver;
using vsysfs::testing::TestMachine;

namespace {

const std::string E0 = "devices/pci0000:00/0000:00:03.0/net/eth0/";
const std::string E1 = "devices/pci0000:00/0000:00:04.0/net/eth1/";
const std::string LO = "devices/virtual/net/lo/";
const std::string K = "kernel/debug/vsysfs/net/";

std::uint64_t num(TestMachine& m, const std::string& path) {
  const std::string s = m.read(path);
  REQUIRE_MESSAGE(!s.empty(), path);
  REQUIRE_MESSAGE(s[0] != '<', path << ": " << s);
  return std::stoull(s);
}

// "key value" line of a knob file.
std::uint64_t knob_field(TestMachine& m, const std::string& path, const std::string& key) {
  const std::string s = "\n" + m.read(path);
  const auto at = s.find("\n" + key + " ");
  REQUIRE_MESSAGE(at != std::string::npos, path << " has no " << key);
  return std::stoull(s.substr(at + key.size() + 2));
}

NetDevice& netdev(TestMachine& m, const std::string& dir) {
  auto node = m.tree.find(dir + "mtu");
  REQUIRE(node);
  return *static_cast<NetDevice*>(node->dev);
}

VnicDriver& driver(TestMachine& m, const std::string& dir) {
  auto* d = dynamic_cast<VnicDriver*>(&netdev(m, dir).ops());
  REQUIRE(d);
  return *d;
}

void traffic(TestMachine& m, const std::string& ifname, const std::string& settings) {
  REQUIRE(m.write(K + ifname + "/traffic", settings) == static_cast<long>(settings.size()));
  REQUIRE(m.write(K + ifname + "/traffic", "start") == 5);
}

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("down and up after traffic: transmit resumes; ring and doorbells restart at 0") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  traffic(m, "eth0", "count 10 rate 1000");
  m.advance_ms(1000);
  REQUIRE(num(m, E0 + "statistics/tx_packets") == 10);
  REQUIRE(num(m, E1 + "statistics/rx_packets") == 10);
  CHECK(m.write(E0 + "flags", "0x1002") == 6);
  CHECK(m.write(E0 + "flags", "0x1003") == 6);
  traffic(m, "eth0", "count 10 rate 1000");
  m.advance_ms(1000);
  CHECK(num(m, E0 + "statistics/tx_packets") == 20);
  CHECK(num(m, E1 + "statistics/rx_packets") == 20);
  CHECK(knob_field(m, K + "eth0/mmio", "doorbell_backwards") == 0);
  CHECK(driver(m, E0).hardware().completed() == 10);  // counted from the reset at open
  CHECK(driver(m, E0).ring_in_use() == 0);

  // The ring still fills and the watchdog still fires after a down/up.
  REQUIRE(m.write(K + "eth0/faults", "hang_tx 1") > 0);
  traffic(m, "eth0", "count 0 rate 100000");
  m.advance_ms(100);
  CHECK(netdev(m, E0).netif_tx_queue_stopped());
  CHECK(num(m, E0 + "queues/tx-0/tx_timeout") == 0);
  m.advance_ms(5000);
  CHECK(num(m, E0 + "queues/tx-0/tx_timeout") == 1);
  CHECK(num(m, E0 + "statistics/tx_dropped") == 256);  // the full ring, reset
  CHECK(knob_field(m, K + "eth0/mmio", "ring_resets") == 1);
  CHECK(knob_field(m, K + "eth0/mmio", "doorbell_backwards") == 0);
  REQUIRE(m.write(K + "eth0/traffic", "stop") == 4);
}

TEST_CASE("down/up stress with traffic between: counters, ring state, no backward doorbell") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  VnicDriver& drv = driver(m, E0);
  for (unsigned cycle = 0; cycle < 300; ++cycle) {
    CAPTURE(cycle);
    const unsigned count = 1 + (cycle * 7) % 40;
    const bool mid_run = cycle % 3 == 0;  // go down with frames still in the ring
    traffic(m, "eth0", "count " + std::to_string(count) + " rate 20000 cpus " +
                           std::to_string(1 + cycle % 4));
    if (mid_run) {
      m.advance_ms(1);  // ~20 frames queued, the ring not yet drained
      REQUIRE(m.write(E0 + "flags", "0x1002") == 6);
      CHECK(drv.ring_in_use() == 0);
      CHECK(drv.hardware().completed() == 0);
      REQUIRE(m.write(E0 + "flags", "0x1003") == 6);
    } else {
      m.advance_ms(100);
      CHECK(knob_field(m, K + "eth0/traffic", "sent") == count);
      CHECK(drv.ring_in_use() == 0);
      CHECK(drv.hardware().completed() == count);  // the ring restarted at 0 at the last up
      REQUIRE(m.write(E0 + "flags", "0x1002") == 6);
      REQUIRE(m.write(E0 + "flags", "0x1003") == 6);
    }
    m.advance_ms(1);
    // What left eth0 reached eth1, and nothing was counted that did not.
    CHECK(num(m, E0 + "statistics/tx_packets") == num(m, E1 + "statistics/rx_packets"));
    CHECK(knob_field(m, K + "eth0/mmio", "doorbell_backwards") == 0);
    CHECK(drv.hardware().completed() == 0);  // a fresh ring after the up
  }
  // A final clean run is complete.
  const std::uint64_t before = num(m, E0 + "statistics/tx_packets");
  traffic(m, "eth0", "count 500 rate 100000");
  m.advance_ms(100);
  CHECK(num(m, E0 + "statistics/tx_packets") == before + 500);
  CHECK(num(m, E1 + "statistics/rx_packets") == before + 500);
  CHECK(num(m, E0 + "statistics/tx_errors") == 0);
  CHECK(num(m, E0 + "statistics/tx_dropped") == 0);
  CHECK(num(m, E0 + "queues/tx-0/tx_timeout") == 0);
  CHECK(knob_field(m, K + "eth0/mmio", "doorbell_backwards") == 0);
  CHECK(m.events_of("eth0", "doorbell_backwards").empty());
}

TEST_CASE("carrier off: nothing is sent, no TX counter moves; frames in the ring wait for link") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  REQUIRE(m.write(K + "eth0/link", "down") == 4);
  REQUIRE(m.read(E0 + "carrier") == "0\n");
  REQUIRE(m.read(E1 + "carrier") == "0\n");
  traffic(m, "eth0", "count 10 rate 1000");
  m.advance_ms(1000);
  CHECK(num(m, E0 + "statistics/tx_packets") == 0);
  CHECK(num(m, E0 + "statistics/tx_bytes") == 0);
  CHECK(num(m, E0 + "statistics/tx_dropped") == 0);  // pktgen never reached the stack
  CHECK(num(m, E0 + "statistics/tx_errors") == 0);
  CHECK(num(m, E1 + "statistics/rx_packets") == 0);
  CHECK(knob_field(m, K + "eth0/traffic", "sent") == 0);
  CHECK(m.read(K + "eth0/traffic").find("state stopped") != std::string::npos);
  CHECK(m.events_of("eth0", "traffic").back().result == "NO-CARRIER");
  // The driver saw nothing either.
  CHECK(driver(m, E0).ring_in_use() == 0);

  // The cable comes back; a run that loses the link midway stops, and the
  // frames already in the ring wait: counted only when they leave.
  REQUIRE(m.write(K + "eth0/link", "up") == 2);
  REQUIRE(m.read(E0 + "carrier") == "1\n");
  // 10 Mb/s worth of frames at 1 Gb/s: 1518-byte frames, ~12 us each, sent
  // faster than that, so some are still queued when the link drops.
  traffic(m, "eth0", "count 100 size 1500 rate 1000000");
  m.advance_ms(0);
  REQUIRE(m.write(K + "eth0/link", "down") == 4);
  const auto queued = driver(m, E0).ring_in_use();
  CHECK(queued > 0);
  const std::uint64_t tx = num(m, E0 + "statistics/tx_packets");
  m.advance_ms(1000);
  CHECK(num(m, E0 + "statistics/tx_packets") == tx);
  CHECK(num(m, E1 + "statistics/rx_packets") == tx);
  CHECK(driver(m, E0).ring_in_use() == queued);
  CHECK(m.read(K + "eth0/traffic").find("state stopped") != std::string::npos);
  CHECK(num(m, E0 + "queues/tx-0/tx_timeout") == 0);  // dev_watchdog needs the carrier
  REQUIRE(m.write(K + "eth0/link", "up") == 2);
  m.advance_ms(10);
  CHECK(num(m, E0 + "statistics/tx_packets") == tx + queued);
  CHECK(num(m, E1 + "statistics/rx_packets") == tx + queued);
  CHECK(driver(m, E0).ring_in_use() == 0);
}

TEST_CASE("an interface that is down transmits nothing, nor does its ring") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  traffic(m, "eth0", "count 100 size 1500 rate 1000000");
  m.advance_ms(0);
  REQUIRE(driver(m, E0).ring_in_use() > 0);
  const std::uint64_t tx = num(m, E0 + "statistics/tx_packets");
  REQUIRE(m.write(E0 + "flags", "0x1002") == 6);
  CHECK(m.write(K + "eth0/traffic", "start") == -ENETDOWN);
  vsysfs::devices::SkBuff skb;
  CHECK(netdev(m, E0).dev_hard_start_xmit(skb, 0) == vsysfs::devices::XmitResult::NotRunning);
  m.advance_ms(1000);
  CHECK(num(m, E0 + "statistics/tx_packets") == tx);
  CHECK(num(m, E0 + "statistics/tx_dropped") == 0);  // freed with the ring, not counted
  CHECK(num(m, E1 + "statistics/rx_packets") == tx);
  CHECK(driver(m, E0).ring_in_use() == 0);
}

TEST_CASE("lo (6.12): name_assign_type 2, no byte_queue_limits on LLTX devices") {
  TestMachine m(R"([net]
[[net.interface]]
name = "lo"
kind = "loopback"
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
[[net.interface]]
name = "eth2"
pci = "0000:00:05.0"
lltx = true
)");
  CHECK(m.read(LO + "name_assign_type") == "2\n");  // NET_NAME_PREDICTABLE
  CHECK(m.read(E0 + "name_assign_type") == "1\n");  // NET_NAME_ENUM
  CHECK(m.exists(LO + "queues/tx-0/tx_timeout"));
  CHECK_FALSE(m.exists(LO + "queues/tx-0/byte_queue_limits"));
  CHECK(m.exists(E0 + "queues/tx-0/byte_queue_limits/limit"));
  const std::string E2 = "devices/pci0000:00/0000:00:05.0/net/eth2/";
  CHECK(m.exists(E2 + "queues/tx-0/xps_cpus"));
  CHECK_FALSE(m.exists(E2 + "queues/tx-0/byte_queue_limits"));
}

TEST_CASE("xps_cpus store: ENOENT on a single-queue device comes before EPERM") {
  TestMachine m(vsysfs::devices::default_machine_toml());
  const Caller no_net_admin = Caller::with_caps(0, 0);
  CHECK(m.write(E0 + "queues/tx-0/xps_cpus", "1", no_net_admin) == -ENOENT);
  CHECK(m.write(LO + "queues/tx-0/xps_cpus", "1", no_net_admin) == -ENOENT);
  CHECK(m.write(E0 + "queues/tx-0/xps_cpus", "zz") == -ENOENT);  // before parsing
  TestMachine mq(R"([net]
nr_cpu_ids = 8
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
tx_queues = 2
)");
  CHECK(mq.write(E0 + "queues/tx-1/xps_cpus", "zz", no_net_admin) == -EPERM);  // before parsing
  CHECK(mq.write(E0 + "queues/tx-1/xps_cpus", "zz") == -EINVAL);
  CHECK(mq.read(E0 + "queues/tx-1/xps_cpus") == "00\n");
}

}  // TEST_SUITE
