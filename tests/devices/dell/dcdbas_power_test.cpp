// Unit tests of the machine's power cycle as dcdbas sees it
// (devices/machine/machine.cpp shutdown/power_on/boot, the boot hooks of
// devices/dell/dcdbas.cpp and dcdbas_smbios.cpp; docs/devices/dell.md
// "Power cycle", docs/devices/machine.md).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>

#include <cerrno>
#include <string>

#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;
using Out = std::array<std::int32_t, 4>;

namespace {

constexpr const char* kShutdown = "kernel/debug/vsysfs/machine/shutdown";
constexpr const char* kPower = "kernel/debug/vsysfs/machine/power";
constexpr const char* kPowerState = "kernel/debug/vsysfs/machine/power_state";

std::array<std::uint32_t, 4> tag_words(std::string_view tag, std::uint32_t key = 0) {
  std::string b(12, '\0');
  tag.copy(b.data(), std::min<std::size_t>(tag.size(), 12));
  return {u32_at(b, 0), u32_at(b, 4), u32_at(b, 8), key};
}

// The string after the chassis (type 3) header's asset tag index, as
// dmidecode finds it: the table's type-3 structure, its string N.
std::string chassis_asset_tag(TestMachine& m) {
  const std::string t = m.read("firmware/dmi/tables/DMI");
  std::size_t at = 0;
  while (at + 4 <= t.size()) {
    const auto type = static_cast<unsigned char>(t[at]);
    const auto len = static_cast<unsigned char>(t[at + 1]);
    std::size_t end = at + len;
    const std::size_t strings = end;
    while (end + 1 < t.size() && !(t[end] == 0 && t[end + 1] == 0)) ++end;
    if (type == 3) {
      const auto idx = static_cast<unsigned char>(t[at + 8]);  // SMBIOS 7.4: asset tag number
      if (idx == 0) return "";
      std::size_t p = strings;
      for (unsigned k = 1; k < idx; ++k) p = t.find('\0', p) + 1;
      return t.substr(p, t.find('\0', p) - p);
    }
    at = end + 2;
  }
  return "<no type 3>";
}

}  // namespace

TEST_SUITE("dcdbas") {

TEST_CASE("power: off and halted answer nothing but the control plane until powered on") {
  TestMachine m(kPe1400);
  CHECK(m.read(kPower) == "on\n");
  CHECK(m.write(kPower, "on") == -EBUSY);  // already on
  CHECK(m.write(kPower, "off") == -EINVAL);
  CHECK(m.write(kPower, "onx") == -EINVAL);
  REQUIRE(m.write(path("smi_data_buf_size"), "100") == 3);
  CHECK(m.write(kShutdown, "poweroff") == 8);
  CHECK(m.read(kPower) == "off\n");
  CHECK(m.read(kPowerState) == "off\n");
  // Device files: ENODEV for reads and writes (even empty ones); the tree
  // is still there, and so is the control plane.
  CHECK(m.exists(path("smi_data")));
  CHECK(m.read(path("smi_data_buf_size")) == "<ENODEV>");
  CHECK(m.read("devices/virtual/dmi/id/sys_vendor") == "<ENODEV>");
  CHECK(m.write(path("smi_data_buf_size"), "200") == -ENODEV);
  CHECK(m.write(path("smi_request"), "") == -ENODEV);
  CHECK(m.read("kernel/debug/vsysfs/clock/mode") == "manual\n");
  CHECK(m.write(kShutdown, "reboot") == -EBUSY);
  CHECK(m.events_of("machine", "boot").empty());
  // Power on: a boot, and everything answers again from its boot state.
  CHECK(m.write(kPower, "on\n") == 3);
  CHECK(m.read(kPower) == "on\n");
  CHECK(m.read(kPowerState) == "on\n");
  CHECK(m.read(path("smi_data_buf_size")) == "0\n");
  auto boot = m.events_of("machine", "boot");
  REQUIRE(boot.size() == 1);
  CHECK(boot[0].field("after") == "\"power_on\"");
  CHECK(boot[0].field("boot") == "1");
  CHECK(m.events_of("machine", "power_request").size() == 2);
  // And it can be shut down again.
  CHECK(m.write(kShutdown, "halt") == 4);
  CHECK(m.read(kPower) == "halted\n");
  CHECK(m.read(path("smi_data_buf_size")) == "<ENODEV>");
}

TEST_CASE("power: a reboot resets the volatile state and keeps the non-volatile") {
  TestMachine m(kPe1400);
  // Volatile: the driver's buffer and host-control values, the platform
  // device's files. Non-volatile: NV settings, tags, passwords, CMOS.
  REQUIRE(m.write(path("smi_data_buf_size"), "300") == 3);
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  REQUIRE(m.write(path("driver_override"), "dcdbas") == 6);
  REQUIRE(m.write(path("power/control"), "on") == 2);
  CHECK(ci_smi(m, 1, 0, {0x20, 7, 0, 0}) == Out{0, 7, 0, 9});
  CHECK(ci_smi(m, 11, 1, tag_words("RACK9-U01"))[0] == 0);
  CHECK(ci_smi(m, 10, 2, {0, 0, 0x1f, 0}) == Out{0, 0, 0, 0});  // admin password "s"
  REQUIRE(m.write("kernel/debug/vsysfs/dcdbas/cmos", std::string("\x5a", 1),
                  vsysfs::core::Caller::root(), 0x70 * 256 + 0x40) == 1);
  // The tables are what the firmware built at this boot: the old tag.
  CHECK(m.read("devices/virtual/dmi/id/chassis_asset_tag") == "ASSET-42\n");
  CHECK(chassis_asset_tag(m) == "ASSET-42");
  const std::string dmi_before = m.read("firmware/dmi/tables/DMI");

  CHECK(m.write(kShutdown, "reboot") == 6);
  CHECK(m.read(kPowerState) == "rebooted\n");
  CHECK(m.read(kPower) == "on\n");
  CHECK(m.events_of("machine", "boot").size() == 1);
  CHECK(m.read(path("smi_data_buf_size")) == "0\n");
  CHECK(m.read(path("smi_data_buf_phys_addr")) == "0\n");
  CHECK(m.read(path("host_control_smi_type")) == "0\n");
  CHECK(m.read(path("driver_override")) == "(null)\n");
  CHECK(m.read(path("power/control")) == "auto\n");
  // Non-volatile state stayed.
  CHECK(m.pread("kernel/debug/vsysfs/dcdbas/cmos", 1, 0x70 * 256 + 0x40) == "\x5a");
  CHECK(ci_smi(m, 10, 0, {1, 0, 0, 0}) == Out{0, 0, 0, 0});
  const Out v = ci_smi(m, 10, 1, {0x1f, 0, 0, 0});
  REQUIRE(v[0] == 0);
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == Out{0, 7, 0, 9});
  CHECK(ci_smi(m, 11, 0, {0, 0, 0, 0})[1] == static_cast<std::int32_t>(tag_words("RACK9-U01")[0]));
  // The new boot's firmware put the SMI-set asset tag into SMBIOS.
  CHECK(m.read("devices/virtual/dmi/id/chassis_asset_tag") == "RACK9-U01\n");
  CHECK(chassis_asset_tag(m) == "RACK9-U01");
  CHECK(m.read("firmware/dmi/tables/DMI").size() == dmi_before.size() + 1);
  // The entry point follows the new table length (and still sums to 0).
  const std::string ep = m.read("firmware/dmi/tables/smbios_entry_point");
  CHECK(static_cast<std::size_t>(static_cast<unsigned char>(ep[0x16]) |
                                 static_cast<unsigned char>(ep[0x17]) << 8) ==
        dmi_before.size() + 1);
  unsigned sum = 0;
  for (char c : ep) sum += static_cast<unsigned char>(c);
  CHECK(sum % 256 == 0);
}

TEST_CASE("power: a key from before a boot is no longer good") {
  TestMachine m(std::string(kPe1400).insert(std::string(kPe1400).find("[[dcdbas.setting]]"),
                                            "admin_password = 's'\n"));
  const Out v = ci_smi(m, 10, 1, {0x1f, 0, 0, 0});
  REQUIRE(v[0] == 0);
  const auto key = static_cast<std::uint32_t>(v[1]);
  CHECK(ci_smi(m, 1, 0, {0x20, 1, key, 0})[0] == 0);
  REQUIRE(m.write(kShutdown, "reboot") == 6);
  CHECK(ci_smi(m, 1, 0, {0x20, 2, key, 0})[0] == -1);
  const Out v2 = ci_smi(m, 10, 1, {0x1f, 0, 0, 0});
  REQUIRE(v2[0] == 0);
  CHECK(v2[1] != v[1]);
  CHECK(ci_smi(m, 1, 0, {0x20, 2, static_cast<std::uint32_t>(v2[1]), 0})[0] == 0);
}

}  // TEST_SUITE("dcdbas")
