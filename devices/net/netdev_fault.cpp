// K/fail/net_xmit: ndo_start_xmit fails as the point's `kind` says
// (docs/fault-injection.md section 3.6, core/fault_inject.hpp):
//
//   busy  the driver returns NETDEV_TX_BUSY without taking the frame: the
//         core requeues it (tx_busy count) and the sender retries after a
//         back-off, as qdisc_restart's dev_requeue_skb / __netif_schedule.
//   drop  the driver frees the frame and returns NETDEV_TX_OK, counting it
//         with dev_core_stats_tx_dropped_inc (include/linux/netdevice.h):
//         statistics/tx_dropped moves, tx_packets does not.
//   hang  the driver takes the frame, then its queue is stopped
//         (netif_stop_queue) and never woken: completions do not wake it,
//         so dev_watchdog (net/sched/sch_generic.c) finds it stopped
//         watchdog_timeo after the last transmit, logs "NETDEV WATCHDOG",
//         counts queues/tx-0/tx_timeout and calls ndo_tx_timeout, whose ring
//         reset wakes the queue. A device without ndo_tx_timeout (lo) stays
//         stuck until it goes down.
//
// K/fail/net_open: ndo_open fails with the point's errno (default ENOMEM,
// what a driver returns when it cannot allocate its rings). __dev_open
// (net/core/dev.c) returns the driver's error, clears __LINK_STATE_START
// and leaves IFF_UP clear; dev_change_flags returns it, so a store of
// IFF_UP to class/net/IF/flags (net-sysfs.c change_flags) gets the errno and
// the interface stays down. The flags store reaches dev_open without its
// caller here, so task-filter never lets this point fail either.
//
// The simulated CPUs that transmit are no process: task-filter never lets
// this point fail. The ifaces list (exact names) limits it to interfaces.
//
// K/fail/net_rx: see NetDevice::rx_fault below.
// Locking: netif_tx_lock held (or none for LLTX, as the driver call);
// FaultInjection's lock is a leaf, the event is logged after it.

#include <fmt/format.h>

#include "devices/net/netdev.hpp"

namespace vsysfs::devices {

std::optional<NetdevTx> NetDevice::xmit_fault(const SkBuff& skb, unsigned cpu) {
  if (!env_.faults || !env_.faults->should_fail_iface(core::FaultPoint::NetXmit, nullptr, cfg_.name,
                                                      "dev_hard_start_xmit"))
    return std::nullopt;
  const core::NetXmitFault kind = env_.faults->settings(core::FaultPoint::NetXmit).xmit_kind;
  NetdevTx rc = NetdevTx::Ok;
  std::string_view name;
  switch (kind) {
    case core::NetXmitFault::Busy:
      name = "busy";
      rc = NetdevTx::Busy;
      break;
    case core::NetXmitFault::Drop:
      name = "drop";
      core_tx_dropped_.fetch_add(1);
      break;
    case core::NetXmitFault::Hang:
      name = "hang";
      rc = ops_->hard_start_xmit(*this, skb, cpu);
      if (rc == NetdevTx::Ok) {
        xmit_hung_.store(true);
        netif_stop_queue();
      }
      break;
  }
  env_.log(nullptr, cfg_.name, "xmit", "fault",
           {{"fault", name}, {"cpu", cpu}, {"id", skb.id}, {"len", skb.len}});
  return rc;
}

}  // namespace vsysfs::devices

namespace vsysfs::devices {

std::optional<core::Errno> NetDevice::open_fault() {
  if (!env_.faults || !env_.faults->armed(core::FaultPoint::NetOpen)) return std::nullopt;
  // The errno is read before the decision, as should_fail_attr does.
  const int error = env_.faults->settings(core::FaultPoint::NetOpen).error;
  if (!env_.faults->should_fail_iface(core::FaultPoint::NetOpen, nullptr, cfg_.name, "__dev_open"))
    return std::nullopt;
  return core::Errno{error};
}

}  // namespace vsysfs::devices

namespace vsysfs::devices {

// K/fail/net_rx: the receiving driver's poll loses the frame. `drop`: the
// driver could not get a buffer for it (rx_dropped, as a driver counts a
// failed netdev_alloc_skb); `corrupt`: the MAC reports a CRC error in the
// descriptor and the driver drops the frame, counting rx_crc_errors and
// rx_errors (drivers/net/ethernet/intel/e1000/e1000_main.c
// e1000_clean_rx_irq and e1000_update_stats). NAPI runs in softirq, no
// process: task-filter never lets this point fail.
std::optional<core::NetRxFault> NetDevice::rx_fault(const SkBuff& skb) {
  if (!env_.faults || !env_.faults->armed(core::FaultPoint::NetRx)) return std::nullopt;
  const core::NetRxFault kind = env_.faults->settings(core::FaultPoint::NetRx).rx_kind;
  if (!env_.faults->should_fail_iface(core::FaultPoint::NetRx, nullptr, cfg_.name, "napi_poll"))
    return std::nullopt;
  env_.log(nullptr, cfg_.name, "rx", "fault",
           {{"fault", kind == core::NetRxFault::Drop ? "drop" : "corrupt"},
            {"id", skb.id},
            {"len", skb.len}});
  return kind;
}

}  // namespace vsysfs::devices
