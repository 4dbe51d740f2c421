// /sys/hypervisor of a Xen guest (see xen_sys_hypervisor.hpp).

#include "devices/xen/xen_sys_hypervisor.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "core/parse.hpp"
#include "devices/dell/dcdbas_smbios.hpp"
#include "devices/machine/machine.hpp"
#include "devices/xen/xen_balloon_hypervisor.hpp"

namespace vsysfs::devices {
namespace {

using H = XenSysHypervisor;

// drivers/xen/sys-hypervisor.c: type and guest_type on hypervisor_kobj,
// then the version, compilation and properties groups, uuid, start_flags.
constexpr core::DeviceAttribute<H> kTopAttrs[] = {
    VSYSFS_ATTR_RO(H, type),
    VSYSFS_ATTR_RO(H, guest_type),
    VSYSFS_ATTR_RO(H, uuid),
};
constexpr core::DeviceAttribute<H> kVersionAttrs[] = {
    VSYSFS_ATTR_RO(H, major),
    VSYSFS_ATTR_RO(H, minor),
    VSYSFS_ATTR_RO(H, extra),
};
constexpr core::DeviceAttribute<H> kCompileAttrs[] = {
    VSYSFS_ATTR_RO(H, compiler),
    VSYSFS_ATTR_RO(H, compiled_by),
    VSYSFS_ATTR_RO(H, compile_date),
};
constexpr core::DeviceAttribute<H> kPropertiesAttrs[] = {
    VSYSFS_ATTR_RO(H, capabilities),
    VSYSFS_ATTR_RO(H, changeset),
    VSYSFS_ATTR_RO(H, virtual_start),
    VSYSFS_ATTR_RO(H, pagesize),
    VSYSFS_ATTR_RO(H, features),
    VSYSFS_ATTR_RO(H, buildid),
};

// xen_sysfs_flags_init: one 0444 file per bit of xen_start_flags (32
// bits); the known ones by name (FLAG_NODE), the rest "unknown%02u".
constexpr std::string_view kFlagNames[32] = {
    "privileged", "initdomain", "unknown02", "unknown03", "unknown04", "unknown05",
    "unknown06",  "unknown07",  "unknown08", "unknown09", "unknown10", "unknown11",
    "unknown12",  "unknown13",  "unknown14", "unknown15", "unknown16", "unknown17",
    "unknown18",  "unknown19",  "unknown20", "unknown21", "unknown22", "unknown23",
    "unknown24",  "unknown25",  "unknown26", "unknown27", "unknown28", "unknown29",
    "unknown30",  "unknown31"};

template <std::size_t... Bits>
constexpr std::array<core::DeviceAttribute<H>, sizeof...(Bits)> flag_attrs(
    std::index_sequence<Bits...>) {
  return {core::DeviceAttribute<H>{kFlagNames[Bits], 0444, core::bind_show<H, &H::flag_show<Bits>>(),
                                   nullptr}...};
}
constexpr auto kFlagAttrs = flag_attrs(std::make_index_sequence<32>{});

constexpr core::AttributeGroup<H> kGroups[] = {
    {.name = "", .attrs = kTopAttrs},
    {.name = "version", .attrs = kVersionAttrs},
    {.name = "compilation", .attrs = kCompileAttrs},
    {.name = "properties", .attrs = kPropertiesAttrs},
    {.name = "start_flags", .attrs = kFlagAttrs},
};

// xen/include/public/version.h buffer sizes (each NUL-terminated).
constexpr std::size_t kExtraversionLen = 16;   // XEN_EXTRAVERSION_LEN
constexpr std::size_t kCompilerLen = 64;       // xen_compile_info.compiler
constexpr std::size_t kCompileByLen = 16;      // .compile_by
constexpr std::size_t kCompileDateLen = 32;    // .compile_date
constexpr std::size_t kCapabilitiesLen = 1024; // XEN_CAPABILITIES_INFO_LEN
constexpr std::size_t kChangesetLen = 64;      // XEN_CHANGESET_INFO_LEN

// xen/include/public/features.h
constexpr unsigned kFeatWritablePageTables = 0, kFeatAutoTranslatedPhysmap = 2,
                   kFeatMmuPtUpdatePreserveAd = 5, kFeatHighmemAssist = 6,
                   kFeatGnttabMapAvailBits = 7, kFeatHvmCallbackVector = 8,
                   kFeatHvmSafePvclock = 9, kFeatHvmPirqs = 10, kFeatDom0 = 11,
                   kFeatMemoryOpVnodeSupported = 13, kFeatNotDirectMapped = 16,
                   kFeatDirectMapped = 17;
// xen/include/public/xen.h
constexpr std::uint32_t kSifPrivileged = 1U << 0, kSifInitdomain = 1U << 1;

// XENVER_get_features submap 0 as Xen 4.17 (xen/common/kernel.c) builds it
// for a domain of this type; the hardware domain also gets XENFEAT_dom0.
std::uint32_t xen417_features(std::string_view type, bool hardware_domain) {
  std::uint32_t f = 1U << kFeatMemoryOpVnodeSupported;
  const bool translated = type != "PV";  // paging_mode_translate
  if (translated) f |= (1U << kFeatWritablePageTables) | (1U << kFeatAutoTranslatedPhysmap);
  if (hardware_domain) f |= 1U << kFeatDom0;
  if (type == "PV") {
    f |= (1U << kFeatMmuPtUpdatePreserveAd) | (1U << kFeatHighmemAssist) |
         (1U << kFeatGnttabMapAvailBits);
  } else {
    // HVM guests built by libxl have emulated PIRQs (has_pirq); PVH not.
    f |= (1U << kFeatHvmSafePvclock) | (1U << kFeatHvmCallbackVector) |
         (type == "HVM" ? 1U << kFeatHvmPirqs : 0);
  }
  f |= translated ? 1U << kFeatNotDirectMapped : 1U << kFeatDirectMapped;
  return f;
}

std::string bounded(const core::ConfigValue* sec, std::string_view key, std::string fallback,
                    std::size_t buffer_len) {
  if (!sec) return fallback;
  const core::ConfigValue* v = sec->find(key);
  if (!v) return fallback;
  const std::string& s = v->as_string();
  if (s.size() >= buffer_len)
    v->fail(fmt::format("at most {} bytes (Xen's buffer is {} with its NUL)", buffer_len - 1,
                        buffer_len));
  if (s.find('\0') != std::string::npos) v->fail("no NUL bytes");
  return s;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Bytes from a hex string (two digits a byte; '-' ignored for UUIDs).
bool parse_hex(std::string_view s, std::string& out, bool allow_dash) {
  out.clear();
  int hi = -1;
  for (char c : s) {
    if (allow_dash && c == '-') continue;
    const int d = hex_digit(c);
    if (d < 0) return false;
    if (hi < 0) {
      hi = d;
    } else {
      out.push_back(static_cast<char>(hi * 16 + d));
      hi = -1;
    }
  }
  return hi < 0;
}

}  // namespace

std::span<const core::AttributeGroup<XenSysHypervisor>> XenSysHypervisor::groups() {
  return kGroups;
}

XenSysHypervisor::Info XenSysHypervisor::parse(const core::ConfigValue* sec, std::uint32_t domid,
                                               std::string_view guest_name) {
  Info info;
  const bool hardware_domain = domid == 0;
  // Xen 4.17 builds dom0 PV (the default) or PVH (dom0=pvh), never HVM.
  if (hardware_domain) info.guest_type = "PV";
  if (sec) {
    if (const core::ConfigValue* v = sec->find("guest_type")) {
      info.guest_type = v->as_string();
      if (info.guest_type != "HVM" && info.guest_type != "PV" && info.guest_type != "PVH")
        v->fail("expected \"HVM\", \"PV\" or \"PVH\"");
      if (hardware_domain && info.guest_type == "HVM")
        v->fail("domid 0 is the hardware domain, which Xen builds PV or PVH, never HVM");
    }
  }
  // uuid: the domain handle. dom0's is null: Xen's create_dom0
  // (xen/arch/x86/setup.c) passes a dom0_cfg whose handle it never sets,
  // and domain_create (xen/common/domain.c) copies config->handle, so
  // `xl list -v` shows 00000000-0000-0000-0000-000000000000. Others: a stable
  // version-4 style UUID made from the guest's name and domid (FNV-1a),
  // so two machines differ.
  std::string uuid_bytes;
  if (const core::ConfigValue* v = sec ? sec->find("uuid") : nullptr) {
    const std::string& s = v->as_string();
    if (s.size() != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' ||
        !parse_hex(s, uuid_bytes, true) || uuid_bytes.size() != 16)
      v->fail("expected a UUID like \"f5e3a6c2-1b7d-4e0a-9c8f-2d4b6a8e0c1f\"");
  } else if (hardware_domain) {
    uuid_bytes.assign(16, '\0');
  } else {
    std::uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    for (char c : fmt::format("{}/{}", guest_name, domid)) {
      h1 = (h1 ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
      h2 = (h2 ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    }
    for (int i = 0; i < 8; ++i) uuid_bytes.push_back(static_cast<char>(h1 >> (8 * i)));
    for (int i = 0; i < 8; ++i) uuid_bytes.push_back(static_cast<char>(h2 >> (8 * i)));
    uuid_bytes[6] = static_cast<char>((uuid_bytes[6] & 0x0f) | 0x40);
    uuid_bytes[8] = static_cast<char>((uuid_bytes[8] & 0x3f) | 0x80);
  }
  for (std::size_t i = 0; i < 16; ++i) info.uuid[i] = static_cast<std::uint8_t>(uuid_bytes[i]);

  // version = "MAJOR.MINOR[EXTRA]", like xl info's xen_version.
  if (const core::ConfigValue* v = sec ? sec->find("version") : nullptr) {
    const std::string& s = v->as_string();
    std::size_t pos = 0;
    auto number = [&](std::uint32_t max) -> std::uint32_t {
      std::uint64_t n = 0;
      const std::size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && n <= max)
        n = n * 10 + static_cast<std::uint64_t>(s[pos++] - '0');
      if (pos == start || n > max) v->fail("expected MAJOR.MINOR[EXTRA], like \"4.17.3\"");
      return static_cast<std::uint32_t>(n);
    };
    info.major = number(0x7fff);  // version >> 16 of a positive int
    if (pos >= s.size() || s[pos] != '.') v->fail("expected MAJOR.MINOR[EXTRA], like \"4.17.3\"");
    ++pos;
    info.minor = number(0xffff);
    info.extra = s.substr(pos);
    if (info.extra.size() >= kExtraversionLen)
      v->fail(fmt::format("extra version at most {} bytes", kExtraversionLen - 1));
  }
  // Debian 12's Xen 4.17 build.
  info.compiler = bounded(sec, "compiler", "gcc (Debian 12.2.0-14) 12.2.0", kCompilerLen);
  info.compiled_by = bounded(sec, "compiled_by", "pkg-xen-devel", kCompileByLen);
  info.compile_date =
      bounded(sec, "compile_date", "Thu Jan 30 12:22:41 UTC 2025", kCompileDateLen);
  // arch_get_xen_caps on a host with PV64 and HVM (PV32 off, the default).
  info.capabilities = bounded(sec, "capabilities",
                              "xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64",
                              kCapabilitiesLen);
  info.changeset =
      bounded(sec, "changeset", "Tue Jan 28 09:39:14 2025 +0100 git:57d5fc7f5f", kChangesetLen);
  // XENVER_platform_parameters: HYPERVISOR_VIRT_START for a 64-bit PV
  // guest, 0 for a translated (HVM, PVH) one.
  info.virtual_start = info.guest_type == "PV" ? 0xffff800000000000ULL : 0;
  if (sec) info.virtual_start = sec->get_uint("virtual_start", info.virtual_start);
  info.features = xen417_features(info.guest_type, hardware_domain);
  if (const core::ConfigValue* v = sec ? sec->find("features") : nullptr) {
    if (v->as_uint() > 0xffffffffULL) v->fail("a 32-bit submap");
    info.features = static_cast<std::uint32_t>(v->as_uint());
  }
  // XSM's default policy gives XENVER_build_id to the hardware domain only.
  info.buildid_denied = !hardware_domain;
  if (const core::ConfigValue* v = sec ? sec->find("buildid") : nullptr) {
    if (!parse_hex(v->as_string(), info.buildid, false) || info.buildid.empty() ||
        info.buildid.size() > 4095)
      v->fail("expected the build id as hex digits (at most a page)");
  } else {
    parse_hex("9b1c4f2e7a30d58c6e21f0b4a7d93c5e18f26a04", info.buildid, false);
  }
  // start_info flags: the initial domain is privileged and the init domain.
  info.start_flags = hardware_domain ? kSifPrivileged | kSifInitdomain : 0;
  if (const core::ConfigValue* v = sec ? sec->find("start_flags") : nullptr) {
    if (v->as_uint() > 0xffffffffULL) v->fail("a 32-bit flags word");
    info.start_flags = static_cast<std::uint32_t>(v->as_uint());
  }
  // Xen's `vpmu=` option (parse_vpmu_params): a comma list of a boolean
  // and the features bts, ipc, arch (which imply vpmu=1).
  if (const core::ConfigValue* v = sec ? sec->find("vpmu") : nullptr) {
    const std::string& s = v->as_string();
    std::size_t pos = 0;
    while (pos <= s.size()) {
      const std::size_t end = std::min(s.find(',', pos), s.size());
      const std::string item = s.substr(pos, end - pos);
      if (item == "1" || item == "on" || item == "yes" || item == "true" || item == "enable")
        info.vpmu = true;
      else if (item == "0" || item == "off" || item == "no" || item == "false" || item == "disable")
        info.vpmu = false, info.vpmu_features = 0;
      else if (item == "bts")
        info.vpmu_features |= 1;
      else if (item == "ipc")
        info.vpmu_features |= 2;
      else if (item == "arch")
        info.vpmu_features |= 4;
      else
        v->fail("expected Xen's vpmu= list: on/off (1/0, yes/no, ...), bts, ipc, arch");
      pos = end + 1;
    }
    if (info.vpmu_features) info.vpmu = true;
  }
  return info;
}

core::Status XenSysHypervisor::type_show(core::PageBuffer& buf) const {
  buf.append("xen\n");
  return {};
}

core::Status XenSysHypervisor::guest_type_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.guest_type);
  return {};
}

// "%pU": lower-case 8-4-4-4-12 in byte order (lib/vsprintf.c uuid_string,
// big-endian form).
std::string XenSysHypervisor::uuid_text(const std::array<std::uint8_t, 16>& u) {
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
      u[15]);
}

core::Status XenSysHypervisor::uuid_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", uuid_text(info_.uuid));
  return {};
}

// hvm_write_smbios_tables: itoa(major) "." itoa((uint16_t)version) extra.
std::string XenSysHypervisor::version_text(const Info& info) {
  return fmt::format("{}.{}{}", info.major & 0xFFFF, info.minor & 0xFFFF, info.extra);
}

namespace {

// hvmloader's __SMBIOS_DATE__ is the date of its build (Makefile:
// SMBIOS_REL_DATE ?= $(shell date +%m/%d/%Y)), built with the hypervisor:
// compile_date "Thu Jan 30 12:22:41 UTC 2025" -> "01/30/2025". A date in
// another form is taken as it is.
std::string smbios_date_of(const std::string& compile_date) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char month[4] = {};
  unsigned day = 0, year = 0;
  if (std::sscanf(compile_date.c_str(), "%*3s %3s %u %*u:%*u:%*u %*s %u", month, &day, &year) == 3)
    for (int m = 0; m < 12; ++m)
      if (std::strcmp(month, kMonths[m]) == 0)
        return fmt::format("{:02}/{:02}/{}", m + 1, day, year);
  return compile_date;
}

}  // namespace

namespace {

constexpr core::DeviceAttribute<XenPmu> kPmuAttrs[] = {
    VSYSFS_ATTR_RW(XenPmu, pmu_mode),
    VSYSFS_ATTR_RW(XenPmu, pmu_features),
};
constexpr core::AttributeGroup<XenPmu> kPmuGroups[] = {{.name = "", .attrs = kPmuAttrs}};

// pmu_modes[] of sys-hypervisor.c, in its order.
struct PmuMode {
  const char* name;
  std::uint32_t mode;
};
constexpr PmuMode kPmuModes[] = {{"off", XenHypervisor::kPmuModeOff},
                                 {"self", XenHypervisor::kPmuModeSelf},
                                 {"hv", XenHypervisor::kPmuModeHv},
                                 {"all", XenHypervisor::kPmuModeAll}};

}  // namespace

std::span<const core::AttributeGroup<XenPmu>> XenPmu::groups() { return kPmuGroups; }

core::Status XenPmu::pmu_mode_show(core::PageBuffer& buf) const {
  std::uint32_t mode = 0;
  if (const long rc = hv_->xenpmu_mode_get(has_vlapic_, mode))
    return core::Errno{static_cast<int>(-rc)};
  for (const auto& m : kPmuModes)
    if (m.mode == mode) {
      buf.emit("{}\n", m.name);
      return {};
    }
  return core::Errno{EINVAL};
}

core::Result<std::size_t> XenPmu::pmu_mode_store(const core::Caller& caller, std::string_view in) {
  // strncmp(buffer, name, len - 1): the buffer ends at its first NUL.
  const std::string buf(in);
  const std::size_t n = in.empty() ? 0 : in.size() - 1;
  const PmuMode* found = nullptr;
  for (const auto& m : kPmuModes)
    if (std::strncmp(buf.c_str(), m.name, n) == 0) {
      found = &m;
      break;
    }
  long rc = found ? hv_->xenpmu_mode_set(has_vlapic_, found->mode) : -EINVAL;
  env_.log(&caller, "xen", "pmu_mode", rc ? core::errno_name(static_cast<int>(-rc)) : "OK",
           {{"mode", found ? found->name : ""}});
  if (rc) return core::Errno{static_cast<int>(-rc)};
  return in.size();
}

core::Status XenPmu::pmu_features_show(core::PageBuffer& buf) const {
  std::uint32_t f = 0;
  if (const long rc = hv_->xenpmu_feature_get(has_vlapic_, f))
    return core::Errno{static_cast<int>(-rc)};
  buf.emit("0x{:x}\n", f);
  return {};
}

core::Result<std::size_t> XenPmu::pmu_features_store(const core::Caller& caller,
                                                     std::string_view in) {
  const auto v = core::kstrtouint(in, 0);
  const long rc =
      v ? hv_->xenpmu_feature_set(has_vlapic_, *v) : -static_cast<long>(v.error().value());
  env_.log(&caller, "xen", "pmu_features", rc ? core::errno_name(static_cast<int>(-rc)) : "OK",
           {{"features", v ? static_cast<std::uint64_t>(*v) : 0}});
  if (rc) return core::Errno{static_cast<int>(-rc)};
  return in.size();
}

void add_hvmloader_dmi(MachineContext& ctx, const XenSysHypervisor::Info& info, unsigned vcpus,
                       std::uint64_t memory_kib) {
  using dcdbas::SmbiosIdentity;
  const std::string version = XenSysHypervisor::version_text(info);
  const std::string uuid = XenSysHypervisor::uuid_text(info.uuid);
  SmbiosIdentity id;
  id.firmware = SmbiosIdentity::Firmware::XenHvmloader;
  id.sys_vendor = "Xen";
  id.product_name = "HVM domU";
  id.product_version = version;
  id.product_serial = uuid;  // uuid_to_string(uuid) when no bios-strings
  id.product_uuid = uuid;
  id.product_sku.clear();
  id.product_family.clear();
  id.bios_vendor = "Xen";
  id.bios_version = version;
  id.bios_date = smbios_date_of(info.compile_date);
  id.chassis_vendor = "Xen";
  id.chassis_type = 1;  // other
  id.smbios_major = 2;  // smbios_entry_point_init: 2.4
  id.smbios_minor = 4;
  dcdbas::SmbiosHardware hw;
  hw.vcpus = vcpus;
  hw.nodes.push_back({0, memory_kib});
  dcdbas::add_dmi(ctx, std::make_shared<dcdbas::DcdbasSmbios>(std::move(id), dcdbas::BiosConfig{},
                                                              std::move(hw)));
}

// major_show/minor_show: a zero XENVER_version is -ENODEV.
core::Status XenSysHypervisor::major_show(core::PageBuffer& buf) const {
  if (info_.major == 0 && info_.minor == 0) return core::Errno{ENODEV};
  buf.emit("{}\n", info_.major);
  return {};
}

core::Status XenSysHypervisor::minor_show(core::PageBuffer& buf) const {
  if (info_.major == 0 && info_.minor == 0) return core::Errno{ENODEV};
  // QUIRK: version & 0xff: a minor of 256 or more loses its high byte.
  buf.emit("{}\n", info_.minor & 0xffU);
  return {};
}

core::Status XenSysHypervisor::extra_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.extra);
  return {};
}

core::Status XenSysHypervisor::compiler_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.compiler);
  return {};
}

core::Status XenSysHypervisor::compiled_by_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.compiled_by);
  return {};
}

core::Status XenSysHypervisor::compile_date_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.compile_date);
  return {};
}

core::Status XenSysHypervisor::capabilities_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.capabilities);
  return {};
}

core::Status XenSysHypervisor::changeset_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", info_.changeset);
  return {};
}

core::Status XenSysHypervisor::virtual_start_show(core::PageBuffer& buf) const {
  buf.emit("{:x}\n", info_.virtual_start);
  return {};
}

core::Status XenSysHypervisor::pagesize_show(core::PageBuffer& buf) const {
  buf.emit("{:x}\n", info_.pagesize);
  return {};
}

// features_show: submaps from XENFEAT_NR_SUBMAPS-1 down to 0, "%08x" each,
// then one '\n'.
core::Status XenSysHypervisor::features_show(core::PageBuffer& buf) const {
  buf.emit("{:08x}\n", info_.features);
  return {};
}

// buildid_show: "Build id is binary, not a string": the bytes as they
// are; -EPERM from XENVER_build_id reads as "<denied>" without a newline.
core::Status XenSysHypervisor::buildid_show(core::PageBuffer& buf) const {
  if (info_.buildid_denied) {
    buf.append("<denied>");
    return {};
  }
  buf.append(info_.buildid);
  return {};
}

}  // namespace vsysfs::devices
