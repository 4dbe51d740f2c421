// The balloon, its hypervisor and their knobs under concurrent use with the
// real (system) clock: writers, readers, the worker and the pacing timer at
// once. Nothing may crash or deadlock (the lock-order check is on in debug
// builds) and the accounts must balance afterwards.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/event_log.hpp"
#include "devices/xen/xen_balloon.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;
using devices::XenBalloon;
using devices::XenHypervisor;

TEST_SUITE("xen_balloon") {

TEST_CASE("concurrent stores, reads, worker and pacing keep the accounts balanced") {
  core::SystemClock clock;
  core::EventLog events{clock};
  core::Env env{clock, events};
  constexpr std::uint64_t kMiB = 256;  // pages
  XenHypervisor::DomainSpec guest{"guest", 1, 256 * kMiB, 256 * kMiB, 512 * kMiB, 0};
  std::vector<XenHypervisor::DomainSpec> others = {
      {"other", 2, 600 * kMiB, 300 * kMiB, 700 * kMiB, 40 * kMiB}};
  auto hv = std::make_shared<XenHypervisor>(env, 1024 * kMiB, guest, others);
  XenBalloon::Params params;
  params.target_pages = 256 * kMiB;
  params.max_schedule_delay = 0;  // retry every 4 ms: keep the worker busy
  auto balloon = std::make_shared<XenBalloon>(
      env, hv, devices::XenGuestMemory(256 * kMiB, 512 * kMiB, 0, 32 * kMiB), params);
  auto domain = hv->other_domains().at(0);
  clock.start();
  hv->start();

  const core::Caller root = core::Caller::root();
  std::atomic<bool> stop{false};
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // the toolstack moves this guest's target
    std::mt19937 rng(1);
    for (int i = 0; i < 300; ++i) {
      const std::string kb = std::to_string((128 + rng() % 384) * 1024) + "\n";
      (void)balloon->target_kb_store(root, kb);
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  threads.emplace_back([&] {  // host pressure comes and goes
    for (int i = 0; !stop; ++i) {
      (void)hv->host_free_kb_store(root, i % 2 ? "0\n" : "65536\n");
      (void)domain->target_kb_store(root, i % 3 ? "307200\n" : "614400\n");
      (void)hv->populate_fail_store(root, "1\n");
      std::this_thread::sleep_for(std::chrono::microseconds(700));
    }
  });
  threads.emplace_back([&] {  // the guest's workload
    std::mt19937 rng(2);
    for (int i = 0; !stop; ++i) {
      (void)balloon->used_kb_store(root, std::to_string((rng() % 128) * 1024) + "\n");
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  threads.emplace_back([&] {  // readers
    core::PageBuffer buf;
    while (!stop) {
      buf.clear();
      (void)testing::show(*balloon, "info/current_kb");
      (void)testing::show(*balloon, "schedule_delay");
      (void)testing::show(*balloon, "retry_count");
      (void)hv->host_free_kb_show(buf);
      std::string out;
      (void)hv->domains_show(out);
      if (!hv->consistent()) ++inconsistent;
    }
  });
  threads[0].join();
  stop = true;
  for (std::size_t i = 1; i < threads.size(); ++i) threads[i].join();

  CHECK(inconsistent == 0);
  CHECK(hv->consistent());
  CHECK(balloon->accounts_agree());
  CHECK(events.last_seq() > 300);
  // Stop the timers before the objects go (the destructors also do it).
  balloon.reset();
  hv.reset();
}

}  // TEST_SUITE
