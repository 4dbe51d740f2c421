// Machine snapshots of a [dcdbas] machine (devices/dell/dcdbas_state.cpp,
// docs/snapshot.md): a restore brings back the SMI buffer, the
// host-control settings (a pending power cycle included), the BIOS's NV
// settings, tags, passwords and security keys, CMOS (changed by a
// host-control SMI), the SMI answer table and the SMBIOS tables of the
// boot; a malformed record is EINVAL and changes nothing.
#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/state_record.hpp"
#include "tests/devices/dell/dcdbas_test_util.hpp"

using namespace vsysfs;
using namespace vsysfs::testing::dcdbas;

namespace {

std::string K(std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); }

const devices::StateHandler& handler(testing::TestMachine& m, std::string_view name) {
  for (const auto& h : m.machine.state_handlers())
    if (h.name == name) return h;
  throw std::logic_error("no handler " + std::string(name));
}

std::string save(const devices::StateHandler& h) {
  core::StateWriter w(h.version);
  h.save(w);
  return w.text();
}

std::string with_field(const std::string& text, std::string_view key, const char* value) {
  std::string out;
  bool found = false;
  for (std::size_t pos = 0; pos < text.size();) {
    const auto nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind(std::string(key) + "=", 0) == 0) {
      found = true;
      if (value) out += std::string(key) + "=" + value + "\n";
      continue;
    }
    out += line + "\n";
  }
  if (!found && value) out += std::string(key) + "=" + value + "\n";
  return out;
}

// The files a diff does not render: the binary ones and the seq table.
std::string binaries(testing::TestMachine& m) {
  return m.read(path("smi_data")) + "|" + m.read(K("dcdbas/cmos")) + "|" +
         m.read("firmware/dmi/tables/DMI") + "|" +
         m.read("firmware/dmi/tables/smbios_entry_point") + "|" + m.read(K("dcdbas/smi_answers"));
}

constexpr std::uint32_t kPassword = 0x1e1e1e1e;  // "aaaa" as scan codes

std::vector<std::string> host_control_events(testing::TestMachine& m, std::uint64_t from) {
  std::vector<std::string> out;
  for (const auto& e : m.events.since(from)) {
    if (e.device != "dcdbas" && e.device != "machine") continue;
    std::string line = e.device + " " + e.what + " " + e.result;
    for (const auto& f : e.data) line += " " + f.key + "=" + f.json;
    out.push_back(std::move(line));
  }
  return out;
}

}  // namespace

TEST_SUITE("snapshot") {

TEST_CASE("dcdbas snapshot: buffer, host control, BIOS, CMOS, keys and SMBIOS come back") {
  testing::TestMachine m(kPe1400);
  // At the snapshot: an admin password and its key, an NV setting and the
  // asset tag changed by SMI (DMI still has the boot's tag), a CMOS byte,
  // an answer rule, and a power cycle pending for the next shutdown.
  REQUIRE(ci_smi(m, 10, 2, {0, 0, kPassword, 0})[0] == 0);
  const auto key = static_cast<std::uint32_t>(ci_smi(m, 10, 1, {kPassword, 0, 0, 0})[1]);
  REQUIRE(ci_smi(m, 1, 0, {0x20, 4, key, 0})[0] == 0);
  REQUIRE(ci_smi(m, 11, 1, {0x2d57454e, 0x31, 0, key})[0] == 0);  // "NEW-1"
  REQUIRE(m.write(K("dcdbas/cmos"), "\x5a", core::Caller::root(), 0x70 * 256 + 0x40) == 1);
  REQUIRE(m.write(K("dcdbas/smi_answers"), "add 17 1 res=-2\n") > 0);
  REQUIRE(m.write(path("host_control_smi_type"), "2") == 1);
  REQUIRE(m.write(path("host_control_action"), "4") == 1);
  REQUIRE(m.write(path("host_control_on_shutdown"), "1") == 1);
  const std::string bin = binaries(m);
  REQUIRE(m.write(K("machine/snapshot"), "base") == 4);

  // The first shutdown from the snapshot: the host-control SMI writes the
  // buffer's address into CMOS and the BIOS power-cycles the machine.
  std::uint64_t from = m.events.snapshot().back().seq;
  REQUIRE(m.write(K("machine/shutdown"), "reboot") == 6);
  const auto first = host_control_events(m, from);
  REQUIRE(m.read(K("machine/power_state")) == "cycled\n");
  CHECK(m.pread(K("dcdbas/cmos"), 4, 0x70 * 256 + 0x70) != std::string(4, '\0'));

  // More changes of every kind after the boot.
  CHECK(ci_smi(m, 1, 0, {0x20, 7, key, 0})[0] == -1);  // the old boot's key is stale now
  const auto key2 = static_cast<std::uint32_t>(ci_smi(m, 10, 1, {kPassword, 0, 0, 0})[1]);
  CHECK(ci_smi(m, 1, 0, {0x20, 7, key2, 0})[0] == 0);
  CHECK(ci_smi(m, 10, 2, {kPassword, 0, 0x20202020, 0})[0] == 0);
  CHECK(m.write(path("smi_data_buf_size"), "8192") == 4);
  CHECK(m.write(path("smi_data_buf_size"), "20000") == 5);
  CHECK(m.write(path("driver_override"), "foo\n") == 4);
  CHECK(m.write(path("power/control"), "on") == 2);
  CHECK(m.write(path("host_control_action"), "2") == 1);
  CHECK(m.write(K("dcdbas/smi_answers"), "clear") == 5);
  CHECK(m.write(K("dcdbas/cmos"), "\x01\x02", core::Caller::root(), 0x72 * 256 + 9) == 2);
  CHECK(m.write(K("machine/diff"), "base now") == 8);
  const std::string changed = m.read(K("machine/diff"));
  for (const std::string& p : std::vector<std::string>{
           path("smi_data_buf_size"), path("smi_data_buf_phys_addr"), path("host_control_action"),
           path("host_control_smi_type"), path("host_control_on_shutdown"), path("driver_override"),
           path("power/control"), std::string("devices/virtual/dmi/id/chassis_asset_tag"),
           K("machine/power_state")})
    CHECK_MESSAGE(changed.find(p + ": ") != std::string::npos, p);
  CHECK(binaries(m) != bin);

  REQUIRE(m.write(K("machine/restore"), "base") == 4);
  CHECK(m.write(K("machine/diff"), "base now") == 8);
  CHECK(m.read(K("machine/diff")) == "");
  CHECK(binaries(m) == bin);
  // The snapshot's boot: its security key is good again, the password the
  // old one, the setting the old value.
  CHECK(ci_smi(m, 0, 0, {0x20, 0, 0, 0})[1] == 4);
  CHECK(ci_smi(m, 1, 0, {0x20, 5, key, 0})[0] == 0);
  CHECK(ci_smi(m, 10, 1, {0x20202020, 0, 0, 0})[0] == 2);
  // The pending power cycle happens again, the same way.
  REQUIRE(m.write(K("machine/restore"), "base") == 4);
  from = m.events.snapshot().back().seq;
  REQUIRE(m.write(K("machine/shutdown"), "reboot") == 6);
  CHECK(host_control_events(m, from) == first);
  CHECK(m.read(K("machine/power_state")) == "cycled\n");
}

TEST_CASE("dcdbas snapshot: a WSMT machine's firmware buffer comes back") {
  testing::TestMachine m(kWsmt);
  const std::string cmd = ci_command(0xb2, 0xda, 11, 0, {0, 0, 0, 0});
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  const std::string buf = m.read(path("smi_data"));
  REQUIRE(buf.size() == 4 * 4096 - 8);
  REQUIRE(m.write(K("machine/snapshot"), "w") == 1);
  REQUIRE(m.write(path("smi_request"), "1") == 1);
  REQUIRE(m.write(path("smi_data"), std::string(100, 'z'), core::Caller::root(), 4000) == 100);
  CHECK(m.read(path("smi_data")) != buf);
  REQUIRE(m.write(K("machine/restore"), "w") == 1);
  CHECK(m.read(path("smi_data")) == buf);
  CHECK(m.write(K("machine/diff"), "w now") == 5);
  CHECK(m.read(K("machine/diff")) == "");
}

TEST_CASE("dcdbas snapshot: a malformed record is EINVAL and changes nothing") {
  testing::TestMachine m(kPe1400);
  REQUIRE(ci_smi(m, 1, 0, {0x20, 4, 0, 0})[0] == 0);
  REQUIRE(m.write(K("machine/snapshot"), "x") == 1);
  const auto& h = handler(m, "dcdbas");
  const std::string good = save(h);
  const std::string bin = binaries(m);
  REQUIRE(good.find("bios.setting.32=4,2,5") != std::string::npos);
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"field missing", with_field(good, "bios.asset_tag", nullptr)},
      {"odd hex", with_field(good, "dcdbas.smi_data", "abc")},
      {"data past the buffer", with_field(good, "dcdbas.smi_data_buf_size", "2")},
      {"buffer above the limit", with_field(good, "dcdbas.smi_data_buf_size", "999999")},
      {"buffer without an address", with_field(good, "dcdbas.smi_data_buf_phys_addr", "0")},
      {"wsmt flipped", with_field(good, "dcdbas.wsmt", "1")},
      {"dma cursor outside", with_field(good, "dcdbas.next_dma", "0")},
      {"host control above u32", with_field(good, "dcdbas.host_control_action", "4294967296")},
      {"override with a newline", with_field(good, "dcdbas.driver_override", "a\\nb")},
      {"setting this BIOS lacks", with_field(good, "bios.setting.99", "1,2,3")},
      {"setting with two values", with_field(good, "bios.setting.32", "1,2")},
      {"tag too long", with_field(good, "bios.asset_tag", "0123456789abc")},
      {"password too long", with_field(good, "bios.password.admin", "123456789")},
      {"cmos page past the end", with_field(good, "bios.cmos.256", std::string(512, '0').c_str())},
      {"cmos page short", with_field(good, "bios.cmos.3", "00")},
      {"index on a data port", with_field(good, "bios.index", "113:1")},
      {"latch byte too big", with_field(good, "bios.latch", "178:256")},
      {"an edit that is not a rule", with_field(good, "bios.smi_rules", "clear\\n")},
      {"boot count above u32", with_field(good, "bios.boot_count", "4294967296")},
      {"smbios tag missing", with_field(good, "smbios.asset_tag", nullptr)},
  };
  for (const auto& [why, text] : bad) {
    CAPTURE(std::string(why));
    auto r = core::StateReader::parse(text);
    REQUIRE(r);
    const auto st = h.load(*r);
    REQUIRE_FALSE(st);
    CHECK(st.error().value() == EINVAL);
    CHECK(save(h) == good);
  }
  CHECK(binaries(m) == bin);
  CHECK(m.write(K("machine/diff"), "x now") == 5);
  CHECK(m.read(K("machine/diff")) == "");
  auto r = core::StateReader::parse(good);
  CHECK(h.load(*r));
  CHECK(save(h) == good);
}

}  // TEST_SUITE("snapshot")
