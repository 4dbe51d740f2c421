#pragma once

// The [net] section's part of a machine snapshot (docs/snapshot.md "What
// restore covers"): one StateHandler, "net", for every interface the
// section built, because cabled NICs share their link and the TX path
// crosses the cable. Per interface (fields "ifN.*", N its position in the
// machine file; the name and kind are saved to check the record is this
// machine's):
//   - the net_device: running, carrier and its up/down counts, dormant,
//     testing, operstate, flags (with the promiscuity/allmulti counts),
//     mtu, tx_queue_len, netdev_group, proto_down, threaded,
//     gro_flush_timeout, napi_defer_hard_irqs, ifalias, the TX queue's
//     stopped bits (driver and BQL), every queue's dql, trans_start and
//     the timeout/BUSY/LOCKED/core tx_dropped counts, an injected hang,
//     NAPI's RX_SCHED bit and poll count, the watchdog and the RX softirq;
//   - the NIC driver: ring indices, every rtnl_link_stats64 counter it
//     keeps, the `faults` and `ordering` knobs, ring resets;
//   - the NIC hardware: registers (CTRL enables, RX_MODE, head, tail,
//     written-back head, doorbell errors), cable, PHY link, the DMA hang,
//     the frame on the wire and its deadline, the descriptors still in
//     the TX ring, the RX ring, the MMIO bus (posted writes, the chipset's
//     random sequence, counters) and the chipset's drain timer;
//   - loopback: its counters and backlog;
//   - the traffic generator: settings, run state, counters, its timer;
//   - rx-N (rps_cpus, rps_flow_cnt), tx-N (xps_cpus), and the PCI
//     function's numa_node, power/control, driver_override and writable
//     config bytes;
//   - whether the interface is registered (its PCI driver bound): a
//     restore across a bind/unbind is EBUSY, the binding is not restored.
// Not saved: identity and configuration (constant after the build),
// iattr times, and the TX lock-rule detector's in-flight markers (zero
// whenever nothing transmits, as during a restore).
//
// Restore sets this state directly instead of running dev_open/dev_close
// (an interface down at the snapshot and up now ends down with the
// snapshot's operstate, carrier, queue and ring state, and nothing is
// logged for it: nothing happened on the machine). Every timer pending at
// the snapshot is re-armed at its deadline and its place among timers due
// at the same instant (core::TimerState), timers armed later are gone.
// A link a K/fail/link_flap schedule holds down is saved held down (the
// hardware's flap_down); the schedule that brings it back is in the
// control plane's record (core/fault_inject_state.cpp).
//
// Thread-safety: the handler runs under the snapshot mutex; load takes
// rtnl, then each object's own locks (net_locks.hpp order), after the
// timers are cancelled with none of them held.

#include <memory>
#include <vector>

#include "devices/machine/machine.hpp"
#include "devices/net/netdev.hpp"
#include "devices/net/netdev_knobs.hpp"
#include "devices/net/netdev_nic.hpp"
#include "devices/net/netdev_pci.hpp"
#include "devices/net/netdev_queues.hpp"

namespace vsysfs::devices {

// One interface of the section, as the builder made it.
struct NetStateIface {
  std::shared_ptr<NetDevice> dev;
  VnicDriver* nic = nullptr;     // null for loopback
  LoopbackDriver* lo = nullptr;  // null for a NIC
  std::shared_ptr<NetKnobs> knobs;
  std::shared_ptr<PciFunction> pci;  // null when virtual
  std::vector<std::shared_ptr<NetRxQueue>> rx;
  std::vector<std::shared_ptr<NetTxQueue>> tx;
};

// The "net" StateHandler over `ifaces` (version 1).
StateHandler net_state_handler(std::vector<NetStateIface> ifaces);

}  // namespace vsysfs::devices
