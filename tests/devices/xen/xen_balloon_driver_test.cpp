// devices/xen/xen_balloon_worker.cpp: the two balloon drivers side by side
// (docs/kernel-semantics.md section 3.7): the 5.15+ kthread (balloon_thread,
// balloon_thread_cond, balloon_state) and the 2.6.39-5.14 workqueue
// (balloon_process on a delayed work item), on the same machine and the
// same writes, with the manual clock. Also scrub_pages, the max_retry_count
// default, balloon_boot_timeout, and the 2009 cadence through settings.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

using vsysfs::core::Event;

std::vector<Event> steps(TestMachine& m) { return m.events_of("xen_balloon", "step"); }

double secs(const Event& e) { return std::chrono::duration<double>(e.time).count(); }

mode_t mode_of(TestMachine& m, std::string_view path) {
  auto node = m.tree.find(path);
  REQUIRE_MESSAGE(node, path);
  return node->mode.load();
}

// The small machine (256 of 512 MiB, 64 MiB used) on a 1 GiB host that
// another domain fills: no free host memory, so growth fails (EAGAIN).
std::string full_host(std::string_view driver, std::string_view extra_xen = "") {
  return small_machine_with(driver, extra_xen,
                            "[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"768M\"\n");
}

constexpr const char* kDrivers[] = {"kthread", "workqueue"};

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("a new target during a back-off: the kthread acts at once, the workqueue at the retry") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(full_host(driver));
    REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
    m.advance_ms(0);
    REQUIRE(steps(m).size() == 1);
    CHECK(steps(m)[0].result == "EAGAIN");  // next try at t=2
    m.advance_ms(500);
    // Shrink to 128 MiB: the guest has 192 MiB free, so this cannot fail.
    REQUIRE(m.write(dev("target_kb"), "131072\n") == 7);
    m.advance_ms(0);
    if (std::string(driver) == "kthread") {
      // wake_up(&balloon_thread_wq): the credit changed, so
      // balloon_thread_cond holds and the thread runs now.
      CHECK(current_kb(m) == 131072);
      const auto s = steps(m);
      REQUIRE(s.size() >= 2);
      CHECK(secs(s[1]) == 0.5);
      CHECK(s[1].field("direction") == "\"decrease\"");
    } else {
      // schedule_delayed_work() on the pending item is a no-op.
      CHECK(current_kb(m) == 262144);
      CHECK(steps(m).size() == 1);
      m.advance_ms(1499);
      CHECK(current_kb(m) == 262144);
      m.advance_ms(1);
      CHECK(current_kb(m) == 131072);
      CHECK(secs(steps(m)[1]) == 2);
    }
    CHECK(m.read(knob("guest/state")) == "DONE\n");
    CHECK(memory_consistent(m));
  }
}

TEST_CASE("after ECANCELED the kthread retries after an hour; the workqueue never does") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(full_host(driver));  // max_retry_count: the default 4
    REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
    m.advance_ms(0);
    // Tries at t=0, 2, 6 back off; the fourth failure at t=14 makes
    // retry_count 5 > 4: ECANCELED, with the back-off reset.
    m.advance_ms(14000);
    const auto s = steps(m);
    REQUIRE(s.size() == 4);
    CHECK(secs(s[3]) == 14);
    CHECK(s[3].result == "ECANCELED");
    CHECK(m.read(knob("guest/state")) == "ECANCELED\n");
    CHECK(m.read(dev("retry_count")) == "1\n");
    CHECK(m.read(dev("schedule_delay")) == "1\n");
    // The host frees memory; nobody writes a target.
    REQUIRE(m.write(knob("host_free_kb"), "1048576\n") == 8);
    m.advance_ms(3599 * 1000);
    CHECK(current_kb(m) == 262144);
    m.advance_ms(1000);  // t = 14 + 3600
    if (std::string(driver) == "kthread") {
      CHECK(current_kb(m) == 524288);
      CHECK(secs(steps(m)[4]) == 3614);
      CHECK(m.read(knob("guest/state")) == "DONE\n");
    } else {
      m.advance_ms(24 * 3600 * 1000);
      CHECK(current_kb(m) == 262144);
      CHECK(steps(m).size() == 4);
    }
    CHECK(memory_consistent(m));
  }
}

TEST_CASE("rewriting the same target after ECANCELED: only the workqueue restarts") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(full_host(driver, "max_retry_count = 1\n"));
    REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
    m.advance_ms(0);
    REQUIRE(m.read(knob("guest/state")) == "ECANCELED\n");  // retry_count 2 > 1 at once
    REQUIRE(m.write(knob("host_free_kb"), "1048576\n") == 8);
    REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
    m.advance_ms(0);
    if (std::string(driver) == "kthread") {
      // balloon_thread_cond: the credit is the one the thread slept with.
      m.advance_ms(60 * 1000);
      CHECK(current_kb(m) == 262144);
      CHECK(m.read(knob("guest/state")) == "ECANCELED\n");
      // A different target changes the credit and wakes it.
      REQUIRE(m.write(dev("target_kb"), "524284\n") == 7);
      m.advance_ms(0);
      CHECK(current_kb(m) == 524284);
    } else {
      CHECK(current_kb(m) == 524288);
    }
    CHECK(m.read(knob("guest/state")) == "DONE\n");
    CHECK(memory_consistent(m));
  }
}

TEST_CASE("a target above the static maximum: the kthread clamps target_pages, the workqueue the credit") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(small_machine_with(driver));
    REQUIRE(m.write(dev("target_kb"), "1048576\n") == 8);  // 1 GiB of a 512 MiB maximum
    m.advance_ms(0);
    CHECK(current_kb(m) == 524288);
    CHECK(m.read(dev("info/low_kb")) == "0\n");
    if (std::string(driver) == "kthread") {
      // reserve_additional_memory() without memory hotplug.
      CHECK(m.read(dev("target_kb")) == "524288\n");
      CHECK(m.read(dev("target")) == std::to_string(524288ULL * 1024) + "\n");
      CHECK(m.read(knob("guest/state")) == "ECANCELED\n");
      CHECK(steps(m).back().field("direction") == "\"clamp\"");
    } else {
      // current_credit() = min(target, current + ballooned) - current.
      CHECK(m.read(dev("target_kb")) == "1048576\n");
      CHECK(m.read(knob("guest/state")) == "DONE\n");
    }
    CHECK(memory_consistent(m));
  }
}

TEST_CASE("max_retry_count defaults to 4 on both drivers; the machine file can set 0") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(small_machine_with(driver));
    CHECK(m.read(dev("max_retry_count")) == "4\n");
    TestMachine unlimited(small_machine_with(driver, "max_retry_count = 0\n"));
    CHECK(unlimited.read(dev("max_retry_count")) == "0\n");
  }
}

TEST_CASE("scrub_pages: 0644 bool, kstrtobool, EINVAL changes nothing; decrease says it scrubbed") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(small_machine_with(driver));
    CHECK(mode_of(m, dev("scrub_pages")) == 0644);
    CHECK(m.read(dev("scrub_pages")) == "1\n");
    REQUIRE(m.write(dev("target_kb"), "258048\n") == 7);  // give back 1024 pages
    m.advance_ms(0);
    // One run (one event) for both frame_lists: every page was scrubbed.
    CHECK(steps(m).front().field("scrubbed") == "1024");
    CHECK(m.write(dev("scrub_pages"), "0\n") == 2);
    CHECK(m.read(dev("scrub_pages")) == "0\n");
    CHECK(m.write(dev("scrub_pages"), "junk\n") == -EINVAL);
    CHECK(m.write(dev("scrub_pages"), "\n") == -EINVAL);
    CHECK(m.read(dev("scrub_pages")) == "0\n");
    CHECK(m.write(dev("scrub_pages"), "on\n") == 3);
    CHECK(m.read(dev("scrub_pages")) == "1\n");
    CHECK(m.write(dev("scrub_pages"), "N") == 1);
    CHECK(m.read(dev("scrub_pages")) == "0\n");
    const std::size_t before = steps(m).size();
    REQUIRE(m.write(dev("target_kb"), "253952\n") == 7);
    m.advance_ms(0);
    CHECK(steps(m)[before].field("direction") == "\"decrease\"");
    CHECK(steps(m)[before].field("scrubbed") == "");
    TestMachine off(small_machine_with(driver, "scrub_pages = false\n"));
    CHECK(off.read(dev("scrub_pages")) == "0\n");
  }
}

TEST_CASE("balloon_boot_timeout: a 0444 module parameter of the kthread driver only") {
  TestMachine m(small_machine_with("kthread"));
  const std::string p = "module/xen/parameters/balloon_boot_timeout";
  CHECK(mode_of(m, p) == 0444);
  CHECK(m.read(p) == "180\n");
  CHECK(!m.exists(dev("boot_timeout")));
  TestMachine set(small_machine_with("kthread", "balloon_boot_timeout = 600\n"));
  CHECK(set.read(p) == "600\n");
  TestMachine wq(small_machine_with("workqueue"));
  CHECK(!wq.exists(p));
  CHECK_THROWS(TestMachine(small_machine_with("kthread", "balloon_boot_timeout = 4294967296\n")));
  CHECK_THROWS(TestMachine(small_machine_with("tasklet")));
}

TEST_CASE("the 2009 cadence: max_schedule_delay = 1, max_retry_count = 0 retry every second, forever") {
  for (const char* driver : kDrivers) {
    CAPTURE(driver);
    TestMachine m(full_host(driver, "max_schedule_delay = 1\nmax_retry_count = 0\n"));
    REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
    m.advance_ms(0);
    m.advance_ms(600 * 1000);
    const auto s = steps(m);
    REQUIRE(s.size() == 601);
    for (std::size_t i = 0; i < s.size(); ++i) {
      CAPTURE(i);
      CHECK(secs(s[i]) == static_cast<double>(i));
      CHECK(s[i].result == "EAGAIN");
      CHECK(s[i].field("schedule_delay") == "1");
    }
    CHECK(m.read(dev("schedule_delay")) == "1\n");
    // Memory appears at t=600.5; the next second's retry takes it.
    m.advance_ms(500);
    REQUIRE(m.write(knob("host_free_kb"), "1048576\n") == 8);
    m.advance_ms(499);
    CHECK(current_kb(m) == 262144);
    m.advance_ms(1);
    CHECK(current_kb(m) == 524288);
    CHECK(memory_consistent(m));
  }
}

TEST_CASE("kthread: idle it sleeps an hour at a time and changes nothing") {
  TestMachine m(small_machine_with("kthread"));
  m.advance_ms(3 * 3600 * 1000);
  const auto s = steps(m);
  REQUIRE(s.size() == 3);
  for (const auto& e : s) {
    CHECK(e.field("direction") == "\"none\"");
    CHECK(e.result == "DONE");
    CHECK(e.field("next_delay_s") == "3600");
  }
  CHECK(current_kb(m) == 262144);
  CHECK(memory_consistent(m));
}

TEST_CASE("kthread: ballooning down is limited to si_mem_available(), then backs off") {
  // 256 MiB populated, 250 MiB used: 1536 pages free, of which the
  // reserve (the high watermark of a 256 MiB zone: 768 pages) stays.
  TestMachine m(small_machine_with("kthread", "").replace(
      small_machine_with("kthread").find("used = \"64M\""), 13, "used = \"250M\"\n"));
  REQUIRE(m.read(knob("guest/free_kb")) == "6144\n");
  REQUIRE(m.write(dev("target_kb"), "131072\n") == 7);
  m.advance_ms(0);
  auto s = steps(m);
  // One run of two passes: n = 768 takes one frame_list (512), then n =
  // 256 (all that is available), short of the credit and below
  // totalreserve_pages: BP_EAGAIN although every page was allocated.
  REQUIRE(s.size() == 1);
  CHECK(s[0].field("passes") == "2");
  CHECK(s[0].field("requested") == "768");
  CHECK(s[0].field("granted") == "768");
  CHECK(s[0].result == "EAGAIN");
  CHECK(current_kb(m) == 262144 - 768 * 4);
  m.advance_ms(2000);
  s = steps(m);
  REQUIRE(s.size() == 2);
  CHECK(s[1].field("granted") == "0");  // nothing available: n == 0
  CHECK(s[1].result == "EAGAIN");
  CHECK(s[1].field("schedule_delay") == "4");
  CHECK(current_kb(m) == 262144 - 768 * 4);
  CHECK(m.read(knob("guest/free_kb")) == "3072\n");
  CHECK(memory_consistent(m));
}

}  // TEST_SUITE

TEST_SUITE("xen_balloon") {

TEST_CASE("guest/driver and guest/reserve_kb knobs") {
  TestMachine k(small_machine_with("kthread"));
  CHECK(mode_of(k, knob("guest/driver")) == 0400);
  CHECK(k.read(knob("guest/driver")) == "kthread\n");
  // 256 MiB: min_free_kbytes = int_sqrt(262144 * 16) = 2048 KiB (512
  // pages); high = 512 + 2 * max(128, 65) = 768 pages.
  CHECK(k.read(knob("guest/reserve_kb")) == "3072\n");
  TestMachine w(small_machine_with("workqueue"));
  CHECK(w.read(knob("guest/driver")) == "workqueue\n");
  // A 16 GiB guest: min_free_kbytes 16384 KiB (4096 pages); the scale
  // factor term 4194 beats 1024: high = 4096 + 2 * 4194.
  TestMachine big("[xen]\nhost_memory = \"32G\"\nmemory = \"16G\"\n");
  CHECK(big.read(knob("guest/reserve_kb")) == std::to_string(12484 * 4) + "\n");
  CHECK(big.read(knob("guest/driver")) == "kthread\n");
}

}  // TEST_SUITE
