// Seeded random sequences against core/lock_service, checked step by step
// against a reference model of who holds what (fs/locks.c semantics).
//
// Owners: three processes (POSIX locks through two open files each per
// file), three OFD descriptions (POSIX requests owned by the description,
// each on one file), three flock descriptions; two files; a few ranges.
// Steps: flock / F_SETLK / F_SETLKW / F_OFD_SETLK(W) sets and unlocks,
// cancels (interrupts) of waiting requests, and closes: a process's close
// (FLUSH: its POSIX locks on the file go, then RELEASE of its description),
// an OFD description's last close (FLUSH of the closing process, RELEASE),
// a flock description's last close. An owner with a waiting request makes
// no other request and is not closed (one thread per owner: the waiting
// thread holds its file).
//
// After every step:
//  - the lock table (LockService::held) equals the model, byte for byte,
//    including the open file each POSIX piece came through;
//  - every grant was compatible with what the model held at that moment;
//  - nobody waits on a free lock: in every lock domain with waiters, one
//    of them conflicts with a granted lock; and a POSIX waiter that
//    conflicts with nothing waits behind such a blocked waiter that does
//    not itself wait for it (else it would wait for ever);
//  - no cycle of waiting POSIX owners is left (it would be a deadlock the
//    service did not report);
//  - EDEADLK answers match the model's cycle detection (through conflicting
//    locks, as posix_locks_deadlock), at the request and later; flock and
//    non-blocking requests never wait or get EDEADLK; EAGAIN only with a
//    conflict or with waiters in the domain (the fairness rule).
// A failure prints the seed, the step list, the model and the service's
// table. VSYSFS_LOCK_SEED=N runs that seed alone, VSYSFS_LOCK_SEEDS=N
// seeds 1..N, VSYSFS_LOCK_STEPS=N changes the steps per seed, and
// VSYSFS_LOCK_TRACE=1 prints the state after every step.

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/lock_service.hpp"
#include "tests/support/test_env.hpp"

namespace {

using namespace vsysfs::core;
using vsysfs::testing::TestEnv;

constexpr int kSeeds = 300;
constexpr int kSteps = 300;
constexpr std::uint64_t kKeys[] = {1, 2};
constexpr PosixRange kRanges[] = {{0, 9},   {5, 14},         {10, 19},
                                  {20, 29}, {0, UINT64_MAX}, {15, UINT64_MAX}};
constexpr int kPrios[] = {100, 120, 139};

// Owner ids: processes 1-3, OFD descriptions 101-103 and flock
// descriptions 201-203 (an open file description is of one file:
// description x is of file 1 + (x-1) % 2).
constexpr std::uint64_t kProcs[] = {1, 2, 3};
constexpr std::uint64_t kOfds[] = {101, 102, 103};
constexpr std::uint64_t kFlocks[] = {201, 202, 203};
std::uint64_t desc_key(std::uint64_t o) { return 1 + (o - 1) % 2; }
// A process's two open files of `key`: the FUSE handles its locks come through.
std::uint64_t proc_file(std::uint64_t p, std::uint64_t key, int which) {
  return 1000 + 100 * p + 10 * key + static_cast<std::uint64_t>(which);
}

bool overlaps(PosixRange a, PosixRange b) { return a.start <= b.end && b.start <= a.end; }

struct MLock {
  bool flock;
  std::uint64_t key, owner;
  LockType type;
  PosixRange range;
  std::uint64_t file;
};

struct MReq {
  std::uint64_t id;
  LockService::Ticket ticket;
  bool flock;
  std::uint64_t key, owner;
  LockType type;
  PosixRange range;
  std::uint64_t file;
  bool wait;
  std::string desc;
};

const char* tname(LockType t) {
  return t == LockType::Read ? "R" : t == LockType::Write ? "W" : "U";
}
std::string rname(PosixRange r) {
  return std::to_string(r.start) + "-" + (r.end == UINT64_MAX ? "EOF" : std::to_string(r.end));
}

class Run {
 public:
  explicit Run(unsigned seed) : rng_(seed), svc_(env_.env) {
    for (auto o : kProcs) prio_[o] = pick(kPrios);
    for (auto o : kOfds) prio_[o] = pick(kPrios);
    for (auto o : kFlocks) prio_[o] = pick(kPrios);
  }
  ~Run() { results_.clear(); }

  // Runs `steps` random steps; returns the first failure ("" if none).
  std::string go(int steps) {
    for (int i = 0; i < steps && failure_.empty(); ++i) {
      step();
      if (trace_)
        std::fprintf(stderr, "%zu. %s\n%s\n", log_.size(), log_.empty() ? "" : log_.back().c_str(),
                     state().c_str());
      if (failure_.empty()) check_state();
    }
    return failure_;
  }
  const std::vector<std::string>& log() const { return log_; }
  struct Stats {
    int granted = 0, waited = 0, deadlocks = 0, eagain = 0, eintr = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  template <typename T, std::size_t N>
  T pick(const T (&a)[N]) {
    return a[std::uniform_int_distribution<std::size_t>(0, N - 1)(rng_)];
  }
  int roll(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  void fail(const std::string& why) {
    if (!failure_.empty()) return;
    failure_ = "step " + std::to_string(log_.size()) + ": " + why + "\n" + state();
  }
  std::string state() const {
    std::ostringstream d;
    d << "model held:";
    for (const MLock& h : held_)
      d << " [" << (h.flock ? "flock" : "posix") << " k" << h.key << " o" << h.owner << " "
        << tname(h.type) << " " << rname(h.range) << " f" << h.file << "]";
    d << "\nwaiting:";
    for (const auto& [id, q] : pending_) d << " [" << q.desc << "]";
    std::string table;
    const_cast<LockService&>(svc_).render(table);
    d << "\nservice contended table:\n" << table;
    return d.str();
  }

  bool busy(std::uint64_t owner) const {
    return std::any_of(pending_.begin(), pending_.end(),
                       [&](const auto& kv) { return kv.second.owner == owner; });
  }

  static bool conflict(const MLock& h, bool flock, std::uint64_t key, std::uint64_t owner,
                       LockType type, PosixRange range) {
    if (h.flock != flock || h.key != key || h.owner == owner) return false;
    if (type == LockType::Read && h.type == LockType::Read) return false;
    return flock || overlaps(h.range, range);
  }
  bool conflicts(const MReq& r) const {
    return std::any_of(held_.begin(), held_.end(), [&](const MLock& h) {
      return conflict(h, r.flock, r.key, r.owner, r.type, r.range);
    });
  }
  // Owners whose granted locks r conflicts with.
  std::set<std::uint64_t> blockers(const MReq& r) const {
    std::set<std::uint64_t> out;
    for (const MLock& h : held_)
      if (conflict(h, r.flock, r.key, r.owner, r.type, r.range)) out.insert(h.owner);
    return out;
  }
  // Does a chain of waiting POSIX owners (through conflicting locks) lead
  // from the blockers of r back to r's owner?
  bool cycle_from(const MReq& r) const {
    if (r.flock) return false;
    std::set<std::uint64_t> seen;
    std::deque<std::uint64_t> todo;
    for (auto o : blockers(r)) todo.push_back(o);
    while (!todo.empty()) {
      const auto o = todo.front();
      todo.pop_front();
      if (o == r.owner) return true;
      if (!seen.insert(o).second) continue;
      for (const auto& [id, q] : pending_)
        if (!q.flock && q.owner == o && q.id != r.id)
          for (auto b : blockers(q)) todo.push_back(b);
    }
    return false;
  }

  void model_apply(const MReq& r) {
    model_drop(r.flock, r.key, r.owner, r.range);
    if (r.type != LockType::Unlock)
      held_.push_back({r.flock, r.key, r.owner, r.type, r.range, r.file});
  }
  void model_drop(bool flock, std::uint64_t key, std::uint64_t owner, PosixRange range) {
    std::vector<MLock> kept;
    for (const MLock& h : held_) {
      if (h.flock != flock || h.key != key || h.owner != owner ||
          (!flock && !overlaps(h.range, range))) {
        kept.push_back(h);
        continue;
      }
      if (flock) continue;
      if (h.range.start < range.start) {
        MLock left = h;
        left.range.end = range.start - 1;
        kept.push_back(left);
      }
      if (h.range.end > range.end) {
        MLock right = h;
        right.range.start = range.end + 1;
        kept.push_back(right);
      }
    }
    held_ = std::move(kept);
  }

  // Issues r; completions are handled after the call, in callback order.
  void issue(MReq r) {
    r.id = next_id_++;
    r.ticket = svc_.new_ticket();
    log_.push_back(r.desc);
    const bool expect_deadlock = r.wait && cycle_from(r);
    const bool was_conflicting = conflicts(r);
    const bool domain_waiters = std::any_of(pending_.begin(), pending_.end(), [&](const auto& kv) {
      return kv.second.flock == r.flock && kv.second.key == r.key;
    });
    pending_[r.id] = r;
    const auto id = r.id;
    auto done = [this, id](Status st) { results_.push_back({id, st}); };
    if (r.flock)
      svc_.flock(r.ticket, r.key, "f" + std::to_string(r.key),
                 {r.owner, 0, "t", prio_[r.owner], 0, r.file}, r.type, r.wait, done);
    else
      svc_.setlk(r.ticket, r.key, "f" + std::to_string(r.key),
                 {r.owner, 0, "t", prio_[r.owner], 0, r.file}, r.type, r.range, r.wait, done);
    // The request's own answer, if it came at once.
    std::optional<Status> own;
    for (const auto& [rid, st] : results_)
      if (rid == id) own = st;
    if (!own) ++stats_.waited;
    if (r.type != LockType::Unlock) {
      if (!r.wait && !own) fail("a non-blocking request waits: " + r.desc);
      if (r.wait && !r.flock) {
        const bool got_deadlock = own && !*own && own->error() == Errno{EDEADLK};
        if (got_deadlock != expect_deadlock)
          fail(std::string(expect_deadlock ? "missed" : "false") + " EDEADLK: " + r.desc);
      }
      if (own && !*own && own->error() == Errno{EAGAIN} && !was_conflicting && !domain_waiters)
        fail("EAGAIN without a conflict or a waiter: " + r.desc);
    }
    drain();
  }

  void drain() {
    while (!results_.empty()) {
      const auto [id, st] = results_.front();
      results_.pop_front();
      auto it = pending_.find(id);
      if (it == pending_.end()) {
        fail("a second completion of request " + std::to_string(id));
        continue;
      }
      const MReq r = it->second;
      pending_.erase(it);
      if (st) {
        ++stats_.granted;
        if (r.type != LockType::Unlock && conflicts(r))
          fail("granted over a conflicting lock: " + r.desc);
        model_apply(r);
        continue;
      }
      const int e = st.error().value();
      stats_.deadlocks += e == EDEADLK;
      stats_.eagain += e == EAGAIN;
      stats_.eintr += e == EINTR;
      if (e == EDEADLK) {
        if (r.flock || !r.wait) fail("EDEADLK for a flock or non-blocking request: " + r.desc);
        // A later answer: the chain closed while it waited.
        if (!cycle_from(r)) fail("EDEADLK without a cycle: " + r.desc);
      } else if (e == EAGAIN) {
        if (r.wait) fail("EAGAIN for a blocking request: " + r.desc);
      } else if (e != EINTR) {
        fail("unexpected errno " + std::to_string(e) + ": " + r.desc);
      }
    }
  }

  void step() {
    const int what = roll(10);
    if (what == 0 && !pending_.empty()) {  // an interrupt
      auto it = pending_.begin();
      std::advance(it, roll(static_cast<int>(pending_.size())));
      log_.push_back("cancel " + it->second.desc);
      svc_.cancel(it->second.ticket);
      drain();
      return;
    }
    if (what == 1) return close_one();
    // A lock request by an owner that does not wait already.
    const int kind = roll(3);
    MReq r{};
    std::ostringstream d;
    if (kind == 0) {
      r.flock = true;
      r.owner = pick(kFlocks);
      r.key = desc_key(r.owner);
      r.file = r.owner;
      const int t = roll(5);
      r.type = t == 0 ? LockType::Unlock : t <= 2 ? LockType::Read : LockType::Write;
      r.wait = roll(3) != 0;
      d << "flock owner=" << r.owner << " key=" << r.key << " " << tname(r.type)
        << (r.wait ? "" : " nb");
    } else {
      r.flock = false;
      r.owner = kind == 1 ? pick(kProcs) : pick(kOfds);
      r.key = kind == 1 ? pick(kKeys) : desc_key(r.owner);
      r.file = kind == 1 ? proc_file(r.owner, r.key, roll(2)) : r.owner;
      const int t = roll(5);
      r.type = t == 0 ? LockType::Unlock : t <= 2 ? LockType::Read : LockType::Write;
      r.range = pick(kRanges);
      r.wait = roll(3) != 0;
      d << (kind == 1 ? "setlk" : "ofd") << (r.wait ? "w" : "") << " owner=" << r.owner
        << " key=" << r.key << " file=" << r.file << " " << tname(r.type) << " " << rname(r.range);
    }
    if (busy(r.owner)) return;
    r.desc = d.str();
    // flock_lock_inode: a conversion drops the old lock first.
    if (r.flock && r.type != LockType::Unlock) {
      auto own = std::find_if(held_.begin(), held_.end(), [&](const MLock& h) {
        return h.flock && h.key == r.key && h.owner == r.owner;
      });
      if (own != held_.end() && own->type != r.type) model_drop(true, r.key, r.owner, {});
    }
    if (r.type == LockType::Unlock) model_drop(r.flock, r.key, r.owner, r.range);
    issue(r);
  }

  void close_one() {
    const int kind = roll(3);
    const auto key = pick(kKeys);
    if (kind == 0) {  // a process closes one of its files of `key`
      const auto p = pick(kProcs);
      if (busy(p)) return;
      const auto file = proc_file(p, key, roll(2));
      log_.push_back("close process=" + std::to_string(p) + " key=" + std::to_string(key) +
                     " file=" + std::to_string(file));
      model_drop(false, key, p, {});
      std::erase_if(held_,
                    [&](const MLock& h) { return !h.flock && h.key == key && h.file == file; });
      svc_.release_posix(key, p);
      svc_.release_file(key, file);
    } else if (kind == 1) {  // an OFD description's last close, by a process
      const auto o = pick(kOfds);
      const auto p = pick(kProcs);
      if (busy(o) || busy(p)) return;
      const auto k = desc_key(o);
      log_.push_back("close ofd=" + std::to_string(o) + " by process=" + std::to_string(p));
      model_drop(false, k, p, {});
      std::erase_if(held_, [&](const MLock& h) { return !h.flock && h.key == k && h.file == o; });
      svc_.release_posix(k, p);
      svc_.release_file(k, o);
    } else {  // a flock description's last close
      const auto f = pick(kFlocks);
      if (busy(f)) return;
      const auto k = desc_key(f);
      log_.push_back("close flock=" + std::to_string(f) + " key=" + std::to_string(k));
      model_drop(true, k, f, {});
      svc_.release_flock(k, f);
    }
    drain();
  }

  // The table, per key, domain and owner, as elementary byte intervals.
  using Cover = std::map<std::tuple<bool, std::uint64_t, std::uint64_t>,
                         std::vector<std::tuple<std::uint64_t, std::uint64_t, int, std::uint64_t>>>;
  static Cover cover(const std::vector<MLock>& locks) {
    Cover c;
    for (const MLock& h : locks)
      c[{h.flock, h.key, h.owner}].push_back(
          {h.range.start, h.range.end, static_cast<int>(h.type), h.flock ? 0 : h.file});
    for (auto& [k, v] : c) {
      std::sort(v.begin(), v.end());
      // Merge touching pieces of the same type and file.
      std::vector<std::tuple<std::uint64_t, std::uint64_t, int, std::uint64_t>> m;
      for (auto& x : v) {
        if (!m.empty() && std::get<2>(m.back()) == std::get<2>(x) &&
            std::get<3>(m.back()) == std::get<3>(x) && std::get<1>(m.back()) != UINT64_MAX &&
            std::get<1>(m.back()) + 1 == std::get<0>(x))
          std::get<1>(m.back()) = std::get<1>(x);
        else
          m.push_back(x);
      }
      v = std::move(m);
    }
    return c;
  }

  void check_state() {
    std::vector<MLock> actual;
    for (auto key : kKeys)
      for (const HeldLock& h : svc_.held(key))
        actual.push_back({h.flock, key, h.owner.owner, h.type, h.range, h.owner.file});
    if (cover(actual) != cover(held_)) {
      std::ostringstream d;
      d << "lock table differs from the model. service:";
      for (auto& h : actual)
        d << " [" << (h.flock ? "flock" : "posix") << " k" << h.key << " o" << h.owner << " "
          << tname(h.type) << " " << rname(h.range) << " f" << h.file << "]";
      d << " model:";
      for (auto& h : held_)
        d << " [" << (h.flock ? "flock" : "posix") << " k" << h.key << " o" << h.owner << " "
          << tname(h.type) << " " << rname(h.range) << " f" << h.file << "]";
      return fail(d.str());
    }
    // Nobody waits on a free lock.
    std::map<std::pair<bool, std::uint64_t>, std::vector<const MReq*>> domains;
    for (const auto& [id, q] : pending_) domains[{q.flock, q.key}].push_back(&q);
    for (const auto& [dom, qs] : domains) {
      std::vector<const MReq*> blocked;
      for (const MReq* q : qs)
        if (conflicts(*q)) blocked.push_back(q);
      if (blocked.empty())
        return fail("every waiter of a domain could have the lock: " + qs[0]->desc);
      if (dom.first) continue;
      for (const MReq* q : qs) {
        if (conflicts(*q)) continue;
        // q waits for the turn: behind a blocked waiter that does not wait
        // for q's owner.
        const bool fair = std::any_of(blocked.begin(), blocked.end(), [&](const MReq* b) {
          if (b->owner == q->owner) return false;
          // Does a chain from b's blockers reach q's owner?
          std::set<std::uint64_t> seen;
          std::deque<std::uint64_t> todo;
          for (auto o : blockers(*b)) todo.push_back(o);
          while (!todo.empty()) {
            const auto o = todo.front();
            todo.pop_front();
            if (o == q->owner) return false;
            if (!seen.insert(o).second) continue;
            for (const auto& [id2, w] : pending_)
              if (!w.flock && w.owner == o)
                for (auto x : blockers(w)) todo.push_back(x);
          }
          return true;
        });
        if (!fair) return fail("a waiter waits for a turn that waits for it: " + q->desc);
      }
    }
    // No deadlock left unreported.
    for (const auto& [id, q] : pending_)
      if (!q.flock && cycle_from(q)) return fail("an unreported cycle through " + q.desc);
  }

  std::mt19937 rng_;
  TestEnv env_;
  LockService svc_;
  std::map<std::uint64_t, int> prio_;
  std::vector<MLock> held_;
  std::map<std::uint64_t, MReq> pending_;
  std::deque<std::pair<std::uint64_t, Status>> results_;
  std::vector<std::string> log_;
  std::string failure_;
  std::uint64_t next_id_ = 1;
  Stats stats_;
  const bool trace_ = std::getenv("VSYSFS_LOCK_TRACE") != nullptr;
};

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

}  // namespace

TEST_SUITE("lock_service") {
  TEST_CASE("random sequences: the lock table follows the model, no lost wake-up, deadlocks") {
    const int steps = env_int("VSYSFS_LOCK_STEPS", kSteps);
    const int one = env_int("VSYSFS_LOCK_SEED", -1);
    const int first = one >= 0 ? one : 1;
    const int last = one >= 0 ? one : env_int("VSYSFS_LOCK_SEEDS", kSeeds);
    Run::Stats total;
    for (int seed = first; seed <= last; ++seed) {
      Run run(static_cast<unsigned>(seed));
      const std::string failure = run.go(steps);
      total.granted += run.stats().granted;
      total.waited += run.stats().waited;
      total.deadlocks += run.stats().deadlocks;
      total.eagain += run.stats().eagain;
      total.eintr += run.stats().eintr;
      if (!failure.empty()) {
        std::ostringstream d;
        d << "seed " << seed << " (VSYSFS_LOCK_SEED=" << seed << "): " << failure << "\nsteps:\n";
        for (std::size_t i = 0; i < run.log().size(); ++i)
          d << "  " << i + 1 << ". " << run.log()[i] << "\n";
        FAIL(d.str());
        break;
      }
    }
    MESSAGE("seeds " << first << "-" << last << ", " << steps << " steps: granted " << total.granted
                     << " waited " << total.waited << " EDEADLK " << total.deadlocks << " EAGAIN "
                     << total.eagain << " EINTR " << total.eintr);
    if (one < 0) {
      // The sequences reach the paths they are meant to check.
      CHECK(total.waited > 100);
      CHECK(total.deadlocks > 5);
      CHECK(total.eintr > 10);
    }
  }

}  // TEST_SUITE
