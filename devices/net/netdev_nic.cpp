// The simulated NIC, its driver, and the loopback driver (see
// netdev_nic.hpp). Hook locking per netdevices.rst (docs/kernel-semantics.md section 5.5); the
// flushing read per io_ordering.rst (docs/kernel-semantics.md section 6).

#include "devices/net/netdev_nic.hpp"

#include <cerrno>
#include <thread>

namespace vsysfs::devices {
namespace {

// include/uapi/linux/sockios.h, mii.h
constexpr unsigned SIOCGMIIPHY = 0x8947, SIOCGMIIREG = 0x8948;
constexpr std::uint32_t MII_BMCR = 0, MII_BMSR = 1;
constexpr std::uint32_t BMSR_LSTATUS = 0x0004;
// 10/100/1000 capable, autoneg capable/complete, extended status.
constexpr std::uint32_t kBmsrBase = 0x7809 | 0x0020 | 0x0100;
constexpr unsigned kPhyId = 1;
// preamble (8) + FCS (4) + inter-frame gap (12)
constexpr std::uint32_t kWireOverhead = 24;
// How long the chipset holds a posted write nobody flushes.
constexpr core::Nanos kChipsetDrainDelay = std::chrono::microseconds(10);

}  // namespace

// --- hardware -----------------------------------------------------------------------

VnicHardware::VnicHardware(core::Env& env, std::string name, const VnicConfig& cfg)
    : env_(env),
      name_(std::move(name)),
      cfg_(cfg),
      descriptors_(cfg.ring_size),
      bus_(*this, cfg.ncpus, cfg.mmio_seed, "vnic.mmio_bus", core::kRankMmio),
      tx_timer_(env.clock, [this] { tx_done(); }),
      chipset_timer_(env.clock, [this] { bus_.drain(); }) {}

VnicHardware::~VnicHardware() {
  chipset_timer_.del_timer_sync();
  tx_timer_.del_timer_sync();
}

void VnicHardware::quiesce() {
  chipset_timer_.del_timer_sync();
  tx_timer_.del_timer_sync();
}

void VnicHardware::post_flush_later() {
  if (bus_.pending() != 0 && !chipset_timer_.pending()) chipset_timer_.schedule_in(kChipsetDrainDelay);
}

core::Nanos VnicHardware::frame_time(std::uint32_t len) const {
  const std::uint64_t bits = static_cast<std::uint64_t>(len + kWireOverhead) * 8;
  const std::uint64_t speed = cfg_.speed > 0 ? static_cast<std::uint64_t>(cfg_.speed) : 1;
  // bits / (speed * 1e6) s = bits * 1000 / speed ns
  return core::Nanos{static_cast<std::int64_t>(bits * 1000 / speed)};
}

// Called under the bus lock, in the order the writes reach the device.
void VnicHardware::mmio_write(std::uint32_t offset, std::uint32_t value) {
  core::MutexLock lock(hw_mu_);
  switch (offset) {
    case kCtrl:
      if (value & kCtrlReset) {
        // TX ring reset: frames in flight are abandoned and the head and
        // tail registers go back to 0, as e1000_configure_tx and
        // ixgbe_configure_tx_ring write TDH = TDT = 0: the driver restarts
        // its producer index at 0 after every reset and the device must
        // agree, or every later doorbell would look backwards. A wedged
        // DMA engine comes back.
        tx_timer_.del_timer();
        tx_busy_ = false;
        hw_head_ = hw_tail_ = 0;
        writeback_head_.store(0);
        hang_tx_.store(false);
      }
      tx_en_.store(value & kCtrlTxEn);
      rx_en_.store(value & kCtrlRxEn);
      break;
    case kTxTail:
      // A doorbell below the last one: two CPUs' writes were reordered.
      if (static_cast<std::int32_t>(value - hw_tail_) < 0) {
        const auto n = doorbell_backwards_.fetch_add(1) + 1;
        env_.log(nullptr, name_, "doorbell_backwards", "error",
                 {{"value", value}, {"last", hw_tail_}, {"count", n}});
        return;  // ignored: the newer tail already arrived
      }
      hw_tail_ = value;
      start_tx_locked();
      break;
    case kRxMode:
      rx_mode_ = value;
      break;
    default:
      break;
  }
}

std::uint32_t VnicHardware::mmio_read(std::uint32_t offset) {
  core::MutexLock lock(hw_mu_);
  switch (offset) {
    case kStatus: return link_ok() ? kStatusLink : 0;
    case kTxHead: return hw_head_;
    case kDbErr: return static_cast<std::uint32_t>(doorbell_backwards_.load());
    case kCtrl: return (tx_en_.load() ? kCtrlTxEn : 0) | (rx_en_.load() ? kCtrlRxEn : 0);
    default: return 0xffffffff;  // unimplemented register: master abort
  }
}

// The MAC only transmits with link: without it the descriptors wait in
// the ring (the driver's carrier is off, so the watchdog does not fire)
// and go out when the link returns (kick_tx).
void VnicHardware::start_tx_locked() {
  if (tx_busy_ || !tx_en_.load() || hw_head_ == hw_tail_ || hang_tx_.load() || !link_ok()) return;
  tx_busy_ = true;
  const SkBuff skb = read_descriptor(hw_head_);
  tx_due_ = env_.now() + frame_time(skb.len);
  tx_timer_.mod_timer(tx_due_);
}

void VnicHardware::kick_tx() {
  core::MutexLock lock(hw_mu_);
  start_tx_locked();
}

// The MAC finished the frame at hw_head_. Context: timer (the device).
void VnicHardware::tx_done() {
  SkBuff skb;
  {
    core::MutexLock lock(hw_mu_);
    // A reset (or a newer frame) since this expiry was armed: a callback
    // that was already running when the timer was deleted completes
    // nothing of the new ring.
    if (!tx_busy_ || env_.now() < tx_due_) return;
    tx_busy_ = false;
    // A hung DMA engine never completes: the ring stays full until reset.
    if (hang_tx_.load() || hw_head_ == hw_tail_) return;
    // The link went away under the frame: it did not leave; the MAC sends
    // it again when the link is back (kick_tx). Nothing completes while
    // there is no link, so no TX counter moves while the carrier is off.
    if (!link_ok()) return;
    skb = read_descriptor(hw_head_);
    ++hw_head_;
    writeback_head_.store(hw_head_);
    start_tx_locked();
  }
  if (peer_) peer_->wire_receive(skb);
  if (driver_) driver_->tx_irq();
}

void VnicHardware::write_descriptor(std::uint32_t index, const SkBuff& skb) {
  core::MutexLock lock(desc_mu_);
  descriptors_[index % descriptors_.size()] = skb;
}

SkBuff VnicHardware::read_descriptor(std::uint32_t index) const {
  core::MutexLock lock(desc_mu_);
  return descriptors_[index % descriptors_.size()];
}

void VnicHardware::wire_receive(const SkBuff& skb) {
  if (!rx_en_.load()) return;
  {
    core::MutexLock lock(rx_mu_);
    if (rx_ring_.size() >= cfg_.ring_size) {
      // No free descriptor: the frame is missed (rx_missed_errors).
      rx_missed_.fetch_add(1);
      return;
    }
    rx_ring_.push_back(skb);
  }
  if (driver_) driver_->rx_irq();
}

std::vector<SkBuff> VnicHardware::rx_take(std::size_t max) {
  core::MutexLock lock(rx_mu_);
  std::vector<SkBuff> out;
  while (out.size() < max && !rx_ring_.empty()) {
    out.push_back(rx_ring_.front());
    rx_ring_.pop_front();
  }
  return out;
}

bool VnicHardware::rx_pending() const {
  core::MutexLock lock(rx_mu_);
  return !rx_ring_.empty();
}

void VnicHardware::rx_clear() {
  core::MutexLock lock(rx_mu_);
  rx_ring_.clear();
}

bool VnicHardware::link_ok() const {
  const bool here = cable_.load() && !flap_down_.load() && tx_en_.load() && rx_en_.load();
  if (!peer_) return here;
  return here && peer_->cable_.load() && !peer_->flap_down_.load() && peer_->tx_en_.load() &&
         peer_->rx_en_.load();
}

void VnicHardware::set_cable(bool in) {
  cable_.store(in);
  update_link();
}

void VnicHardware::set_flap_down(bool down) {
  flap_down_.store(down);
  update_link();
}

void VnicHardware::update_link() {
  // One lock for every cable: a change and the link interrupts it raises
  // (which read STATUS and set the carrier) are not interleaved with
  // another change, so the carrier ends where the link ends.
  static core::Mutex link_mu{"vnic.link", core::kRankLink};
  core::MutexLock lock(link_mu);
  const bool now = link_ok();
  if (link_.exchange(now) != now) {
    env_.log(nullptr, name_, "phy_link", now ? "up" : "down");
    if (driver_) driver_->link_irq(now);
    if (now) kick_tx();  // descriptors that waited for the link
  }
  if (peer_) {
    const bool p = peer_->link_ok();
    if (peer_->link_.exchange(p) != p) {
      env_.log(nullptr, peer_->name_, "phy_link", p ? "up" : "down");
      if (peer_->driver_) peer_->driver_->link_irq(p);
      if (p) peer_->kick_tx();
    }
  }
}

// --- driver ---------------------------------------------------------------------------

// Synchronization: rtnl. Context: process.
core::Status VnicDriver::open(NetDevice& dev) {
  core::assert_rtnl();
  if (const int err = fail_open_.load(); err != 0) return core::Errno{err};
  hw_.rx_clear();
  {
    // e1000_configure_tx: TDH = TDT = 0 with the ring's next_to_use and
    // next_to_clean at 0, then the transmitter is enabled.
    core::MutexLock lock(priv_mu_);
    (void)reset_tx_ring_locked(VnicHardware::kCtrlTxEn | VnicHardware::kCtrlRxEn);
  }
  dev.netdev_tx_reset_queue();
  dev.netif_wake_queue();
  hw_.update_link();  // link interrupt on both ends
  return {};
}

// Synchronization: rtnl. Context: process. netif_running() is false and
// NAPI is stopped (NetDevice::dev_close guarantees both).
void VnicDriver::stop(NetDevice& dev) {
  core::assert_rtnl();
  if (dev.netif_running() || !dev.napi_scheduled()) {
    std::fprintf(stderr, "vsysfs: %s: stop called while running or polling\n", dev.name().c_str());
    std::abort();
  }
  dev.netif_stop_queue();
  {
    // e1000_down + e1000_clean_tx_ring: the transmitter and receiver are
    // disabled, the frames still in the ring are freed (no counter
    // moves: they were never sent) and the ring restarts at 0.
    core::MutexLock lock(priv_mu_);
    (void)reset_tx_ring_locked(0);
  }
  hw_.update_link();
  dev.netif_carrier_off();
  dev.netdev_tx_reset_queue();
  hw_.rx_clear();
}

std::uint32_t VnicDriver::reset_tx_ring_locked(std::uint32_t ctrl) {
  auto& bus = hw_.bus();
  bus.drain();  // the reset waits for the chipset to go quiet: no old doorbell after it
  bus.writel(0, VnicHardware::kCtrl, VnicHardware::kCtrlReset | ctrl);
  bus.writel(0, VnicHardware::kTxTail, 0);
  (void)bus.readl(0, VnicHardware::kStatus);  // flush: reset and enabled before we go on
  const std::uint32_t pending = tx_tail_ - tx_head_;
  tx_head_ = tx_tail_ = 0;
  return pending;
}

// Synchronization: rtnl. Context: process.
core::Result<std::uint32_t> VnicDriver::do_ioctl(NetDevice&, unsigned cmd, std::uint32_t arg) {
  core::assert_rtnl();
  switch (cmd) {
    case SIOCGMIIPHY:
      return kPhyId;
    case SIOCGMIIREG:
      if (arg == MII_BMSR) return kBmsrBase | (hw_.link_ok() ? BMSR_LSTATUS : 0);
      if (arg == MII_BMCR) return 0x1140;  // autoneg enabled, full duplex, 1000 Mb/s
      return 0;
    default:
      return core::Errno{EOPNOTSUPP};
  }
}

// Synchronization: dev_base_lock rwlock. Context: nominally process.
// Lock-free counters: never waits for a transmit.
void VnicDriver::reset_stats() {
  stats_.reset();
  hw_.reset_counters();
}

RtnlLinkStats64 VnicDriver::get_stats(const NetDevice&) const {
  core::assert_dev_base_lock();
  RtnlLinkStats64 s = stats_.snapshot();
  s[kRxMissedErrors] += hw_.rx_missed();
  s[kRxErrors] += hw_.rx_missed();
  return s;
}

// Synchronization: netif_tx_lock spinlock, or (LLTX) our priv_lock taken
// with a trylock. Context: BHs disabled. netif_queue_stopped() is false.
NetdevTx VnicDriver::hard_start_xmit(NetDevice& dev, const SkBuff& skb, unsigned cpu) {
  if (dev.lltx()) {
    if (!priv_mu_.try_lock()) return NetdevTx::Locked;
  } else {
    dev.netif_tx_lock().assert_held();
    priv_mu_.lock();
  }
  in_xmit_.fetch_add(1);
  if (in_mc_.load() != 0) exclusion_violations_.fetch_add(1);
  NetdevTx rc = NetdevTx::Ok;
  if (tx_tail_ - tx_head_ >= cfg_.ring_size) {
    // Ring full while the queue is awake: flow control is broken (only
    // reachable with the skip_queue_stop fault). The skb is not queued.
    rc = NetdevTx::Busy;
  } else {
    hw_.write_descriptor(tx_tail_, skb);
    ++tx_tail_;
    if (cfg_.bql) dev.netdev_tx_sent_queue(skb.len);
    auto& bus = hw_.bus();
    bus.writel(cpu, VnicHardware::kTxTail, tx_tail_);
    if (tx_tail_ - tx_head_ >= cfg_.ring_size && !skip_queue_stop_.load()) dev.netif_stop_queue();
    // io_ordering.txt: read a safe register before the lock is released,
    // so the doorbell reaches the device before another CPU's.
    if (flush_reads_.load()) (void)bus.readl(cpu, VnicHardware::kStatus);
    hw_.post_flush_later();
  }
  in_xmit_.fetch_sub(1);
  priv_mu_.unlock();
  return rc;
}

// Synchronization: netif_tx_lock spinlock. Context: BHs disabled.
// netif_queue_stopped() is true. Resets the TX ring.
void VnicDriver::tx_timeout(NetDevice& dev) {
  dev.netif_tx_lock().assert_held();
  std::uint32_t dropped;
  {
    core::MutexLock lock(priv_mu_);
    dropped = reset_tx_ring_locked(VnicHardware::kCtrlTxEn | VnicHardware::kCtrlRxEn);
    stats_.add(kTxErrors);
    stats_.add(kTxDropped, dropped);
    ring_resets_.fetch_add(1);
    dev.netdev_tx_reset_queue();
    dev.netif_wake_queue();
  }
  env_.log(nullptr, dev.name(), "tx_ring_reset", "OK", {{"dropped", dropped}});
}

// Synchronization: netif_tx_lock spinlock (an LLTX device additionally
// takes priv_lock: its xmit does not run under netif_tx_lock).
// Context: BHs disabled.
void VnicDriver::set_multicast_list(NetDevice& dev) {
  dev.netif_tx_lock().assert_held();
  if (dev.lltx()) {
    core::MutexLock lock(priv_mu_);
    program_rx_mode(dev);
  } else {
    program_rx_mode(dev);
  }
}

// The body of set_multicast_list, with its locks held.
void VnicDriver::program_rx_mode(NetDevice& dev) {
  in_mc_.fetch_add(1);
  if (in_xmit_.load() != 0) exclusion_violations_.fetch_add(1);
  const unsigned f = dev.flags();
  const std::uint32_t mode = ((f & IFF_PROMISC) ? 1U : 0U) | ((f & IFF_ALLMULTI) ? 2U : 0U);
  auto& bus = hw_.bus();
  bus.writel(0, VnicHardware::kRxMode, mode);
  (void)bus.readl(0, VnicHardware::kStatus);
  std::this_thread::yield();  // widen the window the exclusion test probes
  in_mc_.fetch_sub(1);
}

// Synchronization: __LINK_STATE_RX_SCHED bit. Context: softirq.
int VnicDriver::poll(NetDevice& dev, int budget) {
  if (!dev.napi_scheduled()) {
    std::fprintf(stderr, "vsysfs: %s: poll without RX_SCHED\n", dev.name().c_str());
    std::abort();
  }
  const auto frames = hw_.rx_take(static_cast<std::size_t>(budget));
  for (const SkBuff& skb : frames) {
    if (const auto fault = dev.rx_fault(skb)) {
      if (*fault == core::NetRxFault::Corrupt) {
        // e1000_clean_rx_irq drops a frame whose descriptor has
        // E1000_RXD_ERR_CE; the MAC's CRCERRS counter feeds rx_crc_errors
        // and rx_errors (e1000_update_stats).
        stats_.add(kRxCrcErrors);
        stats_.add(kRxErrors);
      } else {
        stats_.add(kRxDropped);
      }
      continue;
    }
    std::uint64_t drop = drop_rx_.load();
    bool dropped = false;
    while (drop > 0 && !dropped) dropped = drop_rx_.compare_exchange_weak(drop, drop - 1);
    if (dropped) {
      stats_.add(kRxDropped);
      continue;
    }
    stats_.add(kRxPackets);
    stats_.add(kRxBytes, skb.len);
    if (skb.multicast) stats_.add(kMulticast);
  }
  return static_cast<int>(frames.size());
}

bool VnicDriver::rx_pending(const NetDevice&) const { return hw_.rx_pending(); }

// ndo_change_carrier. Synchronization: rtnl.
core::Status VnicDriver::change_carrier(NetDevice& dev, bool on) {
  core::assert_rtnl();
  if (on) {
    dev.netif_carrier_on();
  } else {
    dev.netif_carrier_off();
  }
  return {};
}

// ethtool get_link_ksettings. Synchronization: rtnl.
bool VnicDriver::get_link_ksettings(const NetDevice& dev, LinkSettings* out) const {
  core::assert_rtnl();
  if (dev.netif_carrier_ok()) {
    out->speed = cfg_.speed;
    out->duplex = cfg_.duplex;
  } else {
    out->speed = -1;  // SPEED_UNKNOWN
    out->duplex = Duplex::Unknown;
  }
  return true;
}

// TX completion: the hardware wrote its consumer index back.
void VnicDriver::tx_irq() {
  NetDevice* dev = dev_;
  if (!dev) return;
  core::MutexLock lock(priv_mu_);
  // Read under priv_lock: a ring reset (which holds it) cannot fall
  // between this read and the walk, so an index from before the reset is
  // never applied to the new ring.
  const std::uint32_t done = hw_.completed();
  unsigned pkts = 0, bytes = 0;
  while (static_cast<std::int32_t>(done - tx_head_) > 0 && tx_head_ != tx_tail_) {
    const SkBuff skb = hw_.read_descriptor(tx_head_);
    ++tx_head_;
    ++pkts;
    bytes += skb.len;
    stats_.add(kTxPackets);
    stats_.add(kTxBytes, skb.len);
  }
  if (cfg_.bql) dev->netdev_tx_completed_queue(pkts, bytes);
  // Wake under priv_lock so a concurrent xmit cannot stop the queue in
  // between; the wake hook only arms a timer.
  if (dev->netif_running() && dev->netif_tx_queue_stopped() &&
      cfg_.ring_size - (tx_tail_ - tx_head_) >= wake_threshold())
    dev->netif_wake_queue();
}

void VnicDriver::rx_irq() {
  if (dev_) dev_->napi_schedule();
}

void VnicDriver::link_irq(bool link) {
  if (!dev_) return;
  // The driver confirms with a STATUS read, as link interrupt handlers do.
  const bool up = (hw_.bus().readl(0, VnicHardware::kStatus) & VnicHardware::kStatusLink) != 0;
  (void)link;
  if (up && dev_->netif_running()) {
    dev_->netif_carrier_on();
  } else {
    dev_->netif_carrier_off();
  }
}

unsigned VnicDriver::ring_in_use() const {
  core::MutexLock lock(const_cast<core::Mutex&>(priv_mu_));
  return tx_tail_ - tx_head_;
}

// --- loopback -------------------------------------------------------------------------

core::Status LoopbackDriver::open(NetDevice&) {
  core::assert_rtnl();
  return {};
}

void LoopbackDriver::stop(NetDevice&) {
  core::assert_rtnl();
  core::MutexLock lock(backlog_mu_);
  backlog_.clear();
}

void LoopbackDriver::reset_stats() {
  packets_.store(0);
  bytes_.store(0);
  delivered_.store(0);
}

RtnlLinkStats64 LoopbackDriver::get_stats(const NetDevice&) const {
  core::assert_dev_base_lock();
  RtnlLinkStats64 s{};
  s[kRxPackets] = s[kTxPackets] = packets_.load();
  s[kRxBytes] = s[kTxBytes] = bytes_.load();
  return s;
}

// LLTX without a lock of its own: per-CPU counters and netif_rx need none.
NetdevTx LoopbackDriver::hard_start_xmit(NetDevice& dev, const SkBuff& skb, unsigned) {
  {
    core::MutexLock lock(backlog_mu_);
    backlog_.push_back(skb);
  }
  packets_.fetch_add(1);
  bytes_.fetch_add(skb.len);
  dev.napi_schedule();  // netif_rx: the backlog NAPI
  return NetdevTx::Ok;
}

// process_backlog. Synchronization: the RX_SCHED bit. Context: softirq.
int LoopbackDriver::poll(NetDevice&, int budget) {
  core::MutexLock lock(backlog_mu_);
  int n = 0;
  while (n < budget && !backlog_.empty()) {
    backlog_.pop_front();
    ++n;
  }
  delivered_.fetch_add(static_cast<std::uint64_t>(n));
  return n;
}

bool LoopbackDriver::rx_pending(const NetDevice&) const {
  core::MutexLock lock(backlog_mu_);
  return !backlog_.empty();
}

}  // namespace vsysfs::devices
