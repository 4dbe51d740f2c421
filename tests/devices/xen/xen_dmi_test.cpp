// An HVM domU's SMBIOS (devices/xen/xen_sys_hypervisor.cpp add_hvmloader_dmi
// through devices/dell/dcdbas_smbios.cpp, Firmware::XenHvmloader): the
// tables xen tools/firmware/hvmloader/smbios.c writes and dmi-id's view.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

struct Smbios {
  std::uint8_t type = 0;
  std::uint8_t length = 0;
  std::uint16_t handle = 0;
  std::string formatted;             // the formatted area, header included
  std::vector<std::string> strings;  // 1-based in SMBIOS, 0-based here
  std::uint16_t u16(std::size_t off) const {
    return static_cast<std::uint16_t>(static_cast<std::uint8_t>(formatted[off]) |
                                      static_cast<std::uint8_t>(formatted[off + 1]) << 8);
  }
  std::uint32_t u32(std::size_t off) const {
    return static_cast<std::uint32_t>(u16(off)) | static_cast<std::uint32_t>(u16(off + 2)) << 16;
  }
  std::string str(std::size_t off) const {
    const auto n = static_cast<std::uint8_t>(formatted[off]);
    return n == 0 ? std::string() : strings.at(n - 1);
  }
};

std::vector<Smbios> parse(const std::string& t) {
  std::vector<Smbios> out;
  std::size_t p = 0;
  while (p + 4 <= t.size()) {
    Smbios s;
    s.type = static_cast<std::uint8_t>(t[p]);
    s.length = static_cast<std::uint8_t>(t[p + 1]);
    s.formatted = t.substr(p, s.length);
    s.handle = s.u16(2);
    std::size_t q = p + s.length;
    if (t[q] == 0) {
      q += 2;
    } else {
      while (t[q] != 0) {
        const std::size_t e = t.find('\0', q);
        s.strings.push_back(t.substr(q, e - q));
        q = e + 1;
      }
      ++q;
    }
    out.push_back(s);
    p = q;
    if (out.back().type == 127) break;
  }
  return out;
}

std::vector<Smbios> of_type(const std::vector<Smbios>& all, std::uint8_t type) {
  std::vector<Smbios> out;
  for (const auto& s : all)
    if (s.type == type) out.push_back(s);
  return out;
}

std::string id(std::string_view f) { return "devices/virtual/dmi/id/" + std::string(f); }

mode_t mode_of(TestMachine& m, std::string_view path) {
  auto node = m.tree.find(path);
  REQUIRE_MESSAGE(node, path);
  return node->mode.load();
}

unsigned cpu_count(TestMachine& m) {
  // "0-N" of the default topology.
  const std::string present = m.read("devices/system/cpu/present");
  const auto dash = present.find('-');
  return dash == std::string::npos
             ? 1U
             : static_cast<unsigned>(std::stoul(present.substr(dash + 1))) + 1;
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("HVM domU SMBIOS: hvmloader's structures with the handle, the vCPUs and the memory") {
  TestMachine m(small_machine_with("kthread"));
  const std::string uuid = m.read("hypervisor/uuid");
  REQUIRE(uuid.size() == 37);
  const std::string text = uuid.substr(0, 36);
  const std::string ep = m.read("firmware/dmi/tables/smbios_entry_point");
  REQUIRE(ep.size() == 0x1F);
  CHECK(ep.substr(0, 4) == "_SM_");
  CHECK(ep[6] == 2);  // smbios_entry_point_init: 2.4, BCD 0x24
  CHECK(ep[7] == 4);
  CHECK(static_cast<std::uint8_t>(ep[0x1E]) == 0x24);
  const auto all = parse(m.read("firmware/dmi/tables/DMI"));
  REQUIRE(!all.empty());
  CHECK(all.back().type == 127);
  CHECK(static_cast<std::uint8_t>(ep[0x1C]) == all.size());  // number of structures

  const auto t0 = of_type(all, 0);
  REQUIRE(t0.size() == 1);
  CHECK(t0[0].length == 0x18);
  CHECK(t0[0].str(4) == "Xen");
  CHECK(t0[0].str(5) == "4.17.3");
  CHECK(t0[0].u16(6) == 0xE800);
  CHECK(static_cast<int>(t0[0].formatted[0x14]) == 4);  // BIOS release 4.17
  CHECK(static_cast<int>(t0[0].formatted[0x15]) == 17);

  const auto t1 = of_type(all, 1);
  REQUIRE(t1.size() == 1);
  CHECK(t1[0].length == 0x1B);
  CHECK(t1[0].str(4) == "Xen");
  CHECK(t1[0].str(5) == "HVM domU");
  CHECK(t1[0].str(6) == "4.17.3");
  CHECK(t1[0].str(7) == text);  // serial: uuid_to_string(handle)
  // SMBIOS 2.4: the handle's bytes in order (%pUb), as /sys/hypervisor/uuid.
  std::string hex;
  for (int i = 8; i < 24; ++i)
    hex += fmt::format("{:02x}", static_cast<std::uint8_t>(t1[0].formatted[i]));
  std::string plain = text;
  std::erase(plain, '-');
  CHECK(hex == plain);
  CHECK(of_type(all, 2).empty());  // no pass-through: no baseboard

  const auto t3 = of_type(all, 3);
  REQUIRE(t3.size() == 1);
  CHECK(t3[0].str(4) == "Xen");
  CHECK(static_cast<int>(t3[0].formatted[5]) == 1);  // other

  const auto t4 = of_type(all, 4);
  REQUIRE(t4.size() == cpu_count(m));
  for (unsigned i = 0; i < t4.size(); ++i) {
    CHECK(t4[i].handle == 0x401 + i);
    CHECK(t4[i].str(4) == fmt::format("CPU {}", i + 1));
    CHECK(t4[i].length == 0x1A);
  }
  const auto t11 = of_type(all, 11);
  REQUIRE(t11.size() == 1);
  CHECK(t11[0].strings == std::vector<std::string>{"Xen"});

  // 256 MiB of memory: one device of 256 MB at 0.
  const auto t16 = of_type(all, 16);
  REQUIRE(t16.size() == 1);
  CHECK(t16[0].u32(7) == 256 * 1024);
  CHECK(t16[0].u16(13) == 1);
  const auto t17 = of_type(all, 17);
  REQUIRE(t17.size() == 1);
  CHECK(t17[0].u16(12) == 256);
  CHECK(t17[0].str(16) == "DIMM 0");
  const auto t19 = of_type(all, 19);
  REQUIRE(t19.size() == 1);
  CHECK(t19[0].u32(4) == 0);
  CHECK(t19[0].u32(8) == 256 * 1024 - 1);
  CHECK(of_type(all, 20).size() == 1);
  CHECK(of_type(all, 32).size() == 1);
}

TEST_CASE("HVM domU SMBIOS: one memory device per 16 GiB, the last holding the rest") {
  TestMachine m("[xen]\nhost_memory = \"64G\"\nmemory = \"20G\"\nused = \"1G\"\n");
  const auto all = parse(m.read("firmware/dmi/tables/DMI"));
  const auto t17 = of_type(all, 17);
  REQUIRE(t17.size() == 2);
  CHECK(t17[0].u16(12) == 16384);
  CHECK(t17[1].u16(12) == 4096);
  CHECK(t17[1].handle == 0x1101);
  const auto t19 = of_type(all, 19);
  REQUIRE(t19.size() == 2);
  CHECK(t19[1].u32(4) == 16U << 20);  // KiB: instance << 24
  CHECK(t19[1].u32(8) == (16U << 20) + 4096 * 1024 - 1);
  const auto t20 = of_type(all, 20);
  REQUIRE(t20.size() == 2);
  CHECK(t20[1].u16(12) == 0x1101);
  CHECK(t20[1].u16(14) == 0x1301);
  CHECK(of_type(all, 16)[0].u16(13) == 2);
}

TEST_CASE("HVM domU dmi-id: Xen's values, the kernel's modes, no board files") {
  TestMachine m(small_machine_with("kthread"));
  const std::string uuid = m.read("hypervisor/uuid");
  CHECK(m.read(id("sys_vendor")) == "Xen\n");
  CHECK(m.read(id("product_name")) == "HVM domU\n");
  CHECK(m.read(id("product_version")) == "4.17.3\n");
  CHECK(m.read(id("product_uuid")) == uuid);
  CHECK(m.read(id("product_serial")) == uuid);
  CHECK(m.read(id("bios_vendor")) == "Xen\n");
  CHECK(m.read(id("bios_version")) == "4.17.3\n");
  CHECK(m.read(id("bios_release")) == "4.17\n");
  CHECK(m.read(id("bios_date")) == "01/30/2025\n");  // the hypervisor's compile date
  CHECK(m.read(id("chassis_vendor")) == "Xen\n");
  CHECK(m.read(id("chassis_type")) == "1\n");
  CHECK(m.read(id("chassis_serial")) == "\n");
  CHECK(m.read(id("product_sku")) == "\n");
  CHECK(
      m.read(id("modalias")) ==
      "dmi:bvnXen:bvr4.17.3:bd01/30/2025:br4.17:svnXen:pnHVMdomU:pvr4.17.3:cvnXen:ct1:cvr:sku:\n");
  for (const char* f : {"product_uuid", "product_serial", "chassis_serial"}) {
    CAPTURE(f);
    CHECK(mode_of(m, id(f)) == 0400);
  }
  for (const char* f :
       {"sys_vendor", "product_name", "bios_vendor", "chassis_vendor", "modalias"}) {
    CAPTURE(f);
    CHECK(mode_of(m, id(f)) == 0444);
  }
  for (const char* f :
       {"board_vendor", "board_name", "board_version", "board_serial", "board_asset_tag"}) {
    CAPTURE(f);
    CHECK(!m.exists(id(f)));
  }
  CHECK(m.exists("class/dmi/id"));
}

TEST_CASE("SMBIOS by guest type: none for PV and PVH guests, dom0's and [dcdbas]'s are Dell's") {
  for (const char* type : {"PV", "PVH"}) {
    CAPTURE(type);
    TestMachine m(small_machine_with("kthread",
                                     fmt::format("[xen.hypervisor]\nguest_type = \"{}\"\n", type)));
    CHECK(!m.exists("firmware/dmi"));
    CHECK(!m.exists("class/dmi/id"));
  }
  TestMachine dom0(small_machine_with("kthread", "domid = 0\n"));
  CHECK(!dom0.exists("firmware/dmi"));
  TestMachine dell(small_machine_with("kthread") + "[dcdbas]\nmodel = \"PowerEdge R740\"\n");
  CHECK(dell.read(id("sys_vendor")) == "Dell Inc.\n");
  CHECK(dell.exists(id("board_name")));
}

}  // TEST_SUITE("xen_balloon")
