#pragma once

// /sys/hypervisor on a Xen guest, as drivers/xen/sys-hypervisor.c (6.12)
// fills hypervisor_kobj when xen_domain(): every value is what the
// simulated hypervisor answers to HYPERVISOR_xen_version (XENVER_*) for
// this domain, taken from the machine file ([xen.hypervisor]) with the
// defaults of a Xen 4.17 host (docs/devices/xen.md). Reference:
// docs/kernel-semantics.md section 3.8.
//
//   file (hypervisor/)          mode  format (sys-hypervisor.c)
//   type                        0444  "xen\n"
//   guest_type                  0444  "%s\n": PV, HVM or PVH
//   uuid                        0444  "%pU\n" of XENVER_guest_handle
//   version/major               0444  "%d\n" version >> 16
//   version/minor               0444  "%d\n" version & 0xff (QUIRK: the
//                                     hypervisor's minor is 16 bits; the
//                                     kernel keeps 8)
//   version/extra               0444  "%s\n" XENVER_extraversion
//   compilation/compiler        0444  "%s\n"
//   compilation/compiled_by     0444  "%s\n"
//   compilation/compile_date    0444  "%s\n"
//   properties/capabilities     0444  "%s\n"
//   properties/changeset        0444  "%s\n"
//   properties/virtual_start    0444  "%lx\n" (PRI_xen_ulong on x86)
//   properties/pagesize         0444  "%x\n"
//   properties/features         0444  "%08x" per submap (XENFEAT_NR_SUBMAPS
//                                     = 1), then "\n"
//   properties/buildid          0444  raw bytes, no newline; "<denied>"
//                                     (no newline) when XSM denies
//                                     XENVER_build_id, as it does for
//                                     every domain but the hardware domain
//   start_flags/privileged      0444  "0\n" / "1\n" (SIF_PRIVILEGED)
//   start_flags/initdomain      0444  (SIF_INITDOMAIN)
//   start_flags/unknownNN       0444  bits 2..31 of xen_start_flags
// A [xen] domid of 0 is the hardware domain (machines/default.toml):
// guest_type PV by default (HVM refused: Xen builds dom0 PV or PVH),
// privileged and initdomain set, the build id readable, the null uuid.
// pmu/ (CONFIG_XEN_HAVE_VPMU: xen_pmu_init, only when xen_initial_domain(),
// i.e. SIF_INITDOMAIN in start_flags) is XenPmu below.
//
// Thread-safety: every value is fixed at construction; no lock.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/config.hpp"
#include "core/env.hpp"
#include "core/page_buffer.hpp"
#include "core/result.hpp"

namespace vsysfs::devices {

struct MachineContext;  // devices/machine/machine.hpp
class XenHypervisor;    // devices/xen/xen_balloon_hypervisor.hpp

class XenSysHypervisor {
 public:
  struct Info {
    std::string guest_type = "HVM";
    std::array<std::uint8_t, 16> uuid{};
    std::uint32_t major = 4;
    std::uint32_t minor = 17;  // XENVER_version: (major << 16) | minor
    std::string extra = ".3";
    std::string compiler;
    std::string compiled_by;
    std::string compile_date;
    std::string capabilities;
    std::string changeset;
    std::uint64_t virtual_start = 0;
    std::uint32_t pagesize = 0x1000;
    std::uint32_t features = 0;
    bool buildid_denied = true;
    std::string buildid;  // raw bytes
    std::uint32_t start_flags = 0;
    // The hypervisor's vPMU at boot (Xen's vpmu= option; off by default).
    bool vpmu = false;
    std::uint32_t vpmu_features = 0;
  };

  static constexpr std::uint32_t kSifInitdomain = 1U << 1;  // SIF_INITDOMAIN

  explicit XenSysHypervisor(Info info) : info_(std::move(info)) {}

  // [xen.hypervisor] of the machine file (may be absent): the values for a
  // guest with domain id `domid`. Throws ConfigError on a bad value.
  static Info parse(const core::ConfigValue* sec, std::uint32_t domid,
                    std::string_view guest_name);

  static std::span<const core::AttributeGroup<XenSysHypervisor>> groups();

  // The handle as "%pU" prints it (lower-case 8-4-4-4-12, byte order).
  static std::string uuid_text(const std::array<std::uint8_t, 16>& u);
  // hvmloader's "major.minor" + extraversion ("4.17.3"): SMBIOS's BIOS and
  // system version.
  static std::string version_text(const Info& info);

  // Locking: none (immutable). Context: FUSE worker.
  core::Status type_show(core::PageBuffer& buf) const;
  core::Status guest_type_show(core::PageBuffer& buf) const;
  core::Status uuid_show(core::PageBuffer& buf) const;
  core::Status major_show(core::PageBuffer& buf) const;
  core::Status minor_show(core::PageBuffer& buf) const;
  core::Status extra_show(core::PageBuffer& buf) const;
  core::Status compiler_show(core::PageBuffer& buf) const;
  core::Status compiled_by_show(core::PageBuffer& buf) const;
  core::Status compile_date_show(core::PageBuffer& buf) const;
  core::Status capabilities_show(core::PageBuffer& buf) const;
  core::Status changeset_show(core::PageBuffer& buf) const;
  core::Status virtual_start_show(core::PageBuffer& buf) const;
  core::Status pagesize_show(core::PageBuffer& buf) const;
  core::Status features_show(core::PageBuffer& buf) const;
  core::Status buildid_show(core::PageBuffer& buf) const;
  // kernel: flag_show with hyp_attr_value = 1 << Bit.
  template <unsigned Bit>
  core::Status flag_show(core::PageBuffer& buf) const {
    buf.emit("{}\n", (info_.start_flags >> Bit) & 1U);
    return {};
  }

 private:
  const Info info_;
};

// hypervisor/pmu/ of the initial domain (drivers/xen/sys-hypervisor.c,
// CONFIG_XEN_HAVE_VPMU), over the simulated hypervisor's vPMU
// (XenHypervisor::xenpmu_*):
//
//   file           mode  show / store
//   pmu_mode       0644  "%s\n" of off/self/hv/all (XENPMU_mode_get; a
//                        mode outside the table is EINVAL); store: the
//                        first name with strncmp(buf, name, len - 1) == 0
//                        (QUIRK: a prefix selects, "o\n" is off, an empty
//                        line is off), none: EINVAL, then XENPMU_mode_set's
//                        errno
//   pmu_features   0644  "0x%x\n" (XENPMU_feature_get); store kstrtou32(buf,
//                        0) (EINVAL, ERANGE), then XENPMU_feature_set's errno
//
// Every op is EOPNOTSUPP while Xen runs with vPMU off (its default) or
// for a PVH dom0 (has_vlapic). No capability check: the 0644 mode keeps
// writes to root. Locking: the hypervisor's (xen.hypervisor).
class XenPmu {
 public:
  XenPmu(core::Env& env, std::shared_ptr<XenHypervisor> hv, bool has_vlapic)
      : env_(env), hv_(std::move(hv)), has_vlapic_(has_vlapic) {}
  static std::span<const core::AttributeGroup<XenPmu>> groups();

  // Context: FUSE worker.
  core::Status pmu_mode_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> pmu_mode_store(const core::Caller& caller, std::string_view in);
  core::Status pmu_features_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> pmu_features_store(const core::Caller& caller, std::string_view in);

 private:
  core::Env& env_;
  const std::shared_ptr<XenHypervisor> hv_;
  const bool has_vlapic_;
};

// An HVM domU's firmware tables: hvmloader writes SMBIOS from the
// hypervisor's answers (XENVER_guest_handle, XENVER_version,
// XENVER_extraversion), the domain's vCPUs and memory; served by the one
// SMBIOS/DMI builder (devices/dell/dcdbas_smbios.hpp, Firmware::
// XenHvmloader). `memory_kib` is the guest's boot memory. From build_xen.
void add_hvmloader_dmi(MachineContext& ctx, const XenSysHypervisor::Info& info, unsigned vcpus,
                       std::uint64_t memory_kib);

}  // namespace vsysfs::devices
