#pragma once

// Weakly ordered memory-mapped I/O (Documentation/driver-api/io_ordering.rst;
// docs/kernel-semantics.md section 6).
//
// An MmioBus sits between the simulated CPUs and one device (MmioTarget).
// writel() from CPU n is *posted*: it enters CPU n's queue in the I/O
// chipset and reaches the device later. Writes of one CPU reach the device
// in program order (readX/writeX guarantee 1), but writes of different CPUs
// may overtake each other: after every posted write the chipset delivers
// the head of a randomly chosen CPU queue zero or more times (a seeded
// mt19937_64, so a run is reproducible from its seed and its sequence of
// calls). readl() from CPU n first flushes CPU n's posted writes to the
// device in order, then reads: the "safe register" read of io_ordering.txt.
// drain() delivers everything (time passes; the chipset empties its
// buffers) in a random interleaving of the CPU queues.
//
// The bus does not interpret registers; the target sees each write when it
// arrives and answers each read.
//
// Thread-safety: every member may be called from any thread; one internal
// lock (rank given at construction; the target's callbacks run under it,
// so the target may only take locks of higher rank).

#include <cstdint>
#include <list>
#include <random>
#include <string>
#include <vector>

#include "core/locks.hpp"

namespace vsysfs::core {

class MmioTarget {
 public:
  virtual ~MmioTarget() = default;
  // A posted write reached the device. Called with the bus lock held.
  virtual void mmio_write(std::uint32_t offset, std::uint32_t value) = 0;
  // A read was posted after the reading CPU's writes were flushed.
  virtual std::uint32_t mmio_read(std::uint32_t offset) = 0;
};

struct MmioStats {
  std::uint64_t posted = 0;     // writel() calls
  std::uint64_t delivered = 0;  // writes that reached the device
  std::uint64_t reads = 0;      // readl() calls
  std::uint64_t flushes = 0;    // reads that had posted writes of their CPU to flush
  std::uint64_t reordered = 0;  // writes delivered before an older write of another CPU
};

class MmioBus {
 public:
  MmioBus(MmioTarget& target, unsigned ncpus, std::uint64_t seed, const char* lock_name,
          int lock_rank);
  MmioBus(const MmioBus&) = delete;
  MmioBus& operator=(const MmioBus&) = delete;

  // writel(value, base + offset) issued by simulated CPU `cpu` (taken modulo
  // the CPU count).
  void writel(unsigned cpu, std::uint32_t offset, std::uint32_t value);
  // readl(base + offset) by `cpu`: flushes that CPU's posted writes first.
  std::uint32_t readl(unsigned cpu, std::uint32_t offset);
  // Delivers every posted write (random interleaving, per-CPU order kept).
  void drain();
  // `n` times what a writel() of one CPU followed at once by a readl() of
  // the same CPU does while nothing else is posted: the same random draws
  // and statistics, without calling the target. The caller applies what
  // the writes and reads did to its device itself (a batch of transmits
  // whose doorbells each reach the device inside their own xmit, in
  // order; devices/net/netdev_traffic_batch.cpp). false, and nothing
  // done, when a write is posted.
  bool flushed_write_reads(std::uint64_t n);

  // Restarts the chipset's random sequence (pending writes are kept).
  void reseed(std::uint64_t seed);
  std::uint64_t seed() const;
  std::size_t pending() const;
  unsigned ncpus() const { return ncpus_; }
  MmioStats stats() const;

  // Snapshot support (docs/snapshot.md "Device state"): the writes each
  // CPU has posted, the chipset's random sequence (std::mt19937_64's text
  // form, so the same interleavings follow) and the counters.
  struct Posted {
    std::uint64_t seq;
    std::uint32_t offset;
    std::uint32_t value;
  };
  struct State {
    std::vector<std::vector<Posted>> queues;  // one per CPU: ncpus()
    std::string rng;
    std::uint64_t seed = 0;
    std::uint64_t next_seq = 1;
    MmioStats stats;
  };
  State state() const;
  // Whether set_state would take `s` (the CPU count matches, the random
  // sequence parses). set_state takes only a state that passed.
  bool check_state(const State& s) const;
  void set_state(const State& s);

 private:
  void deliver_head_locked(std::size_t q) REQUIRES(mu_);
  // Picks a random non-empty queue; false when all are empty.
  bool pick_locked(std::size_t* q) REQUIRES(mu_);

  MmioTarget& target_;
  const unsigned ncpus_;  // queues_.size(), fixed at construction
  mutable Mutex mu_;
  // One queue per CPU. A list, not a deque: an empty std::deque allocates
  // its map and first chunk (about 600 bytes), and a NIC has a queue for
  // each of nr_cpu_ids CPUs, nearly all empty (docs/performance.md: a 256-CPU machine
  // with 248 NICs spent 40 MB on empty queues).
  std::vector<std::list<Posted>> queues_ GUARDED_BY(mu_);
  std::mt19937_64 rng_ GUARDED_BY(mu_);
  std::uint64_t seed_ GUARDED_BY(mu_);
  std::uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  MmioStats stats_ GUARDED_BY(mu_);
};

}  // namespace vsysfs::core
