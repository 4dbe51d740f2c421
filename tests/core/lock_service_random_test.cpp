// Seeded random sequences against core/lock_service, checked step by step
// against a reference model of who holds what (fs/locks.c semantics).
// The steps are calls, not file writes, so this is not a Family of the
// random-sequence framework (tests/random/random_seq.hpp); it uses the
// framework's shrinker (rnd::shrink_steps) and its Failure, and like the
// families prints the seed and a 1-minimal failing sequence as a C++ list
// that replay_locks() takes back (docs/random-tests.md).
//
// Owners: three processes (POSIX locks through two open files each per
// file), three OFD descriptions (POSIX requests owned by the description,
// each on one file), three flock descriptions; two files; a few ranges.
// Steps: the owners' priorities (first), flock / F_SETLK / F_SETLKW /
// F_OFD_SETLK(W) sets and unlocks, cancels (interrupts) of an owner's
// waiting request, and closes: a process's close (FLUSH: its POSIX locks
// on the file go, then RELEASE of its description), a process's close of
// a duplicated descriptor (FLUSH alone), an OFD description's
// last close (FLUSH of the closing process, RELEASE), a flock
// description's last close. An owner with a waiting request makes no other
// request and is not closed (one thread per owner: the waiting thread
// holds its file); a replayed step that would break that rule (a shrunk
// list dropped what ended the wait) does nothing, as does a cancel of an
// owner that does not wait.
//
// After every step ("invariant: detail" failures, the kind is the text
// before the ':'):
//  - lock table: the lock table (LockService::held) equals the model,
//    byte for byte, including the open file each POSIX piece came through;
//  - grant: every grant was compatible with what the model held at that
//    moment;
//  - lost wake-up / waiter order: nobody waits on a free lock: in every
//    lock domain with waiters, one of them conflicts with a granted lock;
//    and a POSIX waiter that conflicts with nothing waits behind such a
//    blocked waiter that does not itself wait for it (else it would wait
//    for ever);
//  - deadlock: no cycle of waiting POSIX owners is left (it would be a
//    deadlock the service did not report);
//  - EDEADLK / EAGAIN / non-blocking wait: EDEADLK answers match the
//    model's cycle detection (through conflicting locks, as
//    posix_locks_deadlock), at the request and later; flock and
//    non-blocking requests never wait or get EDEADLK; EAGAIN only with a
//    conflict or with waiters in the domain (the fairness rule).
// A failure prints the seed, the model and the service's table, and the
// shrunk list. VSYSFS_RANDOM_SEED=N runs that seed alone,
// VSYSFS_LOCK_SEEDS=N seeds 1..N (default 300, 30 in a sanitizer build),
// VSYSFS_RANDOM_STEPS=N changes the steps per seed, and
// VSYSFS_LOCK_TRACE=1 prints the state after every step.

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/lock_service.hpp"
#include "tests/random/random_seq.hpp"
#include "tests/support/test_env.hpp"

namespace rnd = vsysfs::testing::rnd;

namespace {

using namespace vsysfs::core;
using vsysfs::testing::TestEnv;

constexpr int kSeeds = 300;
constexpr std::size_t kSteps = 300;
constexpr std::uint64_t kKeys[] = {1, 2};
constexpr PosixRange kRanges[] = {{0, 9},   {5, 14},         {10, 19},
                                  {20, 29}, {0, UINT64_MAX}, {15, UINT64_MAX}};
constexpr int kPrios[] = {100, 120, 139};
constexpr int kDefaultPrio = 120;

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

// One replayable step.
enum class LOp {
  prio,         // owner's scheduling priority (the PI priority its requests carry)
  flock,        // flock(2) by a flock description (owner) on its file
  setlk,        // F_SETLK(W) by a process (owner) through its open `file` of `key`
  ofd,          // F_OFD_SETLK(W) by an OFD description (owner) on its file
  cancel,       // the owner's waiting request is interrupted
  close_proc,   // process `owner` closes its open `file` of `key` (FLUSH, RELEASE)
  flush,        // process `owner` closes a duplicate of a descriptor of `key`
                // (FLUSH only: its POSIX locks go, the open file stays)
  close_ofd,    // the last close of OFD description `owner`, by process `file`
  close_flock,  // the last close of flock description `owner`
};
struct LStep {
  LOp op = LOp::prio;
  std::uint64_t owner = 0;
  std::uint64_t key = 0;
  std::uint64_t file = 0;
  LockType type = LockType::Unlock;
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  bool wait = false;
  int prio = 0;
};

const char* tname(LockType t) {
  return t == LockType::Read ? "R" : t == LockType::Write ? "W" : "U";
}
std::string rname(PosixRange r) {
  return std::to_string(r.start) + "-" + (r.end == UINT64_MAX ? "EOF" : std::to_string(r.end));
}
const char* op_name(LOp op) {
  switch (op) {
    case LOp::prio:
      return "prio";
    case LOp::flock:
      return "flock";
    case LOp::setlk:
      return "setlk";
    case LOp::ofd:
      return "ofd";
    case LOp::cancel:
      return "cancel";
    case LOp::close_proc:
      return "close_proc";
    case LOp::flush:
      return "flush";
    case LOp::close_ofd:
      return "close_ofd";
    case LOp::close_flock:
      return "close_flock";
  }
  return "?";
}

// The steps as a C++ initializer list replay_locks() takes (designated
// initializers, the fields that matter for the op).
std::string to_cpp(const std::vector<LStep>& steps) {
  std::string out = "{\n";
  for (const LStep& s : steps) {
    out += fmt::format("    {{.op = LOp::{}, .owner = {}", op_name(s.op), s.owner);
    switch (s.op) {
      case LOp::prio:
        out += fmt::format(", .prio = {}", s.prio);
        break;
      case LOp::flock:
      case LOp::setlk:
      case LOp::ofd: {
        static const char* const kTypes[] = {"Read", "Write", "Unlock"};
        out += fmt::format(", .key = {}, .file = {}, .type = LockType::{}", s.key, s.file,
                           s.type == LockType::Read    ? kTypes[0]
                           : s.type == LockType::Write ? kTypes[1]
                                                       : kTypes[2]);
        if (s.op != LOp::flock)
          out +=
              fmt::format(", .start = {}, .end = {}", s.start,
                          s.end == UINT64_MAX ? std::string("UINT64_MAX") : std::to_string(s.end));
        out += fmt::format(", .wait = {}", s.wait);
        break;
      }
      case LOp::cancel:
      case LOp::close_flock:
        break;
      case LOp::close_proc:
        out += fmt::format(", .key = {}, .file = {}", s.key, s.file);
        break;
      case LOp::flush:
        out += fmt::format(", .key = {}", s.key);
        break;
      case LOp::close_ofd:
        out += fmt::format(", .file = {}", s.file);
        break;
    }
    out += "},\n";
  }
  return out + "}";
}

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

// A fault the tests plant to prove the shrinker: the model forgets the
// piece of a POSIX lock right of an unlocked or replaced range (the
// service is right, the model is told the wrong thing).
enum class Plant { none, lost_right_piece };

class Run {
 public:
  explicit Run(Plant plant = Plant::none) : plant_(plant), svc_(env_.env) {}
  ~Run() { results_.clear(); }

  // Applies one step and checks the state; false once a check failed.
  bool apply(const LStep& s) {
    do_step(s);
    ++steps_;
    if (trace_) std::fprintf(stderr, "%zu. %s\n%s\n", steps_, describe(s).c_str(), state().c_str());
    if (failure_.empty()) check_state();
    return failure_.empty();
  }
  const std::string& failure() const { return failure_; }

  // A step drawn for the current state (generation runs the steps as it
  // draws them, so cancels name an owner that waits, and no owner that
  // waits makes a request or is closed).
  std::optional<LStep> draw(std::mt19937_64& rng) {
    auto roll = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
    auto pick = [&](const auto& a) {
      return a[static_cast<std::size_t>(roll(static_cast<int>(std::size(a))))];
    };
    const int what = roll(10);
    LStep s;
    if (what == 0 && !pending_.empty()) {  // an interrupt
      auto it = pending_.begin();
      std::advance(it, roll(static_cast<int>(pending_.size())));
      s.op = LOp::cancel;
      s.owner = it->second.owner;
      return s;
    }
    if (what == 1) {
      const int kind = roll(4);
      const auto key = pick(kKeys);
      if (kind == 0) {  // a process closes one of its files of `key`
        s = {.op = LOp::close_proc, .owner = pick(kProcs), .key = key};
        s.file = proc_file(s.owner, key, roll(2));
      } else if (kind == 3) {  // a process closes a dup of a descriptor of `key`
        s = {.op = LOp::flush, .owner = pick(kProcs), .key = key};
      } else if (kind == 1) {  // an OFD description's last close, by a process
        s = {.op = LOp::close_ofd, .owner = pick(kOfds)};
        s.file = pick(kProcs);
      } else {  // a flock description's last close
        s = {.op = LOp::close_flock, .owner = pick(kFlocks)};
      }
      if (busy(s.owner) || (s.op == LOp::close_ofd && busy(s.file))) return std::nullopt;
      return s;
    }
    // A lock request by an owner that does not wait already.
    const int kind = roll(3);
    const int t = roll(5);
    s.type = t == 0 ? LockType::Unlock : t <= 2 ? LockType::Read : LockType::Write;
    if (kind == 0) {
      s.op = LOp::flock;
      s.owner = pick(kFlocks);
      s.key = desc_key(s.owner);
      s.file = s.owner;
    } else {
      s.op = kind == 1 ? LOp::setlk : LOp::ofd;
      s.owner = kind == 1 ? pick(kProcs) : pick(kOfds);
      s.key = kind == 1 ? pick(kKeys) : desc_key(s.owner);
      s.file = kind == 1 ? proc_file(s.owner, s.key, roll(2)) : s.owner;
      const PosixRange r = pick(kRanges);
      s.start = r.start;
      s.end = r.end;
    }
    s.wait = roll(3) != 0;
    if (busy(s.owner)) return std::nullopt;
    return s;
  }

  struct Stats {
    int granted = 0, waited = 0, deadlocks = 0, eagain = 0, eintr = 0;
  };
  const Stats& stats() const { return stats_; }

  static std::string describe(const LStep& s) {
    switch (s.op) {
      case LOp::prio:
        return fmt::format("prio owner={} {}", s.owner, s.prio);
      case LOp::flock:
        return fmt::format("flock owner={} key={} {}{}", s.owner, s.key, tname(s.type),
                           s.wait ? "" : " nb");
      case LOp::setlk:
      case LOp::ofd:
        return fmt::format("{}{} owner={} key={} file={} {} {}",
                           s.op == LOp::setlk ? "setlk" : "ofd", s.wait ? "w" : "", s.owner, s.key,
                           s.file, tname(s.type), rname({s.start, s.end}));
      case LOp::cancel:
        return fmt::format("cancel owner={}", s.owner);
      case LOp::close_proc:
        return fmt::format("close process={} key={} file={}", s.owner, s.key, s.file);
      case LOp::flush:
        return fmt::format("flush process={} key={}", s.owner, s.key);
      case LOp::close_ofd:
        return fmt::format("close ofd={} by process={}", s.owner, s.file);
      case LOp::close_flock:
        return fmt::format("close flock={} key={}", s.owner, desc_key(s.owner));
    }
    return "?";
  }

 private:
  int prio(std::uint64_t owner) const {
    const auto it = prio_.find(owner);
    return it == prio_.end() ? kDefaultPrio : it->second;
  }

  void fail(const std::string& why) {
    if (!failure_.empty()) return;
    failure_ = why + "\n" + state();
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
      if (h.range.end > range.end && plant_ != Plant::lost_right_piece) {
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
                 {r.owner, 0, "t", prio(r.owner), 0, r.file}, r.type, r.wait, done);
    else
      svc_.setlk(r.ticket, r.key, "f" + std::to_string(r.key),
                 {r.owner, 0, "t", prio(r.owner), 0, r.file}, r.type, r.range, r.wait, done);
    // The request's own answer, if it came at once.
    std::optional<Status> own;
    for (const auto& [rid, st] : results_)
      if (rid == id) own = st;
    if (!own) ++stats_.waited;
    if (r.type != LockType::Unlock) {
      if (!r.wait && !own) fail("non-blocking wait: a non-blocking request waits: " + r.desc);
      if (r.wait && !r.flock) {
        const bool got_deadlock = own && !*own && own->error() == Errno{EDEADLK};
        if (got_deadlock != expect_deadlock)
          fail(std::string("EDEADLK: ") + (expect_deadlock ? "missed" : "false") +
               " EDEADLK: " + r.desc);
      }
      if (own && !*own && own->error() == Errno{EAGAIN} && !was_conflicting && !domain_waiters)
        fail("EAGAIN: without a conflict or a waiter: " + r.desc);
    }
    drain();
  }

  void drain() {
    while (!results_.empty()) {
      const auto [id, st] = results_.front();
      results_.pop_front();
      auto it = pending_.find(id);
      if (it == pending_.end()) {
        fail("completion: a second completion of request " + std::to_string(id));
        continue;
      }
      const MReq r = it->second;
      pending_.erase(it);
      if (st) {
        ++stats_.granted;
        if (r.type != LockType::Unlock && conflicts(r))
          fail("grant: granted over a conflicting lock: " + r.desc);
        model_apply(r);
        continue;
      }
      const int e = st.error().value();
      stats_.deadlocks += e == EDEADLK;
      stats_.eagain += e == EAGAIN;
      stats_.eintr += e == EINTR;
      if (e == EDEADLK) {
        if (r.flock || !r.wait) fail("EDEADLK: for a flock or non-blocking request: " + r.desc);
        // A later answer: the chain closed while it waited.
        if (!cycle_from(r)) fail("EDEADLK: without a cycle: " + r.desc);
      } else if (e == EAGAIN) {
        if (r.wait) fail("EAGAIN: for a blocking request: " + r.desc);
      } else if (e != EINTR) {
        fail("errno: unexpected errno " + std::to_string(e) + ": " + r.desc);
      }
    }
  }

  void do_step(const LStep& s) {
    switch (s.op) {
      case LOp::prio:
        prio_[s.owner] = s.prio;
        return;
      case LOp::cancel:
        for (const auto& [id, q] : pending_)
          if (q.owner == s.owner) {
            svc_.cancel(q.ticket);
            drain();
            return;
          }
        return;
      case LOp::close_proc:
        if (busy(s.owner)) return;
        model_drop(false, s.key, s.owner, {});
        std::erase_if(
            held_, [&](const MLock& h) { return !h.flock && h.key == s.key && h.file == s.file; });
        svc_.release_posix(s.key, s.owner);
        svc_.release_file(s.key, s.file);
        drain();
        return;
      case LOp::flush:
        // filp_flush -> locks_remove_posix: the closing process's POSIX
        // locks on the file go whichever descriptor they came through.
        if (busy(s.owner)) return;
        model_drop(false, s.key, s.owner, {});
        svc_.release_posix(s.key, s.owner);
        drain();
        return;
      case LOp::close_ofd: {
        if (busy(s.owner) || busy(s.file)) return;
        const auto k = desc_key(s.owner);
        model_drop(false, k, s.file, {});
        std::erase_if(held_,
                      [&](const MLock& h) { return !h.flock && h.key == k && h.file == s.owner; });
        svc_.release_posix(k, s.file);
        svc_.release_file(k, s.owner);
        drain();
        return;
      }
      case LOp::close_flock: {
        if (busy(s.owner)) return;
        const auto k = desc_key(s.owner);
        model_drop(true, k, s.owner, {});
        svc_.release_flock(k, s.owner);
        drain();
        return;
      }
      case LOp::flock:
      case LOp::setlk:
      case LOp::ofd:
        break;
    }
    if (busy(s.owner)) return;
    MReq r{};
    r.flock = s.op == LOp::flock;
    r.owner = s.owner;
    r.key = s.key;
    r.file = s.file;
    r.type = s.type;
    r.range = r.flock ? PosixRange{} : PosixRange{s.start, s.end};
    r.wait = s.wait;
    r.desc = describe(s);
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
      d << "lock table: differs from the model. service:";
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
        return fail("lost wake-up: every waiter of a domain could have the lock: " + qs[0]->desc);
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
        if (!fair)
          return fail("waiter order: a waiter waits for a turn that waits for it: " + q->desc);
      }
    }
    // No deadlock left unreported.
    for (const auto& [id, q] : pending_)
      if (!q.flock && cycle_from(q)) return fail("deadlock: an unreported cycle through " + q.desc);
  }

  const Plant plant_;
  TestEnv env_;
  LockService svc_;
  std::map<std::uint64_t, int> prio_;
  std::vector<MLock> held_;
  std::map<std::uint64_t, MReq> pending_;
  std::deque<std::pair<std::uint64_t, Status>> results_;
  std::string failure_;
  std::size_t steps_ = 0;
  std::uint64_t next_id_ = 1;
  Stats stats_;
  const bool trace_ = std::getenv("VSYSFS_LOCK_TRACE") != nullptr;
};

// Replays `steps` on a fresh service; the first failure (the step index and
// the "invariant: detail" message). What a pasted regression test calls.
std::optional<rnd::Failure> replay_locks(const std::vector<LStep>& steps, Plant plant = Plant::none,
                                         Run::Stats* stats = nullptr) {
  Run run(plant);
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (!run.apply(steps[i])) return rnd::Failure{i, run.failure()};
  if (stats) *stats = run.stats();
  return std::nullopt;
}

struct LockOutcome {
  std::uint64_t seed = 0;
  std::size_t count = 0;     // steps asked for (after the priorities)
  std::vector<LStep> steps;  // what was drawn (up to the failure)
  std::optional<rnd::Failure> failure;
  std::vector<LStep> shrunk;
  std::optional<rnd::Failure> shrunk_failure;
  std::size_t shrink_runs = 0;
  Run::Stats stats;
};

// Draws `count` steps for `seed` (the owners' priorities first), running
// them as it goes; on a failure shrinks the sequence with the framework's
// shrinker.
LockOutcome run_locks(std::uint64_t seed, std::size_t count, Plant plant = Plant::none) {
  LockOutcome o;
  o.seed = seed;
  o.count = count;
  std::mt19937_64 rng(seed);
  for (const auto& owners : {std::begin(kProcs), std::begin(kOfds), std::begin(kFlocks)})
    for (std::size_t i = 0; i < 3; ++i)
      o.steps.push_back({.op = LOp::prio,
                         .owner = owners[i],
                         .prio = kPrios[std::uniform_int_distribution<std::size_t>(0, 2)(rng)]});
  Run run(plant);
  for (std::size_t i = 0; i < o.steps.size() && !o.failure; ++i)
    if (!run.apply(o.steps[i])) o.failure = rnd::Failure{i, run.failure()};
  const std::size_t total = o.steps.size() + count;
  for (std::size_t tries = 0; !o.failure && o.steps.size() < total && tries < 20 * total; ++tries) {
    const auto s = run.draw(rng);
    if (!s) continue;  // an owner that waits: draw again
    o.steps.push_back(*s);
    if (!run.apply(*s)) o.failure = rnd::Failure{o.steps.size() - 1, run.failure()};
  }
  o.stats = run.stats();
  if (o.failure) {
    o.shrunk = rnd::shrink_steps(
        o.steps, *o.failure,
        [plant](const std::vector<LStep>& cand) { return replay_locks(cand, plant); }, 600,
        &o.shrink_runs);
    o.shrunk_failure = replay_locks(o.shrunk, plant);
  }
  return o;
}

std::string report(const LockOutcome& o) {
  if (!o.failure) return fmt::format("random lock: seed {}, {} steps: OK", o.seed, o.steps.size());
  return fmt::format(
      "random lock: seed {}, {} steps: FAILED at step {} ({}): {}\n"
      "  shrunk to {} steps in {} replays; it fails with: {}\n"
      "  replay: VSYSFS_RANDOM_SEED={} VSYSFS_RANDOM_STEPS={} build/unit-tests -tc='lock random*'\n"
      "  or paste into a regression test: CHECK(!replay_locks(std::vector<LStep>{{LIST}}))\n"
      "  with the list:\n{}",
      o.seed, o.steps.size(), o.failure->step, Run::describe(o.steps[o.failure->step]),
      o.failure->what, o.shrunk.size(), o.shrink_runs,
      o.shrunk_failure ? o.shrunk_failure->what : "(no longer fails: flaky?)", o.seed, o.count,
      to_cpp(o.shrunk));
}

}  // namespace

TEST_SUITE("lock_service") {
TEST_CASE("lock random: the lock table follows the model, no lost wake-up, deadlocks") {
  const char* one_env = std::getenv("VSYSFS_RANDOM_SEED");
  const char* seeds_env = std::getenv("VSYSFS_LOCK_SEEDS");
  const bool one = one_env && *one_env;
  const std::uint64_t first = one ? rnd::seed_from_env(1) : 1;
  const std::uint64_t last = one                       ? first
                             : seeds_env && *seeds_env ? std::strtoull(seeds_env, nullptr, 0)
                             : rnd::kSanitized         ? kSeeds / 10
                                                       : kSeeds;
  const std::size_t steps = rnd::steps_from_env(kSteps);
  Run::Stats total;
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    const LockOutcome o = run_locks(seed, steps);
    total.granted += o.stats.granted;
    total.waited += o.stats.waited;
    total.deadlocks += o.stats.deadlocks;
    total.eagain += o.stats.eagain;
    total.eintr += o.stats.eintr;
    if (rnd::verbose()) std::fprintf(stderr, "%s\n", report(o).c_str());
    if (o.failure) {
      FAIL(report(o));
      break;
    }
  }
  MESSAGE("seeds " << first << "-" << last << ", " << steps << " steps: granted " << total.granted
                   << " waited " << total.waited << " EDEADLK " << total.deadlocks << " EAGAIN "
                   << total.eagain << " EINTR " << total.eintr);
  if (!one && steps >= kSteps && last - first + 1 >= kSeeds) {
    // The sequences reach the paths they are meant to check.
    CHECK(total.waited > 100);
    CHECK(total.deadlocks > 5);
    CHECK(total.eintr > 10);
  }
}

TEST_CASE("lock random: a planted fault is found, and shrinking ends 1-minimal") {
  // The model forgets the right-hand remainder of a POSIX lock when part
  // of it is unlocked or replaced: a lock over 5-14 or 0-EOF, then an
  // unlock or a lock of another type of a range inside it, by the same
  // owner, is the shortest failing sequence.
  const LockOutcome o = run_locks(7, kSteps, Plant::lost_right_piece);  // fixed: tests the shrinker
  INFO(report(o));
  REQUIRE(o.failure);
  CHECK(o.failure->kind() == "lock table");
  REQUIRE(o.shrunk_failure);
  CHECK(o.shrunk_failure->kind() == "lock table");
  CHECK(o.shrunk.size() < o.failure->step + 1);
  CHECK(o.shrunk.size() == 2);
  // Dropping any one step of the shrunk list makes the failure go away.
  for (std::size_t i = 0; i < o.shrunk.size(); ++i) {
    auto fewer = o.shrunk;
    fewer.erase(fewer.begin() + static_cast<long>(i));
    const auto r = replay_locks(fewer, Plant::lost_right_piece);
    CHECK_MESSAGE((!r || r->kind() != "lock table"), "step ", i, " was not needed");
  }
  // Without the plant the same sequence passes: the fault is the model's.
  CHECK(!replay_locks(o.shrunk));
}

TEST_CASE("lock random: the printed list pastes back as the same steps") {
  const std::vector<LStep> steps = {
      {.op = LOp::prio, .owner = 2, .prio = 139},
      {.op = LOp::setlk,
       .owner = 2,
       .key = 1,
       .file = 1310,
       .type = LockType::Write,
       .start = 15,
       .end = UINT64_MAX,
       .wait = true},
      {.op = LOp::flock,
       .owner = 201,
       .key = 1,
       .file = 201,
       .type = LockType::Read,
       .wait = false},
      {.op = LOp::cancel, .owner = 2},
      {.op = LOp::close_ofd, .owner = 101, .file = 3},
  };
  CHECK(to_cpp(steps) ==
        "{\n"
        "    {.op = LOp::prio, .owner = 2, .prio = 139},\n"
        "    {.op = LOp::setlk, .owner = 2, .key = 1, .file = 1310, .type = LockType::Write, "
        ".start = 15, .end = UINT64_MAX, .wait = true},\n"
        "    {.op = LOp::flock, .owner = 201, .key = 1, .file = 201, .type = LockType::Read, .wait "
        "= false},\n"
        "    {.op = LOp::cancel, .owner = 2},\n"
        "    {.op = LOp::close_ofd, .owner = 101, .file = 3},\n"
        "}");
  CHECK(!replay_locks(steps));
}

}  // TEST_SUITE
