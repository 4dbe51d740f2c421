// Unit tests of dcdbas's failure points (devices/dell/dcdbas_fault.cpp):
// smi (no answer, cbRES1 error, short answer) and host_control (ETIME,
// no power action), through the files as a tool drives them.
#include <doctest/doctest.h>

#include <string>

#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;

namespace {

std::string f(std::string_view file) { return "kernel/debug/vsysfs/fail/" + std::string(file); }
constexpr const char* kShutdown = "kernel/debug/vsysfs/machine/shutdown";
constexpr const char* kPower = "kernel/debug/vsysfs/machine/power_state";

void arm(TestMachine& m, const char* kind) {
  REQUIRE(m.write(f("smi/probability"), "100") == 3);
  REQUIRE(m.write(f("smi/kind"), kind) > 0);
}

}  // namespace

TEST_SUITE("dcdbas") {

TEST_CASE("smi no_answer: the buffer stays exactly as written, nothing changes in the BIOS") {
  TestMachine m(kPe1400);
  arm(m, "no_answer");
  const std::string cmd = ci_command(0xb2, 0xda, 1, 0, {0x10, 0, 0, 0});  // write NV 0x10 := 0
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  CHECK(m.write(path("smi_request"), "1\n") == 2);
  // Only the EBX the driver itself writes differs.
  std::string after = m.pread(path("smi_data"), cmd.size(), 0);
  std::string expect = cmd;
  put32(expect, 4, static_cast<std::uint32_t>(phys(m) + 16));
  CHECK(after == expect);
  auto smi = m.events_of("dcdbas", "smi");
  REQUIRE(smi.size() == 1);
  CHECK(smi[0].field("answered") == "false");
  CHECK(smi[0].field("fault") == "\"no_answer\"");
  // times 1: the next SMI is answered, and the setting was never written.
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0}) == std::array<std::int32_t, 4>{0, 1, 0, 1});
}

TEST_CASE("smi error: cbRES1 is the configured code and the BIOS did nothing") {
  TestMachine m(kPe1400);
  arm(m, "error");
  REQUIRE(m.write(f("smi/cbres1"), "-2") == 2);
  auto out = ci_smi(m, 1, 0, {0x20, 7, 0, 0});
  CHECK(out[0] == -2);
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == std::array<std::int32_t, 4>{0, 3, 0, 9});
}

TEST_CASE("smi short: the BIOS acts but only answer_bytes bytes of output[] arrive") {
  TestMachine m(kPe1400);
  arm(m, "short");
  REQUIRE(m.write(f("smi/answer_bytes"), "6") == 1);
  // Write 0x20 := 7: the answer is {0, 7, 0, 9}; of it only bytes 0..5
  // arrive. ci_command wrote output[] = {0xAAAAAAAA, 0, 0, 0}.
  auto out = ci_smi(m, 1, 0, {0x20, 7, 0, 0});
  CHECK(out == std::array<std::int32_t, 4>{0, 7, 0, 0});  // max (9) never arrived
  REQUIRE(m.write(f("smi/answer_bytes"), "2") == 1);
  REQUIRE(m.write(f("smi/times"), "1") == 1);
  out = ci_smi(m, 1, 0, {0x20, 5, 0, 0});
  CHECK(static_cast<std::uint32_t>(out[0]) == 0xAAAA0000);  // half a status
  CHECK(out[1] == 0);
  // The BIOS did act both times.
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == std::array<std::int32_t, 4>{0, 5, 0, 9});
}

TEST_CASE("smi with task-filter: only the listed pids' SMIs fail") {
  TestMachine m(kPe1400);
  arm(m, "no_answer");
  REQUIRE(m.write(f("smi/task-filter"), "Y") == 1);
  REQUIRE(m.write(f("pids"), "4242") == 4);
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0})[0] == 0);  // root() is pid 1
  REQUIRE(m.write(f("pids"), "1") == 1);
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0})[0] == static_cast<std::int32_t>(0xAAAAAAAA));
}

TEST_CASE("host_control timeout: the APM command goes unanswered, the poll ends in ETIME") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(path("host_control_action"), "2") == 1);  // power off
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  REQUIRE(m.write(path("host_control_on_shutdown"), "1") == 1);
  REQUIRE(m.write(f("host_control/probability"), "100") == 3);
  CHECK(m.write(kShutdown, "halt\n") == 5);
  auto hc = m.events_of("dcdbas", "host_control");
  REQUIRE(hc.size() == 1);
  CHECK(hc[0].result == "ETIME");
  CHECK(hc[0].field("fault") == "\"timeout\"");
  CHECK(m.events_of("dcdbas", "poll")[0].field("reads") == "10000");
  CHECK(m.read(kPower) == "halted\n");  // the firmware never powered off
  CHECK(m.read(f("host_control/injected")) == "1\n");
}

TEST_CASE("host_control no_power: the firmware completes, the power state does not change") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(path("host_control_action"), "2") == 1);
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  REQUIRE(m.write(path("host_control_on_shutdown"), "1") == 1);
  REQUIRE(m.write(f("host_control/probability"), "100") == 3);
  REQUIRE(m.write(f("host_control/kind"), "no_power") == 8);
  CHECK(m.write(kShutdown, "halt\n") == 5);
  auto hc = m.events_of("dcdbas", "host_control");
  REQUIRE(hc.size() == 1);
  CHECK(hc[0].result == "OK");
  CHECK(m.events_of("dcdbas", "power").size() == 1);
  CHECK(m.read(kPower) == "halted\n");
}

TEST_CASE("host_control without a fault still powers off (the hook is inert)") {
  TestMachine m(kPe1400);
  REQUIRE(m.write(path("host_control_action"), "2") == 1);
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  REQUIRE(m.write(path("host_control_on_shutdown"), "1") == 1);
  CHECK(m.write(kShutdown, "halt\n") == 5);
  CHECK(m.read(kPower) == "off\n");
}

}  // TEST_SUITE("dcdbas")
