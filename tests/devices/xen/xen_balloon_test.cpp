// devices/xen_balloon.cpp, xen_balloon_bus.cpp: the xen_memory0 files, their
// modes, formats and write rules (docs/kernel-semantics.md sections 3.1 to 3.3, 1.4).
#include "devices/xen/xen_balloon.hpp"

#include <doctest/doctest.h>

#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

constexpr std::uint64_t kCapSysAdmin = std::uint64_t{1} << 21;

mode_t mode_of(TestMachine& m, std::string_view path) {
  auto node = m.tree.find(path);
  REQUIRE_MESSAGE(node, path);
  return node->mode.load();
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("xen_memory0 has the modern files with the kernel's modes") {
  TestMachine m(small_machine());
  CHECK(mode_of(m, dev("target_kb")) == 0644);
  CHECK(mode_of(m, dev("target")) == 0644);
  CHECK(mode_of(m, dev("schedule_delay")) == 0444);
  CHECK(mode_of(m, dev("max_schedule_delay")) == 0644);
  CHECK(mode_of(m, dev("retry_count")) == 0444);
  CHECK(mode_of(m, dev("max_retry_count")) == 0644);
  CHECK(mode_of(m, dev("uevent")) == 0644);
  CHECK(mode_of(m, dev("info/current_kb")) == 0444);
  CHECK(mode_of(m, dev("info/low_kb")) == 0444);
  CHECK(mode_of(m, dev("info/high_kb")) == 0444);
  // Gone since the 2009 patch / removed upstream.
  CHECK_FALSE(m.exists(dev("info/hard_limit_kb")));
  CHECK_FALSE(m.exists(dev("info/driver_kb")));
  for (const char* ro : {"schedule_delay", "retry_count", "info/current_kb", "info/low_kb",
                         "info/high_kb"})
    CHECK(m.open_errno(dev(ro), O_WRONLY) == -EACCES);
}

TEST_CASE("subsystem surroundings: bus/xen_memory, links, drivers, uevent") {
  TestMachine m(small_machine());
  CHECK(m.link_target(dev("subsystem")) == "../../../../bus/xen_memory");
  CHECK(m.link_target("bus/xen_memory/devices/xen_memory0") ==
        "../../../devices/system/xen_memory/xen_memory0");
  CHECK(m.tree.find("bus/xen_memory/drivers")->is_dir());
  CHECK(mode_of(m, "bus/xen_memory/drivers_autoprobe") == 0644);
  CHECK(mode_of(m, "bus/xen_memory/drivers_probe") == 0200);
  CHECK(mode_of(m, "bus/xen_memory/uevent") == 0200);
  CHECK(m.read("bus/xen_memory/drivers_autoprobe") == "1\n");
  CHECK(m.write("bus/xen_memory/drivers_autoprobe", "0\n") == 2);
  CHECK(m.read("bus/xen_memory/drivers_autoprobe") == "0\n");
  CHECK(m.write("bus/xen_memory/drivers_autoprobe", "yes") == 3);  // anything but '0' is 1
  CHECK(m.read("bus/xen_memory/drivers_autoprobe") == "1\n");
  CHECK(m.write("bus/xen_memory/drivers_probe", "xen_memory0\n") == 12);
  CHECK(m.write("bus/xen_memory/drivers_probe", "xen_memory1\n") == -ENODEV);
  CHECK(m.write("bus/xen_memory/uevent", "change\n") == 7);
  CHECK(m.write("bus/xen_memory/uevent", "chang\n") == -EINVAL);
}

TEST_CASE("uevent is empty and takes kobject_synth_uevent input") {
  TestMachine m(small_machine());
  CHECK(m.read(dev("uevent")) == "");
  CHECK(m.write(dev("uevent"), "change\n") == 7);
  CHECK(m.write(dev("uevent"), "add") == 3);
  CHECK(m.write(dev("uevent"), "add 12345678-1234-1234-1234-123456789abc\n") == 41);
  CHECK(m.write(dev("uevent"), "add 12345678-1234-1234-1234-123456789abc A=b c=D1\n") == 50);
  for (const char* bad : {"\n", "junk\n", "add2", "add notauuid", "add 12345678-1234-1234-1234-123456789abc A",
                          "add 12345678-1234-1234-1234-123456789abc A=", "add 12345678-1234-1234-1234-123456789abc =b",
                          "add 12345678-1234-1234-1234-123456789abc A=b!", "ad\0d"}) {
    CAPTURE(bad);
    CHECK(m.write(dev("uevent"), bad) == -EINVAL);
  }
  CHECK(m.write(dev("uevent"), std::string_view("ad\0d", 4)) == -EINVAL);
  const auto ok = m.events_of("xen_memory0", "uevent");
  REQUIRE(ok.size() >= 4);
  CHECK(ok[0].result == "OK");
  CHECK(ok[0].field("action") == "\"change\"");
}

TEST_CASE("boot values: target = memory, back-off defaults, info in KiB") {
  TestMachine m(small_machine());
  CHECK(m.read(dev("target_kb")) == "262144\n");
  CHECK(m.read(dev("target")) == "268435456\n");
  CHECK(m.read(dev("schedule_delay")) == "1\n");
  CHECK(m.read(dev("retry_count")) == "1\n");
  CHECK(m.read(dev("max_retry_count")) == "0\n");
  CHECK(m.read(dev("info/current_kb")) == "262144\n");
  CHECK(m.read(dev("info/low_kb")) == "262144\n");  // 512 MiB max - 256 MiB populated
  CHECK(m.read(dev("info/high_kb")) == "0\n");      // x86-64: no highmem
  CHECK(memory_consistent(m));
}

TEST_CASE("max_schedule_delay prints in hex: 32 reads back as 20 (kernel quirk)") {
  TestMachine m(small_machine());
  CHECK(m.read(dev("max_schedule_delay")) == "20\n");
  CHECK(m.write(dev("max_schedule_delay"), "64\n") == 3);
  CHECK(m.read(dev("max_schedule_delay")) == "40\n");
  CHECK(m.write(dev("max_retry_count"), "16\n") == 3);
  CHECK(m.read(dev("max_retry_count")) == "10\n");
}

TEST_CASE("max_schedule_delay and max_retry_count: round trip (kstrtoul base 0)") {
  for (const char* file : {"max_schedule_delay", "max_retry_count"}) {
    CAPTURE(file);
    TestMachine m(small_machine());
    struct Case {
      std::string_view in;
      const char* shown;
    };
    for (const Case& c : {Case{"5", "5\n"}, Case{"5\n", "5\n"}, Case{"+7\n", "7\n"},
                          Case{"0x1f\n", "1f\n"}, Case{"010\n", "8\n"}, Case{"0\n", "0\n"},
                          Case{"18446744073709551615\n", "ffffffffffffffff\n"},
                          // The kernel parses the NUL-terminated buffer: "3\0junk" is "3".
                          Case{std::string_view("3\0junk", 6), "3\n"}}) {
      CAPTURE(c.in);
      CHECK(m.write(dev(file), c.in) == static_cast<long>(c.in.size()));
      CHECK(m.read(dev(file)) == c.shown);
    }
  }
}

TEST_CASE("max_schedule_delay and max_retry_count: bad input is EINVAL/ERANGE and changes nothing") {
  for (const char* file : {"max_schedule_delay", "max_retry_count"}) {
    CAPTURE(file);
    TestMachine m(small_machine());
    REQUIRE(m.write(dev(file), "9\n") == 2);
    struct Case {
      std::string_view in;
      int err;
    };
    for (const Case& c : {Case{"\n", EINVAL}, Case{"junk", EINVAL}, Case{"-1", EINVAL},
                          Case{" 5", EINVAL}, Case{"5 ", EINVAL}, Case{"5\n\n", EINVAL},
                          Case{"0x", EINVAL}, Case{"1.5", EINVAL}, Case{"12abc", EINVAL},
                          Case{"08", EINVAL}, Case{std::string_view("\0" "5", 2), EINVAL},
                          Case{"18446744073709551616", ERANGE},
                          Case{"0x10000000000000000", ERANGE}}) {
      CAPTURE(c.in);
      CHECK(m.write(dev(file), c.in) == -c.err);
      CHECK(m.read(dev(file)) == "9\n");
    }
    CHECK(m.write(dev(file), "") == 0);  // zero-length writes never reach store()
    CHECK(m.read(dev(file)) == "9\n");
  }
}

TEST_CASE("the back-off files need no CAP_SYS_ADMIN (device_store_ulong checks nothing)") {
  TestMachine m(small_machine());
  const Caller root_no_caps = Caller::with_caps(0, 0);
  CHECK(m.write(dev("max_retry_count"), "4\n", root_no_caps) == 2);
  CHECK(m.read(dev("max_retry_count")) == "4\n");
  CHECK(m.write(dev("max_schedule_delay"), "8\n", root_no_caps) == 2);
  CHECK(m.read(dev("max_schedule_delay")) == "8\n");
}

TEST_CASE("target_kb: round trip in KiB, base 0, rounded down to pages") {
  TestMachine m(small_machine());
  struct Case {
    std::string_view in;
    const char* kb;
    const char* bytes;
  };
  for (const Case& c : {Case{"393216\n", "393216\n", "402653184\n"},
                        Case{"393216", "393216\n", "402653184\n"},
                        Case{"0x60000\n", "393216\n", "402653184\n"},
                        Case{"01400000\n", "393216\n", "402653184\n"},
                        Case{"5\n", "4\n", "4096\n"},  // 5 KiB is one page
                        Case{"3\n", "0\n", "0\n"},
                        Case{"131072 trailing junk\n", "131072\n", "134217728\n"}}) {
    CAPTURE(c.in);
    CHECK(m.write(dev("target_kb"), c.in) == static_cast<long>(c.in.size()));
    CHECK(m.read(dev("target_kb")) == c.kb);
    CHECK(m.read(dev("target")) == c.bytes);
  }
  const auto ev = m.events_of("xen_balloon", "target");
  REQUIRE(ev.size() == 7);
  CHECK(ev[0].field("via") == "\"target_kb\"");
  CHECK(ev[0].field("target_kb") == "393216");
}

TEST_CASE("target_kb: junk, a sign or an overflow sets a zero target (kernel quirk)") {
  // simple_strtoull never fails and the upstream store checks nothing, so
  // every one of these returns the full count and asks for 0 pages.
  for (std::string_view in : {std::string_view("\n"), std::string_view("junk"),
                              std::string_view("-1\n"), std::string_view(" 5\n"),
                              std::string_view("+5\n"), std::string_view("\0" "5", 2),
                              // 2^64 wraps to 0 in simple_strtoull; 2^54 * 1024 wraps too.
                              std::string_view("18446744073709551616\n"),
                              std::string_view("18014398509481984\n")}) {
    CAPTURE(in);
    TestMachine m(small_machine());
    CHECK(m.write(dev("target_kb"), in) == static_cast<long>(in.size()));
    CHECK(m.read(dev("target_kb")) == "0\n");
    CHECK(m.read(dev("target")) == "0\n");
  }
}

TEST_CASE("target: memparse bytes with a suffix; junk is a zero target (kernel quirk)") {
  TestMachine m(small_machine());
  struct Case {
    std::string_view in;
    const char* bytes;
    const char* kb;
  };
  for (const Case& c : {Case{"384M\n", "402653184\n", "393216\n"},
                        Case{"402653184\n", "402653184\n", "393216\n"},
                        Case{"393216K", "402653184\n", "393216\n"},
                        Case{"1g\n", "1073741824\n", "1048576\n"},
                        Case{"4097\n", "4096\n", "4\n"},  // rounded down to a page
                        Case{"0x1000\n", "4096\n", "4\n"},
                        Case{"junk\n", "0\n", "0\n"},
                        Case{"\n", "0\n", "0\n"},
                        Case{"-4096\n", "0\n", "0\n"}}) {
    CAPTURE(c.in);
    CHECK(m.write(dev("target"), c.in) == static_cast<long>(c.in.size()));
    CHECK(m.read(dev("target")) == c.bytes);
    CHECK(m.read(dev("target_kb")) == c.kb);
  }
}

TEST_CASE("target and target_kb need CAP_SYS_ADMIN: EPERM and no change") {
  TestMachine m(small_machine());
  const Caller root_no_caps = Caller::with_caps(0, 0);
  const Caller admin = Caller::with_caps(0, kCapSysAdmin);
  CHECK(m.write(dev("target_kb"), "393216\n", root_no_caps) == -EPERM);
  CHECK(m.write(dev("target"), "384M\n", root_no_caps) == -EPERM);
  CHECK(m.read(dev("target_kb")) == "262144\n");
  CHECK(m.clock.pending_timers() == 0);  // the worker was not woken either
  const auto refused = m.events_of("xen_balloon", "target");
  REQUIRE(refused.size() == 2);  // the attempts are logged with their errno
  CHECK(refused[0].result == "EPERM");
  CHECK(refused[1].field("via") == "\"target\"");
  CHECK(m.write(dev("target_kb"), "393216\n", admin) == 7);
  CHECK(m.read(dev("target_kb")) == "393216\n");
}

TEST_CASE("a target store wakes the balloon worker; reads do not change anything") {
  TestMachine m(small_machine());
  CHECK(m.clock.pending_timers() == 0);
  CHECK(m.write(dev("target_kb"), "262148\n") == 7);  // one more page
  CHECK(m.events_of("xen_balloon", "step").empty());  // queued, runs on the clock
  m.advance_ms(0);
  const auto steps = m.events_of("xen_balloon", "step");
  // One run: the page, then a pass with no credit left.
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].field("requested") == "1");
  CHECK(steps[0].field("granted") == "1");
  CHECK(steps[0].field("passes") == "2");
  CHECK(m.read(dev("info/current_kb")) == "262148\n");
  CHECK(m.read(dev("info/low_kb")) == "262140\n");
  CHECK(memory_consistent(m));
}

TEST_CASE("guest knobs: used_kb round trip and bad input; free_kb, max_kb, state") {
  TestMachine m(small_machine());
  const std::string used = knob("guest/used_kb");
  CHECK(m.read(used) == "65536\n");
  CHECK(m.read(knob("guest/free_kb")) == "196608\n");
  CHECK(m.read(knob("guest/max_kb")) == "524288\n");
  CHECK(m.read(knob("guest/state")) == "DONE\n");
  CHECK(m.write(used, "131072\n") == 7);
  CHECK(m.read(used) == "131072\n");
  CHECK(m.read(knob("guest/free_kb")) == "131072\n");
  for (std::string_view bad : {"\n", "junk", "-1", "1 ", "18446744073709551616"}) {
    CAPTURE(bad);
    CHECK(m.write(used, bad) < 0);
    CHECK(m.read(used) == "131072\n");
  }
  CHECK(m.write(used, "262148\n") == -ENOMEM);  // more than the guest has
  CHECK(m.read(used) == "131072\n");
  CHECK(m.open_errno(knob("guest/free_kb"), O_WRONLY) == -EACCES);
}

TEST_CASE("machine file errors name the key") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_AS(TestMachine("[xen]\nhost_memory = \"1G\"\nmemory = \"2G\"\n"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\nmemory = \"4G\"\nmax_memory = \"2G\"\n"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\nmemory = \"4096\"\n"), ConfigError);  // string needs a suffix
  CHECK_THROWS_AS(TestMachine("[xen]\nmemory = 4098\n"), ConfigError);      // not whole pages
  CHECK_THROWS_AS(TestMachine("[xen]\nused = \"8G\"\n"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\nbogus = 1\n"), ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\n[[xen.domain]]\nname = \"a\"\ndomid = 1\nmemory = \"1G\"\n"),
                  ConfigError);  // domid 1 is this guest
  CHECK_THROWS_AS(TestMachine("[xen]\n[[xen.domain]]\nname = \"a\"\ndomid = 2\nmemory = \"1G\"\npace = 0\n"),
                  ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\n[[xen.domain]]\ndomid = 2\nmemory = \"1G\"\n"), ConfigError);
  CHECK_NOTHROW(TestMachine("[xen]\nmemory = 1048576\n"));  // an integer is KiB
}

}  // TEST_SUITE
