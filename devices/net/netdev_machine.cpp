// The [net] section of a machine description: interfaces, their PCI
// parents, cabled peers, /sys/class/net links and the debug knobs.
//
//   [net]
//   nr_cpu_ids = 4        # width of rps_cpus / local_cpus; simulated sending CPUs
//   nr_node_ids = 1       # online NUMA nodes (numa_node stores)
//                         # (both must agree with the NUMA model: [numa]'s
//                         # when the machine has one, else the default
//                         # topology, which takes its widths from these
//                         # keys; one machine has one nr_cpu_ids)
//   [[net.interface]]
//   name = "eth0"         # required
//   kind = "nic"          # "nic" (simulated PCI NIC) or "loopback"
//   pci = "0000:00:03.0"  # nic: the PCI function (devices/pci0000:BB/BDF, one
//                         # host bridge per root bus BB)
//   mac = "52:54:00:12:34:56"
//   mtu = 1500   min_mtu = 68   max_mtu = 9000   tx_queue_len = 1000
//   speed = 1000          # Mb/s: the rate completions come at
//   duplex = "full"       # "full" or "half"
//   ring_size = 256       # TX and RX descriptors (2..65536)
//   lltx = false          # NETIF_F_LLTX: the driver locks xmit itself
//   watchdog_timeo_ms = 5000
//   numa_node = 0         # the PCI parent's numa_node (-1 = none)
//   peer = "eth1"         # the NIC at the other end of the cable
//   link = "up"           # cable plugged in at this end
//   up = true             # opened at boot (IFF_UP)
//   rx_queues = 1  tx_queues = 1  dev_port = 0  dev_id = 0
//   name_assign_type = 1  addr_assign_type = 0
//   change_carrier = false  change_proto_down = false
//   bql = false           # the driver reports bytes to byte queue limits
//   mmio_seed = 1         # the chipset's reordering sequence
//   driver = "vnic"  pci_vendor = 0x8086  pci_device = 0x100e
//   pci_subsystem_vendor = 0x1af4  pci_subsystem_device = 0x1100  irq = 11
//   pci_revision = 0x03   # config byte 0x08, the `revision` file, lspci's "(rev NN)"
//   pci_bar0_size = 0x20000  # BAR0, 32-bit memory (a power of two); placed
//                            # from 0xfe000000 in interface order
//   # An I350 (8086:1521) also gets BAR2 (I/O from 0xe000) and BAR3 (16 KiB
//   # after every BAR0), and MSI-X vectors with IRQs from 24 (netdev_pci.hpp)

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/net_locks.hpp"
#include "devices/machine/machine.hpp"
#include "devices/machine/subsys_bus.hpp"
#include "devices/net/netdev.hpp"
#include "devices/net/netdev_knobs.hpp"
#include "devices/net/netdev_nic.hpp"
#include "devices/net/netdev_pci.hpp"
#include "devices/net/netdev_pci_driver.hpp"
#include "devices/net/netdev_queues.hpp"
#include "devices/net/netdev_state.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {
namespace {

// Owns the teardown order: knobs stop sending, hardware stops its timers
// and forgets its driver and peer, devices unregister. (The tree may keep
// the objects themselves alive a little longer; they are inert by then.)
struct NetSubsystem {
  std::vector<std::shared_ptr<NetKnobs>> knobs;
  std::vector<std::shared_ptr<VnicHardware>> hardware;
  std::vector<std::shared_ptr<NetDevice>> devices;
  std::shared_ptr<PciNicBus> pci_bus;
  ~NetSubsystem() {
    for (auto& k : knobs) k->shutdown();
    for (auto& h : hardware) h->quiesce();
    for (auto& h : hardware) h->detach();
    for (auto& d : devices) d->unregister_netdevice();
  }
};

struct IfaceSpec {
  NetDeviceConfig dev;
  VnicConfig nic;
  PciConfig pci;
  std::string pci_slot;  // empty: virtual
  std::string peer;
  bool link = true;
  bool up = true;
  const core::ConfigValue* where = nullptr;
};

std::uint16_t get_u16(const core::ConfigValue& v, std::string_view key, std::uint16_t fallback) {
  const std::uint64_t x = v.get_uint(key, fallback);
  if (x > 0xffff) v.require(key).fail("must fit 16 bits");
  return static_cast<std::uint16_t>(x);
}

int get_int_in(const core::ConfigValue& v, std::string_view key, std::int64_t fallback,
               std::int64_t lo, std::int64_t hi) {
  const std::int64_t x = v.get_int(key, fallback);
  if (x < lo || x > hi) v.require(key).fail(fmt::format("must be in {}..{}", lo, hi));
  return static_cast<int>(x);
}

std::vector<std::uint8_t> get_mac(const core::ConfigValue& v, std::string_view key,
                                  std::string_view fallback) {
  std::vector<std::uint8_t> mac;
  if (!parse_mac(v.get_string(key, fallback), &mac) || mac.size() != 6)
    v.require(key).fail("expected a MAC address like 52:54:00:12:34:56");
  return mac;
}

IfaceSpec read_interface(const core::ConfigValue& v, unsigned nr_cpu_ids, unsigned nr_node_ids) {
  IfaceSpec s;
  s.where = &v;
  auto& d = s.dev;
  d.name = require_netdev_name(v.require("name"));
  d.kind = v.get_string("kind", "nic");
  d.nr_cpu_ids = nr_cpu_ids;
  const bool lo = d.kind == "loopback";
  if (!lo && d.kind != "nic") v.require("kind").fail("expected \"nic\" or \"loopback\"");
  if (lo) {
    // drivers/net/loopback.c gen_lo_setup
    d.type = ARPHRD_LOOPBACK;
    d.flags = IFF_LOOPBACK;
    d.lltx = true;
    // loopback_net_init: alloc_netdev(0, "lo", NET_NAME_PREDICTABLE, ...)
    // (since 6.2; before, NET_NAME_UNKNOWN and the file read EINVAL).
    d.name_assign_type = 2;
  }
  d.dev_addr = get_mac(v, "mac", lo ? "00:00:00:00:00:00" : "52:54:00:12:34:56");
  d.broadcast = lo ? std::vector<std::uint8_t>(6, 0) : std::vector<std::uint8_t>(6, 0xff);
  d.mtu = get_int_in(v, "mtu", lo ? 65536 : 1500, 0, INT32_MAX);
  d.min_mtu = get_int_in(v, "min_mtu", lo ? 0 : 68, 0, INT32_MAX);
  d.max_mtu = get_int_in(v, "max_mtu", lo ? 0 : 1500, 0, INT32_MAX);
  if (d.mtu < d.min_mtu || (d.max_mtu > 0 && d.mtu > d.max_mtu))
    v.require("mtu").fail("outside min_mtu..max_mtu");
  d.tx_queue_len = static_cast<unsigned>(get_int_in(v, "tx_queue_len", 1000, 0, UINT32_MAX));
  if (!lo) d.lltx = v.get_bool("lltx", false);
  d.watchdog_timeo_ms = v.get_int("watchdog_timeo_ms", 5000);
  d.num_rx_queues = static_cast<unsigned>(get_int_in(v, "rx_queues", 1, 1, 64));
  d.num_tx_queues = static_cast<unsigned>(get_int_in(v, "tx_queues", 1, 1, 64));
  d.dev_port = static_cast<unsigned>(get_int_in(v, "dev_port", 0, 0, 65535));
  d.dev_id = static_cast<unsigned>(get_int_in(v, "dev_id", 0, 0, 65535));
  d.name_assign_type = get_int_in(v, "name_assign_type", d.name_assign_type, 0, 4);
  d.addr_assign_type = get_int_in(v, "addr_assign_type", 0, 0, 3);
  d.change_proto_down = v.get_bool("change_proto_down", false);
  s.up = v.get_bool("up", true);
  if (lo) return s;

  auto& n = s.nic;
  n.ring_size = static_cast<unsigned>(get_int_in(v, "ring_size", 256, 2, 65536));
  n.speed = get_int_in(v, "speed", 1000, 1, 400000);
  const std::string duplex = v.get_string("duplex", "full");
  if (duplex != "full" && duplex != "half") v.require("duplex").fail("expected \"full\" or \"half\"");
  n.duplex = duplex == "full" ? Duplex::Full : Duplex::Half;
  n.change_carrier = v.get_bool("change_carrier", false);
  n.bql = v.get_bool("bql", false);
  n.mmio_seed = v.get_uint("mmio_seed", 1);
  n.ncpus = nr_cpu_ids;
  const std::string link = v.get_string("link", "up");
  if (link != "up" && link != "down") v.require("link").fail("expected \"up\" or \"down\"");
  s.link = link == "up";
  s.peer = v.get_string("peer", "");

  auto& p = s.pci;
  s.pci_slot = v.require("pci").as_string();
  // DDDD:BB:SS.F, segment 0000, each bus a root bus of its own host
  // bridge (devices/pci0000:BB, as a multi-socket machine has one root bus
  // per socket's root complex), as drivers/pci/probe.c pci_setup_device
  // names it ("%04x:%02x:%02x.%d"): slot 00..1f, function 0..7, lower-case
  // hex. It becomes a path component.
  const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  if (s.pci_slot.size() != 12 || s.pci_slot.compare(0, 5, "0000:") != 0 || !hex(s.pci_slot[5]) ||
      !hex(s.pci_slot[6]) || s.pci_slot[7] != ':' || s.pci_slot[10] != '.' || !hex(s.pci_slot[8]) ||
      !hex(s.pci_slot[9]) || s.pci_slot[8] > '1' || s.pci_slot[11] < '0' || s.pci_slot[11] > '7')
    v.require("pci").fail("expected a function like \"0000:00:03.0\" (segment 0000, a root bus)");
  p.slot = s.pci_slot;
  p.driver = v.has("driver") ? require_path_name(v.require("driver")) : std::string("vnic");
  p.vendor = get_u16(v, "pci_vendor", 0x8086);
  p.device = get_u16(v, "pci_device", 0x100e);
  p.subsystem_vendor = get_u16(v, "pci_subsystem_vendor", 0x1af4);
  p.subsystem_device = get_u16(v, "pci_subsystem_device", 0x1100);
  p.revision = static_cast<std::uint8_t>(get_int_in(v, "pci_revision", 0x03, 0, 0xff));
  p.irq = static_cast<unsigned>(get_int_in(v, "irq", 11, 0, 255));
  const std::int64_t bar0 = get_int_in(v, "pci_bar0_size", 0x20000, 16, 0x10000000);
  if ((bar0 & (bar0 - 1)) != 0) v.require("pci_bar0_size").fail("a BAR's size is a power of two");
  p.bar0_size = static_cast<std::uint32_t>(bar0);
  p.numa_node = get_int_in(v, "numa_node", -1, -1, static_cast<std::int64_t>(nr_node_ids) - 1);
  p.nr_cpu_ids = nr_cpu_ids;
  p.nr_node_ids = nr_node_ids;
  return s;
}

// nr_cpu_ids and nr_node_ids are the machine's: from the NUMA model when
// there is one (built first; every machine has one, numa_machine.cpp),
// else from [net] (default 4 CPUs, 1 node).
unsigned machine_width(const core::ConfigValue& sec, std::string_view key, std::int64_t fallback,
                       std::int64_t max, std::optional<unsigned> from_numa) {
  const unsigned configured = static_cast<unsigned>(
      get_int_in(sec, key, from_numa ? *from_numa : fallback, 1, max));
  if (from_numa && configured != *from_numa)
    sec.require(key).fail(fmt::format("contradicts [numa], which has {} = {}", key, *from_numa));
  return configured;
}

void build_net(MachineContext& ctx, const core::ConfigValue& sec) {
  const std::shared_ptr<NumaModel> numa = numa_model_of(ctx.machine);
  const unsigned nr_cpu_ids = machine_width(
      sec, "nr_cpu_ids", 4, 4096, numa ? std::optional<unsigned>(numa->nr_cpu_ids()) : std::nullopt);
  const unsigned nr_node_ids = machine_width(
      sec, "nr_node_ids", 1, 1024,
      numa ? std::optional<unsigned>(static_cast<unsigned>(numa->nr_node_ids())) : std::nullopt);
  std::vector<IfaceSpec> specs;
  std::map<std::string, std::size_t> by_name;
  for (const auto& v : sec.get_array("interface")) {
    specs.push_back(read_interface(v, nr_cpu_ids, nr_node_ids));
    if (!by_name.emplace(specs.back().dev.name, specs.size() - 1).second)
      v.require("name").fail("duplicate interface name");
  }
  std::map<std::string, std::string> slots;
  for (const auto& s : specs) {
    if (s.pci_slot.empty()) continue;
    if (!slots.emplace(s.pci_slot, s.dev.name).second) s.where->require("pci").fail("PCI function used twice");
  }
  // Cables: symmetric, between two NICs, one cable per NIC.
  std::map<std::string, std::string> peer_of;
  for (const auto& s : specs) {
    if (s.peer.empty()) continue;
    auto it = by_name.find(s.peer);
    if (it == by_name.end() || specs[it->second].dev.kind != "nic" || s.peer == s.dev.name)
      s.where->require("peer").fail("no other NIC of that name");
    const auto& other = specs[it->second];
    if (!other.peer.empty() && other.peer != s.dev.name)
      s.where->require("peer").fail("that NIC is cabled to " + other.peer);
    peer_of[s.dev.name] = s.peer;
    peer_of[s.peer] = s.dev.name;
  }

  // BAR placement, as firmware assigns the 32-bit memory window: each
  // function's BAR0 naturally aligned, in interface order, from 0xfe000000.
  {
    std::uint64_t next = 0xfe000000;
    for (auto& s : specs) {
      if (s.pci_slot.empty()) continue;
      next = (next + s.pci.bar0_size - 1) & ~std::uint64_t{s.pci.bar0_size - 1};
      if (next + s.pci.bar0_size > 0x100000000ULL)
        s.where->require("pci_bar0_size").fail("the BARs do not fit below 4 GiB");
      s.pci.bar0_start = static_cast<std::uint32_t>(next);
      next += s.pci.bar0_size;
    }
    // An I350's BAR3 after every BAR0 (pbus_size_mem places the largest
    // alignments first), its 32 I/O ports from 0xe000.
    std::uint32_t io = 0xe000;
    for (auto& s : specs) {
      if (s.pci_slot.empty() || !s.pci.i350()) continue;
      next = (next + kI350Bar3Size - 1) & ~std::uint64_t{kI350Bar3Size - 1};
      if (next + kI350Bar3Size > 0x100000000ULL)
        s.where->require("pci_bar0_size").fail("the BARs do not fit below 4 GiB");
      s.pci.bar3_start = static_cast<std::uint32_t>(next);
      next += kI350Bar3Size;
      s.pci.bar2_start = io;
      io += kI350Bar2Size;
    }
  }
  // MSI-X vectors: the Linux IRQ numbers the vector domain hands out at
  // boot, consecutive from the first above the IO-APIC's 24 pins (and
  // above every INTx line), in probe (interface) order. A rebind gets the
  // same ones back: the allocator returns the lowest free numbers.
  {
    unsigned next_irq = 24;
    for (const auto& s : specs)
      if (!s.pci_slot.empty()) next_irq = std::max(next_irq, s.pci.irq + 1);
    for (auto& s : specs) {
      if (s.pci_slot.empty() || !s.pci.i350()) continue;
      s.pci.msix_vectors = igb_msix_vectors(s.dev.num_rx_queues, s.dev.num_tx_queues);
      s.pci.msix_irq_base = next_irq;
      next_irq += s.pci.msix_vectors;
    }
  }

  auto net = std::make_shared<NetSubsystem>();
  auto pci_bus = std::make_shared<PciNicBus>();
  std::map<std::string, std::shared_ptr<PciNicDriver>> drivers;
  net->pci_bus = pci_bus;
  std::map<std::string, std::shared_ptr<VnicHardware>> hw_by_name;
  std::vector<NetStateIface> state;  // the snapshot handler's view
  int ifindex = 1;
  for (auto& s : specs) {
    std::shared_ptr<NetDeviceOps> ops;
    std::shared_ptr<VnicHardware> hw;
    std::shared_ptr<VnicDriver> drv;
    NetStateIface& st = state.emplace_back();
    if (s.dev.kind == "loopback") {
      auto lo = std::make_shared<LoopbackDriver>();
      st.lo = lo.get();
      ops = std::move(lo);
    } else {
      hw = std::make_shared<VnicHardware>(ctx.env, s.dev.name, s.nic);
      drv = std::make_shared<VnicDriver>(ctx.env, hw, s.nic);
      hw->attach(drv.get());
      ops = drv;
      hw_by_name[s.dev.name] = hw;
      net->hardware.push_back(hw);
    }
    auto dev = std::make_shared<NetDevice>(ctx.env, s.dev, ifindex++, ops);
    if (drv) drv->attach(dev.get());
    net->devices.push_back(dev);
    st.dev = dev;
    st.nic = drv.get();

    for (unsigned q = 0; q < s.dev.num_rx_queues; ++q) {
      st.rx.push_back(std::make_shared<NetRxQueue>(*dev, q));
      ctx.machine.keep(st.rx.back());
    }
    for (unsigned q = 0; q < s.dev.num_tx_queues; ++q) {
      st.tx.push_back(std::make_shared<NetTxQueue>(*dev, q));
      ctx.machine.keep(st.tx.back());
    }
    std::string dir;
    std::string up_to_root;  // from the device directory to the mount root
    if (s.pci_slot.empty()) {
      dir = "devices/virtual/net/" + s.dev.name;
      up_to_root = "../../../../";
    } else {
      const std::string host_bridge = "devices/pci" + s.pci_slot.substr(0, 7);  // pci0000:BB
      const std::string pci_dir = host_bridge + "/" + s.pci_slot;
      auto pci = std::make_shared<PciFunction>(ctx.env, s.pci, numa);
      ctx.tree.add_device<PciFunction>(pci_dir, pci, PciFunction::groups());
      add_msi_irqs_files(ctx.tree, pci_dir, pci);  // the boot's probe enabled MSI-X
      st.pci = pci;
      auto pci_subsys = add_subsys_bus(ctx.env, ctx.tree, ctx.machine, "pci");
      if (pci_bus->nics.empty()) {
        // bus/pci/drivers_probe: device_attach over the NICs' drivers.
        std::weak_ptr<PciNicBus> weak_bus = pci_bus;
        pci_subsys->set_attach(
            [weak_bus](const core::Caller& c, std::string_view bdf) -> core::Status {
              auto b = weak_bus.lock();
              PciNic* nic = b ? b->find(bdf) : nullptr;
              return nic ? b->device_attach(&c, *nic) : core::Status{};
            });
      }
      add_uevent_only_device(ctx.env, ctx.tree, ctx.machine, host_bridge);
      // The driver (bus/pci/drivers/NAME with bind, unbind, new_id,
      // remove_id) and its probe of this function at boot.
      auto& pdrv = drivers[s.pci.driver];
      if (!pdrv) {
        pdrv = std::make_shared<PciNicDriver>(ctx.env, s.pci.driver, pci_bus);
        ctx.tree.add_device<PciNicDriver>("bus/pci/drivers/" + s.pci.driver, pdrv,
                                          PciNicDriver::groups());
        pci_bus->drivers.push_back(pdrv);
      }
      pdrv->add_static_id({.vendor = s.pci.vendor, .device = s.pci.device});
      ctx.tree.add_symlink("bus/pci/devices/" + s.pci_slot, "../../../" + pci_dir);
      ctx.tree.add_symlink(pci_dir + "/subsystem", "../../../bus/pci");
      ctx.tree.add_symlink(pci_dir + "/driver", "../../../bus/pci/drivers/" + s.pci.driver);
      ctx.tree.add_symlink("bus/pci/drivers/" + s.pci.driver + "/" + s.pci_slot,
                           "../../../../" + pci_dir);
      ctx.machine.keep(pci);
      dir = pci_dir + "/net/" + s.dev.name;
      up_to_root = "../../../../../";
      auto nic = std::make_shared<PciNic>(ctx.env, ctx.tree, pci, dev, st.rx, st.tx);
      nic->set_booted_driver(pdrv.get());
      pci_bus->nics.push_back(nic);
    }
    dev->set_kobj(add_netdev_files(ctx.tree, dir, up_to_root, s.pci_slot, dev, st.rx, st.tx));
    auto knobs = std::make_shared<NetKnobs>(ctx.env, dev, drv.get());
    ctx.tree.add_device<NetKnobs>("kernel/debug/vsysfs/net/" + s.dev.name, knobs, NetKnobs::groups());
    net->knobs.push_back(knobs);
    st.knobs = knobs;
  }
  for (auto& [a, b] : peer_of) hw_by_name.at(a)->set_peer(hw_by_name.at(b).get());
  for (auto& s : specs)
    if (!s.link) hw_by_name.at(s.dev.name)->set_cable(false);
  // Boot: the init scripts bring the interfaces up, in order.
  {
    core::RtnlLock rtnl;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (!specs[i].up) continue;
      auto& dev = *net->devices[i];
      if (auto st = dev.dev_change_flags(dev.flags() | IFF_UP); !st)
        specs[i].where->fail(fmt::format("{}: open failed: {}", dev.name(), st.error().name()));
    }
  }
  // The power cycle (docs/devices/net.md "Power cycle"). Shutdown: the
  // senders stop and the init scripts take the interfaces down (ifdown,
  // last up first down). Boot: every interface as probe left it, then
  // the ones the machine file brings up come up again, in order.
  std::weak_ptr<NetSubsystem> weak = net;
  ctx.machine.register_shutdown_hook([weak] {
    auto n = weak.lock();
    if (!n) return;
    for (auto& k : n->knobs) k->power_off();
    core::RtnlLock rtnl;
    for (auto it = n->devices.rbegin(); it != n->devices.rend(); ++it)
      if ((*it)->flags() & IFF_UP) (void)(*it)->dev_change_flags((*it)->flags() & ~IFF_UP);
  });
  std::vector<bool> up_at_boot;
  for (const auto& s : specs) up_at_boot.push_back(s.up);
  ctx.machine.register_boot_hook([weak, up_at_boot, &env = ctx.env] {
    auto n = weak.lock();
    if (!n) return;
    // The boot's PCI scan probes every function again (a binding does not
    // outlive a power cycle): the unbound ones get their driver back.
    for (auto& nic : n->pci_bus->nics) (void)n->pci_bus->device_attach(nullptr, *nic);
    core::RtnlLock rtnl;
    for (auto& d : n->devices) d->boot_reset();
    for (std::size_t i = 0; i < n->devices.size(); ++i) {
      if (!up_at_boot[i]) continue;
      auto& dev = *n->devices[i];
      // A failed open at boot leaves the interface down, as ifup does.
      if (auto st = dev.dev_change_flags(dev.flags() | IFF_UP); !st)
        env.log(nullptr, dev.name(), "boot_open", st.error().name(), {});
    }
  });
  ctx.machine.keep(net);
  // Snapshots (docs/snapshot.md): the state of every interface, after the
  // boot above, so a restore knows each object the section built.
  ctx.machine.register_state(net_state_handler(std::move(state)));
}

const SectionRegistrar kReg{"net", &build_net, 200};

}  // namespace
}  // namespace vsysfs::devices
