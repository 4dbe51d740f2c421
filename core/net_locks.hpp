#pragma once

// The networking core's global locks (kernel: net/core/rtnetlink.c rtnl_mutex,
// net/core/dev.c dev_base_lock) and the lock order every network device
// follows. Documentation/networking/netdevices.rst assigns each
// driver hook to one of them; docs/kernel-semantics.md section 5.5.
//
// Lock order (lower rank first; the debug build aborts on an inversion):
//   device_lock (kRankDeviceLock)       a PCI NIC's driver bind/unbind (probe,
//                                       remove: devices/net/netdev_pci_driver.hpp)
//   -> rtnl (kRankRtnl)                 open/stop/do_ioctl, every sysfs store
//   -> PHY link (kRankLink)             link changes of cabled NICs, both ends
//   -> dev_base_lock (kRankDevBase)     get_stats, netdev_show, operstate writes
//   -> traffic generator (kRankTraffic) the pktgen-like knob's own state
//   -> netif_tx_lock (kRankTxLock)      hard_start_xmit, tx_timeout, set_multicast_list
//   -> driver private lock (kRankPriv)  the LLTX lock / TX ring lock of a driver
//   -> MMIO bus (kRankMmio)             posted writes of one device (core/mmio)
//   -> NIC hardware (kRankHw)           the simulated device's registers
//   -> RX ring (kRankRx)                one device's receive ring
// Timer callbacks (softirq/hardirq analogues) never wait for rtnl, so code
// that holds rtnl may wait for them (del_timer_sync). (The traffic
// generator's batches take it only with a trylock and, when it is held,
// send frame by frame: devices/net/netdev_traffic_batch.cpp.)
//
// Thread-safety: these are the locks.

#include "core/locks.hpp"

namespace vsysfs::core {

inline constexpr int kRankDeviceLock = 90;
inline constexpr int kRankRtnl = 100;
inline constexpr int kRankLink = 105;
inline constexpr int kRankDevBase = 110;
inline constexpr int kRankTraffic = 115;
inline constexpr int kRankTxLock = 120;
inline constexpr int kRankPriv = 130;
inline constexpr int kRankMmio = 140;
inline constexpr int kRankHw = 150;
inline constexpr int kRankRx = 160;

// rtnl_lock(): one mutex for the whole (simulated) kernel, as in Linux.
Mutex& rtnl_mutex();
// dev_base_lock: the rwlock guarding the device list and, in 2.6.18-4.x,
// get_stats and operstate.
SharedMutex& dev_base_lock();

// ASSERT_RTNL(): debug builds abort when the calling thread does not hold rtnl.
void assert_rtnl();
// Debug builds abort unless dev_base_lock is held (read or write) by this thread.
void assert_dev_base_lock();

class SCOPED_CAPABILITY RtnlLock {
 public:
  RtnlLock() ACQUIRE(rtnl_mutex()) { rtnl_mutex().lock(); }
  ~RtnlLock() RELEASE() { rtnl_mutex().unlock(); }
  RtnlLock(const RtnlLock&) = delete;
  RtnlLock& operator=(const RtnlLock&) = delete;
};

}  // namespace vsysfs::core
