// Machine-file names that become path components or file content
// (docs/trust-files.md "Names"): interface names follow net/core/dev.c
// dev_valid_name exactly; Xen domain and PCI driver names are single path
// components; the machine and dcdbas names one printable line. And the
// control plane's pid file, which the mount scripts use to find the daemon.
#include <unistd.h>

#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/config.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::ConfigError;
using vsysfs::testing::TestMachine;

namespace {

std::string iface(const std::string& toml_name) {
  return fmt::format("[net]\n[[net.interface]]\nname = \"{}\"\nkind = \"loopback\"\n", toml_name);
}

// The error text of building `toml`, or "" when it builds.
std::string error_of(const std::string& toml) {
  try {
    TestMachine m(toml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("machine_names") {
  TEST_CASE("interface names: dev_valid_name's rules, byte for byte") {
    // Accepted by the kernel, so by us: up to 15 bytes, control bytes too.
    for (const char* ok : {"lo", "e", "012345678901234", "eth0.100", "e\\u0001", "a-b_c@d", "..."}) {
      CAPTURE(ok);
      CHECK(error_of(iface(ok)) == "");
    }
    CHECK(error_of(iface("e\\n\\u0001")) ==
          "<test>:3:8: net.interface[0].name: not a valid interface name: byte 0x0a (no '/', "
          "':', NUL or white space)");
    CHECK(error_of(iface("0123456789012345")) ==
          "<test>:3:8: net.interface[0].name: not a valid interface name: 16 bytes (at most 15)");
    CHECK(error_of(iface("")) == "<test>:3:8: net.interface[0].name: not a valid interface name: empty");
    for (const char* bad : {".", ".."})
      CHECK(error_of(iface(bad)) ==
            "<test>:3:8: net.interface[0].name: not a valid interface name: \".\" and \"..\" are refused");
    // '/', ':', and lib/ctype.c's isspace: \t \n \v \f \r ' ' and 0xa0.
    for (const char* bad : {"a/b", "a:b", "a b", "a\\tb", "a\\u000bb", "a\\fb", "a\\rb", "a\\u00a0"}) {
      CAPTURE(bad);
      CHECK(error_of(iface(bad)).find("not a valid interface name: byte 0x") != std::string::npos);
    }
    CHECK(error_of(iface("eth%d")).find("'%' templates are not supported") != std::string::npos);
    CHECK(error_of(iface("e\\u0000x")) == "<test>:3:8: net.interface[0].name: a NUL byte in a string");
  }

  TEST_CASE("an accepted control byte is the directory's name, as in the kernel") {
    TestMachine m(iface("e\\u0001"));
    CHECK(m.exists("class/net/e\x01"));
  }

  TEST_CASE("PCI slots and driver names become path components") {
    const auto nic = [](const std::string& extra) {
      return "[net]\n[[net.interface]]\nname = \"eth0\"\n" + extra;
    };
    CHECK(error_of(nic("pci = \"0000:00:1f.7\"\n")) == "");
    for (const char* bad : {"0000:00:/x.0", "0000:00:20.0", "0000:00:03.8", "0000:00:0A.0", "0000:00:03/0"}) {
      CAPTURE(bad);
      CHECK(error_of(nic(fmt::format("pci = \"{}\"\n", bad))).find("net.interface[0].pci: expected a function") !=
            std::string::npos);
    }
    CHECK(error_of(nic("pci = \"0000:00:03.0\"\ndriver = \"e1000\"\n")) == "");
    for (const char* bad : {"a/b", "..", "", "a b", "a\\nb"}) {
      CAPTURE(bad);
      CHECK(error_of(nic(fmt::format("pci = \"0000:00:03.0\"\ndriver = \"{}\"\n", bad)))
                .find("<test>:5:10: net.interface[0].driver: not a valid name") != std::string::npos);
    }
  }

  TEST_CASE("Xen domain and guest names: one path component, one field of a line") {
    const auto dom = [](const std::string& name) {
      return fmt::format("[xen]\n[[xen.domain]]\nname = \"{}\"\ndomid = 2\nmemory = \"1G\"\n", name);
    };
    CHECK(error_of(dom("Domain-0")) == "");
    CHECK(error_of(dom("a b")) ==
          "<test>:3:8: xen.domain[0].name: not a valid name: byte 0x20 (no '/', space or control byte)");
    for (const char* bad : {"a/b", ".", "..", "", "a\\nb", "a\\u007f"}) {
      CAPTURE(bad);
      CHECK(error_of(dom(bad)).find("xen.domain[0].name: not a valid name") != std::string::npos);
    }
    CHECK(error_of("[xen]\nname = \"g\\nx\"\n").find("<test>:2:8: xen.name: not a valid name") !=
          std::string::npos);
  }

  TEST_CASE("the machine name and dcdbas names are one printable line") {
    CHECK(error_of("[machine]\nname = \"my lab\"\n") == "");
    CHECK(error_of("[machine]\nname = \"m\\ny\"\n") ==
          "<test>:2:8: machine.name: control byte 0x0a (one printable line expected)");
    CHECK(error_of(fmt::format("[machine]\nname = \"{}\"\n", std::string(256, 'x'))) ==
          "<test>:2:8: machine.name: too long: 256 bytes (at most 255)");
    CHECK(error_of("[dcdbas]\n[[dcdbas.setting]]\nlocation = 1\nname = \"a\\rb\"\n")
              .find("<test>:4:8: dcdbas.setting[0].name: control byte 0x0d") != std::string::npos);
  }

  TEST_CASE("kernel/debug/vsysfs/pid is the serving process's pid, root-only") {
    TestMachine m("");
    CHECK(m.read("kernel/debug/vsysfs/pid") == fmt::format("{}\n", getpid()));
    // Mode 0400 (the kernel enforces it: default_permissions).
    const auto node = m.tree.get(m.tree.resolve("kernel/debug/vsysfs/pid"));
    REQUIRE(node);
    CHECK((node->mode.load() & 07777) == 0400);
  }
}
