// devices/xen_balloon_worker.cpp: balloon_process with the manual clock
// (docs/kernel-semantics.md sections 3.6, 3.7). Every scenario checks the memory invariant after
// every simulated second.
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "tests/devices/xen/xen_balloon_test_support.hpp"

using namespace xen_test;

namespace {

using vsysfs::core::Event;

std::vector<Event> steps(TestMachine& m) { return m.events_of("xen_balloon", "step"); }

double secs(const Event& e) { return std::chrono::duration<double>(e.time).count(); }

// Advances one second at a time for `seconds`, asserting the invariant
// after each step.
void run_checked(TestMachine& m, int seconds) {
  for (int i = 0; i < seconds; ++i) {
    m.advance_ms(1000);
    REQUIRE_MESSAGE(memory_consistent(m), "at t=" << m.clock.now().count() / 1e9 << " s");
  }
}

// 1 GiB host; this guest 256 MiB of 512 MiB; "other" holds 699 MiB, so the
// host has 69 MiB (17664 pages) free: 34.5 batches.
std::string pressure_machine(std::string_view extra_xen = "", std::string_view pace = "25600") {
  return small_machine(extra_xen, "[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"699M\"\n"
                                  "pace = " + std::string(pace) + "\n");
}

}  // namespace

TEST_SUITE("xen_balloon") {

TEST_CASE("growth with enough host memory: exact batches of 512 frames, then DONE") {
  TestMachine m(small_machine());
  const std::uint64_t free0 = read_u64(m, knob("host_free_kb"));
  // 1300 pages more: 512 + 512 + 276, then a pass that finds no credit.
  REQUIRE(m.write(dev("target_kb"), "267344\n") == 7);
  m.advance_ms(0);
  const auto s = steps(m);
  // One balloon_process run: one event for its four passes.
  REQUIRE(s.size() == 1);
  CHECK(s[0].time.count() == 0);
  CHECK(s[0].result == "DONE");
  CHECK(s[0].field("direction") == "\"increase\"");
  CHECK(s[0].field("passes") == "4");
  CHECK(s[0].field("requested") == "1300");
  CHECK(s[0].field("granted") == "1300");
  CHECK(s[0].field("next_delay_s") == "-1");
  CHECK(s[0].field("schedule_delay") == "1");
  CHECK(s[0].field("current_kb") == "267344");
  CHECK(current_kb(m) == 267344);
  CHECK(read_u64(m, knob("host_free_kb")) == free0 - 1300 * 4);
  CHECK(m.read(dev("info/low_kb")) == std::to_string(524288 - 267344) + "\n");
  CHECK(m.clock.pending_timers() == 0);  // nothing left to do: no timer
  CHECK(memory_consistent(m));
}

TEST_CASE("growth under pressure: partial grant kept, back-off 2, 4, 8, 16, 32, 32 s, steady") {
  TestMachine m(pressure_machine());
  REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
  m.advance_ms(0);
  auto s = steps(m);
  // One run: 34 full batches, the partial grant (Xen had 256 frames left;
  // the 2009 patch keeps them), then a pass Xen grants nothing.
  REQUIRE(s.size() == 1);
  CHECK(s[0].field("passes") == "36");
  CHECK(s[0].field("requested") == std::to_string(36 * 512));
  CHECK(s[0].field("granted") == std::to_string(34 * 512 + 256));
  CHECK(s[0].result == "EAGAIN");
  CHECK(s[0].field("schedule_delay") == "2");
  CHECK(s[0].field("retry_count") == "2");
  CHECK(s[0].field("next_delay_s") == "2");
  CHECK(s[0].field("host_free_kb") == "0");
  CHECK(current_kb(m) == 262144 + 69 * 1024);
  CHECK(m.read(knob("guest/state")) == "EAGAIN\n");

  run_checked(m, 200);
  s = steps(m);
  // update_schedule doubles before the first re-queue: retries at
  // t = 2, 6, 14, 30, 62, 94, 126, 158, 190, one pass each.
  std::vector<double> retry_times;
  for (std::size_t i = 1; i < s.size(); ++i) {
    CHECK(s[i].result == "EAGAIN");
    CHECK(s[i].field("granted") == "0");
    CHECK(s[i].field("passes") == "1");
    retry_times.push_back(secs(s[i]));
  }
  CHECK(retry_times == std::vector<double>{2, 6, 14, 30, 62, 94, 126, 158, 190});
  CHECK(s.back().field("schedule_delay") == "32");
  CHECK(m.read(dev("schedule_delay")) == "20\n");  // 32, in hex
  CHECK(m.read(dev("retry_count")) == "b\n");      // 1 + 10 failures, in hex
  CHECK(current_kb(m) == 262144 + 69 * 1024);  // nothing given back
}

TEST_CASE("another domain ballooning down lets this one converge") {
  TestMachine m(pressure_machine());
  REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
  m.advance_ms(0);
  REQUIRE(current_kb(m) == 262144 + 69 * 1024);
  // The toolstack shrinks "other" to 400 MiB at 25600 pages (100 MiB) per second.
  REQUIRE(m.write(knob("domain/other/target_kb"), "409600\n") == 7);
  run_checked(m, 1);
  CHECK(read_u64(m, knob("domain/other/current_kb")) == (699 - 100) * 1024);
  CHECK(current_kb(m) == 262144 + 69 * 1024);  // the retry is at t=2
  run_checked(m, 1);
  // t=2: the retry takes the 100 MiB released at t=1, then waits again.
  CHECK(current_kb(m) == 262144 + 169 * 1024);
  CHECK(m.read(knob("guest/state")) == "EAGAIN\n");
  run_checked(m, 1);
  CHECK(current_kb(m) == 262144 + 169 * 1024);
  run_checked(m, 1);
  // t=4: enough was released at t=2 and t=3.
  CHECK(current_kb(m) == 524288);
  CHECK(m.read(knob("guest/state")) == "DONE\n");
  CHECK(m.read(dev("schedule_delay")) == "1\n");
  CHECK(m.read(dev("retry_count")) == "1\n");
  run_checked(m, 10);
  CHECK(read_u64(m, knob("domain/other/current_kb")) == 409600);
  CHECK(current_kb(m) == 524288);
  const auto s = steps(m);
  CHECK(secs(s.back()) == 4);
  CHECK(s.back().result == "DONE");
  CHECK(!m.events_of("xen", "domain_step").empty());
}

TEST_CASE("max_retry_count: ECANCELED stops the worker until the target is written again") {
  TestMachine m(small_machine("max_retry_count = 3\n",
                              "[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"768M\"\n"));
  CHECK(m.read(dev("max_retry_count")) == "3\n");
  REQUIRE(read_u64(m, knob("host_free_kb")) == 0);
  REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
  m.advance_ms(0);
  run_checked(m, 10);
  auto s = steps(m);
  REQUIRE(s.size() == 3);
  CHECK(secs(s[0]) == 0);
  CHECK(s[0].result == "EAGAIN");
  CHECK(secs(s[1]) == 2);
  CHECK(s[1].result == "EAGAIN");
  CHECK(secs(s[2]) == 6);
  CHECK(s[2].result == "ECANCELED");
  CHECK(s[2].field("next_delay_s") == "-1");
  CHECK(m.read(dev("schedule_delay")) == "1\n");  // reset on giving up
  CHECK(m.read(dev("retry_count")) == "1\n");
  CHECK(m.read(knob("guest/state")) == "ECANCELED\n");
  // Memory appears, but nobody retries.
  REQUIRE(m.write(knob("host_free_kb"), "1048576\n") == 8);
  run_checked(m, 1000);
  CHECK(steps(m).size() == 3);
  CHECK(current_kb(m) == 262144);
  // Writing the same target again restarts it.
  REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
  m.advance_ms(0);
  CHECK(current_kb(m) == 524288);
  CHECK(m.read(knob("guest/state")) == "DONE\n");
  CHECK(memory_consistent(m));
}

TEST_CASE("shrinking with no free guest pages waits (EAGAIN) and resumes when pages are freed") {
  // 256 MiB populated, 201 MiB used: 55 MiB (14080 pages) free.
  TestMachine m(small_machine("", "").replace(small_machine().find("used = \"64M\""), 13,
                                              "used = \"201M\"\n"));
  REQUIRE(m.read(knob("guest/free_kb")) == "56320\n");
  const std::uint64_t host_free0 = read_u64(m, knob("host_free_kb"));
  REQUIRE(m.write(dev("target_kb"), "131072\n") == 7);  // 128 MiB
  m.advance_ms(0);
  auto s = steps(m);
  // One run: 27 full batches, then a pass where alloc_page finds 256.
  REQUIRE(s.size() == 1);
  CHECK(s[0].field("direction") == "\"decrease\"");
  CHECK(s[0].field("passes") == "28");
  CHECK(s[0].field("requested") == std::to_string(28 * 512));
  CHECK(s[0].field("granted") == std::to_string(27 * 512 + 256));
  CHECK(s[0].result == "EAGAIN");
  CHECK(s[0].field("next_delay_s") == "2");
  CHECK(current_kb(m) == 201 * 1024);
  CHECK(m.read(knob("guest/free_kb")) == "0\n");
  CHECK(read_u64(m, knob("host_free_kb")) == host_free0 + 55 * 1024);
  CHECK(m.read(dev("info/low_kb")) == std::to_string(524288 - 201 * 1024) + "\n");
  run_checked(m, 7);  // retries at t=2 and t=6 find nothing
  s = steps(m);
  REQUIRE(s.size() == 3);
  CHECK(s[1].field("granted") == "0");
  CHECK(secs(s[2]) == 6);
  // The workload frees 101 MiB; the retry at t=14 finishes the job.
  REQUIRE(m.write(knob("guest/used_kb"), "102400\n") == 7);
  run_checked(m, 6);
  CHECK(current_kb(m) == 201 * 1024);
  run_checked(m, 1);
  CHECK(current_kb(m) == 131072);
  CHECK(m.read(knob("guest/state")) == "DONE\n");
  CHECK(read_u64(m, knob("host_free_kb")) == host_free0 + 128 * 1024);
}

TEST_CASE("a target written while a retry is pending waits for that retry (kernel quirk)") {
  TestMachine m(small_machine("",
                              "[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"768M\"\n"));
  REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
  m.advance_ms(0);
  REQUIRE(steps(m).size() == 1);  // EAGAIN, retry queued for t=2
  m.advance_ms(500);
  // schedule_delayed_work() on the pending work item is a no-op.
  REQUIRE(m.write(dev("target_kb"), "262144\n") == 7);
  const auto target_ev = m.events_of("xen_balloon", "target");
  CHECK(target_ev.back().field("worker_pending") == "true");
  m.advance_ms(1000);
  CHECK(steps(m).size() == 1);
  m.advance_ms(500);
  const auto s = steps(m);
  REQUIRE(s.size() == 2);
  CHECK(secs(s[1]) == 2);
  CHECK(s[1].field("direction") == "\"none\"");
  CHECK(s[1].result == "DONE");
}

TEST_CASE("populate_fail: the next N populate calls fail with ENOMEM, then growth goes on") {
  TestMachine m(small_machine());
  REQUIRE(m.write(knob("populate_fail"), "2\n") == 2);
  CHECK(m.read(knob("populate_fail")) == "2\n");
  REQUIRE(m.write(dev("target_kb"), "262148\n") == 7);
  m.advance_ms(0);
  run_checked(m, 10);
  const auto s = steps(m);
  REQUIRE(s.size() == 3);
  CHECK(s[0].result == "EAGAIN");
  CHECK(s[0].field("error") == "\"ENOMEM\"");
  CHECK(secs(s[1]) == 2);
  CHECK(s[1].field("error") == "\"ENOMEM\"");
  CHECK(secs(s[2]) == 6);
  CHECK(s[2].result == "DONE");
  CHECK(s[2].field("granted") == "1");
  CHECK(s[2].field("passes") == "2");  // the grant, then no credit
  CHECK(m.read(knob("populate_fail")) == "0\n");
  CHECK(m.events_of("xen", "populate_physmap").size() == 2);
  CHECK(current_kb(m) == 262148);
}

TEST_CASE("K/fail/xen_populate: grants capped at pages (0: none), the back-off runs") {
  TestMachine m(small_machine());
  const std::string f = "kernel/debug/vsysfs/fail/xen_populate/";
  CHECK(m.read(f + "pages") == "0\n");
  REQUIRE(m.write(f + "times", "2\n") == 2);
  REQUIRE(m.write(f + "probability", "100\n") == 4);
  REQUIRE(m.write(dev("target_kb"), "262148\n") == 7);
  m.advance_ms(0);
  run_checked(m, 10);
  const auto s = steps(m);
  REQUIRE(s.size() == 3);
  CHECK(s[0].result == "EAGAIN");  // populate_physmap returned 0
  CHECK(secs(s[1]) == 2);
  CHECK(s[1].result == "EAGAIN");
  CHECK(secs(s[2]) == 6);
  CHECK(s[2].result == "DONE");
  CHECK(m.read(f + "injected") == "2\n");
  CHECK(m.events_of("xen", "populate_physmap").size() == 2);
  CHECK(current_kb(m) == 262148);
  // pages junk: EINVAL, nothing changes.
  CHECK(m.write(f + "pages", "x") == -EINVAL);
  CHECK(m.read(f + "pages") == "0\n");
}

TEST_CASE("K/fail/xen_decrease: Xen keeps frames, the guest's BUG_ON kills the worker") {
  for (const char* driver : {"kthread", "workqueue"}) {
    CAPTURE(driver);
    TestMachine m(small_machine_with(driver));
    const std::string f = "kernel/debug/vsysfs/fail/xen_decrease/";
    CHECK(m.read(f + "pages") == "0\n");
    const std::uint64_t host_free0 = read_u64(m, knob("host_free_kb"));
    REQUIRE(m.write(f + "pages", "100\n") == 4);
    REQUIRE(m.write(f + "probability", "100\n") == 4);
    // Down by 1024 pages (4 MiB): the first frame_list of 512 meets the point.
    REQUIRE(m.write(dev("target_kb"), "258048\n") == 7);
    m.advance_ms(0);
    const auto bug = m.events_of("xen_balloon", "bug");
    REQUIRE(bug.size() == 1);
    CHECK(bug[0].result == "BUG");
    CHECK(bug[0].field("file") == "\"drivers/xen/balloon.c\"");
    CHECK(bug[0].field("nr_pages") == "512");
    CHECK(bug[0].field("ret") == "100");
    const auto dec = m.events_of("xen", "decrease_reservation");
    REQUIRE(dec.size() == 1);
    CHECK(dec[0].result == "partial");
    CHECK(dec[0].field("fault") == "\"xen_decrease\"");
    // Xen took 100 frames back; the worker died in its pass: no step event.
    CHECK(read_u64(m, knob("host_free_kb")) == host_free0 + 100 * 4);
    CHECK(steps(m).empty());
    CHECK(m.read(f + "injected") == "1\n");
    // The files answer; a new target is stored, but nothing moves any more.
    const std::uint64_t cur = current_kb(m);
    REQUIRE(m.write(dev("target_kb"), "131072\n") == 7);
    CHECK(read_u64(m, dev("target_kb")) == 131072);
    m.advance_ms(3600 * 1000 * 2);
    CHECK(current_kb(m) == cur);
    CHECK(steps(m).empty());
    CHECK(m.events_of("xen_balloon", "target").back().field("worker_dead") == "true");
  }
}

TEST_CASE("K/fail/xen_decrease: a cap at or above the frames given changes nothing") {
  TestMachine m(small_machine());
  const std::string f = "kernel/debug/vsysfs/fail/xen_decrease/";
  REQUIRE(m.write(f + "pages", "512\n") == 4);
  REQUIRE(m.write(f + "probability", "100\n") == 4);
  REQUIRE(m.write(dev("target_kb"), "260096\n") == 7);  // 512 pages down
  m.advance_ms(0);
  CHECK(m.events_of("xen_balloon", "bug").empty());
  CHECK(current_kb(m) == 260096);
  CHECK(memory_consistent(m));
  CHECK(m.read(f + "injected") == "1\n");
}

TEST_CASE("max_schedule_delay 0 retries every jiffy without hanging the clock") {
  TestMachine m(small_machine("",
                              "[[xen.domain]]\nname = \"other\"\ndomid = 2\nmemory = \"768M\"\n"));
  REQUIRE(m.write(dev("max_schedule_delay"), "0\n") == 2);
  REQUIRE(m.write(dev("target_kb"), "524288\n") == 7);
  m.advance_ms(100);
  const auto s = steps(m);
  CHECK(s.size() == 26);  // t=0, then every 4 ms up to t=100 ms
  CHECK(s.back().time == std::chrono::milliseconds(100));
  CHECK(m.read(dev("schedule_delay")) == "0\n");
}

TEST_CASE("host pressure through host_free_kb: growth stalls, then converges at the next retry") {
  TestMachine m(small_machine());
  REQUIRE(m.write(knob("host_free_kb"), "0\n") == 2);
  REQUIRE(m.write(dev("target_kb"), "393216\n") == 7);
  m.advance_ms(0);
  run_checked(m, 5);  // retries at 2 (and 6)
  CHECK(current_kb(m) == 262144);
  REQUIRE(m.write(knob("host_free_kb"), "65536\n") == 6);  // 64 MiB
  run_checked(m, 1);  // t=6: partial
  CHECK(current_kb(m) == 262144 + 65536);
  REQUIRE(m.write(knob("host_free_kb"), "1048576\n") == 8);
  run_checked(m, 20);
  CHECK(current_kb(m) == 393216);
}

}  // TEST_SUITE

TEST_SUITE("xen_balloon") {

TEST_CASE("a boot target different from memory starts the worker at once") {
  TestMachine m(small_machine("target = \"300M\"\n"));
  CHECK(m.read(dev("target_kb")) == "307200\n");
  CHECK(current_kb(m) == 262144);
  m.advance_ms(0);
  CHECK(current_kb(m) == 307200);
  CHECK(memory_consistent(m));
  TestMachine still(small_machine());
  still.advance_ms(0);
  CHECK(steps(still).empty());  // target == memory: the worker never ran
}

TEST_CASE("every step event carries requested, granted, current, state and next delay") {
  TestMachine m(small_machine());
  REQUIRE(m.write(dev("target_kb"), "131072\n") == 7);
  m.advance_ms(0);
  const auto s = steps(m);
  REQUIRE(!s.empty());
  for (const auto& e : s) {
    for (const char* key :
         {"direction", "passes", "requested", "granted", "current_kb", "target_kb", "state",
          "schedule_delay", "retry_count", "next_delay_s", "host_free_kb"}) {
      CAPTURE(key);
      CHECK(!e.field(key).empty());
    }
    CHECK(e.pid == 0);  // the kernel's worker, not the writer
  }
  CHECK(s.front().field("direction") == "\"decrease\"");
  CHECK(current_kb(m) == 131072);
}

}  // TEST_SUITE
