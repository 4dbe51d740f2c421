// The power cycle of the whole default machine (docs/devices/machine.md
// "Power", docs/devices/net.md, xen.md, numa.md "Power cycle"): a boot puts
// each family's volatile state back to the mount's and keeps what is
// non-volatile; a machine that is off runs no worker or sender.
#include <doctest/doctest.h>

#include <string>

#include "devices/machine/machine.hpp"
#include "tests/support/test_env.hpp"

namespace {

using vsysfs::devices::RebootCode;
using vsysfs::testing::TestMachine;

const std::string K = "kernel/debug/vsysfs/";
const std::string kDev = "devices/system/xen_memory/xen_memory0/";
// The interfaces' own directories (TestMachine does not follow class/net).
std::string net(const std::string& ifname, const std::string& f) {
  if (ifname == "lo") return "devices/virtual/net/lo/" + f;
  const std::string slot = ifname == "eth0" ? "0000:00:03.0" : "0000:00:04.0";
  return "devices/pci0000:00/" + slot + "/net/" + ifname + "/" + f;
}

std::uint64_t u64(TestMachine& m, const std::string& path) {
  const std::string s = m.read(path);
  REQUIRE_MESSAGE(!s.empty(), path);
  REQUIRE_MESSAGE(s[0] != '<', path << ": " << s);
  return std::stoull(s, nullptr, 0);
}

TestMachine* make() {
  auto* m = new TestMachine(vsysfs::devices::default_machine_toml());
  m->advance_ms(10);  // the boot's links settle
  return m;
}

}  // namespace

TEST_SUITE("power_cycle") {

TEST_CASE("net: counters, flags, mtu, alias and carrier back to the boot state; MAC kept") {
  std::unique_ptr<TestMachine> m(make());
  const std::string mac = m->read(net("eth0", "address"));
  const std::string flags0 = m->read(net("eth0", "flags"));
  const std::string changes0 = m->read(net("eth0", "carrier_changes"));
  REQUIRE(m->read(net("eth0", "operstate")) == "up\n");
  REQUIRE(m->write(K + "net/eth0/traffic", "count 10 size 64 rate 1000\n") > 0);
  REQUIRE(m->write(K + "net/eth0/traffic", "start\n") > 0);
  m->advance_ms(100);
  REQUIRE(u64(*m, net("eth0", "statistics/tx_packets")) == 10);
  REQUIRE(u64(*m, net("eth1", "statistics/rx_packets")) == 10);
  REQUIRE(m->write(net("eth0", "mtu"), "1400\n") > 0);
  REQUIRE(m->write(net("eth0", "ifalias"), "uplink\n") > 0);
  REQUIRE(m->read(net("eth0", "ifalias")) == "uplink\n");
  REQUIRE(m->write(net("eth1", "flags"), "0x1002\n") > 0);  // eth1 down
  REQUIRE(m->read(net("eth1", "operstate")) == "down\n");

  REQUIRE(m->machine.shutdown(RebootCode::Restart));
  m->advance_ms(10);
  CHECK(m->machine.boots() == 1);
  CHECK(m->read(net("eth0", "statistics/tx_packets")) == "0\n");
  CHECK(m->read(net("eth0", "statistics/tx_bytes")) == "0\n");
  CHECK(m->read(net("eth1", "statistics/rx_packets")) == "0\n");
  CHECK(m->read(net("lo", "statistics/tx_packets")) == "0\n");
  CHECK(m->read(net("eth0", "mtu")) == "1500\n");
  CHECK(m->read(net("eth0", "ifalias")).empty());  // no alias: an empty read
  CHECK(m->read(net("eth0", "flags")) == flags0);
  CHECK(m->read(net("eth1", "operstate")) == "up\n");  // the machine file brings it up
  CHECK(m->read(net("eth0", "carrier")) == "1\n");
  CHECK(m->read(net("eth0", "carrier_changes")) == changes0);
  CHECK(m->read(net("eth0", "address")) == mac);  // the NIC's ROM
  CHECK(!m->events_of("eth0", "boot_reset").empty());
}

TEST_CASE("net: a sender stops at shutdown and stays stopped after the boot") {
  std::unique_ptr<TestMachine> m(make());
  REQUIRE(m->write(K + "net/eth0/traffic", "count 0 size 64 rate 100\n") > 0);
  REQUIRE(m->write(K + "net/eth0/traffic", "start\n") > 0);
  m->advance_ms(50);
  REQUIRE(m->machine.shutdown(RebootCode::PowerOff));
  CHECK(m->machine.power() == "off");
  const auto stops = m->events_of("eth0", "traffic");
  REQUIRE(!stops.empty());
  CHECK(stops.back().result == "stop");
  CHECK(stops.back().field("why") == "\"shutdown\"");
  m->advance_ms(10000);
  CHECK(m->events_of("eth0", "xmit").empty());
  REQUIRE(m->machine.power_on());
  m->advance_ms(1000);
  CHECK(m->read(net("eth0", "statistics/tx_packets")) == "0\n");
}

TEST_CASE("xen and numa: the balloon back at its boot memory and target, allocations freed") {
  std::unique_ptr<TestMachine> m(make());
  const std::uint64_t current0 = u64(*m, kDev + "info/current_kb");
  const std::uint64_t target0 = u64(*m, kDev + "target_kb");
  const std::string meminfo0 = m->read("devices/system/node/node0/meminfo");
  REQUIRE(m->write(K + "numa/alloc", "pages=1000 kind=anon\n") > 0);
  REQUIRE(m->read(K + "numa/allocations") != "");
  REQUIRE(m->write(kDev + "target_kb", std::to_string(current0 - 1048576) + "\n") > 0);
  REQUIRE(m->write(kDev + "max_retry_count", "9\n") > 0);
  m->advance_ms(1000);
  REQUIRE(u64(*m, kDev + "info/current_kb") == current0 - 1048576);

  // Off: a target the worker would act on is left alone until the boot.
  REQUIRE(m->machine.shutdown(RebootCode::PowerOff));
  const std::size_t steps_off = m->events_of("xen_balloon", "step").size();
  m->advance_ms(7200 * 1000);
  CHECK(m->events_of("xen_balloon", "step").size() == steps_off);

  REQUIRE(m->machine.power_on());
  m->advance_ms(1000);
  CHECK(u64(*m, kDev + "info/current_kb") == current0);
  CHECK(u64(*m, kDev + "target_kb") == target0);
  CHECK(m->read(kDev + "max_retry_count") == "4\n");
  CHECK(m->read(K + "numa/allocations") == "");
  CHECK(m->read("devices/system/node/node0/meminfo") == meminfo0);
  const auto boot = m->events_of("numa", "boot");
  REQUIRE(boot.size() == 1);
  CHECK(boot[0].field("freed") == "1");
  // The hypervisor agrees with the guest: the domain was rebuilt at 16G.
  CHECK(m->read(K + "xen/domains").find(std::to_string(current0)) != std::string::npos);
}

TEST_CASE("xen: a boot brings a worker killed by the decrease BUG back") {
  std::unique_ptr<TestMachine> m(make());
  const std::uint64_t current0 = u64(*m, kDev + "info/current_kb");
  REQUIRE(m->write(K + "fail/xen_decrease/pages", "1\n") > 0);
  REQUIRE(m->write(K + "fail/xen_decrease/probability", "100\n") > 0);
  REQUIRE(m->write(kDev + "target_kb", std::to_string(current0 - 65536) + "\n") > 0);
  m->advance_ms(1000);
  REQUIRE(m->events_of("xen_balloon", "bug").size() == 1);
  REQUIRE(m->events_of("xen_balloon", "step").empty());
  REQUIRE(m->write(K + "fail/xen_decrease/probability", "0\n") > 0);
  REQUIRE(m->machine.shutdown(RebootCode::Restart));
  m->advance_ms(100);
  CHECK(u64(*m, kDev + "info/current_kb") == current0);
  REQUIRE(m->write(kDev + "target_kb", std::to_string(current0 - 65536) + "\n") > 0);
  m->advance_ms(1000);
  CHECK(u64(*m, kDev + "info/current_kb") == current0 - 65536);
  CHECK(!m->events_of("xen_balloon", "step").empty());
}

}  // TEST_SUITE("power_cycle")
