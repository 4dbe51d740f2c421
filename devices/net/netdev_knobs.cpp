// kernel/debug/vsysfs/net/IF/ knobs (see netdev_knobs.hpp).

#include "devices/net/netdev_knobs.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<NetKnobs> kKnobAttrs[] = {
    VSYSFS_ATTR_RW_MODE(NetKnobs, link, 0600),
    VSYSFS_ATTR_RW_MODE(NetKnobs, traffic, 0600),
    VSYSFS_ATTR_RW_MODE(NetKnobs, faults, 0600),
    VSYSFS_ATTR_RW_MODE(NetKnobs, ordering, 0600),
    VSYSFS_ATTR_RO_MODE(NetKnobs, mmio, 0400),
};

// Loopback has no PHY, no DMA engine and no MMIO: only `traffic`.
mode_t knob_visible(const NetKnobs& k, std::string_view name, mode_t mode) {
  if (name == "traffic") return mode;
  return k.is_nic() ? mode : 0;
}

constexpr core::AttributeGroup<NetKnobs> kKnobGroups[] = {
    {.name = "", .attrs = kKnobAttrs, .is_visible = &knob_visible},
};

// An errno given by name ("ENOMEM") or number ("12"); 0 clears.
int parse_errno(std::string_view w) {
  if (auto n = core::kstrtoint(w, 10); n) return (*n >= 0 && *n < 4096) ? *n : -1;
  for (int e = 1; e < 134; ++e)
    if (core::errno_name(e) == w) return e;
  return -1;
}

}  // namespace

std::span<const core::AttributeGroup<NetKnobs>> NetKnobs::groups() { return kKnobGroups; }

NetKnobs::NetKnobs(core::Env& env, std::shared_ptr<NetDevice> dev, VnicDriver* nic)
    : env_(env), dev_(std::move(dev)), nic_(nic), timer_(env.clock, [this] { traffic_tick(); }) {
  {
    core::MutexLock lock(mu_);
    cpus_ = dev_->config().nr_cpu_ids >= 2 ? 2 : 1;
  }
  dev_->set_wake_hook([this] { traffic_wake(); });
  // K/fail/link_flap: the PHY of a NIC drops its link while a flap holds
  // it down (loopback has no link to lose).
  if (nic_ && env_.faults)
    env_.faults->add_flap_target(dev_->name(), [this](bool down) {
      env_.log(nullptr, dev_->name(), "link_flap", down ? "down" : "up");
      nic_->hardware().set_flap_down(down);
    });
}

NetKnobs::~NetKnobs() { shutdown(); }

void NetKnobs::shutdown() {
  if (nic_ && env_.faults) env_.faults->remove_flap_target(dev_->name());
  running_.store(false);
  dev_->set_wake_hook(nullptr);
  timer_.del_timer_sync();
}

void NetKnobs::power_off() {
  const bool was_running = running_.exchange(false);
  stalled_.store(false);
  timer_.del_timer_sync();
  if (!was_running) return;
  core::MutexLock lock(mu_);
  end_time_ = env_.now();
  env_.log(nullptr, dev_->name(), "traffic", "stop", {{"sent", sent_}, {"why", "shutdown"}});
}

// --- link ------------------------------------------------------------------------------

core::Status NetKnobs::link_show(core::PageBuffer& buf) const {
  buf.append(nic_->hardware().cable() ? "up\n" : "down\n");
  return {};
}

core::Result<std::size_t> NetKnobs::link_store(const core::Caller& c, std::string_view in) {
  bool up;
  if (core::sysfs_streq(in, "up")) {
    up = true;
  } else if (core::sysfs_streq(in, "down")) {
    up = false;
  } else {
    return core::Errno{EINVAL};
  }
  env_.log(&c, dev_->name(), "knob_link", up ? "up" : "down");
  nic_->hardware().set_cable(up);
  return in.size();
}

// --- traffic ---------------------------------------------------------------------------

core::Status NetKnobs::traffic_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  const bool running = running_.load();
  const char* state = running ? (stalled_.load() ? "stalled" : "running") : "stopped";
  buf.emit("count {}\nsize {}\nrate {}\ncpus {}\nstate {}\nsent {}\nlocked {}\nbusy {}\nstalls {}\n",
           count_, size_, rate_, cpus_, state, sent_, locked_.load(), busy_.load(), stalls_.load());
  // Frames per second since the start, up to the end of a finished run;
  // each frame counts for its interval (the first is sent at the start), so
  // a run on schedule shows its rate.
  const core::Nanos until = running || end_time_.count() == 0 ? env_.now() : end_time_;
  const auto elapsed =
      (until - start_time_).count() + 1000000000LL / static_cast<std::int64_t>(rate_);
  const std::uint64_t achieved =
      elapsed > 0 ? static_cast<std::uint64_t>(static_cast<long double>(sent_) * 1e9L /
                                               static_cast<long double>(elapsed))
                  : 0;
  buf.emit("achieved {}\nlag_ns {}\nmax_lag_ns {}\n", achieved, lag_.count(), max_lag_.count());
  return {};
}

core::Result<std::size_t> NetKnobs::traffic_store(const core::Caller& c, std::string_view in) {
  const auto words = core::split_words(in);
  if (words.empty()) return core::Errno{EINVAL};
  if (words.size() == 1 && words[0] == "stop") {
    const bool was_running = running_.exchange(false);
    stalled_.store(false);
    timer_.del_timer();  // a running tick sees running_ false
    core::MutexLock lock(mu_);
    if (was_running) end_time_ = env_.now();
    env_.log(&c, dev_->name(), "traffic", "stop", {{"sent", sent_}});
    return in.size();
  }
  if (words.size() == 1 && words[0] == "start") {
    if (!dev_->netif_running()) return core::Errno{ENETDOWN};
    if (running_.load()) return core::Errno{EBUSY};
    core::MutexLock lock(mu_);
    sent_ = 0;
    locked_.store(0);
    busy_.store(0);
    stalls_.store(0);
    next_due_ = env_.now();
    start_time_ = next_due_;
    end_time_ = core::Nanos{0};
    lag_ = max_lag_ = core::Nanos{0};
    start_carrier_downs_ = dev_->carrier_down_count();
    stalled_.store(false);
    running_.store(true);
    env_.log(&c, dev_->name(), "traffic", "start",
             {{"count", count_}, {"size", size_}, {"rate", rate_}, {"cpus", cpus_}});
    timer_.mod_timer(next_due_);
    return in.size();
  }
  if (words.size() % 2 != 0) return core::Errno{EINVAL};
  std::uint64_t count, size, rate, cpus;
  {
    core::MutexLock lock(mu_);
    count = count_, size = size_, rate = rate_, cpus = cpus_;
  }
  for (std::size_t i = 0; i < words.size(); i += 2) {
    auto v = core::kstrtoull(words[i + 1], 0);
    if (!v) return v.error();
    if (words[i] == "count") {
      count = *v;
    } else if (words[i] == "size" && *v >= 14 && *v <= 65535) {
      size = *v;
    } else if (words[i] == "rate" && *v >= 1 && *v <= 100000000) {
      rate = *v;
    } else if (words[i] == "cpus" && *v >= 1 && *v <= dev_->config().nr_cpu_ids) {
      cpus = *v;
    } else {
      return core::Errno{EINVAL};
    }
  }
  if (running_.load()) return core::Errno{EBUSY};
  core::MutexLock lock(mu_);
  count_ = count;
  size_ = static_cast<std::uint32_t>(size);
  rate_ = rate;
  cpus_ = static_cast<unsigned>(cpus);
  return in.size();
}

void NetKnobs::traffic_tick() {
  if (nic_ && batching_.load() && env_.clock.is_manual() && core::rtnl_mutex().try_lock()) {
    bool done;
    {
      core::MutexLock lock(mu_);
      done = running_.load() && traffic_batch_locked();
    }
    core::rtnl_mutex().unlock();
    if (done) return;
  }
  core::MutexLock lock(mu_);
  traffic_send_locked();
}

void NetKnobs::traffic_send_locked() {
  if (!running_.load()) return;
  const core::Nanos interval{1000000000LL / static_cast<std::int64_t>(rate_)};
  SkBuff skb;
  skb.len = size_;
  skb.id = next_id_ + 1;
  const unsigned cpu = static_cast<unsigned>(sent_ % cpus_);
  // pktgen checks before every packet, also while the queue is stopped, so
  // it sees a device that went offline even if it came back before the
  // queue woke; a run here sleeps until its timer or the wake, and asks
  // whether the carrier went down meanwhile.
  const XmitResult r = !dev_->netif_running() ? XmitResult::NotRunning
                       : start_carrier_downs_ != dev_->carrier_down_count()
                           ? XmitResult::NoCarrier
                           : dev_->dev_hard_start_xmit(skb, cpu);
  const core::Nanos now = env_.now();
  switch (r) {
    case XmitResult::Ok:
      ++next_id_;
      ++sent_;
      if (count_ != 0 && sent_ >= count_) {
        running_.store(false);
        end_time_ = now;
        env_.log(nullptr, dev_->name(), "traffic", "done", {{"sent", sent_}});
        return;
      }
      traffic_schedule_locked(now, interval);
      return;
    case XmitResult::Locked:
      // NETDEV_TX_LOCKED: "please retry quickly".
      locked_.fetch_add(1);
      timer_.mod_timer(now + std::chrono::microseconds(1));
      return;
    case XmitResult::Busy:
      busy_.fetch_add(1);
      traffic_schedule_locked(now, interval);
      return;
    case XmitResult::QueueStopped:
      stalls_.fetch_add(1);
      stalled_.store(true);
      // A wake between the xmit's check and the line above would be lost.
      if (!dev_->netif_queue_stopped() && stalled_.exchange(false)) timer_.mod_timer(now);
      return;
    case XmitResult::NotRunning:
    case XmitResult::NoCarrier:
      // pktgen_xmit: a device that is down or offline stops the run
      // (pktgen_stop_device); nothing was handed to the driver.
      running_.store(false);
      stalled_.store(false);
      end_time_ = now;
      env_.log(nullptr, dev_->name(), "traffic",
               r == XmitResult::NotRunning ? "ENETDOWN" : "NO-CARRIER", {{"sent", sent_}});
      return;
  }
}

// The lag is how late this send was against its due time. With the
// manual clock the timer fires on time, so a lag comes from the device
// (a stopped queue, BUSY, a locked driver) and the schedule restarts from
// this send, as before. With the real clock the schedule stays: the next
// frame is due one interval after this one was, and when that is already
// past the timer is armed for now (never in the past: timers of other
// devices due before now run first), so a machine that cannot keep up
// sends back to back and the lag grows.
void NetKnobs::traffic_schedule_locked(core::Nanos now, core::Nanos interval) {
  lag_ = std::max(now - next_due_, core::Nanos{0});
  max_lag_ = std::max(max_lag_, lag_);
  if (env_.clock.is_manual()) {
    next_due_ = std::max(next_due_ + interval, now);
    timer_.mod_timer(next_due_);
  } else {
    next_due_ += interval;
    timer_.mod_timer(std::max(next_due_, now));
  }
}

void NetKnobs::traffic_wake() {
  if (running_.load() && stalled_.exchange(false)) timer_.mod_timer(env_.now());
}

// --- faults ----------------------------------------------------------------------------

core::Status NetKnobs::faults_show(core::PageBuffer& buf) const {
  const int err = nic_->fail_open();
  buf.emit("hang_tx {}\ndrop_rx {}\nfail_open {}\nskip_queue_stop {}\n",
           nic_->hardware().hang_tx() ? 1 : 0, nic_->drop_rx(),
           err ? std::string(core::errno_name(err)) : std::string("0"),
           nic_->skip_queue_stop() ? 1 : 0);
  return {};
}

core::Result<std::size_t> NetKnobs::faults_store(const core::Caller& c, std::string_view in) {
  const auto w = core::split_words(in);
  if (w.size() != 2) return core::Errno{EINVAL};
  if (w[0] == "fail_open") {
    const int e = parse_errno(w[1]);
    if (e < 0) return core::Errno{EINVAL};
    nic_->set_fail_open(e);
  } else {
    auto v = core::kstrtoull(w[1], 0);
    if (!v) return core::Errno{EINVAL};
    if (w[0] == "hang_tx" && *v <= 1) {
      nic_->hardware().set_hang_tx(*v == 1);
    } else if (w[0] == "drop_rx") {
      nic_->set_drop_rx(*v);
    } else if (w[0] == "skip_queue_stop" && *v <= 1) {
      nic_->set_skip_queue_stop(*v == 1);
    } else {
      return core::Errno{EINVAL};
    }
  }
  env_.log(&c, dev_->name(), "fault", "OK", {{"fault", w[0]}, {"value", w[1]}});
  return in.size();
}

// --- ordering / mmio -------------------------------------------------------------------

core::Status NetKnobs::ordering_show(core::PageBuffer& buf) const {
  buf.append(nic_->flush_reads() ? "flush\n" : "posted\n");
  return {};
}

core::Result<std::size_t> NetKnobs::ordering_store(const core::Caller& c, std::string_view in) {
  bool flush;
  if (core::sysfs_streq(in, "flush")) {
    flush = true;
  } else if (core::sysfs_streq(in, "posted")) {
    flush = false;
  } else {
    return core::Errno{EINVAL};
  }
  nic_->set_flush_reads(flush);
  env_.log(&c, dev_->name(), "ordering", flush ? "flush" : "posted");
  return in.size();
}

core::Status NetKnobs::mmio_show(core::PageBuffer& buf) const {
  auto& hw = nic_->hardware();
  const core::MmioStats s = hw.bus().stats();
  buf.emit(
      "seed {}\nposted {}\ndelivered {}\nreads {}\nflushes {}\nreordered {}\npending {}\n"
      "doorbell_backwards {}\nring_resets {}\nlock_violations {}\n",
      hw.bus().seed(), s.posted, s.delivered, s.reads, s.flushes, s.reordered, hw.bus().pending(),
      hw.doorbell_backwards(), nic_->ring_resets(), nic_->exclusion_violations());
  return {};
}

}  // namespace vsysfs::devices
