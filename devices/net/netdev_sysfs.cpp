// The files of /sys/class/net/IF (net/core/net-sysfs.c, modern): the
// attribute table in the kernel's order, the shared netdev_show /
// netdev_store wrappers, the formatters and setters, statistics/ and
// uevent. docs/kernel-semantics.md sections 5.1 to 5.4.

#include <cerrno>
#include <climits>
#include <utility>

#include "core/parse.hpp"
#include "devices/net/netdev.hpp"

namespace vsysfs::devices {
namespace {

using Dev = NetDevice;

constexpr core::DeviceAttribute<Dev> kNetAttrs[] = {
    VSYSFS_ATTR_RW(Dev, netdev_group),
    VSYSFS_ATTR_RO(Dev, type),
    VSYSFS_ATTR_RO(Dev, dev_id),
    VSYSFS_ATTR_RO(Dev, dev_port),
    VSYSFS_ATTR_RO(Dev, iflink),
    VSYSFS_ATTR_RO(Dev, ifindex),
    VSYSFS_ATTR_RO(Dev, name_assign_type),
    VSYSFS_ATTR_RO(Dev, addr_assign_type),
    VSYSFS_ATTR_RO(Dev, addr_len),
    VSYSFS_ATTR_RO(Dev, link_mode),
    VSYSFS_ATTR_RO(Dev, address),
    VSYSFS_ATTR_RO(Dev, broadcast),
    VSYSFS_ATTR_RO(Dev, speed),
    VSYSFS_ATTR_RO(Dev, duplex),
    VSYSFS_ATTR_RO(Dev, dormant),
    VSYSFS_ATTR_RO(Dev, testing),
    VSYSFS_ATTR_RO(Dev, operstate),
    VSYSFS_ATTR_RO(Dev, carrier_changes),
    VSYSFS_ATTR_RW(Dev, ifalias),
    VSYSFS_ATTR_RW(Dev, carrier),
    VSYSFS_ATTR_RW(Dev, mtu),
    VSYSFS_ATTR_RW(Dev, flags),
    VSYSFS_ATTR_RW(Dev, tx_queue_len),
    VSYSFS_ATTR_RW(Dev, gro_flush_timeout),
    VSYSFS_ATTR_RW(Dev, napi_defer_hard_irqs),
    VSYSFS_ATTR_RW(Dev, proto_down),
    VSYSFS_ATTR_RO(Dev, carrier_up_count),
    VSYSFS_ATTR_RO(Dev, carrier_down_count),
    VSYSFS_ATTR_RW(Dev, threaded),
    // drivers/base/core.c dev_attr_uevent
    VSYSFS_ATTR_RW(Dev, uevent),
};

template <std::size_t... I>
constexpr std::array<core::DeviceAttribute<Dev>, kStatCount> make_stat_attrs(
    std::index_sequence<I...>) {
  return {{core::DeviceAttribute<Dev>{kStatNames[I], 0444,
                                      &Dev::stat_show<static_cast<unsigned>(I)>, nullptr}...}};
}
constexpr auto kStatAttrs = make_stat_attrs(std::make_index_sequence<kStatCount>{});

constexpr core::AttributeGroup<Dev> kGroups[] = {
    {.name = "", .attrs = kNetAttrs},
    {.name = "statistics", .attrs = kStatAttrs},
};

// include/uapi/linux/netdevice.h NET_NAME_UNKNOWN
constexpr int kNetNameUnknown = 0;

std::string format_mac(const std::vector<std::uint8_t>& addr) {
  std::string out;
  for (std::size_t i = 0; i < addr.size(); ++i) {
    if (i) out.push_back(':');
    out += fmt::format("{:02x}", addr[i]);
  }
  return out;
}

bool net_admin(const core::Caller& c) { return c.capable(core::Capability::NetAdmin); }

}  // namespace

std::span<const core::AttributeGroup<NetDevice>> NetDevice::groups() { return kGroups; }

// --- the shared wrappers --------------------------------------------------------------

// netdev_show. Locking: takes dev_base_lock (read), as 2.6.18-4.x.
// Context: process.
core::Status NetDevice::netdev_show(core::PageBuffer& buf, Format fmt) const {
  core::ReadLock lock(core::dev_base_lock());
  if (!dev_isalive()) return core::Errno{EINVAL};
  return (this->*fmt)(buf);
}

// netdev_store: CAP_NET_ADMIN, kstrtoul(buf, 0), then the setter under
// rtnl. The kernel (3.x-6.12) does rtnl_trylock() and restart_syscall()
// on contention; userspace cannot tell that from waiting, so we wait.
// Kernel quirk: on a device that is no longer alive it returns 0 (the
// kstrtoul result), not an error. Locking: takes rtnl. Context: process.
core::Result<std::size_t> NetDevice::netdev_store(const core::Caller& c, std::string_view in,
                                                  Setter set, std::string_view attr) {
  auto fail = [&](core::Errno e) -> core::Result<std::size_t> {
    env_.log(&c, cfg_.name, "store", e.name(), {{"attr", attr}});
    return e;
  };
  if (!net_admin(c)) return fail(core::Errno{EPERM});
  const auto v = core::kstrtoul(in, 0);
  if (!v) return fail(v.error());
  core::RtnlLock rtnl;
  if (!dev_isalive()) return std::size_t{0};
  if (auto st = (this->*set)(*v); !st) return fail(st.error());
  env_.log(&c, cfg_.name, "store", "OK", {{"attr", attr}, {"value", *v}});
  return in.size();
}

// netstat_show. Locking: takes dev_base_lock (read); get_stats runs under
// it and never waits for a transmit. Context: process.
core::Status NetDevice::netstat_show(core::PageBuffer& buf, unsigned index) const {
  core::ReadLock lock(core::dev_base_lock());
  if (!dev_isalive()) return core::Errno{EINVAL};
  const RtnlLinkStats64 stats = dev_get_stats();
  buf.emit("{}\n", stats[index]);
  return {};
}

// --- formatters (fmt_dec "%d\n", fmt_hex "%#x\n", fmt_ulong "%lu\n") ---------------
// Kernel quirk: %#x prints 0 as "0x0" (glibc prints "0"); fmt's {:#x} agrees.

core::Status NetDevice::format_netdev_group(core::PageBuffer& b) const { b.emit("{}\n", group_.load()); return {}; }
core::Status NetDevice::format_type(core::PageBuffer& b) const { b.emit("{}\n", cfg_.type); return {}; }
core::Status NetDevice::format_dev_id(core::PageBuffer& b) const { b.emit("{:#x}\n", cfg_.dev_id); return {}; }
core::Status NetDevice::format_dev_port(core::PageBuffer& b) const { b.emit("{}\n", cfg_.dev_port); return {}; }
core::Status NetDevice::format_iflink(core::PageBuffer& b) const { b.emit("{}\n", ifindex_); return {}; }
core::Status NetDevice::format_ifindex(core::PageBuffer& b) const { b.emit("{}\n", ifindex_); return {}; }
core::Status NetDevice::format_name_assign_type(core::PageBuffer& b) const { b.emit("{}\n", cfg_.name_assign_type); return {}; }
core::Status NetDevice::format_addr_assign_type(core::PageBuffer& b) const { b.emit("{}\n", cfg_.addr_assign_type); return {}; }
core::Status NetDevice::format_addr_len(core::PageBuffer& b) const { b.emit("{}\n", cfg_.dev_addr.size()); return {}; }
// IF_LINK_MODE_DEFAULT: no device we model sets dormant mode.
core::Status NetDevice::format_link_mode(core::PageBuffer& b) const { b.emit("{}\n", 0); return {}; }
core::Status NetDevice::format_carrier_changes(core::PageBuffer& b) const {
  b.emit("{}\n", carrier_up_count_.load() + carrier_down_count_.load());
  return {};
}
core::Status NetDevice::format_mtu(core::PageBuffer& b) const { b.emit("{}\n", mtu_.load()); return {}; }
core::Status NetDevice::format_flags(core::PageBuffer& b) const { b.emit("{:#x}\n", flags_.load()); return {}; }
// Kernel quirk: the newest kernel prints the unsigned tx_queue_len with
// fmt_dec, so 4294967295 reads back as -1.
core::Status NetDevice::format_tx_queue_len(core::PageBuffer& b) const {
  b.emit("{}\n", static_cast<int>(tx_queue_len_.load()));
  return {};
}
core::Status NetDevice::format_gro_flush_timeout(core::PageBuffer& b) const { b.emit("{}\n", gro_flush_timeout_.load()); return {}; }
core::Status NetDevice::format_napi_defer_hard_irqs(core::PageBuffer& b) const { b.emit("{}\n", napi_defer_hard_irqs_.load()); return {}; }
core::Status NetDevice::format_proto_down(core::PageBuffer& b) const { b.emit("{}\n", proto_down_.load() ? 1 : 0); return {}; }
core::Status NetDevice::format_carrier_up_count(core::PageBuffer& b) const { b.emit("{}\n", carrier_up_count_.load()); return {}; }
core::Status NetDevice::format_carrier_down_count(core::PageBuffer& b) const { b.emit("{}\n", carrier_down_count_.load()); return {}; }

// --- setters (called by netdev_store with rtnl held) ------------------------------------

core::Status NetDevice::set_group(unsigned long v) { dev_set_group(static_cast<int>(v)); return {}; }
core::Status NetDevice::change_carrier(unsigned long v) {
  if (!netif_running()) return core::Errno{EINVAL};
  return dev_change_carrier(v != 0);
}
// Kernel quirk: the unsigned long is cast to int, so 4294967295 is -1
// (EINVAL, below min_mtu) and 4294968796 is 1500.
core::Status NetDevice::change_mtu(unsigned long v) { return dev_set_mtu(static_cast<int>(v)); }
core::Status NetDevice::change_flags(unsigned long v) { return dev_change_flags(static_cast<unsigned>(v)); }
core::Status NetDevice::change_tx_queue_len(unsigned long v) { return dev_change_tx_queue_len(v); }
core::Status NetDevice::change_gro_flush_timeout(unsigned long v) { gro_flush_timeout_.store(v); return {}; }
core::Status NetDevice::change_napi_defer_hard_irqs(unsigned long v) {
  if (v > static_cast<unsigned long>(INT_MAX)) return core::Errno{ERANGE};
  napi_defer_hard_irqs_.store(static_cast<unsigned>(v));
  return {};
}
core::Status NetDevice::change_proto_down(unsigned long v) { return dev_change_proto_down(v != 0); }
core::Status NetDevice::modify_napi_threaded(unsigned long v) {
  if (!ops_->has_napi()) return core::Errno{EOPNOTSUPP};  // list_empty(&dev->napi_list)
  if (v != 0 && v != 1) return core::Errno{EOPNOTSUPP};
  threaded_.store(v == 1);
  env_.log(nullptr, cfg_.name, "threaded", "OK", {{"threaded", v}});
  return {};
}

// --- show / store entry points -------------------------------------------------------

core::Status NetDevice::netdev_group_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_netdev_group); }
core::Result<std::size_t> NetDevice::netdev_group_store(const core::Caller& c, std::string_view in) { return netdev_store(c, in, &Dev::set_group, "netdev_group"); }
core::Status NetDevice::type_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_type); }
core::Status NetDevice::dev_id_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_dev_id); }
core::Status NetDevice::dev_port_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_dev_port); }
core::Status NetDevice::iflink_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_iflink); }
core::Status NetDevice::ifindex_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_ifindex); }
core::Status NetDevice::name_assign_type_show(core::PageBuffer& b) const {
  if (cfg_.name_assign_type == kNetNameUnknown) return core::Errno{EINVAL};
  return netdev_show(b, &Dev::format_name_assign_type);
}
core::Status NetDevice::addr_assign_type_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_addr_assign_type); }
core::Status NetDevice::addr_len_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_addr_len); }
core::Status NetDevice::link_mode_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_link_mode); }

// address/broadcast: sysfs_format_mac ("%*phC\n"; addr_len 0 gives "\n").
// Locking: dev_base_lock (read).
core::Status NetDevice::address_show(core::PageBuffer& b) const {
  core::ReadLock lock(core::dev_base_lock());
  if (!dev_isalive()) return core::Errno{EINVAL};
  b.emit("{}\n", format_mac(cfg_.dev_addr));
  return {};
}
core::Status NetDevice::broadcast_show(core::PageBuffer& b) const {
  core::ReadLock lock(core::dev_base_lock());
  if (!dev_isalive()) return core::Errno{EINVAL};
  b.emit("{}\n", format_mac(cfg_.broadcast));
  return {};
}

// speed/duplex: ethtool under rtnl; EINVAL when down, without
// get_link_ksettings, or when the query fails.
core::Status NetDevice::speed_show(core::PageBuffer& b) const {
  core::RtnlLock rtnl;
  LinkSettings ls;
  if (!netif_running() || !ops_->get_link_ksettings(*this, &ls)) return core::Errno{EINVAL};
  b.emit("{}\n", ls.speed);
  return {};
}
core::Status NetDevice::duplex_show(core::PageBuffer& b) const {
  core::RtnlLock rtnl;
  LinkSettings ls;
  if (!netif_running() || !ops_->get_link_ksettings(*this, &ls)) return core::Errno{EINVAL};
  b.append(ls.duplex == Duplex::Half ? "half\n" : ls.duplex == Duplex::Full ? "full\n" : "unknown\n");
  return {};
}

core::Status NetDevice::dormant_show(core::PageBuffer& b) const {
  if (!netif_running()) return core::Errno{EINVAL};
  b.emit("{}\n", netif_dormant() ? 1 : 0);
  return {};
}
core::Status NetDevice::testing_show(core::PageBuffer& b) const {
  if (!netif_running()) return core::Errno{EINVAL};
  b.emit("{}\n", netif_testing() ? 1 : 0);
  return {};
}
core::Status NetDevice::carrier_show(core::PageBuffer& b) const {
  if (!netif_running()) return core::Errno{EINVAL};
  b.emit("{}\n", netif_carrier_ok() ? 1 : 0);
  return {};
}
// carrier_store: a device without ndo_change_carrier is EOPNOTSUPP before
// netdev_store parses the value or checks the capability (net-sysfs.c since
// 5.16, commit 146e5e733310 "net-sysfs: try not to restart the syscall if it
// will fail eventually"; dev_change_carrier checks it again under rtnl).
core::Result<std::size_t> NetDevice::carrier_store(const core::Caller& c, std::string_view in) {
  if (!ops_->can_change_carrier()) {
    env_.log(&c, cfg_.name, "store", "EOPNOTSUPP", {{"attr", "carrier"}});
    return core::Errno{EOPNOTSUPP};
  }
  return netdev_store(c, in, &Dev::change_carrier, "carrier");
}

// operstate: forced to "down" when the interface is not running.
// Locking: dev_base_lock (read).
core::Status NetDevice::operstate_show(core::PageBuffer& b) const {
  Operstate s;
  {
    core::ReadLock lock(core::dev_base_lock());
    s = operstate_;
  }
  if (!netif_running()) s = Operstate::Down;
  b.emit("{}\n", operstate_name(s));
  return {};
}

core::Status NetDevice::carrier_changes_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_carrier_changes); }

// ifalias: empty file when unset; the string up to its first NUL otherwise.
core::Status NetDevice::ifalias_show(core::PageBuffer& b) const {
  std::string alias;
  {
    core::MutexLock lock(ifalias_mu_);
    alias = ifalias_;
  }
  const std::string_view shown = std::string_view(alias).substr(0, alias.find('\0'));
  if (!shown.empty()) b.emit("{}\n", shown);
  return {};
}
// ifalias_store: its own path (no kstrtoul); one trailing '\n' is dropped;
// 256 bytes or more is EINVAL; an empty value clears the alias.
// Locking: takes rtnl. Context: process.
core::Result<std::size_t> NetDevice::ifalias_store(const core::Caller& c, std::string_view in) {
  if (!net_admin(c)) {
    env_.log(&c, cfg_.name, "store", "EPERM", {{"attr", "ifalias"}});
    return core::Errno{EPERM};
  }
  std::string_view alias = in;
  if (!alias.empty() && alias.back() == '\n') alias.remove_suffix(1);
  core::RtnlLock rtnl;
  if (!dev_isalive()) return std::size_t{0};
  if (auto st = dev_set_alias(alias); !st) {
    env_.log(&c, cfg_.name, "store", st.error().name(), {{"attr", "ifalias"}, {"len", alias.size()}});
    return st.error();
  }
  env_.log(&c, cfg_.name, "store", "OK", {{"attr", "ifalias"}, {"len", alias.size()}});
  call_netdevice_notifiers("NETDEV_CHANGE");  // netdev_state_change
  return in.size();
}

core::Status NetDevice::mtu_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_mtu); }
core::Result<std::size_t> NetDevice::mtu_store(const core::Caller& c, std::string_view in) { return netdev_store(c, in, &Dev::change_mtu, "mtu"); }
core::Status NetDevice::flags_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_flags); }
core::Result<std::size_t> NetDevice::flags_store(const core::Caller& c, std::string_view in) { return netdev_store(c, in, &Dev::change_flags, "flags"); }
core::Status NetDevice::tx_queue_len_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_tx_queue_len); }
// tx_queue_len, gro_flush_timeout, napi_defer_hard_irqs also check
// capable() in the initial namespace before netdev_store's ns_capable();
// the simulation has one namespace, so that is netdev_store's own check.
core::Result<std::size_t> NetDevice::tx_queue_len_store(const core::Caller& c, std::string_view in) {
  return netdev_store(c, in, &Dev::change_tx_queue_len, "tx_queue_len");
}
core::Status NetDevice::gro_flush_timeout_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_gro_flush_timeout); }
core::Result<std::size_t> NetDevice::gro_flush_timeout_store(const core::Caller& c, std::string_view in) {
  return netdev_store(c, in, &Dev::change_gro_flush_timeout, "gro_flush_timeout");
}
core::Status NetDevice::napi_defer_hard_irqs_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_napi_defer_hard_irqs); }
core::Result<std::size_t> NetDevice::napi_defer_hard_irqs_store(const core::Caller& c, std::string_view in) {
  return netdev_store(c, in, &Dev::change_napi_defer_hard_irqs, "napi_defer_hard_irqs");
}
core::Status NetDevice::proto_down_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_proto_down); }
core::Result<std::size_t> NetDevice::proto_down_store(const core::Caller& c, std::string_view in) { return netdev_store(c, in, &Dev::change_proto_down, "proto_down"); }
core::Status NetDevice::carrier_up_count_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_carrier_up_count); }
core::Status NetDevice::carrier_down_count_show(core::PageBuffer& b) const { return netdev_show(b, &Dev::format_carrier_down_count); }

// threaded: read under rtnl in the newest kernel.
core::Status NetDevice::threaded_show(core::PageBuffer& b) const {
  core::RtnlLock rtnl;
  if (!dev_isalive()) return core::Errno{EINVAL};
  b.emit("{}\n", threaded_.load() ? 1 : 0);
  return {};
}
core::Result<std::size_t> NetDevice::threaded_store(const core::Caller& c, std::string_view in) { return netdev_store(c, in, &Dev::modify_napi_threaded, "threaded"); }

// uevent: dev_uevent + netdev_uevent ("INTERFACE=", "IFINDEX=").
core::Status NetDevice::uevent_show(core::PageBuffer& b) const {
  b.emit("INTERFACE={}\nIFINDEX={}\n", cfg_.name, ifindex_);
  return {};
}
// kobject_synth_uevent: the action word (optionally followed by a UUID and
// arguments, which the simulation records but does not check); EINVAL for
// an unknown action.
core::Result<std::size_t> NetDevice::uevent_store(const core::Caller& c, std::string_view in) {
  std::string_view s = in.substr(0, in.find('\0'));
  std::string_view action = s.substr(0, s.find_first_of(" \n"));
  static constexpr std::string_view kActions[] = {"add",    "remove",  "change", "move",
                                                  "online", "offline", "bind",   "unbind"};
  bool ok = false;
  for (auto a : kActions) ok = ok || a == action;
  if (!ok) {
    env_.log(&c, cfg_.name, "uevent", "EINVAL", {{"reason", "synth uevent: failed to send uevent"}});
    return core::Errno{EINVAL};
  }
  env_.log(&c, cfg_.name, "uevent", "OK", {{"action", action}});
  return in.size();
}

}  // namespace vsysfs::devices
