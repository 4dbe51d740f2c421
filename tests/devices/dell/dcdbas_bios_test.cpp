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

// The 8 password bytes as the two (or, for a change, four) argument words
// libsmbios's verify_password/change_password pass (smi_password.c).
std::array<std::uint32_t, 2> pw_words(std::string_view ascii) {
  const auto codes = vsysfs::devices::dcdbas::password_scancodes(ascii);
  REQUIRE(codes);
  std::string b(8, '\0');
  codes->copy(b.data(), std::min<std::size_t>(codes->size(), 8));
  return {u32_at(b, 0), u32_at(b, 4)};
}

std::array<std::uint32_t, 4> change_words(std::string_view old_pw, std::string_view new_pw) {
  const auto o = pw_words(old_pw), n = pw_words(new_pw);
  return {o[0], o[1], n[0], n[1]};
}

std::string with_passwords(std::string_view extra) {
  return std::string(kPe1400).insert(std::string(kPe1400).find("[[dcdbas.setting]]"), extra);
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
  for (std::uint16_t cls : {2, 7, 13, 17, 0xffff}) {
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
  TestMachine m(std::string(kWsmt).append("service_tag = 'WSMT123'\n"));
  Out o = ci_smi(m, 11, 2, {0, 0, 0, 0});
  CHECK(o[0] == 0);
  CHECK(tag_of(o) == "WSMT123");
  CHECK(m.events_of("dcdbas", "smi").back().field("ebx") == "\"0x6f7d5018\"");
}

TEST_CASE("password scan codes: set 1, US layout, shift folded") {
  using vsysfs::devices::dcdbas::password_scancodes;
  CHECK(password_scancodes("a") == std::string("\x1e"));
  CHECK(password_scancodes("A") == std::string("\x1e"));
  CHECK(password_scancodes("1!0") == std::string("\x02\x02\x0b"));
  CHECK(password_scancodes("qp/ ") == std::string("\x10\x19\x35\x39"));
  CHECK(password_scancodes("`~\\|") == std::string("\x29\x29\x2b\x2b"));
  CHECK_FALSE(password_scancodes("\t"));
  CHECK_FALSE(password_scancodes("\xc3\xa9"));
}

TEST_CASE("BIOS classes 9, 10, 12: installed, verify, change") {
  TestMachine m(with_passwords("admin_password = 'Secret1'\nowner_password = 'own'\n"));
  CHECK(ci_smi(m, 9, 0, {1, 0, 0, 0}) == Out{1, 0, 0, 0});   // user: not installed
  CHECK(ci_smi(m, 10, 0, {1, 0, 0, 0}) == Out{0, 0, 0, 0});  // admin: installed
  CHECK(ci_smi(m, 12, 0, {1, 0, 0, 0}) == Out{0, 0, 0, 0});  // owner: installed
  // Verify: scan codes, case folded by the keyboard; the key in cbRES2.
  const auto good = pw_words("secret1");
  Out v = ci_smi(m, 10, 1, {good[0], good[1], 0, 0});
  CHECK(v[0] == 0);
  CHECK(v[1] > 0);
  CHECK(v[1] <= 0xffff);
  const auto key = static_cast<std::uint32_t>(v[1]);
  CHECK(ci_smi(m, 10, 1, {good[0], good[1], 0, 0})[1] == v[1]);  // stable within a boot
  const auto bad = pw_words("secret2");
  CHECK(ci_smi(m, 10, 1, {bad[0], bad[1], 0, 0}) == Out{2, 0, 0, 0});
  CHECK(ci_smi(m, 9, 1, {good[0], good[1], 0, 0}) == Out{1, 0, 0, 0});  // none installed
  // The "II" interface (ASCII in a buffer) is not there: libsmbios falls back.
  for (std::uint16_t sel : {3, 4, 5}) CHECK(ci_smi(m, 10, sel, {0, 0, 0, 0}) == Out{-2, 0, 0, 0});

  // Writes need the admin key: a wrong key changes nothing.
  CHECK(ci_smi(m, 1, 0, {0x20, 7, 0, 0}) == Out{-1, 0, 0, 0});
  CHECK(ci_smi(m, 1, 0, {0x20, 7, key ^ 1, 0}) == Out{-1, 0, 0, 0});
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0}) == Out{0, 3, 0, 9});
  CHECK(ci_smi(m, 1, 0, {0x20, 7, key, 0}) == Out{0, 7, 0, 9});
  CHECK(ci_smi(m, 11, 1, tag_input("NEWTAG", 0))[0] == -1);
  CHECK(tag_of(ci_smi(m, 11, 0, {0, 0, 0, 0})) == "ASSET-42");
  CHECK(ci_smi(m, 11, 1, tag_input("NEWTAG", key))[0] == 0);
  CHECK(tag_of(ci_smi(m, 11, 0, {0, 0, 0, 0})) == "NEWTAG");
  CHECK(m.events_of("dcdbas", "smi")[10].field("note") == "\"bad security key\"");

  // Change: old must match; the old key dies with the old password.
  CHECK(ci_smi(m, 10, 2, change_words("wrong", "next")) == Out{2, 0, 0, 0});
  CHECK(ci_smi(m, 10, 2, change_words("secret1", "next")) == Out{0, 0, 0, 0});
  CHECK(ci_smi(m, 10, 1, {good[0], good[1], 0, 0})[0] == 2);
  const auto nw = pw_words("next");
  const Out v2 = ci_smi(m, 10, 1, {nw[0], nw[1], 0, 0});
  CHECK(v2[0] == 0);
  CHECK(v2[1] != v[1]);
  CHECK(ci_smi(m, 1, 0, {0x20, 5, key, 0})[0] == -1);
  CHECK(ci_smi(m, 1, 0, {0x20, 5, static_cast<std::uint32_t>(v2[1]), 0})[0] == 0);
  // Removing it (new password all zero) lifts the key requirement.
  CHECK(ci_smi(m, 10, 2, {nw[0], nw[1], 0, 0}) == Out{0, 0, 0, 0});
  CHECK(ci_smi(m, 10, 0, {1, 0, 0, 0}) == Out{1, 0, 0, 0});
  CHECK(ci_smi(m, 1, 0, {0x20, 4, 0, 0}) == Out{0, 4, 0, 9});
  // The owner password guards no write (libsmbios asks admin, then user).
  CHECK(ci_smi(m, 12, 0, {1, 0, 0, 0}) == Out{0, 0, 0, 0});
}

TEST_CASE("BIOS: a user password alone guards writes with its key; property tag too") {
  TestMachine m(with_passwords("user_password = 'u'\n"));
  const auto u = pw_words("u");
  const Out v = ci_smi(m, 9, 1, {u[0], u[1], 0, 0});
  REQUIRE(v[0] == 0);
  CHECK(ci_smi(m, 1, 0, {0x10, 0, 0, 0})[0] == -1);
  CHECK(ci_smi(m, 1, 0, {0x10, 0, static_cast<std::uint32_t>(v[1]), 0})[0] == 0);
  // Class 20 select 1 takes the key in input[1].
  REQUIRE(m.write(path("smi_data_buf_size"), "200") == 3);  // the buffer moves as it grows
  const std::uint32_t buf = static_cast<std::uint32_t>(phys(m)) + 52;
  std::string cmd = ci_command(0xb2, 0xda, 20, 1, {buf, 0, 0, 0}, 80);
  cmd.replace(52, 3, "new");
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(outputs(m)[0] == -1);
  put32(cmd, 24, static_cast<std::uint32_t>(v[1]));
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  CHECK(outputs(m)[0] == 0);
}

TEST_CASE("BIOS password keys of the machine file are checked") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\nadmin_password = 'ninechars'\n"),
                       doctest::Contains("admin_password"), ConfigError);
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\nuser_password = \"tab\\there\"\n"),
                       doctest::Contains("user_password"), ConfigError);
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
