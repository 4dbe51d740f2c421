// Unit tests of host control at shutdown (devices/dcdbas.cpp
// dcdbas_reboot_notify / dcdbas_host_control / host_control_smi and the
// BIOS's APM handler; docs/kernel-semantics.md section 2.5).
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>

#include <string>
#include <vector>

#include "devices/dell/dcdbas.hpp"
#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;

namespace {

constexpr const char* kShutdown = "kernel/debug/vsysfs/machine/shutdown";
constexpr const char* kPower = "kernel/debug/vsysfs/machine/power_state";

// The driver's port I/O as "outb 0x70 <- 0x70" / "inb 0x71" lines.
std::vector<std::string> port_io(TestMachine& m) {
  std::vector<std::string> out;
  for (const auto& e : m.events.snapshot()) {
    if (e.device != "dcdbas") continue;
    auto unq = [](std::string s) { return s.size() >= 2 ? s.substr(1, s.size() - 2) : s; };
    if (e.what == "outb") out.push_back("outb " + unq(e.field("port")) + " <- " + unq(e.field("value")));
    if (e.what == "inb") out.push_back("inb " + unq(e.field("port")));
  }
  return out;
}

void arm(TestMachine& m, const char* action, const char* type) {
  REQUIRE(m.write(path("host_control_action"), action) > 0);
  REQUIRE(m.write(path("host_control_smi_type"), type) > 0);
  REQUIRE(m.write(path("host_control_on_shutdown"), "1") == 1);
}

std::string byte(unsigned long v, int i) { return fmt::format("{:#x}", (v >> (8 * i)) & 0xFF); }

}  // namespace

TEST_SUITE("dcdbas") {

TEST_CASE("host control: power cycle on a TYPE2 PowerEdge 1400, the exact driver port sequence") {
  TestMachine m(kPe1400);
  arm(m, "4", "2");
  const unsigned long a = phys(m);
  CHECK(m.write(kShutdown, "poweroff\n") == 9);
  const std::vector<std::string> expected = {
      "outb 0x70 <- 0x70", "outb 0x71 <- " + byte(a, 0),
      "outb 0x70 <- 0x71", "outb 0x71 <- " + byte(a, 1),
      "outb 0x70 <- 0x72", "outb 0x71 <- " + byte(a, 2),
      "outb 0x70 <- 0x73", "outb 0x71 <- " + byte(a, 3),
      "outb 0xb0 <- 0xa0",  // PE1400_APM_CONTROL_PORT
      "outb 0x70 <- 0xc",   // CMOS_READ(RTC_REG_C)
      "inb 0x71",
      "inb 0xb0",  // serialise
  };
  CHECK(port_io(m) == expected);
  auto hc = m.events_of("dcdbas", "host_control");
  REQUIRE(hc.size() == 1);
  CHECK(hc[0].result == "OK");
  CHECK(hc[0].field("parameter") == "20");
  CHECK(m.events_of("dcdbas", "poll")[0].field("reads") == "1");
  CHECK(m.read(kPower) == "cycled\n");
  // The BIOS saw the pointer in CMOS page 1 and the apm_cmd: command 0x10,
  // parameter 20.
  auto apm = m.events_of("dcdbas", "outb");
  CHECK(apm[8].field("handler") == "\"apm\"");
  CHECK(apm[8].field("apm_cmd_ptr") == "\"" + fmt::format("{:#x}", a) + "\"");
  CHECK(apm[8].field("command") == "\"0x10\"");
  CHECK(apm[8].field("parameter") == "20");
  // A power cycle is a boot: the driver probed again with no buffer and
  // host control cleared; CMOS (battery-backed) still holds the pointer.
  CHECK(m.events_of("machine", "boot").size() == 1);
  CHECK(m.events_of("dcdbas", "probe").size() == 2);
  CHECK(m.read("kernel/debug/vsysfs/machine/power") == "on\n");
  CHECK(m.read(path("smi_data_buf_size")) == "0\n");
  CHECK(m.read(path("smi_data_buf_phys_addr")) == "0\n");
  CHECK(m.read(path("host_control_action")) == "0\n");
  CHECK(m.read(path("host_control_smi_type")) == "0\n");
  CHECK(m.read(path("host_control_on_shutdown")) == "0\n");
  CHECK(m.pread("kernel/debug/vsysfs/dcdbas/cmos", 4, 0x70 * 256 + 0x70) ==
        std::string{static_cast<char>(a & 0xFF), static_cast<char>((a >> 8) & 0xFF),
                    static_cast<char>((a >> 16) & 0xFF), static_cast<char>((a >> 24) & 0xFF)});
  // And it can be shut down again: this boot's notifier runs.
  CHECK(m.write(kShutdown, "reboot\n") == 7);
  CHECK(m.events_of("machine", "boot").size() == 2);
  CHECK(m.events_of("dcdbas", "reboot_notify").size() == 2);
}

TEST_CASE("host control: a mismatched SMI type times out with ETIME and changes no power state") {
  TestMachine m(kPe1400);  // a TYPE2 BIOS
  arm(m, "4", "3");        // TYPE3 writes 0xA0 to 0xB2, which this BIOS ignores
  CHECK(m.write(kShutdown, "halt\n") == 5);
  auto hc = m.events_of("dcdbas", "host_control");
  REQUIRE(hc.size() == 1);
  CHECK(hc[0].result == "ETIME");
  auto poll = m.events_of("dcdbas", "poll");
  REQUIRE(poll.size() == 1);
  CHECK(poll[0].field("reads") == "10000");
  CHECK(port_io(m)[8] == "outb 0xb2 <- 0xa0");
  CHECK(m.read(kPower) == "halted\n");  // what the OS did, not the firmware
  // No APM handler ran; the halted machine answers nothing but its
  // control plane.
  for (const auto& e : m.events_of("dcdbas", "outb")) CHECK(e.field("handler") != "\"apm\"");
  CHECK(m.read("kernel/debug/vsysfs/machine/power") == "halted\n");
  CHECK(m.open_errno(path("smi_data"), O_RDONLY) == 0);
  CHECK(m.read(path("smi_data")) == "<ENODEV>");
}

TEST_CASE("host control: TYPE1 on a PowerEdge 300 uses CMOS page 2 and the status port") {
  TestMachine m("[dcdbas]\nmodel = 'PowerEdge 300'\n");
  arm(m, "2", "1");
  const unsigned long a = phys(m);
  CHECK(m.write(kShutdown, "reboot") == 6);
  const std::vector<std::string> expected = {
      "outb 0x72 <- 0x38", "outb 0x73 <- " + byte(a, 0),
      "outb 0x72 <- 0x39", "outb 0x73 <- " + byte(a, 1),
      "outb 0x72 <- 0x3a", "outb 0x73 <- " + byte(a, 2),
      "outb 0x72 <- 0x3b", "outb 0x73 <- " + byte(a, 3),
      "outb 0xb3 <- 0xff",  // status -1 first, "as called by spec"
      "outb 0xb2 <- 0xa0",
  };
  CHECK(port_io(m) == expected);
  CHECK(m.events_of("dcdbas", "poll")[0].field("what") == "\"inb(0xb3)\"");
  CHECK(m.events_of("dcdbas", "host_control")[0].result == "OK");
  CHECK(m.read(kPower) == "off\n");  // power-off: parameter 0
}

TEST_CASE("host control: TYPE1 on a TYPE3 BIOS finds no pointer where it looks: ETIME") {
  TestMachine m("[dcdbas]\nmodel = 'PowerEdge 750'\n");
  arm(m, "4", "1");
  CHECK(m.write(kShutdown, "poweroff") == 8);
  CHECK(m.events_of("dcdbas", "host_control")[0].result == "ETIME");
  CHECK(m.read(kPower) == "off\n");
  auto out = m.events_of("dcdbas", "outb");
  CHECK(out[9].field("note") == "\"apm_cmd pointer does not point at RAM\"");
}

TEST_CASE("host control: TYPE3 on a PowerEdge 700 power-cycles") {
  TestMachine m("[dcdbas]\nmodel = 'PowerEdge 700'\n");
  arm(m, "4", "3");
  CHECK(m.write(kShutdown, "reboot") == 6);
  CHECK(port_io(m)[8] == "outb 0xb2 <- 0xa0");
  CHECK(m.read(kPower) == "cycled\n");
}

TEST_CASE("host control: power-off takes precedence over power-cycle") {
  TestMachine m(kPe1400);
  arm(m, "6", "2");
  CHECK(m.write(kShutdown, "reboot") == 6);
  CHECK(m.events_of("dcdbas", "host_control")[0].field("parameter") == "0");
  CHECK(m.read(kPower) == "off\n");
}

TEST_CASE("host control: unknown SMI types are ENOSYS; other action bits are ignored") {
  for (const char* type : {"0", "4", "junk"}) {
    CAPTURE(type);
    TestMachine m(kPe1400);
    arm(m, "4", type);
    CHECK(m.write(kShutdown, "poweroff") == 8);
    CHECK(m.events_of("dcdbas", "host_control")[0].result == "ENOSYS");
    CHECK(port_io(m).empty());
    CHECK(m.read(kPower) == "off\n");
  }
  TestMachine m(kPe1400);
  arm(m, "9", "2");  // bits 0 and 3: neither power-off nor power-cycle
  CHECK(m.write(kShutdown, "reboot") == 6);
  CHECK(m.events_of("dcdbas", "host_control")[0].result == "skipped");
  CHECK(port_io(m).empty());
  CHECK(m.read(kPower) == "rebooted\n");
}

TEST_CASE("host control: nothing happens without host_control_on_shutdown or an action") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(path("host_control_action"), "4") == 1);
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  CHECK(m.write(kShutdown, "poweroff") == 8);
  CHECK(m.events_of("dcdbas", "reboot_notify").size() == 1);
  CHECK(m.events_of("dcdbas", "host_control").empty());
  CHECK(m.read(kPower) == "off\n");

  TestMachine n(kPe1400);
  REQUIRE(n.write(path("host_control_on_shutdown"), "1") == 1);
  CHECK(n.write(kShutdown, "reboot") == 6);
  CHECK(n.events_of("dcdbas", "printk").size() == 1);
  CHECK(n.events_of("dcdbas", "host_control").empty());
  CHECK(n.read(kPower) == "rebooted\n");
}

TEST_CASE("host control on the default R740 (no host-control SMI in its BIOS): ETIME") {
  TestMachine m(std::string(vsysfs::devices::default_machine_toml()));
  arm(m, "4", "2");
  CHECK(m.write(kShutdown, "poweroff") == 8);
  CHECK(m.events_of("dcdbas", "host_control")[0].result == "ETIME");
  CHECK(m.read(kPower) == "off\n");
}

}  // TEST_SUITE
