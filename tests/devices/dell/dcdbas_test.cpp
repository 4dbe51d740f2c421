// Unit tests of devices/dcdbas.cpp: the sysfs files, buffer growth, the SMI
// request path (docs/kernel-semantics.md sections 2.1 to 2.3, 2.6).
#include "devices/dell/dcdbas.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "tests/devices/dell/dcdbas_test_util.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;
using namespace vsysfs::testing::dcdbas;

TEST_SUITE("dcdbas") {

TEST_CASE("files, modes, sizes and the platform-device surroundings") {
  TestMachine m(kPe1400);
  struct {
    const char* name;
    mode_t mode;
  } files[] = {{"smi_data", 0600},           {"smi_data_buf_phys_addr", 0400},
               {"smi_data_buf_size", 0600},  {"smi_request", 0200},
               {"host_control_action", 0600}, {"host_control_smi_type", 0600},
               {"host_control_on_shutdown", 0600}, {"uevent", 0644},
               {"modalias", 0444},           {"driver_override", 0644},
               {"power/control", 0644},      {"power/runtime_status", 0444}};
  for (const auto& f : files) {
    CAPTURE(f.name);
    auto node = m.tree.find(std::string(kDir) + f.name);
    REQUIRE(node);
    CHECK(node->mode.load() == f.mode);
  }
  auto smi_data = m.tree.find(std::string(kDir).append("smi_data"));
  CHECK(smi_data->kind == vsysfs::core::NodeKind::Bin);
  CHECK(smi_data->size() == 0);  // bin_attribute size 0: stat shows 0
  CHECK(m.link_target("devices/platform/dcdbas/driver") == "../../../bus/platform/drivers/dcdbas");
  CHECK(m.link_target("devices/platform/dcdbas/subsystem") == "../../../bus/platform");
  CHECK(m.link_target("bus/platform/devices/dcdbas") == "../../../devices/platform/dcdbas");
  CHECK(m.link_target("bus/platform/drivers/dcdbas/dcdbas") == "../../../../devices/platform/dcdbas");
  CHECK(m.read("devices/platform/dcdbas/uevent") == "DRIVER=dcdbas\nMODALIAS=platform:dcdbas\n");
  CHECK(m.read("devices/platform/dcdbas/modalias") == "platform:dcdbas\n");
  CHECK(m.read("devices/platform/dcdbas/driver_override") == "(null)\n");
  CHECK(m.read("devices/platform/dcdbas/power/runtime_status") == "unsupported\n");
  CHECK(m.read("module/dcdbas/version") == "5.6.0-3.4\n");
  // The sysfs open check applies even to root (docs/kernel-semantics.md section 1.2).
  CHECK(m.open_errno("devices/platform/dcdbas/smi_request", O_RDONLY) == -EACCES);
  CHECK(m.open_errno("devices/platform/dcdbas/smi_data_buf_phys_addr", O_WRONLY) == -EACCES);
  CHECK(m.open_errno("devices/platform/dcdbas/modalias", O_WRONLY) == -EACCES);
}

TEST_CASE("initial state without WSMT: no buffer, everything 0") {
  TestMachine m(kPe1400);
  CHECK(m.read(path("smi_data_buf_size")) == "0\n");
  CHECK(m.read(path("smi_data_buf_phys_addr")) == "0\n");
  CHECK(m.read(path("host_control_action")) == "0\n");
  CHECK(m.read(path("host_control_smi_type")) == "0\n");
  CHECK(m.read(path("host_control_on_shutdown")) == "0\n");
  CHECK(m.read(path("smi_data")).empty());
}

TEST_CASE("smi_data_buf_size: simple_strtoul base 10, grow only, 256 KiB limit") {
  struct Case {
    std::string in;
    long ret;          // count or -errno
    std::string size;  // afterwards
  };
  // Starting from no buffer; each row is its own machine.
  const Case cases[] = {
      {"", 0, "0\n"},  // zero-length write never reaches store()
      {"\n", 1, "0\n"},
      {"junk", 4, "0\n"},
      {"0x2", 3, "0\n"},  // base 10: stops at 'x'
      {"-1", 2, "0\n"},   // no sign in simple_strtoul: 0
      {"18446744073709551616", 20, "0\n"},  // 2^64 wraps to 0
      {"18446744073709551615", -EINVAL, "0\n"},
      {"262145", -EINVAL, "0\n"},
      {"262144", 6, "262144\n"},
      {"100abc", 6, "100\n"},
      {std::string("12\0" "99", 5), 5, "12\n"},
      {" 5", 2, "0\n"},  // no whitespace skipping
      {"+5", 2, "0\n"},
      {"4096\n", 5, "4096\n"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    TestMachine m(kPe1400);
    CHECK(m.write(path("smi_data_buf_size"), c.in) == c.ret);
    CHECK(m.read(path("smi_data_buf_size")) == c.size);
  }
}

TEST_CASE("buffer growth keeps contents, zero-fills, moves the address, never shrinks") {
  TestMachine m(kPe1400);
  CHECK(m.write(path("smi_data"), "ABCDEFGHIJ") == 10);
  CHECK(m.read(path("smi_data_buf_size")) == "10\n");
  const unsigned long a1 = phys(m);
  CHECK(a1 != 0);
  CHECK(a1 % 4096 == 0);
  CHECK(m.write(path("smi_data_buf_size"), "4096") == 4);
  const unsigned long a2 = phys(m);
  CHECK(a2 != a1);  // a new dma_alloc_coherent buffer
  CHECK(a2 + 4096 <= 0x100000000UL);
  const std::string all = m.read(path("smi_data"));
  REQUIRE(all.size() == 4096);
  CHECK(all.substr(0, 10) == "ABCDEFGHIJ");
  CHECK(all.substr(10) == std::string(4086, '\0'));
  // Smaller or equal: nothing changes, not even the address.
  CHECK(m.write(path("smi_data_buf_size"), "17") == 2);
  CHECK(m.write(path("smi_data_buf_size"), "4096") == 4);
  CHECK(m.read(path("smi_data_buf_size")) == "4096\n");
  CHECK(phys(m) == a2);
  // A write past the end grows to pos+count and keeps the rest.
  CHECK(m.write(path("smi_data"), "XY", Caller::root(), 5000) == 2);
  CHECK(m.read(path("smi_data_buf_size")) == "5002\n");
  CHECK(phys(m) != a2);
  const std::string grown = m.read(path("smi_data"));
  CHECK(grown.substr(0, 10) == "ABCDEFGHIJ");
  CHECK(grown.substr(5000) == "XY");
  CHECK(m.events_of("dcdbas", "smi_data_buf_realloc").size() == 3);
}

TEST_CASE("smi_data: EINVAL past 256 KiB, EOF past the end, nothing changes on error") {
  TestMachine m(kPe1400);
  CHECK(m.write(path("smi_data"), "0123456789", Caller::root(), 262140) == -EINVAL);
  CHECK(m.read(path("smi_data_buf_size")) == "0\n");
  CHECK(m.write(path("smi_data"), "0123", Caller::root(), 262140) == 4);  // ends exactly at the limit
  CHECK(m.read(path("smi_data_buf_size")) == "262144\n");
  const unsigned long a = phys(m);
  CHECK(m.write(path("smi_data"), "x", Caller::root(), 262144) == -EINVAL);
  CHECK(phys(m) == a);
  CHECK(m.pread(path("smi_data"), 16, 262144).empty());
  CHECK(m.pread(path("smi_data"), 16, 262142) == std::string("23"));
  // Short reads (the reply lives in a small string) come back intact.
  CHECK(m.pread(path("smi_data"), 3, 262141) == std::string("123"));
  CHECK(m.events_of("dcdbas", "smi_data_write").back().result == "EINVAL");
}

TEST_CASE("smi_request: ENODEV below 17 bytes for every value") {
  TestMachine m(kPe1400);
  for (const char* v : {"0", "1", "2", "3", "junk", "\n"}) {
    CAPTURE(v);
    CHECK(m.write(path("smi_request"), v) == -ENODEV);
  }
  CHECK(m.write(path("smi_data_buf_size"), "16") == 2);
  CHECK(m.write(path("smi_request"), "0") == -ENODEV);
  CHECK(m.write(path("smi_data_buf_size"), "17") == 2);
  CHECK(m.write(path("smi_request"), "0") == 1);
}

TEST_CASE("smi_request: bad values are EINVAL and change nothing; 0 zeroes") {
  TestMachine m(kPe1400);
  const std::string cmd = ci_command(0xb2, 0xda, 0, 0, {});
  CHECK(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  for (const char* v : {"3", "10", "4294967297", "99999999999999999999"}) {
    CAPTURE(v);
    CHECK(m.write(path("smi_request"), v) == -EINVAL);
    CHECK(m.read(path("smi_data")) == cmd);
  }
  CHECK(m.events_of("dcdbas", "smi").empty());
  CHECK(m.write(path("smi_request"), "0\n") == 2);
  CHECK(m.read(path("smi_data")) == std::string(cmd.size(), '\0'));
}

TEST_CASE("smi_request: junk, \"-1\" and \"0x2\" parse as 0 and zero the buffer (kernel quirk)") {
  for (const char* v : {"junk", "-1", "0x2", "\n", "18446744073709551616"}) {
    CAPTURE(v);
    TestMachine m(kPe1400);
    const std::string cmd = ci_command(0xb2, 0xda, 0, 0, {});
    REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
    CHECK(m.write(path("smi_request"), v) == static_cast<long>(std::string_view(v).size()));
    CHECK(m.read(path("smi_data")) == std::string(cmd.size(), '\0'));
    CHECK(m.events_of("dcdbas", "smi").empty());
  }
}

TEST_CASE("smi_request: bad magic is EBADR; request 1 still rewrites ebx first (kernel quirk)") {
  TestMachine m(kPe1400);
  std::string cmd = ci_command(0xb2, 0xda, 0, 0, {});
  cmd[0] = 'X';
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  CHECK(m.write(path("smi_request"), "2") == -EBADR);
  CHECK(m.read(path("smi_data")) == cmd);  // raw: untouched
  CHECK(m.write(path("smi_request"), "1") == -EBADR);
  const std::string after = m.read(path("smi_data"));
  CHECK(u32_at(after, 4) == phys(m) + 16);  // ebx = phys + offsetof(command_buffer)
  CHECK(after.substr(8) == cmd.substr(8));
  auto smis = m.events_of("dcdbas", "smi");
  REQUIRE(smis.size() == 2);
  CHECK(smis[0].result == "EBADR");
  CHECK(smis[1].field("note") == "\"invalid magic value\"");
}

TEST_CASE("host_control_action grows the buffer to 198 and stores an unsigned int") {
  TestMachine m(kPe1400);
  CHECK(m.write(path("smi_data"), "abc") == 3);
  CHECK(m.write(path("host_control_action"), "4\n") == 2);
  CHECK(m.read(path("smi_data_buf_size")) == "198\n");
  CHECK(m.read(path("smi_data")).substr(0, 3) == "abc");
  CHECK(m.read(path("host_control_action")) == "4\n");
  const struct {
    const char* in;
    const char* shown;
  } cases[] = {{"junk", "0\n"}, {"0x2", "0\n"}, {"-1", "0\n"}, {"258", "258\n"},
               {"7abc", "7\n"}, {"\n", "0\n"}};
  for (const auto& c : cases) {
    CAPTURE(c.in);
    CHECK(m.write(path("host_control_action"), c.in) == static_cast<long>(std::string_view(c.in).size()));
    CHECK(m.read(path("host_control_action")) == c.shown);
  }
}

TEST_CASE("host_control_action/smi_type/on_shutdown truncate to unsigned int (kernel quirk)") {
  TestMachine m(kPe1400);
  for (const char* attr : {"host_control_action", "host_control_smi_type", "host_control_on_shutdown"}) {
    CAPTURE(attr);
    CHECK(m.write(path(attr), "4294967298") == 10);  // 2^32 + 2
    CHECK(m.read(path(attr)) == "2\n");
  }
}

TEST_CASE("host_control_smi_type and host_control_on_shutdown: no validation, junk is 0") {
  TestMachine m(kPe1400);
  for (const char* attr : {"host_control_smi_type", "host_control_on_shutdown"}) {
    CAPTURE(attr);
    const struct {
      const char* in;
      const char* shown;
    } cases[] = {{"2\n", "2\n"}, {"junk", "0\n"}, {"99", "99\n"}, {"0x3", "0\n"},
                 {"-1", "0\n"},  {"1", "1\n"},    {"18446744073709551616", "0\n"}};
    for (const auto& c : cases) {
      CAPTURE(c.in);
      CHECK(m.write(path(attr), c.in) == static_cast<long>(std::string_view(c.in).size()));
      CHECK(m.read(path(attr)) == c.shown);
    }
  }
  // Neither touches the buffer.
  CHECK(m.read(path("smi_data_buf_size")) == "0\n");
}

TEST_CASE("WSMT: the firmware buffer is there from probe, fixed, and its size is the limit") {
  TestMachine m(kWsmt);
  CHECK(m.read(path("smi_data_buf_phys_addr")) == "6f7d5008\n");  // address + 8 (semaphore)
  CHECK(m.read(path("smi_data_buf_size")) == "16376\n");          // 4 pages - 8
  CHECK(m.write(path("smi_data_buf_size"), "16377") == -EINVAL);
  CHECK(m.write(path("smi_data_buf_size"), "262144") == -EINVAL);
  CHECK(m.write(path("smi_data_buf_size"), "52") == 2);
  CHECK(m.write(path("smi_data"), "x", Caller::root(), 16376) == -EINVAL);
  CHECK(m.write(path("smi_data"), "x", Caller::root(), 16375) == 1);
  CHECK(m.write(path("host_control_action"), "2") == 1);
  CHECK(m.read(path("smi_data_buf_phys_addr")) == "6f7d5008\n");
  CHECK(m.read(path("smi_data_buf_size")) == "16376\n");
  CHECK(m.events_of("dcdbas", "smi_data_buf_realloc").empty());
}

TEST_CASE("WSMT buffer address above 4 GiB is refused like dcdbas_check_wsmt") {
  CHECK_THROWS_WITH_AS(TestMachine("[dcdbas]\nwsmt = true\nwsmt_buffer_address = 0x100000000\n"),
                       doctest::Contains("above 4GB"), vsysfs::core::ConfigError);
  // Just below: the kernel only checks the first 8 bytes (upper_32_bits(paddr + 8)).
  TestMachine ok("[dcdbas]\nwsmt = true\nwsmt_buffer_address = 0xffff0000\nwsmt_buffer_pages = 1\n");
  CHECK(ok.read(path("smi_data_buf_phys_addr")) == "ffff0008\n");
  CHECK_THROWS_AS(TestMachine("[dcdbas]\nmodel = 'PowerEdge 650'\nbogus = 1\n"),
                  vsysfs::core::ConfigError);
}

TEST_CASE("driver_override, power/control and uevent stores") {
  TestMachine m(kPe1400);
  CHECK(m.write(path("driver_override"), "dcdbas\n") == 7);
  CHECK(m.read(path("driver_override")) == "dcdbas\n");
  CHECK(m.write(path("driver_override"), "\n") == 1);
  CHECK(m.read(path("driver_override")) == "(null)\n");
  CHECK(m.write(path("driver_override"), std::string(4095, 'a')) == -EINVAL);
  CHECK(m.read(path("driver_override")) == "(null)\n");
  // The limit is on the count, before strlen(): a NUL then a page is EINVAL
  // and leaves the override alone (driver_set_override).
  CHECK(m.write(path("driver_override"), "dcdbas\n") == 7);
  CHECK(m.write(path("driver_override"), std::string(1, '\0').append(4095, 'a')) == -EINVAL);
  CHECK(m.read(path("driver_override")) == "dcdbas\n");
  CHECK(m.write(path("driver_override"), std::string(1, '\0') + "abc") == 4);  // empty C string clears
  CHECK(m.read(path("driver_override")) == "(null)\n");

  CHECK(m.read(path("power/control")) == "auto\n");
  for (const char* bad : {"junk", "\n", "onn", "auto\n\n"}) {
    CAPTURE(bad);
    CHECK(m.write(path("power/control"), bad) == -EINVAL);
  }
  CHECK(m.read(path("power/control")) == "auto\n");
  CHECK(m.write(path("power/control"), "on\n") == 3);
  CHECK(m.read(path("power/control")) == "on\n");

  // "add UUID junk": after the UUID only KEY=value pairs (the old parser
  // checked the UUID and ignored the rest).
  for (const char* bad : {"\n", "junk", "add x", "Add", "change\n\n",
                          "add 12345678-1234-1234-1234-123456789abc junk"}) {
    CAPTURE(bad);
    CHECK(m.write(path("uevent"), bad) == -EINVAL);
  }
  CHECK(m.write(path("uevent"), "change\n") == 7);
  CHECK(m.write(path("uevent"), "add 12345678-1234-1234-1234-123456789abc\n") == 41);
  CHECK(m.events_of("dcdbas", "uevent").back().result == "OK");
}

TEST_CASE("an SMI to a port/code nobody answers changes nothing but is logged") {
  TestMachine m(kPe1400);
  const std::string cmd = ci_command(0x80, 0x12, 0, 0, {});
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  const std::string before = m.read(path("smi_data"));
  CHECK(m.write(path("smi_request"), "2") == 1);
  CHECK(m.read(path("smi_data")) == before);
  auto smi = m.events_of("dcdbas", "smi");
  REQUIRE(smi.size() == 1);
  CHECK(smi[0].field("answered") == "false");
  CHECK(smi[0].field("edx") == "\"0x80\"");
  CHECK(smi[0].field("eax") == "\"0x12\"");
  CHECK(smi[0].field("request") == "\"raw\"");
}

}  // TEST_SUITE

TEST_SUITE("dcdbas") {

TEST_CASE("libsmbios-style writes with the NUL: \"52\\0\", \"1\\0\" and buffered \"01\\0\"") {
  TestMachine m(kWsmt);
  CHECK(m.write(path("smi_data_buf_size"), std::string("52\0", 3)) == 3);
  const std::string cmd = ci_command(0xb2, 0xda, 7, 0, {});
  REQUIRE(m.write(path("smi_data"), cmd) == static_cast<long>(cmd.size()));
  CHECK(m.write(path("smi_request"), std::string("1\0", 2)) == 2);
  CHECK(m.write(path("smi_request"), std::string("01\0", 3)) == 3);
  CHECK(m.events_of("dcdbas", "smi").size() == 2);
  // NUL in the middle: the parser stops at it.
  CHECK(m.write(path("smi_request"), std::string("2\0" "9", 3)) == 3);
  CHECK(m.events_of("dcdbas", "smi").size() == 3);
  CHECK(m.write(path("host_control_action"), std::string("4\0" "2", 3)) == 3);
  CHECK(m.read(path("host_control_action")) == "4\n");
  CHECK(m.write(path("smi_request"), std::string("\0" "1", 2)) == 2);  // "" -> 0: zeroes
  CHECK(m.events_of("dcdbas", "smi").size() == 3);
  CHECK(m.read(path("smi_data")).substr(0, 52) == std::string(52, '\0'));
}

}  // TEST_SUITE
