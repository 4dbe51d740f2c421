// Unit tests of an I350 function's capability list, BARs and MSI-X
// (devices/net/netdev_pci.hpp): the config bytes lspci decodes, resource
// and resource3, msi_irqs/ while a driver is bound, and what unbind and
// bind do to them.

#include "devices/net/netdev_pci.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

namespace {

// Two I350 ports (1 and 4 queues) and an e1000, which has no capabilities.
constexpr const char* kMachine = R"([net]
[[net.interface]]
name = "eth0"
pci = "0000:00:03.0"
driver = "igb"
pci_device = 0x1521
pci_subsystem_vendor = 0x1028
pci_subsystem_device = 0x1f60
pci_bar0_size = 0x100000
[[net.interface]]
name = "eth1"
pci = "0000:00:04.0"
[[net.interface]]
name = "eth2"
pci = "0000:00:05.0"
driver = "igb"
pci_device = 0x1521
pci_bar0_size = 0x100000
rx_queues = 4
tx_queues = 4
)";

const std::string F0 = "devices/pci0000:00/0000:00:03.0/";
const std::string F1 = "devices/pci0000:00/0000:00:04.0/";
const std::string F2 = "devices/pci0000:00/0000:00:05.0/";
const std::string IGB = "bus/pci/drivers/igb/";

unsigned u8(const std::string& s, std::size_t off) { return static_cast<unsigned char>(s[off]); }
unsigned le16(const std::string& s, std::size_t off) { return u8(s, off) | u8(s, off + 1) << 8; }
std::uint32_t le32(const std::string& s, std::size_t off) {
  return le16(s, off) | static_cast<std::uint32_t>(le16(s, off + 2)) << 16;
}

// The capability IDs in list order, as pci_find_capability walks them.
std::vector<std::string> cap_chain(const std::string& cfg) {
  std::vector<std::string> out;
  if (!(le16(cfg, 0x06) & 0x10)) return out;  // PCI_STATUS_CAP_LIST
  for (unsigned pos = u8(cfg, 0x34), n = 0; pos != 0 && n < 48; pos = u8(cfg, pos + 1), ++n)
    out.push_back(fmt::format("{:02x}@{:02x}", u8(cfg, pos), pos));
  return out;
}

std::string listing(TestMachine& m, const std::string& dir) {
  auto l = m.tree.list(m.tree.resolve(dir));
  REQUIRE(l);
  std::vector<std::string> out;
  for (const auto& e : *l)
    out.push_back(fmt::format("{} {:o}", e.name, m.tree.find(dir + "/" + e.name)->mode.load()));
  std::sort(out.begin(), out.end());
  return fmt::format("{}", fmt::join(out, ","));
}

}  // namespace

TEST_SUITE("netdev") {

TEST_CASE("igb's MSI-X vectors: a vector per queue, paired above 4 queues, one for link") {
  using vsysfs::devices::igb_msix_vectors;
  CHECK(igb_msix_vectors(1, 1) == 3);
  CHECK(igb_msix_vectors(2, 2) == 5);
  CHECK(igb_msix_vectors(4, 4) == 9);
  CHECK(igb_msix_vectors(5, 5) == 6);
  CHECK(igb_msix_vectors(8, 8) == 9);
  CHECK(igb_msix_vectors(16, 16) == 9);  // rss_queues is at most 8
  CHECK(igb_msix_vectors(1, 4) == 9);    // igb has as many TX as RX queues
}

TEST_CASE("I350 config: PM, MSI, MSI-X, Express in a list from 0x34; MSI-X enabled while bound") {
  TestMachine m(kMachine);
  const std::string cfg = m.pread(F0 + "config", 256, 0);
  REQUIRE(cfg.size() == 256);
  CHECK(cap_chain(cfg) == std::vector<std::string>{"01@40", "05@50", "11@70", "10@a0"});
  CHECK(le16(cfg, 0x42) == 0xc823);        // PM v3, DSI, PME from D0, D3hot, D3cold
  CHECK(le16(cfg, 0x44) == 0x2008);        // D0, NoSoftRst
  CHECK(le16(cfg, 0x52) == 0x0180);        // MSI: 64-bit, maskable, 1 vector, off
  CHECK(le16(cfg, 0x72) == 0x8009);        // MSI-X: enabled, 10 entries
  CHECK(le32(cfg, 0x74) == 0x00000003);    // table: BAR3 + 0
  CHECK(le32(cfg, 0x78) == 0x00002003);    // PBA: BAR3 + 0x2000
  CHECK(le16(cfg, 0xa2) == 0x0002);        // Express v2, Endpoint
  CHECK((le16(cfg, 0x04) & 0x0400) != 0);  // INTx disabled for MSI-X
  CHECK(le32(cfg, 0x18) == 0x0000e001);    // BAR2: I/O at 0xe000
  CHECK(le32(cfg, 0x1c) == 0xfe300000);    // BAR3 after the BAR0s
  // A reader without CAP_SYS_ADMIN sees the header's status and pointer.
  const std::string user = m.pread(F0 + "config", 256, 0, Caller::user(1000));
  CHECK(user.size() == 64);
  CHECK(u8(user, 0x34) == 0x40);
  // The e1000 has none of it.
  const std::string e1000 = m.pread(F1 + "config", 256, 0);
  CHECK(cap_chain(e1000).empty());
  CHECK(u8(e1000, 0x34) == 0);
  CHECK(le32(e1000, 0x18) == 0);
  CHECK(le16(e1000, 0x04) == 0x0007);
}

TEST_CASE("I350 resource: BAR0, BAR2 I/O and BAR3, the same as config; resource3 like resource0") {
  TestMachine m(kMachine);
  const std::string zero = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
  CHECK(m.read(F0 + "resource") ==
        "0x00000000fe000000 0x00000000fe0fffff 0x0000000000040200\n" + zero +
            "0x000000000000e000 0x000000000000e01f 0x0000000000040101\n"
            "0x00000000fe300000 0x00000000fe303fff 0x0000000000040200\n" +
            zero + zero + zero);
  // eth1's e1000 BAR0 sits between; eth2's BARs follow eth0's.
  CHECK(m.read(F1 + "resource") == "0x00000000fe100000 0x00000000fe11ffff 0x0000000000040200\n" +
                                       zero + zero + zero + zero + zero + zero);
  const std::string r2 = m.read(F2 + "resource");
  CHECK(r2.substr(57 * 2, 57 * 2) ==
        "0x000000000000e020 0x000000000000e03f 0x0000000000040101\n"
        "0x00000000fe304000 0x00000000fe307fff 0x0000000000040200\n");
  CHECK(m.tree.find(F0 + "resource3")->mode.load() == 0600);
  CHECK(m.pread(F0 + "resource3", 16, 0) == "<EIO>");
  CHECK(m.write(F0 + "resource3", "x") == -EIO);
  CHECK_FALSE(m.exists(F1 + "resource3"));
  CHECK_FALSE(m.exists(F0 + "resource2"));  // port I/O is not served
}

TEST_CASE("msi_irqs: a 0444 \"msix\" file per vector, IRQs unique on the machine; irq stays INTx") {
  TestMachine m(kMachine);
  CHECK(listing(m, F0 + "msi_irqs") == "24 444,25 444,26 444");
  CHECK(m.read(F0 + "msi_irqs/24") == "msix\n");
  CHECK(m.read(F0 + "msi_irqs/26", Caller::user(1000)) == "msix\n");
  CHECK(m.write(F0 + "msi_irqs/24", "msi") == -EACCES);
  // 4 queues, not paired: 4 + 4 + 1, after eth0's.
  CHECK(listing(m, F2 + "msi_irqs") ==
        "27 444,28 444,29 444,30 444,31 444,32 444,33 444,34 444,35 444");
  CHECK_FALSE(m.exists(F1 + "msi_irqs"));
  CHECK(m.read(F0 + "irq") == "11\n");
}

TEST_CASE("unbind: MSI-X off, INTx back, msi_irqs/ gone; bind: the same vectors again") {
  TestMachine m(kMachine);
  CHECK(m.write(IGB + "unbind", "0000:00:03.0") == 12);
  CHECK_FALSE(m.exists(F0 + "msi_irqs"));
  std::string cfg = m.pread(F0 + "config", 256, 0);
  CHECK(le16(cfg, 0x72) == 0x0009);
  CHECK((le16(cfg, 0x04) & 0x0400) == 0);
  CHECK(le16(cfg, 0x04) == 0x0003);     // pci_disable_device: bus master off
  CHECK(m.exists(F2 + "msi_irqs/27"));  // the other port keeps its own
  CHECK(m.read(F0 + "irq") == "11\n");
  CHECK(m.write(IGB + "bind", "0000:00:03.0") == 12);
  CHECK(listing(m, F0 + "msi_irqs") == "24 444,25 444,26 444");
  cfg = m.pread(F0 + "config", 256, 0);
  CHECK(le16(cfg, 0x72) == 0x8009);
  CHECK(le16(cfg, 0x04) == 0x0407);  // pci_set_master, INTx off
}

TEST_CASE("enable while unbound: the last pci_disable_device clears bus mastering") {
  TestMachine m(kMachine);
  CHECK(m.write("bus/pci/drivers/vnic/unbind", "0000:00:04.0") == 12);
  CHECK(le16(m.pread(F1 + "config", 64, 0), 0x04) == 0x0003);
  CHECK(m.write(F1 + "enable", "1") == 1);
  CHECK(m.write(F1 + "enable", "1") == 1);
  CHECK(m.write(F1 + "config", std::string(1, '\x07'), Caller::root(), 0x04) == 1);
  CHECK(m.write(F1 + "enable", "0") == 1);  // enable_cnt 2 -> 1: nothing
  CHECK(le16(m.pread(F1 + "config", 64, 0), 0x04) == 0x0007);
  CHECK(m.write(F1 + "enable", "0") == 1);  // 1 -> 0: do_pci_disable_device
  CHECK(le16(m.pread(F1 + "config", 64, 0), 0x04) == 0x0003);
  CHECK(m.read(F1 + "enable") == "0\n");
}

TEST_CASE("config writes reach the command register and interrupt line, not the capabilities") {
  TestMachine m(kMachine);
  const std::string before = m.pread(F0 + "config", 256, 0);
  // Clearing MSI-X enable and the table size through config changes nothing.
  CHECK(m.write(F0 + "config", std::string(4, '\0'), Caller::root(), 0x70) == 4);
  CHECK(m.write(F0 + "config", std::string(1, '\0'), Caller::root(), 0x34) == 1);
  CHECK(m.pread(F0 + "config", 256, 0) == before);
  CHECK(m.read(F0 + "msi_irqs/24") == "msix\n");
}

}  // TEST_SUITE("netdev")
