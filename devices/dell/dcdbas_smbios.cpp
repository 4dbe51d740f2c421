#include "devices/dell/dcdbas_smbios.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

namespace vsysfs::devices::dcdbas {
namespace {

using Smb = DcdbasSmbios;

// dmi-sysfs: both tables are root-only binary files sized to their content.
constexpr core::BinAttribute<Smb> kTableBin[] = {
    {"smbios_entry_point", 0400, 0, &Smb::smbios_entry_point_read, nullptr, &Smb::smbios_entry_point_size},
    {"DMI", 0400, 0, &Smb::DMI_read, nullptr, &Smb::DMI_size},
};
constexpr core::AttributeGroup<Smb> kTableGroups[] = {{.name = "", .bin_attrs = kTableBin}};

// dmi-id.c: serial numbers and the UUID are root-only (S_IRUSR).
constexpr core::DeviceAttribute<Smb> kIdAttrs[] = {
    VSYSFS_ATTR_RO(Smb, bios_vendor),
    VSYSFS_ATTR_RO(Smb, bios_version),
    VSYSFS_ATTR_RO(Smb, bios_date),
    VSYSFS_ATTR_RO(Smb, bios_release),
    VSYSFS_ATTR_RO(Smb, sys_vendor),
    VSYSFS_ATTR_RO(Smb, product_name),
    VSYSFS_ATTR_RO(Smb, product_version),
    VSYSFS_ATTR_RO_MODE(Smb, product_serial, 0400),
    VSYSFS_ATTR_RO_MODE(Smb, product_uuid, 0400),
    VSYSFS_ATTR_RO(Smb, product_sku),
    VSYSFS_ATTR_RO(Smb, product_family),
    VSYSFS_ATTR_RO(Smb, board_vendor),
    VSYSFS_ATTR_RO(Smb, board_name),
    VSYSFS_ATTR_RO(Smb, board_version),
    VSYSFS_ATTR_RO_MODE(Smb, board_serial, 0400),
    VSYSFS_ATTR_RO(Smb, board_asset_tag),
    VSYSFS_ATTR_RO(Smb, chassis_vendor),
    VSYSFS_ATTR_RO(Smb, chassis_type),
    VSYSFS_ATTR_RO(Smb, chassis_version),
    VSYSFS_ATTR_RO_MODE(Smb, chassis_serial, 0400),
    VSYSFS_ATTR_RO(Smb, chassis_asset_tag),
    VSYSFS_ATTR_RO(Smb, modalias),
    VSYSFS_ATTR_RO(Smb, uevent),
};
constexpr core::AttributeGroup<Smb> kIdGroups[] = {{.name = "", .attrs = kIdAttrs}};

constexpr std::uint32_t kTableAddress = 0x7f7de000;

// One SMBIOS structure: formatted area, then its string set.
class Structure {
 public:
  Structure(std::uint8_t type, std::uint16_t handle) : bytes_{type, 0, static_cast<std::uint8_t>(handle), static_cast<std::uint8_t>(handle >> 8)} {}
  void u8(std::uint8_t v) { bytes_.push_back(v); }
  void u16(std::uint16_t v) { u8(static_cast<std::uint8_t>(v)); u8(static_cast<std::uint8_t>(v >> 8)); }
  void u32(std::uint32_t v) { u16(static_cast<std::uint16_t>(v)); u16(static_cast<std::uint16_t>(v >> 16)); }
  void u64(std::uint64_t v) { u32(static_cast<std::uint32_t>(v)); u32(static_cast<std::uint32_t>(v >> 32)); }
  void raw(const std::uint8_t* p, std::size_t n) { bytes_.insert(bytes_.end(), p, p + n); }
  // A string field: its 1-based number, 0 for none (empty).
  void str(const std::string& s) {
    if (s.empty()) return u8(0);
    strings_.push_back(s);
    u8(static_cast<std::uint8_t>(strings_.size()));
  }
  std::vector<std::uint8_t> finish() {
    bytes_[1] = static_cast<std::uint8_t>(bytes_.size());
    std::vector<std::uint8_t> out = bytes_;
    for (const auto& s : strings_) {
      out.insert(out.end(), s.begin(), s.end());
      out.push_back(0);
    }
    if (strings_.empty()) out.push_back(0);
    out.push_back(0);
    return out;
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::vector<std::string> strings_;
};

// "4c4c4544-..." text -> the 16 bytes SMBIOS 2.6+ stores (first three
// fields little-endian).
std::array<std::uint8_t, 16> uuid_bytes(const std::string& text) {
  std::array<std::uint8_t, 16> b{};
  std::string hex;
  for (char c : text)
    if (c != '-') hex.push_back(c);
  for (int i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  std::reverse(b.begin(), b.begin() + 4);
  std::reverse(b.begin() + 4, b.begin() + 6);
  std::reverse(b.begin() + 6, b.begin() + 8);
  return b;
}

bool valid_uuid(const std::string& s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// Dell-style UUID: "DELL" then the service tag's bytes.
std::string uuid_from_tag(const std::string& tag) {
  std::string t = tag;
  t.resize(7, '0');
  auto h = [&](int i) { return fmt::format("{:02x}", static_cast<unsigned char>(t[i])); };
  return fmt::format("4c4c4544-00{}-{}10-80{}-{}{}{}{}0000", h(0), h(1), h(2), h(3), h(4), h(5), h(6));
}

// What dmi-id.c puts into the modalias: printable characters other than
// ':' and spaces.
std::string alias_field(const std::string& s) {
  std::string out;
  for (char c : s)
    if (c > ' ' && c < 0x7f && c != ':') out.push_back(c);
  return out;
}

std::pair<unsigned, unsigned> bios_release_of(const std::string& version) {
  unsigned major = 0, minor = 0;
  if (std::sscanf(version.c_str(), "%u.%u", &major, &minor) < 2) return {0xFF, 0xFF};
  return {std::min(major, 254u), std::min(minor, 255u)};
}

core::Result<std::size_t> slice(const std::vector<std::uint8_t>& v, std::uint64_t pos, std::span<char> out) {
  if (pos >= v.size()) return std::size_t{0};
  const std::size_t n = std::min<std::uint64_t>(out.size(), v.size() - pos);
  std::copy_n(v.data() + pos, n, out.data());
  return n;
}

}  // namespace

SmbiosIdentity SmbiosIdentity::from_section(const core::ConfigValue& sec, const BiosConfig& bios) {
  SmbiosIdentity id;
  id.product_name = bios.model;
  id.sys_vendor = sec.get_string("sys_vendor", id.sys_vendor);
  id.product_version = sec.get_string("product_version", id.product_version);
  id.product_sku = sec.get_string("product_sku", "SKU=NotProvided;ModelName=" + bios.model);
  id.product_family = sec.get_string("product_family", id.product_family);
  id.product_uuid = sec.get_string("product_uuid", uuid_from_tag(bios.service_tag));
  if (!valid_uuid(id.product_uuid)) sec.require("product_uuid").fail("not a UUID (8-4-4-4-12 hex digits)");
  id.bios_vendor = sec.get_string("bios_vendor", id.bios_vendor);
  id.bios_version = sec.get_string("bios_version", id.bios_version);
  id.bios_date = sec.get_string("bios_date", id.bios_date);
  id.board_name = sec.get_string("board_name", id.board_name);
  id.board_version = sec.get_string("board_version", id.board_version);
  id.board_serial = sec.get_string("board_serial", bios.service_tag.empty() ? "" : ".CN" + bios.service_tag + ".");
  const std::uint64_t ct = sec.get_uint("chassis_type", id.chassis_type);
  if (ct == 0 || ct > 0x7F) sec.require("chassis_type").fail("must be an SMBIOS chassis type 1..127");
  id.chassis_type = static_cast<unsigned>(ct);
  const std::uint64_t sid = sec.get_uint("system_id", id.system_id);
  if (sid > 0xFFFF) sec.require("system_id").fail("does not fit 16 bits");
  id.system_id = static_cast<std::uint16_t>(sid);
  return id;
}

DcdbasSmbios::DcdbasSmbios(SmbiosIdentity id, const BiosConfig& bios)
    : id_(std::move(id)), service_tag_(bios.service_tag), asset_tag_(bios.asset_tag) {
  std::vector<std::vector<std::uint8_t>> structs;
  const auto [rel_major, rel_minor] = bios_release_of(id_.bios_version);
  {
    Structure s(0, 0x0000);  // BIOS information (2.4+ layout)
    s.str(id_.bios_vendor);
    s.str(id_.bios_version);
    s.u16(0xF000);  // starting address segment
    s.str(id_.bios_date);
    s.u8(0x7F);  // ROM size: 64K * 128 = 8 MB
    // PCI, upgradeable, shadowing, CD boot, selectable boot, EDD, 3.5" floppy (int 13h), 8042 keyboard
    s.u64((1u << 7) | (1u << 11) | (1u << 12) | (1u << 15) | (1u << 16) | (1u << 19) | (1u << 24) | (1u << 27));
    s.u8(0x03);  // ACPI, USB legacy
    s.u8(0x0D);  // BIOS boot spec, targeted content distribution, UEFI
    s.u8(static_cast<std::uint8_t>(rel_major));
    s.u8(static_cast<std::uint8_t>(rel_minor));
    s.u8(0xFF);  // no embedded controller firmware
    s.u8(0xFF);
    structs.push_back(s.finish());
  }
  {
    Structure s(1, 0x0100);  // system information
    s.str(id_.sys_vendor);
    s.str(id_.product_name);
    s.str(id_.product_version);
    s.str(service_tag_);
    const auto u = uuid_bytes(id_.product_uuid);
    s.raw(u.data(), u.size());
    s.u8(0x06);  // wake-up type: power switch
    s.str(id_.product_sku);
    s.str(id_.product_family);
    structs.push_back(s.finish());
  }
  {
    Structure s(2, 0x0200);  // baseboard
    s.str(id_.board_vendor);
    s.str(id_.board_name);
    s.str(id_.board_version);
    s.str(id_.board_serial);
    s.str("");     // asset tag
    s.u8(0x09);    // hosting board, replaceable
    s.str("");     // location in chassis
    s.u16(0x0300);  // chassis handle
    s.u8(0x0A);    // motherboard
    s.u8(0);       // no contained objects
    structs.push_back(s.finish());
  }
  {
    Structure s(3, 0x0300);  // system enclosure
    s.str(id_.chassis_vendor);
    s.u8(static_cast<std::uint8_t>(id_.chassis_type));
    s.str("");  // version
    s.str(service_tag_);
    s.str(asset_tag_);
    s.u8(3);  // boot-up state: safe
    s.u8(3);  // power supply state
    s.u8(3);  // thermal state
    s.u8(3);  // security: none
    s.u32(0);  // OEM defined
    s.u8(2);   // height: 2U
    s.u8(2);   // power cords
    s.u8(0);   // contained element count
    s.u8(3);   // contained element record length
    s.str(""); // SKU
    structs.push_back(s.finish());
  }
  {
    Structure s(11, 0x0B00);  // OEM strings
    std::vector<std::string> oem = {"Dell System", fmt::format("1[{:04X}]", id_.system_id), "3[1.0]"};
    if (id_.wsmt)  // dcdbas_check_wsmt: sscanf(name, "30[%16llx;%8llx]")
      oem.push_back(fmt::format("30[{:016x};{:08x}]", id_.wsmt_address, id_.wsmt_size));
    s.u8(static_cast<std::uint8_t>(oem.size()));
    std::vector<std::uint8_t> out = s.finish();
    // OEM strings are numbered 1..N by position: append them directly.
    out.resize(out.size() - 2);
    for (const auto& o : oem) {
      out.insert(out.end(), o.begin(), o.end());
      out.push_back(0);
    }
    out.push_back(0);
    structs.push_back(out);
  }
  {
    Structure s(0xD0, 0xD000);  // Dell revisions and IDs
    s.u8(static_cast<std::uint8_t>(bios.dell_smbios_version));
    s.u8(0);
    s.u8(0xFE);  // system ID is the word below
    s.u8(0);
    s.u16(id_.system_id);
    structs.push_back(s.finish());
  }
  {
    // Dell calling interface: the port/code the BIOS answers on and the
    // SMI tokens, EOT-terminated, at most 38 per structure.
    const std::uint32_t supported = (1u << 0) | (1u << 1) | (1u << 11) | (1u << 20);
    std::size_t i = 0;
    std::uint16_t handle = 0xDA00;
    do {
      Structure s(0xDA, handle++);
      s.u16(bios.cmd_port);
      s.u8(bios.cmd_code);
      s.u32(supported);
      for (std::size_t n = 0; n < 38 && i < bios.tokens.size(); ++n, ++i) {
        s.u16(bios.tokens[i].id);
        s.u16(bios.tokens[i].location);
        s.u16(bios.tokens[i].value);
      }
      s.u16(0xFFFF);  // TokenTypeEOT
      s.u16(0);
      s.u16(0);
      structs.push_back(s.finish());
    } while (i < bios.tokens.size());
  }
  {
    // Indexed I/O (CMOS) tokens, one structure per index/data port pair,
    // no checksum range (all three checksum fields 0).
    std::vector<std::pair<std::uint16_t, std::uint16_t>> pairs;
    for (const auto& t : bios.cmos_tokens)
      if (std::find(pairs.begin(), pairs.end(), std::make_pair(t.index_port, t.data_port)) == pairs.end())
        pairs.emplace_back(t.index_port, t.data_port);
    std::uint16_t handle = 0xD400;
    for (const auto& [ip, dp] : pairs) {
      std::vector<const CmosToken*> mine;
      for (const auto& t : bios.cmos_tokens)
        if (t.index_port == ip && t.data_port == dp) mine.push_back(&t);
      for (std::size_t i = 0; i < mine.size();) {
        Structure s(0xD4, handle++);
        s.u16(ip);
        s.u16(dp);
        s.u8(0);  // check type
        s.u8(0);  // checked range start
        s.u8(0);  // checked range end
        s.u8(0);  // check value index
        for (std::size_t n = 0; n < 45 && i < mine.size(); ++n, ++i) {
          s.u16(mine[i]->id);
          s.u8(mine[i]->location);
          s.u8(mine[i]->and_mask);
          s.u8(mine[i]->or_value);
        }
        s.u16(0xFFFF);  // TokenTypeEOT
        s.u8(0);
        s.u8(0);
        s.u8(0);
        structs.push_back(s.finish());
      }
    }
  }
  {
    Structure s(127, 0x7F00);  // end of table
    structs.push_back(s.finish());
  }

  std::size_t max_size = 0;
  for (const auto& s : structs) {
    table_.insert(table_.end(), s.begin(), s.end());
    max_size = std::max(max_size, s.size());
  }

  // SMBIOS 2.8 32-bit entry point.
  entry_.assign(0x1F, 0);
  std::memcpy(entry_.data(), "_SM_", 4);
  entry_[5] = 0x1F;
  entry_[6] = 2;
  entry_[7] = 8;
  entry_[8] = static_cast<std::uint8_t>(max_size);
  entry_[9] = static_cast<std::uint8_t>(max_size >> 8);
  std::memcpy(entry_.data() + 0x10, "_DMI_", 5);
  entry_[0x16] = static_cast<std::uint8_t>(table_.size());
  entry_[0x17] = static_cast<std::uint8_t>(table_.size() >> 8);
  for (int k = 0; k < 4; ++k) entry_[0x18 + k] = static_cast<std::uint8_t>(kTableAddress >> (8 * k));
  entry_[0x1C] = static_cast<std::uint8_t>(structs.size());
  entry_[0x1D] = static_cast<std::uint8_t>(structs.size() >> 8);
  entry_[0x1E] = 0x28;  // BCD revision 2.8
  std::uint8_t sum = 0;
  for (int k = 0x10; k < 0x1F; ++k) sum = static_cast<std::uint8_t>(sum + entry_[k]);
  entry_[0x15] = static_cast<std::uint8_t>(-sum);
  sum = 0;
  for (auto b : entry_) sum = static_cast<std::uint8_t>(sum + b);
  entry_[4] = static_cast<std::uint8_t>(-sum);
}

std::span<const core::AttributeGroup<Smb>> DcdbasSmbios::table_groups() { return kTableGroups; }
std::span<const core::AttributeGroup<Smb>> DcdbasSmbios::id_groups() { return kIdGroups; }

core::Result<std::size_t> DcdbasSmbios::smbios_entry_point_read(const core::Caller&, std::uint64_t pos,
                                                               std::span<char> out) {
  return slice(entry_, pos, out);
}

core::Result<std::size_t> DcdbasSmbios::DMI_read(const core::Caller&, std::uint64_t pos, std::span<char> out) {
  return slice(table_, pos, out);
}

#define VSYSFS_DMI_FIELD(name, expr)                               \
  core::Status DcdbasSmbios::name##_show(core::PageBuffer& buf) const { \
    buf.emit("{}\n", expr);                                        \
    return {};                                                     \
  }
VSYSFS_DMI_FIELD(bios_vendor, id_.bios_vendor)
VSYSFS_DMI_FIELD(bios_version, id_.bios_version)
VSYSFS_DMI_FIELD(bios_date, id_.bios_date)
VSYSFS_DMI_FIELD(sys_vendor, id_.sys_vendor)
VSYSFS_DMI_FIELD(product_name, id_.product_name)
VSYSFS_DMI_FIELD(product_version, id_.product_version)
VSYSFS_DMI_FIELD(product_serial, service_tag_)
VSYSFS_DMI_FIELD(product_uuid, id_.product_uuid)
VSYSFS_DMI_FIELD(product_sku, id_.product_sku)
VSYSFS_DMI_FIELD(product_family, id_.product_family)
VSYSFS_DMI_FIELD(board_vendor, id_.board_vendor)
VSYSFS_DMI_FIELD(board_name, id_.board_name)
VSYSFS_DMI_FIELD(board_version, id_.board_version)
VSYSFS_DMI_FIELD(board_serial, id_.board_serial)
VSYSFS_DMI_FIELD(board_asset_tag, std::string())
VSYSFS_DMI_FIELD(chassis_vendor, id_.chassis_vendor)
VSYSFS_DMI_FIELD(chassis_type, id_.chassis_type)
VSYSFS_DMI_FIELD(chassis_version, std::string())
VSYSFS_DMI_FIELD(chassis_serial, service_tag_)
VSYSFS_DMI_FIELD(chassis_asset_tag, asset_tag_)
VSYSFS_DMI_FIELD(modalias, modalias())
#undef VSYSFS_DMI_FIELD

core::Status DcdbasSmbios::bios_release_show(core::PageBuffer& buf) const {
  const auto [major, minor] = bios_release_of(id_.bios_version);
  buf.emit("{}.{}\n", major, minor);
  return {};
}

core::Status DcdbasSmbios::uevent_show(core::PageBuffer& buf) const {
  buf.emit("MODALIAS={}\n", modalias());
  return {};
}

// dmi-id.c get_modalias(), modern field list.
std::string DcdbasSmbios::modalias() const {
  const auto [major, minor] = bios_release_of(id_.bios_version);
  std::string br = major == 0xFF ? std::string() : fmt::format("br{}.{}:", major, minor);
  return fmt::format("dmi:bvn{}:bvr{}:bd{}:{}svn{}:pn{}:pvr{}:rvn{}:rn{}:rvr{}:cvn{}:ct{}:cvr{}:sku{}:",
                     alias_field(id_.bios_vendor), alias_field(id_.bios_version),
                     alias_field(id_.bios_date), br, alias_field(id_.sys_vendor),
                     alias_field(id_.product_name), alias_field(id_.product_version),
                     alias_field(id_.board_vendor), alias_field(id_.board_name),
                     alias_field(id_.board_version), alias_field(id_.chassis_vendor), id_.chassis_type,
                     "", alias_field(id_.product_sku));
}

}  // namespace vsysfs::devices::dcdbas
