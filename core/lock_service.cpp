// core/lock_service: see the header for the design (an RtMutex "turn" per
// file and lock domain, shared and range locks beside it).

#include "core/lock_service.hpp"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "core/caller.hpp"

namespace vsysfs::core {
namespace {

bool overlaps(PosixRange a, PosixRange b) { return a.start <= b.end && b.start <= a.end; }
bool whole_file(PosixRange r) { return r.start == 0 && r.end == UINT64_MAX; }

// Requests that keep the turn while granted: flock LOCK_EX and whole-file
// POSIX write locks (the locks exclusive_holder() reports).
bool exclusive_kind(bool flock, LockType type, PosixRange range) {
  return type == LockType::Write && (flock || whole_file(range));
}

const char* type_name(LockType t) {
  switch (t) {
    case LockType::Read: return "shared";
    case LockType::Write: return "exclusive";
    case LockType::Unlock: return "unlock";
  }
  return "?";
}

const char* kind_name(bool flock) { return flock ? "flock" : "posix"; }

// fs/locks.c: a chain of waiting owners longer than this is not followed.
constexpr int kMaxDeadlkIterations = 10;

std::string range_name(PosixRange r) {
  return r.end == UINT64_MAX ? fmt::format("{}-EOF", r.start) : fmt::format("{}-{}", r.start, r.end);
}

}  // namespace

LockService::LockService(Env& env, WakeMode mode)
    : env_(env), mode_(mode), delay_timer_(env.clock, [this] { delay_tick(); }) {}

LockService::~LockService() {
  // No delay_tick after this (it takes mu_ and serves requests).
  delay_timer_.shutdown_sync();
  MutexLock lock(mu_);
  delayed_.clear();
  // Queued requests leave their queues (a pending owner gets the lock from
  // cancel_wait and gives it back); then every turn still owned is given
  // back, with no waiter left to hand it to.
  for (auto& [ticket, r] : requests_) {
    if (r.draining || r.aside) continue;
    RtMutex& mx = *files_.at(r.key).dom(r.flock).mx;
    auto res = mx.cancel_wait(*r.slot->rt, Errno{EINTR});
    if (res && *res == LockStep::acquired) mx.unlock(*r.slot->rt);
  }
  for (auto& [key, f] : files_) {
    for (Domain* d : {&f.flock_dom, &f.posix_dom}) {
      if (d->xholder) d->mx->unlock(*d->xholder->rt);
      if (d->drainer) d->mx->unlock(*d->drainer->slot->rt);
    }
  }
  requests_.clear();
  files_.clear();
  slots_.clear();
}

void LockService::log(const char* what, const std::string& file, bool flock,
                      const LockOwner& owner, const char* result) {
  // The event is the requester's: its pid, uid and command name at top
  // level, so the log's per-uid share charges a lock flood to its user.
  const Caller who = Caller::described(owner.pid, owner.uid, owner.comm);
  env_.events.record(&who, "locks", what, result,
                     {{"file", file}, {"kind", kind_name(flock)}, {"pid", owner.pid},
                      {"comm", owner.comm}, {"prio", owner.prio}});
}

LockService::File& LockService::file_of(std::uint64_t key, const std::string& name) {
  auto [it, inserted] = files_.try_emplace(key);
  File& f = it->second;
  if (inserted) {
    f.name = name;
    for (bool flock : {true, false}) {
      Domain& d = f.dom(flock);
      d.mx = std::make_unique<RtMutex>(name);
      // Runs under the RtMutex's wait_lock or a pi_lock: only the event log.
      d.mx->set_observer([this, file = name, flock](const RtMutexEvent& ev) {
        env_.events.record(nullptr, "locks", to_string(ev.kind), "OK",
                           {{"file", file},
                            {"kind", kind_name(flock)},
                            {"pid", ev.task->pid()},
                            {"comm", ev.task->name()},
                            {"other_pid", ev.other ? ev.other->pid() : 0},
                            {"old_prio", ev.old_prio},
                            {"new_prio", ev.new_prio}});
      });
    }
  }
  return f;
}

// The RtTask of a lock owner: its idle task (the one holding turns first,
// so that chains and deadlocks across files are seen), or a new one. An
// idle task that holds nothing is remade when the requester's priority or
// pid changed (normal_prio is fixed for an RtTask's life).
LockService::Slot& LockService::slot_for(const LockOwner& owner) {
  auto& v = slots_[owner.owner];
  Slot* pick = nullptr;
  for (auto& s : v) {
    if (s->request) continue;
    if (!pick || s->turns > pick->turns) pick = s.get();
  }
  const int prio = std::clamp(owner.prio, 0, kMaxPrio - 1);
  auto make_task = [&] {
    auto t = std::make_unique<RtTask>(owner.comm, owner.pid, prio);
    // wake_up_process of a new pending owner: runs at the end of an
    // RtMutex::unlock we made under mu_; the wake-up itself runs later.
    t->set_wake_hook([this](RtTask& task, RtMutex& mx) {
      MutexLock wl(wake_mu_);
      wakes_.push_back({&task, &mx});
    });
    return t;
  };
  if (pick && pick->turns == 0 && (pick->rt->normal_prio() != prio || pick->rt->pid() != owner.pid))
    pick->rt = make_task();
  if (!pick) {
    v.push_back(std::make_unique<Slot>());
    pick = v.back().get();
    pick->rt = make_task();
  }
  pick->who = owner;
  return *pick;
}

void LockService::gc_slots(std::uint64_t owner) {
  auto it = slots_.find(owner);
  if (it == slots_.end()) return;
  std::erase_if(it->second, [](const std::unique_ptr<Slot>& s) {
    return s->request == nullptr && s->turns == 0;
  });
  if (it->second.empty()) slots_.erase(it);
}

bool LockService::conflicts(const File& f, bool flock, LockType type, PosixRange range,
                            std::uint64_t owner) const {
  for (const HeldLock& h : f.held) {
    if (h.flock != flock || h.owner.owner == owner) continue;
    if (type == LockType::Read && h.type == LockType::Read) continue;
    if (!flock && !overlaps(h.range, range)) continue;
    return true;
  }
  return false;
}

void LockService::drop(File& f, bool flock, std::uint64_t owner, PosixRange range) {
  std::vector<HeldLock> kept;
  for (HeldLock& h : f.held) {
    if (h.flock != flock || h.owner.owner != owner) {
      kept.push_back(std::move(h));
      continue;
    }
    if (flock || !overlaps(h.range, range)) {
      if (!flock) kept.push_back(std::move(h));
      continue;
    }
    // POSIX: keep the parts of h outside `range` (the kernel splits locks).
    if (h.range.start < range.start) {
      HeldLock left = h;
      left.range.end = range.start - 1;
      kept.push_back(std::move(left));
    }
    if (h.range.end > range.end) {
      HeldLock right = h;
      right.range.start = range.end + 1;
      kept.push_back(std::move(right));
    }
  }
  f.held = std::move(kept);
}

void LockService::apply(File& f, bool flock, LockType type, PosixRange range,
                        const LockOwner& owner) {
  drop(f, flock, owner.owner, range);
  if (type != LockType::Unlock) f.held.push_back({flock, type, range, owner});
}

bool LockService::holds_exclusive(const File& f, bool flock, std::uint64_t owner) const {
  return std::any_of(f.held.begin(), f.held.end(), [&](const HeldLock& h) {
    return h.flock == flock && h.owner.owner == owner && exclusive_kind(flock, h.type, h.range);
  });
}

// Locking: REQUIRES mu_. The wake-up of the next owner is queued (wakes_).
void LockService::pass_turn(Domain& d, Slot& s) { d.mx->unlock(*s.rt); }

void LockService::finish(Request& r, Status st, Completions& out) {
  out.emplace_back(std::move(r.done), st);
  const std::uint64_t owner = r.owner.owner;
  if (r.slot) r.slot->request = nullptr;
  requests_.erase(r.ticket);
  gc_slots(owner);
}

// Locking: REQUIRES mu_.
void LockService::settle(File& f, bool flock, Completions& out) {
  Domain& d = f.dom(flock);
  // A side waiter's grant changes its owner's locks, which may be what the
  // drainer waited for: again until nothing moves.
  do {
    if (d.xholder && !holds_exclusive(f, flock, d.xholder->who.owner)) {
      Slot* s = d.xholder;
      d.xholder = nullptr;
      --s->turns;
      pass_turn(d, *s);
      gc_slots(s->who.owner);
    }
    if (d.drainer && !conflicts(f, flock, d.drainer->type, d.drainer->range,
                                d.drainer->owner.owner)) {
      grant(f, *d.drainer, out);
    }
  } while (!flock && grant_side_waiters(f, out));
}

// r's task owns d.mx. Locking: REQUIRES mu_.
void LockService::grant(File& f, Request& r, Completions& out) {
  const bool flock = r.flock;
  Domain& d = f.dom(flock);
  if (d.drainer == &r) d.drainer = nullptr;
  apply(f, flock, r.type, r.range, r.owner);
  log(r.waited ? "granted" : "acquired", f.name, flock, r.owner, type_name(r.type));
  Slot* s = r.slot;
  if (exclusive_kind(flock, r.type, r.range)) {
    d.xholder = s;
    ++s->turns;
  } else {
    // A shared or range lock is granted and the turn passes on at once.
    pass_turn(d, *s);
  }
  finish(r, Status{}, out);
  settle(f, flock, out);
}

void LockService::take_turn(File& f, Request& r, Completions& out) {
  if (conflicts(f, r.flock, r.type, r.range, r.owner.owner)) {
    // The kernel checks for a deadlock again whenever a waiter retries
    // (posix_lock_inode): the chain may have closed while r was queued.
    std::vector<std::uint64_t> first;
    if (!r.flock) posix_blockers(f, r.owner.owner, r.type, r.range, false, first);
    if (!r.flock && posix_reaches(std::move(first), r.owner.owner, false)) {
      log("deadlock", f.name, r.flock, r.owner, "EDEADLK");
      pass_turn(f.dom(r.flock), *r.slot);
      finish(r, Errno{EDEADLK}, out);
      return;
    }
    r.draining = true;
    r.waited = true;
    f.dom(r.flock).drainer = &r;
    log("draining", f.name, r.flock, r.owner, type_name(r.type));
    return;
  }
  grant(f, r, out);
}

void LockService::posix_blockers(const File& f, std::uint64_t owner, LockType type,
                                 PosixRange range, bool queued,
                                 std::vector<std::uint64_t>& out) const {
  for (const HeldLock& h : f.held) {
    if (h.flock || h.owner.owner == owner || !overlaps(h.range, range)) continue;
    if (type == LockType::Read && h.type == LockType::Read) continue;
    out.push_back(h.owner.owner);
  }
  if (!queued) return;
  if (auto turn = posix_turn_owner(f); turn && *turn != owner) out.push_back(*turn);
}

// fs/locks.c posix_locks_deadlock follows one chain, what_owner_is_waiting_for,
// from the owner of the conflicting lock; here an owner may wait for several
// (every conflicting holder, and the turn), so every chain is followed, each
// no further than the kernel's. Deadlock detection follows conflicts only,
// as the kernel: a cycle through a turn is not the kernel's, and
// resolve_turn_cycles breaks it (through_turns) instead.
bool LockService::posix_reaches(std::vector<std::uint64_t> from, std::uint64_t target,
                                bool through_turns) const {
  std::set<std::uint64_t> seen;
  for (int hop = 0; hop <= kMaxDeadlkIterations + 1 && !from.empty(); ++hop) {
    std::vector<std::uint64_t> next;
    for (std::uint64_t o : from) {
      if (o == target) return true;
      if (!seen.insert(o).second) continue;
      for (const auto& [ticket, q] : requests_) {
        if (q.flock || q.owner.owner != o) continue;
        posix_blockers(files_.at(q.key), o, q.type, q.range,
                       through_turns && !q.draining && !q.aside, next);
      }
    }
    from = std::move(next);
  }
  return false;
}

std::optional<std::uint64_t> LockService::posix_turn_owner(const File& f) const {
  const Domain& d = f.posix_dom;
  if (d.xholder) return d.xholder->who.owner;
  if (d.drainer) return d.drainer->owner.owner;
  return std::nullopt;
}

bool LockService::turn_waits_for(const File& f, std::uint64_t owner) const {
  const auto turn = posix_turn_owner(f);
  return turn && (*turn == owner || posix_reaches({*turn}, owner, true));
}

void LockService::wait_aside(File& f, Request& r, Completions& out) {
  if (!conflicts(f, false, r.type, r.range, r.owner.owner)) {
    apply(f, false, r.type, r.range, r.owner);
    log(r.waited ? "granted" : "acquired", f.name, false, r.owner, type_name(r.type));
    finish(r, Status{}, out);
    settle(f, false, out);
    return;
  }
  std::vector<std::uint64_t> first;
  posix_blockers(f, r.owner.owner, r.type, r.range, false, first);
  if (posix_reaches(std::move(first), r.owner.owner, false)) {
    log("deadlock", f.name, false, r.owner, "EDEADLK");
    finish(r, Errno{EDEADLK}, out);
    return;
  }
  r.aside = true;
  if (!r.waited) log("blocked", f.name, false, r.owner, type_name(r.type));
  r.waited = true;
}

bool LockService::grant_side_waiters(File& f, Completions& out) {
  bool any = false;
  for (bool again = true; again;) {
    again = false;
    for (auto& [ticket, q] : requests_) {
      if (!q.aside || &files_.at(q.key) != &f) continue;
      if (conflicts(f, false, q.type, q.range, q.owner.owner)) continue;
      apply(f, false, q.type, q.range, q.owner);
      log("granted", f.name, false, q.owner, type_name(q.type));
      finish(q, Status{}, out);  // erases q
      again = any = true;
      break;
    }
  }
  return any;
}

void LockService::resolve_turn_cycles(Completions& out) {
  for (bool again = true; again;) {
    again = false;
    for (auto& [ticket, q] : requests_) {
      if (q.flock || q.draining || q.aside) continue;
      File& f = files_.at(q.key);
      if (!turn_waits_for(f, q.owner.owner)) continue;
      // Out of the queue (its boost of the turn's owner goes) and aside.
      Domain& d = f.posix_dom;
      auto res = d.mx->cancel_wait(*q.slot->rt, Errno{EINTR});
      if (res && *res == LockStep::acquired) pass_turn(d, *q.slot);
      const std::uint64_t owner = q.owner.owner;
      q.slot->request = nullptr;
      q.slot = nullptr;
      gc_slots(owner);
      wait_aside(f, q, out);
      again = true;
      break;
    }
  }
}

void LockService::complete(Completions& out) {
  for (auto& [done, st] : out) done(st);
  out.clear();
  if (mode_ == WakeMode::immediate) run_wakeups();
}

void LockService::run_wakeups() {
  for (;;) {
    Completions out;
    {
      MutexLock lock(mu_);
      std::vector<Wake> wakes;
      {
        MutexLock wl(wake_mu_);
        wakes.swap(wakes_);
      }
      if (wakes.empty()) return;
      for (const Wake& w : wakes) process_wake(w, out);
    }
    for (auto& [done, st] : out) done(st);
  }
}

// The woken task runs: one more turn of its slow-path loop. The wake may be
// stale (its request ended, or its task was freed): only a queued request
// whose task and lock match is resumed, so a stale pointer is never used.
void LockService::process_wake(const Wake& w, Completions& out) {
  Request* r = nullptr;
  for (auto& [ticket, req] : requests_) {
    if (req.draining || req.aside || req.slot->rt.get() != w.task) continue;
    if (files_.at(req.key).dom(req.flock).mx.get() != w.lock) continue;
    r = &req;
    break;
  }
  if (!r) return;
  File& f = files_.at(r->key);
  auto res = w.lock->try_finish(*w.task);
  if (!res) {
    log("deadlock", f.name, r->flock, r->owner, std::string(res.error().name()).c_str());
    finish(*r, res.error(), out);
  } else if (*res == LockStep::acquired) {
    take_turn(f, *r, out);
  } else if (*res == LockStep::waiting) {
    // Robbed of the pending ownership by a higher-priority task: re-queued.
    log("requeued", f.name, r->flock, r->owner, type_name(r->type));
  }
  resolve_turn_cycles(out);
}

// --- late grants (the lock failure point) ------------------------------------

bool LockService::hold_back(Ticket ticket, std::uint64_t key, const std::string& name, bool flock,
                            const LockOwner& owner, LockType type, PosixRange range, Done& done) {
  if (stopped_ || !env_.faults || !env_.faults->armed(FaultPoint::Lock)) return false;
  // Read before the decision: a concurrent store applies to the next request.
  const std::uint32_t delay_ms = env_.faults->settings(FaultPoint::Lock).delay_ms;
  // The requester is the caller: task-filter and K/fail/pids apply to it,
  // and the point's "fail" event carries its pid, uid and comm.
  const Caller who = Caller::described(owner.pid, owner.uid, owner.comm);
  if (!env_.faults->should_fail(FaultPoint::Lock, &who, 1,
                                flock ? "flock_lock_inode" : "posix_lock_inode"))
    return false;
  std::vector<EventField> data = {
      {"file", name},       {"kind", kind_name(flock)}, {"pid", owner.pid},
      {"comm", owner.comm}, {"type", type_name(type)},  {"delay_ms", delay_ms}};
  if (delay_ms == 0) return false;  // only a crafted snapshot can say 0
  if (delayed_.size() >= kMaxLockDelayed) {
    // Every slot is taken: served at once, undelayed.
    data.emplace_back("limit", kMaxLockDelayed);
    env_.events.record(&who, "locks", "delay", "overflow", std::move(data));
    return false;
  }
  Delayed d{key,  name,  flock,           owner,
            type, range, std::move(done), env_.clock.now() + std::chrono::milliseconds(delay_ms)};
  delayed_.emplace(ticket, std::move(d));
  env_.events.record(&who, "locks", "delay", "start", std::move(data));
  arm_delay_locked();
  return true;
}

void LockService::arm_delay_locked() {
  if (stopped_ || delayed_.empty()) {
    delay_timer_.del_timer();
    return;
  }
  Nanos first = delayed_.begin()->second.due;
  for (const auto& [ticket, d] : delayed_) first = std::min(first, d.due);
  delay_timer_.mod_timer(first);
}

// Timer context (the clock's thread, or the writer of clock/advance_ms).
// The due requests are served in ticket order, each as if it arrived now.
void LockService::delay_tick() {
  std::vector<std::pair<Ticket, Delayed>> due;
  {
    MutexLock lock(mu_);
    if (stopped_) return;
    const Nanos now = env_.clock.now();
    for (auto it = delayed_.begin(); it != delayed_.end();) {
      if (it->second.due > now) {
        ++it;
        continue;
      }
      // Reserved again until request() runs: an interrupt in between
      // finds the ticket (cancel marks it precancelled).
      reserved_.insert(it->first);
      const Delayed& d = it->second;
      const Caller who = Caller::described(d.owner.pid, d.owner.uid, d.owner.comm);
      env_.events.record(&who, "locks", "delay", "done",
                         {{"file", d.name},
                          {"kind", kind_name(d.flock)},
                          {"pid", d.owner.pid},
                          {"comm", d.owner.comm}});
      due.emplace_back(it->first, std::move(it->second));
      it = delayed_.erase(it);
    }
    arm_delay_locked();
  }
  for (auto& [ticket, d] : due)
    request(ticket, d.key, d.name, d.flock, std::move(d.owner), d.type, d.range, true,
            std::move(d.done), true);
}

std::size_t LockService::delayed() const {
  MutexLock lock(mu_);
  return delayed_.size();
}

void LockService::shutdown() {
  {
    MutexLock lock(mu_);
    stopped_ = true;
  }
  // Waits for a running delay_tick (it may be answering requests now).
  delay_timer_.shutdown_sync();
  // Each held-back request still owes its caller one reply (libfuse frees a
  // request only when it is answered): ENODEV, as a parked read gets.
  Completions out;
  {
    MutexLock lock(mu_);
    for (auto& [ticket, d] : delayed_) out.emplace_back(std::move(d.done), Errno{ENODEV});
    delayed_.clear();
  }
  complete(out);
}

LockService::Ticket LockService::new_ticket() {
  MutexLock lock(mu_);
  const Ticket t = next_ticket_++;
  reserved_.insert(t);
  return t;
}

void LockService::request(Ticket ticket, std::uint64_t key, const std::string& name, bool flock,
                          LockOwner owner, LockType type, PosixRange range, bool wait, Done done,
                          bool decided) {
  Completions out;
  {
    MutexLock lock(mu_);
    reserved_.erase(ticket);
    File& f = file_of(key, name);
    Domain& d = f.dom(flock);
    if (precancelled_.erase(ticket)) {
      log("interrupted", f.name, flock, owner, "EINTR");
      out.emplace_back(std::move(done), Errno{EINTR});
    } else if (type == LockType::Unlock) {
      drop(f, flock, owner.owner, range);
      log("unlock", f.name, flock, owner, "OK");
      settle(f, flock, out);
      out.emplace_back(std::move(done), Status{});
    } else if (wait && !decided && hold_back(ticket, key, name, flock, owner, type, range, done)) {
      // The lock point holds it back: delay_tick serves it when it is due.
    } else {
      // Would this POSIX request wait for a lock whose owner waits, through
      // a chain of conflicting locks, for it?
      auto deadlocks = [&]() REQUIRES(mu_) {
        std::vector<std::uint64_t> first;
        posix_blockers(f, owner.owner, type, range, false, first);
        return posix_reaches(std::move(first), owner.owner, false);
      };
      bool finished = false;
      if (flock) {
        auto own = std::find_if(f.held.begin(), f.held.end(), [&](const HeldLock& h) {
          return h.flock && h.owner.owner == owner.owner;
        });
        if (own != f.held.end() && own->type == type) {
          // flock_lock_inode: the same type again is a no-op.
          log("acquired", f.name, flock, owner, type_name(type));
          out.emplace_back(std::move(done), Status{});
          finished = true;
        } else if (own != f.held.end()) {
          // A conversion drops the old lock first, so waiters may get in.
          drop(f, true, owner.owner, range);
          settle(f, true, out);
        }
      }
      if (finished) {
      } else if (!flock && turn_waits_for(f, owner.owner)) {
        // The turn's owner is this owner (the holder of a whole-file write
        // lock changing its own locks, another thread of a draining
        // process) or waits for it: served beside the turn, as fs/locks.c
        // serves every request.
        if (!wait && conflicts(f, false, type, range, owner.owner)) {
          log("contended", f.name, flock, owner, "EAGAIN");
          out.emplace_back(std::move(done), Errno{EAGAIN});
        } else {
          Request& r = requests_[ticket];
          r = Request{ticket, key, flock, type, range, owner, std::move(done), nullptr};
          wait_aside(f, r, out);
        }
      } else if (d.xholder && d.xholder->who.owner == owner.owner) {
        // flock: the owner of LOCK_EX changes its own lock.
        apply(f, flock, type, range, owner);
        log("acquired", f.name, flock, owner, type_name(type));
        settle(f, flock, out);
        out.emplace_back(std::move(done), Status{});
      } else if (!wait) {
        Slot* s = nullptr;
        if (!conflicts(f, flock, type, range, owner.owner)) {
          s = &slot_for(owner);
          if (!d.mx->trylock(*s->rt)) s = nullptr;
        }
        if (!s) {
          // A conflicting lock, or the turn is taken (a queued writer
          // waiting for readers, a pending owner).
          log("contended", f.name, flock, owner, "EAGAIN");
          out.emplace_back(std::move(done), Errno{EAGAIN});  // EWOULDBLOCK == EAGAIN
          gc_slots(owner.owner);
        } else {
          Request& r = requests_[ticket];
          r = Request{ticket, key, flock, type, range, owner, std::move(done), s};
          s->request = &r;
          grant(f, r, out);
        }
      } else if (!flock && deadlocks()) {
        // F_SETLKW that would close a cycle of waiting owners, through range
        // locks or the turn (fs/locks.c posix_locks_deadlock).
        log("deadlock", f.name, flock, owner, "EDEADLK");
        out.emplace_back(std::move(done), Errno{EDEADLK});
      } else {
        Slot& s = slot_for(owner);
        Request& r = requests_[ticket];
        r = Request{ticket, key, flock, type, range, owner, std::move(done), &s};
        s.request = &r;
        // POSIX F_SETLKW reports deadlocks (fs/locks.c posix_locks_deadlock);
        // flock has none: a cycle just waits until interrupted.
        auto res = d.mx->begin_lock(*s.rt, LockOptions{.detect_deadlock = !flock});
        if (!res) {
          log("deadlock", f.name, flock, owner, std::string(res.error().name()).c_str());
          finish(r, res.error(), out);
        } else if (*res == LockStep::acquired) {
          take_turn(f, r, out);
        } else {
          r.waited = true;
          log("blocked", f.name, flock, owner, type_name(type));
        }
      }
    }
    resolve_turn_cycles(out);
  }
  complete(out);
}

void LockService::flock(Ticket ticket, std::uint64_t key, const std::string& name,
                        LockOwner owner, LockType type, bool wait, Done done) {
  request(ticket, key, name, true, std::move(owner), type, PosixRange{}, wait, std::move(done));
}

void LockService::setlk(Ticket ticket, std::uint64_t key, const std::string& name,
                        LockOwner owner, LockType type, PosixRange range, bool wait, Done done) {
  request(ticket, key, name, false, std::move(owner), type, range, wait, std::move(done));
}

std::optional<HeldLock> LockService::getlk(std::uint64_t key, const LockOwner& owner,
                                           LockType type, PosixRange range) const {
  MutexLock lock(mu_);
  auto it = files_.find(key);
  if (it == files_.end()) return std::nullopt;
  for (const HeldLock& h : it->second.held) {
    if (h.flock || h.owner.owner == owner.owner) continue;
    if (type == LockType::Read && h.type == LockType::Read) continue;
    if (!overlaps(h.range, range)) continue;
    return h;
  }
  return std::nullopt;
}

void LockService::cancel(Ticket ticket) {
  Completions out;
  {
    MutexLock lock(mu_);
    if (auto dl = delayed_.find(ticket); dl != delayed_.end()) {
      // Held back by the lock point: nothing was applied, nothing to undo.
      log("interrupted", dl->second.name, dl->second.flock, dl->second.owner, "EINTR");
      out.emplace_back(std::move(dl->second.done), Errno{EINTR});
      delayed_.erase(dl);
      arm_delay_locked();
    } else if (!cancel_queued_locked(ticket, out)) {
      return;
    }
  }
  complete(out);
}

bool LockService::cancel_queued_locked(Ticket ticket, Completions& out) {
  auto it = requests_.find(ticket);
  if (it == requests_.end()) {
    // Not queued: either done already (nothing to do) or not yet made.
    if (reserved_.erase(ticket)) precancelled_.insert(ticket);
    return false;
  }
  Request& r = it->second;
  File& f = files_.at(r.key);
  Domain& d = f.dom(r.flock);
  bool granted = false;
  if (r.aside) {
    // Not in the turn's queue: nothing to hand on.
  } else if (r.draining) {
    d.drainer = nullptr;
    pass_turn(d, *r.slot);
  } else {
    // Leaves the RtMutex queue: the owner is deboosted and the chain
    // re-walked (remove_waiter).
    auto res = d.mx->cancel_wait(*r.slot->rt, Errno{EINTR});
    if (res && *res == LockStep::acquired) {
      // Kernel quirk: rt_mutex_slowlock tries to take the lock before it
      // looks at the signal, so an interrupted pending owner gets it. The
      // lock is granted if nothing conflicts; else the turn goes on.
      if (!conflicts(f, r.flock, r.type, r.range, r.owner.owner)) {
        granted = true;
        grant(f, r, out);
      } else {
        pass_turn(d, *r.slot);
      }
    }
  }
  if (!granted) {
    log("interrupted", f.name, r.flock, r.owner, "EINTR");
    finish(r, Errno{EINTR}, out);
  }
  resolve_turn_cycles(out);
  return true;
}

void LockService::release(std::uint64_t key, bool flock, std::uint64_t owner) {
  Completions out;
  {
    MutexLock lock(mu_);
    auto it = files_.find(key);
    if (it == files_.end()) return;
    File& f = it->second;
    const std::size_t before = f.held.size();
    drop(f, flock, owner, PosixRange{});
    if (f.held.size() != before) {
      env_.events.record(nullptr, "locks", "released", "OK",
                         {{"file", f.name}, {"kind", kind_name(flock)}});
    }
    settle(f, flock, out);
    resolve_turn_cycles(out);
  }
  complete(out);
}

void LockService::release_file(std::uint64_t key, std::uint64_t file) {
  Completions out;
  {
    MutexLock lock(mu_);
    auto it = files_.find(key);
    if (it == files_.end()) return;
    File& f = it->second;
    const std::size_t before = f.held.size();
    std::erase_if(f.held, [&](const HeldLock& h) { return !h.flock && h.owner.file == file; });
    if (f.held.size() != before) {
      env_.events.record(nullptr, "locks", "released", "OK",
                         {{"file", f.name}, {"kind", "ofd"}});
    }
    settle(f, false, out);
    resolve_turn_cycles(out);
  }
  complete(out);
}

void LockService::release_flock(std::uint64_t key, std::uint64_t owner) {
  release(key, true, owner);
}

void LockService::release_posix(std::uint64_t key, std::uint64_t owner) {
  release(key, false, owner);
}

std::vector<HeldLock> LockService::held(std::uint64_t key) const {
  MutexLock lock(mu_);
  auto it = files_.find(key);
  return it == files_.end() ? std::vector<HeldLock>{} : it->second.held;
}

std::optional<LockOwner> LockService::exclusive_holder(std::uint64_t key) const {
  MutexLock lock(mu_);
  auto it = files_.find(key);
  if (it == files_.end()) return std::nullopt;
  for (const HeldLock& h : it->second.held) {
    if (exclusive_kind(h.flock, h.type, h.range)) return h.owner;
  }
  return std::nullopt;
}

std::vector<ContendedLock> LockService::contended() const {
  MutexLock lock(mu_);
  auto slot_of = [this](const RtTask* t) REQUIRES(mu_) -> const Slot* {
    for (const auto& [owner, v] : slots_)
      for (const auto& s : v)
        if (s->rt.get() == t) return s.get();
    return nullptr;
  };
  std::vector<ContendedLock> out;
  for (const auto& [key, f] : files_) {
    for (bool flock : {true, false}) {
      const Domain& d = f.dom(flock);
      const RtMutexSnapshot snap = d.mx->snapshot();
      std::vector<const Request*> aside;
      for (const auto& [ticket, r] : requests_)
        if (r.aside && r.key == key && r.flock == flock) aside.push_back(&r);
      if (snap.waiters.empty() && !d.drainer && !snap.word.pending && aside.empty()) continue;
      ContendedLock c;
      c.key = key;
      c.file = f.name;
      c.flock = flock;
      c.has_waiters = snap.word.has_waiters;
      c.pending = snap.word.pending;
      if (snap.word.owner) {
        const Slot* s = slot_of(snap.word.owner);
        c.owner = s ? s->who : LockOwner{0, snap.word.owner->pid(), snap.word.owner->name(), 0};
        c.role = snap.word.pending                     ? "pending"
                 : (d.drainer && d.drainer->slot == s) ? "draining"
                 : (d.xholder == s)                    ? "exclusive"
                                                       : "?";
        c.normal_prio = snap.word.owner->normal_prio();
        c.prio = snap.word.owner->prio();
      }
      for (const WaiterInfo& w : snap.waiters) {
        ContendedLock::Queued q;
        if (const Slot* s = slot_of(w.task)) {
          q.owner = s->request ? s->request->owner : s->who;
          if (s->request) q.type = s->request->type;
        }
        q.prio = w.prio;
        c.waiters.push_back(std::move(q));
      }
      for (const Request* r : aside) {
        ContendedLock::Queued q;
        q.owner = r->owner;
        q.type = r->type;
        q.prio = std::clamp(r->owner.prio, 0, kMaxPrio - 1);
        c.waiters.push_back(std::move(q));
      }
      for (const HeldLock& h : f.held)
        if (h.flock == flock) c.holders.push_back(h);
      out.push_back(std::move(c));
    }
  }
  return out;
}

void LockService::render(std::string& out) const {
  for (const ContendedLock& c : contended()) {
    out += fmt::format("{} {}\n", c.file, kind_name(c.flock));
    if (c.owner) {
      out += fmt::format("  owner  pid={} comm={} normal_prio={} prio={} has_waiters={} "
                         "pending={} role={}\n",
                         c.owner->pid, c.owner->comm, c.normal_prio, c.prio, int(c.has_waiters),
                         int(c.pending), c.role);
    } else {
      out += fmt::format("  owner  none has_waiters={} pending={}\n", int(c.has_waiters),
                         int(c.pending));
    }
    for (const ContendedLock::Queued& q : c.waiters)
      out += fmt::format("  waiter pid={} comm={} prio={} type={}\n", q.owner.pid, q.owner.comm,
                         q.prio, type_name(q.type));
    for (const HeldLock& h : c.holders) {
      // The exclusive holder is the owner line already.
      if (c.role == "exclusive" && c.owner && h.owner.owner == c.owner->owner) continue;
      out += fmt::format("  holder pid={} comm={} prio={} type={} range={}\n", h.owner.pid,
                         h.owner.comm, h.owner.prio, type_name(h.type), range_name(h.range));
    }
  }
}

}  // namespace vsysfs::core
