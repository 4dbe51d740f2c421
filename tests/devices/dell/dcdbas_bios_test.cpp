// Unit tests of devices/dcdbas_bios.cpp: each calling-interface command the
// simulated BIOS answers, driven through the dcdbas files
// (docs/kernel-semantics.md sections 2.3, 2.4).
#include "devices/dell/dcdbas_bios.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cerrno>
#include <string>

#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;
using Out = std::array<std::int32_t, 4>;

namespace {

std::string tag_of(const Out& o) {
  std::string s;
  for (int i = 1; i < 4; ++i)
    for (int b = 0; b < 4; ++b) s.push_back(static_cast<char>((static_cast<std::uint32_t>(o[i]) >> (8 * b)) & 0xFF));
  return s.substr(0, s.find('\0'));
}

std::array<std::uint32_t, 4> tag_input(std::string_view tag, std::uint32_t key = 0) {
  std::string b(12, '\0');
  tag.copy(b.data(), std::min<std::size_t>(tag.size(), 12));
  return {u32_at(b, 0), u32_at(b, 4), u32_at(b, 8), key};
}

}  // namespace

TEST_SUITE("dcdbas") {

TEST_CASE("BIOS class 0: token read of NV, battery and AC values") {
  TestMachine m(kPe1400);
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == Out{0, 3, 0, 9});
  CHECK(ci_smi(m, 0, 1, {0x20, 0, 0, 0}) == Out{0, 2, 0, 9});
  CHECK(ci_smi(m, 0, 2, {0x20, 0, 0, 0}) == Out{0, 5, 0, 9});
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0}) == Out{0, 1, 0, 1});
  CHECK(ci_smi(m, 0, 0, {0x99, 0, 0, 0})[0] == -1);        // no setting there
  CHECK(ci_smi(m, 0, 0, {0x10010, 0, 0, 0})[0] == -1);     // not a 16-bit location
  CHECK(ci_smi(m, 0, 3, {0x20, 0, 0, 0}) == Out{-2, 0, 0, 0});  // unsupported select
  // The event log has the whole exchange.
  auto smi = m.events_of("dcdbas", "smi");
  REQUIRE(smi.size() == 7);
  CHECK(smi[0].result == "OK");
  CHECK(smi[0].pid == 1);
  CHECK(smi[0].field("request") == "\"calling_interface\"");
  CHECK(smi[0].field("handler") == "\"calling_interface\"");
  CHECK(smi[0].field("class") == "0");
  CHECK(smi[0].field("select") == "0");
  CHECK(smi[0].field("input") == "[32,0,0,0]");
  CHECK(smi[0].field("output") == "[0,3,0,9]");
  CHECK(smi[0].field("edx") == "\"0xb2\"");
  CHECK(smi[0].field("eax") == "\"0xda\"");
  CHECK(smi[0].field("ecx") == "\"0x42534931\"");
  CHECK(smi[0].field("ebx") == "\"" + fmt::format("{:#x}", phys(m) + 16) + "\"");
}

TEST_CASE("BIOS class 1: token write changes the NV setting, checks min..max") {
  TestMachine m(kPe1400);
  CHECK(ci_smi(m, 1, 0, {0x10, 0, 0, 0}) == Out{0, 0, 0, 1});
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0}) == Out{0, 0, 0, 1});
  CHECK(ci_smi(m, 1, 0, {0x10, 2, 0, 0})[0] == -1);  // above max: refused
  CHECK(ci_smi(m, 0, 0, {0x10, 0, 0, 0})[1] == 0);
  CHECK(ci_smi(m, 1, 2, {0x20, 7, 0, 0}) == Out{0, 7, 0, 9});  // AC value only
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0})[1] == 3);
  CHECK(ci_smi(m, 0, 2, {0x20, 0, 0, 0})[1] == 7);
  CHECK(ci_smi(m, 1, 0, {0x77, 1, 0, 0})[0] == -1);
  CHECK(ci_smi(m, 1, 5, {0x10, 1, 0, 0})[0] == -2);
  auto smi = m.events_of("dcdbas", "smi");
  REQUIRE(smi.size() == 9);
  CHECK(smi[0].field("class") == "1");
  CHECK(smi[0].field("input") == "[16,0,0,0]");
  CHECK(smi[0].field("output") == "[0,0,0,1]");
  CHECK(smi[0].field("note") == "\"location 0x10 1 -> 0\"");
  CHECK(smi[2].field("note") == "\"value outside min..max\"");
}

TEST_CASE("BIOS class 11: asset and service tag") {
  TestMachine m(kPe1400);
  Out o = ci_smi(m, 11, 0, {0, 0, 0, 0});
  CHECK(o[0] == 0);
  CHECK(tag_of(o) == "ASSET-42");
  o = ci_smi(m, 11, 2, {0, 0, 0, 0});
  CHECK(o[0] == 0);
  CHECK(tag_of(o) == "ABC1234");
  CHECK(ci_smi(m, 11, 1, tag_input("NEW-ASSET-12"))[0] == 0);
  CHECK(tag_of(ci_smi(m, 11, 0, {0, 0, 0, 0})) == "NEW-ASSET-12");
  // The service tag is set once, by manufacturing: this BIOS refuses.
  CHECK(ci_smi(m, 11, 3, tag_input("ZZZ9999"))[0] == -1);
  CHECK(tag_of(ci_smi(m, 11, 2, {0, 0, 0, 0})) == "ABC1234");
  CHECK(ci_smi(m, 11, 4, {0, 0, 0, 0}) == Out{-2, 0, 0, 0});
}

TEST_CASE("BIOS class 11: an unset service tag can be written once") {
  TestMachine m("[dcdbas]\nmodel = 'PowerEdge 650'\nservice_tag = ''\n");
  CHECK(ci_smi(m, 11, 2, {0, 0, 0, 0}) == Out{0, 0, 0, 0});
  CHECK(ci_smi(m, 11, 3, tag_input("HJ4K2L1"))[0] == 0);
  CHECK(tag_of(ci_smi(m, 11, 2, {0, 0, 0, 0})) == "HJ4K2L1");
  CHECK(ci_smi(m, 11, 3, tag_input("XXXXXXX"))[0] == -1);
}

TEST_CASE("BIOS class 20: property tag through a buffer that follows, with the length header") {
  TestMachine m(kPe1400);
  // Size the buffer first (it may move), then point input[0] at the header.
  CHECK(m.write(path("smi_data_buf_size"), "200") == 3);
  const unsigned long base = phys(m);
  std::string cmd = ci_command(0xb2, 0xda, 20, 0, {static_cast<std::uint32_t>(base + 52), 0, 0, 0}, 4 + 81);
  put32(cmd, 52, 81);  // libsmbios: u32 length, then the bytes
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(outputs(m)[0] == 0);
  const std::string buf = m.read(path("smi_data"));
  CHECK(buf.substr(56, 19) == std::string("Property of vsysfs\0", 19));

  // Write: an 80-byte buffer at input[0].
  std::string w = ci_command(0xb2, 0xda, 20, 1, {static_cast<std::uint32_t>(base + 52), 0, 0, 0}, 80);
  std::string_view owner = "Owned by the test";
  owner.copy(w.data() + 52, owner.size());
  REQUIRE(m.write(path("smi_data"), w) == static_cast<long>(w.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(outputs(m)[0] == 0);
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(m.read(path("smi_data")).substr(56, owner.size() + 1) == std::string(owner) + '\0');

  // A buffer address outside RAM: -1, nothing written.
  CHECK(ci_smi(m, 20, 0, {0x1000, 0, 0, 0})[0] == -1);
  CHECK(ci_smi(m, 20, 2, {0, 0, 0, 0}) == Out{-2, 0, 0, 0});
}

TEST_CASE("BIOS class 20: a length header of 0 asks for nothing and gets nothing") {
  // Found by fuzz_smi (tests/fuzz/regress/fuzz_smi): the empty copy was
  // undefined behaviour (memcpy of a null pointer).
  TestMachine m(kPe1400);
  CHECK(m.write(path("smi_data_buf_size"), "200") == 3);
  const unsigned long base = phys(m);
  std::string cmd = ci_command(0xb2, 0xda, 20, 0, {static_cast<std::uint32_t>(base + 52), 0, 0, 0}, 4 + 81);
  put32(cmd, 52, 0);
  for (std::size_t i = 56; i < cmd.size(); ++i) cmd[i] = 'z';
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(outputs(m) == Out{0, 0, 0, 0});
  CHECK(m.pread(path("smi_data"), cmd.size() - 56, 56) == std::string(cmd.size() - 56, 'z'));
  // The same with the header at the very end of the buffer: the data
  // would start past it, and nothing is written there either.
  cmd = ci_command(0xb2, 0xda, 20, 0, {static_cast<std::uint32_t>(base + 196), 0, 0, 0}, 4 + 81);
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(outputs(m)[0] == 0);
}

TEST_CASE("BIOS: unsupported classes answer -2 and clear the other outputs") {
  TestMachine m(kPe1400);
  for (std::uint16_t cls : {2, 7, 10, 17, 0xffff}) {
    CAPTURE(cls);
    CHECK(ci_smi(m, cls, 0, {1, 2, 3, 4}) == Out{-2, 0, 0, 0});
  }
}

TEST_CASE("BIOS: a raw SMI uses the caller's EBX") {
  TestMachine m(kPe1400);
  CHECK(m.write(path("smi_data_buf_size"), "64") == 2);
  const unsigned long base = phys(m);
  // EBX pointing at the command buffer: answered like a CI SMI.
  std::string cmd = ci_command(0xb2, 0xda, 0, 0, {0x20, 0, 0, 0}, 0, static_cast<std::uint32_t>(base + 16));
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  CHECK(m.write(path("smi_request"), "2") == 1);
  CHECK(outputs(m) == Out{0, 3, 0, 9});
  // EBX pointing nowhere: the handler finds no buffer and changes nothing.
  cmd = ci_command(0xb2, 0xda, 0, 0, {0x20, 0, 0, 0}, 0, 0x1000);
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  CHECK(m.write(path("smi_request"), "2") == 1);
  CHECK(m.pread(path("smi_data"), 52, 0) == cmd);
  auto smi = m.events_of("dcdbas", "smi");
  REQUIRE(smi.size() == 2);
  CHECK(smi[0].field("request") == "\"raw\"");
  CHECK(smi[1].field("answered") == "false");
  CHECK(smi[1].field("note") == "\"ebx does not point at RAM\"");
}

TEST_CASE("BIOS: a wrong command code or port is not answered") {
  TestMachine m(kPe1400);
  for (auto [port, code] : {std::pair<std::uint16_t, std::uint8_t>{0xb2, 0xdb}, {0xb3, 0xda}, {0x2e, 0xda}}) {
    CAPTURE(port);
    const std::string cmd = ci_command(port, code, 0, 0, {0x20, 0, 0, 0});
    REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
    CHECK(m.write(path("smi_request"), "1") == 1);
    const std::string after = m.read(path("smi_data"));
    CHECK(after.substr(16) == cmd.substr(16));  // only ebx (the driver's) changed
  }
  for (const auto& e : m.events_of("dcdbas", "smi")) CHECK(e.field("answered") == "false");
}

TEST_CASE("BIOS: calling interface on the WSMT firmware buffer") {
  TestMachine m(std::string(kWsmt) + "service_tag = 'WSMT123'\n");
  Out o = ci_smi(m, 11, 2, {0, 0, 0, 0});
  CHECK(o[0] == 0);
  CHECK(tag_of(o) == "WSMT123");
  CHECK(m.events_of("dcdbas", "smi").back().field("ebx") == "\"0x6f7d5018\"");
}

TEST_CASE("BIOS configuration errors name the key") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.token]]\nid = 1\nlocation = 5\n"),
                       doctest::Contains("no [[dcdbas.setting]]"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\n[[dcdbas.setting]]\nlocation = 5\nvalue = 9\nmax = 1\n"),
                       doctest::Contains("min..max"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\nhost_control_type = 4\n"),
                       doctest::Contains("host_control_type"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\nservice_tag = 'THIRTEEN-CHAR'\n"),
                       doctest::Contains("service_tag"), ConfigError);
}

}  // TEST_SUITE
