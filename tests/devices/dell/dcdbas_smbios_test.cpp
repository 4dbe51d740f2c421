// Unit tests of devices/dcdbas_smbios.cpp: the SMBIOS entry point and
// structure table, and class/dmi/id, all from one [dcdbas] description.
#include "devices/dell/dcdbas_smbios.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;

namespace {

struct Dmi {
  int type;
  int length;
  int handle;
  std::string formatted;
  std::vector<std::string> strings;
};

// Walks the table the way dmidecode does; CHECKs its framing.
std::vector<Dmi> walk(const std::string& t) {
  std::vector<Dmi> out;
  std::size_t i = 0;
  while (i + 4 <= t.size()) {
    Dmi d;
    d.type = static_cast<unsigned char>(t[i]);
    d.length = static_cast<unsigned char>(t[i + 1]);
    d.handle = static_cast<unsigned char>(t[i + 2]) | static_cast<unsigned char>(t[i + 3]) << 8;
    REQUIRE(d.length >= 4);
    d.formatted = t.substr(i, d.length);
    std::size_t j = i + d.length;
    if (t[j] == 0) {
      j += 2;  // no strings: double NUL
    } else {
      while (t[j] != 0) {
        const std::size_t end = t.find('\0', j);
        d.strings.push_back(t.substr(j, end - j));
        j = end + 1;
      }
      ++j;
    }
    out.push_back(d);
    i = j;
    if (d.type == 127) break;
  }
  CHECK(i == t.size());
  return out;
}

unsigned sum(const std::string& s, std::size_t from, std::size_t to) {
  unsigned v = 0;
  for (std::size_t k = from; k < to; ++k) v += static_cast<unsigned char>(s[k]);
  return v & 0xFF;
}

std::string str(const Dmi& d, std::size_t offset) {
  const int n = static_cast<unsigned char>(d.formatted[offset]);
  return n == 0 ? std::string() : d.strings.at(static_cast<std::size_t>(n - 1));
}

}  // namespace

TEST_SUITE("dcdbas") {

TEST_CASE("SMBIOS entry point: checksums, length, count and sizes agree with the table") {
  TestMachine m(kPe1400);
  const std::string eps = m.read("firmware/dmi/tables/smbios_entry_point");
  const std::string dmi = m.read("firmware/dmi/tables/DMI");
  REQUIRE(eps.size() == 31);
  CHECK(eps.substr(0, 4) == "_SM_");
  CHECK(eps.substr(16, 5) == "_DMI_");
  CHECK(sum(eps, 0, 31) == 0);
  CHECK(sum(eps, 16, 31) == 0);
  CHECK((static_cast<unsigned char>(eps[0x16]) | static_cast<unsigned char>(eps[0x17]) << 8) == dmi.size());
  const auto structs = walk(dmi);
  CHECK((static_cast<unsigned char>(eps[0x1C]) | static_cast<unsigned char>(eps[0x1D]) << 8) == structs.size());
  CHECK(structs.back().type == 127);
  // stat() shows the real sizes (libsmbios fseek/ftell's them) and root-only modes.
  CHECK(m.tree.find("firmware/dmi/tables/DMI")->size() == dmi.size());
  CHECK(m.tree.find("firmware/dmi/tables/smbios_entry_point")->size() == 31);
  CHECK(m.tree.find("firmware/dmi/tables/DMI")->mode.load() == 0400);
  CHECK(m.open_errno("firmware/dmi/tables/DMI", O_WRONLY) == -EACCES);
}

TEST_CASE("SMBIOS structures carry the machine description") {
  TestMachine m(kPe1400);
  std::map<int, Dmi> by_type;
  for (auto& d : walk(m.read("firmware/dmi/tables/DMI"))) by_type.emplace(d.type, d);
  for (int t : {0, 1, 2, 3, 11, 0xD0, 0xDA, 127}) CHECK(by_type.count(t) == 1);
  CHECK(str(by_type[1], 4) == "Dell Inc.");
  CHECK(str(by_type[1], 5) == "PowerEdge 1400");
  CHECK(str(by_type[1], 7) == "ABC1234");
  CHECK(str(by_type[3], 7) == "ABC1234");
  CHECK(str(by_type[3], 8) == "ASSET-42");
  CHECK(by_type[11].strings.at(0) == "Dell System");
  CHECK(by_type[11].strings.size() == 3);  // no WSMT string without WSMT
  CHECK(by_type[0xD0].formatted[4] == 2);   // Dell SMBIOS version: buffers with header
  const std::string& da = by_type[0xDA].formatted;
  CHECK(static_cast<unsigned char>(da[4]) == 0xB2);
  CHECK(static_cast<unsigned char>(da[6]) == 0xDA);
  // One token (0x51 -> location 0x10, value 1), then EOT.
  CHECK(da.size() == 11 + 6 + 6);
  CHECK(u32_at(da, 11) == (0x51u | 0x10u << 16));
  CHECK(static_cast<unsigned char>(da[17]) == 0xFF);
  CHECK(static_cast<unsigned char>(da[18]) == 0xFF);
}

TEST_CASE("SMBIOS with WSMT names the firmware buffer in an OEM string") {
  TestMachine m(kWsmt);
  for (const auto& d : walk(m.read("firmware/dmi/tables/DMI"))) {
    if (d.type != 11) continue;
    REQUIRE(d.strings.size() == 4);
    CHECK(d.strings[3] == "30[000000006f7d5000;00004000]");
  }
}

TEST_CASE("SMBIOS splits more than 38 tokens over several 0xDA structures") {
  std::string toml = "[dcdbas]\n[[dcdbas.setting]]\nlocation = 1\nmax = 100\n";
  for (int i = 0; i < 50; ++i) toml += "[[dcdbas.token]]\nid = " + std::to_string(0x100 + i) + "\nlocation = 1\nvalue = " + std::to_string(i) + "\n";
  TestMachine m(toml);
  int das = 0;
  for (const auto& d : walk(m.read("firmware/dmi/tables/DMI")))
    if (d.type == 0xDA) {
      ++das;
      CHECK(d.length <= 255);
    }
  CHECK(das == 2);
}

TEST_CASE("class/dmi/id agrees with the tables") {
  TestMachine m(kPe1400);
  CHECK(m.link_target("class/dmi/id") == "../../devices/virtual/dmi/id");
  const std::string id = "devices/virtual/dmi/id/";
  CHECK(m.read(id + "sys_vendor") == "Dell Inc.\n");
  CHECK(m.read(id + "product_name") == "PowerEdge 1400\n");
  CHECK(m.read(id + "product_serial") == "ABC1234\n");
  CHECK(m.read(id + "chassis_serial") == "ABC1234\n");
  CHECK(m.read(id + "chassis_asset_tag") == "ASSET-42\n");
  CHECK(m.read(id + "chassis_type") == "23\n");
  CHECK(m.read(id + "bios_release") == "2.19\n");
  CHECK(m.tree.find(id + "product_serial")->mode.load() == 0400);
  CHECK(m.tree.find(id + "product_uuid")->mode.load() == 0400);
  CHECK(m.tree.find(id + "product_name")->mode.load() == 0444);
  CHECK(m.read(id + "modalias").rfind("dmi:bvnDellInc.:bvr2.19.1:bd06/05/2023:br2.19:svnDellInc.:pnPowerEdge1400:", 0) == 0);
  CHECK(m.read(id + "product_uuid") == "4c4c4544-0041-4210-8043-313233340000\n");
}

}  // TEST_SUITE

TEST_SUITE("dcdbas") {

TEST_CASE("CMOS tokens: power-on state in the cmos file, 0xD4 table, host-control pointer visible") {
  TestMachine m(R"([dcdbas]
model = "PowerEdge 1400"
[[dcdbas.cmos_token]]
id = 0x42
location = 0x5c
and_mask = 0xfe
or_value = 0x01
active = true
[[dcdbas.cmos_token]]
id = 0x43
location = 0x5c
and_mask = 0xfe
or_value = 0x00
[[dcdbas.cmos_token]]
id = 0x99
index_port = 0x72
location = 0x10
and_mask = 0x0f
or_value = 0x30
)");
  const std::string cmos = "kernel/debug/vsysfs/dcdbas/cmos";
  CHECK(m.tree.find(cmos)->size() == 65536);
  CHECK(m.tree.find(cmos)->mode.load() == 0600);
  CHECK(m.pread(cmos, 1, 0x70 * 256 + 0x5c) == std::string("\x01", 1));
  CHECK(m.pread(cmos, 1, 0x72 * 256 + 0x10) == std::string("\0", 1));
  // Two 0xD4 structures (one per port pair), EOT-terminated.
  std::vector<Dmi> d4;
  for (auto& d : walk(m.read("firmware/dmi/tables/DMI")))
    if (d.type == 0xD4) d4.push_back(d);
  REQUIRE(d4.size() == 2);
  CHECK(d4[0].length == 12 + 2 * 5 + 5);
  CHECK(static_cast<unsigned char>(d4[0].formatted[4]) == 0x70);
  CHECK(static_cast<unsigned char>(d4[0].formatted[6]) == 0x71);
  CHECK(static_cast<unsigned char>(d4[1].formatted[4]) == 0x72);
  CHECK(static_cast<unsigned char>(d4[1].formatted[6]) == 0x73);
  // A write through the file is what the firmware sees, and is logged.
  CHECK(m.write(cmos, std::string("\x00", 1), vsysfs::core::Caller::root(), 0x70 * 256 + 0x5c) == 1);
  CHECK(m.pread(cmos, 1, 0x70 * 256 + 0x5c) == std::string("\0", 1));
  CHECK(m.events_of("dcdbas", "cmos_write").back().field("index") == "\"0x5c\"");
  CHECK(m.write(cmos, "x", vsysfs::core::Caller::root(), 65536) == -EFBIG);
  // Host control leaves the apm_cmd pointer in CMOS page 1, 0x70..0x73.
  REQUIRE(m.write(path("host_control_action"), "4") == 1);
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  REQUIRE(m.write(path("host_control_on_shutdown"), "1") == 1);
  const unsigned long a = phys(m);
  REQUIRE(m.write("kernel/debug/vsysfs/machine/shutdown", "reboot") == 6);
  CHECK(u32_at(m.pread(cmos, 4, 0x70 * 256 + 0x70), 0) == a);
}

TEST_CASE("CMOS token configuration errors") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.cmos_token]]\nid = 1\nlocation = 300\nand_mask = 1\n"),
                       doctest::Contains("8 bits"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.cmos_token]]\nid = 1\nlocation = 3\nand_mask = 0\n"),
                       doctest::Contains("string token"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.cmos_token]]\nid = 1\nlocation = 3\nand_mask = 0xfe\nor_value = 3\n"),
                       doctest::Contains("and_mask keeps"), ConfigError);
}

TEST_CASE("CMOS string tokens: in CMOS at power-on, a 0xD4 string entry, kept by a reboot") {
  TestMachine m(R"M([dcdbas]
model = "PowerEdge 1400"
[[dcdbas.cmos_token]]
id = 0x42
location = 0x5c
and_mask = 0xfe
or_value = 0x01
active = true
[[dcdbas.cmos_token]]
name = "Asset Tag (CMOS)"
id = 0xc000
kind = "string"
location = 0x40
length = 10
value = "LAB-0001"
)M");
  const std::string cmos = "kernel/debug/vsysfs/dcdbas/cmos";
  constexpr off_t kAt = 0x70 * 256 + 0x40;
  // NUL padded to its length; the byte after it is not the token's.
  CHECK(m.pread(cmos, 11, kAt) == std::string("LAB-0001\0\0\0", 11));
  CHECK(m.pread(cmos, 1, 0x70 * 256 + 0x5c) == std::string("\x01", 1));
  // libsmbios's struct indexed_io_token: u16 id, u8 location, u8 andMask,
  // u8 orValue/stringLength. and_mask 0 makes it a string of 10 bytes.
  std::vector<Dmi> d4;
  for (auto& d : walk(m.read("firmware/dmi/tables/DMI")))
    if (d.type == 0xD4) d4.push_back(d);
  REQUIRE(d4.size() == 1);
  REQUIRE(d4[0].length == 12 + 2 * 5 + 5);
  const std::string& f = d4[0].formatted;
  CHECK((u32_at(f, 17) & 0xFFFF) == 0xc000);
  CHECK(static_cast<unsigned char>(f[19]) == 0x40);
  CHECK(static_cast<unsigned char>(f[20]) == 0);
  CHECK(static_cast<unsigned char>(f[21]) == 10);
  // _d4_set_string writes all 10 bytes, NUL padded; CMOS is
  // battery-backed: a reboot keeps them.
  CHECK(m.write(cmos, std::string("RACK9\0\0\0\0\0", 10), vsysfs::core::Caller::root(), kAt) == 10);
  REQUIRE(m.write("kernel/debug/vsysfs/machine/shutdown", "reboot") == 6);
  CHECK(m.pread(cmos, 11, kAt) == std::string("RACK9\0\0\0\0\0\0", 11));
}

TEST_CASE("CMOS string token configuration errors") {
  using vsysfs::core::ConfigError;
  const auto machine = [](std::string_view model, std::string_view keys) {
    return fmt::format("[dcdbas]\nmodel = \"{}\"\n[[dcdbas.cmos_token]]\nid = 0xc000\n{}", model,
                       keys);
  };
  const auto fails = [&](std::string_view keys, std::string_view why,
                         std::string_view model = "PowerEdge R740") {
    CAPTURE(keys);
    CHECK_THROWS_WITH_AS(TestMachine(machine(model, keys)),
                         doctest::Contains(std::string(why).c_str()), ConfigError);
  };
  fails("kind = \"string\"\nlocation = 0x40\n", "needs a length");
  fails("kind = \"string\"\nlocation = 0x40\nlength = 0\n", "1..255");
  fails("kind = \"string\"\nlocation = 0xf8\nlength = 10\n", "past CMOS index 0xff");
  fails("kind = \"string\"\nlocation = 0x40\nlength = 4\nvalue = \"TOOLONG\"\n",
        "longer than the token's 4 bytes");
  fails("kind = \"string\"\nlocation = 0x40\nlength = 4\nvalue = \"a\\nb\"\n", "control byte");
  fails("kind = \"string\"\nlocation = 0x40\nlength = 4\nand_mask = 0\n",
        "length and value instead");
  fails("kind = \"text\"\nlocation = 0x40\n", "\"bool\" or \"string\"");
  fails("location = 0x40\nand_mask = 0xfe\nlength = 4\n", "only a kind = \"string\" token");
  fails("index_port = 0x170\nlocation = 0x40\nand_mask = 0xfe\n", "index ports 0..0xff");
  // A string owns its bytes: not shared with another token ...
  fails(
      "kind = \"string\"\nlocation = 0x40\nlength = 4\n"
      "[[dcdbas.cmos_token]]\nid = 0x42\nlocation = 0x43\nand_mask = 0xfe\n",
      "overlaps the bytes of CMOS token 0xc000");
  // ... nor with the host-control pointer of a TYPE2 model (0x70..0x73).
  fails("kind = \"string\"\nlocation = 0x6c\nlength = 5\n", "host-control pointer",
        "PowerEdge 1400");
  // Next to it is fine; on the other page too.
  CHECK_NOTHROW(
      TestMachine(machine("PowerEdge 1400", "kind = \"string\"\nlocation = 0x6b\nlength = 5\n")));
  CHECK_NOTHROW(TestMachine(machine(
      "PowerEdge 1400", "kind = \"string\"\nindex_port = 0x72\nlocation = 0x70\nlength = 4\n")));
}

}  // TEST_SUITE

namespace {
unsigned u16_of(const Dmi& d, std::size_t off) {
  return static_cast<unsigned char>(d.formatted[off]) |
         static_cast<unsigned char>(d.formatted[off + 1]) << 8;
}
// Two sockets of 3 cores x 2 threads; node 1 has a memory size that is no
// multiple of 4 GiB; two PCI NICs.
constexpr const char* kServer = R"([numa]
threads_per_core = 2
[[numa.node]]
cpus = "0-2,6-8"
memory_mb = 8192
[[numa.node]]
cpus = "3-5,9-11"
memory_mb = 6000
[net]
[[net.interface]]
name = "eth0"
kind = "nic"
pci = "0000:00:03.0"
[[net.interface]]
name = "eth1"
kind = "nic"
pci = "0000:00:05.1"
[dcdbas]
model = "PowerEdge R740"
service_tag = "ABC1234"
pcie_slots = 3
)";
}  // namespace

TEST_CASE("SMBIOS hardware: sockets, caches, slots and memory are the machine's") {
  TestMachine m(kServer);
  std::multimap<int, Dmi> by;
  for (auto& d : walk(m.read("firmware/dmi/tables/DMI"))) by.emplace(d.type, d);
  REQUIRE(by.count(4) == 2);
  for (auto [it, end] = by.equal_range(4); it != end; ++it) {
    const Dmi& p = it->second;
    CHECK(p.length == 0x2A);
    CHECK(static_cast<unsigned char>(p.formatted[0x23]) == 3);  // core count
    CHECK(static_cast<unsigned char>(p.formatted[0x24]) == 3);  // enabled
    CHECK(static_cast<unsigned char>(p.formatted[0x25]) == 6);  // threads
    CHECK(static_cast<unsigned char>(p.formatted[0x18]) == 0x41);
    // Its L1..L3 handles name type 7 structures of levels 1..3.
    for (int lvl = 1; lvl <= 3; ++lvl) {
      const unsigned h = u16_of(p, 0x1A + 2 * static_cast<std::size_t>(lvl - 1));
      bool found = false;
      for (auto [c, cend] = by.equal_range(7); c != cend; ++c)
        if (static_cast<unsigned>(c->second.handle) == h) {
          found = true;
          CHECK((u16_of(c->second, 5) & 7) == static_cast<unsigned>(lvl - 1));
          // The default geometry per socket: L1 (32+32) x 3 cores, L2 1 MiB x 3, L3 1.375 MiB x 3.
          const unsigned want[] = {192, 3072, 4224};
          CHECK(u16_of(c->second, 9) == want[lvl - 1]);
        }
      CHECK(found);
    }
  }
  // Slots: the NICs' addresses in use, then one available.
  REQUIRE(by.count(9) == 3);
  std::vector<Dmi> slots;
  for (auto [it, end] = by.equal_range(9); it != end; ++it) slots.push_back(it->second);
  CHECK(static_cast<unsigned char>(slots[0].formatted[7]) == 4);
  CHECK(static_cast<unsigned char>(slots[0].formatted[0x10]) == (3 << 3));
  CHECK(static_cast<unsigned char>(slots[1].formatted[0x10]) == ((5 << 3) | 1));
  CHECK(static_cast<unsigned char>(slots[2].formatted[7]) == 3);
  // Memory: one array per node; its DIMMs add up to the node's memory.
  REQUIRE(by.count(16) == 2);
  std::map<unsigned, std::uint64_t> mb_per_array;
  for (auto [it, end] = by.equal_range(17); it != end; ++it) {
    const unsigned size = u16_of(it->second, 0x0C);
    mb_per_array[u16_of(it->second, 4)] += size == 0x7FFF ? u16_of(it->second, 0x1C) : size;
  }
  std::vector<std::uint64_t> per_node;
  for (auto [it, end] = by.equal_range(16); it != end; ++it)
    per_node.push_back(mb_per_array[static_cast<unsigned>(it->second.handle)]);
  CHECK(per_node == std::vector<std::uint64_t>{8192, 6000});
  // Mapped addresses: node 0 from 0, node 1 right after it (KiB, inclusive ends).
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
  for (auto [it, end] = by.equal_range(19); it != end; ++it)
    ranges.emplace_back(u32_at(it->second.formatted, 4), u32_at(it->second.formatted, 8));
  CHECK(ranges == std::vector<std::pair<std::uint32_t, std::uint32_t>>{
                      {0, 8192 * 1024 - 1}, {8192 * 1024, 14192 * 1024 - 1}});
  CHECK(by.count(32) == 1);
}

TEST_CASE("SMBIOS host view: smbios_sockets and smbios_memory_mb describe the host, not the OS") {
  // A Xen dom0's shape: 8 vCPUs (4 cores x 2 threads) in one node of 16 GiB
  // on a two-socket 32 GiB host.
  const std::string numa =
      "[numa]\nthreads_per_core = 2\n[[numa.node]]\ncpus = \"0-7\"\nmemory_mb = 16384\n";
  TestMachine m(numa + "[dcdbas]\nsmbios_sockets = 2\nsmbios_memory_mb = 32768\n");
  std::multimap<int, Dmi> by;
  for (auto& d : walk(m.read("firmware/dmi/tables/DMI"))) by.emplace(d.type, d);
  REQUIRE(by.count(4) == 2);
  for (auto [it, end] = by.equal_range(4); it != end; ++it) {
    CHECK(static_cast<unsigned char>(it->second.formatted[0x23]) == 2);  // cores
    CHECK(static_cast<unsigned char>(it->second.formatted[0x25]) == 4);  // threads
  }
  REQUIRE(by.count(16) == 2);
  std::uint64_t mb = 0;
  for (auto [it, end] = by.equal_range(17); it != end; ++it) {
    const unsigned size = u16_of(it->second, 0x0C);
    mb += size == 0x7FFF ? u16_of(it->second, 0x1C) : size;
  }
  CHECK(mb == 32768);
  // The OS view is unchanged: one node of 16 GiB.
  CHECK(m.read("devices/system/node/online") == "0\n");

  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine(numa + "[dcdbas]\nsmbios_sockets = 3\n"),
                       doctest::Contains("divide the 4 cores"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine(numa + "[dcdbas]\nsmbios_sockets = 0\n"),
                       doctest::Contains("must be 1..8"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine(numa + "[dcdbas]\nsmbios_sockets = 2\nsmbios_memory_mb = 32767\n"),
                       doctest::Contains("divide over the 2 sockets"), ConfigError);
}

TEST_CASE("SMBIOS DIMM plan: equal modules of at least 4 GiB that add up to the node") {
  using P = vsysfs::devices::dcdbas::DcdbasSmbios;
  auto plan = [](std::uint64_t mb, unsigned slots) {
    const auto p = P::plan_dimms(mb * 1024, slots);
    return std::make_pair(p.count, p.size_mb);
  };
  CHECK(plan(8192, 12) == std::make_pair(2u, std::uint64_t{4096}));
  CHECK(plan(65536, 12) == std::make_pair(8u, std::uint64_t{8192}));
  CHECK(plan(6000, 12) == std::make_pair(1u, std::uint64_t{6000}));
  CHECK(plan(48894, 12) == std::make_pair(2u, std::uint64_t{24447}));
  CHECK(plan(31703, 12) == std::make_pair(1u, std::uint64_t{31703}));
  CHECK(plan(1024, 12) == std::make_pair(1u, std::uint64_t{1024}));
  CHECK(plan(65536, 2) == std::make_pair(2u, std::uint64_t{32768}));
  CHECK(plan(0, 12).first == 0u);
}

TEST_CASE("SMBIOS hardware keys: bad values are errors") {
  std::string no_dimms = kServer;
  no_dimms.append("dimm_slots_per_node = 0\n");
  CHECK_THROWS_WITH_AS(TestMachine{no_dimms}, doctest::Contains("dimm_slots_per_node"),
                       vsysfs::core::ConfigError);
  std::string one_slot = kServer;
  const std::size_t at = one_slot.find("pcie_slots = 3");
  REQUIRE(at != std::string::npos);
  one_slot[at + 13] = '1';
  CHECK_THROWS_WITH_AS(TestMachine{one_slot}, doctest::Contains("fewer slots"),
                       vsysfs::core::ConfigError);
}
