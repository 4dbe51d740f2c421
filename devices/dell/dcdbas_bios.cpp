#include "devices/dell/dcdbas_bios.hpp"

#include "core/bytes.hpp"
#include "core/parse.hpp"
#include "devices/machine/machine.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fmt/format.h>

namespace vsysfs::devices::dcdbas {
namespace {

constexpr std::int32_t kSmiOk = 0;
constexpr std::int32_t kSmiError = -1;        // "completed with error" (dell_smbios_error: EIO)
constexpr std::int32_t kSmiUnsupported = -2;  // "not supported" (ENXIO)

using core::le32;
using core::put_le32;

std::string hex(std::uint32_t v) { return fmt::format("{:#x}", v); }

template <typename T>
std::string json_array(const std::array<T, 4>& a) {
  return fmt::format("[{},{},{},{}]", a[0], a[1], a[2], a[3]);
}

// The PowerEdge table of Documentation/dcdbas.txt (docs/kernel-semantics.md section 2.5): the
// host-control SMI type each model's BIOS answers.
unsigned host_control_type_of(std::string_view model) {
  constexpr std::string_view kPrefix = "PowerEdge ";
  if (model.substr(0, kPrefix.size()) != kPrefix) return 0;
  const std::string_view m = model.substr(kPrefix.size());
  for (std::string_view t1 : {"300", "1300"})
    if (m == t1) return 1;
  for (std::string_view t2 : {"1400", "500SC", "1500SC", "1550", "600SC", "1600SC", "650", "1655MC"})
    if (m == t2) return 2;
  for (std::string_view t3 : {"700", "750"})
    if (m == t3) return 3;
  return 0;
}

std::uint32_t get_u32(const core::ConfigValue& t, std::string_view key, std::uint64_t fallback) {
  const std::uint64_t v = t.get_uint(key, fallback);
  if (v > 0xFFFFFFFFu) t.require(key).fail("does not fit 32 bits");
  return static_cast<std::uint32_t>(v);
}

std::uint16_t get_u16(const core::ConfigValue& t, std::string_view key, std::uint64_t fallback) {
  const std::uint64_t v = t.get_uint(key, fallback);
  if (v > 0xFFFF) t.require(key).fail("does not fit 16 bits");
  return static_cast<std::uint16_t>(v);
}

std::string get_tag(const core::ConfigValue& sec, std::string_view key, std::string_view fallback,
                    std::size_t max) {
  std::string v = sec.get_string(key, fallback);
  if (v.size() > max) sec.require(key).fail(fmt::format("longer than {} bytes", max));
  if (v.find('\0') != std::string::npos) sec.require(key).fail("contains a NUL byte");
  return v;
}

// A tag as the BIOS stores it: up to `max` bytes, cut at the first NUL.
std::string tag_from_bytes(const std::uint8_t* p, std::size_t max) {
  std::size_t n = 0;
  while (n < max && p[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

// The password a machine file names, as the BIOS stores it.
std::string get_password(const core::ConfigValue& sec, std::string_view key) {
  const std::string v = sec.get_string(key, "");
  if (v.size() > kPasswordLen)
    sec.require(key).fail(fmt::format("longer than {} characters", kPasswordLen));
  const auto codes = password_scancodes(v);
  if (!codes) sec.require(key).fail("a character no key of a US keyboard types");
  return *codes;
}

// The 8 password bytes of two little-endian argument words.
std::string password_of(std::uint32_t lo, std::uint32_t hi) {
  std::uint8_t b[kPasswordLen];
  put_le32(b, lo);
  put_le32(b + 4, hi);
  return tag_from_bytes(b, kPasswordLen);
}

// A number of the smi_answers syntax: decimal, 0x hex or 0 octal, with an
// optional sign (kstrtoll base 0), inside [lo, hi].
std::optional<std::int64_t> rule_number(std::string_view s, std::int64_t lo, std::int64_t hi) {
  const auto r = core::kstrtoll(s, 0);
  if (!r || *r < lo || *r > hi) return std::nullopt;
  return *r;
}

// "A,B,C" with exactly n comma-separated items.
std::optional<std::vector<std::string_view>> rule_list(std::string_view s, std::size_t n) {
  std::vector<std::string_view> items;
  while (true) {
    const std::size_t c = s.find(',');
    items.push_back(s.substr(0, c));
    if (c == std::string_view::npos) break;
    s.remove_prefix(c + 1);
  }
  if (items.size() != n) return std::nullopt;
  return items;
}

// An output word: any 32-bit pattern, written signed or unsigned.
constexpr std::int64_t kOutLo = INT32_MIN;
constexpr std::int64_t kOutHi = UINT32_MAX;

SmiRule rule_from_table(const core::ConfigValue& t) {
  SmiRule r;
  if (!t.has("class") || !t.has("select")) t.fail("an smi_answer needs class and select");
  r.cls = get_u16(t, "class", 0);
  r.sel = get_u16(t, "select", 0);
  if (t.has("input")) {
    const auto& in = t.get_array("input");
    if (in.size() != 4) t.require("input").fail("input has 4 words (a number or \"any\" each)");
    for (std::size_t i = 0; i < 4; ++i) {
      if (in[i].type() == core::ConfigValue::Type::String) {
        if (in[i].as_string() != "any") in[i].fail("an input word is a number or \"any\"");
        continue;
      }
      const std::int64_t v = in[i].as_int();
      if (v < 0 || v > 0xFFFFFFFF) in[i].fail("an input word is 0..0xffffffff");
      r.in[i] = static_cast<std::uint32_t>(v);
    }
  }
  if (t.has("output")) {
    const auto& out = t.get_array("output");
    if (out.size() > 3)
      t.require("output").fail("output is cbRES2..cbRES4 (up to 3 words; cbRES1 is result)");
    for (std::size_t i = 0; i < out.size(); ++i) {
      const std::int64_t v = out[i].as_int();
      if (v < kOutLo || v > kOutHi) out[i].fail("an output word is 32 bits");
      r.out[i] = static_cast<std::uint32_t>(v);
    }
  }
  const std::int64_t res = t.get_int("result", 0);
  if (res < INT32_MIN || res > INT32_MAX)
    t.require("result").fail("result is a signed 32-bit cbRES1");
  r.result = static_cast<std::int32_t>(res);
  return r;
}

}  // namespace

std::optional<std::string> password_scancodes(std::string_view ascii) {
  // Keyboard rows of the US layout, unshifted and shifted, each with the
  // set-1 make code of its first key.
  struct Row {
    std::string_view plain, shifted;
    std::uint8_t first;
  };
  static constexpr Row kRows[] = {
      {"1234567890-=", "!@#$%^&*()_+", 0x02},
      {"qwertyuiop[]", "QWERTYUIOP{}", 0x10},
      {"asdfghjkl;'`", "ASDFGHJKL:\"~", 0x1E},
      {"\\zxcvbnm,./", "|ZXCVBNM<>?", 0x2B},
      {" ", " ", 0x39},
  };
  std::string out;
  for (const char c : ascii) {
    std::optional<std::uint8_t> code;
    for (const Row& r : kRows) {
      std::size_t i = r.plain.find(c);
      if (i == std::string_view::npos) i = r.shifted.find(c);
      if (i != std::string_view::npos) {
        code = static_cast<std::uint8_t>(r.first + i);
        break;
      }
    }
    if (!code) return std::nullopt;
    out.push_back(static_cast<char>(*code));
  }
  return out;
}

std::string format_smi_rule(const SmiRule& r) {
  std::string in;
  for (std::size_t i = 0; i < 4; ++i)
    in += fmt::format("{}{}", i ? "," : "", r.in[i] ? fmt::format("{:#x}", *r.in[i]) : "*");
  return fmt::format("add {} {} in={} out={:#x},{:#x},{:#x} res={}", r.cls, r.sel, in, r.out[0],
                     r.out[1], r.out[2], r.result);
}

std::optional<SmiRuleEdit> parse_smi_rule_line(std::string_view line) {
  const std::vector<std::string_view> w = core::split_words(line);
  SmiRuleEdit e;
  if (w.empty()) return std::nullopt;
  if (w[0] == "clear") {
    if (w.size() != 1) return std::nullopt;
    e.op = SmiRuleEdit::Op::Clear;
    return e;
  }
  if (w[0] == "del") {
    if (w.size() != 2) return std::nullopt;
    const auto n = rule_number(w[1], 0, kMaxSmiRules - 1);
    if (!n || w[1].front() == '-' || w[1].front() == '+') return std::nullopt;
    e.op = SmiRuleEdit::Op::Del;
    e.index = static_cast<std::size_t>(*n);
    return e;
  }
  if (w[0] != "add" || w.size() < 3) return std::nullopt;
  const auto cls = rule_number(w[1], 0, 0xFFFF);
  const auto sel = rule_number(w[2], 0, 0xFFFF);
  if (!cls || !sel) return std::nullopt;
  e.rule.cls = static_cast<std::uint16_t>(*cls);
  e.rule.sel = static_cast<std::uint16_t>(*sel);
  bool seen_in = false, seen_out = false, seen_res = false;
  for (std::size_t k = 3; k < w.size(); ++k) {
    const std::string_view word = w[k];
    if (word.starts_with("in=") && !seen_in) {
      seen_in = true;
      const auto items = rule_list(word.substr(3), 4);
      if (!items) return std::nullopt;
      for (std::size_t i = 0; i < 4; ++i) {
        if ((*items)[i] == "*") continue;
        const auto v = rule_number((*items)[i], 0, 0xFFFFFFFF);
        if (!v) return std::nullopt;
        e.rule.in[i] = static_cast<std::uint32_t>(*v);
      }
    } else if (word.starts_with("out=") && !seen_out) {
      seen_out = true;
      const auto items = rule_list(word.substr(4), 3);
      if (!items) return std::nullopt;
      for (std::size_t i = 0; i < 3; ++i) {
        const auto v = rule_number((*items)[i], kOutLo, kOutHi);
        if (!v) return std::nullopt;
        e.rule.out[i] = static_cast<std::uint32_t>(*v);
      }
    } else if (word.starts_with("res=") && !seen_res) {
      seen_res = true;
      const auto v = rule_number(word.substr(4), INT32_MIN, INT32_MAX);
      if (!v) return std::nullopt;
      e.rule.result = static_cast<std::int32_t>(*v);
    } else {
      return std::nullopt;
    }
  }
  return e;
}

BiosConfig BiosConfig::from_section(const core::ConfigValue& sec) {
  BiosConfig c;
  c.model = sec.get_string("model", c.model);
  const unsigned table_type = host_control_type_of(c.model);
  const std::uint64_t hc = sec.get_uint("host_control_type", table_type);
  if (hc > 3) sec.require("host_control_type").fail("must be 0 (none), 1, 2 or 3");
  c.host_control_type = static_cast<unsigned>(hc);
  c.cmd_port = get_u16(sec, "smi_port", c.cmd_port);
  const std::uint64_t code = sec.get_uint("smi_code", c.cmd_code);
  if (code > 0xFF) sec.require("smi_code").fail("does not fit 8 bits");
  c.cmd_code = static_cast<std::uint8_t>(code);
  const std::uint64_t ver = sec.get_uint("dell_smbios_version", c.dell_smbios_version);
  if (ver < 1 || ver > 255) sec.require("dell_smbios_version").fail("must be 1..255");
  c.dell_smbios_version = static_cast<unsigned>(ver);
  c.service_tag = get_tag(sec, "service_tag", "VSYS740", kTagSize);
  c.asset_tag = get_tag(sec, "asset_tag", "", kTagSize);
  c.property_tag = get_tag(sec, "property_tag", "", kPropertyTagLen);
  c.user_password = get_password(sec, "user_password");
  c.admin_password = get_password(sec, "admin_password");
  c.owner_password = get_password(sec, "owner_password");

  for (const auto& s : sec.get_array("setting")) {
    NvSetting n;
    n.location = get_u16(s, "location", 0);
    if (!s.has("location")) s.fail("a setting needs a location");
    n.name = s.has("name") ? require_line_text(s.require("name")) : std::string();
    n.min = get_u32(s, "min", 0);
    n.max = get_u32(s, "max", 0xFFFF);
    const std::uint32_t v = get_u32(s, "value", n.min);
    n.value = {v, get_u32(s, "battery", v), get_u32(s, "ac", v)};
    if (n.min > n.max) s.require("min").fail("min is above max");
    for (std::uint32_t x : n.value)
      if (x < n.min || x > n.max) s.require("value").fail("value outside min..max");
    for (const auto& o : c.settings)
      if (o.location == n.location) s.require("location").fail("duplicate setting location");
    c.settings.push_back(n);
  }
  for (const auto& t : sec.get_array("token")) {
    DaToken d;
    if (!t.has("id") || !t.has("location")) t.fail("a token needs id and location");
    d.id = get_u16(t, "id", 0);
    d.location = get_u16(t, "location", 0);
    d.value = get_u16(t, "value", 0);
    d.name = t.has("name") ? require_line_text(t.require("name")) : std::string();
    const auto it = std::find_if(c.settings.begin(), c.settings.end(),
                                 [&](const NvSetting& n) { return n.location == d.location; });
    if (it == c.settings.end()) t.require("location").fail("no [[dcdbas.setting]] has this location");
    if (d.value < it->min || d.value > it->max) t.require("value").fail("outside the setting's min..max");
    for (const auto& o : c.tokens)
      if (o.id == d.id) t.require("id").fail("duplicate token id");
    c.tokens.push_back(d);
  }
  for (const auto& t : sec.get_array("cmos_token")) {
    CmosToken d;
    if (!t.has("id") || !t.has("location")) t.fail("a CMOS token needs id and location");
    d.id = get_u16(t, "id", 0);
    d.index_port = get_u16(t, "index_port", d.index_port);
    // CMOS keeps page P at P*256 (kCmosSize): an index port above 0xff
    // has no page.
    if (d.index_port > 0xFF) t.require("index_port").fail("the CMOS pages are index ports 0..0xff");
    d.data_port = get_u16(t, "data_port", static_cast<std::uint64_t>(d.index_port) + 1);
    const std::uint64_t loc = t.get_uint("location", 0);
    if (loc > 0xFF) t.require("location").fail("a CMOS index is 8 bits");
    d.location = static_cast<std::uint8_t>(loc);
    const std::string kind = t.get_string("kind", "bool");
    if (kind == "string") {
      // The 0xD4 entry says "string" with and_mask 0 and carries the
      // length in or_value (libsmbios token_impl.h, token_d4.c).
      for (std::string_view k : {"and_mask", "or_value", "active"})
        if (t.has(k)) t.require(k).fail("a string CMOS token has length and value instead");
      if (!t.has("length")) t.fail("a string CMOS token needs a length");
      const std::uint64_t len = t.get_uint("length", 0);
      if (len < 1 || len > 0xFF) t.require("length").fail("a string CMOS token is 1..255 bytes");
      // libsmbios sends location + i to the 8-bit index port: a string
      // past index 0xff would wrap around on real hardware.
      if (loc + len > 256) t.require("length").fail("runs past CMOS index 0xff");
      d.or_value = static_cast<std::uint8_t>(len);
      if (t.has("value")) d.value = require_line_text(t.require("value"));
      if (d.value.size() > len)
        t.require("value").fail(fmt::format("longer than the token's {} bytes", len));
    } else if (kind == "bool") {
      if (t.has("length") || t.has("value"))
        t.require(t.has("length") ? "length" : "value")
            .fail("only a kind = \"string\" token has it");
      const std::uint64_t andm = t.get_uint("and_mask", 0);
      const std::uint64_t orv = t.get_uint("or_value", 0);
      if (andm > 0xFF) t.require("and_mask").fail("8 bits");
      if (orv > 0xFF) t.require("or_value").fail("8 bits");
      if (andm == 0) t.require("and_mask").fail("0 makes a string token: use kind = \"string\"");
      if (orv & andm) t.require("or_value").fail("sets bits that and_mask keeps");
      d.and_mask = static_cast<std::uint8_t>(andm);
      d.or_value = static_cast<std::uint8_t>(orv);
      d.active = t.get_bool("active", false);
    } else {
      t.require("kind").fail("a CMOS token is \"bool\" or \"string\"");
    }
    d.name = t.has("name") ? require_line_text(t.require("name")) : std::string();
    for (const auto& o : c.cmos_tokens)
      if (o.id == d.id) t.require("id").fail("duplicate CMOS token id");
    // A string's bytes are its own: no other token may share them (bool
    // tokens share a byte with each other, one per setting of the bits).
    const auto span_of = [](const CmosToken& x) {
      return std::pair<unsigned, unsigned>(x.location,
                                           x.location + (x.is_string() ? x.or_value : 1u));
    };
    for (const auto& o : c.cmos_tokens) {
      if (o.index_port != d.index_port || (!o.is_string() && !d.is_string())) continue;
      const auto [a0, a1] = span_of(o);
      const auto [b0, b1] = span_of(d);
      if (a0 < b1 && b0 < a1)
        t.require("location").fail(fmt::format("overlaps the bytes of CMOS token {:#06x}", o.id));
    }
    // Nor the bytes where dcdbas leaves the host-control apm_cmd pointer
    // for this model's BIOS (docs/kernel-semantics.md section 2.5).
    if (d.is_string() && c.host_control_type != 0) {
      const unsigned page = c.host_control_type == 1 ? kCmosBasePort + 2 : kCmosBasePort;
      const unsigned first =
          c.host_control_type == 1 ? kPe1300CmosCmdStructPtr : kPe1400CmosCmdStructPtr;
      if (d.index_port == page && d.location < first + 4 && first < d.location + d.or_value)
        t.require("location").fail("overlaps the host-control pointer bytes in CMOS");
    }
    for (const auto& o : c.tokens)
      if (o.id == d.id) t.require("id").fail("also an SMI token id");
    c.cmos_tokens.push_back(d);
  }
  const auto& answers = sec.get_array("smi_answer");
  if (answers.size() > kMaxSmiRules)
    answers[kMaxSmiRules].fail(fmt::format("more than {} smi_answer entries", kMaxSmiRules));
  for (const auto& t : answers) c.smi_rules.push_back(rule_from_table(t));
  return c;
}

DellBios::DellBios(BiosConfig config)
    : config_(std::move(config)),
      settings_(config_.settings),
      service_tag_(config_.service_tag),
      asset_tag_(config_.asset_tag),
      property_tag_(config_.property_tag),
      user_password_(config_.user_password),
      admin_password_(config_.admin_password),
      owner_password_(config_.owner_password),
      cmos_(65536, 0),
      rules_(config_.smi_rules) {
  // Nothing has written the APM status port yet: it floats high.
  latch_[kPcatApmStatusPort] = 0xFF;
  // Power-on CMOS: the string tokens' values (NUL padded to their length,
  // as _d4_set_string writes them) and the bool tokens marked active,
  // applied in order.
  for (const auto& t : config_.cmos_tokens) {
    if (t.is_string()) {
      const std::size_t at = static_cast<std::size_t>(t.index_port) * 256 + t.location;
      std::fill_n(cmos_.begin() + static_cast<std::ptrdiff_t>(at), t.or_value, 0);
      std::copy(t.value.begin(), t.value.end(), cmos_.begin() + static_cast<std::ptrdiff_t>(at));
      continue;
    }
    if (!t.active) continue;
    std::uint8_t& b = cmos_[static_cast<std::size_t>(t.index_port) * 256 + t.location];
    b = static_cast<std::uint8_t>((b & t.and_mask) | t.or_value);
  }
}

std::size_t DellBios::cmos_read(std::uint64_t pos, std::span<char> out) const {
  core::MutexLock lock(mu_);
  if (pos >= cmos_.size()) return 0;
  const std::size_t n = std::min<std::uint64_t>(out.size(), cmos_.size() - pos);
  std::copy_n(cmos_.data() + pos, n, out.data());
  return n;
}

std::size_t DellBios::cmos_write(std::uint64_t pos, std::span<const char> in) {
  core::MutexLock lock(mu_);
  if (pos >= cmos_.size()) return 0;
  const std::size_t n = std::min<std::uint64_t>(in.size(), cmos_.size() - pos);
  std::copy_n(in.data(), n, cmos_.data() + pos);
  return n;
}

void DellBios::set_power_handler(PowerFn fn) {
  core::MutexLock lock(mu_);
  power_ = std::move(fn);
}

std::uint8_t DellBios::inb(std::uint16_t port) {
  core::MutexLock lock(mu_);
  // Data ports of the CMOS index/data pairs: the byte at the selected index.
  if (port == kCmosBasePort + 1 || port == kCmosBasePort + 3) {
    const auto ip = static_cast<std::uint16_t>(port - 1);
    return cmos_[static_cast<std::size_t>(ip) * 256 + index_[ip]];
  }
  auto it = latch_.find(port);
  return it == latch_.end() ? 0xFF : it->second;
}

SmiAnswer DellBios::outb(std::uint8_t value, std::uint16_t port, const SmiRegisters& regs,
                         PhysMemory& mem) {
  core::MutexLock lock(mu_);
  // CMOS index/data pairs: page 1 at 0x70/0x71, page 2 (PIIX4) at 0x72/0x73.
  if (port == kCmosBasePort || port == kCmosBasePort + 2) {
    index_[port] = value;
    return {};
  }
  if (port == kCmosBasePort + 1 || port == kCmosBasePort + 3) {
    const auto ip = static_cast<std::uint16_t>(port - 1);
    cmos_[static_cast<std::size_t>(ip) * 256 + index_[ip]] = value;
    return {};
  }
  latch_[port] = value;

  if (port == config_.cmd_port && value == config_.cmd_code) return calling_interface(regs, mem);

  const unsigned t = config_.host_control_type;
  const std::uint16_t apm_port = t == 2 ? kPe1400ApmControlPort : kPcatApmControlPort;
  if (t != 0 && port == apm_port && value == kEsmApmCmd) return apm(port, mem);

  SmiAnswer a;
  a.note = "no SMI handler on this port/code";
  return a;
}

SmiAnswer DellBios::calling_interface(const SmiRegisters& regs, PhysMemory& mem) {
  SmiAnswer a;
  a.handler = "calling_interface";
  a.data.emplace_back("ebx", hex(regs.ebx));
  std::uint8_t raw[kCallIntfBufferSize];
  if (!mem.read(regs.ebx, raw)) {
    // The handler dereferences EBX; with no RAM there it sees nothing it
    // can answer and leaves memory alone.
    a.note = "ebx does not point at RAM";
    return a;
  }
  a.answered = true;
  const std::uint16_t cls = static_cast<std::uint16_t>(raw[0] | raw[1] << 8);
  const std::uint16_t sel = static_cast<std::uint16_t>(raw[2] | raw[3] << 8);
  std::array<std::uint32_t, 4> in{};
  for (int i = 0; i < 4; ++i) in[i] = le32(raw + 4 + 4 * i);
  std::array<std::int32_t, 4> out{};
  std::string note;
  if (const auto rule = match_rule(cls, sel, in)) {
    // A scripted answer replaces the handler: nothing else changes.
    const SmiRule& r = rules_[*rule];
    out = {r.result, static_cast<std::int32_t>(r.out[0]), static_cast<std::int32_t>(r.out[1]),
           static_cast<std::int32_t>(r.out[2])};
    note = fmt::format("answered by smi_answers entry {}", *rule);
    a.data.emplace_back("smi_answer", *rule);
  } else {
    dispatch(cls, sel, in, out, mem, note);
  }
  std::uint8_t res[16];
  for (int i = 0; i < 4; ++i) put_le32(res + 4 * i, static_cast<std::uint32_t>(out[i]));
  (void)mem.write(regs.ebx + 20, res);
  a.note = note;
  a.data.emplace_back("class", cls);
  a.data.emplace_back("select", sel);
  a.data.push_back(core::EventField::raw("input", json_array(in)));
  a.data.push_back(core::EventField::raw("output", json_array(out)));
  return a;
}

std::optional<std::size_t> DellBios::match_rule(std::uint16_t cls, std::uint16_t sel,
                                                const std::array<std::uint32_t, 4>& in) const {
  std::optional<std::size_t> best;
  int best_exact = -1;
  for (std::size_t k = 0; k < rules_.size(); ++k) {
    const SmiRule& r = rules_[k];
    if (r.cls != cls || r.sel != sel) continue;
    int exact = 0;
    bool match = true;
    for (std::size_t i = 0; i < 4 && match; ++i) {
      if (!r.in[i]) continue;
      match = *r.in[i] == in[i];
      ++exact;
    }
    // Strictly more exact words win; on a tie the earlier entry stays.
    if (match && exact > best_exact) {
      best = k;
      best_exact = exact;
    }
  }
  return best;
}

std::vector<SmiRule> DellBios::smi_rules() const {
  core::MutexLock lock(mu_);
  return rules_;
}

core::Status DellBios::smi_rules_edit(const std::vector<SmiRuleEdit>& edits) {
  core::MutexLock lock(mu_);
  std::vector<SmiRule> next = rules_;
  for (const auto& e : edits) {
    switch (e.op) {
      case SmiRuleEdit::Op::Clear:
        next.clear();
        break;
      case SmiRuleEdit::Op::Del:
        if (e.index >= next.size()) return core::Errno{ENOENT};
        next.erase(next.begin() + static_cast<std::ptrdiff_t>(e.index));
        break;
      case SmiRuleEdit::Op::Add:
        if (next.size() >= kMaxSmiRules) return core::Errno{ENOSPC};
        next.push_back(e.rule);
        break;
    }
  }
  rules_ = std::move(next);
  return {};
}

NvSetting* DellBios::find_setting(std::uint16_t location) {
  for (auto& s : settings_)
    if (s.location == location) return &s;
  return nullptr;
}

void DellBios::dispatch(std::uint16_t cls, std::uint16_t sel, const std::array<std::uint32_t, 4>& in,
                        std::array<std::int32_t, 4>& out, PhysMemory& mem, std::string& note) {
  out = {kSmiUnsupported, 0, 0, 0};
  switch (cls) {
    case 0:  // token read: NV (0), battery (1), AC (2) value of a setting
    case 1:  // token write
      if (sel > 2) return;
      if (in[0] > 0xFFFF || !find_setting(static_cast<std::uint16_t>(in[0]))) {
        out[0] = kSmiError;
        note = "no setting at this location";
        return;
      }
      {
        NvSetting& s = *find_setting(static_cast<std::uint16_t>(in[0]));
        if (cls == 1 && !key_ok(in[2])) {
          out[0] = kSmiError;
          note = "bad security key";
          return;
        }
        if (cls == 1) {
          if (in[1] < s.min || in[1] > s.max) {
            out[0] = kSmiError;
            note = "value outside min..max";
            return;
          }
          note = fmt::format("location {:#x} {} -> {}", s.location, s.value[sel], in[1]);
          s.value[sel] = in[1];
        }
        out = {kSmiOk, static_cast<std::int32_t>(s.value[sel]), static_cast<std::int32_t>(s.min),
               static_cast<std::int32_t>(s.max)};
      }
      return;
    case 11: {  // asset (0 read, 1 write) and service (2 read, 3 write) tag
      if (sel > 3) return;
      std::string& tag = sel < 2 ? asset_tag_ : service_tag_;
      if (sel == 0 || sel == 2) {
        std::uint8_t bytes[kTagSize] = {};
        std::memcpy(bytes, tag.data(), std::min(tag.size(), kTagSize));
        out[0] = kSmiOk;
        for (int i = 0; i < 3; ++i) out[1 + i] = static_cast<std::int32_t>(le32(bytes + 4 * i));
        return;
      }
      if (!key_ok(in[3])) {
        out[0] = kSmiError;
        note = "bad security key";
        return;
      }
      // Dell: "some systems return an error when the service tag has
      // already been set": this one does (manufacturing sets it once).
      if (sel == 3 && !tag.empty()) {
        out[0] = kSmiError;
        note = "service tag already set";
        return;
      }
      std::uint8_t bytes[kTagSize];
      for (int i = 0; i < 3; ++i) put_le32(bytes + 4 * i, in[i]);
      tag = tag_from_bytes(bytes, kTagSize);
      note = fmt::format("{} tag set to '{}'", sel == 1 ? "asset" : "service", tag);
      out[0] = kSmiOk;
      return;
    }
    case 20: {  // property ownership tag, through a buffer at input[0]
      if (sel > 1) return;
      if (sel == 0) {
        std::uint32_t addr = in[0];
        std::size_t room = kPropertyTagLen + 1;
        if (config_.dell_smbios_version >= 2) {
          // libsmbios's "frombios_withheader": u32 length, then the data.
          std::uint8_t hdr[4];
          if (!mem.read(addr, hdr)) {
            out[0] = kSmiError;
            note = "buffer not in RAM";
            return;
          }
          room = le32(hdr);
          addr += 4;
        }
        // A length header of 0 asks for nothing: the empty write below
        // still checks the address. (std::copy_n, not memcpy: an empty
        // vector's data() may be null, found by fuzz_smi.)
        std::vector<std::uint8_t> data(std::min(room, kPropertyTagLen), 0);
        std::copy_n(property_tag_.begin(), std::min(property_tag_.size(), data.size()), data.begin());
        if (!mem.write(addr, data)) {
          out[0] = kSmiError;
          note = "buffer not in RAM";
          return;
        }
        out[0] = kSmiOk;
        return;
      }
      if (!key_ok(in[1])) {
        out[0] = kSmiError;
        note = "bad security key";
        return;
      }
      std::uint8_t data[kPropertyTagLen];
      if (!mem.read(in[0], data)) {
        out[0] = kSmiError;
        note = "buffer not in RAM";
        return;
      }
      property_tag_ = tag_from_bytes(data, kPropertyTagLen);
      note = fmt::format("property tag set to '{}'", property_tag_);
      out[0] = kSmiOk;
      return;
    }
    case kPasswordUser:
    case kPasswordAdmin:
    case kPasswordOwner:
      password_smi(cls, sel, in, out, note);
      return;
    default:
      return;
  }
}

std::string& DellBios::password_slot(std::uint16_t cls) {
  return cls == kPasswordUser    ? user_password_
         : cls == kPasswordAdmin ? admin_password_
                                 : owner_password_;
}

std::uint16_t DellBios::security_key(std::uint16_t cls) const {
  const std::string& pw = cls == kPasswordUser    ? user_password_
                          : cls == kPasswordAdmin ? admin_password_
                                                  : owner_password_;
  // FNV-1a over the boot, the class and the password: a key is good for
  // one password in one boot, as a BIOS's is (never 0, which a client
  // without a password sends).
  std::uint32_t h = 2166136261u;
  auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 16777619u; };
  for (int i = 0; i < 4; ++i) mix(static_cast<std::uint8_t>(boot_count_ >> (8 * i)));
  mix(static_cast<std::uint8_t>(cls));
  for (const char c : pw) mix(static_cast<std::uint8_t>(c));
  const auto key = static_cast<std::uint16_t>(h ^ (h >> 16));
  return key == 0 ? 1 : key;
}

bool DellBios::key_ok(std::uint32_t key) const {
  // libsmbios's dell_smi_get_security_key: the admin password's key when
  // one is installed, else the user password's; with neither, any value.
  // The BIOS compares the 16 bits the key has.
  if (!admin_password_.empty()) return (key & 0xFFFF) == security_key(kPasswordAdmin);
  if (!user_password_.empty()) return (key & 0xFFFF) == security_key(kPasswordUser);
  return true;
}

void DellBios::password_smi(std::uint16_t cls, std::uint16_t sel,
                            const std::array<std::uint32_t, 4>& in,
                            std::array<std::int32_t, 4>& out, std::string& note) {
  // cbRES1 of smi_password.c: SMI_PASSWORD_INSTALLED 0, _NOT_INSTALLED 1,
  // SMI_PASSWORD_CORRECT 0, _INCORRECT 2, SMI_PASSWORD_CHANGED 0.
  constexpr std::int32_t kInstalled = 0, kNotInstalled = 1, kIncorrect = 2;
  std::string& pw = password_slot(cls);
  const char* what = cls == kPasswordUser ? "user" : cls == kPasswordAdmin ? "admin" : "owner";
  switch (sel) {
    case 0:
      out[0] = pw.empty() ? kNotInstalled : kInstalled;
      return;
    case 1:
      if (pw.empty()) {
        out[0] = kNotInstalled;
        return;
      }
      if (password_of(in[0], in[1]) != pw) {
        out[0] = kIncorrect;
        note = fmt::format("{} password incorrect", what);
        return;
      }
      out[0] = kSmiOk;
      out[1] = security_key(cls);
      note = fmt::format("{} password verified", what);
      return;
    case 2: {
      if (password_of(in[0], in[1]) != pw) {
        out[0] = kIncorrect;
        note = fmt::format("{} password change: old password incorrect", what);
        return;
      }
      const std::string next = password_of(in[2], in[3]);
      note = fmt::format("{} password {}", what,
                         next.empty() ? "removed"
                         : pw.empty() ? "installed"
                                      : "changed");
      pw = next;
      out[0] = kSmiOk;
      return;
    }
    default:
      return;  // -2: no "II" interface (selects 3..5)
  }
}

std::string DellBios::password(std::uint16_t cls) const {
  core::MutexLock lock(mu_);
  return cls == kPasswordUser    ? user_password_
         : cls == kPasswordAdmin ? admin_password_
                                 : owner_password_;
}

void DellBios::boot() {
  core::MutexLock lock(mu_);
  ++boot_count_;
  // POST: nothing has written the APM latches of this boot.
  latch_.clear();
  latch_[kPcatApmStatusPort] = 0xFF;
  index_.clear();
}

SmiAnswer DellBios::apm(std::uint16_t port, PhysMemory& mem) {
  SmiAnswer a;
  a.handler = "apm";
  a.answered = true;
  const unsigned t = config_.host_control_type;
  // Where this model's BIOS looks for the apm_cmd pointer (docs/kernel-semantics.md section 2.5).
  const std::uint16_t index_port = t == 1 ? kCmosBasePort + 2 : kCmosBasePort;
  const std::uint8_t first = t == 1 ? kPe1300CmosCmdStructPtr : kPe1400CmosCmdStructPtr;
  std::uint32_t ptr = 0;
  for (int i = 0; i < 4; ++i)
    ptr |= static_cast<std::uint32_t>(cmos_[static_cast<std::size_t>(index_port) * 256 + first + i]) << (8 * i);
  a.data.emplace_back("apm_port", hex(port));
  a.data.emplace_back("apm_cmd_ptr", hex(ptr));
  std::uint8_t cmd[6];
  if (!mem.read(ptr, cmd)) {
    a.note = "apm_cmd pointer does not point at RAM";
    return a;
  }
  const auto parm = static_cast<std::int16_t>(cmd[4] | cmd[5] << 8);
  a.data.emplace_back("command", hex(cmd[0]));
  a.data.emplace_back("parameter", parm);
  if (cmd[0] != kEsmApmPowerCycle) {
    a.note = "unsupported APM command";
    return a;
  }
  // Completed: status 0 in the command block, and on the PCAT status port
  // that a TYPE1 driver polls.
  const std::uint8_t ok = 0;
  (void)mem.write(ptr + 1, std::span<const std::uint8_t>(&ok, 1));
  if (t == 1) latch_[kPcatApmStatusPort] = 0;
  const std::string state = parm == 0 ? "off" : "cycled";
  a.note = "power " + state;
  a.data.emplace_back("power_state", state);
  if (power_) power_(state);
  return a;
}

std::optional<NvSetting> DellBios::setting(std::uint16_t location) const {
  core::MutexLock lock(mu_);
  for (const auto& s : settings_)
    if (s.location == location) return s;
  return std::nullopt;
}

std::string DellBios::service_tag() const {
  core::MutexLock lock(mu_);
  return service_tag_;
}

std::string DellBios::asset_tag() const {
  core::MutexLock lock(mu_);
  return asset_tag_;
}

std::string DellBios::property_tag() const {
  core::MutexLock lock(mu_);
  return property_tag_;
}

std::uint8_t DellBios::cmos(std::uint16_t index_port, std::uint8_t index) const {
  core::MutexLock lock(mu_);
  return cmos_[static_cast<std::size_t>(index_port) * 256 + index];
}

std::optional<std::string> DellBios::cmos_string(std::uint16_t token_id) const {
  core::MutexLock lock(mu_);
  for (const auto& t : config_.cmos_tokens) {
    if (t.id != token_id || !t.is_string()) continue;
    const std::size_t at = static_cast<std::size_t>(t.index_port) * 256 + t.location;
    return std::string(cmos_.begin() + static_cast<std::ptrdiff_t>(at),
                       cmos_.begin() + static_cast<std::ptrdiff_t>(at + t.or_value));
  }
  return std::nullopt;
}

}  // namespace vsysfs::devices::dcdbas
