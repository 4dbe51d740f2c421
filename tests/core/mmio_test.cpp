// core/mmio: posted writes per simulated CPU, seeded reordering, flushing
// reads (Documentation/driver-api/io_ordering.rst, docs/kernel-semantics.md section 6).

#include "core/mmio.hpp"

#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "core/locks.hpp"

using namespace vsysfs::core;

namespace {

// A device with a ring pointer (doorbell) that must only move forward, and
// a safe status register (reads have no side effects).
struct RingDevice : MmioTarget {
  static constexpr std::uint32_t kRingPtr = 0x10, kStatus = 0x00;
  void mmio_write(std::uint32_t offset, std::uint32_t value) override {
    seen.push_back(value);
    if (offset != kRingPtr) return;
    if (value < last) ++backwards;
    last = value;
  }
  std::uint32_t mmio_read(std::uint32_t) override { return 0x1; }
  std::uint32_t last = 0;
  std::uint64_t backwards = 0;
  std::vector<std::uint32_t> seen;
};

// The example of io_ordering.txt: CPUs take dev_lock in turn, each writes
// the next ring pointer, with or without the read of a safe register
// before unlocking. Returns the backwards moves the device saw.
std::uint64_t run_io_ordering(std::uint64_t seed, bool flushing_read, unsigned ncpus = 2,
                              unsigned writes = 32) {
  RingDevice dev;
  MmioBus bus(dev, ncpus, seed, "test.mmio", 0);
  Mutex dev_lock{"test.dev_lock"};
  std::mt19937_64 sched(seed ^ 0x9e3779b97f4a7c15ULL);  // which CPU gets the lock next
  for (std::uint32_t v = 1; v <= writes; ++v) {
    const unsigned cpu = static_cast<unsigned>(sched() % ncpus);
    MutexLock lock(dev_lock);  // spin_lock_irqsave(&dev_lock, flags)
    (void)bus.readl(cpu, RingDevice::kStatus);  // val = readl(my_status)
    bus.writel(cpu, RingDevice::kRingPtr, v);    // writel(newval, ring_ptr)
    if (flushing_read) (void)bus.readl(cpu, RingDevice::kStatus);  // (void)readl(safe_register)
  }                                              // spin_unlock_irqrestore
  bus.drain();
  return dev.backwards;
}

}  // namespace

TEST_SUITE("mmio") {

TEST_CASE("io_ordering: with the flushing read the ring pointer never moves backwards") {
  constexpr std::uint64_t kRuns = 5000;
  std::uint64_t with = 0, without = 0, runs_with_error = 0;
  for (std::uint64_t seed = 0; seed < kRuns; ++seed) {
    with += run_io_ordering(seed, true);
    const auto b = run_io_ordering(seed, false);
    without += b;
    runs_with_error += b != 0;
  }
  MESSAGE("without the flushing read: " << without << " backwards moves in " << runs_with_error
                                        << " of " << kRuns << " seeded runs");
  CHECK(with == 0);
  CHECK(without > 0);
  CHECK(runs_with_error > kRuns / 10);
}

TEST_CASE("a seed reproduces its delivery order; seeds differ") {
  auto order = [](std::uint64_t seed) {
    RingDevice dev;
    MmioBus bus(dev, 4, seed, "test.mmio", 0);
    for (std::uint32_t v = 1; v <= 64; ++v) bus.writel(v % 4, RingDevice::kRingPtr, v);
    bus.drain();
    return dev.seen;
  };
  CHECK(order(42) == order(42));
  CHECK(order(42) != order(43));
  CHECK(order(42).size() == 64);
}

TEST_CASE("one CPU's writes arrive in program order; a read flushes only that CPU") {
  RingDevice dev;
  MmioBus bus(dev, 2, 7, "test.mmio", 0);
  for (std::uint32_t v = 1; v <= 200; ++v) bus.writel(0, RingDevice::kRingPtr, v);
  bus.drain();
  CHECK(dev.backwards == 0);
  CHECK(dev.seen.size() == 200);

  RingDevice dev2;
  MmioBus bus2(dev2, 2, 0, "test.mmio", 0);
  // Post until each CPU holds at least one write.
  std::uint32_t v = 0;
  while (bus2.pending() < 2 || dev2.seen.size() + bus2.pending() < 2) {
    const std::uint32_t cpu = v % 2;
    bus2.writel(cpu, 0x10, ++v);
  }
  std::size_t before = bus2.pending();
  (void)bus2.readl(0, RingDevice::kStatus);
  const auto s = bus2.stats();
  CHECK(s.reads == 1);
  CHECK(bus2.pending() <= before);
  // Whatever CPU 1 still has posted stays posted until someone flushes it.
  const std::size_t left = bus2.pending();
  (void)bus2.readl(1, RingDevice::kStatus);
  CHECK(bus2.pending() == 0);
  CHECK(bus2.stats().flushes == (before > left ? 1u : 0u) + (left > 0 ? 1u : 0u));
  CHECK(bus2.stats().delivered + bus2.pending() == bus2.stats().posted);
}

TEST_CASE("stats count what happened") {
  RingDevice dev;
  MmioBus bus(dev, 2, 1, "test.mmio", 0);
  for (std::uint32_t v = 1; v <= 1000; ++v) bus.writel(v % 2, RingDevice::kRingPtr, v);
  bus.drain();
  const auto s = bus.stats();
  CHECK(s.posted == 1000);
  CHECK(s.delivered == 1000);
  CHECK(s.reordered > 0);
  CHECK(dev.backwards > 0);
  CHECK(bus.seed() == 1);
}

TEST_CASE("flushed_write_reads: the draws and counts of a writel + readl per doorbell") {
  // The traffic batches replay doorbells this way: the same statistics and
  // the same random sequence afterwards as the calls, for every seed.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    RingDevice a, b;
    MmioBus real(a, 4, seed, "test.mmio", 0), batch(b, 4, seed, "test.mmio", 0);
    const std::uint64_t n = 50 + seed * 37;
    for (std::uint32_t v = 1; v <= n; ++v) {
      real.writel(v % 3, RingDevice::kRingPtr, v);
      (void)real.readl(v % 3, RingDevice::kStatus);
    }
    REQUIRE(batch.flushed_write_reads(n));
    const auto ra = real.stats(), rb = batch.stats();
    CHECK(ra.posted == rb.posted);
    CHECK(ra.delivered == rb.delivered);
    CHECK(ra.reads == rb.reads);
    CHECK(ra.flushes == rb.flushes);
    CHECK(ra.reordered == rb.reordered);
    CHECK(b.seen.empty());  // the caller applies the writes itself
    // The random sequence goes on alike: later reorderings are the same.
    a.seen.clear();
    for (std::uint32_t v = 1; v <= 200; ++v) {
      real.writel(v % 4, RingDevice::kRingPtr, v);
      batch.writel(v % 4, RingDevice::kRingPtr, v);
    }
    real.drain();
    batch.drain();
    CHECK(a.seen == b.seen);
    CHECK(real.stats().reordered == batch.stats().reordered);
  }
  // Not with a write posted: nothing happens.
  RingDevice d;
  MmioBus bus(d, 2, 1, "test.mmio", 0);
  bus.writel(1, RingDevice::kRingPtr, 1);
  while (bus.pending() == 0) bus.writel(1, RingDevice::kRingPtr, 2);
  const auto before = bus.stats();
  CHECK_FALSE(bus.flushed_write_reads(5));
  CHECK(bus.stats().posted == before.posted);
}

}  // TEST_SUITE
