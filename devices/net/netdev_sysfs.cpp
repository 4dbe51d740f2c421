// The files of /sys/class/net/IF (net/core/net-sysfs.c, modern): the
// attribute table in the kernel's order, the shared netdev_show /
// netdev_store wrappers, the setters, statistics/ and uevent.
// docs/kernel-semantics.md sections 5.1 to 5.4.
//
// As in net-sysfs.c, an attribute that only prints one field is one line
// of the table (NETDEVICE_SHOW_RO(mtu, fmt_dec)): netdev_show<Fmt, Get>
// prints the field Get with the kernel format under netdev_show's rules.
// The other shows and stores are file-local functions over NetDevice's
// public interface; the few that touch private state are members.

#include <cerrno>
#include <climits>
#include <functional>
#include <utility>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/net/netdev.hpp"

namespace vsysfs::devices {
namespace {

using Dev = NetDevice;
using Attr = core::DeviceAttribute<Dev>;

// include/uapi/linux/netdevice.h NET_NAME_UNKNOWN
constexpr int kNetNameUnknown = 0;

bool net_admin(const core::Caller& c) { return c.capable(core::Capability::NetAdmin); }

// --- the shared wrappers --------------------------------------------------------------

// netdev_show: prints Get with the format Fmt while the device is alive.
// Locking: takes dev_base_lock (read), as 2.6.18-4.x. Context: process.
template <typename Fmt, auto Get>
core::Status netdev_show(const Dev& d, const Attr&, core::PageBuffer& b) {
  core::ReadLock lock(core::dev_base_lock());
  if (!d.dev_isalive()) return core::Errno{EINVAL};
  return core::emit_value<Fmt>(b, core::attr_value<Get>(d));
}

// A show that reads its field under rtnl instead (threaded_show in the
// newest kernel). Locking: takes rtnl. Context: process.
template <typename Fmt, auto Get>
core::Status netdev_show_rtnl(const Dev& d, const Attr&, core::PageBuffer& b) {
  core::RtnlLock rtnl;
  if (!d.dev_isalive()) return core::Errno{EINVAL};
  return core::emit_value<Fmt>(b, core::attr_value<Get>(d));
}

// netdev_store: CAP_NET_ADMIN, kstrtoul(buf, 0), then the setter under
// rtnl. The kernel (3.x-6.12) does rtnl_trylock() and restart_syscall()
// on contention; userspace cannot tell that from waiting, so we wait.
// Kernel quirk: on a device that is no longer alive it returns 0 (the
// kstrtoul result), not an error. Locking: takes rtnl. Context: process.
template <auto Set>
core::Result<std::size_t> netdev_store(Dev& d, const Attr& attr, const core::Caller& c,
                                       std::string_view in) {
  auto fail = [&](core::Errno e) -> core::Result<std::size_t> {
    d.env().log(&c, d.name(), "store", e.name(), {{"attr", attr.name}});
    return e;
  };
  if (!net_admin(c)) return fail(core::Errno{EPERM});
  const auto v = core::kstrtoul(in, 0);
  if (!v) return fail(v.error());
  core::RtnlLock rtnl;
  if (!d.dev_isalive()) return std::size_t{0};
  if (auto st = std::invoke(Set, d, *v); !st) return fail(st.error());
  d.env().log(&c, d.name(), "store", "OK", {{"attr", attr.name}, {"value", *v}});
  return in.size();
}

// statistics/NAME: netstat_show. Locking: takes dev_base_lock (read);
// get_stats runs under it and never waits for a transmit. Context: process.
template <unsigned I>
core::Status netstat_show(const Dev& d, core::PageBuffer& b) {
  core::ReadLock lock(core::dev_base_lock());
  if (!d.dev_isalive()) return core::Errno{EINVAL};
  b.emit("{}\n", d.dev_get_stats()[I]);
  return {};
}

// --- setters (called by netdev_store with rtnl held) ------------------------------------

core::Status change_group(Dev& d, unsigned long v) { d.dev_set_group(static_cast<int>(v)); return {}; }
core::Status change_carrier(Dev& d, unsigned long v) {
  if (!d.netif_running()) return core::Errno{EINVAL};
  return d.dev_change_carrier(v != 0);
}
// Kernel quirk: the unsigned long is cast to int, so 4294967295 is -1
// (EINVAL, below min_mtu) and 4294968796 is 1500.
core::Status change_mtu(Dev& d, unsigned long v) { return d.dev_set_mtu(static_cast<int>(v)); }
core::Status change_flags(Dev& d, unsigned long v) { return d.dev_change_flags(static_cast<unsigned>(v)); }
core::Status change_tx_queue_len(Dev& d, unsigned long v) { return d.dev_change_tx_queue_len(v); }
core::Status change_proto_down(Dev& d, unsigned long v) { return d.dev_change_proto_down(v != 0); }

// --- shows and stores with more than a field --------------------------------------------

core::Status name_assign_type_show(const Dev& d, const Attr& a, core::PageBuffer& b) {
  if (d.config().name_assign_type == kNetNameUnknown) return core::Errno{EINVAL};
  return netdev_show<core::fmt_dec, [](const Dev& x) { return x.config().name_assign_type; }>(d, a, b);
}

// address/broadcast: sysfs_format_mac ("%*phC\n"; addr_len 0 gives "\n").
// Locking: dev_base_lock (read).
void format_mac(core::PageBuffer& b, const std::vector<std::uint8_t>& addr) {
  for (std::size_t i = 0; i < addr.size(); ++i) {
    if (i) b.append(":");
    b.emit("{:02x}", addr[i]);
  }
  b.append("\n");
}
core::Status address_show(const Dev& d, core::PageBuffer& b) {
  core::ReadLock lock(core::dev_base_lock());
  if (!d.dev_isalive()) return core::Errno{EINVAL};
  format_mac(b, d.config().dev_addr);
  return {};
}
core::Status broadcast_show(const Dev& d, core::PageBuffer& b) {
  core::ReadLock lock(core::dev_base_lock());
  if (!d.dev_isalive()) return core::Errno{EINVAL};
  format_mac(b, d.config().broadcast);
  return {};
}

// speed/duplex: ethtool under rtnl; EINVAL when down, without
// get_link_ksettings, or when the query fails.
core::Status speed_show(const Dev& d, core::PageBuffer& b) {
  core::RtnlLock rtnl;
  LinkSettings ls;
  if (!d.netif_running() || !d.ops().get_link_ksettings(d, &ls)) return core::Errno{EINVAL};
  b.emit("{}\n", ls.speed);
  return {};
}
core::Status duplex_show(const Dev& d, core::PageBuffer& b) {
  core::RtnlLock rtnl;
  LinkSettings ls;
  if (!d.netif_running() || !d.ops().get_link_ksettings(d, &ls)) return core::Errno{EINVAL};
  b.append(ls.duplex == Duplex::Half ? "half\n" : ls.duplex == Duplex::Full ? "full\n" : "unknown\n");
  return {};
}

// dormant/testing/carrier: EINVAL while the interface is not running.
template <bool (Dev::*Bit)() const>
core::Status running_bit_show(const Dev& d, core::PageBuffer& b) {
  if (!d.netif_running()) return core::Errno{EINVAL};
  b.emit("{}\n", (d.*Bit)() ? 1 : 0);
  return {};
}

// carrier_store: a device without ndo_change_carrier is EOPNOTSUPP before
// netdev_store parses the value or checks the capability (net-sysfs.c since
// 5.16, commit 146e5e733310 "net-sysfs: try not to restart the syscall if it
// will fail eventually"; dev_change_carrier checks it again under rtnl).
core::Result<std::size_t> carrier_store(Dev& d, const Attr& a, const core::Caller& c,
                                        std::string_view in) {
  if (!d.ops().can_change_carrier()) {
    d.env().log(&c, d.name(), "store", "EOPNOTSUPP", {{"attr", "carrier"}});
    return core::Errno{EOPNOTSUPP};
  }
  return netdev_store<change_carrier>(d, a, c, in);
}

// operstate: forced to "down" when the interface is not running.
// Locking: dev_base_lock (read), in operstate().
core::Status operstate_show(const Dev& d, core::PageBuffer& b) {
  Operstate s = d.operstate();
  if (!d.netif_running()) s = Operstate::Down;
  b.emit("{}\n", operstate_name(s));
  return {};
}

// uevent: dev_uevent + netdev_uevent ("INTERFACE=", "IFINDEX=").
core::Status uevent_show(const Dev& d, core::PageBuffer& b) {
  b.emit("INTERFACE={}\nIFINDEX={}\n", d.name(), d.ifindex());
  return {};
}
// drivers/base/core.c uevent_store -> kobject_synth_uevent.
core::Result<std::size_t> uevent_store(Dev& d, const core::Caller& c, std::string_view in) {
  core::PageBuffer vars;
  (void)uevent_show(d, vars);
  return core::uevent_store(d.env(), c, {d.kobj().path(), "net", vars.view()}, in);
}

// NETDEVICE_SHOW_RO / NETDEVICE_SHOW_RW (net-sysfs.c): the file NAME shows
// the field Get (the trailing argument) with netdev_show; an RW file
// stores through netdev_store with the setter SET.
#define NETDEVICE_SHOW_RO(name, Fmt, ...) \
  Attr { #name, 0444, &netdev_show<core::Fmt, __VA_ARGS__>, nullptr }
#define NETDEVICE_SHOW_RW(name, Fmt, set, ...) \
  Attr { #name, 0644, &netdev_show<core::Fmt, __VA_ARGS__>, &netdev_store<set> }

template <std::size_t... I>
constexpr std::array<Attr, kStatCount> make_stat_attrs(std::index_sequence<I...>) {
  return {{Attr{kStatNames[I], 0444, core::bind_show<Dev, &netstat_show<static_cast<unsigned>(I)>>(),
                nullptr}...}};
}

}  // namespace

// The tables live here, in a member, so that entries may name private
// fields and setters (the kernel's dev->field).
std::span<const core::AttributeGroup<NetDevice>> NetDevice::groups() {
  static constexpr Attr kNetAttrs[] = {
      NETDEVICE_SHOW_RW(netdev_group, fmt_dec, change_group, &Dev::group_),
      NETDEVICE_SHOW_RO(type, fmt_dec, [](const Dev& d) { return d.cfg_.type; }),
      NETDEVICE_SHOW_RO(dev_id, fmt_hex, [](const Dev& d) { return d.cfg_.dev_id; }),
      NETDEVICE_SHOW_RO(dev_port, fmt_dec, [](const Dev& d) { return d.cfg_.dev_port; }),
      // dev_get_iflink: a device without ndo_get_iflink is its own link.
      NETDEVICE_SHOW_RO(iflink, fmt_dec, &Dev::ifindex_),
      NETDEVICE_SHOW_RO(ifindex, fmt_dec, &Dev::ifindex_),
      VSYSFS_ATTR(Dev, name_assign_type, 0444, name_assign_type_show, nullptr),
      NETDEVICE_SHOW_RO(addr_assign_type, fmt_dec, [](const Dev& d) { return d.cfg_.addr_assign_type; }),
      NETDEVICE_SHOW_RO(addr_len, fmt_dec, [](const Dev& d) { return d.cfg_.dev_addr.size(); }),
      // IF_LINK_MODE_DEFAULT: no device we model sets dormant mode.
      NETDEVICE_SHOW_RO(link_mode, fmt_dec, [](const Dev&) { return 0; }),
      VSYSFS_ATTR(Dev, address, 0444, address_show, nullptr),
      VSYSFS_ATTR(Dev, broadcast, 0444, broadcast_show, nullptr),
      VSYSFS_ATTR(Dev, speed, 0444, speed_show, nullptr),
      VSYSFS_ATTR(Dev, duplex, 0444, duplex_show, nullptr),
      VSYSFS_ATTR(Dev, dormant, 0444, running_bit_show<&Dev::netif_dormant>, nullptr),
      VSYSFS_ATTR(Dev, testing, 0444, running_bit_show<&Dev::netif_testing>, nullptr),
      VSYSFS_ATTR(Dev, operstate, 0444, operstate_show, nullptr),
      NETDEVICE_SHOW_RO(carrier_changes, fmt_dec,
                        [](const Dev& d) { return d.carrier_up_count_.load() + d.carrier_down_count_.load(); }),
      VSYSFS_ATTR_RW(Dev, ifalias),
      VSYSFS_ATTR(Dev, carrier, 0644, running_bit_show<&Dev::netif_carrier_ok>, carrier_store),
      NETDEVICE_SHOW_RW(mtu, fmt_dec, change_mtu, &Dev::mtu_),
      NETDEVICE_SHOW_RW(flags, fmt_hex, change_flags, &Dev::flags_),
      // QUIRK: the unsigned tx_queue_len is shown with fmt_dec, so
      // 4294967295 reads back as -1. tx_queue_len, gro_flush_timeout and
      // napi_defer_hard_irqs also check capable() in the initial namespace
      // before netdev_store's ns_capable(); the simulation has one
      // namespace, so that is netdev_store's own check.
      NETDEVICE_SHOW_RW(tx_queue_len, fmt_dec, change_tx_queue_len, &Dev::tx_queue_len_),
      NETDEVICE_SHOW_RW(gro_flush_timeout, fmt_ulong, &Dev::change_gro_flush_timeout,
                        &Dev::gro_flush_timeout_),
      NETDEVICE_SHOW_RW(napi_defer_hard_irqs, fmt_udec, &Dev::change_napi_defer_hard_irqs,
                        &Dev::napi_defer_hard_irqs_),
      NETDEVICE_SHOW_RW(proto_down, fmt_dec, change_proto_down, &Dev::proto_down_),
      NETDEVICE_SHOW_RO(carrier_up_count, fmt_dec, &Dev::carrier_up_count_),
      NETDEVICE_SHOW_RO(carrier_down_count, fmt_dec, &Dev::carrier_down_count_),
      // threaded: read under rtnl in the newest kernel.
      Attr{"threaded", 0644, &netdev_show_rtnl<core::fmt_dec, &Dev::threaded_>,
           &netdev_store<&Dev::modify_napi_threaded>},
      // drivers/base/core.c dev_attr_uevent
      VSYSFS_ATTR(Dev, uevent, 0644, uevent_show, uevent_store),
  };
  static constexpr auto kStatAttrs = make_stat_attrs(std::make_index_sequence<kStatCount>{});
  static constexpr core::AttributeGroup<Dev> kGroups[] = {
      {.name = "", .attrs = kNetAttrs},
      {.name = "statistics", .attrs = kStatAttrs},
  };
  return kGroups;
}

// --- setters of private state (called by netdev_store with rtnl held) ------------------

core::Status NetDevice::change_gro_flush_timeout(unsigned long v) { gro_flush_timeout_.store(v); return {}; }
core::Status NetDevice::change_napi_defer_hard_irqs(unsigned long v) {
  if (v > static_cast<unsigned long>(INT_MAX)) return core::Errno{ERANGE};
  napi_defer_hard_irqs_.store(static_cast<unsigned>(v));
  return {};
}
core::Status NetDevice::modify_napi_threaded(unsigned long v) {
  if (!ops_->has_napi()) return core::Errno{EOPNOTSUPP};  // list_empty(&dev->napi_list)
  if (v != 0 && v != 1) return core::Errno{EOPNOTSUPP};
  threaded_.store(v == 1);
  env_.log(nullptr, cfg_.name, "threaded", "OK", {{"threaded", v}});
  return {};
}

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

}  // namespace vsysfs::devices
