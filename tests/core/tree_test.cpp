#include "core/tree.hpp"

#include <doctest/doctest.h>

#include "tests/support/test_env.hpp"

TEST_SUITE("control_plane") {

TEST_CASE("advance_ms fires timers exactly at their deadline, in order") {
  vsysfs::testing::TestMachine m("");
  std::vector<int> fired;
  vsysfs::core::Timer a(m.clock, [&] { fired.push_back(1); });
  vsysfs::core::Timer b(m.clock, [&] { fired.push_back(2); });
  a.schedule_in(std::chrono::milliseconds(1000));
  b.schedule_in(std::chrono::milliseconds(500));
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "499\n") == 4);
  CHECK(fired.empty());
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "1\n") == 2);
  CHECK(fired == std::vector<int>{2});
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "500") == 3);
  CHECK(fired == std::vector<int>{2, 1});
  CHECK(m.read("kernel/debug/vsysfs/clock/now_ns") == "1000000000\n");
}

TEST_CASE("advance_ms bad input is EINVAL/ERANGE and moves nothing") {
  vsysfs::testing::TestMachine m("");
  for (const char* bad : {"", "\n", "junk", "-1", "1.5", " 5", "0x"}) {
    CAPTURE(bad);
    const long r = m.write("kernel/debug/vsysfs/clock/advance_ms", bad);
    if (*bad == '\0') {
      CHECK(r == 0);  // a zero-length write never reaches store()
    } else {
      CHECK(r == -EINVAL);
    }
  }
  CHECK(m.write("kernel/debug/vsysfs/clock/advance_ms", "18446744073709551616") == -ERANGE);
  CHECK(m.read("kernel/debug/vsysfs/clock/now_ns") == "0\n");
}

TEST_CASE("machine/shutdown runs once and records the power state") {
  vsysfs::testing::TestMachine m("");
  CHECK(m.read("kernel/debug/vsysfs/machine/power_state") == "on\n");
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "sleep\n") == -EINVAL);
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "halt\n") == 5);
  CHECK(m.read("kernel/debug/vsysfs/machine/power_state") == "halted\n");
  CHECK(m.write("kernel/debug/vsysfs/machine/shutdown", "reboot\n") == -EBUSY);
  CHECK(m.events_of("machine", "shutdown").size() == 1);
}

TEST_CASE("unknown sections and keys name the line") {
  using vsysfs::core::ConfigError;
  CHECK_THROWS_WITH_AS(vsysfs::testing::TestMachine("[machine]\nname='x'\n[bogus]\na=1\n"),
                       doctest::Contains("<test>:3"), ConfigError);
  CHECK_THROWS_WITH_AS(vsysfs::testing::TestMachine("[machine]\nnmae='x'\n"),
                       doctest::Contains("machine.nmae"), ConfigError);
  CHECK_THROWS_AS(vsysfs::testing::TestMachine("[machine\n"), ConfigError);
}

}  // TEST_SUITE
