// queues/rx-N and queues/tx-N (see netdev_queues.hpp).

#include "devices/net/netdev_queues.hpp"

#include <cerrno>

#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<NetRxQueue> kRxAttrs[] = {
    VSYSFS_ATTR_RW(NetRxQueue, rps_cpus),
    VSYSFS_ATTR_RW(NetRxQueue, rps_flow_cnt),
};
constexpr core::AttributeGroup<NetRxQueue> kRxGroups[] = {{.name = "", .attrs = kRxAttrs}};

constexpr core::DeviceAttribute<NetTxQueue> kTxAttrs[] = {
    VSYSFS_ATTR_RO(NetTxQueue, tx_timeout),
    VSYSFS_ATTR_RW(NetTxQueue, tx_maxrate),
    VSYSFS_ATTR_RO(NetTxQueue, traffic_class),
    VSYSFS_ATTR_RW(NetTxQueue, xps_cpus),
};
constexpr core::DeviceAttribute<NetTxQueue> kBqlAttrs[] = {
    VSYSFS_ATTR_RW(NetTxQueue, hold_time),
    VSYSFS_ATTR_RO(NetTxQueue, inflight),
    VSYSFS_ATTR_RW(NetTxQueue, limit),
    VSYSFS_ATTR_RW(NetTxQueue, limit_max),
    VSYSFS_ATTR_RW(NetTxQueue, limit_min),
};
constexpr core::AttributeGroup<NetTxQueue> kTxGroups[] = {
    {.name = "", .attrs = kTxAttrs},
    {.name = "byte_queue_limits", .attrs = kBqlAttrs},
};

// The simulated vmalloc refuses flow tables above 1 GiB (8-byte entries).
constexpr std::uint64_t kMaxFlowTableEntries = (1ULL << 30) / 8;

int hex_to_bin(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool end_of_region(char c) { return core::kernel_isspace(c) || c == ','; }

}  // namespace

core::Result<std::vector<bool>> bitmap_parse(std::string_view buf, unsigned nbits) {
  // end = strnchrnul(start, buflen, '\n') - 1 (a NUL also ends the string)
  std::size_t stop = buf.find_first_of(std::string_view("\n\0", 2));
  if (stop == std::string_view::npos) stop = buf.size();
  long end = static_cast<long>(stop) - 1;
  const unsigned nchunks = (nbits + 31) / 32;
  std::vector<std::uint32_t> chunks;
  for (;;) {
    while (end >= 0 && end_of_region(buf[static_cast<std::size_t>(end)])) --end;
    if (end < 0) break;
    if (chunks.size() == nchunks) return core::Errno{EOVERFLOW};
    std::uint32_t v = 0;
    bool done = false;
    for (int i = 0; i < 32; i += 4) {
      const int c = hex_to_bin(buf[static_cast<std::size_t>(end--)]);
      if (c < 0) return core::Errno{EINVAL};
      v |= static_cast<std::uint32_t>(c) << i;
      if (end < 0 || end_of_region(buf[static_cast<std::size_t>(end)])) {
        done = true;
        break;
      }
    }
    // Kernel quirk: after 8 digits a 9th hex digit is EOVERFLOW, but any
    // other character there is skipped unchecked ("x12345678" parses).
    if (!done && hex_to_bin(buf[static_cast<std::size_t>(end--)]) >= 0) return core::Errno{EOVERFLOW};
    chunks.push_back(v);
  }
  std::vector<bool> bits(nbits, false);
  for (std::size_t ci = 0; ci < chunks.size(); ++ci)
    for (unsigned b = 0; b < 32; ++b)
      if (chunks[ci] & (1U << b)) {
        const std::size_t bit = ci * 32 + b;
        if (bit >= nbits) return core::Errno{EOVERFLOW};
        bits[bit] = true;
      }
  return bits;
}

std::span<const core::AttributeGroup<NetRxQueue>> NetRxQueue::groups() { return kRxGroups; }
// net-sysfs.c (6.12) netdev_uses_bql: false for dev->lltx and for
// IFF_NO_QUEUE; every IFF_NO_QUEUE device modelled (loopback) is LLTX.
std::span<const core::AttributeGroup<NetTxQueue>> NetTxQueue::groups(const NetDevice& dev) {
  const std::span<const core::AttributeGroup<NetTxQueue>> all = kTxGroups;
  return dev.lltx() ? all.first(1) : all;
}

// show_rps_map: the mask, "%*pb\n" over nr_cpu_ids.
core::Status NetRxQueue::rps_cpus_show(core::PageBuffer& buf) const {
  const unsigned n = dev_.config().nr_cpu_ids;
  core::MutexLock lock(mu_);
  buf.emit("{}\n", core::bitmap_print_mask(rps_map_, n));
  return {};
}

// store_rps_map. Locking: the queue mutex (the kernel's rps_map_mutex).
core::Result<std::size_t> NetRxQueue::rps_cpus_store(const core::Caller& c, std::string_view in) {
  if (!c.capable(core::Capability::NetAdmin)) return core::Errno{EPERM};
  auto mask = VSYSFS_TRY(bitmap_parse(in, dev_.config().nr_cpu_ids));
  // Every simulated CPU is online and a housekeeping CPU: the mask stays.
  core::MutexLock lock(mu_);
  rps_map_ = std::move(mask);
  dev_.env().log(&c, dev_.name(), "rps_cpus", "OK",
                 {{"queue", index_}, {"mask", core::bitmap_print_mask(rps_map_, dev_.config().nr_cpu_ids)}});
  return in.size();
}

core::Status NetRxQueue::rps_flow_cnt_show(core::PageBuffer& buf) const {
  core::MutexLock lock(mu_);
  buf.emit("{}\n", flow_table_size_);
  return {};
}

// store_rps_dev_flow_table_cnt.
// Kernel quirk: the count is rounded up to a power of two: 100 reads back 128.
core::Result<std::size_t> NetRxQueue::rps_flow_cnt_store(const core::Caller& c,
                                                         std::string_view in) {
  if (!c.capable(core::Capability::NetAdmin)) return core::Errno{EPERM};
  const unsigned long count = VSYSFS_TRY(core::kstrtoul(in, 0));
  std::uint64_t size = 0;
  if (count) {
    unsigned long mask = count - 1;
    while ((mask | (mask >> 1)) != mask) mask |= (mask >> 1);
    // 64-bit: the mask must fit table->mask (u32).
    if (mask > 0xffffffffUL) return core::Errno{EINVAL};
    if (static_cast<std::uint64_t>(mask) + 1 > kMaxFlowTableEntries) return core::Errno{ENOMEM};
    size = static_cast<std::uint64_t>(mask) + 1;
  }
  core::MutexLock lock(mu_);
  flow_table_size_ = size;
  return in.size();
}

core::Status NetTxQueue::tx_timeout_show(core::PageBuffer& buf) const {
  // Only queue 0 carries traffic in the simulation.
  buf.emit("{}\n", index_ == 0 ? dev_.trans_timeout_count() : 0);
  return {};
}

core::Status NetTxQueue::tx_maxrate_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", 0);
  return {};
}

core::Result<std::size_t> NetTxQueue::tx_maxrate_store(const core::Caller& c, std::string_view) {
  if (!c.capable(core::Capability::NetAdmin)) return core::Errno{EPERM};
  // No driver here implements ndo_set_tx_maxrate.
  return core::Errno{EOPNOTSUPP};
}

core::Status NetTxQueue::traffic_class_show(core::PageBuffer& buf) const {
  if (dev_.config().num_tx_queues <= 1) return core::Errno{ENOENT};  // !netif_is_multiqueue
  buf.emit("{}\n", 0);  // num_tc == 0: netdev_txq_to_tc gives 0
  return {};
}

}  // namespace vsysfs::devices

namespace vsysfs::devices {

// xps_cpus_show: ENOENT unless the device is multiqueue.
core::Status NetTxQueue::xps_cpus_show(core::PageBuffer& buf) const {
  if (dev_.config().num_tx_queues <= 1) return core::Errno{ENOENT};
  const unsigned n = dev_.config().nr_cpu_ids;
  core::MutexLock lock(mu_);
  buf.emit("{}\n", core::bitmap_print_mask(xps_cpus_, n));
  return {};
}

// xps_cpus_store: !netif_is_multiqueue is ENOENT before the capability
// check (EPERM), then bitmap_parse, then netif_set_xps_queue under rtnl.
core::Result<std::size_t> NetTxQueue::xps_cpus_store(const core::Caller& c, std::string_view in) {
  if (dev_.config().num_tx_queues <= 1) return core::Errno{ENOENT};
  if (!c.capable(core::Capability::NetAdmin)) return core::Errno{EPERM};
  auto mask = VSYSFS_TRY(bitmap_parse(in, dev_.config().nr_cpu_ids));
  core::MutexLock lock(mu_);
  xps_cpus_ = std::move(mask);
  return in.size();
}

core::Status NetTxQueue::hold_time_show(core::PageBuffer& buf) const {
  const Dql d = dev_.dql(index_);
  buf.emit("{}\n", std::chrono::duration_cast<std::chrono::milliseconds>(d.slack_hold_time).count());
  return {};
}

core::Result<std::size_t> NetTxQueue::hold_time_store(const core::Caller& c, std::string_view in) {
  const unsigned ms = VSYSFS_TRY(core::kstrtouint(in, 10));
  dev_.update_dql(index_, [&](Dql& d) { d.slack_hold_time = std::chrono::milliseconds(ms); });
  dev_.env().log(&c, dev_.name(), "bql", "OK", {{"queue", index_}, {"hold_time", ms}});
  return in.size();
}

core::Status NetTxQueue::inflight_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", dev_.dql(index_).inflight());
  return {};
}

// bql_set: "max" (with or without one newline) or a decimal up to DQL_MAX_LIMIT.
core::Result<std::size_t> NetTxQueue::bql_set(const core::Caller& c, std::string_view in,
                                              unsigned Dql::*field, std::string_view name) {
  const std::string_view s = in.substr(0, in.find('\0'));
  unsigned value;
  if (s == "max" || s == "max\n") {
    value = kDqlMaxLimit;
  } else {
    value = VSYSFS_TRY(core::kstrtouint(in, 10));
    if (value > kDqlMaxLimit) return core::Errno{EINVAL};
  }
  dev_.update_dql(index_, [&](Dql& d) { d.*field = value; });
  dev_.env().log(&c, dev_.name(), "bql", "OK", {{"queue", index_}, {name, value}});
  return in.size();
}

core::Status NetTxQueue::limit_show(core::PageBuffer& buf) const { buf.emit("{}\n", dev_.dql(index_).limit); return {}; }
core::Status NetTxQueue::limit_max_show(core::PageBuffer& buf) const { buf.emit("{}\n", dev_.dql(index_).max_limit); return {}; }
core::Status NetTxQueue::limit_min_show(core::PageBuffer& buf) const { buf.emit("{}\n", dev_.dql(index_).min_limit); return {}; }
core::Result<std::size_t> NetTxQueue::limit_store(const core::Caller& c, std::string_view in) { return bql_set(c, in, &Dql::limit, "limit"); }
core::Result<std::size_t> NetTxQueue::limit_max_store(const core::Caller& c, std::string_view in) { return bql_set(c, in, &Dql::max_limit, "limit_max"); }
core::Result<std::size_t> NetTxQueue::limit_min_store(const core::Caller& c, std::string_view in) { return bql_set(c, in, &Dql::min_limit, "limit_min"); }

}  // namespace vsysfs::devices
