#include "core/fault_inject.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

namespace vsysfs::core {

std::string_view fault_point_name(FaultPoint p) noexcept {
  switch (p) {
    case FaultPoint::Store:
      return "store";
    case FaultPoint::Show:
      return "show";
    case FaultPoint::Smi:
      return "smi";
    case FaultPoint::HostControl:
      return "host_control";
    case FaultPoint::PageAlloc:
      return "page_alloc";
    case FaultPoint::NetXmit:
      return "net_xmit";
    case FaultPoint::NetOpen:
      return "net_open";
    case FaultPoint::XenPopulate:
      return "xen_populate";
    case FaultPoint::LinkFlap:
      return "link_flap";
    case FaultPoint::NetRx:
      return "net_rx";
    case FaultPoint::Lock:
      return "lock";
    case FaultPoint::XenDecrease:
      return "xen_decrease";
  }
  return "?";
}

namespace {

// splitmix64: a full-period 64-bit generator whose whole state is one word,
// so a seed names exactly one sequence.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// fnmatch(3) without flags ('*' and '?' also match '/'; "[a-z]", "[!x]" and
// "[^x]" classes; '\\' quotes the next byte), in O(pattern x subject): the
// matcher remembers only the last '*' and retries from there, so a pattern
// of many stars cannot make a request take exponential time, as a
// backtracking fnmatch can.
bool glob_match(std::string_view pat, std::string_view s) noexcept {
  // One pattern element at pat[pi] against byte c: its length, or 0 for no match.
  auto element = [&pat](std::size_t pi, char c) -> std::size_t {
    if (pat[pi] == '?') return 1;
    if (pat[pi] == '\\' && pi + 1 < pat.size()) return pat[pi + 1] == c ? 2 : 0;
    if (pat[pi] == '[') {
      std::size_t i = pi + 1;
      const bool negate = i < pat.size() && (pat[i] == '!' || pat[i] == '^');
      if (negate) ++i;
      bool found = false;
      bool first = true;
      for (; i < pat.size() && (first || pat[i] != ']'); first = false) {
        char lo = pat[i];
        char hi = lo;
        if (i + 2 < pat.size() && pat[i + 1] == '-' && pat[i + 2] != ']') {
          hi = pat[i + 2];
          i += 3;
        } else {
          ++i;
        }
        const auto uc = static_cast<unsigned char>(c);
        if (static_cast<unsigned char>(lo) <= uc && uc <= static_cast<unsigned char>(hi))
          found = true;
      }
      if (i >= pat.size()) return pat[pi] == c ? 1 : 0;  // no closing ']': a plain '['
      return found != negate ? i + 1 - pi : 0;
    }
    return pat[pi] == c ? 1 : 0;
  };
  std::size_t pi = 0, si = 0;
  std::size_t star = std::string_view::npos, star_si = 0;
  while (si < s.size()) {
    if (pi < pat.size() && pat[pi] == '*') {
      star = ++pi;
      star_si = si;
      continue;
    }
    if (pi < pat.size()) {
      if (const std::size_t n = element(pi, s[si])) {
        pi += n;
        ++si;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    pi = star;
    si = ++star_si;
  }
  while (pi < pat.size() && pat[pi] == '*') ++pi;
  return pi == pat.size();
}

// get_random_u32_below (include/linux/random.h): Lemire's multiply-shift
// with rejection of the biased low range, so every value is equally likely.
std::uint32_t FaultInjection::random_below_locked(std::uint32_t ceil) {
  for (;;) {
    const auto r = static_cast<std::uint32_t>(splitmix64(rng_) >> 32);
    const std::uint64_t mult = static_cast<std::uint64_t>(r) * ceil;
    const auto low = static_cast<std::uint32_t>(mult);
    // The first (2^32 mod ceil) low values would make small results likelier.
    if (low >= static_cast<std::uint32_t>(0u - ceil) % ceil)
      return static_cast<std::uint32_t>(mult >> 32);
  }
}

void FaultInjection::update_armed_locked(FaultPoint p) {
  const auto i = static_cast<std::size_t>(p);
  armed_[i].store(points_[i].s.probability != 0, std::memory_order_relaxed);
}

// ___ratelimit (lib/ratelimit.c) on the simulation clock. The kernel keeps
// the interval in jiffies although the file says ms; the simulation's
// jiffy is 1 ms (HZ=1000), so the two agree here.
bool FaultInjection::ratelimit_locked(Point& pt, int& suppressed) {
  suppressed = 0;
  const std::uint32_t interval = pt.s.verbose_ratelimit_interval_ms;
  const std::uint32_t burst = pt.s.verbose_ratelimit_burst;
  if (interval == 0) return true;
  const Nanos now = clock_.now();
  if (!pt.rl_started) {
    pt.rl_started = true;
    pt.rl_begin = now;
  }
  if (now > pt.rl_begin + std::chrono::milliseconds(interval)) {
    suppressed = pt.rl_missed;  // "%s: %d callbacks suppressed"
    pt.rl_missed = 0;
    pt.rl_begin = now;
    pt.rl_printed = 0;
  }
  if (burst != 0 && burst > static_cast<std::uint32_t>(pt.rl_printed)) {
    ++pt.rl_printed;
    return true;
  }
  ++pt.rl_missed;
  return false;
}

bool FaultInjection::should_fail(FaultPoint p, const Caller* caller, long size,
                                 std::string_view site, bool nowarn) {
  if (!armed(p)) return false;
  std::vector<EventField> dump;
  int suppressed = 0;
  bool log = false;
  unsigned long verbose = 0;
  {
    MutexLock lock(mu_);
    Point& pt = points_[static_cast<std::size_t>(p)];
    FaultSettings& s = pt.s;
    // No need to check any other properties if the probability is 0.
    if (s.probability == 0) return false;
    if (s.task_filter && (caller == nullptr || !pids_.contains(caller->pid()))) return false;
    if (s.times == 0) return false;
    if (s.space > size) {
      // atomic_sub on an atomic_t: wraps as the kernel's int does.
      s.space = static_cast<int>(static_cast<unsigned>(s.space) - static_cast<unsigned>(size));
      return false;
    }
    if (s.interval > 1) {
      ++pt.count;
      if (pt.count % s.interval) return false;
    }
    if (s.probability <= random_below_locked(100)) return false;

    ++pt.injected;
    // fail_dump: before times is decremented, so it shows the times left
    // including this one.
    if (!nowarn && s.verbose > 0 && ratelimit_locked(pt, suppressed)) {
      log = true;
      verbose = s.verbose;
      dump = {{"name", fault_point_name(p)},
              {"interval", s.interval},
              {"probability", s.probability},
              {"space", s.space},
              {"times", s.times}};
    }
    // atomic_dec_not_zero: times is not 0 here.
    if (s.times != -1) --s.times;
  }
  if (suppressed > 0)
    events_.record(caller, "fault_inject", "ratelimit", "suppressed",
                   {{"name", fault_point_name(p)}, {"suppressed", suppressed}});
  if (log) {
    // dump_stack() at verbose > 1: the simulation's call site.
    if (verbose > 1) dump.emplace_back("site", site);
    events_.record(caller, "fault_inject", "fail", "forced", std::move(dump));
  }
  return true;
}

bool FaultInjection::should_fail_iface(FaultPoint p, const Caller* caller, std::string_view ifname,
                                       std::string_view site) {
  if (!armed(p)) return false;
  {
    MutexLock lock(mu_);
    const Point& pt = points_[static_cast<std::size_t>(p)];
    if (!pt.paths.empty()) {
      bool match = false;
      for (const auto& n : pt.paths)
        if (n == ifname) {
          match = true;
          break;
        }
      if (!match) return false;
    }
  }
  return should_fail(p, caller, 1, site);
}

bool FaultInjection::may_fail_iface(FaultPoint p, std::string_view ifname) const {
  if (!armed(p)) return false;
  MutexLock lock(mu_);
  const Point& pt = points_[static_cast<std::size_t>(p)];
  if (!pt.paths.empty() && std::find(pt.paths.begin(), pt.paths.end(), ifname) == pt.paths.end())
    return false;
  // should_fail's checks before its first side effect, with no caller.
  return pt.s.probability != 0 && !pt.s.task_filter && pt.s.times != 0;
}

std::optional<Errno> FaultInjection::should_fail_attr(FaultPoint p, const Caller& caller,
                                                      std::string_view path) {
  if (!armed(p)) return std::nullopt;
  if (path == kControlPlane ||
      (path.starts_with(kControlPlane) && path.size() > kControlPlane.size() &&
       path[kControlPlane.size()] == '/'))
    return std::nullopt;
  int error = 0;
  {
    MutexLock lock(mu_);
    const Point& pt = points_[static_cast<std::size_t>(p)];
    if (!pt.paths.empty()) {
      bool match = false;
      for (const auto& g : pt.paths)
        if (glob_match(g, path)) {
          match = true;
          break;
        }
      if (!match) return std::nullopt;
    }
    error = pt.s.error;
  }
  // The errno is read before the decision: a concurrent store to errno
  // applies to the next request, never half of this one.
  if (!should_fail(p, &caller, 1, path)) return std::nullopt;
  return Errno{error};
}

bool FaultInjection::should_fail_alloc_page(const Caller* caller, Gfp gfp, unsigned order,
                                            long size, std::string_view site) {
  if (!armed(FaultPoint::PageAlloc)) return false;
  {
    MutexLock lock(mu_);
    const FaultSettings& s = points_[static_cast<std::size_t>(FaultPoint::PageAlloc)].s;
    if (order < s.min_order) return false;
    if (gfp.nofail) return false;
    if (s.ignore_gfp_highmem && gfp.highmem) return false;
    if (s.ignore_gfp_reclaim && gfp.direct_reclaim) return false;
  }
  return should_fail(FaultPoint::PageAlloc, caller, size, site, gfp.nowarn);
}

FaultSettings FaultInjection::settings(FaultPoint p) const {
  MutexLock lock(mu_);
  return points_[static_cast<std::size_t>(p)].s;
}

std::uint64_t FaultInjection::injected(FaultPoint p) const {
  MutexLock lock(mu_);
  return points_[static_cast<std::size_t>(p)].injected;
}

std::uint64_t FaultInjection::seed() const {
  MutexLock lock(mu_);
  return seed_;
}

void FaultInjection::set_seed(std::uint64_t seed) {
  MutexLock lock(mu_);
  seed_ = seed;
  rng_ = seed;
}

std::vector<pid_t> FaultInjection::pids() const {
  MutexLock lock(mu_);
  return {pids_.begin(), pids_.end()};
}

void FaultInjection::set_pids(std::set<pid_t> pids) {
  MutexLock lock(mu_);
  pids_ = std::move(pids);
}

std::vector<std::string> FaultInjection::paths(FaultPoint p) const {
  MutexLock lock(mu_);
  return points_[static_cast<std::size_t>(p)].paths;
}

void FaultInjection::set_paths(FaultPoint p, std::vector<std::string> globs) {
  MutexLock lock(mu_);
  points_[static_cast<std::size_t>(p)].paths = std::move(globs);
}

// --- delay_ms --------------------------------------------------------------------

FaultInjection::DelayEnd FaultInjection::delay(Nanos delay,
                                               const std::function<bool()>& cancelled) {
  // Reserve a slot first: the bound holds however many threads race here.
  if (delayed_.fetch_add(1) >= kMaxDelayed) {
    delayed_.fetch_sub(1);
    return DelayEnd::Overflow;
  }
  Mutex mu{"fail.delay"};  // Order: leaf
  CondVar cv;
  bool fired = false;
  Timer timer(clock_, [&] {
    MutexLock lock(mu);
    fired = true;
    cv.notify_all();  // under mu: the waiter's frame (cv) outlives no notify
  });
  timer.schedule_in(delay);
  DelayEnd end = DelayEnd::Elapsed;
  {
    MutexLock lock(mu);
    // cancelled() is called once at least, and first only now that the
    // timer is armed: a caller may announce the wait from it (fs/server.cpp
    // logs the "start" event there), so whoever sees the announcement and
    // advances the clock cannot move time before the deadline is set.
    for (bool first = true; first || !fired; first = false) {
      if (cancelled && cancelled()) {
        if (!fired) end = DelayEnd::Cancelled;
        break;
      }
      if (fired) break;
      (void)cv.wait_until(mu, std::chrono::steady_clock::now() + kDelayPoll);
    }
  }
  // No callback runs after this (it would touch this frame).
  timer.shutdown_sync();
  delayed_.fetch_sub(1);
  return end;
}

// --- link_flap ------------------------------------------------------------------

void FaultInjection::add_flap_target(const std::string& ifname, FlapHook hook) {
  MutexLock lock(flap_mu_);
  flap_targets_.insert_or_assign(ifname, std::move(hook));
}

void FaultInjection::remove_flap_target(std::string_view ifname) {
  MutexLock lock(flap_mu_);
  const auto it = flap_targets_.find(ifname);
  if (it == flap_targets_.end()) return;
  const auto down = std::find(flap_down_.begin(), flap_down_.end(), ifname);
  if (down != flap_down_.end()) {
    it->second(false);
    flap_down_.erase(down);
  }
  flap_targets_.erase(it);
}

void FaultInjection::flap_restore_locked() {
  for (const std::string& name : flap_down_)
    if (const auto it = flap_targets_.find(name); it != flap_targets_.end()) it->second(false);
  flap_down_.clear();
}

void FaultInjection::flap_arm_locked() {
  if (!flap_down_.empty()) {
    flap_timer_.mod_timer(flap_up_due_);  // before flap_next_: down_ms < period_ms
  } else if (flaps_left_ > 0) {
    flap_timer_.mod_timer(flap_next_);
  } else {
    flap_timer_.del_timer();
  }
}

Status FaultInjection::start_flaps(std::uint32_t count) {
  const FaultSettings s = settings(FaultPoint::LinkFlap);
  if (count > 0 && (s.period_ms == 0 || s.down_ms >= s.period_ms)) return Errno{EINVAL};
  MutexLock lock(flap_mu_);
  flap_restore_locked();
  flaps_left_ = count;
  flap_next_ = clock_.now() + std::chrono::milliseconds(s.period_ms);
  flap_arm_locked();
  return {};
}

std::uint32_t FaultInjection::flaps_left() const {
  MutexLock lock(flap_mu_);
  return flaps_left_;
}

bool FaultInjection::flap_active() const {
  MutexLock lock(flap_mu_);
  return flaps_left_ != 0 || !flap_down_.empty();
}

// Timer context. A period starts: every registered interface, in name
// order, goes through should_fail (size 1, no caller: the PHY is no
// process, so task-filter never lets it flap); those it picks lose their
// link until down_ms later. down_ms and period_ms are read when the period
// starts, so a store during a schedule changes the periods that follow.
void FaultInjection::flap_tick() {
  MutexLock lock(flap_mu_);
  const Nanos now = clock_.now();
  if (!flap_down_.empty() && now >= flap_up_due_) flap_restore_locked();
  if (flap_down_.empty() && flaps_left_ > 0 && now >= flap_next_) {
    const FaultSettings s = settings(FaultPoint::LinkFlap);
    --flaps_left_;
    for (const auto& [name, hook] : flap_targets_) {
      if (!should_fail_iface(FaultPoint::LinkFlap, nullptr, name, "link_flap_timer")) continue;
      hook(true);
      flap_down_.push_back(name);
    }
    // A down_ms store may have made it reach the next period: the links
    // come back no later than the period ends.
    const std::uint32_t down = std::min(s.down_ms, s.period_ms == 0 ? 0 : s.period_ms - 1);
    flap_up_due_ = flap_next_ + std::chrono::milliseconds(down);
    flap_next_ += std::chrono::milliseconds(s.period_ms == 0 ? 1 : s.period_ms);
  }
  flap_arm_locked();
}

}  // namespace vsysfs::core
