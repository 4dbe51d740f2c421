// The files of /sys/class/net/IF: layout, formats, modes, errnos and the
// bad-input table of every writable attribute (docs/kernel-semantics.md sections 5.1 to 5.4).

#include "devices/net/netdev.hpp"

#include <doctest/doctest.h>

#include <string>

#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
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
mac = "52:54:00:ab:cd:ef"
numa_node = 0
max_mtu = 9000
peer = "eth1"
change_carrier = true
change_proto_down = true
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
mac = "52:54:00:ab:cd:f0"
)";

const std::string E0 = "class/net/eth0/";
// The real directory (the tree does not follow the class link).
const std::string D0 = "devices/pci0000:00/0000:00:03.0/net/eth0/";
const std::string D1 = "devices/pci0000:00/0000:00:04.0/net/eth1/";
const std::string LO = "devices/virtual/net/lo/";

// root without CAP_NET_ADMIN (a container's root)
Caller no_net_admin() { return Caller::with_caps(0, 0); }

mode_t mode_of(TestMachine& m, const std::string& path) {
  auto node = m.tree.find(path);
  REQUIRE(node);
  return node->mode.load();
}

std::uint64_t event_count(TestMachine& m, const std::string& path) {
  auto node = m.tree.find(path);
  REQUIRE(node);
  return node->event.load();
}

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("class/net links, device and subsystem links, the PCI parent") {
  TestMachine m(kMachine);
  CHECK(m.link_target("class/net/eth0") == "../../devices/pci0000:00/0000:00:03.0/net/eth0");
  CHECK(m.link_target("class/net/eth1") == "../../devices/pci0000:00/0000:00:04.0/net/eth1");
  CHECK(m.link_target("class/net/lo") == "../../devices/virtual/net/lo");
  CHECK(m.link_target(D0 + "device") == "../../../0000:00:03.0");
  CHECK(m.link_target(D0 + "subsystem") == "../../../../../class/net");
  CHECK(m.link_target(LO + "subsystem") == "../../../../class/net");
  CHECK_FALSE(m.exists(LO + "device"));
  CHECK(m.read("devices/pci0000:00/0000:00:03.0/numa_node") == "0\n");
  CHECK(m.read("devices/pci0000:00/0000:00:04.0/numa_node") == "-1\n");
  CHECK(m.read("devices/pci0000:00/0000:00:03.0/class") == "0x020000\n");
  CHECK(m.read("devices/pci0000:00/0000:00:03.0/vendor") == "0x8086\n");
  CHECK(m.link_target("bus/pci/devices/0000:00:03.0") == "../../../devices/pci0000:00/0000:00:03.0");
  CHECK(m.read(D0 + "uevent") == "INTERFACE=eth0\nIFINDEX=2\n");
  CHECK(m.read(LO + "uevent") == "INTERFACE=lo\nIFINDEX=1\n");
  // config space: the standard header for everyone, the rest for CAP_SYS_ADMIN.
  const std::string cfg = m.pread("devices/pci0000:00/0000:00:03.0/config", 256, 0);
  REQUIRE(cfg.size() == 256);
  CHECK(static_cast<unsigned char>(cfg[0]) == 0x86);
  CHECK(static_cast<unsigned char>(cfg[1]) == 0x80);
  CHECK(m.pread("devices/pci0000:00/0000:00:03.0/config", 256, 0, Caller::user(1000)).size() == 64);
}

TEST_CASE("every attribute of an up Ethernet interface: formats") {
  TestMachine m(kMachine);
  const std::pair<const char*, const char*> table[] = {
      {"netdev_group", "0\n"},       {"type", "1\n"},
      {"dev_id", "0x0\n"},           {"dev_port", "0\n"},
      {"iflink", "2\n"},             {"ifindex", "2\n"},
      {"name_assign_type", "1\n"},   {"addr_assign_type", "0\n"},
      {"addr_len", "6\n"},           {"link_mode", "0\n"},
      {"address", "52:54:00:ab:cd:ef\n"}, {"broadcast", "ff:ff:ff:ff:ff:ff\n"},
      {"speed", "1000\n"},           {"duplex", "full\n"},
      {"dormant", "0\n"},            {"testing", "0\n"},
      {"operstate", "up\n"},         {"carrier_changes", "1\n"},
      {"ifalias", ""},               {"carrier", "1\n"},
      {"mtu", "1500\n"},             {"flags", "0x1003\n"},
      {"tx_queue_len", "1000\n"},    {"gro_flush_timeout", "0\n"},
      {"napi_defer_hard_irqs", "0\n"}, {"proto_down", "0\n"},
      {"carrier_up_count", "1\n"},   {"carrier_down_count", "0\n"},
      {"threaded", "0\n"},
  };
  for (auto [name, want] : table) {
    CAPTURE(name);
    CHECK(m.read(D0 + name) == want);
  }
}

TEST_CASE("modes are the kernel's") {
  TestMachine m(kMachine);
  for (const char* rw : {"netdev_group", "ifalias", "carrier", "mtu", "flags", "tx_queue_len",
                         "gro_flush_timeout", "napi_defer_hard_irqs", "proto_down", "threaded",
                         "uevent"}) {
    CAPTURE(rw);
    CHECK(mode_of(m, D0 + rw) == 0644);
  }
  for (const char* ro : {"type", "dev_id", "dev_port", "iflink", "ifindex", "name_assign_type",
                         "addr_assign_type", "addr_len", "link_mode", "address", "broadcast",
                         "speed", "duplex", "dormant", "testing", "operstate", "carrier_changes",
                         "carrier_up_count", "carrier_down_count"}) {
    CAPTURE(ro);
    CHECK(mode_of(m, D0 + ro) == 0444);
  }
  for (auto name : vsysfs::devices::kStatNames) {
    CAPTURE(name);
    CHECK(mode_of(m, D0 + "statistics/" + std::string(name)) == 0444);
    CHECK(m.read(D0 + "statistics/" + std::string(name)) == "0\n");
  }
  CHECK(mode_of(m, D0 + "queues/rx-0/rps_cpus") == 0644);
  CHECK(mode_of(m, D0 + "queues/rx-0/rps_flow_cnt") == 0644);
  CHECK(mode_of(m, D0 + "queues/tx-0/tx_timeout") == 0444);
  CHECK(mode_of(m, D0 + "queues/tx-0/tx_maxrate") == 0644);
  CHECK(m.open_errno(D0 + "ifindex", O_WRONLY) == -EACCES);
}

TEST_CASE("loopback: type 772, flags 0x9, operstate unknown, no ethtool, predictable name") {
  TestMachine m(kMachine);
  CHECK(m.read(LO + "type") == "772\n");
  CHECK(m.read(LO + "flags") == "0x9\n");
  CHECK(m.read(LO + "operstate") == "unknown\n");
  CHECK(m.read(LO + "carrier") == "1\n");
  CHECK(m.read(LO + "mtu") == "65536\n");
  CHECK(m.read(LO + "address") == "00:00:00:00:00:00\n");
  CHECK(m.read(LO + "broadcast") == "00:00:00:00:00:00\n");
  CHECK(m.read(LO + "speed") == "<EINVAL>");   // no get_link_ksettings
  CHECK(m.read(LO + "duplex") == "<EINVAL>");
  CHECK(m.read(LO + "name_assign_type") == "2\n");  // NET_NAME_PREDICTABLE (loopback.c, 6.2+)
  CHECK(m.read(LO + "ifindex") == "1\n");
  CHECK(m.write(LO + "threaded", "1") == -EOPNOTSUPP);  // no NAPI instance
  CHECK(m.write(LO + "carrier", "0") == -EOPNOTSUPP);   // no ndo_change_carrier
  CHECK(m.write(LO + "mtu", "70000\n") == 6);           // max_mtu 0: no upper bound
  CHECK(m.read(LO + "mtu") == "70000\n");
}

TEST_CASE("down through flags: carrier, dormant, testing, speed, duplex are EINVAL; up again") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "flags", "0x1002\n") == 7);
  CHECK(m.read(D0 + "flags") == "0x1002\n");
  for (const char* f : {"carrier", "dormant", "testing", "speed", "duplex"}) {
    CAPTURE(f);
    CHECK(m.read(D0 + f) == "<EINVAL>");
  }
  CHECK(m.read(D0 + "operstate") == "down\n");
  CHECK(m.read(D1 + "carrier") == "0\n");  // the cable's other end lost its link
  CHECK(m.read(D1 + "operstate") == "down\n");
  CHECK(m.read(D0 + "carrier_down_count") == "1\n");
  CHECK(m.events_of("eth0", "stop").size() == 1);
  CHECK(m.write(D0 + "flags", "0x1003\n") == 7);
  CHECK(m.read(D0 + "carrier") == "1\n");
  CHECK(m.read(D0 + "operstate") == "up\n");
  CHECK(m.read(D0 + "speed") == "1000\n");
  CHECK(m.read(D1 + "carrier") == "1\n");
  CHECK(m.read(D0 + "carrier_changes") == "3\n");
}

TEST_CASE("flags: only the user bits are taken; PROMISC counts; volatile bits stay") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "flags", "0x1083") == 6);  // NOARP
  CHECK(m.read(D0 + "flags") == "0x1083\n");
  CHECK(m.write(D0 + "flags", "0x100b") == 6);  // LOOPBACK is volatile: ignored
  CHECK(m.read(D0 + "flags") == "0x1003\n");
  CHECK(m.write(D0 + "flags", "0x1103") == 6);  // PROMISC
  CHECK(m.read(D0 + "flags") == "0x1103\n");
  CHECK(m.events_of("eth0", "promiscuous").size() == 1);
  CHECK(m.write(D0 + "flags", "4099") == 4);  // decimal 0x1003
  CHECK(m.read(D0 + "flags") == "0x1003\n");
  CHECK(m.write(D0 + "flags", "0x1003", no_net_admin()) == -EPERM);
  for (const char* bad : {"\n", "junk", "-1", "0x", "18446744073709551616", "3 "}) {
    CAPTURE(bad);
    const long r = m.write(D0 + "flags", bad);
    CHECK((r == -EINVAL || r == -ERANGE));
    CHECK(m.read(D0 + "flags") == "0x1003\n");
  }
  CHECK(m.write(D0 + "flags", "") == 0);
}

TEST_CASE("flags: a failed open still applies the other bits (kernel quirk)") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "flags", "0x1002") == 6);
  CHECK(m.write("kernel/debug/vsysfs/net/eth0/faults", "fail_open ENOMEM\n") > 0);
  CHECK(m.write(D0 + "flags", "0x1083") == -ENOMEM);
  CHECK(m.read(D0 + "flags") == "0x1082\n");  // NOARP applied, not up
  CHECK(m.read(D0 + "carrier") == "<EINVAL>");
  CHECK(m.events_of("eth0", "open").back().result == "ENOMEM");
  CHECK(m.write("kernel/debug/vsysfs/net/eth0/faults", "fail_open 0") > 0);
  CHECK(m.write(D0 + "flags", "0x1003") == 6);
  CHECK(m.read(D0 + "flags") == "0x1003\n");
}

TEST_CASE("mtu: round trip, range, bad input changes nothing") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "mtu", "9000\n") == 5);
  CHECK(m.read(D0 + "mtu") == "9000\n");
  CHECK(m.write(D0 + "mtu", "68") == 2);
  CHECK(m.read(D0 + "mtu") == "68\n");
  CHECK(m.write(D0 + "mtu", "0x5dc") == 5);
  CHECK(m.read(D0 + "mtu") == "1500\n");
  const std::pair<std::string, long> bad[] = {
      {"\n", -EINVAL}, {"junk", -EINVAL}, {"-1", -EINVAL}, {"67", -EINVAL},
      {"9001", -EINVAL}, {"0x2", -EINVAL}, {"1500x", -EINVAL}, {" 1500", -EINVAL},
      {"18446744073709551616", -ERANGE}, {"4294967295", -EINVAL}, {"1500\n\n", -EINVAL},
  };
  for (const auto& [in, err] : bad) {
    CAPTURE(in);
    CHECK(m.write(D0 + "mtu", in) == err);
    CHECK(m.read(D0 + "mtu") == "1500\n");
  }
  CHECK(m.write(D0 + "mtu", "9000", no_net_admin()) == -EPERM);
  CHECK(m.read(D0 + "mtu") == "1500\n");
  CHECK(m.events_of("eth0", "mtu").size() >= 3);
}

TEST_CASE("mtu: the value is cast to int, and the parser stops at NUL (kernel quirk)") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "mtu", "4294968296") == 10);  // 2^32 + 1000 -> 1000
  CHECK(m.read(D0 + "mtu") == "1000\n");
  CHECK(m.write(D0 + "mtu", std::string("9000\0junk", 9)) == 9);
  CHECK(m.read(D0 + "mtu") == "9000\n");
}

TEST_CASE("ifalias: round trip, newline stripped, 256 bytes is EINVAL, empty clears") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "ifalias", "uplink to rack 7\n") == 17);
  CHECK(m.read(D0 + "ifalias") == "uplink to rack 7\n");
  CHECK(m.write(D0 + "ifalias", std::string(255, 'a')) == 255);
  CHECK(m.read(D0 + "ifalias") == std::string(255, 'a').append("\n"));
  CHECK(m.write(D0 + "ifalias", std::string(256, 'b')) == -EINVAL);
  CHECK(m.write(D0 + "ifalias", std::string(256, 'b').append("\n")) == -EINVAL);
  CHECK(m.read(D0 + "ifalias") == std::string(255, 'a').append("\n"));
  CHECK(m.write(D0 + "ifalias", "x", no_net_admin()) == -EPERM);
  CHECK(m.write(D0 + "ifalias", "\n") == 1);
  CHECK(m.read(D0 + "ifalias") == "");
}

TEST_CASE("tx_queue_len: round trip, ERANGE above u32, prints as %d (kernel quirk)") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "tx_queue_len", "500") == 3);
  CHECK(m.read(D0 + "tx_queue_len") == "500\n");
  CHECK(m.write(D0 + "tx_queue_len", "4294967296") == -ERANGE);
  for (const char* bad : {"\n", "junk", "-1", "1e3"}) {
    CAPTURE(bad);
    CHECK(m.write(D0 + "tx_queue_len", bad) == -EINVAL);
  }
  CHECK(m.read(D0 + "tx_queue_len") == "500\n");
  CHECK(m.write(D0 + "tx_queue_len", "1", no_net_admin()) == -EPERM);
  CHECK(m.write(D0 + "tx_queue_len", "4294967295") == 10);
  CHECK(m.read(D0 + "tx_queue_len") == "-1\n");
}

TEST_CASE("carrier: ndo_change_carrier, EINVAL while down, notifies pollers") {
  TestMachine m(kMachine);
  const auto before = event_count(m, D0 + "carrier");
  const auto before_op = event_count(m, D0 + "operstate");
  CHECK(m.write(D0 + "carrier", "0\n") == 2);
  CHECK(m.read(D0 + "carrier") == "0\n");
  CHECK(m.read(D0 + "operstate") == "down\n");
  CHECK(event_count(m, D0 + "carrier") > before);
  CHECK(event_count(m, D0 + "operstate") > before_op);
  CHECK(m.write(D0 + "carrier", "1") == 1);
  CHECK(m.read(D0 + "carrier") == "1\n");
  CHECK(m.read(D0 + "operstate") == "up\n");
  CHECK(m.read(D0 + "carrier_up_count") == "2\n");
  CHECK(m.read(D0 + "carrier_down_count") == "1\n");
  for (const char* bad : {"\n", "on", "-1", "18446744073709551616"}) {
    CAPTURE(bad);
    CHECK(m.write(D0 + "carrier", bad) < 0);
    CHECK(m.read(D0 + "carrier") == "1\n");
  }
  CHECK(m.write(D0 + "carrier", "0", no_net_admin()) == -EPERM);
  CHECK(m.write(D1 + "carrier", "0") == -EOPNOTSUPP);  // eth1 has no ndo_change_carrier
  CHECK(m.write(D0 + "flags", "0x1002") == 6);
  CHECK(m.write(D0 + "carrier", "1") == -EINVAL);
}

TEST_CASE("carrier without ndo_change_carrier: EOPNOTSUPP before parsing or EPERM") {
  // net-sysfs.c carrier_store checks the op first (5.16+): junk, overflow and
  // a caller without CAP_NET_ADMIN all get EOPNOTSUPP, and nothing changes.
  TestMachine m(kMachine);
  for (const std::string& dev : {LO, D1}) {
    for (const char* in : {"\n", "junk", "-1\n", "18446744073709551616\n", "1 \n", "1"}) {
      CAPTURE(dev);
      CAPTURE(in);
      CHECK(m.write(dev + "carrier", in) == -EOPNOTSUPP);
    }
    CHECK(m.write(dev + "carrier", "0", no_net_admin()) == -EOPNOTSUPP);
    CHECK(m.read(dev + "carrier") == "1\n");
  }
  // With the op, the parse errors are kstrtoul's.
  CHECK(m.write(D0 + "carrier", "junk") == -EINVAL);
  CHECK(m.write(D0 + "carrier", "18446744073709551616") == -ERANGE);
}

TEST_CASE("proto_down: carrier follows; EOPNOTSUPP without change_proto_down") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "proto_down", "1") == 1);
  CHECK(m.read(D0 + "proto_down") == "1\n");
  CHECK(m.read(D0 + "carrier") == "0\n");
  CHECK(m.write(D0 + "proto_down", "0") == 1);
  CHECK(m.read(D0 + "proto_down") == "0\n");
  CHECK(m.read(D0 + "carrier") == "1\n");
  CHECK(m.write(D1 + "proto_down", "1") == -EOPNOTSUPP);
  CHECK(m.write(D0 + "proto_down", "x") == -EINVAL);
  CHECK(m.write(D0 + "proto_down", "1", no_net_admin()) == -EPERM);
  CHECK(m.read(D0 + "proto_down") == "0\n");
}

TEST_CASE("netdev_group, gro_flush_timeout, napi_defer_hard_irqs, threaded") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "netdev_group", "7") == 1);
  CHECK(m.read(D0 + "netdev_group") == "7\n");
  CHECK(m.write(D0 + "netdev_group", "-1") == -EINVAL);
  CHECK(m.write(D0 + "netdev_group", "junk") == -EINVAL);
  CHECK(m.write(D0 + "netdev_group", "3", no_net_admin()) == -EPERM);
  CHECK(m.read(D0 + "netdev_group") == "7\n");
  CHECK(m.write(D0 + "gro_flush_timeout", "20000\n") == 6);
  CHECK(m.read(D0 + "gro_flush_timeout") == "20000\n");
  CHECK(m.write(D0 + "gro_flush_timeout", "-5") == -EINVAL);
  CHECK(m.write(D0 + "napi_defer_hard_irqs", "2147483647") == 10);
  CHECK(m.read(D0 + "napi_defer_hard_irqs") == "2147483647\n");
  CHECK(m.write(D0 + "napi_defer_hard_irqs", "2147483648") == -ERANGE);
  CHECK(m.read(D0 + "napi_defer_hard_irqs") == "2147483647\n");
  CHECK(m.write(D0 + "threaded", "1") == 1);
  CHECK(m.read(D0 + "threaded") == "1\n");
  CHECK(m.write(D0 + "threaded", "2") == -EOPNOTSUPP);
  CHECK(m.read(D0 + "threaded") == "1\n");
  CHECK(m.write(D0 + "uevent", "change\n") == 7);
  CHECK(m.write(D0 + "uevent", "explode\n") == -EINVAL);
  CHECK(m.events_of("eth0", "uevent").size() == 2);
  // kobject_action_args: after the action only a UUID may follow (the old
  // parser took any words).
  CHECK(m.write(D0 + "uevent", "add 1234") == -EINVAL);
  CHECK(m.write(D0 + "uevent", "add 12345678-1234-1234-1234-123456789abc A=1\n") == 45);
  const auto ev = m.events_of("eth0", "uevent");
  REQUIRE(ev.size() == 4);
  CHECK(ev.back().field("env").find("DEVPATH=/devices/pci0000:00/0000:00:03.0/net/eth0 SUBSYSTEM=net "
                                    "SYNTH_UUID=12345678-1234-1234-1234-123456789abc SYNTH_ARG_A=1 "
                                    "INTERFACE=eth0 IFINDEX=2 SEQNUM=") != std::string::npos);
}

TEST_CASE("the PCI function's uevent takes the kernel's grammar") {
  TestMachine m(kMachine);
  const std::string pci = "devices/pci0000:00/0000:00:03.0/uevent";
  CHECK(m.write(pci, "change\n") == 7);
  CHECK(m.write(pci, "add 1234") == -EINVAL);
  CHECK(m.write(pci, "add 12345678-1234-1234-1234-123456789abc junk") == -EINVAL);
  const auto ev = m.events_of("0000:00:03.0", "uevent");
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].result == "OK");
  CHECK(ev[0].field("env").find("DEVPATH=/devices/pci0000:00/0000:00:03.0 SUBSYSTEM=pci SYNTH_UUID=0 DRIVER=") !=
        std::string::npos);
  CHECK(ev[1].result == "EINVAL");
}

TEST_CASE("queues: rps_cpus mask, rps_flow_cnt rounding (kernel quirk), tx-0") {
  TestMachine m(kMachine);
  const std::string rx = D0 + "queues/rx-0/";
  const std::string tx = D0 + "queues/tx-0/";
  CHECK(m.read(rx + "rps_cpus") == "0\n");
  CHECK(m.write(rx + "rps_cpus", "3\n") == 2);
  CHECK(m.read(rx + "rps_cpus") == "3\n");
  CHECK(m.write(rx + "rps_cpus", "f") == 1);
  CHECK(m.read(rx + "rps_cpus") == "f\n");
  CHECK(m.write(rx + "rps_cpus", "10") == -EOVERFLOW);  // CPU 4 of 4
  CHECK(m.write(rx + "rps_cpus", "g") == -EINVAL);
  CHECK(m.write(rx + "rps_cpus", "1,00000001") == -EOVERFLOW);  // two chunks, one allowed
  CHECK(m.write(rx + "rps_cpus", "1", no_net_admin()) == -EPERM);
  CHECK(m.read(rx + "rps_cpus") == "f\n");
  CHECK(m.read(rx + "rps_flow_cnt") == "0\n");
  CHECK(m.write(rx + "rps_flow_cnt", "100") == 3);
  CHECK(m.read(rx + "rps_flow_cnt") == "128\n");
  CHECK(m.write(rx + "rps_flow_cnt", "0") == 1);
  CHECK(m.read(rx + "rps_flow_cnt") == "0\n");
  CHECK(m.write(rx + "rps_flow_cnt", "junk") == -EINVAL);
  CHECK(m.write(rx + "rps_flow_cnt", "8589934592") == -EINVAL);  // mask beyond u32
  CHECK(m.read(tx + "tx_timeout") == "0\n");
  CHECK(m.read(tx + "tx_maxrate") == "0\n");
  CHECK(m.read(tx + "traffic_class") == "<ENOENT>");  // single queue
  CHECK(m.write(tx + "tx_maxrate", "100") == -EOPNOTSUPP);
  CHECK(m.write(tx + "tx_maxrate", "100", no_net_admin()) == -EPERM);
}

TEST_CASE("rps_cpus: bitmap_parse skips a non-hex 9th character (kernel quirk)") {
  TestMachine m(kMachine);
  const std::string rx = D0 + "queues/rx-0/";
  CHECK(m.write(rx + "rps_cpus", "x00000003") == 9);
  CHECK(m.read(rx + "rps_cpus") == "3\n");
  CHECK(m.write(rx + "rps_cpus", "100000003") == -EOVERFLOW);
}

TEST_CASE("numa_node of the PCI parent: CAP_SYS_ADMIN, online nodes only") {
  TestMachine m(kMachine);
  const std::string p = "devices/pci0000:00/0000:00:03.0/numa_node";
  CHECK(m.write(p, "1") == -EINVAL);  // one node online
  CHECK(m.write(p, "-2") == -EINVAL);
  CHECK(m.write(p, "x") == -EINVAL);
  // kstrtoint's ERANGE is reported as EINVAL too (pci-sysfs.c, 5.13+)
  for (const char* big : {"2147483648", "18446744073709551616\n", "-2147483649"}) {
    CAPTURE(big);
    CHECK(m.write(p, big) == -EINVAL);
  }
  CHECK(m.write(p, "-1", Caller::with_caps(0, 1ULL << 12)) == -EPERM);  // NET_ADMIN is not enough
  CHECK(m.read(p) == "0\n");
  CHECK(m.write(p, "-1") == 2);
  CHECK(m.read(p) == "-1\n");
}

TEST_CASE("with [numa], nr_cpu_ids and nr_node_ids are the NUMA machine's") {
  const std::string numa = R"([numa]
[[numa.node]]
cpus = "0-3"
memory_mb = 512
[[numa.node]]
cpus = "4-7"
memory_mb = 512
)";
  const std::string nic = "[[net.interface]]\nname='eth0'\npci='0000:00:03.0'\n";
  TestMachine m(numa + "[net]\n" + nic);
  const std::string p = "devices/pci0000:00/0000:00:03.0/numa_node";
  CHECK(m.write(p, "1") == 1);  // node 1 is online
  CHECK(m.read(p) == "1\n");
  CHECK(m.write(p, "2") == -EINVAL);
  const std::string rx = "devices/pci0000:00/0000:00:03.0/net/eth0/queues/rx-0/";
  CHECK(m.write(rx + "rps_cpus", "f0") == 2);  // CPUs 4-7 exist
  CHECK(m.read(rx + "rps_cpus") == "f0\n");
  CHECK(m.write(rx + "rps_cpus", "100") == -EOVERFLOW);
  // Saying the same again is fine; saying something else is an error.
  CHECK_NOTHROW(TestMachine(numa + "[net]\nnr_cpu_ids = 8\nnr_node_ids = 2\n" + nic));
  CHECK_THROWS_WITH_AS(TestMachine(numa + "[net]\nnr_cpu_ids = 4\n" + nic),
                       doctest::Contains("contradicts [numa]"), vsysfs::core::ConfigError);
}

TEST_CASE("machine file errors name the key") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[net]\n[[net.interface]]\nname='eth0'\npci='0000:00:03.0'\npeer='eth9'\n"),
                       doctest::Contains("peer"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[net]\n[[net.interface]]\nname='eth0'\n"),
                       doctest::Contains("pci"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[net]\n[[net.interface]]\nname='eth0'\npci='0000:00:03.0'\nmtu=9000\n"),
                       doctest::Contains("mtu"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[net]\n[[net.interface]]\nname='eth0'\npci='0000:00:03.0'\nspeeed=1\n"),
                       doctest::Contains("speeed"), ConfigError);
  // The revision ID is one config byte.
  CHECK_THROWS_WITH_AS(
      TestMachine("[net]\n[[net.interface]]\nname='eth0'\npci='0000:00:03.0'\npci_revision=256\n"),
      doctest::Contains("pci_revision"), ConfigError);
}

}  // TEST_SUITE

TEST_SUITE("netdev") {

TEST_CASE("a NIC without a cable: up, no carrier, operstate down (linkwatch_init_dev)") {
  TestMachine m(R"([net]
[[net.interface]]
name = "eth4"
pci = "0000:00:07.0"
link = "down"
)");
  const std::string d = "devices/pci0000:00/0000:00:07.0/net/eth4/";
  CHECK(m.read(d + "flags") == "0x1003\n");
  CHECK(m.read(d + "carrier") == "0\n");
  CHECK(m.read(d + "operstate") == "down\n");
  CHECK(m.read(d + "speed") == "-1\n");  // SPEED_UNKNOWN
  CHECK(m.read(d + "duplex") == "unknown\n");
  CHECK(m.read(d + "carrier_changes") == "0\n");
  CHECK(m.write("kernel/debug/vsysfs/net/eth4/link", "up\n") == 3);
  CHECK(m.read(d + "carrier") == "1\n");
  CHECK(m.read(d + "operstate") == "up\n");
  CHECK(m.read(d + "speed") == "1000\n");
}

TEST_CASE("the shipped machines build (run from the repository root)") {
  for (const char* file : {"<default>", "machines/net-lab.toml"}) {
    CAPTURE(file);
    vsysfs::core::ManualClock clock;
    vsysfs::core::EventLog events{clock};
    vsysfs::core::Env env{clock, events};
    vsysfs::core::Tree tree;
    vsysfs::core::LockService locks{env};
    vsysfs::devices::Machine machine{env, tree, &clock, locks};
    CHECK_NOTHROW(machine.build(
        std::string_view(file) == "<default>"
            ? vsysfs::devices::parse_machine_toml(vsysfs::devices::default_machine_toml(), file)
            : vsysfs::devices::load_machine_file(file)));
    CHECK(tree.resolve("class/net/eth0") != 0);
    CHECK(tree.resolve("class/net/lo") != 0);
  }
}

}  // TEST_SUITE

TEST_SUITE("netdev") {

TEST_CASE("numeric stores: the common bad-input table changes nothing and is logged") {
  TestMachine m(kMachine);
  const char* attrs[] = {"netdev_group", "mtu", "flags", "tx_queue_len", "gro_flush_timeout",
                         "napi_defer_hard_irqs", "proto_down", "threaded", "carrier"};
  const std::pair<std::string, long> bad[] = {
      {"\n", -EINVAL},   {"junk", -EINVAL}, {"-1", -EINVAL},  {" 1", -EINVAL},
      {"1 ", -EINVAL},   {"1\n\n", -EINVAL}, {"0x", -EINVAL}, {"1.0", -EINVAL},
      {"18446744073709551616", -ERANGE},     {"0x10000000000000000", -ERANGE},
  };
  for (const char* attr : attrs) {
    const std::string before = m.read(D0 + attr);
    for (const auto& [in, err] : bad) {
      CAPTURE(attr);
      CAPTURE(in);
      CHECK(m.write(D0 + attr, in) == err);
      CHECK(m.read(D0 + attr) == before);
    }
    CHECK(m.write(D0 + attr, "0", no_net_admin()) == -EPERM);
    CHECK(m.read(D0 + attr) == before);
  }
  std::size_t einval = 0, eperm = 0;
  for (auto& e : m.events_of("eth0", "store")) {
    einval += e.result == "EINVAL";
    eperm += e.result == "EPERM";
  }
  CHECK(einval == std::size(attrs) * 8);
  CHECK(eperm == std::size(attrs));
}

TEST_CASE("stores accept base 0 and one trailing newline, and round-trip") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "netdev_group", "0x2") == 3);
  CHECK(m.read(D0 + "netdev_group") == "2\n");
  CHECK(m.write(D0 + "netdev_group", "010\n") == 4);  // octal
  CHECK(m.read(D0 + "netdev_group") == "8\n");
  CHECK(m.write(D0 + "gro_flush_timeout", "+7") == 2);
  CHECK(m.read(D0 + "gro_flush_timeout") == "7\n");
  CHECK(m.write(D0 + "tx_queue_len", "0x2") == 3);
  CHECK(m.read(D0 + "tx_queue_len") == "2\n");
  CHECK(m.events_of("eth0", "store").back().field("attr") == "\"tx_queue_len\"");
}

TEST_CASE("ifalias keeps bytes after a NUL but shows up to it (kernel quirk)") {
  TestMachine m(kMachine);
  CHECK(m.write(D0 + "ifalias", std::string("ab\0cd\n", 6)) == 6);
  CHECK(m.read(D0 + "ifalias") == "ab\n");
  CHECK(m.write(D0 + "ifalias", std::string("\0cd", 3)) == 3);
  CHECK(m.read(D0 + "ifalias") == "");  // dev_get_alias returns 0: empty file
}

TEST_CASE("dev_id prints 0 as 0x0, flags as %#x (kernel quirk)") {
  TestMachine m(kMachine);
  CHECK(m.read(D0 + "dev_id") == "0x0\n");
  CHECK(m.read(LO + "dev_id") == "0x0\n");
  CHECK(m.write(LO + "flags", "0x8") == 3);  // lo down: only LOOPBACK remains
  CHECK(m.read(LO + "flags") == "0x8\n");
}

TEST_CASE("PCI config: unprivileged readers see 64 bytes (kernel quirk)") {
  TestMachine m(kMachine);
  const std::string cfg = "devices/pci0000:00/0000:00:03.0/config";
  CHECK(m.pread(cfg, 256, 0).size() == 256);
  CHECK(m.pread(cfg, 256, 0, Caller::user(1000)).size() == 64);
  CHECK(m.pread(cfg, 16, 64, Caller::user(1000)).empty());
  CHECK(m.pread(cfg, 16, 64).size() == 16);
}

TEST_CASE("knobs: modes, round trips and bad input") {
  TestMachine m(kMachine);
  const std::string k = "kernel/debug/vsysfs/net/eth0/";
  CHECK(mode_of(m, k + "link") == 0600);
  CHECK(mode_of(m, k + "traffic") == 0600);
  CHECK(mode_of(m, k + "faults") == 0600);
  CHECK(mode_of(m, k + "ordering") == 0600);
  CHECK(mode_of(m, k + "mmio") == 0400);
  CHECK(m.exists("kernel/debug/vsysfs/net/lo/traffic"));
  CHECK_FALSE(m.exists("kernel/debug/vsysfs/net/lo/link"));

  CHECK(m.write(k + "traffic", "count 10 size 100 rate 5 cpus 3\n") == 32);
  const std::string t = m.read(k + "traffic");
  CHECK(t.find("count 10\nsize 100\nrate 5\ncpus 3\nstate stopped\n") == 0);
  for (const char* bad : {"\n", "count", "count x", "size 13", "size 65536", "rate 0",
                          "rate 100000001", "cpus 0", "cpus 5", "bogus 1", "count -1",
                          "start now", "count 1 size"}) {
    CAPTURE(bad);
    CHECK(m.write(k + "traffic", bad) == -EINVAL);
    CHECK(m.read(k + "traffic") == t);
  }
  CHECK(m.write(k + "traffic", "start") == 5);
  CHECK(m.write(k + "traffic", "start") == -EBUSY);
  CHECK(m.write(k + "traffic", "rate 9") == -EBUSY);
  m.advance_ms(2000);
  CHECK(m.read(k + "traffic").find("state stopped\nsent 10\n") != std::string::npos);
  CHECK(m.write(D0 + "flags", "0x1002") == 6);
  CHECK(m.write(k + "traffic", "start") == -ENETDOWN);

  CHECK(m.read(k + "faults") == "hang_tx 0\ndrop_rx 0\nfail_open 0\nskip_queue_stop 0\n");
  CHECK(m.write(k + "faults", "drop_rx 5") == 9);
  CHECK(m.write(k + "faults", "fail_open 12") == 12);
  CHECK(m.read(k + "faults") == "hang_tx 0\ndrop_rx 5\nfail_open ENOMEM\nskip_queue_stop 0\n");
  for (const char* bad : {"", "\n", "hang_tx", "hang_tx 2", "hang_tx x", "fail_open EFOO",
                          "fail_open -1", "skip_queue_stop 7", "melt 1", "drop_rx 1 2"}) {
    CAPTURE(bad);
    CHECK(m.write(k + "faults", bad) == (*bad ? -EINVAL : 0));
  }
  CHECK(m.read(k + "faults") == "hang_tx 0\ndrop_rx 5\nfail_open ENOMEM\nskip_queue_stop 0\n");

  CHECK(m.read(k + "ordering") == "flush\n");
  CHECK(m.write(k + "ordering", "posted\n") == 7);
  CHECK(m.read(k + "ordering") == "posted\n");
  CHECK(m.write(k + "ordering", "flushed") == -EINVAL);
  CHECK(m.read(k + "ordering") == "posted\n");

  CHECK(m.read(k + "link") == "up\n");
  CHECK(m.write(k + "link", "sideways") == -EINVAL);
  CHECK(m.write(k + "link", "down") == 4);
  CHECK(m.read(k + "link") == "down\n");
  CHECK(m.read(k + "mmio").find("doorbell_backwards 0\n") != std::string::npos);
}

}  // TEST_SUITE

TEST_SUITE("netdev") {

TEST_CASE("byte_queue_limits files: defaults, max, bounds, base 10") {
  TestMachine m(kMachine);
  const std::string b = D0 + "queues/tx-0/byte_queue_limits/";
  CHECK(m.read(b + "hold_time") == "1000\n");
  CHECK(m.read(b + "inflight") == "0\n");
  CHECK(m.read(b + "limit") == "0\n");
  CHECK(m.read(b + "limit_max") == "1879048192\n");
  CHECK(m.read(b + "limit_min") == "0\n");
  CHECK(mode_of(m, b + "inflight") == 0444);
  CHECK(mode_of(m, b + "limit") == 0644);
  CHECK(m.write(b + "limit_max", "1000000\n") == 8);
  CHECK(m.read(b + "limit_max") == "1000000\n");
  CHECK(m.write(b + "limit_max", "max\n") == 4);
  CHECK(m.read(b + "limit_max") == "1879048192\n");
  for (const char* bad : {"1879048193", "0x10", "junk", "-1", "max\n\n", "maxi", "4294967296"}) {
    CAPTURE(bad);
    const long r = m.write(b + "limit_min", bad);
    CHECK((r == -EINVAL || r == -ERANGE));
  }
  CHECK(m.read(b + "limit_min") == "0\n");
  CHECK(m.write(b + "hold_time", "500") == 3);
  CHECK(m.read(b + "hold_time") == "500\n");
  CHECK(m.write(b + "hold_time", "0x10") == -EINVAL);
}

TEST_CASE("xps_cpus: ENOENT on a single-queue device, before the capability check") {
  TestMachine m(kMachine);
  CHECK(m.read(D0 + "queues/tx-0/xps_cpus") == "<ENOENT>");
  CHECK(m.write(D0 + "queues/tx-0/xps_cpus", "1", no_net_admin()) == -ENOENT);
  CHECK(m.write(D0 + "queues/tx-0/xps_cpus", "1") == -ENOENT);
  TestMachine mq(R"([net]
nr_cpu_ids = 8
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
tx_queues = 2
rx_queues = 2
)");
  const std::string d = "devices/pci0000:00/0000:00:03.0/net/eth0/queues/";
  CHECK(mq.read(d + "tx-1/xps_cpus") == "00\n");
  CHECK(mq.write(d + "tx-1/xps_cpus", "c0") == 2);
  CHECK(mq.read(d + "tx-1/xps_cpus") == "c0\n");
  CHECK(mq.write(d + "tx-1/xps_cpus", "100") == -EOVERFLOW);
  CHECK(mq.read(d + "tx-1/traffic_class") == "0\n");
  CHECK(mq.exists(d + "rx-1/rps_cpus"));
}

}  // TEST_SUITE
