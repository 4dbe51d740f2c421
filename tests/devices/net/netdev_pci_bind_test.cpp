// Unit tests of the PCI driver binding of the NICs
// (devices/net/netdev_pci_driver.hpp): unbind unregisters the interface,
// bind probes it again, the kernel's errnos, new_id/remove_id parsing,
// driver_override, enable while unbound, a power cycle.

#include "devices/net/netdev_pci_driver.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

namespace {

constexpr const char* kMachine = R"([net]
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
peer = "eth1"
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
mac = "52:54:00:12:34:57"
driver = "igb"
pci_device = 0x10c9
)";

const std::string F0 = "devices/pci0000:00/0000:00:03.0/";
const std::string E0 = F0 + "net/eth0/";
const std::string E1 = "devices/pci0000:00/0000:00:04.0/net/eth1/";
const std::string VNIC = "bus/pci/drivers/vnic/";
const std::string IGB = "bus/pci/drivers/igb/";
const std::string BDF0 = "0000:00:03.0";
const std::string BDF1 = "0000:00:04.0";

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("PCI unbind: the interface, its files and the driver links go; enable 0, no DRIVER=") {
  TestMachine m(kMachine);
  CHECK(m.read(E0 + "operstate") == "up\n");
  CHECK(m.write(VNIC + "unbind", BDF0 + "\n") == 13);
  CHECK_FALSE(m.exists("class/net/eth0"));
  CHECK_FALSE(m.exists(F0 + "net/eth0"));
  CHECK_FALSE(m.exists(F0 + "net/eth0/queues/tx-0"));
  CHECK_FALSE(m.exists(F0 + "driver"));
  CHECK_FALSE(m.exists(VNIC + BDF0));
  CHECK(m.exists(F0 + "vendor"));  // the function stays
  CHECK(m.read(F0 + "enable") == "0\n");
  CHECK(m.read(F0 + "uevent").find("DRIVER=") == std::string::npos);
  CHECK(m.read(E1 + "carrier") == "0\n");  // the cable's other end went down
  CHECK(m.events_of("eth0", "stop").size() == 1);
  CHECK(m.events_of("eth0", "unregister_netdevice").size() == 1);
  const auto ev = m.events_of("eth0", "uevent");
  REQUIRE(ev.size() == 1);
  const auto un = m.events_of(BDF0, "uevent");
  REQUIRE(un.size() == 1);
  // While unbound, enable is the user's: pci_enable_device / pci_disable_device.
  CHECK(m.write(F0 + "enable", "1") == 1);
  CHECK(m.read(F0 + "enable") == "1\n");
  CHECK(m.write(F0 + "enable", "0") == 1);
  CHECK(m.write(F0 + "enable", "0") == -EIO);
  CHECK(m.read(F0 + "enable") == "0\n");
}

TEST_CASE("PCI bind: the interface comes back as probe leaves it, MAC kept") {
  TestMachine m(kMachine);
  CHECK(m.write(E0 + "mtu", "1400") == 4);
  CHECK(m.write(E0 + "ifalias", "uplink") == 6);
  CHECK(m.write(VNIC + "unbind", BDF0) == 12);
  CHECK(m.write(VNIC + "bind", BDF0) == 12);
  CHECK(m.read(E0 + "address") == "52:54:00:12:34:56\n");
  CHECK(m.read(E0 + "flags") == "0x1002\n");
  CHECK(m.read(E0 + "operstate") == "down\n");
  CHECK(m.read(E0 + "mtu") == "1500\n");
  CHECK(m.read(E0 + "ifalias") == "");
  CHECK(m.read(E0 + "carrier_changes") == "0\n");
  CHECK(m.read(E0 + "statistics/rx_packets") == "0\n");
  CHECK(m.link_target(F0 + "driver") == "../../../bus/pci/drivers/vnic");
  CHECK(m.link_target(VNIC + BDF0) == "../../../../devices/pci0000:00/0000:00:03.0");
  CHECK(m.link_target("class/net/eth0") == "../../devices/pci0000:00/0000:00:03.0/net/eth0");
  CHECK(m.exists(F0 + "net/eth0/queues/rx-0/rps_cpus"));
  CHECK(m.read(F0 + "enable") == "1\n");
  CHECK(m.read(F0 + "uevent").find("DRIVER=vnic\n") == 0);
  // It works: open it and the link comes up at both ends.
  CHECK(m.write(E0 + "flags", "0x1003") == 6);
  CHECK(m.read(E0 + "operstate") == "up\n");
  CHECK(m.read(E1 + "carrier") == "1\n");
}

TEST_CASE("PCI bind/unbind errnos (drivers/base/bus.c)") {
  TestMachine m(kMachine);
  CHECK(m.write(VNIC + "bind", BDF0) == -EBUSY);    // __driver_probe_device: dev->driver
  CHECK(m.write(IGB + "unbind", BDF0) == -ENODEV);  // dev->driver != drv
  CHECK(m.write(VNIC + "unbind", BDF1) == -ENODEV);
  CHECK(m.write(VNIC + "unbind", "0000:00:09.0") == -ENODEV);  // no such device
  CHECK(m.write(VNIC + "unbind", "garbage") == -ENODEV);
  CHECK(m.write(VNIC + "unbind", "") == 0);  // sysfs_kf_write: no store for count 0
  CHECK(m.write(VNIC + "unbind", BDF0 + "\n\n") == -ENODEV);  // sysfs_streq: one newline
  CHECK(m.exists("class/net/eth0"));
  CHECK(m.write(VNIC + "unbind", BDF0) == 12);
  CHECK(m.write(VNIC + "unbind", BDF0) == -ENODEV);
  CHECK(m.write(IGB + "bind", BDF0) == -ENODEV);  // 8086:100e is not in igb's table
  CHECK_FALSE(m.exists("class/net/eth0"));
  CHECK(m.write(VNIC + "bind", std::string(BDF0) + '\0' + "junk") == 17);  // the C string
  CHECK(m.exists("class/net/eth0"));
}

TEST_CASE("PCI driver_override: only that driver matches, and it whatever its ID table") {
  TestMachine m(kMachine);
  CHECK(m.read(F0 + "driver_override") == "(null)\n");
  CHECK(m.write(F0 + "driver_override", std::string(4095, 'a')) == -EINVAL);
  CHECK(m.write(F0 + "driver_override", "igb\nrest") == 8);
  CHECK(m.read(F0 + "driver_override") == "igb\n");
  CHECK(m.write(VNIC + "unbind", BDF0) == 12);  // an override does not unbind
  CHECK(m.write(VNIC + "bind", BDF0) == -ENODEV);
  CHECK(m.write(IGB + "bind", BDF0) == 12);
  CHECK(m.link_target(F0 + "driver") == "../../../bus/pci/drivers/igb");
  CHECK(m.read(F0 + "uevent").find("DRIVER=igb\n") == 0);
  CHECK(m.write(F0 + "driver_override", "\n") == 1);
  CHECK(m.read(F0 + "driver_override") == "(null)\n");
  CHECK(m.write(F0 + "driver_override", "vfio-pci") == 8);
  CHECK(m.write(F0 + "driver_override", std::string(1, '\0')) == 1);  // strlen 0: cleared
  CHECK(m.read(F0 + "driver_override") == "(null)\n");
}

TEST_CASE("PCI new_id/remove_id: sscanf hex fields, EEXIST, driver_data, attach") {
  TestMachine m(kMachine);
  CHECK(m.write(VNIC + "new_id", "8086") == -EINVAL);
  CHECK(m.write(VNIC + "new_id", std::string(1, '\0')) == -EINVAL);
  CHECK(m.write(VNIC + "new_id", "x 1") == -EINVAL);
  CHECK(m.write(VNIC + "new_id", "8086 100e") == -EEXIST);            // the static table has it
  CHECK(m.write(VNIC + "new_id", "0x8086 0x100E\n") == -EEXIST);      // 0x prefix, upper case
  CHECK(m.write(VNIC + "new_id", "8086 10c9 0 0 0 0 1") == -EINVAL);  // no entry has driver_data 1
  CHECK(m.write(VNIC + "remove_id", "8086 10c9") == -ENODEV);
  // igb's function, unbound, then vnic learns its id: driver_attach binds it.
  CHECK(m.write(IGB + "unbind", BDF1) == 12);
  CHECK(m.write(VNIC + "new_id", "8086 10c9") == 9);
  CHECK(m.link_target("devices/pci0000:00/0000:00:04.0/driver") == "../../../bus/pci/drivers/vnic");
  CHECK(m.exists("class/net/eth1"));
  CHECK(m.write(VNIC + "new_id", "8086 10c9") == -EEXIST);         // the dynamic id now
  CHECK(m.write(VNIC + "remove_id", "8086 10c9 1 1") == -ENODEV);  // subvendor must match
  CHECK(m.write(VNIC + "remove_id", "8086 10c9") == 9);
  CHECK(m.write(VNIC + "remove_id", "8086 10c9") == -ENODEV);
  // A removed id does not unbind.
  CHECK(m.exists("class/net/eth1"));
}

TEST_CASE("PCI drivers_probe: an unbound function gets the first driver that matches it") {
  TestMachine m(kMachine);
  CHECK(m.write("bus/pci/drivers_probe", "0000:00:09.0") == -ENODEV);
  CHECK(m.write("bus/pci/drivers_probe", BDF0) == 12);  // bound: stays bound
  CHECK(m.write(VNIC + "unbind", BDF0) == 12);
  CHECK(m.write(F0 + "driver_override", "vfio-pci") == 8);
  CHECK(m.write("bus/pci/drivers_probe", BDF0) == 12);  // nothing matches: still the count
  CHECK_FALSE(m.exists("class/net/eth0"));
  CHECK(m.write(F0 + "driver_override", "igb") == 3);
  CHECK(m.write("bus/pci/drivers_probe", BDF0 + "\n") == 13);
  CHECK(m.link_target(F0 + "driver") == "../../../bus/pci/drivers/igb");
  CHECK(m.exists("class/net/eth0"));
}

TEST_CASE("PCI driver uevent: a synthetic event of the driver's kobject, SUBSYSTEM=drivers") {
  TestMachine m(kMachine);
  CHECK(m.write(VNIC + "uevent", "change") == 6);
  const auto ev = m.events_of("vnic", "uevent");
  REQUIRE(ev.size() == 1);
  CHECK(m.write(VNIC + "uevent", "bogus") == -EINVAL);
}

TEST_CASE("PCI: a power cycle probes an unbound function again") {
  TestMachine m(kMachine);
  CHECK(m.write(VNIC + "unbind", BDF0) == 12);
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "reboot") == 6);
  CHECK(m.exists("class/net/eth0"));
  CHECK(m.link_target(F0 + "driver") == "../../../bus/pci/drivers/vnic");
  CHECK(m.read(E0 + "operstate") == "up\n");  // the machine file's up = true
}

}  // TEST_SUITE("netdev")
