#pragma once

// Control knobs of one interface: MOUNT/kernel/debug/vsysfs/net/IF/
// (netdevsim's debugfs and pktgen's /proc/net/pktgen, as files).
//
//   link      0600  "up\n" / "down\n": the cable at this end (carrier on
//                   both ends follows). NIC only.
//   traffic   0600  pktgen-like sender. Store "count N size S rate R [cpus C]"
//                   (any subset; count 0 = until stopped; size 14..65535
//                   bytes; rate 1..100000000 packets/s on the Env clock;
//                   cpus 1..nr_cpu_ids simulated sending CPUs, round robin),
//                   "start" (ENETDOWN when the interface is down, EBUSY when
//                   running) or "stop". Show: the settings, state, counters.
//                   Like pktgen_xmit ("If device is offline, then don't
//                   send"), a run stops at its next send once the interface
//                   went down or lost its carrier after the start, even if
//                   it is back by then (pktgen checks before every packet,
//                   also while the queue is stopped; a run here checks when
//                   its timer or the queue's wake calls it). Nothing reaches
//                   the driver: no TX counter moves for it.
//                   Keeping up: the show also says `achieved` (frames sent
//                   per second of the Env clock since the start, up to the
//                   end of the run), `lag_ns` (how far the run is behind its
//                   schedule of one frame every 1/rate s, at its last send)
//                   and `max_lag_ns`. With the real clock a run that falls
//                   behind (the machine cannot simulate the rate) keeps its
//                   schedule and sends as fast as it can to catch up, so the
//                   lag grows and shows instead of the rate dropping
//                   silently; with the manual clock every frame is sent on
//                   time and a run behind its schedule (a stopped queue,
//                   BUSY, a locked driver) restarts it from the send.
//   faults    0600  "hang_tx 0|1" (the DMA engine stops: the watchdog fires),
//                   "drop_rx N" (poll drops the next N frames), "fail_open
//                   ERRNO|0" (ndo_open fails with it, e.g. ENOMEM),
//                   "skip_queue_stop 0|1" (broken flow control: BUSY). NIC only.
//   ordering  0600  "flush" (default: the flushing read before netif_tx_lock
//                   is released) or "posted" (no flushing read). NIC only.
//   mmio      0400  bus counters and the doorbell errors the device saw. NIC only.
// Bad input is EINVAL and changes nothing.
// A NIC's knobs also register it with K/fail/link_flap
// (FaultInjection::add_flap_target; docs/fault-injection.md section 3.9):
// a flap takes its PHY link down (VnicHardware::set_flap_down) and back,
// with a `link_flap` event; shutdown() unregisters it.
//
// Thread-safety: the traffic generator's settings are under its mutex
// (rank kRankTraffic, before netif_tx_lock); everything else is atomics in
// the driver and hardware.

#include <atomic>
#include <memory>
#include <span>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "devices/net/netdev.hpp"
#include "devices/net/netdev_nic.hpp"

namespace vsysfs::devices {

class NetKnobs {
 public:
  NetKnobs(core::Env& env, std::shared_ptr<NetDevice> dev, VnicDriver* nic);
  ~NetKnobs();
  // Stops the sender and unhooks it from the device (machine teardown).
  void shutdown();
  // The machine shuts down (Machine::register_shutdown_hook): a running
  // sender stops as a "stop" would (pktgen's threads end with the kernel)
  // and stays stopped after the boot. Context: the shutdown's thread.
  void power_off();
  NetKnobs(const NetKnobs&) = delete;
  NetKnobs& operator=(const NetKnobs&) = delete;

  static std::span<const core::AttributeGroup<NetKnobs>> groups();
  bool is_nic() const { return nic_ != nullptr; }

  // Batched simulation of traffic runs (on by default; the property test
  // turns it off on one of two identical machines to compare). See
  // "Batches" below. Locking: none (atomic). Context: any.
  void set_batching(bool on) { batching_.store(on); }
  bool batching() const { return batching_.load(); }
  // The longest stretch of simulated time one batch covers.
  static constexpr core::Nanos kBatchTick = std::chrono::milliseconds(1);
  // Frames sent inside batches so far (tests: proof that batches ran).
  std::uint64_t batched_frames() const { return batched_frames_.load(); }

  // Locking: none (atomics). Context: FUSE worker.
  core::Status link_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> link_store(const core::Caller& c, std::string_view in);
  // Locking: traffic mutex. Context: FUSE worker.
  core::Status traffic_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> traffic_store(const core::Caller& c, std::string_view in);
  core::Status faults_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> faults_store(const core::Caller& c, std::string_view in);
  core::Status ordering_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> ordering_store(const core::Caller& c, std::string_view in);
  core::Status mmio_show(core::PageBuffer& buf) const;

  // Machine snapshots (netdev_state.cpp, docs/snapshot.md): the traffic
  // generator's settings, run state, counters and timer (at its saved
  // deadline). The other knobs live in the driver and hardware.
  struct State {
    std::uint64_t count = 0;
    std::uint32_t size = 0;
    std::uint64_t rate = 0;
    unsigned cpus = 0;
    std::uint64_t sent = 0, next_id = 0;
    core::Nanos next_due{0};
    bool running = false, stalled = false;
    int start_carrier_downs = 0;
    core::Nanos start_time{0}, end_time{0}, lag{0}, max_lag{0};
    std::uint64_t locked = 0, busy = 0, stalls = 0;
    core::TimerState timer;
  };
  // Locking: takes the traffic mutex.
  State save_state() const;
  // The settings a traffic store would take.
  bool check_state(const State& s) const;
  // Locking: none held (takes the traffic mutex after the timer is gone).
  void cancel_timer();
  void load_state(const State& s);

 private:
  // The traffic timer: a batch when one can run (manual clock, NIC),
  // else one pktgen transmit attempt. Context: timer. Locking: tries rtnl
  // (a batch), takes the traffic mutex, then (inside the xmit path)
  // netif_tx_lock.
  void traffic_tick();
  // One pktgen transmit attempt at now.
  void traffic_send_locked() REQUIRES(mu_);
  // Batches (netdev_traffic_batch.cpp). With the manual clock, the tick
  // of a NIC's run simulates every event of its pipeline due up to
  // kBatchTick ahead in one go -- its sends, the MAC's completions
  // (VnicHardware::tx_done, VnicDriver::tx_irq with BQL and the queue's
  // stop and wake), the frames' arrival at the cabled peer and the peer's
  // NAPI polls -- in the order their timers would run (deadline, then
  // arming order), with the same state changes, and stops before the
  // first timer of anything else, before an event it does not simulate
  // (a send that would log or fail, see the .cpp), and at the clock's
  // horizon; then writes the state back and arms the timers that are
  // left as frame-by-frame would have them. Every observable value at the
  // end of an advance is the frame-by-frame one (tests/devices/net/
  // netdev_batch_test.cpp). false: nothing done, send frame by frame.
  // Locking: rtnl (tried by the caller: no open, stop or setting changes
  // meanwhile) and the traffic mutex held; takes netif_tx_lock, then the
  // driver's priv_lock, and briefly the MMIO bus, hw_lock, the
  // descriptors, BQL and the peer's RX ring.
  bool traffic_batch_locked() REQUIRES(mu_);
  // __netif_schedule: the queue woke. Context: the driver's completion
  // path with its priv_lock held: only atomics and a timer.
  void traffic_wake();
  // The next send after one at `now`: one interval after the last due
  // time (see `traffic` above for the two clocks). Records the lag.
  void traffic_schedule_locked(core::Nanos now, core::Nanos interval) REQUIRES(mu_);

  core::Env& env_;
  const std::shared_ptr<NetDevice> dev_;
  VnicDriver* const nic_;  // owned by dev_ (its ops)

  mutable core::Mutex mu_{"netdev.traffic", core::kRankTraffic};
  std::uint64_t count_ GUARDED_BY(mu_) = 1000;
  std::uint32_t size_ GUARDED_BY(mu_) = 64;
  std::uint64_t rate_ GUARDED_BY(mu_) = 1000;
  unsigned cpus_ GUARDED_BY(mu_) = 2;
  std::uint64_t sent_ GUARDED_BY(mu_) = 0;
  std::uint64_t next_id_ GUARDED_BY(mu_) = 0;
  core::Nanos next_due_ GUARDED_BY(mu_){0};
  std::atomic<bool> running_{false};
  std::atomic<bool> stalled_{false};
  // carrier_down_count at the start: a send that finds it changed means
  // the device went offline during the run.
  int start_carrier_downs_ GUARDED_BY(mu_) = 0;
  // The run's start and end (end 0 while running), for `achieved`; the
  // lag behind the schedule at the last send and the largest seen.
  core::Nanos start_time_ GUARDED_BY(mu_){0};
  core::Nanos end_time_ GUARDED_BY(mu_){0};
  core::Nanos lag_ GUARDED_BY(mu_){0};
  core::Nanos max_lag_ GUARDED_BY(mu_){0};
  std::atomic<std::uint64_t> locked_{0}, busy_{0}, stalls_{0};
  // A mode, not state: batches write the state above back at the end of
  // each tick, so between timer callbacks it is all there is.
  std::atomic<bool> batching_{true};
  std::atomic<std::uint64_t> batched_frames_{0};
  core::Timer timer_;
};

}  // namespace vsysfs::devices
