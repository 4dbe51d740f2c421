#pragma once

// The simulated PCI Ethernet NIC ("vnic") and its driver, and the loopback
// driver. docs/kernel-semantics.md sections 5.5 (hook locking), 5.6 (watchdog),
// 6 (MMIO).
//
// Hardware (VnicHardware): registers behind a core::MmioBus (posted,
// possibly reordered writes from the simulated CPUs; reads flush the
// reading CPU's writes):
//   0x00 CTRL      W  bit0 RESET (TX ring: TX_HEAD = TX_TAIL = 0), bit1 TX_EN,
//                     bit2 RX_EN
//   0x04 STATUS    R  bit0 LINK; no side effects: the "safe register"
//   0x08 TX_TAIL   W  doorbell: the producer index (free-running u32)
//   0x0c TX_HEAD   R  the consumer index
//   0x10 DB_ERR    R  doorbell writes that moved backwards
//   0x14 RX_MODE   W  bit0 PROMISC, bit1 ALLMULTI (set_multicast_list)
// Posted writes nobody flushes reach the device at the latest 10 us after
// they were posted (the chipset drains its buffers), so reordering shows at
// packet rates above ~100k/s.
// A doorbell value below the last one seen is a lost ordering race (two
// CPUs' writes reordered, io_ordering.txt): counted, logged, and ignored.
// The MAC sends one frame at a time at the link rate ((len + 24) * 8 bits
// at `speed` Mb/s, 24 = preamble + FCS + inter-frame gap) on the Env clock,
// writes the consumer index back (DMA) and raises a TX interrupt; the frame
// reaches the cabled peer's RX ring, which raises its RX interrupt. Without
// link the MAC sends nothing: descriptors wait in the ring (a frame the
// link dropped under it is sent again) until the link is back.
// Link: carrier needs both ends powered (TX_EN|RX_EN) and the cable in at
// both ends (the `link` knob), and no K/fail/link_flap flap holding either
// end down (set_flap_down); every change raises a link interrupt on both
// ends.
//
// Driver (VnicDriver): TX ring of ring_size slots; stops the queue when
// the ring is full and wakes it when a quarter is free again; NAPI RX with
// budget 64. open, stop and tx_timeout reset the TX ring, hardware and
// driver indices both back to 0 (e1000_configure_tx / e1000_clean_tx_ring):
// frames still in the ring are freed uncounted at stop, counted as
// tx_dropped by tx_timeout. In xmit it does the flushing
// STATUS read before returning (so before netif_tx_lock is released),
// unless the `ordering` knob says "posted".
//
// Thread-safety: driver state under priv_lock (rank kRankPriv, also the
// LLTX lock), hardware state under hw_lock (kRankHw), RX ring under
// rx_lock (kRankRx), descriptors under a leaf lock; interrupts are called
// with none of these held.

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/env.hpp"
#include "core/mmio.hpp"
#include "devices/net/netdev.hpp"

namespace vsysfs::devices {

class VnicDriver;

struct VnicConfig {
  unsigned ring_size = 256;
  int speed = 1000;  // Mb/s
  Duplex duplex = Duplex::Full;
  bool change_carrier = false;  // ndo_change_carrier
  bool bql = false;             // reports sent/completed bytes (byte queue limits)
  std::uint64_t mmio_seed = 1;
  unsigned ncpus = 4;
};

class NetKnobs;

class VnicHardware final : public core::MmioTarget {
 public:
  static constexpr std::uint32_t kCtrl = 0x00, kStatus = 0x04, kTxTail = 0x08, kTxHead = 0x0c,
                                 kDbErr = 0x10, kRxMode = 0x14;
  static constexpr std::uint32_t kCtrlReset = 1, kCtrlTxEn = 2, kCtrlRxEn = 4;
  static constexpr std::uint32_t kStatusLink = 1;

  VnicHardware(core::Env& env, std::string name, const VnicConfig& cfg);
  ~VnicHardware() override;

  void attach(VnicDriver* driver) { driver_ = driver; }
  // Machine teardown: stop the timers, then forget the driver and peer.
  void quiesce();
  void detach() {
    driver_ = nullptr;
    peer_ = nullptr;
  }
  void set_peer(VnicHardware* peer) { peer_ = peer; }
  VnicHardware* peer() const { return peer_; }
  core::MmioBus& bus() { return bus_; }

  // core::MmioTarget (called under the bus lock).
  void mmio_write(std::uint32_t offset, std::uint32_t value) override;
  std::uint32_t mmio_read(std::uint32_t offset) override;

  // Descriptor ring in "host memory" (DMA).
  void write_descriptor(std::uint32_t index, const SkBuff& skb);
  SkBuff read_descriptor(std::uint32_t index) const;
  std::uint32_t completed() const { return writeback_head_.load(); }

  // The wire: a frame from the peer arrives. Context: the peer's TX timer.
  void wire_receive(const SkBuff& skb);
  // RX ring, drained by the driver's NAPI poll.
  std::vector<SkBuff> rx_take(std::size_t max);
  bool rx_pending() const;
  void rx_clear();

  // The cable at this end (the `link` knob). Locking: none held.
  void set_cable(bool in);
  bool cable() const { return cable_.load(); }
  // K/fail/link_flap: the link drops as if the cable were pulled, without
  // touching the `link` knob's cable. Locking: none held (fail.flap may be).
  void set_flap_down(bool down);
  bool flap_down() const { return flap_down_.load(); }
  bool link_ok() const;
  // Re-evaluates the link and raises link interrupts on change, on this end
  // and the peer; a link that came up restarts the MAC on descriptors that
  // waited for it. Locking: none of the device's locks held (rtnl may be).
  void update_link();
  // Restarts the MAC if it is idle with descriptors to send and link.
  // Locking: takes hw_lock; callers may hold the PHY link lock.
  void kick_tx();

  // Posted writes reach the device within kChipsetDrainDelay at the
  // latest: arms the chipset's drain timer when writes are pending.
  void post_flush_later();

  // Faults.
  void set_hang_tx(bool on) { hang_tx_.store(on); }
  bool hang_tx() const { return hang_tx_.load(); }
  std::uint64_t doorbell_backwards() const { return doorbell_backwards_.load(); }
  std::uint64_t rx_missed() const { return rx_missed_.load(); }
  // Power-on: the MAC's statistics registers read 0.
  void reset_counters() { rx_missed_.store(0); }

  // Machine snapshots (netdev_state.cpp, docs/snapshot.md): registers,
  // the frames in the TX ring and the RX ring, the MMIO bus, the timers.
  struct State {
    bool tx_busy = false;
    std::uint32_t hw_head = 0, hw_tail = 0;
    core::Nanos tx_due{0};
    std::uint32_t rx_mode = 0;
    bool tx_en = false, rx_en = false, cable = true, flap_down = false, link = false;
    bool hang_tx = false;
    std::uint32_t writeback_head = 0;
    std::uint64_t doorbell_backwards = 0, rx_missed = 0;
    // The descriptors the ring still holds (free-running index, frame):
    // the driver's [tx_head, tx_tail), which holds the hardware's
    // [head, tail); no other slot is read before it is written again.
    std::vector<std::pair<std::uint32_t, SkBuff>> descriptors;
    std::vector<SkBuff> rx_ring;
    core::MmioBus::State bus;
    core::TimerState tx_timer, chipset_timer;
  };
  // The state with the descriptors [from, to). Locking: takes the
  // hardware, descriptor, RX and bus locks one at a time.
  State save_state(std::uint32_t from, std::uint32_t to) const;
  bool check_state(const State& s) const;
  // Locking: none of the device's locks held.
  void cancel_timers();
  // Timers cancelled first (cancel_timers).
  void load_state(const State& s);
  unsigned ring_size() const { return cfg_.ring_size; }

 private:
  // The traffic generator's batches simulate the MAC of a run's frames
  // in one go and write the state back (netdev_traffic_batch.cpp).
  friend class NetKnobs;
  core::Nanos frame_time(std::uint32_t len) const;
  void start_tx_locked() REQUIRES(hw_mu_);
  void tx_done();  // the MAC finished a frame (timer)

  core::Env& env_;
  const std::string name_;
  const VnicConfig cfg_;
  VnicDriver* driver_ = nullptr;
  VnicHardware* peer_ = nullptr;

  mutable core::Mutex hw_mu_{"vnic.hw_lock", core::kRankHw};
  bool tx_busy_ GUARDED_BY(hw_mu_) = false;
  std::uint32_t hw_head_ GUARDED_BY(hw_mu_) = 0;
  std::uint32_t hw_tail_ GUARDED_BY(hw_mu_) = 0;
  core::Nanos tx_due_ GUARDED_BY(hw_mu_){0};  // when the frame on the wire is done
  std::uint32_t rx_mode_ GUARDED_BY(hw_mu_) = 0;
  std::atomic<bool> tx_en_{false}, rx_en_{false};
  std::atomic<bool> cable_{true};
  std::atomic<bool> flap_down_{false};
  std::atomic<bool> link_{false};
  std::atomic<bool> hang_tx_{false};
  std::atomic<std::uint32_t> writeback_head_{0};
  std::atomic<std::uint64_t> doorbell_backwards_{0};
  std::atomic<std::uint64_t> rx_missed_{0};

  mutable core::Mutex desc_mu_{"vnic.descriptors"};  // Order: leaf
  std::vector<SkBuff> descriptors_ GUARDED_BY(desc_mu_);

  mutable core::Mutex rx_mu_{"vnic.rx_lock", core::kRankRx};
  std::deque<SkBuff> rx_ring_ GUARDED_BY(rx_mu_);

  core::MmioBus bus_;
  core::Timer tx_timer_;
  core::Timer chipset_timer_;
};

class VnicDriver final : public NetDeviceOps {
 public:
  VnicDriver(core::Env& env, std::shared_ptr<VnicHardware> hw, const VnicConfig& cfg)
      : env_(env), hw_owner_(std::move(hw)), hw_(*hw_owner_), cfg_(cfg) {}
  void attach(NetDevice* dev) { dev_ = dev; }
  NetDevice* netdev() const { return dev_; }
  VnicHardware& hardware() const { return hw_; }

  core::Status open(NetDevice& dev) override;
  void stop(NetDevice& dev) override;
  core::Result<std::uint32_t> do_ioctl(NetDevice& dev, unsigned cmd, std::uint32_t arg) override;
  RtnlLinkStats64 get_stats(const NetDevice& dev) const override;
  void reset_stats() override;
  NetdevTx hard_start_xmit(NetDevice& dev, const SkBuff& skb, unsigned cpu) override;
  bool has_tx_timeout() const override { return true; }
  void tx_timeout(NetDevice& dev) override;
  void set_multicast_list(NetDevice& dev) override;
  bool has_napi() const override { return true; }
  int poll(NetDevice& dev, int budget) override;
  bool rx_pending(const NetDevice& dev) const override;
  bool can_change_carrier() const override { return cfg_.change_carrier; }
  core::Status change_carrier(NetDevice& dev, bool on) override;
  bool get_link_ksettings(const NetDevice& dev, LinkSettings* out) const override;

  // Interrupts. Context: hardirq (a timer or the thread that changed the
  // link). Locking: none held by the caller.
  void tx_irq();
  void rx_irq();
  void link_irq(bool link);

  // Knobs.
  void set_flush_reads(bool on) { flush_reads_.store(on); }
  bool flush_reads() const { return flush_reads_.load(); }
  void set_fail_open(int err) { fail_open_.store(err); }
  int fail_open() const { return fail_open_.load(); }
  void set_drop_rx(std::uint64_t n) { drop_rx_.store(n); }
  std::uint64_t drop_rx() const { return drop_rx_.load(); }
  void set_skip_queue_stop(bool on) { skip_queue_stop_.store(on); }
  bool skip_queue_stop() const { return skip_queue_stop_.load(); }
  std::uint64_t ring_resets() const { return ring_resets_.load(); }
  std::uint64_t exclusion_violations() const { return exclusion_violations_.load(); }
  unsigned ring_in_use() const;
  // The LLTX lock (tests hold it to provoke NETDEV_TX_LOCKED).
  core::Mutex& priv_lock() { return priv_mu_; }

  // Machine snapshots (netdev_state.cpp): ring indices, counters, knobs.
  struct State {
    std::uint32_t tx_tail = 0, tx_head = 0;
    RtnlLinkStats64 stats{};
    bool flush_reads = true;
    int fail_open = 0;
    std::uint64_t drop_rx = 0;
    bool skip_queue_stop = false;
    std::uint64_t ring_resets = 0, exclusion_violations = 0;
  };
  // Locking: takes priv_lock.
  State save_state() const;
  bool check_state(const State& s) const;
  void load_state(const State& s);

 private:
  friend class NetKnobs;  // traffic batches (netdev_traffic_batch.cpp)
  // set_multicast_list's hardware access, under netif_tx_lock (and
  // priv_lock for an LLTX device).
  void program_rx_mode(NetDevice& dev);
  unsigned wake_threshold() const { return cfg_.ring_size / 4 ? cfg_.ring_size / 4 : 1; }
  // Resets the TX ring: the hardware's head and tail and the driver's
  // indices all restart at 0, with the enables `ctrl` afterwards. Returns
  // the descriptors that were still in the ring.
  std::uint32_t reset_tx_ring_locked(std::uint32_t ctrl) REQUIRES(priv_mu_);

  core::Env& env_;
  const std::shared_ptr<VnicHardware> hw_owner_;
  VnicHardware& hw_;
  const VnicConfig cfg_;
  NetDevice* dev_ = nullptr;

  core::Mutex priv_mu_{"vnic.priv_lock", core::kRankPriv};
  std::uint32_t tx_tail_ GUARDED_BY(priv_mu_) = 0;
  std::uint32_t tx_head_ GUARDED_BY(priv_mu_) = 0;
  AtomicLinkStats stats_;

  std::atomic<bool> flush_reads_{true};
  std::atomic<int> fail_open_{0};
  std::atomic<std::uint64_t> drop_rx_{0};
  std::atomic<bool> skip_queue_stop_{false};
  std::atomic<std::uint64_t> ring_resets_{0};
  // Overlap detector for the netif_tx_lock rule: xmit and
  // set_multicast_list must never run at the same time.
  std::atomic<int> in_xmit_{0}, in_mc_{0};
  std::atomic<std::uint64_t> exclusion_violations_{0};
};

// drivers/net/loopback.c: LLTX, no ring, no watchdog; what it sends comes
// back through the backlog NAPI; tx and rx counters are the same numbers
// (loopback_get_stats64).
class LoopbackDriver final : public NetDeviceOps {
 public:
  core::Status open(NetDevice& dev) override;
  void stop(NetDevice& dev) override;
  RtnlLinkStats64 get_stats(const NetDevice& dev) const override;
  void reset_stats() override;
  NetdevTx hard_start_xmit(NetDevice& dev, const SkBuff& skb, unsigned cpu) override;
  int poll(NetDevice& dev, int budget) override;
  bool rx_pending(const NetDevice& dev) const override;
  std::uint64_t delivered() const { return delivered_.load(); }

  // Machine snapshots (netdev_state.cpp).
  struct State {
    std::uint64_t packets = 0, bytes = 0, delivered = 0;
    std::vector<SkBuff> backlog;
  };
  State save_state() const;
  void load_state(const State& s);

 private:
  std::atomic<std::uint64_t> packets_{0}, bytes_{0}, delivered_{0};
  mutable core::Mutex backlog_mu_{"loopback.backlog", core::kRankRx};
  std::deque<SkBuff> backlog_ GUARDED_BY(backlog_mu_);
};

}  // namespace vsysfs::devices
