// The [net] section's part of a machine snapshot (see netdev_state.hpp):
// each object's State (taken and put back under its own locks) and the
// "net" StateHandler that writes them as one versioned field list and
// reads one back, checking the whole record before anything changes.

#include "devices/net/netdev_state.hpp"

#include <cerrno>
#include <charconv>
#include <climits>

#include <fmt/format.h>

#include "core/net_locks.hpp"

namespace vsysfs::devices {

// --- NetDevice ----------------------------------------------------------------------

NetDevice::State NetDevice::save_state() const {
  State s;
  s.running = start_.load();
  s.nocarrier = nocarrier_.load();
  s.dormant = dormant_.load();
  s.testing = testing_.load();
  s.carrier_up_count = carrier_up_count_.load();
  s.carrier_down_count = carrier_down_count_.load();
  s.operstate = operstate();
  s.flags = flags_.load();
  // gflags, promiscuity and allmulti are guarded by rtnl, which the
  // handler holds (as rtnl_fill_ifinfo does to read them).
  core::assert_rtnl();
  s.gflags = gflags_;
  s.promiscuity = promiscuity_;
  s.allmulti = allmulti_;
  s.mtu = mtu_.load();
  s.tx_queue_len = tx_queue_len_.load();
  s.group = group_.load();
  s.proto_down = proto_down_.load();
  s.threaded = threaded_.load();
  s.gro_flush_timeout = gro_flush_timeout_.load();
  s.napi_defer_hard_irqs = napi_defer_hard_irqs_.load();
  {
    core::MutexLock lock(ifalias_mu_);
    s.ifalias = ifalias_;
  }
  s.xoff = xoff_.load();
  s.stack_xoff = stack_xoff_.load();
  s.xmit_hung = xmit_hung_.load();
  {
    core::MutexLock lock(bql_mu_);
    s.dql = dql_;
  }
  s.trans_start = trans_start_.load();
  s.trans_timeout = trans_timeout_.load();
  s.tx_busy = tx_busy_.load();
  s.tx_locked = tx_locked_.load();
  s.core_tx_dropped = core_tx_dropped_.load();
  s.rx_sched = rx_sched_.load();
  s.napi_polls = napi_polls_.load();
  s.watchdog = watchdog_timer_.state();
  s.rx_softirq = rx_softirq_.state();
  return s;
}

bool NetDevice::check_state(const State& s) const {
  if (static_cast<unsigned>(s.operstate) > static_cast<unsigned>(Operstate::Up)) return false;
  if (s.carrier_up_count < 0 || s.carrier_down_count < 0) return false;
  if ((s.gflags & ~(IFF_PROMISC | IFF_ALLMULTI)) != 0 || s.promiscuity < 0 || s.allmulti < 0)
    return false;
  // dev_validate_mtu held for every value the device ever took.
  if (s.mtu < cfg_.min_mtu || (cfg_.max_mtu > 0 && s.mtu > cfg_.max_mtu)) return false;
  if (s.ifalias.size() >= 256 || s.napi_defer_hard_irqs > static_cast<unsigned>(INT_MAX))
    return false;
  if (s.dql.size() != cfg_.num_tx_queues) return false;
  for (const Dql& d : s.dql)
    if (d.limit > kDqlMaxLimit || d.max_limit > kDqlMaxLimit || d.min_limit > kDqlMaxLimit ||
        d.slack_hold_time.count() < 0)
      return false;
  return true;
}

void NetDevice::cancel_timers() {
  watchdog_timer_.del_timer_sync();
  do {
    rx_softirq_.del_timer_sync();
  } while (rx_softirq_.pending());
}

void NetDevice::load_state(const State& s) {
  core::assert_rtnl();
  const unsigned old_flags = flags_.load();
  const bool old_running = netif_running();
  const bool old_carrier = netif_carrier_ok();
  const int old_changes = carrier_up_count_.load() + carrier_down_count_.load();
  const Operstate old_operstate = operstate();

  start_.store(s.running);
  nocarrier_.store(s.nocarrier);
  dormant_.store(s.dormant);
  testing_.store(s.testing);
  carrier_up_count_.store(s.carrier_up_count);
  carrier_down_count_.store(s.carrier_down_count);
  {
    core::WriteLock lock(core::dev_base_lock());
    operstate_ = s.operstate;
  }
  flags_.store(s.flags);
  gflags_ = s.gflags;
  promiscuity_ = s.promiscuity;
  allmulti_ = s.allmulti;
  mtu_.store(s.mtu);
  tx_queue_len_.store(s.tx_queue_len);
  group_.store(s.group);
  proto_down_.store(s.proto_down);
  threaded_.store(s.threaded);
  gro_flush_timeout_.store(static_cast<unsigned long>(s.gro_flush_timeout));
  napi_defer_hard_irqs_.store(s.napi_defer_hard_irqs);
  {
    core::MutexLock lock(ifalias_mu_);
    ifalias_ = s.ifalias;
  }
  xoff_.store(s.xoff);
  stack_xoff_.store(s.stack_xoff);
  xmit_hung_.store(s.xmit_hung);
  {
    core::MutexLock lock(bql_mu_);
    dql_ = s.dql;
  }
  trans_start_.store(s.trans_start);
  trans_timeout_.store(s.trans_timeout);
  tx_busy_.store(s.tx_busy);
  tx_locked_.store(s.tx_locked);
  core_tx_dropped_.store(s.core_tx_dropped);
  rx_sched_.store(s.rx_sched);
  napi_polls_.store(s.napi_polls);
  watchdog_timer_.restore(s.watchdog);
  rx_softirq_.restore(s.rx_softirq);

  // Pollers of the state files see the change (sysfs_notify).
  if (old_flags != s.flags) kobj_.notify("flags");
  if (old_running != s.running || old_operstate != s.operstate) kobj_.notify("operstate");
  if (old_running != s.running || old_carrier != !s.nocarrier) kobj_.notify("carrier");
  if (old_changes != s.carrier_up_count + s.carrier_down_count) kobj_.notify("carrier_changes");
}

// --- VnicHardware / VnicDriver / LoopbackDriver ---------------------------------------

VnicHardware::State VnicHardware::save_state(std::uint32_t from, std::uint32_t to) const {
  State s;
  {
    core::MutexLock lock(hw_mu_);
    s.tx_busy = tx_busy_;
    s.hw_head = hw_head_;
    s.hw_tail = hw_tail_;
    s.tx_due = tx_due_;
    s.rx_mode = rx_mode_;
  }
  s.tx_en = tx_en_.load();
  s.rx_en = rx_en_.load();
  s.cable = cable_.load();
  s.flap_down = flap_down_.load();
  s.link = link_.load();
  s.hang_tx = hang_tx_.load();
  s.writeback_head = writeback_head_.load();
  s.doorbell_backwards = doorbell_backwards_.load();
  s.rx_missed = rx_missed_.load();
  {
    core::MutexLock lock(desc_mu_);
    for (std::uint32_t i = from; i != to && s.descriptors.size() < descriptors_.size(); ++i)
      s.descriptors.emplace_back(i, descriptors_[i % descriptors_.size()]);
  }
  {
    core::MutexLock lock(rx_mu_);
    s.rx_ring.assign(rx_ring_.begin(), rx_ring_.end());
  }
  s.bus = bus_.state();
  s.tx_timer = tx_timer_.state();
  s.chipset_timer = chipset_timer_.state();
  return s;
}

bool VnicHardware::check_state(const State& s) const {
  return bus_.check_state(s.bus) && s.rx_ring.size() <= cfg_.ring_size &&
         s.descriptors.size() <= cfg_.ring_size && s.hw_tail - s.hw_head <= cfg_.ring_size;
}

void VnicHardware::cancel_timers() {
  chipset_timer_.del_timer_sync();
  tx_timer_.del_timer_sync();
}

void VnicHardware::load_state(const State& s) {
  {
    core::MutexLock lock(hw_mu_);
    tx_busy_ = s.tx_busy;
    hw_head_ = s.hw_head;
    hw_tail_ = s.hw_tail;
    tx_due_ = s.tx_due;
    rx_mode_ = s.rx_mode;
  }
  tx_en_.store(s.tx_en);
  rx_en_.store(s.rx_en);
  cable_.store(s.cable);
  flap_down_.store(s.flap_down);
  link_.store(s.link);
  hang_tx_.store(s.hang_tx);
  writeback_head_.store(s.writeback_head);
  doorbell_backwards_.store(s.doorbell_backwards);
  rx_missed_.store(s.rx_missed);
  {
    core::MutexLock lock(desc_mu_);
    for (const auto& [i, skb] : s.descriptors) descriptors_[i % descriptors_.size()] = skb;
  }
  {
    core::MutexLock lock(rx_mu_);
    rx_ring_.assign(s.rx_ring.begin(), s.rx_ring.end());
  }
  bus_.set_state(s.bus);
  tx_timer_.restore(s.tx_timer);
  chipset_timer_.restore(s.chipset_timer);
}

VnicDriver::State VnicDriver::save_state() const {
  State s;
  {
    core::MutexLock lock(const_cast<core::Mutex&>(priv_mu_));
    s.tx_tail = tx_tail_;
    s.tx_head = tx_head_;
  }
  s.stats = stats_.snapshot();
  s.flush_reads = flush_reads_.load();
  s.fail_open = fail_open_.load();
  s.drop_rx = drop_rx_.load();
  s.skip_queue_stop = skip_queue_stop_.load();
  s.ring_resets = ring_resets_.load();
  s.exclusion_violations = exclusion_violations_.load();
  return s;
}

bool VnicDriver::check_state(const State& s) const {
  // The `faults` knob's fail_open takes an errno 0..4095.
  return s.tx_tail - s.tx_head <= cfg_.ring_size && s.fail_open >= 0 && s.fail_open < 4096;
}

void VnicDriver::load_state(const State& s) {
  {
    core::MutexLock lock(priv_mu_);
    tx_tail_ = s.tx_tail;
    tx_head_ = s.tx_head;
  }
  stats_.restore(s.stats);
  flush_reads_.store(s.flush_reads);
  fail_open_.store(s.fail_open);
  drop_rx_.store(s.drop_rx);
  skip_queue_stop_.store(s.skip_queue_stop);
  ring_resets_.store(s.ring_resets);
  exclusion_violations_.store(s.exclusion_violations);
}

LoopbackDriver::State LoopbackDriver::save_state() const {
  State s;
  s.packets = packets_.load();
  s.bytes = bytes_.load();
  s.delivered = delivered_.load();
  core::MutexLock lock(backlog_mu_);
  s.backlog.assign(backlog_.begin(), backlog_.end());
  return s;
}

void LoopbackDriver::load_state(const State& s) {
  packets_.store(s.packets);
  bytes_.store(s.bytes);
  delivered_.store(s.delivered);
  core::MutexLock lock(backlog_mu_);
  backlog_.assign(s.backlog.begin(), s.backlog.end());
}

// --- NetKnobs (the traffic generator) -----------------------------------------------------

NetKnobs::State NetKnobs::save_state() const {
  State s;
  {
    core::MutexLock lock(mu_);
    s.count = count_;
    s.size = size_;
    s.rate = rate_;
    s.cpus = cpus_;
    s.sent = sent_;
    s.next_id = next_id_;
    s.next_due = next_due_;
    s.start_carrier_downs = start_carrier_downs_;
    s.start_time = start_time_;
    s.end_time = end_time_;
    s.lag = lag_;
    s.max_lag = max_lag_;
  }
  s.running = running_.load();
  s.stalled = stalled_.load();
  s.locked = locked_.load();
  s.busy = busy_.load();
  s.stalls = stalls_.load();
  s.timer = timer_.state();
  return s;
}

bool NetKnobs::check_state(const State& s) const {
  // What traffic_store accepts (rate and cpus also divide).
  return s.size >= 14 && s.size <= 65535 && s.rate >= 1 && s.rate <= 100000000 && s.cpus >= 1 &&
         s.cpus <= dev_->config().nr_cpu_ids;
}

void NetKnobs::cancel_timer() { timer_.del_timer_sync(); }

void NetKnobs::load_state(const State& s) {
  {
    core::MutexLock lock(mu_);
    count_ = s.count;
    size_ = s.size;
    rate_ = s.rate;
    cpus_ = s.cpus;
    sent_ = s.sent;
    next_id_ = s.next_id;
    next_due_ = s.next_due;
    start_carrier_downs_ = s.start_carrier_downs;
    start_time_ = s.start_time;
    end_time_ = s.end_time;
    lag_ = s.lag;
    max_lag_ = s.max_lag;
  }
  running_.store(s.running);
  stalled_.store(s.stalled);
  locked_.store(s.locked);
  busy_.store(s.busy);
  stalls_.store(s.stalls);
  timer_.restore(s.timer);
}

// --- queues and the PCI function ----------------------------------------------------------

NetRxQueue::State NetRxQueue::save_state() const {
  core::MutexLock lock(mu_);
  return {.rps_map = rps_map_, .flow_table_size = flow_table_size_};
}

void NetRxQueue::load_state(const State& s) {
  core::MutexLock lock(mu_);
  rps_map_ = s.rps_map;
  flow_table_size_ = s.flow_table_size;
}

std::vector<bool> NetTxQueue::save_state() const {
  core::MutexLock lock(mu_);
  return xps_cpus_;
}

void NetTxQueue::load_state(const std::vector<bool>& xps_cpus) {
  core::MutexLock lock(mu_);
  xps_cpus_ = xps_cpus;
}

PciFunction::State PciFunction::save_state() const {
  core::MutexLock lock(mu_);
  return {.numa_node = numa_node_,
          .runtime_pm_allowed = runtime_pm_allowed_,
          .command_lo = config_[0x04],
          .command_hi = config_[0x05],
          .interrupt_line = config_[0x3c],
          .driver_override = driver_override_};
}

bool PciFunction::check_state(const State& s) const {
  return s.numa_node == -1 ||
         (s.numa_node >= 0 && s.numa_node < static_cast<int>(cfg_.nr_node_ids));
}

void PciFunction::load_state(const State& s) {
  core::MutexLock lock(mu_);
  numa_node_ = s.numa_node;
  runtime_pm_allowed_ = s.runtime_pm_allowed;
  config_[0x04] = s.command_lo;
  config_[0x05] = s.command_hi;
  config_[0x3c] = s.interrupt_line;
  driver_override_ = s.driver_override;
}

// --- the record ---------------------------------------------------------------------------

namespace {

constexpr unsigned kVersion = 1;

// Reads fields of one prefix; a missing or mistyped field clears ok.
class Fields {
 public:
  Fields(const core::StateReader& r, std::string prefix) : r_(r), prefix_(std::move(prefix)) {}
  bool ok() const { return ok_; }
  void fail() { ok_ = false; }
  std::string key(std::string_view k) const { return prefix_ + std::string(k); }
  std::uint64_t u64(std::string_view k, std::uint64_t max = UINT64_MAX) {
    auto v = r_.u64(key(k));
    if (!v || *v > max) return bad<std::uint64_t>();
    return *v;
  }
  std::uint32_t u32(std::string_view k) { return static_cast<std::uint32_t>(u64(k, UINT32_MAX)); }
  std::int64_t i64(std::string_view k) {
    auto v = r_.i64(key(k));
    return v ? *v : bad<std::int64_t>();
  }
  int i32(std::string_view k) {
    const std::int64_t v = i64(k);
    if (v < INT_MIN || v > INT_MAX) return bad<int>();
    return static_cast<int>(v);
  }
  bool b(std::string_view k) {
    auto v = r_.boolean(key(k));
    return v ? *v : bad<bool>();
  }
  std::string str(std::string_view k) {
    auto v = r_.str(key(k));
    return v ? *v : bad<std::string>();
  }
  bool has(std::string_view k) const { return r_.has(key(k)); }
  core::TimerState timer(std::string_view k) {
    const std::string p(k);
    const std::int64_t expires = i64(p + ".expires_ns");
    if (expires < 0) fail();
    return {
        .pending = b(p + ".pending"), .expires = core::Nanos(expires), .order = u64(p + ".order")};
  }

 private:
  template <typename T>
  T bad() {
    ok_ = false;
    return T{};
  }
  const core::StateReader& r_;
  const std::string prefix_;
  bool ok_ = true;
};

void put_timer(core::StateWriter& w, const std::string& p, const core::TimerState& t) {
  w.put_bool(p + ".pending", t.pending);
  w.put_i64(p + ".expires_ns", t.expires.count());
  w.put_u64(p + ".order", t.order);
}

// Space-separated tuples of decimal numbers joined by ':'.
template <std::size_t N>
bool parse_tuples(std::string_view s, std::vector<std::array<std::uint64_t, N>>& out) {
  while (!s.empty()) {
    const auto sp = s.find(' ');
    std::string_view item = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
    std::array<std::uint64_t, N> t{};
    for (std::size_t i = 0; i < N; ++i) {
      const auto colon = i + 1 < N ? item.find(':') : item.size();
      if (colon == std::string_view::npos) return false;
      const auto part = item.substr(0, colon);
      const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), t[i]);
      if (ec != std::errc{} || p != part.data() + part.size() || part.empty()) return false;
      item = i + 1 < N ? item.substr(colon + 1) : std::string_view{};
    }
    out.push_back(t);
  }
  return true;
}

std::string skb_text(const SkBuff& b) {
  return fmt::format("{}:{}:{}", b.len, b.id, b.multicast ? 1 : 0);
}

std::string skbs_text(const std::vector<SkBuff>& v) {
  std::string out;
  for (const auto& b : v) out += (out.empty() ? "" : " ") + skb_text(b);
  return out;
}

bool to_skb(const std::array<std::uint64_t, 3>& t, SkBuff& b) {
  if (t[0] > UINT32_MAX || t[2] > 1) return false;
  b = {.len = static_cast<std::uint32_t>(t[0]), .id = t[1], .multicast = t[2] == 1};
  return true;
}

bool parse_skbs(const std::string& s, std::vector<SkBuff>& out) {
  std::vector<std::array<std::uint64_t, 3>> t;
  if (!parse_tuples(s, t)) return false;
  for (const auto& x : t) {
    SkBuff b;
    if (!to_skb(x, b)) return false;
    out.push_back(b);
  }
  return true;
}

std::string bits_text(const std::vector<bool>& v) {
  std::string out;
  for (bool b : v) out += b ? '1' : '0';
  return out;
}

// A CPU mask is empty (never stored) or nr_cpu_ids wide.
bool parse_bits(const std::string& s, unsigned width, std::vector<bool>& out) {
  if (!s.empty() && s.size() != width) return false;
  for (char c : s) {
    if (c != '0' && c != '1') return false;
    out.push_back(c == '1');
  }
  return true;
}

// One interface, as the record holds it.
struct IfaceState {
  NetDevice::State dev;
  std::optional<VnicDriver::State> nic;
  std::optional<VnicHardware::State> hw;
  std::optional<LoopbackDriver::State> lo;
  NetKnobs::State knobs;
  std::optional<PciFunction::State> pci;
  std::vector<NetRxQueue::State> rx;
  std::vector<std::vector<bool>> tx;
};

constexpr const char* kDqlFields[] = {"num_queued",      "adj_limit",         "last_obj_cnt",
                                      "limit",           "num_completed",     "prev_ovlimit",
                                      "prev_num_queued", "prev_last_obj_cnt", "lowest_slack",
                                      "max_limit",       "min_limit"};
constexpr unsigned Dql::*kDqlMembers[] = {
    &Dql::num_queued,    &Dql::adj_limit,    &Dql::last_obj_cnt,    &Dql::limit,
    &Dql::num_completed, &Dql::prev_ovlimit, &Dql::prev_num_queued, &Dql::prev_last_obj_cnt,
    &Dql::lowest_slack,  &Dql::max_limit,    &Dql::min_limit};

void save_iface(const NetStateIface& x, const std::string& p, core::StateWriter& w) {
  const NetDevice& dev = *x.dev;
  w.put_str(p + "name", dev.name());
  w.put_str(p + "kind", dev.config().kind);
  w.put_bool(p + "registered", dev.dev_isalive());  // unbound from its PCI driver: false
  const NetDevice::State d = dev.save_state();
  w.put_bool(p + "running", d.running);
  w.put_bool(p + "nocarrier", d.nocarrier);
  w.put_bool(p + "dormant", d.dormant);
  w.put_bool(p + "testing", d.testing);
  w.put_i64(p + "carrier_up_count", d.carrier_up_count);
  w.put_i64(p + "carrier_down_count", d.carrier_down_count);
  w.put_u64(p + "operstate", static_cast<unsigned>(d.operstate));
  w.put_u64(p + "flags", d.flags);
  w.put_u64(p + "gflags", d.gflags);
  w.put_i64(p + "promiscuity", d.promiscuity);
  w.put_i64(p + "allmulti", d.allmulti);
  w.put_i64(p + "mtu", d.mtu);
  w.put_u64(p + "tx_queue_len", d.tx_queue_len);
  w.put_i64(p + "group", d.group);
  w.put_bool(p + "proto_down", d.proto_down);
  w.put_bool(p + "threaded", d.threaded);
  w.put_u64(p + "gro_flush_timeout", d.gro_flush_timeout);
  w.put_u64(p + "napi_defer_hard_irqs", d.napi_defer_hard_irqs);
  w.put_str(p + "ifalias", d.ifalias);
  w.put_bool(p + "xoff", d.xoff);
  w.put_bool(p + "stack_xoff", d.stack_xoff);
  w.put_bool(p + "xmit_hung", d.xmit_hung);
  for (std::size_t q = 0; q < d.dql.size(); ++q) {
    const std::string qp = fmt::format("{}dql{}.", p, q);
    for (std::size_t f = 0; f < std::size(kDqlFields); ++f)
      w.put_u64(qp + kDqlFields[f], d.dql[q].*kDqlMembers[f]);
    w.put_i64(qp + "slack_start_ns", d.dql[q].slack_start_time.count());
    w.put_i64(qp + "hold_time_ns", d.dql[q].slack_hold_time.count());
  }
  w.put_i64(p + "trans_start_ns", d.trans_start);
  w.put_u64(p + "trans_timeout", d.trans_timeout);
  w.put_u64(p + "tx_busy", d.tx_busy);
  w.put_u64(p + "tx_locked", d.tx_locked);
  w.put_u64(p + "core_tx_dropped", d.core_tx_dropped);
  w.put_bool(p + "rx_sched", d.rx_sched);
  w.put_u64(p + "napi_polls", d.napi_polls);
  put_timer(w, p + "watchdog", d.watchdog);
  put_timer(w, p + "rx_softirq", d.rx_softirq);

  if (x.nic) {
    const VnicDriver::State n = x.nic->save_state();
    w.put_u64(p + "nic.tx_tail", n.tx_tail);
    w.put_u64(p + "nic.tx_head", n.tx_head);
    for (unsigned i = 0; i < kStatCount; ++i)
      w.put_u64(p + "nic.stats." + std::string(kStatNames[i]), n.stats[i]);
    w.put_bool(p + "nic.flush_reads", n.flush_reads);
    w.put_i64(p + "nic.fail_open", n.fail_open);
    w.put_u64(p + "nic.drop_rx", n.drop_rx);
    w.put_bool(p + "nic.skip_queue_stop", n.skip_queue_stop);
    w.put_u64(p + "nic.ring_resets", n.ring_resets);
    w.put_u64(p + "nic.exclusion_violations", n.exclusion_violations);

    const VnicHardware::State h = x.nic->hardware().save_state(n.tx_head, n.tx_tail);
    w.put_bool(p + "hw.tx_busy", h.tx_busy);
    w.put_u64(p + "hw.head", h.hw_head);
    w.put_u64(p + "hw.tail", h.hw_tail);
    w.put_i64(p + "hw.tx_due_ns", h.tx_due.count());
    w.put_u64(p + "hw.rx_mode", h.rx_mode);
    w.put_bool(p + "hw.tx_en", h.tx_en);
    w.put_bool(p + "hw.rx_en", h.rx_en);
    w.put_bool(p + "hw.cable", h.cable);
    w.put_bool(p + "hw.flap_down", h.flap_down);
    w.put_bool(p + "hw.link", h.link);
    w.put_bool(p + "hw.hang_tx", h.hang_tx);
    w.put_u64(p + "hw.writeback_head", h.writeback_head);
    w.put_u64(p + "hw.doorbell_backwards", h.doorbell_backwards);
    w.put_u64(p + "hw.rx_missed", h.rx_missed);
    std::string desc;
    for (const auto& [i, skb] : h.descriptors)
      desc += fmt::format("{}{}:{}", desc.empty() ? "" : " ", i, skb_text(skb));
    w.put_str(p + "hw.descriptors", desc);
    w.put_str(p + "hw.rx_ring", skbs_text(h.rx_ring));
    for (std::size_t c = 0; c < h.bus.queues.size(); ++c) {
      if (h.bus.queues[c].empty()) continue;  // absent: nothing posted
      std::string q;
      for (const auto& pw : h.bus.queues[c])
        q += fmt::format("{}{}:{}:{}", q.empty() ? "" : " ", pw.seq, pw.offset, pw.value);
      w.put_str(fmt::format("{}mmio.cpu{}", p, c), q);
    }
    w.put_str(p + "mmio.rng", h.bus.rng);
    w.put_u64(p + "mmio.seed", h.bus.seed);
    w.put_u64(p + "mmio.next_seq", h.bus.next_seq);
    w.put_u64(p + "mmio.posted", h.bus.stats.posted);
    w.put_u64(p + "mmio.delivered", h.bus.stats.delivered);
    w.put_u64(p + "mmio.reads", h.bus.stats.reads);
    w.put_u64(p + "mmio.flushes", h.bus.stats.flushes);
    w.put_u64(p + "mmio.reordered", h.bus.stats.reordered);
    put_timer(w, p + "hw.tx_timer", h.tx_timer);
    put_timer(w, p + "hw.chipset_timer", h.chipset_timer);
  }
  if (x.lo) {
    const LoopbackDriver::State l = x.lo->save_state();
    w.put_u64(p + "lo.packets", l.packets);
    w.put_u64(p + "lo.bytes", l.bytes);
    w.put_u64(p + "lo.delivered", l.delivered);
    w.put_str(p + "lo.backlog", skbs_text(l.backlog));
  }

  const NetKnobs::State k = x.knobs->save_state();
  w.put_u64(p + "traffic.count", k.count);
  w.put_u64(p + "traffic.size", k.size);
  w.put_u64(p + "traffic.rate", k.rate);
  w.put_u64(p + "traffic.cpus", k.cpus);
  w.put_u64(p + "traffic.sent", k.sent);
  w.put_u64(p + "traffic.next_id", k.next_id);
  w.put_i64(p + "traffic.next_due_ns", k.next_due.count());
  w.put_bool(p + "traffic.running", k.running);
  w.put_bool(p + "traffic.stalled", k.stalled);
  w.put_i64(p + "traffic.start_carrier_downs", k.start_carrier_downs);
  w.put_i64(p + "traffic.start_ns", k.start_time.count());
  w.put_i64(p + "traffic.end_ns", k.end_time.count());
  w.put_i64(p + "traffic.lag_ns", k.lag.count());
  w.put_i64(p + "traffic.max_lag_ns", k.max_lag.count());
  w.put_u64(p + "traffic.locked", k.locked);
  w.put_u64(p + "traffic.busy", k.busy);
  w.put_u64(p + "traffic.stalls", k.stalls);
  put_timer(w, p + "traffic.timer", k.timer);

  if (x.pci) {
    const PciFunction::State s = x.pci->save_state();
    w.put_i64(p + "pci.numa_node", s.numa_node);
    w.put_bool(p + "pci.runtime_pm_allowed", s.runtime_pm_allowed);
    w.put_u64(p + "pci.command", s.command_lo | (s.command_hi << 8));
    w.put_u64(p + "pci.interrupt_line", s.interrupt_line);
    w.put_str(p + "pci.driver_override", s.driver_override);
  }
  for (std::size_t q = 0; q < x.rx.size(); ++q) {
    const NetRxQueue::State r = x.rx[q]->save_state();
    w.put_str(fmt::format("{}rx{}.rps_cpus", p, q), bits_text(r.rps_map));
    w.put_u64(fmt::format("{}rx{}.rps_flow_cnt", p, q), r.flow_table_size);
  }
  for (std::size_t q = 0; q < x.tx.size(); ++q)
    w.put_str(fmt::format("{}tx{}.xps_cpus", p, q), bits_text(x.tx[q]->save_state()));
}

// Reads and checks one interface's fields; nothing changes. EINVAL for a
// record that is not this interface's or holds a value it cannot take.
core::Status read_iface(const core::StateReader& r, const NetStateIface& x, const std::string& p,
                        IfaceState& out) {
  Fields f(r, p);
  const NetDevice& dev = *x.dev;
  if (f.str("name") != dev.name() || f.str("kind") != dev.config().kind) return core::Errno{EINVAL};
  // A driver binding that differs (bind/unbind since the snapshot) is not
  // restored: EBUSY, nothing changes (docs/snapshot.md).
  if (r.has(p + "registered") && f.b("registered") != dev.dev_isalive()) return core::Errno{EBUSY};
  NetDevice::State& d = out.dev;
  d.running = f.b("running");
  d.nocarrier = f.b("nocarrier");
  d.dormant = f.b("dormant");
  d.testing = f.b("testing");
  d.carrier_up_count = f.i32("carrier_up_count");
  d.carrier_down_count = f.i32("carrier_down_count");
  d.operstate = static_cast<Operstate>(f.u64("operstate", static_cast<unsigned>(Operstate::Up)));
  d.flags = f.u32("flags");
  d.gflags = f.u32("gflags");
  d.promiscuity = f.i32("promiscuity");
  d.allmulti = f.i32("allmulti");
  d.mtu = f.i32("mtu");
  d.tx_queue_len = f.u32("tx_queue_len");
  d.group = f.i32("group");
  d.proto_down = f.b("proto_down");
  d.threaded = f.b("threaded");
  d.gro_flush_timeout = f.u64("gro_flush_timeout", ULONG_MAX);
  d.napi_defer_hard_irqs = f.u32("napi_defer_hard_irqs");
  d.ifalias = f.str("ifalias");
  d.xoff = f.b("xoff");
  d.stack_xoff = f.b("stack_xoff");
  d.xmit_hung = f.b("xmit_hung");
  for (unsigned q = 0; q < dev.config().num_tx_queues; ++q) {
    const std::string qp = fmt::format("dql{}.", q);
    Dql dq;
    for (std::size_t i = 0; i < std::size(kDqlFields); ++i)
      dq.*kDqlMembers[i] = f.u32(qp + kDqlFields[i]);
    dq.slack_start_time = core::Nanos(f.i64(qp + "slack_start_ns"));
    dq.slack_hold_time = core::Nanos(f.i64(qp + "hold_time_ns"));
    d.dql.push_back(dq);
  }
  if (f.has(fmt::format("dql{}.limit", dev.config().num_tx_queues))) return core::Errno{EINVAL};
  d.trans_start = f.i64("trans_start_ns");
  d.trans_timeout = f.u64("trans_timeout");
  d.tx_busy = f.u64("tx_busy");
  d.tx_locked = f.u64("tx_locked");
  d.core_tx_dropped = f.u64("core_tx_dropped");
  d.rx_sched = f.b("rx_sched");
  d.napi_polls = f.u64("napi_polls");
  d.watchdog = f.timer("watchdog");
  d.rx_softirq = f.timer("rx_softirq");
  if (!f.ok() || !dev.check_state(d)) return core::Errno{EINVAL};

  if (x.nic != nullptr) {
    VnicDriver::State& n = out.nic.emplace();
    n.tx_tail = f.u32("nic.tx_tail");
    n.tx_head = f.u32("nic.tx_head");
    for (unsigned i = 0; i < kStatCount; ++i)
      n.stats[i] = f.u64("nic.stats." + std::string(kStatNames[i]));
    n.flush_reads = f.b("nic.flush_reads");
    n.fail_open = f.i32("nic.fail_open");
    n.drop_rx = f.u64("nic.drop_rx");
    n.skip_queue_stop = f.b("nic.skip_queue_stop");
    n.ring_resets = f.u64("nic.ring_resets");
    n.exclusion_violations = f.u64("nic.exclusion_violations");
    if (!f.ok() || !x.nic->check_state(n)) return core::Errno{EINVAL};

    VnicHardware& hw = x.nic->hardware();
    VnicHardware::State& h = out.hw.emplace();
    h.tx_busy = f.b("hw.tx_busy");
    h.hw_head = f.u32("hw.head");
    h.hw_tail = f.u32("hw.tail");
    h.tx_due = core::Nanos(f.i64("hw.tx_due_ns"));
    h.rx_mode = f.u32("hw.rx_mode");
    h.tx_en = f.b("hw.tx_en");
    h.rx_en = f.b("hw.rx_en");
    h.cable = f.b("hw.cable");
    h.flap_down = f.b("hw.flap_down");
    h.link = f.b("hw.link");
    h.hang_tx = f.b("hw.hang_tx");
    h.writeback_head = f.u32("hw.writeback_head");
    h.doorbell_backwards = f.u64("hw.doorbell_backwards");
    h.rx_missed = f.u64("hw.rx_missed");
    std::vector<std::array<std::uint64_t, 4>> desc;
    if (!parse_tuples(f.str("hw.descriptors"), desc)) return core::Errno{EINVAL};
    for (const auto& t : desc) {
      SkBuff b;
      if (t[0] > UINT32_MAX || !to_skb({t[1], t[2], t[3]}, b)) return core::Errno{EINVAL};
      h.descriptors.emplace_back(static_cast<std::uint32_t>(t[0]), b);
    }
    if (!parse_skbs(f.str("hw.rx_ring"), h.rx_ring)) return core::Errno{EINVAL};
    const unsigned ncpus = hw.bus().ncpus();
    h.bus.queues.resize(ncpus);
    const std::string cpu_prefix = p + "mmio.cpu";
    for (const auto& key : r.keys_with_prefix(cpu_prefix)) {
      std::uint64_t c = 0;
      const std::string_view idx = std::string_view(key).substr(cpu_prefix.size());
      const auto [end, ec] = std::from_chars(idx.data(), idx.data() + idx.size(), c);
      if (ec != std::errc{} || end != idx.data() + idx.size() || c >= ncpus)
        return core::Errno{EINVAL};
      std::vector<std::array<std::uint64_t, 3>> t;
      if (!parse_tuples(*r.str(key), t) || t.empty()) return core::Errno{EINVAL};
      for (const auto& pw : t) {
        if (pw[1] > UINT32_MAX || pw[2] > UINT32_MAX) return core::Errno{EINVAL};
        h.bus.queues[c].push_back(
            {pw[0], static_cast<std::uint32_t>(pw[1]), static_cast<std::uint32_t>(pw[2])});
      }
    }
    h.bus.rng = f.str("mmio.rng");
    h.bus.seed = f.u64("mmio.seed");
    h.bus.next_seq = f.u64("mmio.next_seq");
    h.bus.stats.posted = f.u64("mmio.posted");
    h.bus.stats.delivered = f.u64("mmio.delivered");
    h.bus.stats.reads = f.u64("mmio.reads");
    h.bus.stats.flushes = f.u64("mmio.flushes");
    h.bus.stats.reordered = f.u64("mmio.reordered");
    h.tx_timer = f.timer("hw.tx_timer");
    h.chipset_timer = f.timer("hw.chipset_timer");
    // hw.flap_down: a link_flap holds the link down; the schedule that
    // brings it back is the control plane's record (fault_inject_state.cpp).
    if (!f.ok() || !hw.check_state(h)) return core::Errno{EINVAL};
  } else if (f.has("nic.tx_tail")) {
    return core::Errno{EINVAL};
  }
  if (x.lo != nullptr) {
    LoopbackDriver::State& l = out.lo.emplace();
    l.packets = f.u64("lo.packets");
    l.bytes = f.u64("lo.bytes");
    l.delivered = f.u64("lo.delivered");
    if (!parse_skbs(f.str("lo.backlog"), l.backlog)) return core::Errno{EINVAL};
    if (!f.ok()) return core::Errno{EINVAL};
  }

  NetKnobs::State& k = out.knobs;
  k.count = f.u64("traffic.count");
  k.size = f.u32("traffic.size");
  k.rate = f.u64("traffic.rate");
  k.cpus = f.u32("traffic.cpus");
  k.sent = f.u64("traffic.sent");
  k.next_id = f.u64("traffic.next_id");
  k.next_due = core::Nanos(f.i64("traffic.next_due_ns"));
  k.running = f.b("traffic.running");
  k.stalled = f.b("traffic.stalled");
  k.start_carrier_downs = f.i32("traffic.start_carrier_downs");
  k.start_time = core::Nanos(f.i64("traffic.start_ns"));
  k.end_time = core::Nanos(f.i64("traffic.end_ns"));
  k.lag = core::Nanos(f.i64("traffic.lag_ns"));
  k.max_lag = core::Nanos(f.i64("traffic.max_lag_ns"));
  k.locked = f.u64("traffic.locked");
  k.busy = f.u64("traffic.busy");
  k.stalls = f.u64("traffic.stalls");
  k.timer = f.timer("traffic.timer");
  if (!f.ok() || !x.knobs->check_state(k)) return core::Errno{EINVAL};

  if (x.pci) {
    PciFunction::State& s = out.pci.emplace();
    s.numa_node = f.i32("pci.numa_node");
    s.runtime_pm_allowed = f.b("pci.runtime_pm_allowed");
    const std::uint64_t command = f.u64("pci.command", 0xffff);
    s.command_lo = static_cast<std::uint8_t>(command & 0xff);
    s.command_hi = static_cast<std::uint8_t>(command >> 8);
    s.interrupt_line = static_cast<std::uint8_t>(f.u64("pci.interrupt_line", 0xff));
    if (r.has(p + "pci.driver_override")) s.driver_override = f.str("pci.driver_override");
    if (!f.ok() || !x.pci->check_state(s)) return core::Errno{EINVAL};
  }
  const unsigned width = dev.config().nr_cpu_ids;
  for (std::size_t q = 0; q < x.rx.size(); ++q) {
    NetRxQueue::State s;
    if (!parse_bits(f.str(fmt::format("rx{}.rps_cpus", q)), width, s.rps_map))
      return core::Errno{EINVAL};
    s.flow_table_size = f.u64(fmt::format("rx{}.rps_flow_cnt", q));
    // store_rps_dev_flow_table_cnt: 0 or a power of two within its bound.
    if (s.flow_table_size & (s.flow_table_size - 1) || s.flow_table_size > (1ULL << 27))
      return core::Errno{EINVAL};
    out.rx.push_back(std::move(s));
  }
  for (std::size_t q = 0; q < x.tx.size(); ++q) {
    std::vector<bool> bits;
    if (!parse_bits(f.str(fmt::format("tx{}.xps_cpus", q)), width, bits))
      return core::Errno{EINVAL};
    out.tx.push_back(std::move(bits));
  }
  if (!f.ok()) return core::Errno{EINVAL};
  return {};
}

}  // namespace

StateHandler net_state_handler(std::vector<NetStateIface> ifaces) {
  auto all = std::make_shared<const std::vector<NetStateIface>>(std::move(ifaces));
  StateHandler h;
  h.name = "net";
  h.version = kVersion;
  h.save = [all](core::StateWriter& w) {
    core::RtnlLock rtnl;  // a configuration store does not run half way through the record
    w.put_u64("net.interfaces", all->size());
    for (std::size_t i = 0; i < all->size(); ++i) save_iface((*all)[i], fmt::format("if{}.", i), w);
  };
  // The machine boots with every PCI NIC bound (probed): a record with an
  // unbound one (registered false) does not load into it.
  h.loads_into_new_boot = [all] {
    for (const auto& x : *all)
      if (!x.dev->dev_isalive()) return false;
    return true;
  };
  h.load = [all](const core::StateReader& r) -> core::Status {
    // Everything is read and checked first: a bad record changes nothing.
    auto n = r.u64("net.interfaces");
    if (!n || *n != all->size() || r.version() != kVersion) return core::Errno{EINVAL};
    std::vector<IfaceState> states(all->size());
    for (std::size_t i = 0; i < all->size(); ++i)
      VSYSFS_TRY_STATUS(read_iface(r, (*all)[i], fmt::format("if{}.", i), states[i]));
    if (r.has(fmt::format("if{}.name", all->size()))) return core::Errno{EINVAL};

    // The timers go first, with none of the devices' locks held (their
    // callbacks take them): senders, then the devices, then the MACs.
    for (const auto& x : *all) x.knobs->cancel_timer();
    for (const auto& x : *all) x.dev->cancel_timers();
    for (const auto& x : *all)
      if (x.nic) x.nic->hardware().cancel_timers();
    core::RtnlLock rtnl;
    for (std::size_t i = 0; i < all->size(); ++i) {
      const NetStateIface& x = (*all)[i];
      IfaceState& s = states[i];
      if (x.nic) {
        x.nic->load_state(*s.nic);
        x.nic->hardware().load_state(*s.hw);
      }
      if (x.lo) x.lo->load_state(*s.lo);
      if (x.pci) x.pci->load_state(*s.pci);
      for (std::size_t q = 0; q < x.rx.size(); ++q) x.rx[q]->load_state(s.rx[q]);
      for (std::size_t q = 0; q < x.tx.size(); ++q) x.tx[q]->load_state(s.tx[q]);
      x.dev->load_state(s.dev);
      x.knobs->load_state(s.knobs);
    }
    return {};
  };
  return h;
}

}  // namespace vsysfs::devices
