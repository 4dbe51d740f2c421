#pragma once

// /sys/class/net/IF/queues/rx-N and tx-N (net/core/net-sysfs.c, modern:
// rx_queue_default_attrs, netdev_queue_default_attrs; docs/kernel-semantics.md section 5.1).
//
//   rx-N/rps_cpus       0644  %*pb mask over nr_cpu_ids; store: CAP_NET_ADMIN,
//                             bitmap_parse (EINVAL, EOVERFLOW)
//   rx-N/rps_flow_cnt   0644  %lu; store rounds up to a power of two
//   tx-N/tx_timeout     0444  %lu  watchdog timeouts of this queue
//   tx-N/tx_maxrate     0644  %lu  store: EPERM, then EOPNOTSUPP (no ndo_set_tx_maxrate)
//   tx-N/traffic_class  0444  ENOENT on a single-queue device, else the TC (0)
//   tx-N/xps_cpus       0644  %*pb over nr_cpu_ids; ENOENT on a single-queue
//                             device; store: ENOENT first, then EPERM, bitmap_parse
//   tx-N/byte_queue_limits/  (dynamic_queue_limits, see netdev_bql.hpp); absent
//                             on LLTX devices (netdev_uses_bql), so on lo
//       hold_time  0644 %u ms; store kstrtouint base 10
//       inflight   0444 %u bytes queued and not completed
//       limit, limit_max, limit_min  0644 %u; store "max" (or "max\n") or
//                  kstrtouint base 10, EINVAL above DQL_MAX_LIMIT (1879048192)
// Not modelled: xps_rxqs, the 6.9+ stall_thrs/stall_cnt/stall_max.
//
// Thread-safety: each queue's values sit under its own leaf mutex.

#include <cstdint>
#include <span>
#include <vector>

#include "core/attribute.hpp"
#include "core/locks.hpp"
#include "devices/net/netdev.hpp"

namespace vsysfs::devices {

// bitmap_parse (lib/bitmap-str.c): comma-separated 32-bit hex chunks, read
// from the end; stops at the first '\n'. EINVAL for a non-hex character,
// EOVERFLOW for more than nbits (or a chunk of more than 8 digits).
core::Result<std::vector<bool>> bitmap_parse(std::string_view buf, unsigned nbits);

class NetRxQueue {
 public:
  NetRxQueue(NetDevice& dev, unsigned index) : dev_(dev), index_(index) {}
  static std::span<const core::AttributeGroup<NetRxQueue>> groups();

  // Locking: the queue's mutex. Context: process.
  core::Status rps_cpus_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> rps_cpus_store(const core::Caller& c, std::string_view in);
  core::Status rps_flow_cnt_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> rps_flow_cnt_store(const core::Caller& c, std::string_view in);

  // Machine snapshots (netdev_state.cpp). Locking: the queue mutex.
  struct State {
    std::vector<bool> rps_map;
    std::uint64_t flow_table_size = 0;
  };
  State save_state() const;
  void load_state(const State& s);

 private:
  NetDevice& dev_;
  const unsigned index_;
  mutable core::Mutex mu_{"netdev.rx_queue"};  // Order: leaf
  std::vector<bool> rps_map_ GUARDED_BY(mu_);
  std::uint64_t flow_table_size_ GUARDED_BY(mu_) = 0;  // mask + 1, 0 = no table
};

class NetTxQueue {
 public:
  NetTxQueue(NetDevice& dev, unsigned index) : dev_(dev), index_(index) {}
  // The groups of a tx-N directory of `dev`: byte_queue_limits/ only when
  // the device uses BQL (net-sysfs.c netdev_queue_add_kobject creates
  // dql_group only if netdev_uses_bql: not for dev->lltx or IFF_NO_QUEUE
  // devices; loopback is both).
  static std::span<const core::AttributeGroup<NetTxQueue>> groups(const NetDevice& dev);

  core::Status tx_timeout_show(core::PageBuffer& buf) const;
  core::Status tx_maxrate_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> tx_maxrate_store(const core::Caller& c, std::string_view in);
  core::Status traffic_class_show(core::PageBuffer& buf) const;
  core::Status xps_cpus_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> xps_cpus_store(const core::Caller& c, std::string_view in);
  // byte_queue_limits/. Locking: the device's BQL mutex. Context: process.
  core::Status hold_time_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> hold_time_store(const core::Caller& c, std::string_view in);
  core::Status inflight_show(core::PageBuffer& buf) const;
  core::Status limit_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> limit_store(const core::Caller& c, std::string_view in);
  core::Status limit_max_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> limit_max_store(const core::Caller& c, std::string_view in);
  core::Status limit_min_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> limit_min_store(const core::Caller& c, std::string_view in);

  // Machine snapshots (netdev_state.cpp): xps_cpus (the BQL state is the
  // device's). Locking: the queue mutex.
  std::vector<bool> save_state() const;
  void load_state(const std::vector<bool>& xps_cpus);

 private:
  core::Result<std::size_t> bql_set(const core::Caller& c, std::string_view in,
                                    unsigned Dql::*field, std::string_view name);

  NetDevice& dev_;
  const unsigned index_;
  mutable core::Mutex mu_{"netdev.tx_queue"};  // Order: leaf
  std::vector<bool> xps_cpus_ GUARDED_BY(mu_);
};

}  // namespace vsysfs::devices
