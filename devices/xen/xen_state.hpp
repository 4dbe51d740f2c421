#pragma once

// The [xen] section's part of a machine snapshot (docs/snapshot.md "What
// restore covers"): one StateHandler, "xen", for the balloon driver, the
// simulated hypervisor, the xenstore and the xen_memory bus, so that the
// balloon's pages and the hypervisor's accounts of them are saved and
// restored together (they must agree: XenBalloon::accounts_agree).
//
// The record (version 1), key by key:
//   balloon.driver                 "kthread"/"workqueue" (checked: a record
//                                  of the other driver is EINVAL)
//   balloon.target_pages, .schedule_delay, .max_schedule_delay,
//   balloon.retry_count, .max_retry_count   struct balloon_stats
//   balloon.state                  balloon_state: DONE, EAGAIN, ECANCELED
//   balloon.sleep_credit           the credit the kthread sampled before
//                                  its wait (balloon_thread_cond)
//   balloon.scrub_pages            xen_scrub_pages
//   balloon.worker_dead            the worker met BUG_ON in decrease_reservation
//   balloon.powered_off            the machine is off (no worker run until a boot)
//   balloon.worker.{pending,expires_ns,seq}  the delayed work / the
//                                  kthread's wait timeout
//   mem.numa                       which back end (checked)
//   mem.current, mem.kernel, mem.used       flat back end (kernel checked)
//   mem.from_node, mem.next_rr     NUMA back end (the nodes' pages are the
//                                  numa handler's, restored before this one)
//   mem.balloon_low                pages in the balloon
//   hv.total_pages, hv.populate_fail        the host
//   hv.vpmu.{mode,features}        XENPMU mode and features (hypervisor/pmu/);
//                                  absent in records of earlier builds: the
//                                  boot values
//   hv.dom.D.{current,target,max,pace}      every domain by domid (max
//                                  and the set of domids checked)
//   hv.pace.{pending,expires_ns,seq}        the other domains' pacing timer
//   xenstore.nodes, xenstore.node.N "PATH VALUE": the tree in depth-first
//                                  creation order (children keep their order)
//   xenstore.watch.D.{fired,target_diff}    each domain's watch_target state
//   bus.drivers_autoprobe          bus/xen_memory/drivers_autoprobe
// /sys/hypervisor is fixed at construction (XenSysHypervisor) but for pmu/,
// whose mode and features are the hypervisor's (hv.vpmu above): nothing else to
// save. The record is read whole and checked before anything changes
// (EINVAL otherwise); timers are re-armed at their saved deadlines and
// their saved places among the clock's timers due at the same instant
// (".seq", core::TimerState::order; Timer::restore), so two due at the
// same instant fire in the order they did, a timer of another section
// (net, testdev) included.

#include <memory>

namespace vsysfs::devices {

struct MachineContext;
class XenHypervisor;
class XenBalloon;
class XenStore;
class XenMemoryBus;

// Registers the "xen" StateHandler (from the [xen] builder).
void register_xen_state(MachineContext& ctx, std::shared_ptr<XenHypervisor> hv,
                        std::shared_ptr<XenBalloon> balloon, std::shared_ptr<XenStore> store,
                        std::shared_ptr<XenMemoryBus> bus);

}  // namespace vsysfs::devices
