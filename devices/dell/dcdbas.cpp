#include "devices/dell/dcdbas.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "core/bytes.hpp"
#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/dell/dcdbas_smbios.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {
namespace {

constexpr std::string_view kDriverName = "dcdbas";
constexpr std::string_view kDriverVersion = "5.6.0-3.4";
constexpr std::string_view kModalias = "platform:dcdbas";

using core::le32;
using core::put_le32;
std::string hex(std::uint32_t v) { return fmt::format("{:#x}", v); }

// What the driver's stores do with the bytes: simple_strtoul(buf, NULL, 10).
// Kernel quirk: never fails; junk, "", "-1" and "0x2" are 0, and overflow
// wraps modulo 2^64.
unsigned long parse_ul(std::string_view in) { return core::simple_strtoul(in, 10).value; }

// The bytes userspace wrote, printable in the log.
std::string printable(std::string_view in) {
  std::string out;
  for (char c : in.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\')
      out.push_back(c);
    else
      out += fmt::format("\\x{:02x}", u);
  }
  return out;
}

// The module's own directory (/sys/module/dcdbas).
class DcdbasModule {
 public:
  static std::span<const core::AttributeGroup<DcdbasModule>> groups();
};
constexpr core::DeviceAttribute<DcdbasModule> kModuleAttrs[] = {
    VSYSFS_ATTR_VALUE_RO(DcdbasModule, initstate, 0444, fmt_str, [](const DcdbasModule&) { return std::string_view("live"); }),
    VSYSFS_ATTR_VALUE_RO(DcdbasModule, version, 0444, fmt_str, [](const DcdbasModule&) { return kDriverVersion; }),
};
constexpr core::AttributeGroup<DcdbasModule> kModuleGroups[] = {{.name = "", .attrs = kModuleAttrs}};
std::span<const core::AttributeGroup<DcdbasModule>> DcdbasModule::groups() { return kModuleGroups; }

// kernel/debug/vsysfs/dcdbas/: the simulation's view of the firmware.
//   cmos  0600  bin, 64 KiB: byte I behind index port P at P*256+I
//               (libsmbios --cmos-dat layout); writes are logged.
//   smi_answers 0600  seq: the SMI answer table, one "add ..." line per
//               entry in match order (entry N is line N, from 0); a write
//               is lines of "add CLASS SELECT [in=A,B,C,D] [out=B,C,D]
//               [res=N]", "del N" or "clear", applied all or none: a bad
//               line EINVAL, del of a missing entry ENOENT, more than 256
//               entries ENOSPC (docs/devices/dell.md "Scripting the BIOS").
class DcdbasDebug {
 public:
  DcdbasDebug(core::Env& env, std::shared_ptr<dcdbas::DellBios> bios) : env_(env), bios_(std::move(bios)) {}
  static std::span<const core::AttributeGroup<DcdbasDebug>> groups();
  // Locking: bios_lock (inside DellBios). Context: FUSE worker.
  core::Result<std::size_t> cmos_read(const core::Caller&, std::uint64_t pos, std::span<char> out) {
    return bios_->cmos_read(pos, out);
  }
  core::Result<std::size_t> cmos_write(const core::Caller& caller, std::uint64_t pos, std::span<const char> in) {
    const std::size_t n = bios_->cmos_write(pos, in);
    std::string bytes;
    for (std::size_t i = 0; i < std::min<std::size_t>(n, 16); ++i)
      bytes += fmt::format("{}{:02x}", i ? " " : "", static_cast<unsigned char>(in[i]));
    env_.log(&caller, "dcdbas", "cmos_write", "OK",
             {{"index_port", hex(static_cast<std::uint32_t>(pos / 256))},
              {"index", hex(static_cast<std::uint32_t>(pos % 256))},
              {"count", n},
              {"bytes", bytes}});
    return n;
  }
  // Locking: bios_lock (inside DellBios). Context: FUSE worker.
  core::Status smi_answers_show(std::string& out) const {
    for (const auto& r : bios_->smi_rules()) out += dcdbas::format_smi_rule(r) + "\n";
    return {};
  }
  core::Result<std::size_t> smi_answers_store(const core::Caller& caller, std::string_view in) {
    // Parse every line before anything changes: a bad one refuses the lot.
    std::string_view rest = in;
    if (rest.ends_with('\n')) rest.remove_suffix(1);
    std::vector<dcdbas::SmiRuleEdit> edits;
    core::Status st;
    while (st) {
      const std::size_t nl = rest.find('\n');
      const std::string_view line = rest.substr(0, nl);
      const bool text = std::all_of(line.begin(), line.end(), [](char c) {
        return (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) <= 0x7e) ||
               c == '\t';
      });
      auto e = text ? dcdbas::parse_smi_rule_line(line) : std::nullopt;
      if (!e)
        st = core::Errno{EINVAL};
      else
        edits.push_back(*e);
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
    if (st) st = bios_->smi_rules_edit(edits);
    env_.log(&caller, "dcdbas", "smi_answers_write",
             st ? std::string_view("OK") : st.error().name(),
             {{"bytes", printable(in)},
              {"lines", edits.size()},
              {"entries", bios_->smi_rules().size()}});
    if (!st) return st.error();
    return in.size();
  }

 private:
  core::Env& env_;
  std::shared_ptr<dcdbas::DellBios> bios_;
};
constexpr core::BinAttribute<DcdbasDebug> kDebugBin[] = {
    VSYSFS_BIN_ATTR_RW(DcdbasDebug, cmos, 0600, dcdbas::DellBios::kCmosSize),
};
constexpr core::SeqAttribute<DcdbasDebug> kDebugSeq[] = {
    VSYSFS_SEQ_ATTR_RW(DcdbasDebug, smi_answers, 0600),
};
constexpr core::AttributeGroup<DcdbasDebug> kDebugGroups[] = {
    {.name = "", .bin_attrs = kDebugBin, .seq_attrs = kDebugSeq}};
std::span<const core::AttributeGroup<DcdbasDebug>> DcdbasDebug::groups() { return kDebugGroups; }

}  // namespace

// The RAM the simulated firmware can reach: the SMI buffer at its physical
// address. Used only while smi_data_lock is held: the driver's SMI paths
// (REQUIRES(smi_data_lock_)) build one and hand it to the BIOS, which calls
// back through PhysMemory and knows no dcdbas lock, so each access checks
// the lock (assert_held: lockdep in debug builds, and the analysis). Copies
// use std::copy_n, not memcpy: an empty span's data() may be null, which
// memcpy may not be given even for 0 bytes (UBSan, found by fuzz_smi).
class Dcdbas::SmiMemory final : public dcdbas::PhysMemory {
 public:
  explicit SmiMemory(Dcdbas& d) REQUIRES(d.smi_data_lock_) : d_(d) {}
  bool read(std::uint32_t phys, std::span<std::uint8_t> out) const override {
    d_.smi_data_lock_.assert_held();
    const auto off = offset(phys, out.size());
    if (!off) return false;
    std::copy_n(d_.smi_data_buf_.data() + *off, out.size(), out.data());
    return true;
  }
  bool write(std::uint32_t phys, std::span<const std::uint8_t> in) override {
    d_.smi_data_lock_.assert_held();
    const auto off = offset(phys, in.size());
    if (!off) return false;
    std::copy_n(in.data(), in.size(), d_.smi_data_buf_.data() + *off);
    return true;
  }

 private:
  std::optional<std::size_t> offset(std::uint32_t phys, std::size_t len) const
      REQUIRES(d_.smi_data_lock_) {
    const std::uint64_t base = d_.smi_data_buf_phys_addr_;
    const std::uint64_t size = d_.smi_data_buf_.size();
    if (size == 0 || phys < base || phys - base + len > size) return std::nullopt;
    return static_cast<std::size_t>(phys - base);
  }
  Dcdbas& d_;
};

// The tables live in a member so that entries may name the private fields
// they show. DCDBAS_SHOW(name, mode, store, Fmt, expr): the file prints
// expr, an expression of the device `d`, with the format Fmt, read under
// smi_data_lock.
#define DCDBAS_SHOW(name, mode, store, Fmt, ...)                                       \
  VSYSFS_ATTR_VALUE_LOCKED(Dcdbas, name, mode, store, Fmt, &Dcdbas::smi_data_lock_,     \
                           [](const Dcdbas& d) {                                       \
                             d.smi_data_lock_.assert_held();                           \
                             return __VA_ARGS__;                                       \
                           })

std::span<const core::AttributeGroup<Dcdbas>> Dcdbas::groups() {
  using D = Dcdbas;
  // dcdbas_dev_attrs / dcdbas_bin_attrs, in the driver's order; modes from
  // DCDBAS_DEV_ATTR_RW (0600), _RO (0400), _WO (0200), DCDBAS_BIN_ATTR_RW (0600).
  static constexpr core::DeviceAttribute<D> kAttrs[] = {
      DCDBAS_SHOW(smi_data_buf_size, 0600, &D::smi_data_buf_size_store, fmt_ulong, d.smi_data_buf_.size()),
      // The driver reads the u32 unlocked; "%x\n" of smi_buf.dma.
      DCDBAS_SHOW(smi_data_buf_phys_addr, 0400, nullptr, fmt_x, d.smi_data_buf_phys_addr_),
      VSYSFS_ATTR_WO_MODE(D, smi_request, 0200),
      DCDBAS_SHOW(host_control_action, 0600, &D::host_control_action_store, fmt_udec, d.host_control_action_),
      DCDBAS_SHOW(host_control_smi_type, 0600, &D::host_control_smi_type_store, fmt_udec, d.host_control_smi_type_),
      DCDBAS_SHOW(host_control_on_shutdown, 0600, &D::host_control_on_shutdown_store, fmt_udec, d.host_control_on_shutdown_),
      // The driver core's own files of every platform device.
      VSYSFS_ATTR_RW(D, uevent),
      VSYSFS_ATTR_VALUE_RO(D, modalias, 0444, fmt_str, [](const D&) { return kModalias; }),
      VSYSFS_ATTR_RW(D, driver_override),
  };
  static constexpr core::BinAttribute<D> kBin[] = {
      VSYSFS_BIN_ATTR_RW(D, smi_data, 0600, 0),
  };
  // power_attr_group + runtime_attr_group for a device with runtime PM
  // disabled (autosuspend_delay_ms is hidden without use_autosuspend): it
  // was never active or suspended, and rpm_status_show says so.
  static constexpr core::DeviceAttribute<D> kPower[] = {
      VSYSFS_ATTR_RW(D, control),
      VSYSFS_ATTR_VALUE_RO(D, runtime_active_time, 0444, fmt_u64, [](const D&) { return 0; }),
      VSYSFS_ATTR_VALUE_RO(D, runtime_status, 0444, fmt_str, [](const D&) { return std::string_view("unsupported"); }),
      VSYSFS_ATTR_VALUE_RO(D, runtime_suspended_time, 0444, fmt_u64, [](const D&) { return 0; }),
  };
  static constexpr core::AttributeGroup<D> kGroups[] = {
      {.name = "", .attrs = kAttrs, .bin_attrs = kBin},
      {.name = "power", .attrs = kPower},
  };
  return kGroups;
}

Dcdbas::Dcdbas(core::Env& env, DcdbasConfig config, std::shared_ptr<dcdbas::DellBios> bios)
    : env_(env), config_(config), bios_(std::move(bios)) {
  core::MutexLock lock(smi_data_lock_);
  probe();
}

void Dcdbas::boot() {
  {
    core::MutexLock lock(smi_data_lock_);
    // What the previous boot's driver had is gone with its memory.
    smi_data_buf_.clear();
    smi_data_buf_phys_addr_ = 0;
    max_smi_data_buf_size_ = kMaxSmiDataBufSize;
    wsmt_enabled_ = false;
    next_dma_ = kDmaBase;
    host_control_action_ = 0;
    host_control_smi_type_ = 0;
    host_control_on_shutdown_ = 0;
    hc_fault_.reset();
    bios_->boot();
    probe();
  }
  core::MutexLock lock(platform_lock_);
  driver_override_.clear();
  runtime_pm_allowed_ = true;
}

void Dcdbas::probe() {
  if (config_.wsmt) {
    // dcdbas_check_wsmt: the first 8 bytes of the firmware buffer are a
    // semaphore; the rest is the SMI buffer, and its size is the limit.
    std::uint64_t remap = config_.wsmt_pages * 4096;
    if (remap > kMaxSmiDataBufSize + 8) remap = kMaxSmiDataBufSize + 8;
    smi_data_buf_phys_addr_ = static_cast<std::uint32_t>(config_.wsmt_address + 8);
    smi_data_buf_.assign(static_cast<std::size_t>(remap - 8), 0);
    max_smi_data_buf_size_ = static_cast<unsigned long>(remap - 8);
    wsmt_enabled_ = true;
  }
  env_.log(nullptr, "dcdbas", "probe", "OK",
           {{"version", kDriverVersion},
            {"wsmt", wsmt_enabled_},
            {"smi_data_buf_phys_addr", hex(smi_data_buf_phys_addr_)},
            {"smi_data_buf_size", smi_data_buf_.size()},
            {"model", bios_->config().model},
            {"host_control_type", bios_->config().host_control_type}});
}

void Dcdbas::log_store(const core::Caller& caller, std::string_view attr, std::string_view in,
                       const core::Status& st) {
  env_.log(&caller, "dcdbas", attr, st ? "OK" : st.error().name(), {{"input", printable(in)}});
}

// --- buffer ------------------------------------------------------------------

// smi_data_buf_realloc: grow only; a new zeroed buffer at a new address
// below 4 GiB, the old contents copied, the old buffer freed. With WSMT
// the buffer is fixed and already at the limit.
core::Status Dcdbas::smi_data_buf_realloc(unsigned long size, const core::Caller* caller) {
  smi_data_lock_.assert_held();
  if (smi_data_buf_.size() >= size) return {};
  if (size > max_smi_data_buf_size_) return core::Errno{EINVAL};

  // dma_alloc_coherent with a 32-bit mask: page-aligned, never the address
  // just freed (the old buffer is still live while the copy is made).
  const std::uint64_t span = (static_cast<std::uint64_t>(size) + 4095) & ~std::uint64_t{4095};
  if (next_dma_ + span > kDmaEnd) next_dma_ = kDmaBase;
  const std::uint32_t handle = next_dma_;
  next_dma_ = static_cast<std::uint32_t>(next_dma_ + span);

  std::vector<std::uint8_t> buf(size, 0);  // memory zeroed by dma_alloc_coherent
  std::copy(smi_data_buf_.begin(), smi_data_buf_.end(), buf.begin());
  const std::size_t old_size = smi_data_buf_.size();
  const std::uint32_t old_phys = smi_data_buf_phys_addr_;
  smi_data_buf_ = std::move(buf);
  smi_data_buf_phys_addr_ = handle;
  env_.log(caller, "dcdbas", "smi_data_buf_realloc", "OK",
           {{"old_size", old_size},
            {"old_phys_addr", hex(old_phys)},
            {"size", size},
            {"phys_addr", hex(handle)}});
  return {};
}

core::Result<std::size_t> Dcdbas::smi_data_buf_size_store(const core::Caller& caller,
                                                          std::string_view in) {
  const unsigned long buf_size = parse_ul(in);
  core::Status st;
  {
    core::MutexLock lock(smi_data_lock_);
    st = smi_data_buf_realloc(buf_size, &caller);
  }
  log_store(caller, "smi_data_buf_size", in, st);
  if (!st) return st.error();
  return in.size();
}

core::Result<std::size_t> Dcdbas::smi_data_read(const core::Caller&, std::uint64_t pos,
                                                std::span<char> out) {
  core::MutexLock lock(smi_data_lock_);
  // memory_read_from_buffer: EOF at or past the end.
  if (pos >= smi_data_buf_.size()) return std::size_t{0};
  const std::size_t n = std::min<std::uint64_t>(out.size(), smi_data_buf_.size() - pos);
  std::copy_n(smi_data_buf_.data() + pos, n, out.data());
  return n;
}

core::Result<std::size_t> Dcdbas::smi_data_write(const core::Caller& caller, std::uint64_t pos,
                                                 std::span<const char> in) {
  core::Status st;
  {
    core::MutexLock lock(smi_data_lock_);
    // The modern driver checks the range before the lock; 2.6.18 left it
    // to the realloc. Either way: EINVAL and nothing changes.
    if (pos > max_smi_data_buf_size_ || in.size() > max_smi_data_buf_size_ - pos) {
      st = core::Errno{EINVAL};
    } else {
      st = smi_data_buf_realloc(static_cast<unsigned long>(pos + in.size()), &caller);
      if (st) std::copy_n(in.data(), in.size(), smi_data_buf_.data() + pos);
    }
  }
  env_.log(&caller, "dcdbas", "smi_data_write", st ? "OK" : st.error().name(),
           {{"pos", pos}, {"count", in.size()}});
  if (!st) return st.error();
  return in.size();
}

// --- SMI ---------------------------------------------------------------------

core::Result<std::size_t> Dcdbas::smi_request_store(const core::Caller& caller,
                                                    std::string_view in) {
  const unsigned long val = parse_ul(in);
  core::Status st;
  {
    core::MutexLock lock(smi_data_lock_);
    if (smi_data_buf_.size() < kSmiCmdSize) {
      // Checked first, for every value (even 0 and junk).
      st = core::Errno{ENODEV};
    } else {
      switch (val) {
        case 2:  // raw SMI: the caller's EBX
          st = dcdbas_smi_request(caller, val);
          break;
        case 1:
          // Calling-interface SMI: EBX = physical address of
          // command_buffer. Kernel quirk: written before the magic is
          // checked, so a request refused with EBADR still changes ebx.
          put_le32(smi_data_buf_.data() + 4, smi_data_buf_phys_addr_ + 16);
          st = dcdbas_smi_request(caller, val);
          break;
        case 0:
          std::fill(smi_data_buf_.begin(), smi_data_buf_.end(), 0);
          break;
        default:
          st = core::Errno{EINVAL};
          break;
      }
    }
  }
  log_store(caller, "smi_request", in, st);
  if (!st) return st.error();
  return in.size();
}

// dcdbas_smi_request + raise_smi: check the magic, then, on CPU 0,
// outb(command_code, command_address) with EBX/ECX loaded, and an inb of
// the same port to push the posted write through.
core::Status Dcdbas::dcdbas_smi_request(const core::Caller& caller, unsigned long request) {
  smi_data_lock_.assert_held();
  const std::uint8_t* p = smi_data_buf_.data();
  const std::uint32_t magic = le32(p);
  const std::uint32_t ebx = le32(p + 4);
  const std::uint32_t ecx = le32(p + 8);
  const auto port = static_cast<std::uint16_t>(p[12] | p[13] << 8);
  const std::uint8_t code = p[14];
  std::vector<core::EventField> data = {
      {"request", request == 1 ? "calling_interface" : "raw"},
      {"magic", hex(magic)},
      {"eax", hex(code)},
      {"ebx", hex(ebx)},
      {"ecx", hex(ecx)},
      {"edx", hex(port)},
  };
  if (magic != kSmiCmdMagic) {
    data.emplace_back("note", "invalid magic value");
    env_.log(&caller, "dcdbas", "smi", "EBADR", std::move(data));
    return core::Errno{EBADR};
  }
  // The simulation's SMIs always run on CPU 0 (no EBUSY).
  SmiMemory mem(*this);
  dcdbas::SmiAnswer a = raise_smi(caller, code, port, {ebx, ecx}, mem, data);
  (void)bios_->inb(port);
  data.emplace_back("answered", a.answered);
  if (!a.handler.empty()) data.emplace_back("handler", a.handler);
  if (!a.note.empty()) data.emplace_back("note", a.note);
  for (auto& f : a.data)
    if (f.key != "ebx") data.push_back(std::move(f));
  env_.log(&caller, "dcdbas", "smi", "OK", std::move(data));
  return {};
}

// --- host control --------------------------------------------------------------

core::Result<std::size_t> Dcdbas::host_control_action_store(const core::Caller& caller,
                                                            std::string_view in) {
  core::Status st;
  {
    core::MutexLock lock(smi_data_lock_);
    // make sure buffer is available for host control command
    st = smi_data_buf_realloc(kApmCmdSize, &caller);
    // Kernel quirk: unsigned int from an unsigned long: 2^32+2 stores 2.
    if (st) host_control_action_ = static_cast<unsigned>(parse_ul(in));
  }
  log_store(caller, "host_control_action", in, st);
  if (!st) return st.error();
  return in.size();
}

core::Result<std::size_t> Dcdbas::host_control_smi_type_store(const core::Caller& caller,
                                                              std::string_view in) {
  {
    core::MutexLock lock(smi_data_lock_);
    // No validation: an unknown type surfaces only at shutdown (ENOSYS).
    host_control_smi_type_ = static_cast<unsigned>(parse_ul(in));
  }
  log_store(caller, "host_control_smi_type", in, {});
  return in.size();
}

core::Result<std::size_t> Dcdbas::host_control_on_shutdown_store(const core::Caller& caller,
                                                                 std::string_view in) {
  {
    core::MutexLock lock(smi_data_lock_);
    host_control_on_shutdown_ = static_cast<unsigned>(parse_ul(in));
  }
  log_store(caller, "host_control_on_shutdown", in, {});
  return in.size();
}

void Dcdbas::outb(std::uint8_t value, std::uint16_t port) {
  SmiMemory mem(*this);
  dcdbas::SmiAnswer a = bios_->outb(value, port, {}, mem);
  std::vector<core::EventField> data = {{"port", hex(port)}, {"value", hex(value)}};
  if (a.answered || !a.handler.empty()) {
    data.emplace_back("handler", a.handler);
    if (!a.note.empty()) data.emplace_back("note", a.note);
    for (auto& f : a.data) data.push_back(std::move(f));
  }
  env_.log(nullptr, "dcdbas", "outb", "OK", std::move(data));
}

std::uint8_t Dcdbas::inb(std::uint16_t port) {
  const std::uint8_t v = bios_->inb(port);
  env_.log(nullptr, "dcdbas", "inb", "OK", {{"port", hex(port)}, {"value", hex(v)}});
  return v;
}

// host_control_smi: hand the apm_cmd to the firmware the way this SMI type
// expects, then wait (bounded) for its status.
core::Status Dcdbas::host_control_smi() {
  smi_data_lock_.assert_held();
  constexpr std::uint8_t kUnsuccessful = 0xFF;  // ESM_STATUS_CMD_UNSUCCESSFUL as u8
  smi_data_buf_[1] = kUnsuccessful;             // apm_cmd->status = -1
  std::uint8_t addr[4];
  put_le32(addr, smi_data_buf_phys_addr_);

  switch (host_control_smi_type_) {
    case 1: {
      // rtc_lock held in the driver; the buffer address goes to CMOS page 2.
      for (std::uint8_t i = 0; i < 4; ++i) {
        outb(static_cast<std::uint8_t>(dcdbas::kPe1300CmosCmdStructPtr + i), dcdbas::kCmosBasePort + 2);
        outb(addr[i], dcdbas::kCmosBasePort + 3);
      }
      outb(kUnsuccessful, dcdbas::kPcatApmStatusPort);  // "first set status to -1 as called by spec"
      apm_command(dcdbas::kPcatApmControlPort);
      unsigned reads = 0;
      std::uint8_t status = kUnsuccessful;
      for (unsigned ticks = kTimeoutUsecShortSemaBlocking; ticks > 0; --ticks) {
        ++reads;
        status = bios_->inb(dcdbas::kPcatApmStatusPort);
        if (status != kUnsuccessful) break;
      }
      const bool done = status != kUnsuccessful;
      env_.log(nullptr, "dcdbas", "poll", done ? "OK" : "ETIME",
               {{"what", "inb(0xb3)"}, {"reads", reads}, {"value", hex(status)}});
      if (!done) return core::Errno{ETIME};
      return {};
    }
    case 2:
    case 3: {
      for (std::uint8_t i = 0; i < 4; ++i) {
        outb(static_cast<std::uint8_t>(dcdbas::kPe1400CmosCmdStructPtr + i), dcdbas::kCmosBasePort);
        outb(addr[i], dcdbas::kCmosBasePort + 1);
      }
      apm_command(host_control_smi_type_ == 3 ? dcdbas::kPcatApmControlPort
                                              : dcdbas::kPe1400ApmControlPort);
      // CMOS_READ(RTC_REG_C): restore the RTC index pointer.
      outb(0x0C, dcdbas::kCmosBasePort);
      (void)inb(dcdbas::kCmosBasePort + 1);
      // read control port back to serialize write
      (void)inb(dcdbas::kPe1400ApmControlPort);
      unsigned reads = 0;
      std::uint8_t status = kUnsuccessful;
      for (unsigned ticks = kTimeoutUsecShortSemaBlocking; ticks > 0; --ticks) {
        ++reads;
        status = smi_data_buf_[1];
        if (status != kUnsuccessful) break;
      }
      const bool done = status != kUnsuccessful;
      env_.log(nullptr, "dcdbas", "poll", done ? "OK" : "ETIME",
               {{"what", "apm_cmd->status"}, {"reads", reads}, {"value", hex(status)}});
      if (!done) return core::Errno{ETIME};
      return {};
    }
    default:
      return core::Errno{ENOSYS};
  }
}

// dcdbas_host_control: one-shot; power-off wins over power-cycle.
// Locking: the driver takes no lock here (userspace is gone at that
// point); the simulation's shutdown can race with FUSE workers, so it
// holds smi_data_lock.
void Dcdbas::dcdbas_host_control() {
  smi_data_lock_.assert_held();
  if (host_control_action_ == 0) return;
  const auto action = static_cast<std::uint8_t>(host_control_action_);  // u8 action
  host_control_action_ = 0;
  std::vector<core::EventField> data = {{"action", action}, {"smi_type", host_control_smi_type_}};

  if (smi_data_buf_.empty() || smi_data_buf_.size() < kApmCmdSize) {
    data.emplace_back("note", smi_data_buf_.empty() ? "no SMI buffer" : "SMI buffer too small");
    env_.log(nullptr, "dcdbas", "host_control", "skipped", std::move(data));
    return;
  }
  std::int16_t parm;
  if (action & kHcActionPowerOff) {
    parm = 0;
  } else if (action & kHcActionPowerCycle) {
    parm = 20;
  } else {
    data.emplace_back("note", "no power action bit set");
    env_.log(nullptr, "dcdbas", "host_control", "skipped", std::move(data));
    return;
  }
  smi_data_buf_[0] = dcdbas::kEsmApmPowerCycle;  // command
  smi_data_buf_[2] = 0;                          // reserved (u16)
  smi_data_buf_[3] = 0;
  smi_data_buf_[4] = static_cast<std::uint8_t>(parm & 0xFF);
  smi_data_buf_[5] = static_cast<std::uint8_t>((parm >> 8) & 0xFF);
  data.emplace_back("command", hex(dcdbas::kEsmApmPowerCycle));
  data.emplace_back("parameter", parm);
  hc_fault_ = host_control_fault();
  if (hc_fault_)
    data.emplace_back("fault",
                      *hc_fault_ == core::HostControlFault::Timeout ? "timeout" : "no_power");
  const core::Status st = host_control_smi();
  hc_fault_.reset();
  env_.log(nullptr, "dcdbas", "host_control", st ? "OK" : st.error().name(), std::move(data));
}

void Dcdbas::dcdbas_reboot_notify(RebootCode code) {
  core::MutexLock lock(smi_data_lock_);
  // SYS_DOWN, SYS_HALT and SYS_POWER_OFF all qualify.
  env_.log(nullptr, "dcdbas", "reboot_notify", "OK",
           {{"code", reboot_code_name(code)}, {"host_control_on_shutdown", host_control_on_shutdown_}});
  if (!host_control_on_shutdown_) return;
  env_.log(nullptr, "dcdbas", "printk", "OK",
           {{"message", "Please wait for shutdown action to complete..."}});
  dcdbas_host_control();
}

// --- platform device ---------------------------------------------------------

core::Status Dcdbas::uevent_show(core::PageBuffer& buf) const {
  buf.emit("DRIVER={}\nMODALIAS=platform:{}\n", kDriverName, kDriverName);
  return {};
}

// drivers/base/core.c uevent_store -> kobject_synth_uevent.
core::Result<std::size_t> Dcdbas::uevent_store(const core::Caller& caller, std::string_view in) {
  core::PageBuffer vars;
  (void)uevent_show(vars);
  return core::uevent_store(env_, caller, {"/devices/platform/dcdbas", "platform", vars.view()}, in);
}

core::Status Dcdbas::driver_override_show(core::PageBuffer& buf) const {
  core::MutexLock lock(platform_lock_);
  buf.emit("{}\n", driver_override_.empty() ? std::string("(null)") : driver_override_);
  return {};
}

// driver_set_override (drivers/base/driver.c): the length limit is on the
// write's count, checked before strlen(); then the C string up to its first
// newline is stored; empty clears.
core::Result<std::size_t> Dcdbas::driver_override_store(const core::Caller& caller,
                                                        std::string_view in) {
  if (in.size() >= core::kPageSize - 1) return core::Errno{EINVAL};
  std::string_view s = in.substr(0, std::min(in.size(), in.find('\0')));
  s = s.substr(0, std::min(s.size(), s.find('\n')));
  {
    core::MutexLock lock(platform_lock_);
    driver_override_ = std::string(s);
  }
  log_store(caller, "driver_override", in, {});
  return in.size();
}

core::Status Dcdbas::control_show(core::PageBuffer& buf) const {
  core::MutexLock lock(platform_lock_);
  buf.append(runtime_pm_allowed_ ? "auto\n" : "on\n");
  return {};
}

core::Result<std::size_t> Dcdbas::control_store(const core::Caller& caller, std::string_view in) {
  core::Status st;
  {
    core::MutexLock lock(platform_lock_);
    if (core::sysfs_streq(in, "auto"))
      runtime_pm_allowed_ = true;
    else if (core::sysfs_streq(in, "on"))
      runtime_pm_allowed_ = false;
    else
      st = core::Errno{EINVAL};
  }
  log_store(caller, "power/control", in, st);
  if (!st) return st.error();
  return in.size();
}

// --- machine description -------------------------------------------------------

// The firmware's view of the hardware the other sections built: one socket
// per package of the NUMA model, its caches, one memory array per node
// with the node's boot memory, one PCIe slot per PCI NIC of [net] plus the
// empty ones up to `pcie_slots`; or the host's sockets and memory where
// [dcdbas] says the OS sees less (smbios_sockets, smbios_memory_mb).
static dcdbas::SmbiosHardware smbios_hardware(MachineContext& ctx, const core::ConfigValue& sec) {
  dcdbas::SmbiosHardware hw;
  if (const auto* v = sec.find("processor_version")) hw.processor_version = require_line_text(*v);
  const std::uint64_t sig = sec.get_uint("processor_signature", hw.processor_signature);
  if (sig > 0xFFFFFFFF)
    sec.require("processor_signature").fail("does not fit 32 bits (CPUID.1:EAX)");
  hw.processor_signature = static_cast<std::uint32_t>(sig);
  hw.max_speed_mhz = static_cast<unsigned>(
      std::min<std::uint64_t>(sec.get_uint("processor_max_speed_mhz", hw.max_speed_mhz), 0xFFFF));
  hw.current_speed_mhz = static_cast<unsigned>(
      std::min<std::uint64_t>(sec.get_uint("processor_speed_mhz", hw.current_speed_mhz), 0xFFFF));
  hw.memory_speed_mts = static_cast<unsigned>(
      std::min<std::uint64_t>(sec.get_uint("memory_speed_mts", hw.memory_speed_mts), 0xFFFE));
  const std::uint64_t dimm_slots = sec.get_uint("dimm_slots_per_node", hw.dimm_slots_per_node);
  if (dimm_slots == 0 || dimm_slots > 32) sec.require("dimm_slots_per_node").fail("must be 1..32");
  hw.dimm_slots_per_node = static_cast<unsigned>(dimm_slots);

  if (const auto model = numa_model_of(ctx.machine)) {
    std::map<int, std::pair<std::set<int>, unsigned>> packages;  // package -> (cores, threads)
    for (unsigned cpu : model->present_cpus()) {
      const auto& t = model->topology(cpu);
      packages[t.package].first.insert(t.core_id);
      ++packages[t.package].second;
    }
    unsigned cores_per_socket = 0;
    for (const auto& [pkg, ct] : packages) {
      hw.sockets.push_back({static_cast<unsigned>(ct.first.size()), ct.second});
      cores_per_socket = std::max(cores_per_socket, static_cast<unsigned>(ct.first.size()));
    }
    // One entry per level, as Dell firmware reports them: the socket's
    // total (a per-core leaf times the cores), a split L1 as "Data".
    for (const auto& leaf : model->caches()) {
      const std::uint64_t kib = leaf.per_package ? leaf.size_kib : leaf.size_kib * cores_per_socket;
      auto it = std::find_if(hw.caches.begin(), hw.caches.end(),
                             [&](const auto& c) { return c.level == leaf.level; });
      const std::uint8_t type = leaf.type == CacheType::Data          ? 4
                                : leaf.type == CacheType::Instruction ? 3
                                                                      : 5;
      if (it == hw.caches.end()) {
        hw.caches.push_back({leaf.level, kib, leaf.ways, type});
      } else {
        it->size_kib += kib;
        it->system_type = 4;
      }
    }
    std::uint64_t start = 0;
    for (int nid = 0; nid < model->nr_node_ids(); ++nid) {
      const std::uint64_t kib = model->boot_present_pages(nid) * kPageKiB;
      hw.nodes.push_back({start, kib});
      start += kib * 1024;
    }
  }
  // The host's view where the OS sees less (a Xen dom0: its vCPUs in one
  // package and its own share of memory, while SMBIOS, passed through by
  // Xen, describes the host): `smbios_sockets` splits the CPUs' cores and
  // threads over that many sockets, `smbios_memory_mb` is the host's
  // memory, one array per socket (docs/devices/dell.md).
  if (const auto* v = sec.find("smbios_sockets")) {
    const std::uint64_t n = v->as_uint();
    unsigned cores = 0, threads = 0;
    for (const auto& so : hw.sockets) {
      cores += so.cores;
      threads += so.threads;
    }
    if (n == 0 || n > 8 || cores % n || threads % n)
      v->fail(fmt::format("must be 1..8 and divide the {} cores and {} threads", cores, threads));
    const unsigned per_cores = cores / static_cast<unsigned>(n);
    const unsigned per_threads = threads / static_cast<unsigned>(n);
    const unsigned old_cores = hw.sockets.empty() ? 0 : hw.sockets.front().cores;
    hw.sockets.assign(n, {per_cores, per_threads});
    // Per-socket cache totals follow the socket's cores.
    if (old_cores)
      for (auto& c : hw.caches) c.size_kib = c.size_kib / old_cores * per_cores;
  }
  if (const auto* v = sec.find("smbios_memory_mb")) {
    const std::uint64_t mb = v->as_uint();
    const std::uint64_t arrays = std::max<std::size_t>(1, hw.sockets.size());
    if (mb == 0 || mb > (64ULL << 20) || mb % arrays)
      v->fail(fmt::format("must be 1..{} MiB and divide over the {} sockets", 64ULL << 20, arrays));
    hw.nodes.clear();
    for (std::uint64_t i = 0; i < arrays; ++i)
      hw.nodes.push_back({i * (mb / arrays) * 1024 * 1024, mb / arrays * 1024});
  }
  // [net] validated its own keys (it ran first); only well-formed PCI
  // addresses reach here.
  if (const auto* net = ctx.root.find("net")) {
    for (const auto& ifc : net->get_array("interface")) {
      const auto* pci = ifc.find("pci");
      if (!pci || pci->type() != core::ConfigValue::Type::String) continue;
      unsigned seg = 0, bus = 0, dev = 0, fn = 0;
      if (std::sscanf(pci->as_string().c_str(), "%x:%x:%x.%x", &seg, &bus, &dev, &fn) != 4)
        continue;
      hw.slots.push_back({true, static_cast<std::uint16_t>(seg), static_cast<std::uint8_t>(bus),
                          static_cast<std::uint8_t>((dev << 3) | fn)});
    }
  }
  const std::uint64_t slots = sec.get_uint("pcie_slots", std::max<std::size_t>(8, hw.slots.size()));
  if (slots > 64) sec.require("pcie_slots").fail("must be 0..64");
  if (hw.slots.size() > slots)
    sec.require("pcie_slots")
        .fail(fmt::format("fewer slots than the {} PCI NICs of [net]", hw.slots.size()));
  hw.slots.resize(slots);
  return hw;
}

void build_dcdbas(MachineContext& ctx, const core::ConfigValue& sec) {
  DcdbasConfig cfg;
  cfg.wsmt = sec.get_bool("wsmt", false);
  cfg.wsmt_address = sec.get_uint("wsmt_buffer_address", cfg.wsmt_address);
  cfg.wsmt_pages = sec.get_uint("wsmt_buffer_pages", cfg.wsmt_pages);
  if (cfg.wsmt) {
    // dcdbas_check_wsmt refuses a buffer above 4 GiB (probe fails).
    if ((cfg.wsmt_address + 8) >> 32) sec.require("wsmt_buffer_address").fail("buffer address is above 4GB");
    if (cfg.wsmt_address % 4096) sec.require("wsmt_buffer_address").fail("must be page aligned");
    if (cfg.wsmt_pages == 0 || cfg.wsmt_pages > 65) sec.require("wsmt_buffer_pages").fail("must be 1..65");
  }
  dcdbas::BiosConfig bios_config = dcdbas::BiosConfig::from_section(sec);
  dcdbas::SmbiosIdentity ident = dcdbas::SmbiosIdentity::from_section(sec, bios_config);
  ident.wsmt = cfg.wsmt;
  ident.wsmt_address = cfg.wsmt_address;
  ident.wsmt_size = cfg.wsmt_pages * 4096;
  auto smbios =
      std::make_shared<dcdbas::DcdbasSmbios>(ident, bios_config, smbios_hardware(ctx, sec));
  auto bios = std::make_shared<dcdbas::DellBios>(std::move(bios_config));
  auto dev = std::make_shared<Dcdbas>(ctx.env, cfg, bios);
  Machine* machine = &ctx.machine;
  // A raw pointer: the BIOS is the device's, and a shared_ptr here would
  // make the two keep each other alive.
  bios->set_power_handler([machine, d = dev.get()](const std::string& state) {
    if (d->power_action_allowed()) machine->set_power_state(state);
  });

  dev->kobj_ = ctx.tree.add_device<Dcdbas>("devices/platform/dcdbas", dev, Dcdbas::groups());
  ctx.tree.mkdir_p("bus/platform/devices");
  ctx.tree.mkdir_p("bus/platform/drivers/dcdbas");
  ctx.tree.add_symlink("devices/platform/dcdbas/driver", "../../../bus/platform/drivers/dcdbas");
  ctx.tree.add_symlink("devices/platform/dcdbas/subsystem", "../../../bus/platform");
  ctx.tree.add_symlink("bus/platform/devices/dcdbas", "../../../devices/platform/dcdbas");
  ctx.tree.add_symlink("bus/platform/drivers/dcdbas/dcdbas", "../../../../devices/platform/dcdbas");
  ctx.tree.add_symlink("bus/platform/drivers/dcdbas/module", "../../../../module/dcdbas");
  auto mod = std::make_shared<DcdbasModule>();
  ctx.tree.add_device<DcdbasModule>("module/dcdbas", mod, DcdbasModule::groups());
  ctx.tree.mkdir_p("module/dcdbas/drivers");
  ctx.tree.add_symlink("module/dcdbas/drivers/platform:dcdbas", "../../../bus/platform/drivers/dcdbas");

  // The same machine as SMBIOS (dmi-sysfs tables, dmi-id).
  dcdbas::add_dmi(ctx, smbios);
  auto debug = std::make_shared<DcdbasDebug>(ctx.env, bios);
  ctx.tree.add_device<DcdbasDebug>("kernel/debug/vsysfs/dcdbas", debug, DcdbasDebug::groups());
  ctx.machine.keep(debug);

  // register_reboot_notifier(&dcdbas_reboot_nb): priority INT_MIN, runs last.
  std::weak_ptr<Dcdbas> weak = dev;
  ctx.machine.register_reboot_notifier([weak](RebootCode code) {
    if (auto d = weak.lock()) d->dcdbas_reboot_notify(code);
  });
  // A boot: the driver probes again after the BIOS's POST, which builds
  // the SMBIOS tables with the tags it has now (an asset tag set by SMI
  // shows in DMI from the next boot on).
  std::weak_ptr<dcdbas::DcdbasSmbios> weak_smbios = smbios;
  ctx.machine.register_boot_hook([weak, weak_smbios] {
    auto d = weak.lock();
    if (!d) return;
    d->boot();
    if (auto s = weak_smbios.lock()) s->boot(d->bios().service_tag(), d->bios().asset_tag());
  });
  ctx.machine.keep(dev);
  ctx.machine.keep(mod);
  ctx.machine.keep(bios);
  register_dcdbas_state(ctx, dev, smbios);
}

namespace {
// After the platform bus and the other devices: the reboot notifier must
// be registered last (INT_MIN priority runs after every other notifier).
const SectionRegistrar kReg{"dcdbas", &build_dcdbas, 1000};
}  // namespace

}  // namespace vsysfs::devices
