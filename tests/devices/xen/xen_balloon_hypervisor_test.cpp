// devices/xen_balloon_hypervisor.cpp: the simulated host, the other
// domains' pacing and the knobs under kernel/debug/vsysfs/xen/.
#include "devices/xen/xen_balloon_hypervisor.hpp"

#include <doctest/doctest.h>

#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

// 16 GiB host; this guest 4 of 8 GiB; Domain-0 4 GiB; db 6 GiB: 2 GiB free.
const char* kThreeDomains = R"([xen]
driver = "workqueue"  # the pace checks count the timers: no idle kthread
host_memory = "16G"
memory = "4G"
max_memory = "8G"

[[xen.domain]]
name = "Domain-0"
domid = 0
memory = "4G"
pace = 1024

[[xen.domain]]
name = "db"
domid = 2
memory = "6G"
max_memory = "8G"
pace = 2048
)";

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("hypervisor knobs: layout, modes and boot values") {
  TestMachine m(kThreeDomains);
  CHECK(m.read(knob("host_total_kb")) == "16777216\n");
  CHECK(m.read(knob("host_free_kb")) == "2097152\n");
  CHECK(m.read(knob("populate_fail")) == "0\n");
  CHECK(m.read(knob("domains")) ==
        "domid name current_kb target_kb max_kb pace\n"
        "1 guest 4194304 - 8388608 -\n"
        "0 Domain-0 4194304 4194304 4194304 1024\n"
        "2 db 6291456 6291456 8388608 2048\n");
  CHECK(m.read(knob("domain/db/domid")) == "2\n");
  CHECK(m.read(knob("domain/db/max_kb")) == "8388608\n");
  CHECK(m.read(knob("domain/db/pace")) == "2048\n");
  CHECK(m.tree.find(knob("host_free_kb"))->mode.load() == 0600);
  CHECK(m.tree.find(knob("domains"))->mode.load() == 0400);
  CHECK(m.tree.find(knob("domain/db/target_kb"))->mode.load() == 0600);
  CHECK(m.tree.find(knob("domain/db/max_kb"))->mode.load() == 0400);
  CHECK(m.open_errno(knob("domains"), O_WRONLY) == -EACCES);
  CHECK(m.clock.pending_timers() == 0);  // everyone at target: no pacing timer
  CHECK(memory_consistent(m));
}

TEST_CASE("host_total_kb and host_free_kb: round trip, bad input, invariant kept") {
  TestMachine m(kThreeDomains);
  CHECK(m.write(knob("host_total_kb"), "15728640\n") == 9);  // 15 GiB
  CHECK(m.read(knob("host_total_kb")) == "15728640\n");
  CHECK(m.read(knob("host_free_kb")) == "1048576\n");
  CHECK(memory_consistent(m));
  // Below what the domains hold: EINVAL, nothing changes.
  CHECK(m.write(knob("host_total_kb"), "14680060\n") == -EINVAL);
  CHECK(m.read(knob("host_total_kb")) == "15728640\n");
  CHECK(m.write(knob("host_free_kb"), "0x0\n") == 4);
  CHECK(m.read(knob("host_free_kb")) == "0\n");
  CHECK(m.read(knob("host_total_kb")) == "14680064\n");
  CHECK(memory_consistent(m));
  for (const char* file : {"host_total_kb", "host_free_kb", "populate_fail"}) {
    const std::string before = m.read(knob(file));
    for (std::string_view bad : {"\n", "junk", "-1", " 1", "1 ", "18446744073709551616"}) {
      CAPTURE(file);
      CAPTURE(bad);
      CHECK(m.write(knob(file), bad) < 0);
      CHECK(m.read(knob(file)) == before);
    }
  }
  CHECK(m.write(knob("host_free_kb"), "18446744073709551612\n") == -ERANGE);
  CHECK(m.write(knob("populate_fail"), "3\n") == 2);
  CHECK(m.read(knob("populate_fail")) == "3\n");
  CHECK(memory_consistent(m));
}

TEST_CASE("other domains balloon at their pace on the Env clock") {
  TestMachine m(kThreeDomains);
  // Domain-0 shrinks by 1 GiB at 1024 pages (4 MiB) per second; db grows
  // by 2 GiB at 2048 pages (8 MiB) per second.
  CHECK(m.write(knob("domain/Domain-0/target_kb"), "3145728\n") == 8);
  CHECK(m.write(knob("domain/db/target_kb"), "8388608\n") == 8);
  CHECK(m.read(knob("domain/db/target_kb")) == "8388608\n");
  m.advance_ms(999);
  CHECK(m.read(knob("domain/Domain-0/current_kb")) == "4194304\n");
  m.advance_ms(1);
  CHECK(m.read(knob("domain/Domain-0/current_kb")) == std::to_string(4194304 - 4096) + "\n");
  CHECK(m.read(knob("domain/db/current_kb")) == std::to_string(6291456 + 8192) + "\n");
  for (int i = 0; i < 400; ++i) {
    m.advance_ms(1000);
    REQUIRE(memory_consistent(m));
  }
  CHECK(m.read(knob("domain/Domain-0/current_kb")) == "3145728\n");
  CHECK(m.read(knob("domain/db/current_kb")) == "8388608\n");
  CHECK(m.read(knob("host_free_kb")) == "1048576\n");
  CHECK(m.clock.pending_timers() == 0);  // both at target: the pacing timer stopped
  const auto ev = m.events_of("xen", "domain_step");
  CHECK(ev.front().field("domain") == "\"Domain-0\"");
  CHECK(ev.front().field("pages") == "1024");
}

TEST_CASE("a growing domain is limited by free host memory and keeps what it gets") {
  TestMachine m(kThreeDomains);
  CHECK(m.write(knob("host_free_kb"), "4096\n") == 5);  // 1024 pages free
  CHECK(m.write(knob("domain/db/target_kb"), "8388608\n") == 8);
  m.advance_ms(1000);
  CHECK(m.read(knob("domain/db/current_kb")) == std::to_string(6291456 + 4096) + "\n");
  CHECK(m.read(knob("host_free_kb")) == "0\n");
  m.advance_ms(10000);  // keeps trying every second, gets nothing
  CHECK(m.read(knob("domain/db/current_kb")) == std::to_string(6291456 + 4096) + "\n");
  CHECK(m.write(knob("host_free_kb"), "8192\n") == 5);
  m.advance_ms(1000);
  CHECK(m.read(knob("domain/db/current_kb")) == std::to_string(6291456 + 12288) + "\n");
  CHECK(memory_consistent(m));
}

TEST_CASE("domain knobs: round trip and bad input change nothing") {
  TestMachine m(kThreeDomains);
  const std::string target = knob("domain/db/target_kb");
  const std::string current = knob("domain/db/current_kb");
  const std::string pace = knob("domain/db/pace");
  CHECK(m.write(current, "7340032\n") == 8);  // +1 GiB of the 2 GiB free, at once
  CHECK(m.read(current) == "7340032\n");
  CHECK(m.read(knob("host_free_kb")) == "1048576\n");
  CHECK(m.write(current, "8388608\n") == 8);
  CHECK(m.write(current, "6291456\n") == 8);
  CHECK(m.write(pace, "0x100\n") == 6);
  CHECK(m.read(pace) == "256\n");
  CHECK(m.write(target, "6291456\n") == 8);
  // Above max_kb: EINVAL. More than the host has free: ENOSPC.
  CHECK(m.write(target, "8388612\n") == -EINVAL);
  CHECK(m.write(current, "8388612\n") == -EINVAL);
  CHECK(m.write(knob("host_free_kb"), "4\n") == 2);
  CHECK(m.write(current, "6291464\n") == -ENOSPC);
  CHECK(m.write(pace, "0\n") == -EINVAL);
  for (const std::string& file : {target, current, pace}) {
    for (std::string_view bad : {"\n", "junk", "-4", "4k", "18446744073709551616"}) {
      CAPTURE(file);
      CAPTURE(bad);
      CHECK(m.write(file, bad) < 0);
    }
  }
  CHECK(m.read(target) == "6291456\n");
  CHECK(m.read(current) == "6291456\n");
  CHECK(m.read(pace) == "256\n");
  CHECK(memory_consistent(m));
}

TEST_CASE("machine errors: domains that do not fit, repeated names or domids") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_AS(TestMachine("[xen]\nhost_memory = \"8G\"\n[[xen.domain]]\nname = \"a\"\n"
                              "domid = 2\nmemory = \"6G\"\n"),
                  ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\n[[xen.domain]]\nname = \"a\"\ndomid = 2\nmemory = \"1G\"\n"
                              "[[xen.domain]]\nname = \"a\"\ndomid = 3\nmemory = \"1G\"\n"),
                  ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\n[[xen.domain]]\nname = \"a\"\ndomid = 2\nmemory = \"1G\"\n"
                              "[[xen.domain]]\nname = \"b\"\ndomid = 2\nmemory = \"1G\"\n"),
                  ConfigError);
  CHECK_THROWS_AS(TestMachine("[xen]\n[[xen.domain]]\nname = \"a\"\ndomid = 2\nmemory = \"2G\"\n"
                              "max_memory = \"1G\"\n"),
                  ConfigError);
}

}  // TEST_SUITE
