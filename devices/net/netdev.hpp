#pragma once

// A network interface (kernel: struct net_device and the parts of
// net/core/dev.c, net/core/link_watch.c and net/sched/sch_generic.c that
// drive it), shown at /sys/class/net/IF -> ../../devices/.../net/IF.
//
// Sources: docs/kernel-semantics.md section 5 (5.1 files, 5.2 stores,
// 5.3 reads, 5.4 statistics, 5.5 the netdevices.txt rules, 5.6 watchdog);
// Documentation/networking/netdevices.rst for the hook locking;
// net/core/net-sysfs.c (modern) for formats and errnos.
//
// Files (devices/.../net/IF/, modern order; modes verbatim):
//   netdev_group 0644 %d          type 0444 %d            dev_id 0444 %#x
//   dev_port 0444 %d              iflink 0444 %d          ifindex 0444 %d
//   name_assign_type 0444 %d (EINVAL when unknown)        addr_assign_type 0444 %d
//   addr_len 0444 %d              link_mode 0444 %d       address 0444 %*phC
//   broadcast 0444 %*phC          speed 0444 %d (EINVAL down/no ethtool)
//   duplex 0444 half|full|unknown (EINVAL down/no ethtool)
//   dormant 0444, testing 0444 (EINVAL down)              operstate 0444
//   carrier_changes 0444 %d       ifalias 0644 %s          carrier 0644 (EINVAL down)
//   mtu 0644 %d                   flags 0644 %#x           tx_queue_len 0644 %d
//   gro_flush_timeout 0644 %lu    napi_defer_hard_irqs 0644 %u
//   proto_down 0644 %d            carrier_up_count 0444   carrier_down_count 0444
//   threaded 0644 %d              uevent 0644              statistics/* 0444 %llu
//   queues/rx-N/{rps_cpus 0644 %*pb, rps_flow_cnt 0644 %lu}
//   queues/tx-N/{tx_timeout 0444 %lu, tx_maxrate 0644 %lu, traffic_class 0444,
//                xps_cpus 0644, byte_queue_limits/*} (netdev_queues.hpp)
//   links: device (PCI devices only), subsystem -> class/net
// Stores need CAP_NET_ADMIN (EPERM), parse with kstrtoul (EINVAL/ERANGE),
// then run the setter under rtnl (netdev_store in netdev_sysfs.cpp).
//
// Thread-safety: configuration fields are set before registration and then
// constant; fields userspace changes are written under rtnl and read
// locklessly (the kernel's READ_ONCE), operstate is written under
// dev_base_lock, and the TX queue is guarded by netif_tx_lock; each member
// names its lock.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/net_locks.hpp"
#include "core/tree.hpp"
#include "devices/net/netdev_bql.hpp"

namespace vsysfs::devices {

// include/uapi/linux/if.h
inline constexpr unsigned IFF_UP = 0x1, IFF_BROADCAST = 0x2, IFF_DEBUG = 0x4,
                          IFF_LOOPBACK = 0x8, IFF_POINTOPOINT = 0x10, IFF_NOTRAILERS = 0x20,
                          IFF_RUNNING = 0x40, IFF_NOARP = 0x80, IFF_PROMISC = 0x100,
                          IFF_ALLMULTI = 0x200, IFF_MASTER = 0x400, IFF_SLAVE = 0x800,
                          IFF_MULTICAST = 0x1000, IFF_PORTSEL = 0x2000, IFF_AUTOMEDIA = 0x4000,
                          IFF_DYNAMIC = 0x8000, IFF_LOWER_UP = 0x10000, IFF_DORMANT = 0x20000,
                          IFF_ECHO = 0x40000;
inline constexpr unsigned IFF_VOLATILE = IFF_LOOPBACK | IFF_POINTOPOINT | IFF_BROADCAST |
                                         IFF_ECHO | IFF_MASTER | IFF_SLAVE | IFF_RUNNING |
                                         IFF_LOWER_UP | IFF_DORMANT;

// NAPI weight: the budget of one poll (dev->weight / napi weight 64).
inline constexpr int kNapiBudget = 64;

// include/uapi/linux/if_arp.h
inline constexpr int ARPHRD_ETHER = 1, ARPHRD_LOOPBACK = 772;

// RFC 2863 operstate (include/uapi/linux/if.h IF_OPER_*).
enum class Operstate : std::uint8_t { Unknown, NotPresent, Down, LowerLayerDown, Testing, Dormant, Up };
std::string_view operstate_name(Operstate s);

// hard_start_xmit return codes, 2.6.18 values (include/linux/netdevice.h):
// NETDEV_TX_OK 0, NETDEV_TX_BUSY 1, NETDEV_TX_LOCKED -1.
enum class NetdevTx : int { Ok = 0, Busy = 1, Locked = -1 };
std::string_view netdev_tx_name(NetdevTx rc);

// What the core's transmit path did with one packet. NotRunning and
// NoCarrier: the device is down or has no carrier, and nothing reached
// the driver.
enum class XmitResult { Ok, Busy, Locked, QueueStopped, NotRunning, NoCarrier };

// A packet (struct sk_buff, reduced to what the simulation needs).
struct SkBuff {
  std::uint32_t len = 64;
  std::uint64_t id = 0;
  bool multicast = false;
};

// struct rtnl_link_stats64, in the order of statistics/ (docs/kernel-semantics.md section 5.4).
enum StatIndex : unsigned {
  kRxPackets, kTxPackets, kRxBytes, kTxBytes, kRxErrors, kTxErrors, kRxDropped, kTxDropped,
  kMulticast, kCollisions, kRxLengthErrors, kRxOverErrors, kRxCrcErrors, kRxFrameErrors,
  kRxFifoErrors, kRxMissedErrors, kTxAbortedErrors, kTxCarrierErrors, kTxFifoErrors,
  kTxHeartbeatErrors, kTxWindowErrors, kRxCompressed, kTxCompressed, kRxNohandler, kStatCount
};
inline constexpr std::array<std::string_view, kStatCount> kStatNames = {
    "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors",
    "rx_dropped", "tx_dropped", "multicast", "collisions", "rx_length_errors",
    "rx_over_errors", "rx_crc_errors", "rx_frame_errors", "rx_fifo_errors",
    "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
    "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed",
    "rx_nohandler"};
using RtnlLinkStats64 = std::array<std::uint64_t, kStatCount>;

// Counters a driver bumps from any context without a lock (the kernel's
// per-CPU/u64_stats counters): readers never wait for a writer.
class AtomicLinkStats {
 public:
  void add(StatIndex i, std::uint64_t n = 1) { v_[i].fetch_add(n, std::memory_order_relaxed); }
  // A snapshot restore puts the counters back (docs/snapshot.md).
  void restore(const RtnlLinkStats64& s) {
    for (unsigned i = 0; i < kStatCount; ++i) v_[i].store(s[i], std::memory_order_relaxed);
  }
  std::uint64_t get(StatIndex i) const { return v_[i].load(std::memory_order_relaxed); }
  // A power cycle: the counters start again from 0.
  void reset() {
    for (auto& v : v_) v.store(0, std::memory_order_relaxed);
  }
  RtnlLinkStats64 snapshot() const {
    RtnlLinkStats64 s{};
    for (unsigned i = 0; i < kStatCount; ++i) s[i] = v_[i].load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, kStatCount> v_{};
};

enum class Duplex { Half, Full, Unknown };

// ethtool link settings (get_link_ksettings).
struct LinkSettings {
  int speed = -1;  // Mb/s, SPEED_UNKNOWN = -1
  Duplex duplex = Duplex::Unknown;
};

class NetDevice;
class NetKnobs;

// The driver's hooks (2.6.18 struct net_device function pointers; modern
// struct net_device_ops names in brackets). Each states its lock and
// context as netdevices.txt does; NetDevice enters each one holding that
// lock, and a debug build aborts otherwise.
class NetDeviceOps {
 public:
  virtual ~NetDeviceOps() = default;

  // dev->open [ndo_open]. Synchronization: rtnl_lock() semaphore.
  // Context: process.
  virtual core::Status open(NetDevice& dev) = 0;
  // dev->stop [ndo_stop]. Synchronization: rtnl_lock() semaphore.
  // Context: process. Note1: netif_running() is guaranteed false.
  // Note2: dev->poll() is guaranteed to be stopped.
  virtual void stop(NetDevice& dev) = 0;
  // dev->do_ioctl [ndo_do_ioctl]. Synchronization: rtnl_lock() semaphore.
  // Context: process. Returns the value for userspace or an errno.
  virtual core::Result<std::uint32_t> do_ioctl(NetDevice& dev, unsigned cmd, std::uint32_t arg);
  // dev->get_stats [ndo_get_stats64]. Synchronization: dev_base_lock rwlock.
  // Context: nominally process, but don't sleep inside an rwlock.
  virtual RtnlLinkStats64 get_stats(const NetDevice& dev) const = 0;
  // A boot: the driver's counters start from 0 (a new probe allocates
  // them zeroed). Called with the device down, under rtnl.
  virtual void reset_stats() {}
  // dev->hard_start_xmit [ndo_start_xmit]. Synchronization: netif_tx_lock
  // spinlock; not held when the device is LLTX (the driver locks by itself,
  // with a trylock, and returns NETDEV_TX_LOCKED when it fails).
  // Context: BHs disabled. Notes: netif_queue_stopped() is guaranteed false.
  virtual NetdevTx hard_start_xmit(NetDevice& dev, const SkBuff& skb, unsigned cpu) = 0;
  // dev->tx_timeout [ndo_tx_timeout]. Synchronization: netif_tx_lock
  // spinlock. Context: BHs disabled. Notes: netif_queue_stopped() is
  // guaranteed true. Absent (has_tx_timeout false) means no watchdog.
  virtual bool has_tx_timeout() const { return false; }
  virtual void tx_timeout(NetDevice& dev);
  // dev->set_multicast_list [ndo_set_rx_mode]. Synchronization:
  // netif_tx_lock spinlock. Context: BHs disabled.
  virtual void set_multicast_list(NetDevice& dev);
  // dev->poll [napi->poll]. Synchronization: __LINK_STATE_RX_SCHED bit in
  // dev->state. Context: softirq. Returns the packets processed (<= budget).
  virtual bool has_napi() const { return false; }
  virtual int poll(NetDevice& dev, int budget);
  // Whether the receive ring holds packets poll() has not taken (the
  // interrupt the driver re-enables after napi_complete would fire).
  virtual bool rx_pending(const NetDevice& dev) const;
  // ndo_change_mtu. Synchronization: rtnl. Context: process.
  virtual core::Status change_mtu(NetDevice& dev, int new_mtu);
  // ndo_change_carrier (virtual devices only). Synchronization: rtnl.
  virtual bool can_change_carrier() const { return false; }
  virtual core::Status change_carrier(NetDevice& dev, bool on);
  // ethtool get_link_ksettings. Synchronization: rtnl. false = no such op.
  virtual bool get_link_ksettings(const NetDevice& dev, LinkSettings* out) const;
};

// Everything the machine description says about one interface.
struct NetDeviceConfig {
  std::string name = "eth0";
  std::string kind = "nic";          // "nic" or "loopback"
  int type = ARPHRD_ETHER;
  std::vector<std::uint8_t> dev_addr;   // addr_len bytes
  std::vector<std::uint8_t> broadcast;  // addr_len bytes
  int addr_assign_type = 0;          // NET_ADDR_PERM
  int name_assign_type = 1;          // NET_NAME_ENUM
  unsigned dev_id = 0;
  unsigned dev_port = 0;
  int mtu = 1500, min_mtu = 68, max_mtu = 1500;
  unsigned tx_queue_len = 1000;
  bool lltx = false;                 // NETIF_F_LLTX
  std::int64_t watchdog_timeo_ms = 0;  // <= 0: 5 s (__netdev_watchdog_up)
  unsigned flags = IFF_BROADCAST | IFF_MULTICAST;
  unsigned num_rx_queues = 1, num_tx_queues = 1;
  bool change_proto_down = false;    // dev->change_proto_down
  unsigned nr_cpu_ids = 4;           // width of rps_cpus masks
};

class NetDevice {
 public:
  NetDevice(core::Env& env, NetDeviceConfig cfg, int ifindex, std::shared_ptr<NetDeviceOps> ops);
  ~NetDevice();
  NetDevice(const NetDevice&) = delete;
  NetDevice& operator=(const NetDevice&) = delete;

  static std::span<const core::AttributeGroup<NetDevice>> groups();

  // --- identity (constant after construction) --------------------------------
  const std::string& name() const { return cfg_.name; }
  int ifindex() const { return ifindex_; }
  const NetDeviceConfig& config() const { return cfg_; }
  NetDeviceOps& ops() const { return *ops_; }
  core::Env& env() const { return env_; }
  bool lltx() const { return cfg_.lltx; }
  core::Nanos watchdog_timeo() const;

  // register_netdevice / unregister: reg_state for dev_isalive().
  // set_kobj: the directory the device's files are in (a default Kobject
  // once they are removed). Locking: none (the handle has its own mutex).
  void set_kobj(core::Kobject kobj) { kobj_.set(kobj); }
  bool dev_isalive() const { return alive_.load(); }
  // unregister_netdevice at machine teardown: not alive, timers stopped.
  void unregister_netdevice();
  // unregister_netdev from the driver's remove (the PCI driver's unbind,
  // devices/net/netdev_pci_driver.hpp): dev_close if up (NETDEV_GOING_DOWN,
  // ndo_stop frees the rings, the watchdog and NAPI stop), then
  // NETDEV_UNREGISTER and reg_state past NETREG_REGISTERED; the caller
  // removes the files. Locking: rtnl held by caller. Context: process.
  void unregister_netdev_locked();
  // register_netdev from the driver's probe after a remove: the device
  // as a fresh probe leaves it (boot_reset's state: down, counters 0, the
  // MAC kept), registered again. Locking: rtnl held by caller.
  void register_netdev_locked();

  // --- state (netif_* helpers, include/linux/netdevice.h) --------------------
  bool netif_running() const { return start_.load(); }
  bool netif_carrier_ok() const { return !nocarrier_.load(); }
  bool netif_dormant() const { return dormant_.load(); }
  bool netif_testing() const { return testing_.load(); }
  bool netif_device_present() const { return present_.load(); }
  unsigned flags() const { return flags_.load(); }
  int carrier_down_count() const { return carrier_down_count_.load(); }
  int mtu() const { return mtu_.load(); }
  Operstate operstate() const;

  // netif_carrier_on/off: Locking: none (atomic state bit; operstate is
  // updated under dev_base_lock). Context: any (drivers call these from
  // interrupt handlers).
  void netif_carrier_on();
  void netif_carrier_off();
  // K/fail/net_rx in the driver's NAPI poll, per received frame: nullopt
  // when nothing is injected, else what happens to the frame instead of
  // delivery (netdev_fault.cpp). Context: softirq; locking: none.
  std::optional<core::NetRxFault> rx_fault(const SkBuff& skb);

  // --- configuration paths (net/core/dev.c). Locking: rtnl held by caller.
  // Context: process. -------------------------------------------------------
  core::Status dev_open();             // __dev_open + NETDEV_UP
  void dev_close();                    // __dev_close + NETDEV_DOWN
  core::Status dev_change_flags(unsigned flags);
  core::Status dev_set_mtu(int new_mtu);
  core::Status dev_change_carrier(bool on);
  core::Status dev_change_proto_down(bool down);
  core::Status dev_change_tx_queue_len(unsigned long len);
  void dev_set_group(int group);
  core::Status dev_set_alias(std::string_view alias);
  // dev_set_rx_mode: takes netif_tx_lock and calls set_multicast_list.
  void dev_set_rx_mode();
  // dev_ioctl: takes rtnl itself (the ioctl path), then do_ioctl.
  core::Result<std::uint32_t> dev_ioctl(unsigned cmd, std::uint32_t arg);

  // --- statistics. Locking: dev_base_lock held (read) by caller. ---------------
  RtnlLinkStats64 dev_get_stats() const;

  // A boot of the machine (docs/devices/net.md "Power cycle"): with the
  // device down, everything the running kernel changed goes back to what
  // probe and register_netdevice set: flags, mtu, tx_queue_len, group,
  // alias, carrier and its counts, queue state, BQL, the core's and the
  // driver's counters. The MAC and the hardware's cable are kept.
  // Locking: the caller holds rtnl. Context: the machine's boot hook.
  void boot_reset();
  // boot_reset without its event (the state a probe leaves).
  void reset_to_probe();

  // --- transmit (net/core/dev.c, net/sched/sch_generic.c) --------------------
  // dev_hard_start_xmit as pktgen calls it: refuses a device that is not
  // running or has no carrier (pktgen_xmit: "If device is offline, then
  // don't send"), takes netif_tx_lock (unless LLTX), refuses when the
  // queue is stopped, calls hard_start_xmit, and counts/logs
  // NETDEV_TX_BUSY as the flow-control bug it is.
  // Locking: none held by caller. Context: BHs disabled (a timer or a FUSE
  // worker standing in for a sending CPU, `cpu`).
  XmitResult dev_hard_start_xmit(const SkBuff& skb, unsigned cpu);
  // netif_tx_lock / unlock (tests use them to hold the lock).
  core::Mutex& netif_tx_lock() { return tx_lock_; }
  // Queue flow control. stop: Locking: netif_tx_lock or the LLTX lock.
  // wake: Locking: none (completion path); runs the wake hook.
  void netif_stop_queue();
  void netif_wake_queue();
  // netif_xmit_stopped: stopped by the driver or by BQL.
  bool netif_queue_stopped() const { return xoff_.load() || stack_xoff_.load(); }
  // netif_tx_queue_stopped: the driver's own stop only (__QUEUE_STATE_DRV_XOFF).
  bool netif_tx_queue_stopped() const { return xoff_.load(); }
  // BQL (netdev_tx_sent_queue / netdev_tx_completed_queue /
  // netdev_tx_reset_queue) for TX queue 0. sent: Locking: the driver's
  // xmit lock. completed: Locking: the driver's completion lock; runs the
  // wake hook when the queue drops below its limit.
  void netdev_tx_sent_queue(unsigned bytes);
  void netdev_tx_completed_queue(unsigned pkts, unsigned bytes);
  void netdev_tx_reset_queue();
  // queues/tx-N/byte_queue_limits. Locking: the BQL mutex (leaf).
  Dql dql(unsigned queue) const;
  template <typename Fn>
  void update_dql(unsigned queue, Fn fn) {
    core::MutexLock lock(bql_mu_);
    fn(dql_.at(queue));
  }
  // txq_trans_update: records the time of the last transmit.
  void txq_trans_update();
  core::Nanos trans_start() const { return core::Nanos{trans_start_.load()}; }
  std::uint64_t trans_timeout_count() const { return trans_timeout_.load(); }
  std::uint64_t tx_busy_count() const { return tx_busy_.load(); }
  std::uint64_t tx_locked_count() const { return tx_locked_.load(); }
  // Frames K/fail/net_xmit made the driver drop (dev_core_stats_tx_dropped_inc:
  // added to statistics/tx_dropped by dev_get_stats).
  std::uint64_t core_tx_dropped() const { return core_tx_dropped_.load(); }
  // K/fail/net_xmit "hang" stopped the queue: netif_wake_queue leaves it
  // stopped until ndo_tx_timeout runs (or the interface goes down).
  bool xmit_hung() const { return xmit_hung_.load(); }
  // Called after netif_wake_queue (pktgen resumes; __netif_schedule).
  void set_wake_hook(std::function<void()> fn);

  // --- NAPI -----------------------------------------------------------------
  // napi_schedule: sets RX_SCHED and raises the RX softirq (a timer at
  // "now" on the Env clock). Locking: none. Context: interrupt.
  void napi_schedule();
  bool napi_scheduled() const { return rx_sched_.load(); }
  std::uint64_t napi_polls() const { return napi_polls_.load(); }

  // --- machine snapshots (netdev_state.cpp, docs/snapshot.md) ----------------
  // Everything of the device a restore brings back, its timers included.
  struct State {
    bool running = false;  // __LINK_STATE_START
    bool nocarrier = true, dormant = false, testing = false;
    int carrier_up_count = 0, carrier_down_count = 0;
    Operstate operstate = Operstate::Unknown;
    unsigned flags = 0, gflags = 0;
    int promiscuity = 0, allmulti = 0;
    int mtu = 0;
    unsigned tx_queue_len = 0;
    int group = 0;
    bool proto_down = false, threaded = false;
    std::uint64_t gro_flush_timeout = 0;
    unsigned napi_defer_hard_irqs = 0;
    std::string ifalias;
    bool xoff = false, stack_xoff = false, xmit_hung = false;
    std::vector<Dql> dql;  // one per TX queue
    std::int64_t trans_start = 0;
    std::uint64_t trans_timeout = 0, tx_busy = 0, tx_locked = 0, core_tx_dropped = 0;
    bool rx_sched = false;
    std::uint64_t napi_polls = 0;
    core::TimerState watchdog, rx_softirq;
  };
  // Locking: rtnl held by the caller; takes dev_base_lock (read), the
  // ifalias and BQL mutexes.
  State save_state() const;
  // Whether load_state would take `s` (values the device can hold).
  bool check_state(const State& s) const;
  // Cancels the watchdog and the RX softirq and waits for them.
  // Locking: none of the device's locks held (rtnl may be).
  void cancel_timers();
  // Sets the state directly, without open/close/carrier paths and their
  // events (the machine is put back, nothing happens on it), re-arms the
  // timers at their saved deadlines and notifies pollers of the flags,
  // operstate and carrier files that changed. Locking: rtnl held by the
  // caller; timers cancelled.
  void load_state(const State& s);

  // --- files (netdev_sysfs.cpp) ---------------------------------------------------
  // The kobject of devices/.../net/IF (DEVPATH of its uevents).
  core::Kobject kobj() const { return kobj_.get(); }
  // ifalias. show: Locking: ifalias_mu_. store: Locking: rtnl, then
  // ifalias_mu_ (dev_set_alias). Context: FUSE worker (process).
  core::Status ifalias_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> ifalias_store(const core::Caller& c, std::string_view in);

 private:
  friend class NetKnobs;  // traffic batches (netdev_traffic_batch.cpp)
  // Setters of private state for netdev_store (net-sysfs.c). Locking:
  // rtnl held by caller. The table in groups() names them and the fields
  // its one-line attributes show.
  core::Status change_gro_flush_timeout(unsigned long v);
  core::Status change_napi_defer_hard_irqs(unsigned long v);
  core::Status modify_napi_threaded(unsigned long v);

  // The state-change paths shared by open/close/carrier.
  void linkwatch_do_dev();  // operstate per RFC 2863 (rfc2863_policy)
  void set_operstate(Operstate s);
  void dev_activate();      // arm the watchdog (dev_watchdog_up)
  void dev_deactivate();    // stop the watchdog, wait for xmit to finish
  void dev_watchdog();      // the watchdog timer callback
  void net_rx_action();     // the RX softirq
  void napi_disable();
  void napi_enable();
  void call_netdevice_notifiers(std::string_view event);
  // K/fail/net_xmit at ndo_start_xmit: nullopt when nothing is injected,
  // else what the driver returns instead of running (netdev_fault.cpp).
  // Locking: netif_tx_lock held, or none for an LLTX device.
  std::optional<NetdevTx> xmit_fault(const SkBuff& skb, unsigned cpu);
  // K/fail/net_open at ndo_open: the errno the driver's open returns
  // instead of running, or nullopt. Locking: rtnl held by caller.
  std::optional<core::Errno> open_fault();

  core::Env& env_;
  const NetDeviceConfig cfg_;
  const int ifindex_;
  const std::shared_ptr<NetDeviceOps> ops_;
  // The Kobject handle, replaced when the driver's probe registers the
  // device again (timers and interrupts notify through it concurrently).
  class KobjHandle {
   public:
    void set(core::Kobject k) {
      core::MutexLock lock(mu_);
      k_ = k;
    }
    core::Kobject get() const {
      core::MutexLock lock(mu_);
      return k_;
    }
    void notify(std::string_view attr) const { get().notify(attr); }

   private:
    mutable core::Mutex mu_{"netdev.kobj"};  // Order: leaf (released before notify)
    core::Kobject k_ GUARDED_BY(mu_);
  };
  KobjHandle kobj_;

  std::atomic<bool> alive_{true};   // reg_state == NETREG_REGISTERED
  std::atomic<bool> present_{true};  // __LINK_STATE_PRESENT
  std::atomic<bool> start_{false};   // __LINK_STATE_START (netif_running)
  std::atomic<bool> nocarrier_{true};  // __LINK_STATE_NOCARRIER
  std::atomic<bool> dormant_{false};
  std::atomic<bool> testing_{false};
  std::atomic<int> carrier_up_count_{0};
  std::atomic<int> carrier_down_count_{0};
  Operstate operstate_ GUARDED_BY(core::dev_base_lock()) = Operstate::Unknown;

  // Written under rtnl, read locklessly by shows (READ_ONCE).
  std::atomic<unsigned> flags_;
  unsigned gflags_ = 0;  // guarded by rtnl
  int promiscuity_ = 0;  // guarded by rtnl
  int allmulti_ = 0;     // guarded by rtnl
  std::atomic<int> mtu_;
  std::atomic<unsigned> tx_queue_len_;
  std::atomic<int> group_{0};
  std::atomic<bool> proto_down_{false};
  std::atomic<bool> threaded_{false};
  std::atomic<unsigned long> gro_flush_timeout_{0};
  std::atomic<unsigned> napi_defer_hard_irqs_{0};
  mutable core::Mutex ifalias_mu_{"netdev.ifalias_mutex"};  // Order: leaf
  std::string ifalias_ GUARDED_BY(ifalias_mu_);

  // TX queue 0 (struct netdev_queue).
  core::Mutex tx_lock_{"netif_tx_lock", core::kRankTxLock};
  std::atomic<bool> xoff_{false};                 // __QUEUE_STATE_DRV_XOFF
  std::atomic<bool> stack_xoff_{false};           // __QUEUE_STATE_STACK_XOFF (BQL)
  mutable core::Mutex bql_mu_{"netdev.bql"};     // Order: leaf
  std::vector<Dql> dql_ GUARDED_BY(bql_mu_);      // one per TX queue
  std::atomic<std::int64_t> trans_start_{0};      // ns
  std::atomic<std::uint64_t> trans_timeout_{0};
  std::atomic<std::uint64_t> tx_busy_{0};
  std::atomic<std::uint64_t> tx_locked_{0};
  std::atomic<std::uint64_t> core_tx_dropped_{0};  // dev->core_stats tx_dropped
  std::atomic<bool> xmit_hung_{false};
  core::Mutex wake_mu_{"netdev.wake_hook"};  // Order: leaf (hook copied out, run unlocked)
  std::function<void()> wake_hook_ GUARDED_BY(wake_mu_);

  // NAPI.
  std::atomic<bool> rx_sched_{false};  // __LINK_STATE_RX_SCHED / NAPI_STATE_SCHED
  std::atomic<std::uint64_t> napi_polls_{0};

  // Declared last: destroyed (and waited for) before the state they use.
  core::Timer watchdog_timer_;
  core::Timer rx_softirq_;
};

// Parses "aa:bb:cc:dd:ee:ff" (machine files); false on bad syntax.
bool parse_mac(std::string_view text, std::vector<std::uint8_t>* out);

}  // namespace vsysfs::devices
