// Unit tests of core/fault_inject: should_fail() check for check as
// lib/fault-inject.c should_fail_ex, fail_page_alloc's filters, the
// store/show path filter, and the seeded generator.
#include <fnmatch.h>

#include <atomic>
#include <cerrno>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "core/caller.hpp"
#include "core/clock.hpp"
#include "core/event_log.hpp"
#include "core/fault_inject.hpp"
#include "core/state_record.hpp"

using vsysfs::core::Caller;
using vsysfs::core::EventLog;
using vsysfs::core::FaultInjection;
using vsysfs::core::FaultPoint;
using vsysfs::core::FaultSettings;
using vsysfs::core::Gfp;
using vsysfs::core::ManualClock;

namespace {

struct Fixture {
  ManualClock clock;
  EventLog events{clock};
  FaultInjection fi{clock, events};
  Caller caller = Caller::root();

  bool fail(FaultPoint p = FaultPoint::Smi, long size = 1) {
    return fi.should_fail(p, &caller, size, "test_site");
  }
  // A string of 0/1 for n calls.
  std::string pattern(int n, FaultPoint p = FaultPoint::Smi) {
    std::string s;
    for (int i = 0; i < n; ++i) s += fail(p) ? '1' : '0';
    return s;
  }
  std::vector<vsysfs::core::Event> dumps() {
    std::vector<vsysfs::core::Event> out;
    for (auto& e : events.snapshot())
      if (e.device == "fault_inject" && e.what == "fail") out.push_back(e);
    return out;
  }
};

}  // namespace

TEST_SUITE("fault_inject") {

TEST_CASE("FAULT_ATTR_INITIALIZER defaults: nothing fails, times 1, interval 1, verbose 2") {
  Fixture f;
  const FaultSettings s = f.fi.settings(FaultPoint::Store);
  CHECK(s.probability == 0);
  CHECK(s.interval == 1);
  CHECK(s.times == 1);
  CHECK(s.space == 0);
  CHECK(s.verbose == 2);
  CHECK(s.verbose_ratelimit_interval_ms == 0);
  CHECK(s.verbose_ratelimit_burst == 10);
  CHECK_FALSE(s.task_filter);
  CHECK(f.fi.settings(FaultPoint::PageAlloc).min_order == 1);
  CHECK(f.fi.settings(FaultPoint::PageAlloc).ignore_gfp_highmem);
  CHECK(f.fi.settings(FaultPoint::PageAlloc).ignore_gfp_reclaim);
  CHECK(f.pattern(20) == std::string(20, '0'));
  CHECK_FALSE(f.fi.armed(FaultPoint::Smi));
}

TEST_CASE("probability 100, times 1: exactly one failure, then times is 0") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  CHECK(f.fi.armed(FaultPoint::Smi));
  CHECK(f.pattern(5) == "10000");
  CHECK(f.fi.settings(FaultPoint::Smi).times == 0);
  CHECK(f.fi.injected(FaultPoint::Smi) == 1);
  // Other points are independent.
  CHECK(f.pattern(3, FaultPoint::Store) == "000");
}

TEST_CASE("times -1 never runs out; another negative times counts further down") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -1);
  CHECK(f.pattern(10) == std::string(10, '1'));
  CHECK(f.fi.settings(FaultPoint::Smi).times == -1);
  // QUIRK: atomic_dec_not_zero on -5 gives -6, and it keeps failing.
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -5);
  CHECK(f.pattern(3) == "111");
  CHECK(f.fi.settings(FaultPoint::Smi).times == -8);
}

TEST_CASE("interval: every Nth call that reaches the check fails") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -1);
  f.fi.set(FaultPoint::Smi, &FaultSettings::interval, 3UL);
  CHECK(f.pattern(9) == "001001001");
}

TEST_CASE("space: a budget spent before any failure, size by size, checked before interval") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -1);
  f.fi.set(FaultPoint::Smi, &FaultSettings::space, 10);
  f.fi.set(FaultPoint::Smi, &FaultSettings::interval, 2UL);
  // space > size: 10 -> 6 -> 2, no failure and no interval count; then
  // 2 > 4 is false: interval counts 1 (no), 2 (yes).
  CHECK_FALSE(f.fail(FaultPoint::Smi, 4));
  CHECK(f.fi.settings(FaultPoint::Smi).space == 6);
  CHECK_FALSE(f.fail(FaultPoint::Smi, 4));
  CHECK(f.fi.settings(FaultPoint::Smi).space == 2);
  CHECK_FALSE(f.fail(FaultPoint::Smi, 4));
  CHECK(f.fail(FaultPoint::Smi, 4));
  CHECK(f.fi.settings(FaultPoint::Smi).space == 2);  // not charged once spent
}

TEST_CASE("times 0 stops before space and interval are touched") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, 0);
  f.fi.set(FaultPoint::Smi, &FaultSettings::space, 10);
  CHECK_FALSE(f.fail(FaultPoint::Smi, 4));
  CHECK(f.fi.settings(FaultPoint::Smi).space == 10);
}

TEST_CASE("probability above 100 always fails; probability is a percentage") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 250UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -1);
  CHECK(f.pattern(50) == std::string(50, '1'));
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 30UL);
  const std::string p = f.pattern(2000);
  const auto ones = std::count(p.begin(), p.end(), '1');
  CHECK(ones > 450);  // 600 expected; far outside chance otherwise
  CHECK(ones < 750);
}

TEST_CASE("the seed names the sequence: same seed, same decisions; another seed, others") {
  Fixture a, b, c;
  for (Fixture* f : {&a, &b, &c}) {
    f->fi.set(FaultPoint::Show, &FaultSettings::probability, 50UL);
    f->fi.set(FaultPoint::Show, &FaultSettings::times, -1);
  }
  a.fi.set_seed(42);
  b.fi.set_seed(42);
  c.fi.set_seed(43);
  const std::string pa = a.pattern(64, FaultPoint::Show);
  CHECK(pa == b.pattern(64, FaultPoint::Show));
  CHECK(pa != c.pattern(64, FaultPoint::Show));
  // Re-seeding restarts the sequence.
  a.fi.set_seed(42);
  CHECK(a.pattern(64, FaultPoint::Show) == pa);
  CHECK(a.fi.seed() == 42);
}

TEST_CASE("task-filter: only pids in the list fail; the simulated kernel never does") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -1);
  f.fi.set(FaultPoint::Smi, &FaultSettings::task_filter, true);
  CHECK_FALSE(f.fail());
  f.fi.set_pids({f.caller.pid()});
  CHECK(f.fail());
  CHECK_FALSE(f.fi.should_fail(FaultPoint::Smi, nullptr, 1, "kernel"));
  const Caller other = Caller::described(4242, 0, "other");
  CHECK_FALSE(f.fi.should_fail(FaultPoint::Smi, &other, 1, "x"));
  CHECK(f.fi.pids() == std::vector<pid_t>{f.caller.pid()});
}

TEST_CASE("verbose: 0 logs nothing, 1 the kernel's fail_dump fields, 2 also the site") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, 3);
  f.fi.set(FaultPoint::Smi, &FaultSettings::verbose, 0UL);
  CHECK(f.fail());
  CHECK(f.dumps().empty());
  f.fi.set(FaultPoint::Smi, &FaultSettings::verbose, 1UL);
  CHECK(f.fail());
  REQUIRE(f.dumps().size() == 1);
  auto d = f.dumps()[0];
  CHECK(d.result == "forced");
  CHECK(d.field("name") == "\"smi\"");
  CHECK(d.field("times") == "2");  // printed before the decrement
  CHECK(d.field("probability") == "100");
  CHECK(d.field("site").empty());
  CHECK(d.pid == f.caller.pid());
  f.fi.set(FaultPoint::Smi, &FaultSettings::verbose, 2UL);
  CHECK(f.fail());
  REQUIRE(f.dumps().size() == 2);
  CHECK(f.dumps()[1].field("site") == "\"test_site\"");
  CHECK(f.fi.injected(FaultPoint::Smi) == 3);
}

TEST_CASE("FAULT_NOWARN (__GFP_NOWARN) fails without a dump") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  CHECK(f.fi.should_fail(FaultPoint::Smi, &f.caller, 1, "x", true));
  CHECK(f.dumps().empty());
}

TEST_CASE("verbose ratelimit: burst dumps per interval on the simulation clock") {
  Fixture f;
  f.fi.set(FaultPoint::Smi, &FaultSettings::probability, 100UL);
  f.fi.set(FaultPoint::Smi, &FaultSettings::times, -1);
  f.fi.set(FaultPoint::Smi, &FaultSettings::verbose_ratelimit_interval_ms, std::uint32_t{1000});
  f.fi.set(FaultPoint::Smi, &FaultSettings::verbose_ratelimit_burst, std::uint32_t{2});
  CHECK(f.pattern(5) == "11111");
  CHECK(f.dumps().size() == 2);
  // Not yet: the window is (begin, begin + interval].
  f.clock.advance(std::chrono::milliseconds(1000));
  CHECK(f.fail());
  CHECK(f.dumps().size() == 2);
  f.clock.advance(std::chrono::milliseconds(1));
  CHECK(f.fail());
  CHECK(f.dumps().size() == 3);
  int suppressed = 0;
  for (auto& e : f.events.snapshot())
    if (e.what == "ratelimit") suppressed = std::stoi(e.field("suppressed"));
  CHECK(suppressed == 4);
}

TEST_CASE("page_alloc: min-order, __GFP_NOFAIL and the ignore-gfp filters come first") {
  Fixture f;
  const FaultPoint p = FaultPoint::PageAlloc;
  f.fi.set(p, &FaultSettings::probability, 100UL);
  f.fi.set(p, &FaultSettings::times, -1);
  const Gfp user{.highmem = true, .direct_reclaim = true};
  const Gfp kernel{.direct_reclaim = true};
  const Gfp atomic{};
  CHECK_FALSE(f.fi.should_fail_alloc_page(&f.caller, atomic, 0, 1, "x"));  // order < min-order 1
  CHECK(f.fi.should_fail_alloc_page(&f.caller, atomic, 1, 2, "x"));
  CHECK_FALSE(f.fi.should_fail_alloc_page(&f.caller, kernel, 3, 8, "x"));  // ignore-gfp-wait
  CHECK_FALSE(f.fi.should_fail_alloc_page(&f.caller, user, 3, 8, "x"));
  f.fi.set(p, &FaultSettings::ignore_gfp_reclaim, false);
  CHECK(f.fi.should_fail_alloc_page(&f.caller, kernel, 3, 8, "x"));
  CHECK_FALSE(f.fi.should_fail_alloc_page(&f.caller, user, 3, 8, "x"));  // ignore-gfp-highmem
  f.fi.set(p, &FaultSettings::ignore_gfp_highmem, false);
  CHECK(f.fi.should_fail_alloc_page(&f.caller, user, 3, 8, "x"));
  CHECK_FALSE(f.fi.should_fail_alloc_page(&f.caller, Gfp{.nofail = true}, 3, 8, "x"));
  f.fi.set(p, &FaultSettings::min_order, std::uint32_t{0});
  CHECK(f.fi.should_fail_alloc_page(&f.caller, atomic, 0, 1, "x"));
}

TEST_CASE("store/show: the errno, the glob list, and the control plane is never failed") {
  Fixture f;
  const FaultPoint p = FaultPoint::Store;
  f.fi.set(p, &FaultSettings::probability, 100UL);
  f.fi.set(p, &FaultSettings::times, -1);
  f.fi.set(p, &FaultSettings::error, EBUSY);
  auto r = f.fi.should_fail_attr(p, f.caller, "devices/platform/dcdbas/smi_request");
  REQUIRE(r);
  CHECK(r->value() == EBUSY);
  CHECK_FALSE(f.fi.should_fail_attr(p, f.caller, "kernel/debug/vsysfs/fail/store/probability"));
  CHECK_FALSE(f.fi.should_fail_attr(p, f.caller, "kernel/debug/vsysfs"));
  CHECK(f.fi.should_fail_attr(p, f.caller, "kernel/debug/vsysfsX"));
  f.fi.set_paths(p, {"devices/system/node/*/numastat", "class/net/*/mtu"});
  CHECK_FALSE(f.fi.should_fail_attr(p, f.caller, "devices/platform/dcdbas/smi_request"));
  CHECK(f.fi.should_fail_attr(p, f.caller, "devices/system/node/node1/numastat"));
  CHECK(f.fi.should_fail_attr(p, f.caller, "class/net/eth0/mtu"));
  CHECK(f.fi.paths(p).size() == 2);
  // Show is its own point.
  CHECK_FALSE(f.fi.should_fail_attr(FaultPoint::Show, f.caller, "class/net/eth0/mtu"));
}

TEST_CASE("glob_match agrees with fnmatch(3) without flags") {
  using vsysfs::core::glob_match;
  CHECK(glob_match("devices/*/numastat", "devices/system/node/node0/numastat"));
  CHECK(glob_match("class/net/eth?/mtu", "class/net/eth0/mtu"));
  CHECK_FALSE(glob_match("class/net/eth?/mtu", "class/net/eth10/mtu"));
  CHECK(glob_match("node[0-3]", "node2"));
  CHECK_FALSE(glob_match("node[!0-3]", "node2"));
  CHECK(glob_match("a\\*", "a*"));
  CHECK_FALSE(glob_match("a\\*", "ab"));
  // Differential: random patterns over a small alphabet against glibc.
  std::mt19937 rng(1);
  const std::string pat_chars = "ab/*?[]!-\\";
  const std::string str_chars = "ab/-]!";
  for (int i = 0; i < 20000; ++i) {
    std::string p, s;
    for (int n = static_cast<int>(rng() % 8); n > 0; --n) p += pat_chars[rng() % pat_chars.size()];
    for (int n = static_cast<int>(rng() % 8); n > 0; --n) s += str_chars[rng() % str_chars.size()];
    const bool want = ::fnmatch(p.c_str(), s.c_str(), 0) == 0;
    if (glob_match(p, s) != want) {
      FAIL_CHECK("pattern \"" << p << "\" subject \"" << s << "\" fnmatch " << want);
      break;
    }
  }
}

TEST_CASE("glob_match: a pattern of many stars ends (no exponential backtracking)") {
  std::string pat;
  for (int i = 0; i < 120; ++i) pat += "*a";
  pat += "*b";
  const std::string subject(255, 'a');
  CHECK_FALSE(vsysfs::core::glob_match(pat, subject));
}

TEST_CASE("concurrent requests and control writes: every failure counted once") {
  Fixture f;
  const FaultPoint p = FaultPoint::Show;
  f.fi.set(p, &FaultSettings::probability, 50UL);
  f.fi.set(p, &FaultSettings::times, -1);
  f.fi.set(p, &FaultSettings::verbose, 1UL);
  std::atomic<std::uint64_t> failed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&f, &failed, p] {
      for (int i = 0; i < 2000; ++i)
        if (f.fi.should_fail_attr(p, f.caller, "class/net/eth0/mtu")) ++failed;
    });
  std::thread control([&f, &stop, p] {
    for (unsigned long i = 0; !stop.load(); ++i) {
      f.fi.set(p, &FaultSettings::interval, 1 + i % 3);
      f.fi.set_paths(p, i % 2 ? std::vector<std::string>{"class/*"} : std::vector<std::string>{});
      f.fi.set_pids({static_cast<pid_t>(1 + i % 5)});
      (void)f.fi.settings(p);
    }
  });
  for (auto& w : workers) w.join();
  stop = true;
  control.join();
  CHECK(failed.load() > 0);
  CHECK(f.fi.injected(p) == failed.load());
  CHECK(f.dumps().size() == failed.load());
}

TEST_CASE("link_flap: down_ms at the start of each of count periods, on the simulation clock") {
  using namespace std::chrono_literals;
  Fixture f;
  const FaultPoint p = FaultPoint::LinkFlap;
  std::vector<std::string> log;  // "T name down|up"
  auto hook = [&f, &log](const char* name) {
    return [&f, &log, name](bool down) {
      log.push_back(std::to_string(f.clock.now() / 1ms) + " " + name + (down ? " down" : " up"));
    };
  };
  // Registered out of order: the decisions run in name order.
  f.fi.add_flap_target("eth1", hook("eth1"));
  f.fi.add_flap_target("eth0", hook("eth0"));
  f.fi.set(p, &FaultSettings::down_ms, 200u);
  f.fi.set(p, &FaultSettings::period_ms, 1000u);
  f.fi.set_paths(p, {"eth0"});
  REQUIRE(f.fi.start_flaps(2));
  CHECK(f.fi.flaps_left() == 2);
  // probability 0: the point is off, the periods pass without a flap.
  f.clock.advance(1000ms);
  CHECK(log.empty());
  CHECK(f.fi.flaps_left() == 1);
  f.fi.set(p, &FaultSettings::probability, 100UL);
  f.fi.set(p, &FaultSettings::times, -1);
  REQUIRE(f.fi.start_flaps(2));  // restarts at 1000: periods at 2000 and 3000
  f.clock.advance(999ms);
  CHECK(log.empty());
  f.clock.advance(1ms);
  CHECK(log == std::vector<std::string>{"2000 eth0 down"});
  f.clock.advance(2000ms);
  CHECK(log == std::vector<std::string>{"2000 eth0 down", "2200 eth0 up", "3000 eth0 down",
                                        "3200 eth0 up"});
  CHECK(f.fi.flaps_left() == 0);
  CHECK(f.fi.injected(p) == 2);
  // Both interfaces, in name order; times limits the flaps as any failure.
  log.clear();
  f.fi.set_paths(p, {});
  f.fi.set(p, &FaultSettings::times, 3);
  REQUIRE(f.fi.start_flaps(5));
  f.clock.advance(5000ms);
  CHECK(log == std::vector<std::string>{"5000 eth0 down", "5000 eth1 down", "5200 eth0 up",
                                        "5200 eth1 up", "6000 eth0 down", "6200 eth0 up"});
}

TEST_CASE("link_flap: a bad schedule is refused; a restart or a removal brings the link back") {
  using namespace std::chrono_literals;
  Fixture f;
  const FaultPoint p = FaultPoint::LinkFlap;
  int down = 0;
  f.fi.add_flap_target("eth0", [&down](bool d) { down += d ? 1 : -1; });
  f.fi.set(p, &FaultSettings::probability, 100UL);
  f.fi.set(p, &FaultSettings::times, -1);
  f.fi.set(p, &FaultSettings::down_ms, 1000u);
  f.fi.set(p, &FaultSettings::period_ms, 1000u);
  CHECK(f.fi.start_flaps(1).error() == vsysfs::core::Errno{EINVAL});
  CHECK(f.fi.flaps_left() == 0);
  f.fi.set(p, &FaultSettings::down_ms, 500u);
  REQUIRE(f.fi.start_flaps(3));
  f.clock.advance(1100ms);
  CHECK(down == 1);
  REQUIRE(f.fi.start_flaps(0));  // stop: the link comes back at once
  CHECK(down == 0);
  CHECK(f.fi.flaps_left() == 0);
  f.clock.advance(5000ms);
  CHECK(down == 0);
  REQUIRE(f.fi.start_flaps(1));
  f.clock.advance(1000ms);
  CHECK(down == 1);
  f.fi.remove_flap_target("eth0");
  CHECK(down == 0);
  f.clock.advance(5000ms);
  CHECK(down == 0);
}

TEST_CASE("delay: the waiter returns when the clock passes the deadline, or when cancelled") {
  using namespace std::chrono_literals;
  Fixture f;
  std::atomic<int> state{0};  // 0 waiting, 1 elapsed, 2 cancelled
  std::atomic<bool> armed{false};
  std::thread t([&] {
    // cancelled() is first called once the timer is armed.
    const auto end = f.fi.delay(500ms, [&] {
      armed = true;
      return false;
    });
    state = end == FaultInjection::DelayEnd::Elapsed ? 1 : 2;
  });
  while (!armed.load()) std::this_thread::yield();
  f.clock.advance(499ms);
  std::this_thread::sleep_for(50ms);  // a wrong wake-up would show by now
  CHECK(state.load() == 0);
  f.clock.advance(1ms);
  t.join();
  CHECK(state.load() == 1);
  CHECK(f.fi.delayed() == 0);

  std::atomic<bool> cancel{false};
  std::thread c([&] {
    const auto end = f.fi.delay(500ms, [&] { return cancel.load(); });
    state = end == FaultInjection::DelayEnd::Cancelled ? 2 : 1;
  });
  while (f.fi.delayed() == 0) std::this_thread::yield();
  cancel = true;
  c.join();
  CHECK(state.load() == 2);
  // The cancelled waiter's timer is gone: advancing past its deadline is harmless.
  f.clock.advance(1000ms);
}

TEST_CASE("delay: at most kMaxDelayed wait at once; the next is not delayed") {
  using namespace std::chrono_literals;
  Fixture f;
  std::atomic<bool> cancel{false};
  std::vector<std::thread> waiters;
  for (std::size_t i = 0; i < FaultInjection::kMaxDelayed; ++i)
    waiters.emplace_back([&] { (void)f.fi.delay(1h, [&] { return cancel.load(); }); });
  while (f.fi.delayed() < FaultInjection::kMaxDelayed) std::this_thread::yield();
  CHECK(f.fi.delay(1h, {}) == FaultInjection::DelayEnd::Overflow);
  cancel = true;
  for (auto& w : waiters) w.join();
  CHECK(f.fi.delayed() == 0);
}

TEST_CASE("snapshot record: the new fault settings come back; a running schedule is replaced") {
  using namespace std::chrono_literals;
  using vsysfs::core::NetRxFault;
  using vsysfs::core::StateReader;
  using vsysfs::core::StateWriter;
  Fixture f;
  f.fi.set(FaultPoint::Store, &FaultSettings::delay_ms, 250u);
  f.fi.set(FaultPoint::NetRx, &FaultSettings::rx_kind, NetRxFault::Corrupt);
  f.fi.set(FaultPoint::LinkFlap, &FaultSettings::down_ms, 300u);
  f.fi.set(FaultPoint::LinkFlap, &FaultSettings::period_ms, 700u);
  StateWriter w(1);
  f.fi.save_state(w);
  f.fi.set(FaultPoint::Store, &FaultSettings::delay_ms, 0u);
  f.fi.set(FaultPoint::NetRx, &FaultSettings::rx_kind, NetRxFault::Drop);
  f.fi.set(FaultPoint::LinkFlap, &FaultSettings::down_ms, 100u);
  f.fi.set(FaultPoint::LinkFlap, &FaultSettings::period_ms, 1000u);
  auto r = StateReader::parse(w.text());
  REQUIRE(r);
  REQUIRE(f.fi.load_state(*r));
  CHECK(f.fi.settings(FaultPoint::Store).delay_ms == 250u);
  CHECK(f.fi.settings(FaultPoint::NetRx).rx_kind == NetRxFault::Corrupt);
  CHECK(f.fi.settings(FaultPoint::LinkFlap).down_ms == 300u);
  CHECK(f.fi.settings(FaultPoint::LinkFlap).period_ms == 700u);

  // A schedule running now is replaced by the record's (none): it stops.
  int calls = 0;
  f.fi.add_flap_target("eth0", [&calls](bool) { ++calls; });
  f.fi.set(FaultPoint::LinkFlap, &FaultSettings::probability, 100UL);
  REQUIRE(f.fi.start_flaps(3));
  REQUIRE(f.fi.load_state(*r));
  CHECK(f.fi.flaps_left() == 0);
  CHECK_FALSE(f.fi.flap_active());
  f.clock.advance(5000ms);
  CHECK(calls == 0);
}

namespace {

// The record `text` with the field `key` set to `value` (added when
// absent), or removed when `value` is null.
std::string with_field(const std::string& text, const std::string& key, const char* value) {
  std::string out;
  bool found = false;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind(key + "=", 0) == 0) {
      found = true;
      if (value) out += key + "=" + value + "\n";
      continue;
    }
    out += line + "\n";
  }
  if (!found && value) out += key + "=" + value + "\n";
  return out;
}

}  // namespace

TEST_CASE("snapshot record: a link_flap schedule taken mid-flap toggles at the same instants") {
  using namespace std::chrono_literals;
  using vsysfs::core::StateReader;
  using vsysfs::core::StateWriter;
  Fixture f;
  const FaultPoint p = FaultPoint::LinkFlap;
  std::vector<std::string> log;  // "T name down|up"
  // Which links a flap holds down: the net section's part of the record
  // (each NIC's hw.flap_down), which the test sets back itself.
  std::set<std::string> held;
  auto hook = [&](std::string name) {
    return [&, name](bool down) {
      log.push_back(std::to_string(f.clock.now() / 1ms) + " " + name + (down ? " down" : " up"));
      if (down) {
        held.insert(name);
      } else {
        held.erase(name);
      }
    };
  };
  f.fi.add_flap_target("eth0", hook("eth0"));
  f.fi.add_flap_target("eth1", hook("eth1"));
  f.fi.set(p, &FaultSettings::down_ms, 200u);
  f.fi.set(p, &FaultSettings::period_ms, 1000u);
  f.fi.set(p, &FaultSettings::probability, 50UL);
  f.fi.set(p, &FaultSettings::times, -1);
  f.fi.set_seed(7);
  REQUIRE(f.fi.start_flaps(6));  // periods at 1000, 2000, ..., 6000
  // Into a period in which a link is down.
  std::string record;
  std::set<std::string> held_then;
  for (int i = 0; i < 6 && record.empty(); ++i) {
    f.clock.advance(i == 0 ? 1100ms : 1000ms);
    if (held.empty()) continue;
    StateWriter w(1);
    f.fi.save_state(w);
    record = w.text();
    held_then = held;
  }
  REQUIRE_FALSE(record.empty());
  const auto then = f.clock.now();
  const auto left = f.fi.flaps_left();
  REQUIRE(left > 0);
  log.clear();
  f.clock.advance(8000ms);
  const auto first = log;
  REQUIRE_FALSE(first.empty());
  CHECK(f.fi.flaps_left() == 0);

  // Something else runs now: another schedule, a link held down.
  f.fi.set(p, &FaultSettings::probability, 100UL);
  REQUIRE(f.fi.start_flaps(3));
  f.clock.advance(1000ms);
  REQUIRE_FALSE(held.empty());

  f.clock.set_time(then);
  auto r = StateReader::parse(record);
  REQUIRE(r);
  REQUIRE(f.fi.load_state(*r));
  held = held_then;  // what the net record does
  CHECK(f.fi.flaps_left() == left);
  CHECK(f.fi.flap_active());
  CHECK(f.fi.settings(p).probability == 50UL);
  log.clear();
  f.clock.advance(8000ms);
  CHECK(log == first);
  CHECK(held.empty());

  // Bad schedules are EINVAL and change nothing.
  f.clock.set_time(then);
  REQUIRE(f.fi.load_state(*r));
  const char* const kBad[][2] = {
      {"fail.flap.left", "4294967296"},     {"fail.flap.left", "-1"},
      {"fail.flap.next_ns", "-1"},          {"fail.flap.up_due_ns", "x"},
      {"fail.flap.down", "eth1 eth0"},                                   // not in name order
      {"fail.flap.down", "eth0 eth0"},      {"fail.flap.down", "eth9"},  // no such interface
      {"fail.flap.down", "eth0 "},          {"fail.flap.down", " eth0"},
      {"fail.flap.down", "eth0  eth1"},     {"fail.flap.timer.pending", "2"},
      {"fail.flap.timer.expires_ns", "-5"}, {"fail.flap.timer.order", nullptr},
      {"fail.flap.down", nullptr},
  };
  for (const auto& [key, value] : kBad) {
    CAPTURE(key);
    CAPTURE(value ? value : "(absent)");
    auto bad = StateReader::parse(with_field(record, key, value));
    REQUIRE(bad);
    CHECK(f.fi.load_state(*bad).error() == vsysfs::core::Errno{EINVAL});
  }
  // A record without the schedule (an older build's) that says one ran
  // cannot be restored; one that says none ran is no schedule.
  std::string old = record;
  for (const char* key :
       {"fail.flap.left", "fail.flap.next_ns", "fail.flap.up_due_ns", "fail.flap.down",
        "fail.flap.timer.pending", "fail.flap.timer.expires_ns", "fail.flap.timer.order"})
    old = with_field(old, key, nullptr);
  auto old_running = StateReader::parse(with_field(old, "fail.flap_active", "1"));
  REQUIRE(old_running);
  CHECK(f.fi.load_state(*old_running).error() == vsysfs::core::Errno{EINVAL});
  CHECK(f.fi.flaps_left() == left);  // nothing changed
  CHECK(f.fi.settings(p).probability == 50UL);
  log.clear();
  f.clock.advance(8000ms);
  CHECK(log == first);
  auto old_idle = StateReader::parse(with_field(old, "fail.flap_active", "0"));
  REQUIRE(old_idle);
  REQUIRE(f.fi.start_flaps(2));
  REQUIRE(f.fi.load_state(*old_idle));
  CHECK_FALSE(f.fi.flap_active());
}

TEST_CASE(
    "snapshot record from before the lock and xen_decrease points: they come back as at mount") {
  using vsysfs::core::StateReader;
  using vsysfs::core::StateWriter;
  Fixture f;
  f.fi.set(FaultPoint::Lock, &FaultSettings::delay_ms, 900u);
  f.fi.set(FaultPoint::Lock, &FaultSettings::probability, 50UL);
  f.fi.set(FaultPoint::XenDecrease, &FaultSettings::grant_pages, std::uint64_t{7});
  f.fi.set(FaultPoint::Store, &FaultSettings::probability, 30UL);
  StateWriter w(1);
  f.fi.save_state(w);
  // The record without any fail.lock.* or fail.xen_decrease.* line.
  std::string old_text;
  std::string_view rest = w.text();
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl == rest.npos ? rest.size() : nl + 1);
    if (!line.starts_with("fail.lock.") && !line.starts_with("fail.xen_decrease."))
      old_text += line;
    rest.remove_prefix(line.size());
  }
  REQUIRE(old_text.size() < w.text().size());
  auto r = StateReader::parse(old_text);
  REQUIRE(r);
  REQUIRE(f.fi.load_state(*r));
  CHECK(f.fi.settings(FaultPoint::Lock).delay_ms ==
        vsysfs::core::FaultInjection::kLockDelayDefaultMs);
  CHECK(f.fi.settings(FaultPoint::Lock).probability == 0UL);
  CHECK(!f.fi.armed(FaultPoint::Lock));
  CHECK(f.fi.settings(FaultPoint::XenDecrease).grant_pages == 0u);
  CHECK(f.fi.settings(FaultPoint::Store).probability == 30UL);
}

}  // TEST_SUITE("fault_inject")
