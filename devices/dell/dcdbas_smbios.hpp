#pragma once

// DcdbasSmbios: the Dell machine as SMBIOS sees it, generated from the same
// [dcdbas] description as the simulated BIOS, so every view agrees.
//
//   /sys/firmware/dmi/tables/smbios_entry_point  0400  bin, SMBIOS 2.8 "_SM_" EPS (31 bytes)
//   /sys/firmware/dmi/tables/DMI                 0400  bin, the structure table
//   /sys/devices/virtual/dmi/id/*  (class/dmi/id) 0444, serials and uuid 0400
//
// Kernel: drivers/firmware/dmi-sysfs.c + dmi_scan.c (tables), dmi-id.c
// (id/); docs/kernel-semantics.md section 2 (the 0xDA table gives the SMI port/code the
// BIOS answers on; the 0xD0 table the Dell SMBIOS version that says whether
// SMI buffers carry a length header). Structures: 0 BIOS, 1 system, 2 board,
// 3 chassis, 11 OEM strings (with the WSMT "30[addr;size]" string the
// modern dcdbas looks for), 0xD0 Dell revisions and IDs, 0xDA calling
// interface with its tokens, 127 end of table. The tables are what the
// firmware built at boot: later SMI changes (an asset tag write) show up
// through SMIs, not here, as on real hardware.
//
// Thread-safety: immutable after construction.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/config.hpp"
#include "devices/dell/dcdbas_bios.hpp"

namespace vsysfs::devices::dcdbas {

struct SmbiosIdentity {
  std::string sys_vendor = "Dell Inc.";
  std::string product_name;
  std::string product_version;
  std::string product_sku;
  std::string product_family = "PowerEdge";
  std::string product_uuid;  // derived from the service tag when empty
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
  bool wsmt = false;
  std::uint64_t wsmt_address = 0;
  std::uint64_t wsmt_size = 0;

  static SmbiosIdentity from_section(const core::ConfigValue& sec, const BiosConfig& bios);
};

class DcdbasSmbios {
 public:
  DcdbasSmbios(SmbiosIdentity id, const BiosConfig& bios);

  static std::span<const core::AttributeGroup<DcdbasSmbios>> table_groups();
  static std::span<const core::AttributeGroup<DcdbasSmbios>> id_groups();

  // Locking: none (immutable). Context: FUSE worker.
  core::Result<std::size_t> smbios_entry_point_read(const core::Caller&, std::uint64_t pos,
                                                    std::span<char> out);
  core::Result<std::size_t> DMI_read(const core::Caller&, std::uint64_t pos, std::span<char> out);
  std::size_t smbios_entry_point_size() const { return entry_.size(); }
  std::size_t DMI_size() const { return table_.size(); }

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

  const std::vector<std::uint8_t>& table() const { return table_; }
  const std::vector<std::uint8_t>& entry_point() const { return entry_; }

 private:
  std::string modalias() const;

  SmbiosIdentity id_;
  std::string service_tag_;
  std::string asset_tag_;
  std::vector<std::uint8_t> table_;
  std::vector<std::uint8_t> entry_;
};

}  // namespace vsysfs::devices::dcdbas
