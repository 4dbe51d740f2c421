// FaultInjection's part of a machine snapshot (docs/snapshot.md "Device state").
#include <cerrno>
#include <cstdint>

#include <fmt/format.h>

#include "core/fault_inject.hpp"
#include "core/parse.hpp"

namespace vsysfs::core {

void FaultInjection::save_state(StateWriter& w) const {
  // The link_flap schedule first: fail.flap before fail.mu, as the hooks
  // take them.
  {
    MutexLock flap(flap_mu_);
    // Written for builds that do not know the schedule's fields: they
    // refuse a record with a schedule running rather than drop it.
    w.put_bool("fail.flap_active", flaps_left_ != 0 || !flap_down_.empty());
    w.put_u64("fail.flap.left", flaps_left_);
    w.put_i64("fail.flap.next_ns", flap_next_.count());
    w.put_i64("fail.flap.up_due_ns", flap_up_due_.count());
    w.put_str("fail.flap.down", fmt::format("{}", fmt::join(flap_down_, " ")));
    const TimerState t = flap_timer_.state();
    w.put_bool("fail.flap.timer.pending", t.pending);
    w.put_i64("fail.flap.timer.expires_ns", t.expires.count());
    w.put_u64("fail.flap.timer.order", t.order);
  }
  MutexLock lock(mu_);
  w.put_u64("fail.seed", seed_);
  w.put_u64("fail.rng", rng_);
  std::string pids;
  for (pid_t p : pids_) pids += fmt::format("{}{}", pids.empty() ? "" : " ", p);
  w.put_str("fail.pids", pids);
  for (FaultPoint fp : kFaultPoints) {
    const Point& pt = points_[static_cast<std::size_t>(fp)];
    const FaultSettings& st = pt.s;
    const auto k = [fp](std::string_view f) {
      return fmt::format("fail.{}.{}", fault_point_name(fp), f);
    };
    w.put_u64(k("probability"), st.probability);
    w.put_u64(k("interval"), st.interval);
    w.put_i64(k("times"), st.times);
    w.put_i64(k("space"), st.space);
    w.put_u64(k("verbose"), st.verbose);
    w.put_u64(k("rl_interval_ms"), st.verbose_ratelimit_interval_ms);
    w.put_u64(k("rl_burst"), st.verbose_ratelimit_burst);
    w.put_bool(k("task_filter"), st.task_filter);
    w.put_i64(k("error"), st.error);
    w.put_u64(k("smi_kind"), static_cast<std::uint64_t>(st.smi_kind));
    w.put_i64(k("cbres1"), st.cbres1);
    w.put_u64(k("answer_bytes"), st.answer_bytes);
    w.put_u64(k("hc_kind"), static_cast<std::uint64_t>(st.hc_kind));
    w.put_u64(k("xmit_kind"), static_cast<std::uint64_t>(st.xmit_kind));
    w.put_u64(k("rx_kind"), static_cast<std::uint64_t>(st.rx_kind));
    w.put_u64(k("delay_ms"), st.delay_ms);
    w.put_u64(k("down_ms"), st.down_ms);
    w.put_u64(k("period_ms"), st.period_ms);
    w.put_u64(k("grant_pages"), st.grant_pages);
    w.put_bool(k("ignore_gfp_highmem"), st.ignore_gfp_highmem);
    w.put_bool(k("ignore_gfp_reclaim"), st.ignore_gfp_reclaim);
    w.put_u64(k("min_order"), st.min_order);
    w.put_u64(k("count"), pt.count);
    w.put_u64(k("injected"), pt.injected);
    std::string paths;
    for (const auto& g : pt.paths) paths += g + "\n";
    w.put_str(k("paths"), paths);
    w.put_i64(k("rl_begin_ns"), pt.rl_begin.count());
    w.put_bool(k("rl_started"), pt.rl_started);
    w.put_i64(k("rl_printed"), pt.rl_printed);
    w.put_i64(k("rl_missed"), pt.rl_missed);
  }
}

Status FaultInjection::load_state(const StateReader& r) {
  std::array<Point, kFaultPointCount> points;
  bool ok = true;
  const auto u = [&](const std::string& key) -> std::uint64_t {
    auto v = r.u64(key);
    ok = ok && v;
    return v ? *v : 0;
  };
  const auto i = [&](const std::string& key) -> std::int64_t {
    auto v = r.i64(key);
    ok = ok && v;
    return v ? *v : 0;
  };
  const auto b = [&](const std::string& key) -> bool {
    auto v = r.boolean(key);
    ok = ok && v;
    return v && *v;
  };
  for (FaultPoint fp : kFaultPoints) {
    Point& pt = points[static_cast<std::size_t>(fp)];
    FaultSettings& st = pt.s;
    const auto k = [fp](std::string_view f) {
      return fmt::format("fail.{}.{}", fault_point_name(fp), f);
    };
    if (!r.has(k("probability"))) {
      // A snapshot taken before this point existed: the point as at mount.
      if (fp == FaultPoint::Lock) st.delay_ms = kLockDelayDefaultMs;
      if (fp == FaultPoint::NetOpen) st.error = 12;  // ENOMEM
      continue;
    }
    st.probability = u(k("probability"));
    st.interval = u(k("interval"));
    st.times = static_cast<int>(i(k("times")));
    st.space = static_cast<int>(i(k("space")));
    st.verbose = u(k("verbose"));
    st.verbose_ratelimit_interval_ms = static_cast<std::uint32_t>(u(k("rl_interval_ms")));
    st.verbose_ratelimit_burst = static_cast<std::uint32_t>(u(k("rl_burst")));
    st.task_filter = b(k("task_filter"));
    st.error = static_cast<int>(i(k("error")));
    const auto smi = u(k("smi_kind"));
    const auto hc = u(k("hc_kind"));
    const auto xmit = u(k("xmit_kind"));
    const auto rx = u(k("rx_kind"));
    if (smi > static_cast<std::uint64_t>(SmiFault::Short) ||
        hc > static_cast<std::uint64_t>(HostControlFault::NoPower) ||
        xmit > static_cast<std::uint64_t>(NetXmitFault::Hang) ||
        rx > static_cast<std::uint64_t>(NetRxFault::Corrupt))
      return Errno{EINVAL};
    st.smi_kind = static_cast<SmiFault>(smi);
    st.hc_kind = static_cast<HostControlFault>(hc);
    st.xmit_kind = static_cast<NetXmitFault>(xmit);
    st.rx_kind = static_cast<NetRxFault>(rx);
    st.delay_ms = static_cast<std::uint32_t>(u(k("delay_ms")));
    st.down_ms = static_cast<std::uint32_t>(u(k("down_ms")));
    st.period_ms = static_cast<std::uint32_t>(u(k("period_ms")));
    st.cbres1 = static_cast<int>(i(k("cbres1")));
    st.answer_bytes = static_cast<std::uint32_t>(u(k("answer_bytes")));
    st.grant_pages = u(k("grant_pages"));
    st.ignore_gfp_highmem = b(k("ignore_gfp_highmem"));
    st.ignore_gfp_reclaim = b(k("ignore_gfp_reclaim"));
    st.min_order = static_cast<std::uint32_t>(u(k("min_order")));
    pt.count = u(k("count"));
    pt.injected = u(k("injected"));
    auto paths = r.str(k("paths"));
    if (!paths) return Errno{EINVAL};
    std::string_view rest = *paths;
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      if (nl == std::string_view::npos) return Errno{EINVAL};
      pt.paths.emplace_back(rest.substr(0, nl));
      rest.remove_prefix(nl + 1);
    }
    pt.rl_begin = Nanos(i(k("rl_begin_ns")));
    pt.rl_started = b(k("rl_started"));
    pt.rl_printed = static_cast<int>(i(k("rl_printed")));
    pt.rl_missed = static_cast<int>(i(k("rl_missed")));
  }
  FlapSchedule flap;
  if (auto st = read_flap(r, flap); !st) return st;
  const std::uint64_t seed = u("fail.seed");
  const std::uint64_t rng = u("fail.rng");
  auto pids_s = r.str("fail.pids");
  if (!ok || !pids_s) return Errno{EINVAL};
  std::set<pid_t> pids;
  std::string_view rest = *pids_s;
  while (!rest.empty()) {
    const auto sp = rest.find(' ');
    auto v = kstrtoint(rest.substr(0, sp), 10);
    if (!v) return Errno{EINVAL};
    pids.insert(*v);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
  }
  {
    MutexLock lock(mu_);
    points_ = std::move(points);
    seed_ = seed;
    rng_ = rng;
    pids_ = std::move(pids);
    for (FaultPoint fp : kFaultPoints) update_armed_locked(fp);
  }
  // The schedule as it was, set directly: no hook runs. The links a flap
  // held down at the snapshot are held down in the net section's record
  // (each NIC's hw.flap_down), which the same restore loads; when this
  // schedule's timer brings them back, the hooks run as they would have.
  // The timer is cancelled with no lock held (its callback takes fail.flap).
  flap_timer_.del_timer_sync();
  MutexLock lock(flap_mu_);
  flaps_left_ = flap.left;
  flap_next_ = flap.next;
  flap_up_due_ = flap.up_due;
  flap_down_ = std::move(flap.down);
  flap_timer_.restore(flap.timer);
  return {};
}

Status FaultInjection::read_flap(const StateReader& r, FlapSchedule& out) const {
  if (!r.has("fail.flap.left")) {
    // A record of a build that kept no schedule: it had none running,
    // or it cannot say which.
    const auto active = r.boolean("fail.flap_active");
    if (!active || *active) return Errno{EINVAL};
    return {};
  }
  const auto left = r.u64("fail.flap.left");
  const auto next = r.i64("fail.flap.next_ns");
  const auto up_due = r.i64("fail.flap.up_due_ns");
  const auto down = r.str("fail.flap.down");
  const auto pending = r.boolean("fail.flap.timer.pending");
  const auto expires = r.i64("fail.flap.timer.expires_ns");
  const auto order = r.u64("fail.flap.timer.order");
  if (!left || !next || !up_due || !down || !pending || !expires || !order) return Errno{EINVAL};
  if (*left > UINT32_MAX || *next < 0 || *up_due < 0 || *expires < 0) return Errno{EINVAL};
  out.left = static_cast<std::uint32_t>(*left);
  out.next = Nanos(*next);
  out.up_due = Nanos(*up_due);
  out.timer = {.pending = *pending, .expires = Nanos(*expires), .order = *order};
  // The links held down: registered interfaces, in name order (as
  // flap_tick took them), each once.
  std::string_view rest = *down;
  MutexLock flap(flap_mu_);
  while (!rest.empty()) {
    const auto sp = rest.find(' ');
    const std::string_view name = rest.substr(0, sp);
    if (name.empty() || !flap_targets_.contains(name) ||
        (!out.down.empty() && out.down.back() >= name))
      return Errno{EINVAL};
    out.down.emplace_back(name);
    if (sp == std::string_view::npos) break;
    rest.remove_prefix(sp + 1);
    if (rest.empty()) return Errno{EINVAL};  // a trailing blank
  }
  return {};
}

}  // namespace vsysfs::core
