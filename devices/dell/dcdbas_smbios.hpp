#pragma once

// DcdbasSmbios: the Dell machine as SMBIOS sees it, generated from the same
// [dcdbas] description as the simulated BIOS, so every view agrees.
//
//   /sys/firmware/dmi/tables/smbios_entry_point  0400  bin, "_SM_" EPS (31 bytes), SMBIOS 2.8 or
//   [dcdbas] smbios_version /sys/firmware/dmi/tables/DMI                 0400  bin, the structure
//   table /sys/devices/virtual/dmi/id/*  (class/dmi/id) 0444, serials and uuid 0400
//
// Kernel: drivers/firmware/dmi-sysfs.c + dmi_scan.c (tables), dmi-id.c
// (id/); docs/kernel-semantics.md section 2 (the 0xDA table gives the SMI port/code the
// BIOS answers on; the 0xD0 table the Dell SMBIOS version that says whether
// SMI buffers carry a length header). Structures: 0 BIOS, 1 system, 2 board,
// 3 chassis, 4 one per processor socket (core, enabled-core and thread
// counts of the NUMA model's packages), 7 its caches (one per level, the
// socket's total), 9 the PCIe slots (one in use per PCI NIC of [net], with
// its bus address), 11 OEM strings (with the WSMT "30[addr;size]" string the
// modern dcdbas looks for), 16 one memory array per NUMA node, 17 its
// DIMMs (summing to the node's boot memory), 19 the array's address range
// (nodes laid out from 0 in node order, as the memory blocks), 32 system
// boot status, 0xD0 Dell revisions and IDs, 0xDA calling
// interface with its tokens, 127 end of table. The tables are what the
// firmware built at boot: later SMI changes (an asset tag write) show up
// through SMIs, not here, as on real hardware, until the next boot
// (boot(), from the machine's boot hook), whose tables carry the BIOS's
// service and asset tags of that moment.
//
// The same builder serves a Xen HVM guest without [dcdbas] (Firmware::
// XenHvmloader, from build_xen): the tables hvmloader writes
// (xen tools/firmware/hvmloader/smbios.c, SMBIOS 2.4): 0 BIOS "Xen" with
// the Xen version, 1 "Xen" "HVM domU" with the domain handle as UUID and
// serial, 3 chassis "Xen" type Other, 4 one per vCPU ("CPU 1".., handle
// 0x401..), 11 "Xen", 16 one array, 17/19/20 one device per 16 GiB of the
// guest's memory, 32, 127; no type 2, so dmi-id has no board_* files.
//
// Thread-safety: the identity and hardware are immutable; the tables of
// the current boot are an immutable snapshot behind smbios_lock (a leaf),
// replaced whole by boot(), so a reader never sees half of two boots.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/config.hpp"
#include "devices/dell/dcdbas_bios.hpp"

namespace vsysfs::devices {
class DcdbasStateHandler;  // dcdbas_state.cpp
struct MachineContext;     // devices/machine/machine.hpp
}

namespace vsysfs::devices::dcdbas {

struct SmbiosIdentity {
  // Whose firmware built the tables: a Dell BIOS ([dcdbas]) or Xen's
  // hvmloader (an HVM domU's; see the header comment).
  enum class Firmware { Dell, XenHvmloader };
  Firmware firmware = Firmware::Dell;
  std::string sys_vendor = "Dell Inc.";
  std::string product_name;
  std::string product_version;
  std::string product_sku;
  std::string product_family = "PowerEdge";
  std::string product_uuid;  // derived from the service tag when empty
  // hvmloader's type 1 serial (the handle as text); Dell's is the tag.
  std::string product_serial;
  std::string bios_vendor = "Dell Inc.";
  std::string bios_version = "2.19.1";
  std::string bios_date = "06/05/2023";
  std::string board_vendor = "Dell Inc.";
  std::string board_name = "0PHYDR";
  std::string board_version = "A00";
  std::string board_serial;
  std::string chassis_vendor = "Dell Inc.";
  unsigned chassis_type = 23;  // rack mount chassis
  std::uint16_t system_id = 0x0715;
  // The entry point's SMBIOS version ("_SM_" bytes 6, 7 and the BCD
  // revision at 0x1e): 2.1 to 2.8, the versions with a 32-bit entry point.
  unsigned smbios_major = 2;
  unsigned smbios_minor = 8;
  bool wsmt = false;
  std::uint64_t wsmt_address = 0;
  std::uint64_t wsmt_size = 0;

  static SmbiosIdentity from_section(const core::ConfigValue& sec, const BiosConfig& bios);
};

// The rest of the machine as the firmware reports it, computed by the
// builder from the NUMA model (sockets, caches, nodes) and [net] (slots).
struct SmbiosHardware {
  struct Socket {
    unsigned cores = 0;    // present cores (all enabled by the BIOS)
    unsigned threads = 0;  // present hardware threads
  };
  struct Cache {
    unsigned level = 1;
    std::uint64_t size_kib = 0;  // the socket's total at this level
    unsigned ways = 1;
    std::uint8_t system_type = 5;  // SMBIOS 7.8.5: 3 instruction, 4 data, 5 unified
  };
  struct Node {
    std::uint64_t start_bytes = 0;  // physical address of the node's first byte
    std::uint64_t size_kib = 0;     // boot memory
  };
  struct Slot {
    bool in_use = false;
    std::uint16_t segment = 0;
    std::uint8_t bus = 0;
    std::uint8_t devfn = 0;
  };
  std::vector<Socket> sockets;
  std::vector<Cache> caches;  // per socket, by level
  std::vector<Node> nodes;
  std::vector<Slot> slots;
  std::string processor_version = "Intel(R) Xeon(R) CPU @ 2.60GHz";  // no SKU: any core count
  std::uint32_t processor_signature = 0x00050654;  // CPUID.1:EAX, Skylake-SP stepping 4
  unsigned max_speed_mhz = 4000;
  unsigned current_speed_mhz = 2600;
  unsigned memory_speed_mts = 2666;   // DDR4-2666 RDIMMs
  unsigned dimm_slots_per_node = 12;  // an R740 socket: 6 channels x 2
  // hvmloader (Firmware::XenHvmloader): hvm_info->nr_vcpus type 4 entries;
  // the memory is the nodes' total.
  unsigned vcpus = 0;
};

class DcdbasSmbios {
 public:
  DcdbasSmbios(SmbiosIdentity id, const BiosConfig& bios, SmbiosHardware hw = {});

  // How a node's boot memory is populated: `count` equal DIMMs of
  // `size_mb` (type 17 sizes are whole MB), count the largest power of two
  // up to min(8, slots) that divides the node's MB into modules of at
  // least 4 GiB (or one module for a smaller node); 0 DIMMs for a node
  // without memory.
  struct DimmPlan {
    unsigned count = 0;
    std::uint64_t size_mb = 0;
  };
  static DimmPlan plan_dimms(std::uint64_t node_kib, unsigned slots);

  static std::span<const core::AttributeGroup<DcdbasSmbios>> table_groups();
  static std::span<const core::AttributeGroup<DcdbasSmbios>> id_groups();

  // Locking: none (immutable). Context: FUSE worker.
  core::Result<std::size_t> smbios_entry_point_read(const core::Caller&, std::uint64_t pos,
                                                    std::span<char> out);
  core::Result<std::size_t> DMI_read(const core::Caller&, std::uint64_t pos, std::span<char> out);
  std::size_t smbios_entry_point_size() const { return tables()->entry.size(); }
  std::size_t DMI_size() const { return tables()->table.size(); }

  core::Status bios_date_show(core::PageBuffer& buf) const;
  core::Status bios_release_show(core::PageBuffer& buf) const;
  core::Status bios_vendor_show(core::PageBuffer& buf) const;
  core::Status bios_version_show(core::PageBuffer& buf) const;
  core::Status board_asset_tag_show(core::PageBuffer& buf) const;
  core::Status board_name_show(core::PageBuffer& buf) const;
  core::Status board_serial_show(core::PageBuffer& buf) const;
  core::Status board_vendor_show(core::PageBuffer& buf) const;
  core::Status board_version_show(core::PageBuffer& buf) const;
  core::Status chassis_asset_tag_show(core::PageBuffer& buf) const;
  core::Status chassis_serial_show(core::PageBuffer& buf) const;
  core::Status chassis_type_show(core::PageBuffer& buf) const;
  core::Status chassis_vendor_show(core::PageBuffer& buf) const;
  core::Status chassis_version_show(core::PageBuffer& buf) const;
  core::Status modalias_show(core::PageBuffer& buf) const;
  core::Status product_family_show(core::PageBuffer& buf) const;
  core::Status product_name_show(core::PageBuffer& buf) const;
  core::Status product_serial_show(core::PageBuffer& buf) const;
  core::Status product_sku_show(core::PageBuffer& buf) const;
  core::Status product_uuid_show(core::PageBuffer& buf) const;
  core::Status product_version_show(core::PageBuffer& buf) const;
  core::Status sys_vendor_show(core::PageBuffer& buf) const;
  core::Status uevent_show(core::PageBuffer& buf) const;

  std::vector<std::uint8_t> table() const { return tables()->table; }
  const SmbiosIdentity& identity() const { return id_; }
  std::vector<std::uint8_t> entry_point() const { return tables()->entry; }

  // A boot: the firmware builds the tables again with the tags it has now.
  // Locking: smbios_lock. Context: the machine's boot hook.
  void boot(std::string service_tag, std::string asset_tag);

 private:
  // Machine snapshots (dcdbas_state.cpp, docs/snapshot.md).
  friend class devices::DcdbasStateHandler;

  // What one boot's firmware built.
  struct Tables {
    std::string service_tag;
    std::string asset_tag;
    std::string product_serial;  // type 1 and type 3 serials as dmi-id shows them
    std::string chassis_serial;
    std::vector<std::uint8_t> table;
    std::vector<std::uint8_t> entry;
  };
  std::shared_ptr<const Tables> make_tables(std::string service_tag, std::string asset_tag) const;
  void add_dell(std::vector<std::vector<std::uint8_t>>& structs, const Tables& tb) const;
  std::shared_ptr<const Tables> finish_tables(
      std::shared_ptr<Tables> tb, const std::vector<std::vector<std::uint8_t>>& structs) const;
  std::shared_ptr<const Tables> tables() const;
  std::string modalias() const;

  SmbiosIdentity id_;
  SmbiosHardware hw_;
  BiosConfig bios_;  // the calling interface and tokens of 0xDA and 0xD4
  mutable core::Mutex mu_{"dcdbas.smbios_lock", 0};  // Order: leaf
  std::shared_ptr<const Tables> tables_ GUARDED_BY(mu_);
};

// The tables (firmware/dmi/tables) and dmi-id (devices/virtual/dmi/id,
// class/dmi/id) of `smbios` in the machine's tree; the machine keeps it.
void add_dmi(MachineContext& ctx, const std::shared_ptr<DcdbasSmbios>& smbios);

}  // namespace vsysfs::devices::dcdbas
