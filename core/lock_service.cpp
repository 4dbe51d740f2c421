#include "core/lock_service.hpp"

#include <cerrno>

#include <fmt/format.h>

namespace vsysfs::core {
namespace {

bool overlaps(PosixRange a, PosixRange b) { return a.start <= b.end && b.start <= a.end; }

const char* type_name(LockType t) {
  switch (t) {
    case LockType::Read: return "shared";
    case LockType::Write: return "exclusive";
    case LockType::Unlock: return "unlock";
  }
  return "?";
}

}  // namespace

void LockService::log(const char* what, const std::string& file, const LockOwner& owner,
                      const char* result) {
  env_.events.record(nullptr, "locks", what, result,
                     {{"file", file}, {"pid", owner.pid}, {"comm", owner.comm},
                      {"prio", owner.prio}});
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

void LockService::grant_waiters(std::uint64_t key, File& f, std::vector<Done>& ready) {
  (void)key;
  for (auto it = f.waiters.begin(); it != f.waiters.end();) {
    if (conflicts(f, it->flock, it->type, it->range, it->owner.owner)) {
      // flock waiters keep their order: a later shared request does not
      // overtake an earlier exclusive one of higher priority.
      ++it;
      continue;
    }
    apply(f, it->flock, it->type, it->range, it->owner);
    log("granted", f.name, it->owner, type_name(it->type));
    ticket_file_.erase(it->ticket);
    ready.push_back(std::move(it->done));
    it = f.waiters.erase(it);
  }
}

LockService::Ticket LockService::new_ticket() {
  std::lock_guard lock(mu_);
  const Ticket t = next_ticket_++;
  reserved_.insert(t);
  return t;
}

void LockService::request(Ticket ticket, std::uint64_t key, const std::string& name, bool flock,
                          LockOwner owner, LockType type, PosixRange range, bool wait,
                          Done done) {
  std::vector<Done> ready;
  Status immediate;
  bool queued = false;
  {
    std::lock_guard lock(mu_);
    reserved_.erase(ticket);
    File& f = files_[key];
    if (f.name.empty()) f.name = name;
    if (precancelled_.erase(ticket)) {
      immediate = Errno{EINTR};
      log("interrupted", f.name, owner, "EINTR");
    } else if (type == LockType::Unlock) {
      drop(f, flock, owner.owner, range);
      log("unlock", f.name, owner, "OK");
      grant_waiters(key, f, ready);
    } else {
      // Kernel: flock_lock_inode drops an existing lock of this file
      // description before trying a conversion, so waiters may get in.
      if (flock) {
        bool had = false;
        for (const HeldLock& h : f.held)
          if (h.flock && h.owner.owner == owner.owner) had = true;
        if (had) {
          drop(f, true, owner.owner, range);
          grant_waiters(key, f, ready);
        }
      }
      if (!conflicts(f, flock, type, range, owner.owner)) {
        apply(f, flock, type, range, owner);
        log("acquired", f.name, owner, type_name(type));
      } else if (!wait) {
        immediate = Errno{EAGAIN};  // EWOULDBLOCK == EAGAIN on Linux
        log("contended", f.name, owner, "EAGAIN");
      } else {
        queued = true;
        Waiter w{ticket, flock, type, range, owner, std::move(done), arrivals_++};
        auto pos = f.waiters.begin();
        while (pos != f.waiters.end() && pos->owner.prio <= w.owner.prio) ++pos;
        f.waiters.insert(pos, std::move(w));
        ticket_file_[ticket] = key;
        log("blocked", f.name, owner, type_name(type));
      }
    }
  }
  for (auto& fn : ready) fn(Status{});
  if (!queued) done(immediate);
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
  std::lock_guard lock(mu_);
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
  Done done;
  {
    std::lock_guard lock(mu_);
    auto t = ticket_file_.find(ticket);
    if (t == ticket_file_.end()) {
      // Not queued: either done already (nothing to do) or not yet made.
      if (reserved_.erase(ticket)) precancelled_.insert(ticket);
      return;
    }
    File& f = files_[t->second];
    ticket_file_.erase(t);
    for (auto it = f.waiters.begin(); it != f.waiters.end(); ++it) {
      if (it->ticket != ticket) continue;
      log("interrupted", f.name, it->owner, "EINTR");
      done = std::move(it->done);
      f.waiters.erase(it);
      break;
    }
  }
  if (done) done(Errno{EINTR});
}

void LockService::release_flock(std::uint64_t key, std::uint64_t owner) {
  std::vector<Done> ready;
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(key);
    if (it == files_.end()) return;
    const std::size_t before = it->second.held.size();
    drop(it->second, true, owner, PosixRange{});
    if (it->second.held.size() != before) {
      env_.events.record(nullptr, "locks", "released", "OK", {{"file", it->second.name}});
      grant_waiters(key, it->second, ready);
    }
  }
  for (auto& fn : ready) fn(Status{});
}

void LockService::release_posix(std::uint64_t key, std::uint64_t owner) {
  std::vector<Done> ready;
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(key);
    if (it == files_.end()) return;
    const std::size_t before = it->second.held.size();
    drop(it->second, false, owner, PosixRange{});
    if (it->second.held.size() != before) grant_waiters(key, it->second, ready);
  }
  for (auto& fn : ready) fn(Status{});
}

std::optional<LockOwner> LockService::exclusive_holder(std::uint64_t key) const {
  std::lock_guard lock(mu_);
  auto it = files_.find(key);
  if (it == files_.end()) return std::nullopt;
  for (const HeldLock& h : it->second.held) {
    if (h.type != LockType::Write) continue;
    if (h.flock || (h.range.start == 0 && h.range.end == UINT64_MAX)) return h.owner;
  }
  return std::nullopt;
}

void LockService::render(std::string& out) const {
  std::lock_guard lock(mu_);
  for (const auto& [key, f] : files_) {
    if (f.held.empty() && f.waiters.empty()) continue;
    out += fmt::format("{}\n", f.name);
    for (const HeldLock& h : f.held)
      out += fmt::format("  holder  pid={} comm={} {} {} prio={}\n", h.owner.pid, h.owner.comm,
                         h.flock ? "flock" : "posix", type_name(h.type), h.owner.prio);
    for (const Waiter& w : f.waiters)
      out += fmt::format("  waiter  pid={} comm={} {} {} prio={}\n", w.owner.pid, w.owner.comm,
                         w.flock ? "flock" : "posix", type_name(w.type), w.owner.prio);
  }
}

}  // namespace vsysfs::core
