// Unit tests for the standard files of the NIC's PCI function
// (devices/net/netdev_pci.hpp): resource, resource0, config BAR0,
// modalias, enable, and local_cpus/local_cpulist from numa_node.

#include "devices/net/netdev_pci.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include <fmt/format.h>

#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

namespace {

// Two nodes of 2 CPUs each; eth0 on node 1, eth1 without a node, eth2
// with a 1 MiB BAR (aligned after eth1's 128 KiB).
constexpr const char* kMachine = R"([numa]
[[numa.node]]
cpus = "0-1"
memory_mb = 256
[[numa.node]]
cpus = "2-3"
memory_mb = 256
[net]
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
numa_node = 1
pci_subsystem_vendor = 0x8086
pci_subsystem_device = 0x001e
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
[[net.interface]]
name = "eth2"
pci = "0000:00:05.0"
pci_bar0_size = 0x100000
)";

const std::string P0 = "devices/pci0000:00/0000:00:03.0/";
const std::string P1 = "devices/pci0000:00/0000:00:04.0/";
const std::string P2 = "devices/pci0000:00/0000:00:05.0/";

std::uint32_t le32(const std::string& s, std::size_t off) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(s[off + static_cast<std::size_t>(i)]);
  return v;
}

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("PCI resource: 7 lines, BAR0 placed from 0xfe000000, naturally aligned") {
  TestMachine m(kMachine);
  const std::string zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
  std::string want0 = "0x00000000fe000000 0x00000000fe01ffff 0x0000000000040200\n";
  for (int i = 0; i < 6; ++i) want0 += zero;
  CHECK(m.read(P0 + "resource") == want0);
  CHECK(m.read(P1 + "resource").substr(0, 57) ==
        "0x00000000fe020000 0x00000000fe03ffff 0x0000000000040200\n");
  CHECK(m.read(P2 + "resource").substr(0, 57) ==
        "0x00000000fe100000 0x00000000fe1fffff 0x0000000000040200\n");
  // The config space's BAR0 holds the same address (memory, 32-bit).
  CHECK(le32(m.pread(P0 + "config", 64, 0), 0x10) == 0xfe000000);
  CHECK(le32(m.pread(P2 + "config", 64, 0), 0x10) == 0xfe100000);
  // resource0: the BAR's size, root-only, mmap only: read is EIO.
  CHECK(m.pread(P0 + "resource0", 16, 0) == "<EIO>");
  CHECK(m.open_errno(P0 + "resource0", O_RDONLY) == 0);
  CHECK(m.open_errno(P0 + "resource0", O_WRONLY) == 0);
  CHECK(m.write(P0 + "resource0", "x") == -EIO);
}

TEST_CASE("PCI modalias matches the ids and the config space") {
  TestMachine m(kMachine);
  CHECK(m.read(P0 + "modalias") == "pci:v00008086d0000100Esv00008086sd0000001Ebc02sc00i00\n");
  const std::string cfg = m.pread(P0 + "config", 64, 0);
  CHECK(le32(cfg, 0) == 0x100e8086);
  CHECK(le32(cfg, 0x2c) == 0x001e8086);
  CHECK(static_cast<unsigned char>(cfg[0x0b]) == 0x02);
}

TEST_CASE("PCI enable: 1 with a driver bound; stores: EPERM, EINVAL, EBUSY") {
  TestMachine m(kMachine);
  CHECK(m.read(P0 + "enable") == "1\n");
  CHECK(m.write(P0 + "enable", "0", Caller::user(1000)) == -EPERM);
  CHECK(m.write(P0 + "enable", "x") == -EINVAL);
  CHECK(m.write(P0 + "enable", "0") == -EBUSY);
  CHECK(m.write(P0 + "enable", "1") == -EBUSY);
  CHECK(m.read(P0 + "enable") == "1\n");
}

TEST_CASE("PCI local_cpus/local_cpulist are numa_node's online CPUs; -1 is every online CPU") {
  TestMachine m(kMachine);
  CHECK(m.read(P0 + "local_cpulist") == "2-3\n");
  CHECK(m.read(P0 + "local_cpus") == "c\n");
  CHECK(m.read(P1 + "local_cpulist") == "0-3\n");
  CHECK(m.read(P1 + "local_cpus") == "f\n");
  // numa_node follows a store...
  CHECK(m.write(P0 + "numa_node", "0") == 1);
  CHECK(m.read(P0 + "local_cpulist") == "0-1\n");
  // ...and CPU hotplug (cpumask_of_node holds online CPUs).
  CHECK(m.write("devices/system/cpu/cpu1/online", "0") == 1);
  CHECK(m.read(P0 + "local_cpulist") == "0\n");
  CHECK(m.read(P1 + "local_cpulist") == "0,2-3\n");
}

TEST_CASE("pci_bar0_size must be a power of two") {
  CHECK_THROWS_AS(TestMachine("[net]\n[[net.interface]]\nname = \"eth0\"\npci = \"0000:00:03.0\"\n"
                              "pci_bar0_size = 0x30000\n"),
                  vsysfs::core::ConfigError);
}

TEST_CASE("PCI power/: forbidden runtime PM (on), active since the device was added") {
  TestMachine m(kMachine);
  CHECK(m.read(P0 + "power/control") == "on\n");
  CHECK(m.read(P0 + "power/runtime_status") == "active\n");
  CHECK(m.read(P0 + "power/runtime_active_time") == "0\n");
  m.advance_ms(1500);
  CHECK(m.read(P0 + "power/runtime_active_time") == "1500\n");
  CHECK(m.read(P0 + "power/runtime_suspended_time") == "0\n");
  CHECK(m.read(P0 + "power/autosuspend_delay_ms") == "<EIO>");
  CHECK(m.write(P0 + "power/autosuspend_delay_ms", "5") == -EIO);
  CHECK(m.write(P0 + "power/control", "maybe") == -EINVAL);
  CHECK(m.write(P0 + "power/control", "auto") == 4);
  CHECK(m.read(P0 + "power/control") == "auto\n");
  // No runtime_suspend callback: still active.
  CHECK(m.read(P0 + "power/runtime_status") == "active\n");
}

}  // TEST_SUITE("netdev")
