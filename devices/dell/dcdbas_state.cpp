// The [dcdbas] section's part of a machine snapshot (docs/snapshot.md
// "What restore covers"): one StateHandler, "dcdbas", for the driver, the
// simulated BIOS behind it and the SMBIOS tables of the current boot.
//
// The record (version 1):
//   dcdbas.smi_data_buf_size, dcdbas.smi_data (hex, up to the last
//   non-zero byte; the rest is zero), dcdbas.smi_data_buf_phys_addr,
//   dcdbas.max_smi_data_buf_size, dcdbas.wsmt (checked), dcdbas.next_dma
//                              the SMI buffer and the simulated DMA cursor
//   dcdbas.host_control_action, .host_control_smi_type,
//   dcdbas.host_control_on_shutdown     the pending host-control request
//   dcdbas.driver_override, dcdbas.runtime_pm_allowed  platform files
//   bios.setting.LOC           "NV,BATTERY,AC" of every NV setting (the set
//                              of locations checked: fixed by the machine)
//   bios.service_tag, bios.asset_tag, bios.property_tag
//   bios.password.{user,admin,owner}    scan codes (empty: none)
//   bios.boot_count            POSTs so far: salts the security keys, so a
//                              key handed out before the snapshot is good
//                              again after the restore
//   bios.cmos.P                hex of CMOS page P (index port P, 256 bytes)
//                              for every page that is not all zero
//   bios.index, bios.latch     "PORT:BYTE,..." CMOS index registers and the
//                              last byte written to each port (the APM
//                              status latch a TYPE1 host control polls)
//   bios.smi_rules             the SMI answer table, one smi_answers line
//                              per rule
//   smbios.service_tag, smbios.asset_tag  the tags the current boot's
//                              tables were built with (an asset tag set by
//                              SMI shows in DMI only from the next boot)
// Not saved: hc_fault_ (set only for the duration of one host-control SMI,
// under smi_data_lock, which save takes), the BIOS's power handler and
// everything else fixed by the machine file (config_, identity, hardware).
//
// Locking: save and load take smi_data_lock, then bios_lock (their order),
// then platform_lock and smbios_lock (leaves) one at a time. load parses
// and checks the whole record first (EINVAL, nothing changed).

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>

#include <fmt/format.h>

#include "core/page_buffer.hpp"
#include "core/state_record.hpp"
#include "devices/dell/dcdbas.hpp"
#include "devices/dell/dcdbas_smbios.hpp"

namespace vsysfs::devices {
namespace {

std::string to_hex(const std::uint8_t* p, std::size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) out += fmt::format("{:02x}", p[i]);
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool from_hex(std::string_view s, std::vector<std::uint8_t>& out) {
  if (s.size() % 2) return false;
  out.clear();
  for (std::size_t i = 0; i < s.size(); i += 2) {
    const int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return true;
}

std::string port_map(const std::map<std::uint16_t, std::uint8_t>& m) {
  std::string out;
  for (const auto& [port, v] : m) out += fmt::format("{}{}:{}", out.empty() ? "" : ",", port, v);
  return out;
}

bool parse_u64(std::string_view s, std::uint64_t& v) {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return false;
  v = 0;
  for (char c : s) {
    if (v > (UINT64_MAX - static_cast<unsigned>(c - '0')) / 10) return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return true;
}

bool parse_port_map(std::string_view s, std::map<std::uint16_t, std::uint8_t>& out) {
  while (!s.empty()) {
    const auto comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    const auto colon = item.find(':');
    std::uint64_t port = 0, v = 0;
    if (colon == std::string_view::npos || !parse_u64(item.substr(0, colon), port) ||
        !parse_u64(item.substr(colon + 1), v) || port > 0xFFFF || v > 0xFF ||
        !out.emplace(static_cast<std::uint16_t>(port), static_cast<std::uint8_t>(v)).second)
      return false;
  }
  return true;
}

// "A,B,C" of three u32.
bool parse_values(std::string_view s, std::array<std::uint32_t, 3>& out) {
  for (std::size_t i = 0; i < 3; ++i) {
    const auto comma = s.find(',');
    if ((i < 2) == (comma == std::string_view::npos)) return false;
    std::uint64_t v = 0;
    if (!parse_u64(s.substr(0, comma), v) || v > 0xFFFFFFFFu) return false;
    out[i] = static_cast<std::uint32_t>(v);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
  }
  return true;
}

// A tag or password as the BIOS holds it: at most `max` bytes, no NUL.
bool tag_ok(const std::string& s, std::size_t max) {
  return s.size() <= max && s.find('\0') == std::string::npos;
}

constexpr const char* kPasswordKeys[] = {"bios.password.user", "bios.password.admin",
                                         "bios.password.owner"};

}  // namespace

class DcdbasStateHandler {
 public:
  DcdbasStateHandler(std::shared_ptr<Dcdbas> dev, std::shared_ptr<dcdbas::DcdbasSmbios> smbios)
      : dev_(std::move(dev)), smbios_(std::move(smbios)) {}

  void save(core::StateWriter& w) const;
  core::Status load(const core::StateReader& r);

 private:
  struct Rec {
    std::vector<std::uint8_t> buf;
    std::uint32_t phys = 0;
    unsigned long max_size = 0;
    std::uint32_t next_dma = 0;
    unsigned hc_action = 0, hc_smi_type = 0, hc_on_shutdown = 0;
    std::string driver_override;
    bool runtime_pm_allowed = true;
    std::vector<std::array<std::uint32_t, 3>> settings;  // in settings_ order
    std::string service_tag, asset_tag, property_tag;
    std::array<std::string, 3> passwords;  // user, admin, owner
    std::uint32_t boot_count = 0;
    std::vector<std::uint8_t> cmos;
    std::map<std::uint16_t, std::uint8_t> index, latch;
    std::vector<dcdbas::SmiRule> rules;
    std::string smbios_service_tag, smbios_asset_tag;
  };
  core::Status parse(const core::StateReader& r, Rec& rec) const;

  const std::shared_ptr<Dcdbas> dev_;
  const std::shared_ptr<dcdbas::DcdbasSmbios> smbios_;
};

void DcdbasStateHandler::save(core::StateWriter& w) const {
  Dcdbas& d = *dev_;
  {
    core::MutexLock lock(d.smi_data_lock_);
    std::size_t used = d.smi_data_buf_.size();
    while (used > 0 && d.smi_data_buf_[used - 1] == 0) --used;
    w.put_u64("dcdbas.smi_data_buf_size", d.smi_data_buf_.size());
    w.put_str("dcdbas.smi_data", to_hex(d.smi_data_buf_.data(), used));
    w.put_u64("dcdbas.smi_data_buf_phys_addr", d.smi_data_buf_phys_addr_);
    w.put_u64("dcdbas.max_smi_data_buf_size", d.max_smi_data_buf_size_);
    w.put_bool("dcdbas.wsmt", d.wsmt_enabled_);
    w.put_u64("dcdbas.next_dma", d.next_dma_);
    w.put_u64("dcdbas.host_control_action", d.host_control_action_);
    w.put_u64("dcdbas.host_control_smi_type", d.host_control_smi_type_);
    w.put_u64("dcdbas.host_control_on_shutdown", d.host_control_on_shutdown_);

    const dcdbas::DellBios& b = *d.bios_;
    core::MutexLock block(b.mu_);
    for (const auto& s : b.settings_)
      w.put_str(fmt::format("bios.setting.{}", s.location),
                fmt::format("{},{},{}", s.value[0], s.value[1], s.value[2]));
    w.put_str("bios.service_tag", b.service_tag_);
    w.put_str("bios.asset_tag", b.asset_tag_);
    w.put_str("bios.property_tag", b.property_tag_);
    w.put_str(kPasswordKeys[0], b.user_password_);
    w.put_str(kPasswordKeys[1], b.admin_password_);
    w.put_str(kPasswordKeys[2], b.owner_password_);
    w.put_u64("bios.boot_count", b.boot_count_);
    for (std::size_t page = 0; page < dcdbas::DellBios::kCmosSize / 256; ++page) {
      const std::uint8_t* p = b.cmos_.data() + page * 256;
      if (std::any_of(p, p + 256, [](std::uint8_t v) { return v != 0; }))
        w.put_str(fmt::format("bios.cmos.{}", page), to_hex(p, 256));
    }
    w.put_str("bios.index", port_map(b.index_));
    w.put_str("bios.latch", port_map(b.latch_));
    std::string rules;
    for (const auto& rule : b.rules_) rules += dcdbas::format_smi_rule(rule) + "\n";
    w.put_str("bios.smi_rules", rules);
  }
  {
    core::MutexLock lock(d.platform_lock_);
    w.put_str("dcdbas.driver_override", d.driver_override_);
    w.put_bool("dcdbas.runtime_pm_allowed", d.runtime_pm_allowed_);
  }
  const auto tables = smbios_->tables();
  w.put_str("smbios.service_tag", tables->service_tag);
  w.put_str("smbios.asset_tag", tables->asset_tag);
}

core::Status DcdbasStateHandler::parse(const core::StateReader& r, Rec& rec) const {
  const core::Errno kBad{EINVAL};
  const Dcdbas& d = *dev_;
  auto size = r.u64("dcdbas.smi_data_buf_size");
  auto data = r.str("dcdbas.smi_data");
  auto phys = r.u64("dcdbas.smi_data_buf_phys_addr");
  auto max = r.u64("dcdbas.max_smi_data_buf_size");
  auto wsmt = r.boolean("dcdbas.wsmt");
  auto next_dma = r.u64("dcdbas.next_dma");
  auto action = r.u64("dcdbas.host_control_action");
  auto smi_type = r.u64("dcdbas.host_control_smi_type");
  auto on_shutdown = r.u64("dcdbas.host_control_on_shutdown");
  auto override_ = r.str("dcdbas.driver_override");
  auto pm = r.boolean("dcdbas.runtime_pm_allowed");
  if (!size || !data || !phys || !max || !wsmt || !next_dma || !action || !smi_type ||
      !on_shutdown || !override_ || !pm)
    return kBad;
  // The buffer: at most its limit, below 4 GiB; data never past its size.
  if (*max > Dcdbas::kMaxSmiDataBufSize || *size > *max || *phys > 0xFFFFFFFFu ||
      !from_hex(*data, rec.buf) || rec.buf.size() > *size)
    return kBad;
  if (*next_dma < Dcdbas::kDmaBase || *next_dma > Dcdbas::kDmaEnd) return kBad;
  // u32 in the driver (unsigned long parsed, then truncated on store).
  if (*action > UINT_MAX || *smi_type > UINT_MAX || *on_shutdown > UINT_MAX) return kBad;
  // driver_set_override keeps the string up to its first newline.
  if (override_->size() >= core::kPageSize - 1 || override_->find('\n') != std::string::npos ||
      override_->find('\0') != std::string::npos)
    return kBad;
  rec.buf.resize(static_cast<std::size_t>(*size), 0);
  rec.phys = static_cast<std::uint32_t>(*phys);
  rec.max_size = static_cast<unsigned long>(*max);
  rec.next_dma = static_cast<std::uint32_t>(*next_dma);
  rec.hc_action = static_cast<unsigned>(*action);
  rec.hc_smi_type = static_cast<unsigned>(*smi_type);
  rec.hc_on_shutdown = static_cast<unsigned>(*on_shutdown);
  rec.driver_override = *override_;
  rec.runtime_pm_allowed = *pm;
  {
    core::MutexLock lock(d.smi_data_lock_);
    // WSMT or not is the machine's; its buffer is the firmware's fixed one.
    if (*wsmt != d.wsmt_enabled_) return kBad;
    if (*wsmt &&
        (rec.phys != d.smi_data_buf_phys_addr_ || rec.max_size != d.max_smi_data_buf_size_ ||
         rec.buf.size() != d.smi_data_buf_.size()))
      return kBad;
    // Without WSMT: no buffer has address 0, a buffer has one.
    if (!*wsmt && (rec.buf.empty() != (rec.phys == 0))) return kBad;
  }

  auto service = r.str("bios.service_tag");
  auto asset = r.str("bios.asset_tag");
  auto property = r.str("bios.property_tag");
  auto boot_count = r.u64("bios.boot_count");
  auto index = r.str("bios.index");
  auto latch = r.str("bios.latch");
  auto rules = r.str("bios.smi_rules");
  auto smbios_service = r.str("smbios.service_tag");
  auto smbios_asset = r.str("smbios.asset_tag");
  if (!service || !asset || !property || !boot_count || !index || !latch || !rules ||
      !smbios_service || !smbios_asset)
    return kBad;
  if (!tag_ok(*service, dcdbas::kTagSize) || !tag_ok(*asset, dcdbas::kTagSize) ||
      !tag_ok(*property, dcdbas::kPropertyTagLen) || !tag_ok(*smbios_service, dcdbas::kTagSize) ||
      !tag_ok(*smbios_asset, dcdbas::kTagSize) || *boot_count > 0xFFFFFFFFu)
    return kBad;
  rec.service_tag = *service;
  rec.asset_tag = *asset;
  rec.property_tag = *property;
  rec.smbios_service_tag = *smbios_service;
  rec.smbios_asset_tag = *smbios_asset;
  rec.boot_count = static_cast<std::uint32_t>(*boot_count);
  for (std::size_t i = 0; i < 3; ++i) {
    auto pw = r.str(kPasswordKeys[i]);
    if (!pw || !tag_ok(*pw, dcdbas::kPasswordLen)) return kBad;
    rec.passwords[i] = *pw;
  }
  if (!parse_port_map(*index, rec.index) || !parse_port_map(*latch, rec.latch)) return kBad;
  // CMOS index registers live on the two index ports only.
  for (const auto& [port, v] : rec.index)
    if (port != dcdbas::kCmosBasePort && port != dcdbas::kCmosBasePort + 2) return kBad;
  for (std::string_view rest = *rules; !rest.empty();) {
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos) return kBad;
    auto e = dcdbas::parse_smi_rule_line(rest.substr(0, nl));
    if (!e || e->op != dcdbas::SmiRuleEdit::Op::Add || rec.rules.size() >= dcdbas::kMaxSmiRules)
      return kBad;
    rec.rules.push_back(e->rule);
    rest.remove_prefix(nl + 1);
  }
  rec.cmos.assign(dcdbas::DellBios::kCmosSize, 0);
  constexpr std::string_view kCmos = "bios.cmos.";
  for (const auto& key : r.keys_with_prefix(kCmos)) {
    std::uint64_t page = 0;
    std::vector<std::uint8_t> bytes;
    if (!parse_u64(std::string_view(key).substr(kCmos.size()), page) ||
        page >= dcdbas::DellBios::kCmosSize / 256 || !from_hex(*r.str(key), bytes) ||
        bytes.size() != 256)
      return kBad;
    std::copy(bytes.begin(), bytes.end(),
              rec.cmos.begin() + static_cast<std::ptrdiff_t>(page * 256));
  }
  // Exactly the NV settings of this machine.
  const dcdbas::DellBios& b = *d.bios_;
  core::MutexLock block(b.mu_);
  if (r.keys_with_prefix("bios.setting.").size() != b.settings_.size()) return kBad;
  for (const auto& s : b.settings_) {
    auto v = r.str(fmt::format("bios.setting.{}", s.location));
    std::array<std::uint32_t, 3> values{};
    if (!v || !parse_values(*v, values)) return kBad;
    rec.settings.push_back(values);
  }
  return {};
}

core::Status DcdbasStateHandler::load(const core::StateReader& r) {
  Rec rec;
  if (auto st = parse(r, rec); !st) return st;
  // Checked: nothing below fails.
  Dcdbas& d = *dev_;
  {
    core::MutexLock lock(d.smi_data_lock_);
    d.smi_data_buf_ = std::move(rec.buf);
    d.smi_data_buf_phys_addr_ = rec.phys;
    d.max_smi_data_buf_size_ = rec.max_size;
    d.next_dma_ = rec.next_dma;
    d.host_control_action_ = rec.hc_action;
    d.host_control_smi_type_ = rec.hc_smi_type;
    d.host_control_on_shutdown_ = rec.hc_on_shutdown;

    dcdbas::DellBios& b = *d.bios_;
    core::MutexLock block(b.mu_);
    for (std::size_t i = 0; i < rec.settings.size(); ++i) b.settings_[i].value = rec.settings[i];
    b.service_tag_ = std::move(rec.service_tag);
    b.asset_tag_ = std::move(rec.asset_tag);
    b.property_tag_ = std::move(rec.property_tag);
    b.user_password_ = std::move(rec.passwords[0]);
    b.admin_password_ = std::move(rec.passwords[1]);
    b.owner_password_ = std::move(rec.passwords[2]);
    b.boot_count_ = rec.boot_count;
    b.cmos_ = std::move(rec.cmos);
    b.index_ = std::move(rec.index);
    b.latch_ = std::move(rec.latch);
    b.rules_ = std::move(rec.rules);
  }
  {
    core::MutexLock lock(d.platform_lock_);
    d.driver_override_ = std::move(rec.driver_override);
    d.runtime_pm_allowed_ = rec.runtime_pm_allowed;
  }
  // The tables are rebuilt only when the boot they describe differs.
  const auto tables = smbios_->tables();
  if (tables->service_tag != rec.smbios_service_tag || tables->asset_tag != rec.smbios_asset_tag)
    smbios_->boot(std::move(rec.smbios_service_tag), std::move(rec.smbios_asset_tag));
  return {};
}

void register_dcdbas_state(MachineContext& ctx, std::shared_ptr<Dcdbas> dev,
                           std::shared_ptr<dcdbas::DcdbasSmbios> smbios) {
  auto h = std::make_shared<DcdbasStateHandler>(std::move(dev), std::move(smbios));
  ctx.machine.register_state({.name = "dcdbas",
                              .version = 1,
                              .save = [h](core::StateWriter& w) { h->save(w); },
                              .load = [h](const core::StateReader& r) { return h->load(r); },
                              .loads_into_new_boot = {},
                              .section = {}});
}

}  // namespace vsysfs::devices
