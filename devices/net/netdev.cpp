// net_device state machine: open/close, flags, MTU, carrier and operstate,
// the transmit path with its queue flow control, the TX watchdog and NAPI.
// Followed from net/core/dev.c (__dev_open, __dev_close, __dev_change_flags,
// dev_set_mtu_ext, dev_change_carrier, dev_change_proto_down,
// dev_change_tx_queue_len, dev_set_alias), net/core/link_watch.c
// (rfc2863_policy), net/sched/sch_generic.c (netif_carrier_on/off,
// dev_watchdog, __netdev_watchdog_up) and the 2.6.18 dev_close wait for the
// RX_SCHED bit. docs/kernel-semantics.md sections 5.2, 5.5, 5.6.

#include "devices/net/netdev.hpp"

#include <cerrno>
#include <chrono>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

// __netdev_watchdog_up: watchdog_timeo <= 0 becomes 5*HZ.
constexpr core::Nanos kDefaultWatchdogTimeo = std::chrono::seconds(5);
// IFALIASZ
constexpr std::size_t kIfAliasSz = 256;

// net_ratelimit(): the kernel prints the first burst and then throttles;
// the event log keeps the first 10 and every power of two after that.
bool ratelimited(std::uint64_t count) { return count > 10 && (count & (count - 1)) != 0; }

}  // namespace

std::string_view operstate_name(Operstate s) {
  static constexpr std::string_view kNames[] = {"unknown", "notpresent",     "down",
                                                "lowerlayerdown", "testing", "dormant", "up"};
  return kNames[static_cast<unsigned>(s)];
}

std::string_view netdev_tx_name(NetdevTx rc) {
  switch (rc) {
    case NetdevTx::Ok: return "NETDEV_TX_OK";
    case NetdevTx::Busy: return "NETDEV_TX_BUSY";
    case NetdevTx::Locked: return "NETDEV_TX_LOCKED";
  }
  return "?";
}

bool parse_mac(std::string_view text, std::vector<std::uint8_t>* out) {
  out->clear();
  if (text.empty()) return true;
  std::size_t i = 0;
  for (;;) {
    if (i + 2 > text.size()) return false;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(text[i]), lo = hex(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<std::uint8_t>(hi * 16 + lo));
    i += 2;
    if (i == text.size()) return true;
    if (text[i] != ':') return false;
    ++i;
  }
}

// --- NetDeviceOps defaults ------------------------------------------------------

core::Result<std::uint32_t> NetDeviceOps::do_ioctl(NetDevice&, unsigned, std::uint32_t) {
  core::assert_rtnl();
  return core::Errno{EOPNOTSUPP};
}
void NetDeviceOps::tx_timeout(NetDevice&) {}
void NetDeviceOps::set_multicast_list(NetDevice&) {}
int NetDeviceOps::poll(NetDevice&, int) { return 0; }
bool NetDeviceOps::rx_pending(const NetDevice&) const { return false; }
core::Status NetDeviceOps::change_mtu(NetDevice&, int) {
  core::assert_rtnl();
  return {};
}
core::Status NetDeviceOps::change_carrier(NetDevice&, bool) { return core::Errno{EOPNOTSUPP}; }
bool NetDeviceOps::get_link_ksettings(const NetDevice&, LinkSettings*) const { return false; }

// --- NetDevice --------------------------------------------------------------------

NetDevice::NetDevice(core::Env& env, NetDeviceConfig cfg, int ifindex,
                     std::shared_ptr<NetDeviceOps> ops)
    : env_(env),
      cfg_(std::move(cfg)),
      ifindex_(ifindex),
      ops_(std::move(ops)),
      flags_(cfg_.flags & ~IFF_UP),
      mtu_(cfg_.mtu),
      tx_queue_len_(cfg_.tx_queue_len),
      watchdog_timer_(env.clock, [this] { dev_watchdog(); }),
      rx_softirq_(env.clock, [this] { net_rx_action(); }) {
  // alloc_netdev leaves the carrier on; Ethernet drivers turn it off in
  // probe, before register_netdev, so no carrier change is counted.
  nocarrier_.store(cfg_.kind != "loopback");
  {
    core::MutexLock lock(bql_mu_);
    dql_.resize(cfg_.num_tx_queues);
    for (auto& q : dql_) q.reset(env_.now());
  }
  // register_netdevice -> linkwatch_init_dev: a device registered without
  // carrier starts "down" (an unplugged NIC never reads "unknown").
  if (!netif_carrier_ok()) {
    core::WriteLock lock(core::dev_base_lock());
    operstate_ = Operstate::Down;
  }
}

NetDevice::~NetDevice() {
  alive_.store(false);
  watchdog_timer_.del_timer_sync();
  rx_softirq_.del_timer_sync();
}

void NetDevice::unregister_netdevice() {
  alive_.store(false);
  start_.store(false);
  watchdog_timer_.del_timer_sync();
  do {
    rx_softirq_.del_timer_sync();
  } while (rx_softirq_.pending());
}

core::Nanos NetDevice::watchdog_timeo() const {
  if (cfg_.watchdog_timeo_ms <= 0) return kDefaultWatchdogTimeo;
  return std::chrono::milliseconds(cfg_.watchdog_timeo_ms);
}

Operstate NetDevice::operstate() const {
  core::ReadLock lock(core::dev_base_lock());
  return operstate_;
}

void NetDevice::call_netdevice_notifiers(std::string_view event) {
  env_.log(nullptr, cfg_.name, "notifier", event);
}

// --- carrier and operstate ----------------------------------------------------------

// Locking: none (test_and_clear_bit). Context: any.
void NetDevice::netif_carrier_on() {
  if (!nocarrier_.exchange(false)) return;
  carrier_up_count_.fetch_add(1);
  env_.log(nullptr, cfg_.name, "carrier", "on", {{"carrier_up_count", carrier_up_count_.load()}});
  linkwatch_do_dev();
  // sch_generic.c netif_carrier_on: a running device re-arms its watchdog.
  if (netif_running()) dev_activate();
  kobj_.notify("carrier");
  kobj_.notify("carrier_changes");
}

// Locking: none (test_and_set_bit). Context: any.
void NetDevice::netif_carrier_off() {
  if (nocarrier_.exchange(true)) return;
  carrier_down_count_.fetch_add(1);
  env_.log(nullptr, cfg_.name, "carrier", "off",
           {{"carrier_down_count", carrier_down_count_.load()}});
  linkwatch_do_dev();
  kobj_.notify("carrier");
  kobj_.notify("carrier_changes");
}

// link_watch.c rfc2863_policy + default_operstate. The kernel defers
// non-urgent events to the linkwatch work (up to 1 s); the simulation
// applies them at once so the state a test reads is the state it caused.
// Locking: takes dev_base_lock (write). Context: any.
void NetDevice::linkwatch_do_dev() {
  Operstate s;
  if (netif_testing()) {
    s = Operstate::Testing;
  } else if (!netif_carrier_ok()) {
    // iflink == ifindex for every device we model: IF_OPER_DOWN.
    s = Operstate::Down;
  } else if (netif_dormant()) {
    s = Operstate::Dormant;
  } else {
    s = Operstate::Up;
  }
  set_operstate(s);
}

void NetDevice::set_operstate(Operstate s) {
  {
    core::WriteLock lock(core::dev_base_lock());
    if (operstate_ == s) return;
    operstate_ = s;
  }
  env_.log(nullptr, cfg_.name, "operstate", operstate_name(s));
  kobj_.notify("operstate");
}

// --- open / close -----------------------------------------------------------------

core::Status NetDevice::dev_open() {
  core::assert_rtnl();
  if (flags_.load() & IFF_UP) return {};
  // __dev_open (an unregistered device has no way in: ENODEV)
  if (!netif_device_present() || !alive_.load()) return core::Errno{ENODEV};
  call_netdevice_notifiers("NETDEV_PRE_UP");
  start_.store(true);  // set_bit(__LINK_STATE_START)
  napi_enable();
  // K/fail/net_open: the driver's ndo_open fails with the point's errno
  // instead of running (netdev_fault.cpp); __dev_open unwinds the same way.
  const auto fault = open_fault();
  core::Status st = fault ? core::Status{*fault} : ops_->open(*this);
  if (!st) {
    start_.store(false);
    napi_disable();
    if (fault)
      env_.log(nullptr, cfg_.name, "open", st.error().name(), {{"fault", "net_open"}});
    else
      env_.log(nullptr, cfg_.name, "open", st.error().name());
    return st;
  }
  flags_.fetch_or(IFF_UP);
  dev_set_rx_mode();
  dev_activate();
  env_.log(nullptr, cfg_.name, "open", "OK");
  call_netdevice_notifiers("NETDEV_UP");
  kobj_.notify("operstate");
  return {};
}

void NetDevice::dev_close() {
  core::assert_rtnl();
  if (!(flags_.load() & IFF_UP)) return;
  call_netdevice_notifiers("NETDEV_GOING_DOWN");
  start_.store(false);  // clear_bit(__LINK_STATE_START)
  dev_deactivate();
  // An injected hang ends with the interface: the queue the fault stopped
  // starts again (ndo_open of a driver that never stops it would not).
  if (xmit_hung_.exchange(false)) xoff_.store(false);
  // 2.6.18 dev_close: "Wait for outstanding NAPI poll".
  napi_disable();
  ops_->stop(*this);  // netif_running() false, poll stopped
  flags_.fetch_and(~IFF_UP);
  env_.log(nullptr, cfg_.name, "stop", "OK");
  call_netdevice_notifiers("NETDEV_DOWN");
  kobj_.notify("operstate");
}

void NetDevice::dev_activate() {
  if (!ops_->has_tx_timeout()) return;
  // __netdev_watchdog_up: (re)arm one watchdog_timeo from now.
  txq_trans_update();
  watchdog_timer_.schedule_in(watchdog_timeo());
}

void NetDevice::dev_deactivate() {
  // Callers hold rtnl only, which no timer callback takes: waiting is safe.
  watchdog_timer_.del_timer_sync();
  // synchronize: an xmit that already holds netif_tx_lock finishes first.
  core::MutexLock lock(tx_lock_);
}

// --- flags / mtu / carrier / proto_down / tx_queue_len / group / alias --------------

void NetDevice::dev_set_rx_mode() {
  // __dev_set_rx_mode: nothing to program while down or absent.
  if (!(flags_.load() & IFF_UP) || !netif_device_present()) return;
  core::MutexLock lock(tx_lock_);
  ops_->set_multicast_list(*this);
}

core::Status NetDevice::dev_change_flags(unsigned flags) {
  core::assert_rtnl();
  const unsigned old_flags = flags_.load();
  // __dev_change_flags: only these bits come from userspace; IFF_UP,
  // volatile bits, PROMISC and ALLMULTI stay the device's.
  const unsigned newf =
      (flags & (IFF_DEBUG | IFF_NOTRAILERS | IFF_NOARP | IFF_DYNAMIC | IFF_MULTICAST |
                IFF_PORTSEL | IFF_AUTOMEDIA)) |
      (old_flags & (IFF_UP | IFF_VOLATILE | IFF_PROMISC | IFF_ALLMULTI));
  flags_.store(newf);
  dev_set_rx_mode();
  core::Status ret;
  // Kernel quirk: the bits above are applied before open runs, so a failed
  // open still changes them (and the store returns open's errno).
  if ((old_flags ^ flags) & IFF_UP) {
    if (old_flags & IFF_UP) {
      dev_close();
    } else {
      ret = dev_open();
    }
  }
  if ((flags ^ gflags_) & IFF_PROMISC) {
    const int inc = (flags & IFF_PROMISC) ? 1 : -1;
    gflags_ ^= IFF_PROMISC;
    promiscuity_ += inc;
    if (promiscuity_ < 0) promiscuity_ = 0;
    const unsigned before = flags_.load();
    if (promiscuity_ > 0) flags_.fetch_or(IFF_PROMISC); else flags_.fetch_and(~IFF_PROMISC);
    if (flags_.load() != before) {
      env_.log(nullptr, cfg_.name, "promiscuous", promiscuity_ ? "entered" : "left");
      dev_set_rx_mode();
    }
  }
  if ((flags ^ gflags_) & IFF_ALLMULTI) {
    const int inc = (flags & IFF_ALLMULTI) ? 1 : -1;
    gflags_ ^= IFF_ALLMULTI;
    allmulti_ += inc;
    if (allmulti_ < 0) allmulti_ = 0;
    const unsigned before = flags_.load();
    if (allmulti_ > 0) flags_.fetch_or(IFF_ALLMULTI); else flags_.fetch_and(~IFF_ALLMULTI);
    if (flags_.load() != before) dev_set_rx_mode();
  }
  const unsigned now_flags = flags_.load();
  if (now_flags != old_flags) {
    env_.log(nullptr, cfg_.name, "flags", ret ? "OK" : ret.error().name(),
             {{"old", fmt::format("{:#x}", old_flags)}, {"new", fmt::format("{:#x}", now_flags)}});
    kobj_.notify("flags");
  }
  return ret;
}

core::Status NetDevice::dev_set_mtu(int new_mtu) {
  core::assert_rtnl();
  if (new_mtu == mtu_.load()) return {};
  // dev_validate_mtu
  if (new_mtu < 0 || new_mtu < cfg_.min_mtu) {
    env_.log(nullptr, cfg_.name, "mtu", "EINVAL", {{"reason", "mtu less than device minimum"}});
    return core::Errno{EINVAL};
  }
  if (cfg_.max_mtu > 0 && new_mtu > cfg_.max_mtu) {
    env_.log(nullptr, cfg_.name, "mtu", "EINVAL", {{"reason", "mtu greater than device maximum"}});
    return core::Errno{EINVAL};
  }
  if (!netif_device_present()) return core::Errno{ENODEV};
  call_netdevice_notifiers("NETDEV_PRECHANGEMTU");
  VSYSFS_TRY_STATUS(ops_->change_mtu(*this, new_mtu));
  const int old = mtu_.exchange(new_mtu);
  env_.log(nullptr, cfg_.name, "mtu", "OK", {{"old", old}, {"new", new_mtu}});
  call_netdevice_notifiers("NETDEV_CHANGEMTU");
  return {};
}

core::Status NetDevice::dev_change_carrier(bool on) {
  core::assert_rtnl();
  if (!ops_->can_change_carrier()) return core::Errno{EOPNOTSUPP};
  if (!netif_device_present()) return core::Errno{ENODEV};
  return ops_->change_carrier(*this, on);
}

core::Status NetDevice::dev_change_proto_down(bool down) {
  core::assert_rtnl();
  if (!cfg_.change_proto_down) return core::Errno{EOPNOTSUPP};
  if (!netif_device_present()) return core::Errno{ENODEV};
  if (down) {
    netif_carrier_off();
  } else {
    netif_carrier_on();
  }
  proto_down_.store(down);
  env_.log(nullptr, cfg_.name, "proto_down", "OK", {{"proto_down", down}});
  return {};
}

core::Status NetDevice::dev_change_tx_queue_len(unsigned long len) {
  core::assert_rtnl();
  if (len != static_cast<unsigned>(len)) return core::Errno{ERANGE};
  const unsigned old = tx_queue_len_.exchange(static_cast<unsigned>(len));
  if (old != len) {
    env_.log(nullptr, cfg_.name, "tx_queue_len", "OK", {{"old", old}, {"new", len}});
    call_netdevice_notifiers("NETDEV_CHANGE_TX_QUEUE_LEN");
  }
  return {};
}

void NetDevice::dev_set_group(int group) {
  core::assert_rtnl();
  group_.store(group);
}

core::Status NetDevice::dev_set_alias(std::string_view alias) {
  if (alias.size() >= kIfAliasSz) return core::Errno{EINVAL};
  core::MutexLock lock(ifalias_mu_);
  ifalias_.assign(alias);
  return {};
}

core::Result<std::uint32_t> NetDevice::dev_ioctl(unsigned cmd, std::uint32_t arg) {
  core::RtnlLock rtnl;
  if (!netif_device_present()) return core::Errno{ENODEV};
  return ops_->do_ioctl(*this, cmd, arg);
}

// --- statistics ---------------------------------------------------------------------

void NetDevice::boot_reset() {
  reset_to_probe();
  env_.log(nullptr, cfg_.name, "boot_reset", "OK", {{"ifindex", ifindex_}});
}

// unregister_netdevice_many_notify: dev_close_many, NETDEV_UNREGISTER,
// then netdev_unregister_kobject (the caller's tree removal) and
// netdev_run_todo waiting for the last reference (the timers, here).
void NetDevice::unregister_netdev_locked() {
  core::assert_rtnl();
  if (!alive_.load()) return;
  if (flags_.load() & IFF_UP) dev_close();
  alive_.store(false);
  call_netdevice_notifiers("NETDEV_UNREGISTER");
  watchdog_timer_.del_timer_sync();
  do {
    rx_softirq_.del_timer_sync();
  } while (rx_softirq_.pending());
  env_.log(nullptr, cfg_.name, "unregister_netdevice", "OK", {{"ifindex", ifindex_}});
}

// The driver's probe: alloc_etherdev's defaults, the carrier off before
// register_netdev, NETDEV_REGISTER. The ifindex is kept (a deviation of
// the model, docs/devices/net.md: dev_index_reserve hands out the next one).
void NetDevice::register_netdev_locked() {
  core::assert_rtnl();
  if (alive_.load()) return;
  reset_to_probe();
  alive_.store(true);
  call_netdevice_notifiers("NETDEV_REGISTER");
  env_.log(nullptr, cfg_.name, "register_netdevice", "OK", {{"ifindex", ifindex_}});
}

void NetDevice::reset_to_probe() {
  // Down already (the shutdown closed it); make sure of it.
  if (netif_running()) dev_close();
  flags_.store(cfg_.flags & ~IFF_UP);
  gflags_ = 0;
  promiscuity_ = 0;
  allmulti_ = 0;
  mtu_.store(cfg_.mtu);
  tx_queue_len_.store(cfg_.tx_queue_len);
  group_.store(0);
  proto_down_.store(false);
  threaded_.store(false);
  gro_flush_timeout_.store(0);
  napi_defer_hard_irqs_.store(0);
  {
    core::MutexLock lock(ifalias_mu_);
    ifalias_.clear();
  }
  // Probe turns an Ethernet carrier off before register_netdev: no change
  // is counted, and the counts start again from 0.
  nocarrier_.store(cfg_.kind != "loopback");
  dormant_.store(false);
  testing_.store(false);
  carrier_up_count_.store(0);
  carrier_down_count_.store(0);
  {
    core::WriteLock lock(core::dev_base_lock());
    operstate_ = netif_carrier_ok() ? Operstate::Unknown : Operstate::Down;
  }
  xoff_.store(false);
  stack_xoff_.store(false);
  {
    core::MutexLock lock(bql_mu_);
    for (auto& q : dql_) q = Dql{};
    for (auto& q : dql_) q.reset(env_.now());
  }
  trans_start_.store(0);
  trans_timeout_.store(0);
  tx_busy_.store(0);
  tx_locked_.store(0);
  core_tx_dropped_.store(0);
  xmit_hung_.store(false);
  napi_polls_.store(0);
  ops_->reset_stats();
}

RtnlLinkStats64 NetDevice::dev_get_stats() const {
  core::assert_dev_base_lock();
  RtnlLinkStats64 s = ops_->get_stats(*this);
  // dev_get_stats adds dev->core_stats (netdev_core_stats_inc) on top of
  // what the driver reports.
  s[kTxDropped] += core_tx_dropped_.load();
  return s;
}

// --- transmit -------------------------------------------------------------------------

void NetDevice::txq_trans_update() { trans_start_.store(env_.now().count()); }

void NetDevice::netif_stop_queue() { xoff_.store(true); }

void NetDevice::netif_wake_queue() {
  // An injected hang: nothing the driver does wakes the queue; the
  // watchdog's ndo_tx_timeout (dev_watchdog clears the hang first) does.
  if (xmit_hung_.load()) return;
  if (!xoff_.exchange(false)) return;
  std::function<void()> hook;
  {
    core::MutexLock lock(wake_mu_);
    hook = wake_hook_;
  }
  if (hook) hook();  // __netif_schedule: the sender runs again
}

void NetDevice::netdev_tx_sent_queue(unsigned bytes) {
  core::MutexLock lock(bql_mu_);
  dql_[0].queued(bytes);
  if (dql_[0].avail() < 0) stack_xoff_.store(true);
}

void NetDevice::netdev_tx_completed_queue(unsigned pkts, unsigned bytes) {
  (void)pkts;
  if (bytes == 0) return;
  {
    core::MutexLock lock(bql_mu_);
    dql_[0].completed(bytes, env_.now());
    if (dql_[0].avail() < 0) return;
  }
  if (!stack_xoff_.exchange(false)) return;
  std::function<void()> hook;
  {
    core::MutexLock lock(wake_mu_);
    hook = wake_hook_;
  }
  if (hook) hook();  // netif_schedule_queue
}

void NetDevice::netdev_tx_reset_queue() {
  stack_xoff_.store(false);
  core::MutexLock lock(bql_mu_);
  dql_[0].reset(env_.now());
}

Dql NetDevice::dql(unsigned queue) const {
  core::MutexLock lock(bql_mu_);
  return dql_.at(queue);
}

void NetDevice::set_wake_hook(std::function<void()> fn) {
  core::MutexLock lock(wake_mu_);
  wake_hook_ = std::move(fn);
}

XmitResult NetDevice::dev_hard_start_xmit(const SkBuff& skb, unsigned cpu) {
  // net/core/pktgen.c pktgen_xmit checks both before every send. (The
  // stack's dev_queue_xmit meets the same wall differently: without
  // carrier, linkwatch has run dev_deactivate and the queue's qdisc is
  // noop_qdisc, whose noop_enqueue drops the skb and, in 6.12, counts it
  // in the core tx_dropped (dev_core_stats_tx_dropped_inc); the driver
  // sees nothing either way.)
  if (!netif_running()) return XmitResult::NotRunning;
  if (!netif_carrier_ok()) return XmitResult::NoCarrier;
  NetdevTx rc;
  bool injected = false;
  if (cfg_.lltx) {
    // NETIF_F_LLTX: called without netif_tx_lock; the driver locks.
    if (netif_queue_stopped()) return XmitResult::QueueStopped;
    const auto f = xmit_fault(skb, cpu);
    injected = f.has_value();
    rc = f ? *f : ops_->hard_start_xmit(*this, skb, cpu);
  } else {
    core::MutexLock lock(tx_lock_);  // HARD_TX_LOCK
    // dev_close cleared __LINK_STATE_START and then took this lock once
    // (dev_deactivate): a sender that checked before and waited here must
    // not reach a driver whose stop() may be resetting the ring.
    if (!netif_running()) return XmitResult::NotRunning;
    // netif_queue_stopped() is guaranteed false on entry to the driver.
    if (netif_queue_stopped()) return XmitResult::QueueStopped;
    const auto f = xmit_fault(skb, cpu);
    injected = f.has_value();
    rc = f ? *f : ops_->hard_start_xmit(*this, skb, cpu);
  }
  switch (rc) {
    case NetdevTx::Ok:
      txq_trans_update();
      return XmitResult::Ok;
    case NetdevTx::Locked: {
      // qdisc_restart: "collision", requeue and retry quickly.
      const auto n = tx_locked_.fetch_add(1) + 1;
      if (!ratelimited(n))
        env_.log(nullptr, cfg_.name, "xmit", "NETDEV_TX_LOCKED", {{"cpu", cpu}, {"count", n}});
      return XmitResult::Locked;
    }
    case NetdevTx::Busy: {
      // netdevices.txt: "Usually a bug, means queue start/stop flow control
      // is broken in the driver."
      const auto n = tx_busy_.fetch_add(1) + 1;
      // An injected BUSY has its own event (xmit_fault); the requeue and
      // the qdisc's back-off (the sender retries later) are the same.
      if (!injected && !ratelimited(n))
        env_.log(nullptr, cfg_.name, "xmit", "NETDEV_TX_BUSY",
                 {{"cpu", cpu}, {"count", n}, {"bug", "flow control: queue awake but ring full"}});
      return XmitResult::Busy;
    }
  }
  return XmitResult::Busy;
}

// --- watchdog -----------------------------------------------------------------------

// dev_watchdog. Context: timer (softirq). Locking: takes netif_tx_lock.
void NetDevice::dev_watchdog() {
  bool rearm = false;
  core::Nanos next{0};
  {
    core::MutexLock lock(tx_lock_);
    if (netif_device_present() && netif_running() && netif_carrier_ok()) {
      const core::Nanos now = env_.now();
      const core::Nanos deadline = trans_start() + watchdog_timeo();
      if (netif_queue_stopped() && now >= deadline) {
        const auto n = trans_timeout_.fetch_add(1) + 1;
        env_.log(nullptr, cfg_.name, "tx_timeout", "NETDEV WATCHDOG",
                 {{"queue", 0},
                  {"timeout_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                     now - trans_start()).count()},
                  {"trans_timeout", n}});
        // An injected hang ends here: the driver's reset may wake the queue.
        xmit_hung_.store(false);
        ops_->tx_timeout(*this);
      }
      rearm = true;
      // The kernel re-arms one watchdog_timeo from now; re-arming at the
      // stalled queue's deadline when that is sooner makes the timeout
      // fire exactly watchdog_timeo after the last transmit.
      next = now + watchdog_timeo();
      const core::Nanos stalled = trans_start() + watchdog_timeo();
      if (netif_queue_stopped() && stalled > now && stalled < next) next = stalled;
    }
  }
  // When down or without carrier the timer is not re-armed.
  if (rearm) watchdog_timer_.mod_timer(next);
}

// --- NAPI -----------------------------------------------------------------------------

void NetDevice::napi_schedule() {
  // netif_rx_schedule_prep: only a running device polls.
  if (!netif_running()) return;
  if (!rx_sched_.exchange(true)) rx_softirq_.mod_timer(env_.now());
}

void NetDevice::napi_enable() { rx_sched_.store(false); }

void NetDevice::napi_disable() {
  // The poll that is running finishes (the callback re-arms only while
  // running); one that is merely pending never runs.
  do {
    rx_softirq_.del_timer_sync();
  } while (rx_softirq_.pending());
  rx_sched_.store(true);  // owned: nobody can schedule a poll now
}

// net_rx_action. Context: softirq (a timer callback). We own RX_SCHED.
void NetDevice::net_rx_action() {
  if (!rx_sched_.load() || !netif_running()) return;
  napi_polls_.fetch_add(1);
  const int work = ops_->poll(*this, kNapiBudget);
  if (work >= kNapiBudget && netif_running()) {
    rx_softirq_.mod_timer(env_.now());  // budget used up: poll again
    return;
  }
  // napi_complete: clear RX_SCHED, re-enable the interrupt; a packet that
  // arrived meanwhile raises it again.
  if (!netif_running()) return;  // dev_close owns the bit now
  rx_sched_.store(false);
  if (ops_->rx_pending(*this)) napi_schedule();
}

}  // namespace vsysfs::devices
