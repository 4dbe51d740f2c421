#include "core/mmio.hpp"

#include <sstream>

namespace vsysfs::core {

MmioBus::MmioBus(MmioTarget& target, unsigned ncpus, std::uint64_t seed, const char* lock_name,
                 int lock_rank)
    : target_(target),
      ncpus_(ncpus == 0 ? 1 : ncpus),
      mu_(lock_name, lock_rank),
      queues_(ncpus_),
      rng_(seed),
      seed_(seed) {}

void MmioBus::writel(unsigned cpu, std::uint32_t offset, std::uint32_t value) {
  MutexLock lock(mu_);
  auto& q = queues_[cpu % ncpus_];
  q.push_back({next_seq_++, offset, value});
  ++stats_.posted;
  // The chipset forwards some of what it holds, in no particular CPU order:
  // each round delivers one queue head with probability 1/2.
  std::size_t pick;
  while ((rng_() & 1U) != 0 && pick_locked(&pick)) deliver_head_locked(pick);
}

std::uint32_t MmioBus::readl(unsigned cpu, std::uint32_t offset) {
  MutexLock lock(mu_);
  ++stats_.reads;
  const std::size_t q = cpu % ncpus_;
  if (!queues_[q].empty()) ++stats_.flushes;
  // io_ordering.txt: the read makes the chipset flush this CPU's pending
  // writes before the read itself is posted.
  while (!queues_[q].empty()) deliver_head_locked(q);
  return target_.mmio_read(offset);
}

void MmioBus::drain() {
  MutexLock lock(mu_);
  std::size_t pick;
  while (pick_locked(&pick)) deliver_head_locked(pick);
}

bool MmioBus::flushed_write_reads(std::uint64_t n) {
  MutexLock lock(mu_);
  for (const auto& q : queues_)
    if (!q.empty()) return false;
  for (std::uint64_t i = 0; i < n; ++i) {
    // writel: the one posted write is the only queue head; each round
    // delivers it with probability 1/2 (pick_locked draws once among one
    // queue), and the round after finds nothing to pick (no draw).
    ++next_seq_;
    ++stats_.posted;
    ++stats_.delivered;
    ++stats_.reads;
    if ((rng_() & 1U) != 0) {
      (void)rng_();  // pick_locked: rng_() % 1
      (void)rng_();  // the next round's coin; pick_locked finds no queue
    } else {
      ++stats_.flushes;  // readl flushes it
    }
  }
  return true;
}

void MmioBus::reseed(std::uint64_t seed) {
  MutexLock lock(mu_);
  seed_ = seed;
  rng_.seed(seed);
}

std::uint64_t MmioBus::seed() const {
  MutexLock lock(mu_);
  return seed_;
}

std::size_t MmioBus::pending() const {
  MutexLock lock(mu_);
  std::size_t n = 0;
  for (const auto& q : queues_) n += q.size();
  return n;
}

MmioStats MmioBus::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

bool MmioBus::pick_locked(std::size_t* q) {
  std::size_t nonempty = 0;
  for (const auto& x : queues_) nonempty += x.empty() ? 0 : 1;
  if (nonempty == 0) return false;
  std::size_t k = static_cast<std::size_t>(rng_() % nonempty);
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    if (queues_[i].empty()) continue;
    if (k-- == 0) {
      *q = i;
      return true;
    }
  }
  return false;
}

void MmioBus::deliver_head_locked(std::size_t q) {
  const Posted p = queues_[q].front();
  queues_[q].pop_front();
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    if (i != q && !queues_[i].empty() && queues_[i].front().seq < p.seq) {
      ++stats_.reordered;
      break;
    }
  }
  ++stats_.delivered;
  target_.mmio_write(p.offset, p.value);
}

MmioBus::State MmioBus::state() const {
  MutexLock lock(mu_);
  State s;
  for (const auto& q : queues_) s.queues.emplace_back(q.begin(), q.end());
  std::ostringstream rng;
  rng << rng_;
  s.rng = rng.str();
  s.seed = seed_;
  s.next_seq = next_seq_;
  s.stats = stats_;
  return s;
}

bool MmioBus::check_state(const State& s) const {
  if (s.queues.size() != ncpus_) return false;
  std::istringstream in(s.rng);
  std::mt19937_64 rng;
  in >> rng;
  if (in.fail()) return false;
  in >> std::ws;
  return in.eof();
}

void MmioBus::set_state(const State& s) {
  std::istringstream in(s.rng);
  std::mt19937_64 rng;
  in >> rng;
  MutexLock lock(mu_);
  for (std::size_t i = 0; i < queues_.size(); ++i)
    queues_[i].assign(s.queues[i].begin(), s.queues[i].end());
  rng_ = rng;
  seed_ = s.seed;
  next_seq_ = s.next_seq;
  stats_ = s.stats;
}

}  // namespace vsysfs::core
