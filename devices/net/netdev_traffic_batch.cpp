// Batches of a traffic run on a NIC (NetKnobs::traffic_batch_locked, see
// netdev_knobs.hpp): one timer callback simulates every event of the run's
// pipeline up to kBatchTick ahead, instead of one timer per send, per MAC
// completion and per NAPI poll of the peer (docs/performance.md: about
// 1.2 us a frame, nearly all of it timers and locks).
//
// The pipeline's events are those of three timers, replayed here in the
// order the clock would run them (deadline, then the order they were
// armed in: every re-arm takes a new place, as Timer::mod_timer does):
//   S  the generator's timer: one send (traffic_send_locked and
//      dev_hard_start_xmit with VnicDriver::hard_start_xmit);
//   T  the MAC's timer (VnicHardware::tx_done): the frame left, the peer's
//      wire_receive and rx_irq, then VnicDriver::tx_irq (completion, BQL,
//      the queue's wake and the generator's wake hook);
//   R  the peer's RX softirq (NetDevice::net_rx_action with
//      VnicDriver::poll, budget kNapiBudget).
// Each handler below is the frame-by-frame code with the same branches,
// on copies of the state taken at the start; at the end the copies are
// written back and the timers still armed are armed again in their order.
//
// A batch runs only where it reproduces that code exactly, and otherwise
// leaves the tick to the frame-by-frame path:
//  * the manual clock (the real clock keeps its own catch-up schedule);
//  * rtnl taken with a trylock by the caller: no open, stop, flags, mtu or
//    carrier change of any interface while it runs;
//  * the device running with carrier since the run's start, link, the DMA
//    engine not hung (hang_tx, net_xmit hang), the flushing read on
//    (ordering "flush") and no MMIO write posted: every doorbell then
//    reaches the device inside its own xmit, in order, and the bus's random
//    draws are replayed by MmioBus::flushed_write_reads;
//  * K/fail/net_xmit for this interface and K/fail/net_rx for the peer
//    unable to fail or count anything (FaultInjection::may_fail_iface: not
//    armed, another interface's, no times left...): while one may, its
//    decisions stay per frame, so a seed gives the same frames as before;
//    and no drop_rx count on the peer;
//  * a send stops the batch before it when it would log or fail (the
//    last frame of a counted run: "done"; a full ring with the queue
//    awake: NETDEV_TX_BUSY), so every event is logged frame by frame at
//    its time;
//  * the batch ends before the first timer of anything else (the
//    watchdog, the other end's sender, the chipset, other devices: their
//    callbacks see the state of their instant) and at the clock's horizon
//    (Clock::claim_horizon: the advance's target, or kBatchTick ahead).
// Events the batch did not reach stay armed; nothing it did is visible
// before the advance that covers it returns, as frame by frame.

#include <algorithm>
#include <deque>
#include <limits>
#include <vector>

#include "devices/net/netdev_knobs.hpp"

namespace vsysfs::devices {
namespace {

// One of the pipeline's timers, as the batch sees it.
struct BatchTimer {
  bool armed = false;
  core::Nanos at{0};
  std::uint64_t seq = 0;        // run order among equal deadlines
  core::Clock::TimerId id = 0;  // the clock's id while still the original expiry
  bool touched = false;         // fired or re-armed: arm (or delete) at the end
};

}  // namespace

bool NetKnobs::traffic_batch_locked() {
  VnicDriver& drv = *nic_;
  VnicHardware& hw = drv.hw_;
  NetDevice& dev = *dev_;
  VnicHardware* const peer_hw = hw.peer_;
  VnicDriver* const peer_drv = peer_hw ? peer_hw->driver_ : nullptr;
  NetDevice* const peer = peer_drv ? peer_drv->dev_ : nullptr;
  core::Clock& clock = env_.clock;
  const core::Nanos t0 = env_.now();

  // --- may a batch run at all? (constant while it runs) ---------------------
  if (timer_.pending() || stalled_.load() || hw.driver_ != &drv || drv.dev_ != &dev) return false;
  if (!dev.netif_running() || !dev.netif_carrier_ok() ||
      start_carrier_downs_ != dev.carrier_down_count() || dev.xmit_hung_.load())
    return false;
  if (env_.faults && (env_.faults->may_fail_iface(core::FaultPoint::NetXmit, dev.name()) ||
                      (peer && env_.faults->may_fail_iface(core::FaultPoint::NetRx, peer->name()))))
    return false;
  if (!drv.flush_reads_.load() || hw.hang_tx_.load() || !hw.tx_en_.load() || !hw.link_ok())
    return false;
  if (peer && peer_drv->drop_rx_.load() != 0) return false;
  const bool peer_running = peer && peer->netif_running();
  const bool peer_rx_en = peer_hw && peer_hw->rx_en_.load();
  const bool bql = drv.cfg_.bql;
  const bool skip_queue_stop = drv.skip_queue_stop_.load();
  const unsigned ring_size = drv.cfg_.ring_size;
  const unsigned wake_threshold = drv.wake_threshold();
  const std::size_t peer_ring_size = peer_hw ? peer_hw->cfg_.ring_size : 0;
  const core::Nanos interval{1000000000LL / static_cast<std::int64_t>(rate_)};

  core::MutexLock tx_lock(dev.tx_lock_);
  core::MutexLock priv(drv.priv_mu_);
  if (hw.bus_.pending() != 0) return false;

  // --- the three timers ------------------------------------------------------
  BatchTimer S, T, R;
  S.armed = S.touched = true;  // this callback: first at t0
  S.at = t0;
  // Their order among equal deadlines is the clock's (Timer::state().order):
  // the arming id, or the order a snapshot restore gave back.
  if (const auto id = hw.tx_timer_.armed_id(); id != 0) {
    T = {true, hw.tx_timer_.expires(), hw.tx_timer_.state().order, id, false};
  }
  if (peer) {
    if (const auto id = peer->rx_softirq_.armed_id(); id != 0)
      R = {true, peer->rx_softirq_.expires(), peer->rx_softirq_.state().order, id, false};
  }
  core::Nanos foreign;
  const bool have_foreign = clock.next_deadline_except({T.id, R.id}, &foreign);
  // Another timer due now runs right after this send: frame by frame.
  if (have_foreign && foreign <= t0) return false;
  core::Nanos end = t0 + kBatchTick;
  if (have_foreign) end = std::min(end, foreign - core::Nanos{1});
  end = clock.claim_horizon(end);
  std::uint64_t next_seq = std::uint64_t{1} << 62;
  const auto arm = [&next_seq](BatchTimer& t, core::Nanos at) {
    t.armed = t.touched = true;
    t.at = at;
    t.seq = next_seq++;
  };

  // --- copies of the state ---------------------------------------------------
  std::uint64_t sent = sent_, next_id = next_id_;
  core::Nanos next_due = next_due_, lag = lag_, max_lag = max_lag_;
  bool stalled = false;
  std::uint64_t stalls = 0;
  bool xoff = dev.xoff_.load(), stack_xoff = dev.stack_xoff_.load();
  std::int64_t trans_start = dev.trans_start_.load();
  Dql dql = dev.dql(0);
  std::uint32_t tx_tail = drv.tx_tail_, tx_head = drv.tx_head_;
  std::uint64_t tx_packets = 0, tx_bytes = 0;
  bool tx_busy;
  std::uint32_t hw_head, hw_tail;
  core::Nanos tx_due;
  {
    core::MutexLock lock(hw.hw_mu_);
    tx_busy = hw.tx_busy_;
    hw_head = hw.hw_head_;
    hw_tail = hw.hw_tail_;
    tx_due = hw.tx_due_;
  }
  std::uint32_t writeback = hw.writeback_head_.load();
  // A MAC busy without its timer (or the reverse) is mid-reset: not here.
  if (tx_busy != T.armed || (T.armed && T.at != tx_due) || hw_tail != tx_tail) return false;
  std::vector<SkBuff> desc;
  {
    core::MutexLock lock(hw.desc_mu_);
    desc = hw.descriptors_;
  }
  std::deque<SkBuff> rx_ring;
  if (peer_hw) {
    core::MutexLock lock(peer_hw->rx_mu_);
    rx_ring = peer_hw->rx_ring_;
  }
  bool rx_sched = peer && peer->rx_sched_.load();
  std::uint64_t rx_packets = 0, rx_bytes = 0, rx_multicast = 0, rx_missed = 0, polls = 0;
  std::uint64_t writes = 0;

  // Per frame, a division costs as much as the rest of a send: the ring's
  // index is masked when its size is a power of two, and the run's frame
  // time is computed once.
  const std::size_t nslots = desc.size();
  const bool pow2 = (nslots & (nslots - 1)) == 0;
  const auto slot = [&desc, nslots, pow2](std::uint32_t i) -> SkBuff& {
    return desc[pow2 ? (i & (nslots - 1)) : (i % nslots)];
  };
  const std::uint32_t size = size_;
  const core::Nanos run_frame_time = hw.frame_time(size);
  // VnicHardware::start_tx_locked (tx_en, link and no hang hold here).
  const auto start_tx = [&](core::Nanos now) {
    if (tx_busy || hw_head == hw_tail) return;
    tx_busy = true;
    const std::uint32_t len = slot(hw_head).len;
    tx_due = now + (len == size ? run_frame_time : hw.frame_time(len));
    arm(T, tx_due);
  };
  // traffic_wake, the hook netif_wake_queue and the BQL wake run.
  const auto wake_hook = [&](core::Nanos now) {
    if (stalled) {
      stalled = false;
      arm(S, now);
    }
  };
  // NetDevice::napi_schedule on the peer.
  const auto peer_napi_schedule = [&](core::Nanos now) {
    if (!peer_running) return;
    if (!rx_sched) {
      rx_sched = true;
      arm(R, now);
    }
  };

  // --- the events, in the clock's order ---------------------------------------
  std::size_t done = 0;
  for (;;) {
    BatchTimer* ev = nullptr;
    for (BatchTimer* t : {&S, &T, &R})
      if (t->armed && (!ev || t->at < ev->at || (t->at == ev->at && t->seq < ev->seq))) ev = t;
    if (!ev || ev->at > end) break;
    const core::Nanos now = ev->at;
    if (ev == &S) {
      // traffic_send_locked at `now`. The last frame of a counted run logs
      // "done", and a full ring with the queue awake NETDEV_TX_BUSY: both
      // frame by frame.
      const bool stopped = xoff || stack_xoff;
      if (!stopped && ((count_ != 0 && sent + 1 >= count_) || tx_tail - tx_head >= ring_size))
        break;
      S.armed = false;
      S.touched = true;
      if (stopped) {
        // XmitResult::QueueStopped: sleep until the wake.
        ++stalls;
        stalled = true;
      } else {
        // Whichever CPU (sent % cpus) rings the doorbell, its write is
        // flushed by its own read before the next send.
        SkBuff& skb = slot(tx_tail);
        skb = SkBuff{};
        skb.len = size;
        skb.id = next_id + 1;
        ++tx_tail;
        if (bql) {
          dql.queued(skb.len);
          if (dql.avail() < 0) stack_xoff = true;
        }
        // The doorbell (writel + the flushing readl): TX_TAIL reaches the
        // device inside this xmit.
        ++writes;
        hw_tail = tx_tail;
        start_tx(now);
        if (tx_tail - tx_head >= ring_size && !skip_queue_stop) xoff = true;
        trans_start = now.count();
        ++next_id;
        ++sent;
        // traffic_schedule_locked, manual clock.
        lag = std::max(now - next_due, core::Nanos{0});
        max_lag = std::max(max_lag, lag);
        next_due = std::max(next_due + interval, now);
        arm(S, next_due);
      }
    } else if (ev == &T) {
      // VnicHardware::tx_done.
      T.armed = false;
      T.touched = true;
      if (!tx_busy || now < tx_due) {
        ++done;
        continue;
      }
      tx_busy = false;
      if (hw_head == hw_tail) {
        ++done;
        continue;
      }
      const SkBuff skb = slot(hw_head);
      ++hw_head;
      writeback = hw_head;
      start_tx(now);
      // The peer's wire_receive and rx_irq.
      if (peer_hw && peer_rx_en) {
        if (rx_ring.size() >= peer_ring_size) {
          ++rx_missed;
        } else {
          rx_ring.push_back(skb);
          if (peer) peer_napi_schedule(now);
        }
      }
      // VnicDriver::tx_irq.
      unsigned pkts = 0, bytes = 0;
      while (static_cast<std::int32_t>(writeback - tx_head) > 0 && tx_head != tx_tail) {
        const unsigned len = slot(tx_head).len;
        ++tx_head;
        ++pkts;
        bytes += len;
        ++tx_packets;
        tx_bytes += len;
      }
      (void)pkts;
      if (bql && bytes != 0) {
        dql.completed(bytes, now);
        if (dql.avail() >= 0 && stack_xoff) {
          stack_xoff = false;
          wake_hook(now);
        }
      }
      if (xoff && ring_size - (tx_tail - tx_head) >= wake_threshold) {
        xoff = false;  // netif_wake_queue
        wake_hook(now);
      }
    } else {
      // NetDevice::net_rx_action on the peer, with VnicDriver::poll.
      R.armed = false;
      R.touched = true;
      if (!rx_sched || !peer_running) {
        ++done;
        continue;
      }
      ++polls;
      int work = 0;
      while (work < kNapiBudget && !rx_ring.empty()) {
        const SkBuff& skb = rx_ring.front();
        ++rx_packets;
        rx_bytes += skb.len;
        if (skb.multicast) ++rx_multicast;
        rx_ring.pop_front();
        ++work;
      }
      if (work >= kNapiBudget) {
        arm(R, now);
      } else {
        rx_sched = false;
        if (!rx_ring.empty()) peer_napi_schedule(now);
      }
    }
    ++done;
  }
  // The first event is this very send: when it cannot be simulated here,
  // the frame-by-frame path sends it.
  if (done == 0) return false;

  // --- write the state back ---------------------------------------------------
  batched_frames_.fetch_add(sent - sent_);
  sent_ = sent;
  next_id_ = next_id;
  next_due_ = next_due;
  lag_ = lag;
  max_lag_ = max_lag;
  stalled_.store(stalled);
  stalls_.fetch_add(stalls);
  dev.xoff_.store(xoff);
  dev.stack_xoff_.store(stack_xoff);
  dev.trans_start_.store(trans_start);
  if (bql) dev.update_dql(0, [&dql](Dql& d) { d = dql; });
  drv.tx_tail_ = tx_tail;
  drv.tx_head_ = tx_head;
  drv.stats_.add(kTxPackets, tx_packets);
  drv.stats_.add(kTxBytes, tx_bytes);
  (void)hw.bus_.flushed_write_reads(writes);
  {
    core::MutexLock lock(hw.hw_mu_);
    hw.tx_busy_ = tx_busy;
    hw.hw_head_ = hw_head;
    hw.hw_tail_ = hw_tail;
    hw.tx_due_ = tx_due;
  }
  hw.writeback_head_.store(writeback);
  {
    core::MutexLock lock(hw.desc_mu_);
    hw.descriptors_ = std::move(desc);
  }
  if (peer_hw) {
    {
      core::MutexLock lock(peer_hw->rx_mu_);
      peer_hw->rx_ring_ = std::move(rx_ring);
    }
    peer_hw->rx_missed_.fetch_add(rx_missed);
  }
  if (peer) {
    peer_drv->stats_.add(kRxPackets, rx_packets);
    peer_drv->stats_.add(kRxBytes, rx_bytes);
    peer_drv->stats_.add(kMulticast, rx_multicast);
    peer->napi_polls_.fetch_add(polls);
    peer->rx_sched_.store(rx_sched);
  }
  // The timers left armed, in their order; the ones that fired go.
  std::vector<std::pair<BatchTimer*, core::Timer*>> left;
  for (auto [b, t] : {std::pair<BatchTimer*, core::Timer*>{&S, &timer_},
                      {&T, &hw.tx_timer_},
                      {&R, peer ? &peer->rx_softirq_ : nullptr}}) {
    if (!t || !b->touched) continue;
    if (!b->armed) {
      t->del_timer();
    } else {
      left.emplace_back(b, t);
    }
  }
  std::sort(left.begin(), left.end(),
            [](const auto& a, const auto& b) { return a.first->seq < b.first->seq; });
  for (auto& [b, t] : left) t->mod_timer(b->at);
  return true;
}

}  // namespace vsysfs::devices
