#pragma once

// DellBios: the simulated Dell firmware (SMM handler, CMOS, NV settings)
// behind devices/platform/dcdbas. The dcdbas driver (devices/dcdbas.hpp)
// only moves bytes and raises SMIs; everything a real BIOS would answer is
// here, driven by the machine description's [dcdbas] section.
//
// What it answers (docs/kernel-semantics.md sections 2.3 to 2.5):
//  - outb(cmd_code, cmd_port): the calling-interface SMI. EBX is the
//    physical address of a 36-byte calling_interface_buffer (2.4:
//    u16 class, u16 select, u32 input[4], u32 output[4]); the handler reads
//    it from RAM (the SMI buffer is the only RAM the simulation has),
//    answers in output[] and writes it back. Classes (as libsmbios and the
//    kernel's dell-smbios use them):
//      0/0,1,2  read NV setting at input[0] (NV, battery, AC value):
//               output = {0, current, min, max}
//      1/0,1,2  write NV setting: input[0] location, input[1] value,
//               input[2] security key: output = {0, new, min, max}
//      11/0,2   read asset / service tag: 12 bytes in output[1..3]
//      11/1,3   write asset / service tag from input[0..2]
//      20/0     read property tag into the buffer at input[0] (with the
//               4-byte length header of Dell SMBIOS version >= 2)
//      20/1     write property tag from the 80-byte buffer at input[0]
//      9/x, 10/x, 12/x  user, admin and owner password (libsmbios
//               src/libsmbios_c/smi/smi_password.c; the password is up to
//               kPasswordLen keyboard scan codes, zero padded):
//               0 installed?  output[0] 0 installed, 1 not installed
//               1 verify input[0..1]: 0 and the security key in output[1],
//                 2 incorrect (1 when no password is installed)
//               2 change: input[0..1] old, input[2..3] new (all zero
//                 bytes: remove): 0 changed, 2 old password incorrect
//               Selects 3..5 (the "II" interface with ASCII passwords in a
//               buffer) answer -2, as the BIOSes of the PowerEdge 300 to
//               R7x0 era without it; libsmbios then falls back to 0..2.
//    Security key (libsmbios's dell_smi_get_security_key): with an admin
//    password installed, the writes 1/x (key in input[2]), 11/1,3 (key in
//    input[3]) and 20/1 (key in input[1]) need the admin password's key,
//    else with a user password the user password's key; a wrong key gets
//    output[0] = -1 and changes nothing. Keys change at every boot and
//    with the password.
//    output[0] = -2 for any class/select it does not support and -1 for a
//    bad location, value or buffer address.
//  - outb(0xA0, apm_port) for the model's host-control SMI type (2.5):
//    TYPE1 reads the apm_cmd pointer from CMOS 0x38-0x3B behind ports
//    0x72/0x73 and reports status on port 0xB3; TYPE2 (port 0xB0) and TYPE3
//    (port 0xB2) read it from CMOS 0x70-0x73 behind 0x70/0x71 and report in
//    apm_cmd->status. Command 0x10 (power cycle) with parameter 0 powers the
//    machine off, any other parameter power-cycles it.
//  - Any other port/code: nothing happens, as on real hardware.
//
// The SMI answer table (docs/devices/dell.md "Scripting the BIOS"): rules
// from [[dcdbas.smi_answer]] and kernel/debug/vsysfs/dcdbas/smi_answers
// that answer a calling-interface SMI in place of the handlers above. A
// rule matches on class, select and, per word, input[i] (a value or any);
// of the matching rules the one with the most exact input words wins, the
// earlier one on a tie. The winner's cbRES1 and output[1..3] are written
// back and nothing else happens (no setting, tag or CMOS changes). At most
// kMaxSmiRules rules.
//
// CMOS is 64 KiB, byte I behind index port P at offset P*256+I (libsmbios's
// cmos.dat layout), so the host-control pointer bytes are visible there.
// It is non-volatile: boot() leaves it alone, so CMOS token values (bool
// and string, [[dcdbas.cmos_token]]) survive a power cycle.
//
// Thread-safety: every public member takes bios_lock (a leaf below
// smi_data_lock: "Order: smi_data_lock -> bios_lock"). The PhysMemory the
// caller passes is used only during the call.

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/event_log.hpp"
#include "core/locks.hpp"
#include "core/result.hpp"

namespace vsysfs::devices {
class DcdbasStateHandler;  // dcdbas_state.cpp
}

namespace vsysfs::devices::dcdbas {

// Constants of docs/kernel-semantics.md sections 2.4 and 2.5 (dcdbas.h, dell-smbios.h, libsmbios).
inline constexpr std::uint32_t kCallIntfMagic = 0x42534931;  // "BSI1", ECX of a CI SMI
inline constexpr std::uint8_t kEsmApmCmd = 0xA0;
inline constexpr std::uint8_t kEsmApmPowerCycle = 0x10;
inline constexpr std::uint16_t kCmosBasePort = 0x70;
inline constexpr std::uint16_t kPe1400ApmControlPort = 0xB0;
inline constexpr std::uint16_t kPcatApmControlPort = 0xB2;
inline constexpr std::uint16_t kPcatApmStatusPort = 0xB3;
inline constexpr std::uint8_t kPe1300CmosCmdStructPtr = 0x38;
inline constexpr std::uint8_t kPe1400CmosCmdStructPtr = 0x70;
inline constexpr std::size_t kCallIntfBufferSize = 36;
inline constexpr std::size_t kTagSize = 12;          // MAX_SMI_TAG_SIZE
inline constexpr std::size_t kPropertyTagLen = 80;   // PROPERTY_TAG_LEN
inline constexpr std::size_t kPasswordLen = 8;       // two u32 arguments of select 1
// Calling-interface classes of the three BIOS passwords (smbios_c/smi.h
// DELL_SMI_PASSWORD_USER/ADMIN/OWNER).
inline constexpr std::uint16_t kPasswordUser = 9;
inline constexpr std::uint16_t kPasswordAdmin = 10;
inline constexpr std::uint16_t kPasswordOwner = 12;

// An ASCII password as the keyboard scan codes (set 1, US layout) a BIOS
// stores; a shifted character is its key's code ('A' and 'a' are 0x1e).
// std::nullopt for a byte no key of that layout types.
std::optional<std::string> password_scancodes(std::string_view ascii);

// The physical memory the firmware can reach: the driver's SMI buffer.
class PhysMemory {
 public:
  virtual ~PhysMemory() = default;
  // False (and nothing copied) when [phys, phys+len) is not all RAM.
  virtual bool read(std::uint32_t phys, std::span<std::uint8_t> out) const = 0;
  virtual bool write(std::uint32_t phys, std::span<const std::uint8_t> in) = 0;
};

// One BIOS setting in NV storage, addressed by its location.
struct NvSetting {
  std::uint16_t location = 0;
  std::array<std::uint32_t, 3> value{};  // select 0 NV, 1 battery, 2 AC
  std::uint32_t min = 0;
  std::uint32_t max = 0xFFFF;
  std::string name;
};

// An SMI token (SMBIOS 0xDA entry): activating it writes `value` to `location`.
struct DaToken {
  std::uint16_t id = 0;
  std::uint16_t location = 0;
  std::uint16_t value = 0;
  std::string name;
};

// A CMOS token (SMBIOS 0xD4 entry, libsmbios struct indexed_io_token:
// u16 tokenId, u8 location, u8 andMask, u8 orValue/stringLength).
//  - bool (and_mask != 0): active when (byte & ~and_mask) == or_value;
//    activating writes (byte & and_mask) | or_value
//    (src/libsmbios_c/token/token_d4.c _d4_is_active, _d4_activate).
//  - string (and_mask == 0, _d4_is_string): or_value is the string's
//    length; its bytes are CMOS location .. location+length-1 behind the
//    structure's index/data ports, read and written byte by byte
//    (_d4_get_string, _d4_set_string: a shorter value is NUL padded, a
//    longer one cut to the length). No checksum, no security key: the
//    bytes are plain CMOS, which any port writer (or the cmos file) can
//    change.
struct CmosToken {
  std::uint16_t id = 0;
  std::uint16_t index_port = 0x70;
  std::uint16_t data_port = 0x71;
  std::uint8_t location = 0;
  std::uint8_t and_mask = 0;
  std::uint8_t or_value = 0;  // a string token's length (1..255)
  bool active = false;        // bool: at power-on
  std::string value;          // string: at power-on (at most or_value bytes)
  std::string name;
  bool is_string() const { return and_mask == 0; }
};

// One row of the SMI answer table: when class, select and each exact
// input word match, the BIOS answers output = {result, out[0..2]}.
struct SmiRule {
  std::uint16_t cls = 0;
  std::uint16_t sel = 0;
  std::array<std::optional<std::uint32_t>, 4> in{};  // nullopt: any value
  std::int32_t result = 0;                           // cbRES1 (output[0])
  std::array<std::uint32_t, 3> out{};                // cbRES2..cbRES4
  bool operator==(const SmiRule&) const = default;
};
inline constexpr std::size_t kMaxSmiRules = 256;

// The rule as one line of the smi_answers file, in the syntax a write
// takes ("add CLASS SELECT in=A,B,C,D out=B,C,D res=N", no newline).
std::string format_smi_rule(const SmiRule& r);
// One edit of the table, parsed from a line of the smi_answers file.
struct SmiRuleEdit {
  enum class Op { Add, Del, Clear } op = Op::Add;
  SmiRule rule;           // Add
  std::size_t index = 0;  // Del
};
// Parses one line (no newline): std::nullopt when it is not valid.
std::optional<SmiRuleEdit> parse_smi_rule_line(std::string_view line);

// The machine description's view of the firmware.
struct BiosConfig {
  std::string model = "PowerEdge R740";
  unsigned host_control_type = 0;  // 0: the firmware needs no host-control SMI
  std::uint16_t cmd_port = 0xB2;   // SMBIOS 0xDA cmdIOAddress
  std::uint8_t cmd_code = 0xDA;    // SMBIOS 0xDA cmdIOCode
  unsigned dell_smbios_version = 2;  // 0xD0 offset 4: buffers carry a length header from 2 on
  std::string service_tag;
  std::string asset_tag;
  std::string property_tag;
  // Passwords installed at power-on, as scan codes (empty: none).
  std::string user_password, admin_password, owner_password;
  std::vector<NvSetting> settings;
  std::vector<DaToken> tokens;
  std::vector<CmosToken> cmos_tokens;
  std::vector<SmiRule> smi_rules;  // [[dcdbas.smi_answer]], at power-on

  // Reads the keys it owns from the [dcdbas] section (throws ConfigError).
  static BiosConfig from_section(const core::ConfigValue& sec);
};

// What one SMI did, for the event log.
struct SmiAnswer {
  bool answered = false;
  std::string handler;  // "calling_interface", "apm", or "" when unanswered
  std::string note;     // why not, or what changed
  std::vector<core::EventField> data;  // class/select/inputs/outputs ...
};

// The x86 registers an SMI sees (raise_smi loads them before the outb).
struct SmiRegisters {
  std::uint32_t ebx = 0;
  std::uint32_t ecx = 0;
};

class DellBios {
 public:
  using PowerFn = std::function<void(const std::string& state)>;

  explicit DellBios(BiosConfig config);
  DellBios(const DellBios&) = delete;
  DellBios& operator=(const DellBios&) = delete;

  // Where the firmware reports a host-control power action (the machine's
  // power state: "off" or "cycled").
  void set_power_handler(PowerFn fn);

  // An I/O port write. When it traps into SMM the answer says what the
  // handler did; otherwise answered is false.
  // Locking: bios_lock. Context: FUSE worker (smi_request) or the reboot
  // notifier, with the caller holding smi_data_lock.
  SmiAnswer outb(std::uint8_t value, std::uint16_t port, const SmiRegisters& regs,
                 PhysMemory& mem);
  // An I/O port read (CMOS data ports, APM status/control latches).
  std::uint8_t inb(std::uint16_t port);

  // Snapshots for tests, the CMOS file and SMBIOS generation.
  // Locking: bios_lock.
  std::optional<NvSetting> setting(std::uint16_t location) const;
  std::string service_tag() const;
  std::string asset_tag() const;
  std::string property_tag() const;
  std::uint8_t cmos(std::uint16_t index_port, std::uint8_t index) const;
  // A string CMOS token's bytes as libsmbios's _d4_get_string returns
  // them: all `length` bytes, NULs included; std::nullopt for an id that
  // is no string token.
  std::optional<std::string> cmos_string(std::uint16_t token_id) const;
  // The scan codes of password class 9, 10 or 12 (empty: not installed).
  std::string password(std::uint16_t cls) const;
  // A boot: the firmware runs POST again. Non-volatile state (settings,
  // tags, passwords, CMOS) stays; the latches of the last port writes are
  // gone and the security keys handed out before are no longer valid.
  // Locking: bios_lock.
  void boot();
  // The SMI answer table. smi_rules_edit applies every edit or, when one
  // cannot be applied (del of a missing entry: ENOENT; more than
  // kMaxSmiRules rules: ENOSPC), none. Locking: bios_lock.
  std::vector<SmiRule> smi_rules() const;
  core::Status smi_rules_edit(const std::vector<SmiRuleEdit>& edits);
  // The whole CMOS as libsmbios's cmos.dat (offset P*256+I), for the
  // kernel/debug/vsysfs/dcdbas/cmos file. Locking: bios_lock.
  std::size_t cmos_read(std::uint64_t pos, std::span<char> out) const;
  std::size_t cmos_write(std::uint64_t pos, std::span<const char> in);
  static constexpr std::size_t kCmosSize = 65536;
  const BiosConfig& config() const { return config_; }  // immutable parts only

 private:
  // Machine snapshots (dcdbas_state.cpp, docs/snapshot.md).
  friend class devices::DcdbasStateHandler;

  SmiAnswer calling_interface(const SmiRegisters& regs, PhysMemory& mem) REQUIRES(mu_);
  SmiAnswer apm(std::uint16_t port, PhysMemory& mem);
  void dispatch(std::uint16_t cls, std::uint16_t sel, const std::array<std::uint32_t, 4>& in,
                std::array<std::int32_t, 4>& out, PhysMemory& mem, std::string& note) REQUIRES(mu_);
  NvSetting* find_setting(std::uint16_t location);
  void password_smi(std::uint16_t cls, std::uint16_t sel, const std::array<std::uint32_t, 4>& in,
                    std::array<std::int32_t, 4>& out, std::string& note) REQUIRES(mu_);
  std::string& password_slot(std::uint16_t cls) REQUIRES(mu_);
  std::uint16_t security_key(std::uint16_t cls) const REQUIRES(mu_);
  // False when a password guards the calling interface and `key` is not
  // the key its verify handed out (in this boot).
  bool key_ok(std::uint32_t key) const REQUIRES(mu_);
  // The index of the rule answering this SMI, if any. Caller holds bios_lock.
  std::optional<std::size_t> match_rule(std::uint16_t cls, std::uint16_t sel,
                                        const std::array<std::uint32_t, 4>& in) const REQUIRES(mu_);

  const BiosConfig config_;
  mutable core::Mutex mu_{"dcdbas.bios_lock", 20};  // Order: smi_data_lock(10) -> bios_lock(20)
  std::vector<NvSetting> settings_;
  std::string service_tag_;
  std::string asset_tag_;
  std::string property_tag_;
  std::string user_password_ GUARDED_BY(mu_);  // scan codes, empty: none
  std::string admin_password_ GUARDED_BY(mu_);
  std::string owner_password_ GUARDED_BY(mu_);
  std::uint32_t boot_count_ GUARDED_BY(mu_) = 0;  // salts the security keys
  std::vector<std::uint8_t> cmos_;                // 64 KiB, P*256+I
  std::map<std::uint16_t, std::uint8_t> index_;   // index register per index port
  std::map<std::uint16_t, std::uint8_t> latch_;   // last byte written to a port
  PowerFn power_;
  std::vector<SmiRule> rules_ GUARDED_BY(mu_);
};

}  // namespace vsysfs::devices::dcdbas
