#include "devices/dell/dcdbas_smbios.hpp"

#include "devices/machine/machine.hpp"

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
// dmi-id.c ADD_DMI_ATTR: a file only for a field the tables have;
// hvmloader writes no type 2, so a Xen HVM guest has no board_* files.
mode_t id_visible(const Smb& d, std::string_view name, mode_t mode) {
  if (d.identity().firmware == SmbiosIdentity::Firmware::XenHvmloader && name.starts_with("board_"))
    return 0;
  return mode;
}
constexpr core::AttributeGroup<Smb> kIdGroups[] = {
    {.name = "", .attrs = kIdAttrs, .is_visible = &id_visible}};

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

// "4c4c4544-..." text -> the 16 bytes SMBIOS stores: from 2.6 on the
// first three fields little-endian, before 2.6 in text order (dmi_scan.c
// dmi_save_uuid prints %pUl from 2.6 on and %pUb before, so the text is
// the same either way).
std::array<std::uint8_t, 16> uuid_bytes(const std::string& text, bool little_endian) {
  std::array<std::uint8_t, 16> b{};
  std::string hex;
  for (char c : text)
    if (c != '-') hex.push_back(c);
  for (int i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  if (!little_endian) return b;
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
  if (sec.has("smbios_version")) {
    const std::string v = sec.get_string("smbios_version", "2.8");
    if (v.size() != 3 || v[0] != '2' || v[1] != '.' || v[2] < '1' || v[2] > '8')
      sec.require("smbios_version").fail("must be \"2.1\" .. \"2.8\" (a 32-bit _SM_ entry point)");
    id.smbios_minor = static_cast<unsigned>(v[2] - '0');
  }
  return id;
}

DcdbasSmbios::DimmPlan DcdbasSmbios::plan_dimms(std::uint64_t node_kib, unsigned slots) {
  const std::uint64_t mb = node_kib / 1024;
  if (mb == 0 || slots == 0) return {};
  unsigned count = 1;
  for (unsigned k = 2; k <= std::min(8u, slots); k *= 2)
    if (mb % k == 0 && mb / k >= std::min<std::uint64_t>(mb, 4096)) count = k;
  return {count, mb / count};
}

namespace {

// A type 7 size field (2.1 layout): bit 15 set is 64K granularity, else 1K.
std::uint16_t cache_size_word(std::uint64_t kib) {
  if (kib < 0x8000) return static_cast<std::uint16_t>(kib);
  return static_cast<std::uint16_t>(0x8000 | std::min<std::uint64_t>(kib / 64, 0x7FFF));
}

// Type 7 associativity (SMBIOS 7.8.7); ways the enumeration lacks are
// "Other".
std::uint8_t cache_associativity(unsigned ways) {
  switch (ways) {
    case 1:
      return 0x03;
    case 2:
      return 0x04;
    case 4:
      return 0x05;
    case 8:
      return 0x07;
    case 12:
      return 0x09;
    case 16:
      return 0x08;
    case 20:
      return 0x0E;
    case 24:
      return 0x0A;
    case 32:
      return 0x0B;
    case 48:
      return 0x0C;
    case 64:
      return 0x0D;
    default:
      return 0x01;
  }
}

std::uint8_t clamp_u8(unsigned v) { return static_cast<std::uint8_t>(std::min(v, 255u)); }

}  // namespace

// Types 4, 7, 9, 16, 17, 19 and 32: the machine's hardware, SMBIOS 2.8
// layouts (DSP0134 2.8.0 sections 7.5, 7.8, 7.10, 7.17, 7.18, 7.20, 7.33).
static void add_hardware(std::vector<std::vector<std::uint8_t>>& structs, const SmbiosHardware& hw,
                         const std::string& service_tag) {
  for (std::size_t sock = 0; sock < hw.sockets.size(); ++sock) {
    const auto& so = hw.sockets[sock];
    std::uint16_t cache_handle[3] = {0xFFFF, 0xFFFF, 0xFFFF};  // L1, L2, L3: not provided
    for (std::size_t c = 0; c < hw.caches.size(); ++c) {
      const auto& ca = hw.caches[c];
      const auto handle = static_cast<std::uint16_t>(0x0700 + sock * 0x10 + c);
      if (ca.level >= 1 && ca.level <= 3) cache_handle[ca.level - 1] = handle;
      Structure s(7, handle);
      s.str(fmt::format("L{} Cache", ca.level));
      // Level - 1, not socketed, internal, enabled, write-back.
      s.u16(static_cast<std::uint16_t>(((ca.level - 1) & 7) | (1u << 7) | (1u << 8)));
      s.u16(cache_size_word(ca.size_kib));  // maximum size
      s.u16(cache_size_word(ca.size_kib));  // installed size
      s.u16(0x0002);                        // supported SRAM type: unknown
      s.u16(0x0002);                        // current SRAM type: unknown
      s.u8(0);                              // speed: unknown
      s.u8(ca.level == 1 ? 0x04 : 0x05);    // error correction: parity (L1), single-bit ECC
      s.u8(ca.system_type);
      s.u8(cache_associativity(ca.ways));
      structs.push_back(s.finish());
    }
    Structure s(4, static_cast<std::uint16_t>(0x0400 + sock));
    s.str(fmt::format("CPU{}", sock + 1));
    s.u8(0x03);  // central processor
    s.u8(0xB3);  // Intel Xeon
    s.str("Intel");
    s.u32(hw.processor_signature);  // processor ID: CPUID.1 EAX, then EDX
    s.u32(0xBFEBFBFF);
    s.str(hw.processor_version);
    s.u8(0x80 | 18);  // voltage: 1.8 V
    s.u16(100);       // external clock, MHz
    s.u16(static_cast<std::uint16_t>(hw.max_speed_mhz));
    s.u16(static_cast<std::uint16_t>(hw.current_speed_mhz));
    s.u8(0x41);  // socket populated, CPU enabled
    s.u8(0x01);  // upgrade: other
    s.u16(cache_handle[0]);
    s.u16(cache_handle[1]);
    s.u16(cache_handle[2]);
    s.str("");                   // serial number
    s.str("");                   // asset tag
    s.str("");                   // part number
    s.u8(clamp_u8(so.cores));    // core count
    s.u8(clamp_u8(so.cores));    // cores enabled
    s.u8(clamp_u8(so.threads));  // thread count
    // 64-bit capable, multi-core, hardware thread, execute protection,
    // enhanced virtualization, power/performance control.
    s.u16(static_cast<std::uint16_t>(0x04 | (so.cores > 1 ? 0x08 : 0) |
                                     (so.threads > so.cores ? 0x10 : 0) | 0x20 | 0x40 | 0x80));
    s.u16(0xB3);  // processor family 2
    structs.push_back(s.finish());
  }
  for (std::size_t i = 0; i < hw.slots.size(); ++i) {
    const auto& sl = hw.slots[i];
    Structure s(9, static_cast<std::uint16_t>(0x0900 + i));
    s.str(fmt::format("PCIe Slot {}", i + 1));
    s.u8(0xB6);                     // PCI Express Gen 3 x16
    s.u8(0x0D);                     // 16x bus width
    s.u8(sl.in_use ? 0x04 : 0x03);  // in use / available
    s.u8(0x04);                     // long
    s.u16(static_cast<std::uint16_t>(i + 1));
    s.u8(0x04);  // 3.3 V
    s.u8(0x01);  // PME#
    // Bus address: an empty slot's is 0xFF/0xFF (not provided).
    s.u16(sl.in_use ? sl.segment : 0xFFFF);
    s.u8(sl.in_use ? sl.bus : 0xFF);
    s.u8(sl.in_use ? sl.devfn : 0xFF);
    structs.push_back(s.finish());
  }
  for (std::size_t n = 0; n < hw.nodes.size(); ++n) {
    const auto& node = hw.nodes[n];
    const auto plan = DcdbasSmbios::plan_dimms(node.size_kib, hw.dimm_slots_per_node);
    const auto array_handle = static_cast<std::uint16_t>(0x1000 + n);
    {
      Structure s(16, array_handle);
      s.u8(0x03);         // location: system board
      s.u8(0x03);         // use: system memory
      s.u8(0x06);         // multi-bit ECC
      s.u32(0x80000000);  // maximum capacity: see the extended field
      s.u16(0xFFFE);      // no error information
      s.u16(static_cast<std::uint16_t>(hw.dimm_slots_per_node));
      s.u64(std::uint64_t{hw.dimm_slots_per_node} * (64ULL << 30));  // 64 GiB per slot
      structs.push_back(s.finish());
    }
    for (unsigned d = 0; d < hw.dimm_slots_per_node; ++d) {
      const bool populated = d < plan.count;
      Structure s(17, static_cast<std::uint16_t>(0x1100 + n * 0x20 + d));
      s.u16(array_handle);
      s.u16(0xFFFE);                   // no error information
      s.u16(populated ? 72 : 0xFFFF);  // total width: 64 data + 8 ECC; unknown when empty
      s.u16(populated ? 64 : 0xFFFF);
      const std::uint64_t mb = populated ? plan.size_mb : 0;
      s.u16(mb < 0x7FFF ? static_cast<std::uint16_t>(mb) : 0x7FFF);  // 0: no module installed
      s.u8(0x09);                                                    // DIMM
      s.u8(0);                                                       // not part of a set
      s.str(fmt::format("{}{}", static_cast<char>('A' + n % 26), d + 1));
      s.str("");
      s.u8(populated ? 0x1A : 0x02);       // DDR4 / unknown
      s.u16(populated ? 0x2080 : 0x0004);  // synchronous registered / unknown
      s.u16(static_cast<std::uint16_t>(populated ? hw.memory_speed_mts : 0));
      s.str(populated ? "00CE00B300CE" : "");  // Samsung (JEDEC id as Dell firmware shows it)
      s.str(populated ? fmt::format("{}{:02X}{:02X}", service_tag, n, d) : "");
      s.str("");
      s.str("");                                                 // part number
      s.u8(populated ? 2 : 0);                                   // rank
      s.u32(static_cast<std::uint32_t>(mb >= 0x7FFF ? mb : 0));  // extended size, MB
      s.u16(static_cast<std::uint16_t>(populated ? hw.memory_speed_mts : 0));
      s.u16(populated ? 1200 : 0);  // minimum, maximum, configured voltage (mV)
      s.u16(populated ? 1200 : 0);
      s.u16(populated ? 1200 : 0);
      structs.push_back(s.finish());
    }
    if (node.size_kib == 0) continue;
    Structure s(19, static_cast<std::uint16_t>(0x1300 + n));
    const std::uint64_t start_kib = node.start_bytes / 1024;
    const std::uint64_t end_kib = start_kib + node.size_kib - 1;
    const bool extended = end_kib >= 0xFFFFFFFF;
    s.u32(extended ? 0xFFFFFFFF : static_cast<std::uint32_t>(start_kib));
    s.u32(extended ? 0xFFFFFFFF : static_cast<std::uint32_t>(end_kib));
    s.u16(array_handle);
    s.u8(static_cast<std::uint8_t>(plan.count));  // partition width
    s.u64(extended ? node.start_bytes : 0);
    s.u64(extended ? node.start_bytes + node.size_kib * 1024 - 1 : 0);
    structs.push_back(s.finish());
  }
  {
    Structure s(32, 0x2000);  // system boot information
    for (int k = 0; k < 6; ++k) s.u8(0);
    s.u8(0);  // no errors detected
    structs.push_back(s.finish());
  }
}

// hvmloader's tables (xen tools/firmware/hvmloader/smbios.c
// write_smbios_tables, no pass-through tables and no xenstore
// bios-strings): the structures' lengths are smbios_types.h's, so fields
// past them (type 4's cache handles, type 17's speed) are absent.
static void add_hvmloader(std::vector<std::vector<std::uint8_t>>& structs, const SmbiosIdentity& id,
                          const SmbiosHardware& hw) {
  const auto [rel_major, rel_minor] = bios_release_of(id.bios_version);
  {
    Structure s(0, 0x0000);  // smbios_type_0_init
    s.str(id.bios_vendor);
    s.str(id.bios_version);
    s.u16(0xE800);  // starting address segment
    s.str(id.bios_date);
    s.u8(0);                         // ROM size
    s.u64(0x80ULL | 0x08ULL << 16);  // characteristics: PCI, EDD
    s.u8(0);
    s.u8(0x04);  // extension byte 2: targeted content distribution
    s.u8(static_cast<std::uint8_t>(rel_major));
    s.u8(static_cast<std::uint8_t>(rel_minor));
    s.u8(0xFF);  // no embedded controller
    s.u8(0xFF);
    structs.push_back(s.finish());
  }
  {
    Structure s(1, 0x0100);  // smbios_type_1_init
    s.str(id.sys_vendor);
    s.str(id.product_name);
    s.str(id.product_version);
    s.str(id.product_serial);
    const auto u = uuid_bytes(id.product_uuid, id.smbios_minor >= 6);
    s.raw(u.data(), u.size());
    s.u8(0x06);  // wake-up type: power switch
    s.u8(0);     // SKU: none
    s.u8(0);     // family: none
    structs.push_back(s.finish());
  }
  {
    Structure s(3, 0x0300);  // smbios_type_3_init
    s.str(id.chassis_vendor);
    s.u8(static_cast<std::uint8_t>(id.chassis_type));
    s.u8(0);  // version, serial, asset tag: none
    s.u8(0);
    s.u8(0);
    s.u8(0x03);  // boot-up, power supply, thermal state: safe
    s.u8(0x03);
    s.u8(0x03);
    s.u8(0x02);  // security: unknown
    structs.push_back(s.finish());
  }
  for (unsigned cpu = 1; cpu <= hw.vcpus; ++cpu) {
    Structure s(4, static_cast<std::uint16_t>(0x0400 + cpu));  // smbios_type_4_init
    s.str(fmt::format("CPU {}", cpu));
    s.u8(0x03);                     // central processor
    s.u8(0x01);                     // family: other
    s.str("Intel");                 // get_cpu_manufacturer: CPUID 0 "GenuineIntel"
    s.u32(hw.processor_signature);  // cpuid(1): EAX, then EDX
    s.u32(0xBFEBFBFF);
    s.u8(0);                                                  // version: none
    s.u8(0);                                                  // voltage
    s.u16(0);                                                 // external clock
    s.u16(static_cast<std::uint16_t>(hw.current_speed_mhz));  // get_cpu_mhz(), both
    s.u16(static_cast<std::uint16_t>(hw.current_speed_mhz));
    s.u8(0x41);  // socket populated, CPU enabled
    s.u8(0x01);  // upgrade: other
    structs.push_back(s.finish());
  }
  {
    Structure s(11, 0x0B00);  // smbios_type_11_init: at least one string
    s.u8(1);
    std::vector<std::uint8_t> out = s.finish();
    out.resize(out.size() - 2);
    for (char c : std::string_view("Xen")) out.push_back(static_cast<std::uint8_t>(c));
    out.push_back(0);
    out.push_back(0);
    structs.push_back(out);
  }
  // get_memsize() in MB; each memory device covers up to 16 GiB.
  std::uint64_t kib = 0;
  for (const auto& n : hw.nodes) kib += n.size_kib;
  const std::uint64_t memsize = (kib + 1023) / 1024;
  const std::uint64_t devs = (memsize + 0x3FFF) >> 14;
  {
    Structure s(16, 0x1000);                            // smbios_type_16_init
    s.u8(0x01);                                         // location: other
    s.u8(0x03);                                         // use: system memory
    s.u8(0x06);                                         // multi-bit ECC
    s.u32(static_cast<std::uint32_t>(memsize * 1024));  // maximum capacity, KiB
    s.u16(0xFFFE);
    s.u16(static_cast<std::uint16_t>(devs));
    structs.push_back(s.finish());
  }
  for (std::uint64_t i = 0; i < devs; ++i) {
    const std::uint64_t mb = (i == devs - 1 && (memsize & 0x3FFF)) ? memsize & 0x3FFF : 0x4000;
    {
      Structure s(17, static_cast<std::uint16_t>(0x1100 + i));  // smbios_type_17_init
      s.u16(0x1000);
      s.u16(0);   // error information handle: 0 (memset)
      s.u16(64);  // total and data width
      s.u16(64);
      s.u16(static_cast<std::uint16_t>(mb));
      s.u8(0x09);  // DIMM
      s.u8(0);
      s.str(fmt::format("DIMM {}", i));
      s.u8(0);     // bank locator: none
      s.u8(0x07);  // RAM
      s.u16(0);
      structs.push_back(s.finish());
    }
    const auto start = static_cast<std::uint32_t>(i << 24);  // KiB
    const auto end = static_cast<std::uint32_t>(start + (mb << 10) - 1);
    {
      Structure s(19, static_cast<std::uint16_t>(0x1300 + i));  // smbios_type_19_init
      s.u32(start);
      s.u32(end);
      s.u16(0x1000);
      s.u8(1);
      structs.push_back(s.finish());
    }
    {
      Structure s(20, static_cast<std::uint16_t>(0x1400 + i));  // smbios_type_20_init
      s.u32(start);
      s.u32(end);
      s.u16(static_cast<std::uint16_t>(0x1100 + i));
      s.u16(static_cast<std::uint16_t>(0x1300 + i));
      s.u8(1);  // partition row position
      s.u8(0);
      s.u8(0);
      structs.push_back(s.finish());
    }
  }
  {
    Structure s(32, 0x2000);  // smbios_type_32_init
    for (int k = 0; k < 6; ++k) s.u8(0);
    s.u8(0);  // no errors detected
    structs.push_back(s.finish());
  }
}

DcdbasSmbios::DcdbasSmbios(SmbiosIdentity id, const BiosConfig& bios, SmbiosHardware hw)
    : id_(std::move(id)), hw_(std::move(hw)), bios_(bios) {
  auto t = make_tables(bios.service_tag, bios.asset_tag);
  core::MutexLock lock(mu_);
  tables_ = std::move(t);
}

void DcdbasSmbios::boot(std::string service_tag, std::string asset_tag) {
  auto t = make_tables(std::move(service_tag), std::move(asset_tag));
  core::MutexLock lock(mu_);
  tables_ = std::move(t);
}

std::shared_ptr<const DcdbasSmbios::Tables> DcdbasSmbios::tables() const {
  core::MutexLock lock(mu_);
  return tables_;
}

// Dell's BIOS: types 0 to 4, 7, 9, 11, 16, 17, 19, 32 and Dell's 0xD0,
// 0xDA and 0xD4, with the tags of this boot.
void DcdbasSmbios::add_dell(std::vector<std::vector<std::uint8_t>>& structs,
                            const Tables& tb) const {
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
    s.str(tb.service_tag);
    const auto u = uuid_bytes(id_.product_uuid, id_.smbios_minor >= 6);
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
    s.str(tb.service_tag);
    s.str(tb.asset_tag);
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
  add_hardware(structs, hw_, tb.service_tag);
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
    s.u8(static_cast<std::uint8_t>(bios_.dell_smbios_version));
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
      s.u16(bios_.cmd_port);
      s.u8(bios_.cmd_code);
      s.u32(supported);
      for (std::size_t n = 0; n < 38 && i < bios_.tokens.size(); ++n, ++i) {
        s.u16(bios_.tokens[i].id);
        s.u16(bios_.tokens[i].location);
        s.u16(bios_.tokens[i].value);
      }
      s.u16(0xFFFF);  // TokenTypeEOT
      s.u16(0);
      s.u16(0);
      structs.push_back(s.finish());
    } while (i < bios_.tokens.size());
  }
  {
    // Indexed I/O (CMOS) tokens, one structure per index/data port pair,
    // no checksum range (all three checksum fields 0).
    std::vector<std::pair<std::uint16_t, std::uint16_t>> pairs;
    for (const auto& t : bios_.cmos_tokens)
      if (std::find(pairs.begin(), pairs.end(), std::make_pair(t.index_port, t.data_port)) == pairs.end())
        pairs.emplace_back(t.index_port, t.data_port);
    std::uint16_t handle = 0xD400;
    for (const auto& [ip, dp] : pairs) {
      std::vector<const CmosToken*> mine;
      for (const auto& t : bios_.cmos_tokens)
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
}

std::shared_ptr<const DcdbasSmbios::Tables> DcdbasSmbios::make_tables(std::string service_tag,
                                                                      std::string asset_tag) const {
  auto tb = std::make_shared<Tables>();
  tb->service_tag = std::move(service_tag);
  tb->asset_tag = std::move(asset_tag);
  std::vector<std::vector<std::uint8_t>> structs;
  if (id_.firmware == SmbiosIdentity::Firmware::XenHvmloader) {
    tb->product_serial = id_.product_serial;
    add_hvmloader(structs, id_, hw_);
  } else {
    tb->product_serial = tb->service_tag;
    tb->chassis_serial = tb->service_tag;
    add_dell(structs, *tb);
  }
  {
    Structure s(127, 0x7F00);  // end of table
    structs.push_back(s.finish());
  }
  return finish_tables(std::move(tb), structs);
}

std::shared_ptr<const DcdbasSmbios::Tables> DcdbasSmbios::finish_tables(
    std::shared_ptr<Tables> tb, const std::vector<std::vector<std::uint8_t>>& structs) const {
  std::size_t max_size = 0;
  for (const auto& s : structs) {
    tb->table.insert(tb->table.end(), s.begin(), s.end());
    max_size = std::max(max_size, s.size());
  }

  // The 32-bit entry point (SMBIOS 2.1 to 2.8 share its layout).
  tb->entry.assign(0x1F, 0);
  std::memcpy(tb->entry.data(), "_SM_", 4);
  tb->entry[5] = 0x1F;
  tb->entry[6] = static_cast<std::uint8_t>(id_.smbios_major);
  tb->entry[7] = static_cast<std::uint8_t>(id_.smbios_minor);
  tb->entry[8] = static_cast<std::uint8_t>(max_size);
  tb->entry[9] = static_cast<std::uint8_t>(max_size >> 8);
  std::memcpy(tb->entry.data() + 0x10, "_DMI_", 5);
  tb->entry[0x16] = static_cast<std::uint8_t>(tb->table.size());
  tb->entry[0x17] = static_cast<std::uint8_t>(tb->table.size() >> 8);
  for (int k = 0; k < 4; ++k)
    tb->entry[0x18 + k] = static_cast<std::uint8_t>(kTableAddress >> (8 * k));
  tb->entry[0x1C] = static_cast<std::uint8_t>(structs.size());
  tb->entry[0x1D] = static_cast<std::uint8_t>(structs.size() >> 8);
  tb->entry[0x1E] =
      static_cast<std::uint8_t>(id_.smbios_major << 4 | id_.smbios_minor);  // BCD revision
  std::uint8_t sum = 0;
  for (int k = 0x10; k < 0x1F; ++k) sum = static_cast<std::uint8_t>(sum + tb->entry[k]);
  tb->entry[0x15] = static_cast<std::uint8_t>(-sum);
  sum = 0;
  for (auto b : tb->entry) sum = static_cast<std::uint8_t>(sum + b);
  tb->entry[4] = static_cast<std::uint8_t>(-sum);
  return tb;
}

std::span<const core::AttributeGroup<Smb>> DcdbasSmbios::table_groups() { return kTableGroups; }
std::span<const core::AttributeGroup<Smb>> DcdbasSmbios::id_groups() { return kIdGroups; }

core::Result<std::size_t> DcdbasSmbios::smbios_entry_point_read(const core::Caller&, std::uint64_t pos,
                                                               std::span<char> out) {
  return slice(tables()->entry, pos, out);
}

core::Result<std::size_t> DcdbasSmbios::DMI_read(const core::Caller&, std::uint64_t pos, std::span<char> out) {
  return slice(tables()->table, pos, out);
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
VSYSFS_DMI_FIELD(product_serial, tables()->product_serial)
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
VSYSFS_DMI_FIELD(chassis_serial, tables()->chassis_serial)
VSYSFS_DMI_FIELD(chassis_asset_tag, tables()->asset_tag)
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
  // A field the tables lack is left out (no type 2: no rvn, rn, rvr).
  std::string board;
  if (id_.firmware != SmbiosIdentity::Firmware::XenHvmloader)
    board = fmt::format("rvn{}:rn{}:rvr{}:", alias_field(id_.board_vendor),
                        alias_field(id_.board_name), alias_field(id_.board_version));
  return fmt::format(
      "dmi:bvn{}:bvr{}:bd{}:{}svn{}:pn{}:pvr{}:{}cvn{}:ct{}:cvr{}:sku{}:",
      alias_field(id_.bios_vendor), alias_field(id_.bios_version), alias_field(id_.bios_date), br,
      alias_field(id_.sys_vendor), alias_field(id_.product_name), alias_field(id_.product_version),
      board, alias_field(id_.chassis_vendor), id_.chassis_type, "", alias_field(id_.product_sku));
}

void add_dmi(MachineContext& ctx, const std::shared_ptr<DcdbasSmbios>& smbios) {
  ctx.tree.add_device<DcdbasSmbios>("firmware/dmi/tables", smbios, DcdbasSmbios::table_groups());
  ctx.tree.add_device<DcdbasSmbios>("devices/virtual/dmi/id", smbios, DcdbasSmbios::id_groups());
  ctx.tree.mkdir_p("class/dmi");
  ctx.tree.add_symlink("class/dmi/id", "../../devices/virtual/dmi/id");
  ctx.tree.add_symlink("devices/virtual/dmi/id/subsystem", "../../../../class/dmi");
  ctx.machine.keep(smbios);
}

}  // namespace vsysfs::devices::dcdbas
