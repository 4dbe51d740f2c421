#pragma once

// Dcdbas: the Dell Systems Management Base Driver, /sys/devices/platform/dcdbas/.
// Kernel: drivers/platform/x86/dell/dcdbas.c (modern, "5.6.0-3.4"; 2.6.18's
// drivers/firmware/dcdbas.c behaves the same for everything here).
// Behaviour: docs/kernel-semantics.md section 2 (2.1 attributes, 2.2
// buffer growth, 2.3 SMI request, 2.5 host control, 2.6 errnos).
//
//   file                       mode  format / parse
//   smi_data                   0600  bin, stat size 0: the SMI buffer bytes
//   smi_data_buf_phys_addr     0400  "%x\n" (32-bit, 0 with no buffer)
//   smi_data_buf_size          0600  "%lu\n"; simple_strtoul base 10, grow only
//   smi_request                0200  simple_strtoul base 10: 0 zero, 1 CI SMI, 2 raw SMI
//   host_control_action        0600  "%u\n"; grows the buffer to 198 first
//   host_control_smi_type      0600  "%u\n"; no validation
//   host_control_on_shutdown   0600  "%u\n"
//   uevent                     0644  DRIVER=, MODALIAS=; store: synthetic uevent
//   modalias                   0444  "platform:dcdbas\n"
//   driver_override            0644  "(null)\n" until set
//   power/control              0644  "auto"/"on" (runtime PM sysfs)
//   power/runtime_status       0444  "unsupported\n"
//   power/runtime_active_time  0444  "0\n"
//   power/runtime_suspended_time 0444 "0\n"
//   driver, subsystem          links to bus/platform/drivers/dcdbas, bus/platform
//
// The buffer is either grown with a new simulated DMA address below 4 GiB
// on every growth (dma_alloc_coherent), or, when the machine has ACPI WSMT,
// the firmware's fixed buffer (address+8, size pages*4096-8, which is then
// also the limit; dcdbas_check_wsmt).
//
// Machine description, [dcdbas] (every key optional):
//   model = "PowerEdge 1400"     host-control SMI type from dcdbas.txt's table
//   host_control_type = 0..3     override (0: the BIOS answers no APM SMI)
//   wsmt = true, wsmt_buffer_address = 0x6f7d5000, wsmt_buffer_pages = 16
//   smi_port = 0xb2, smi_code = 0xda      where the calling interface answers
//   dell_smbios_version = 2               >= 2: SMI buffers carry a length header
//   service_tag, asset_tag (<= 12 bytes), property_tag (<= 80)
//   sys_vendor, product_version, product_sku, product_family, product_uuid,
//   bios_vendor, bios_version, bios_date, board_name, board_version,
//   board_serial, chassis_type, system_id          (SMBIOS / class/dmi/id)
//   [[dcdbas.setting]]    location, value, battery, ac, min, max, name
//   [[dcdbas.token]]      id, location, value, name         (SMBIOS 0xDA)
//   [[dcdbas.cmos_token]] id, index_port, data_port, location, name, kind:
//                         "bool": and_mask, or_value, active; "string":
//                         length, value                    (SMBIOS 0xD4)
//   [[dcdbas.smi_answer]] class, select, input, output, result (the SMI
//                         answer table, docs/devices/dell.md)
// Control: kernel/debug/vsysfs/dcdbas/cmos (0600, 64 KiB, libsmbios's
// cmos.dat layout), kernel/debug/vsysfs/dcdbas/smi_answers (0600, the SMI
// answer table); machine/shutdown runs host control; the event log has
// every SMI (what "smi"), port access ("outb"/"inb") and host control step.
//
// Thread-safety: one mutex, smi_data_lock, serialises buffer (re)allocation,
// smi_data I/O, smi_request and host control, as in the driver; the
// simulated BIOS has its own lock, taken inside it.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/tree.hpp"
#include "devices/dell/dcdbas_bios.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::devices {

struct DcdbasConfig {
  bool wsmt = false;                        // ACPI WSMT with fixed comm buffers
  std::uint64_t wsmt_address = 0x6f7d5000;  // EPS smm_comm_buff_addr
  std::uint64_t wsmt_pages = 16;            // EPS num_of_4k_pages
};

class Dcdbas {
 public:
  // dcdbas.h
  static constexpr std::uint32_t kSmiCmdMagic = 0x534D4931;  // "SMI1"
  static constexpr std::size_t kSmiCmdSize = 17;              // sizeof(struct smi_cmd)
  static constexpr std::size_t kApmCmdSize = 198;             // sizeof(struct apm_cmd)
  static constexpr unsigned long kMaxSmiDataBufSize = 256 * 1024;
  static constexpr unsigned kHcActionPowerOff = 1u << 1;
  static constexpr unsigned kHcActionPowerCycle = 1u << 2;
  static constexpr unsigned kTimeoutUsecShortSemaBlocking = 10000;
  // Where the simulated dma_alloc_coherent hands out 32-bit addresses.
  static constexpr std::uint32_t kDmaBase = 0x3a400000;
  static constexpr std::uint32_t kDmaEnd = 0xbf000000;

  Dcdbas(core::Env& env, DcdbasConfig config, std::shared_ptr<dcdbas::DellBios> bios);
  Dcdbas(const Dcdbas&) = delete;
  Dcdbas& operator=(const Dcdbas&) = delete;

  static std::span<const core::AttributeGroup<Dcdbas>> groups();

  // Locking: smi_data_lock. Context: FUSE worker.
  core::Result<std::size_t> smi_data_read(const core::Caller& caller, std::uint64_t pos,
                                          std::span<char> out);
  core::Result<std::size_t> smi_data_write(const core::Caller& caller, std::uint64_t pos,
                                           std::span<const char> in);
  // The shows of the fields below are table lines (dcdbas.cpp, DCDBAS_SHOW).
  // Locking: smi_data_lock (the driver reads the u32 unlocked). Context: FUSE worker.
  core::Result<std::size_t> smi_data_buf_size_store(const core::Caller& caller, std::string_view in);
  // Locking: smi_data_lock, then bios_lock inside the SMI. Context: FUSE worker.
  core::Result<std::size_t> smi_request_store(const core::Caller& caller, std::string_view in);
  // Locking: smi_data_lock. Context: FUSE worker.
  core::Result<std::size_t> host_control_action_store(const core::Caller& caller,
                                                      std::string_view in);
  core::Result<std::size_t> host_control_smi_type_store(const core::Caller& caller,
                                                        std::string_view in);
  core::Result<std::size_t> host_control_on_shutdown_store(const core::Caller& caller,
                                                           std::string_view in);

  // Platform-device files (drivers/base/core.c, platform.c, power/sysfs.c).
  // Locking: platform_lock (leaf). Context: FUSE worker.
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);
  core::Status driver_override_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> driver_override_store(const core::Caller& caller, std::string_view in);
  core::Status control_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> control_store(const core::Caller& caller, std::string_view in);

  // dcdbas_reboot_notify: the reboot notifier (priority INT_MIN).
  // Locking: smi_data_lock (see dcdbas_host_control). Context: shutdown.
  void dcdbas_reboot_notify(RebootCode code);

  // Where the firmware's host-control power action lands; false (nothing
  // happens) while a host_control "no_power" fault is injected
  // (devices/dell/dcdbas_fault.cpp). Called by the BIOS inside an SMI, so
  // with smi_data_lock held by this thread.
  bool power_action_allowed() const;

  // A boot (the machine's boot hook, docs/devices/dell.md "Power cycle"):
  // the driver probes again: no SMI buffer (or the WSMT firmware buffer,
  // zeroed), host-control values 0, no driver_override, runtime PM
  // allowed; then the BIOS's POST (DellBios::boot). Non-volatile BIOS
  // state stays.
  // Locking: smi_data_lock, then bios_lock; platform_lock. Context: the
  // thread that powers the machine on or cycles it.
  void boot();

  dcdbas::DellBios& bios() { return *bios_; }
  core::Kobject kobj_;

 private:
  class SmiMemory;
  // Machine snapshots (dcdbas_state.cpp, docs/snapshot.md).
  friend class DcdbasStateHandler;

  core::Status smi_data_buf_realloc(unsigned long size, const core::Caller* caller)
      REQUIRES(smi_data_lock_);
  // dcdbas_probe's buffer set-up (dcdbas_check_wsmt) and its log line.
  void probe() REQUIRES(smi_data_lock_);
  core::Status dcdbas_smi_request(const core::Caller& caller, unsigned long request)
      REQUIRES(smi_data_lock_);
  void dcdbas_host_control() REQUIRES(smi_data_lock_);
  core::Status host_control_smi() REQUIRES(smi_data_lock_);
  // Port I/O on behalf of the driver, logged.
  void outb(std::uint8_t value, std::uint16_t port) REQUIRES(smi_data_lock_);
  std::uint8_t inb(std::uint16_t port) REQUIRES(smi_data_lock_);
  // Fault injection (devices/dell/dcdbas_fault.cpp, docs/fault-injection.md):
  // the SMI as the smi point lets it happen, the host_control point's
  // decision for this host-control action, and the APM command outb that a
  // "timeout" fault keeps from reaching the firmware.
  dcdbas::SmiAnswer raise_smi(const core::Caller& caller, std::uint8_t code, std::uint16_t port,
                              const dcdbas::SmiRegisters& regs, dcdbas::PhysMemory& mem,
                              std::vector<core::EventField>& data) REQUIRES(smi_data_lock_);
  std::optional<core::HostControlFault> host_control_fault();
  void apm_command(std::uint16_t port) REQUIRES(smi_data_lock_);
  void log_store(const core::Caller& caller, std::string_view attr, std::string_view in,
                 const core::Status& st);

  core::Env& env_;
  const DcdbasConfig config_;
  std::shared_ptr<dcdbas::DellBios> bios_;

  // Order: smi_data_lock(10) -> dcdbas.bios_lock(20).
  mutable core::Mutex smi_data_lock_{"dcdbas.smi_data_lock", 10};
  std::vector<std::uint8_t> smi_data_buf_ GUARDED_BY(smi_data_lock_);
  std::uint32_t smi_data_buf_phys_addr_ GUARDED_BY(smi_data_lock_) = 0;
  unsigned long max_smi_data_buf_size_ GUARDED_BY(smi_data_lock_) = kMaxSmiDataBufSize;
  bool wsmt_enabled_ GUARDED_BY(smi_data_lock_) = false;
  std::uint32_t next_dma_ GUARDED_BY(smi_data_lock_) = kDmaBase;
  unsigned host_control_action_ GUARDED_BY(smi_data_lock_) = 0;
  unsigned host_control_smi_type_ GUARDED_BY(smi_data_lock_) = 0;
  unsigned host_control_on_shutdown_ GUARDED_BY(smi_data_lock_) = 0;
  // Set for the duration of one host-control SMI that is failing.
  std::optional<core::HostControlFault> hc_fault_ GUARDED_BY(smi_data_lock_);

  mutable core::Mutex platform_lock_{"dcdbas.platform_lock", 0};  // Order: leaf
  std::string driver_override_ GUARDED_BY(platform_lock_);       // empty: NULL
  bool runtime_pm_allowed_ GUARDED_BY(platform_lock_) = true;
};

// Builds dcdbas, its BIOS and its SMBIOS view from [dcdbas] (throws ConfigError).
void build_dcdbas(MachineContext& ctx, const core::ConfigValue& sec);

namespace dcdbas {
class DcdbasSmbios;
}
// Registers the "dcdbas" StateHandler (dcdbas_state.cpp, from build_dcdbas):
// the driver, the simulated BIOS and the SMBIOS tables of the current boot.
void register_dcdbas_state(MachineContext& ctx, std::shared_ptr<Dcdbas> dev,
                           std::shared_ptr<dcdbas::DcdbasSmbios> smbios);

}  // namespace vsysfs::devices
