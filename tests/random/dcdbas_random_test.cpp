// Random operation sequences for the dcdbas family (devices/dell): every
// writable file of devices/platform/dcdbas (found from the tree) with valid
// and hostile values, structured calling-interface commands followed by
// smi_request, raw SMIs, host-control settings, the CMOS knob, shutdown and
// clock advances, on a WSMT PowerEdge R740 and a TYPE2 PowerEdge 1400 with
// a growable DMA buffer and Dell SMBIOS version 1. Invariants after every
// step (docs/random-tests.md):
//   buffer            fuzz_smi's: the buffer only grows, stays within
//                     MAX_SMI_DATA_BUF_SIZE (the WSMT buffer never moves or
//                     resizes), a dma_alloc_coherent buffer is page-aligned
//                     below 4 GiB and has an address exactly when it has a
//                     size; smi_data reads back exactly smi_data_buf_size bytes
//   buffer model      the bytes of smi_data equal a reference model's
//                     (reference 2.1-2.3: growth keeps the contents and
//                     zero-fills, a pwrite copies at its offset, request 0
//                     zeroes, request 1 puts phys+16 in ebx even when the
//                     magic is then refused) and the write's return value
//                     is the model's (EINVAL above the limit, ENODEV below
//                     17 bytes, EINVAL for other requests, EBADR, PAGE_SIZE
//                     clamps)
//   smi answer        after an SMI to the calling interface the buffer holds
//                     the answer of an independent model of the BIOS
//                     (RefBios below, written from reference 2.4 and the
//                     class table of dcdbas_bios.hpp, not calling it): NV
//                     settings read/write with min..max, asset and service
//                     tags, the property tag through a buffer, -2 for what
//                     the BIOS does not implement, -1 for bad input
//   host control      host_control_* read back what the model stored (unsigned
//                     int from simple_strtoul; the action cleared once host
//                     control ran), and after machine/shutdown the buffer
//                     holds the apm_cmd the driver wrote and power_state is
//                     what the BIOS did with it (reference 2.5: power-off
//                     before power-cycle; the action taken as a u8)
// What the model does not predict (an APM SMI raised by hand on the
// PowerEdge 1400) it takes from the buffer as it is and goes on from there.
#include <doctest/doctest.h>

#include <fcntl.h>

#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "core/caller.hpp"
#include "tests/random/random_seq.hpp"

namespace rnd = vsysfs::testing::rnd;
using vsysfs::testing::TestMachine;

namespace {

constexpr std::string_view kDir = "devices/platform/dcdbas/";
constexpr std::uint64_t kMaxBuf = 256 * 1024;  // MAX_SMI_DATA_BUF_SIZE
constexpr std::size_t kPage = 4096;
constexpr long kAny = -100000;  // a return value the model does not predict

std::string P(std::string_view f) {
  std::string s(kDir);
  s.append(f);
  return s;
}

struct Variant {
  std::string name;
  std::string toml;
  bool wsmt;
  std::uint64_t wsmt_addr;
  std::uint64_t wsmt_pages;
  unsigned smbios_version;
  // The BIOS's NV settings and tags at power-on (from the TOML above, by hand).
  struct Setting {
    std::uint16_t loc;
    std::array<std::uint32_t, 3> v;
    std::uint32_t min, max;
  };
  std::vector<Setting> settings;
  std::string asset, service, property;
};

#define SETTINGS                                                                      \
  "[[dcdbas.setting]]\nlocation = 0x10\nvalue = 1\nmin = 0\nmax = 1\n"               \
  "[[dcdbas.setting]]\nlocation = 0x20\nvalue = 3\nbattery = 2\nac = 5\nmin = 0\n"   \
  "max = 9\n"                                                                         \
  "[[dcdbas.setting]]\nlocation = 0xffff\nvalue = 0x7fffffff\nmin = 0\n"             \
  "max = 0xffffffff\n"

const std::vector<Variant::Setting> kSettings = {
    {0x10, {1, 1, 1}, 0, 1}, {0x20, {3, 2, 5}, 0, 9}, {0xffff, {0x7fffffff, 0x7fffffff, 0x7fffffff}, 0, 0xffffffff}};

const Variant kR740{
    "dcdbas (R740, WSMT)",
    "[dcdbas]\nmodel = \"PowerEdge R740\"\nservice_tag = \"7XJ4PQ2\"\nasset_tag = \"A-1\"\n"
    "property_tag = \"Property of vsysfs\"\nwsmt = true\nwsmt_buffer_address = 0x6f7d5000\n"
    "wsmt_buffer_pages = 2\n" SETTINGS,
    true, 0x6f7d5000, 2, 2, kSettings, "A-1", "7XJ4PQ2", "Property of vsysfs"};

const Variant kPe1400{
    "dcdbas (PowerEdge 1400, DMA buffer, SMBIOS v1)",
    "[dcdbas]\nmodel = \"PowerEdge 1400\"\nservice_tag = \"\"\ndell_smbios_version = 1\n"
    "property_tag = \"0123456789012345678901234567890123456789012345678901234567890123456789012345678\"\n"
    SETTINGS,
    false, 0, 0, 1, kSettings, "", "", "0123456789012345678901234567890123456789012345678901234567890123456789012345678"};

#undef SETTINGS

void put32(std::string& s, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t get32(const std::string& s, std::size_t off) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[off + i])) << (8 * i);
  return v;
}

// smi_data through the server, all of it ("<ENAME>" text from
// TestMachine::read could be mistaken for buffer bytes).
std::optional<std::string> read_buffer(TestMachine& m) {
  const auto ino = m.tree.resolve(P("smi_data"));
  auto fh = m.server.open(ino, O_RDONLY);
  if (!fh) return std::nullopt;
  std::string out;
  for (;;) {
    auto r = m.server.read(vsysfs::core::Caller::root(), fh->fh, 65536, static_cast<off_t>(out.size()));
    if (!r) {
      m.server.release(fh->fh);
      return std::nullopt;
    }
    if (r->bytes().empty()) break;
    out.append(r->bytes());
  }
  m.server.release(fh->fh);
  return out;
}

// simple_strtoul(buf, NULL, 10) (lib/vsprintf.c): decimal digits from the
// first byte, no sign, no space, wrapping modulo 2^64; junk is 0.
std::uint64_t simple_strtoul10(std::string_view s) {
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// --- the reference model of the BIOS's calling interface -------------------------
//
// Reference 2.4: struct calling_interface_buffer is u16 class, u16 select,
// u32 input[4], u32 output[4] (36 bytes); output[0] 0 is success, -1 an
// error, -2 "not supported". The classes this BIOS implements are listed in
// dcdbas_bios.hpp's header; the semantics below are restated from there and
// from libsmbios's use of them, in the model's own terms.
class RefBios {
 public:
  explicit RefBios(const Variant& v)
      : settings_(v.settings), asset_(v.asset), service_(v.service), property_(v.property),
        version_(v.smbios_version) {}

  // How many SMIs got each output[0]: 0 (ok), -1 (error), -2 (unsupported).
  std::array<std::size_t, 3> answers{};

  // One calling-interface SMI with EBX = `ebx` against `mem` (the buffer at
  // physical `base`). Changes `mem` like the firmware would.
  void smi(std::uint32_t ebx, std::string& mem, std::uint64_t base) {
    auto in_ram = [&](std::uint32_t phys, std::size_t len) {
      return !mem.empty() && phys >= base && phys - base + len <= mem.size();
    };
    if (!in_ram(ebx, 36)) return;  // nothing the firmware can answer
    const std::size_t at = ebx - base;
    const auto cls = static_cast<std::uint16_t>(static_cast<unsigned char>(mem[at]) |
                                                static_cast<unsigned char>(mem[at + 1]) << 8);
    const auto sel = static_cast<std::uint16_t>(static_cast<unsigned char>(mem[at + 2]) |
                                                static_cast<unsigned char>(mem[at + 3]) << 8);
    std::array<std::uint32_t, 4> in{};
    for (int i = 0; i < 4; ++i) in[i] = get32(mem, at + 4 + 4 * i);
    std::array<std::uint32_t, 4> out = {0xFFFFFFFE, 0, 0, 0};  // -2
    constexpr std::uint32_t kErr = 0xFFFFFFFF;                // -1

    if ((cls == 0 || cls == 1) && sel <= 2) {
      Variant::Setting* s = nullptr;
      for (auto& x : settings_)
        if (in[0] <= 0xFFFF && x.loc == in[0]) s = &x;
      if (!s) {
        out = {kErr, 0, 0, 0};
      } else if (cls == 1 && !key_ok(in[2])) {
        out = {kErr, 0, 0, 0};
      } else if (cls == 1 && (in[1] < s->min || in[1] > s->max)) {
        out = {kErr, 0, 0, 0};
      } else {
        if (cls == 1) s->v[sel] = in[1];
        out = {0, s->v[sel], s->min, s->max};
      }
    } else if (cls == 11 && sel <= 3) {
      std::string& tag = sel < 2 ? asset_ : service_;
      if (sel == 0 || sel == 2) {
        std::string b = tag.substr(0, 12);
        b.resize(12, '\0');
        out = {0, get32(b, 0), get32(b, 4), get32(b, 8)};
      } else if (!key_ok(in[3])) {
        out = {kErr, 0, 0, 0};
      } else if (sel == 3 && !tag.empty()) {
        out = {kErr, 0, 0, 0};  // the service tag is set once
      } else {
        std::string b(12, '\0');
        for (int i = 0; i < 3; ++i) put32(b, 4 * i, in[i]);
        tag = b.substr(0, b.find('\0'));
        out = {0, 0, 0, 0};
      }
    } else if (cls == 20 && sel == 0) {
      // Read the property tag into the caller's buffer at input[0]; from
      // Dell SMBIOS version 2 on it starts with a u32 length.
      std::uint32_t addr = in[0];
      std::size_t len = 80;
      bool ok = true;
      if (version_ >= 2) {
        if (!in_ram(addr, 4)) {
          ok = false;
        } else {
          len = std::min<std::size_t>(get32(mem, addr - base), 80);
          addr += 4;
        }
      }
      if (ok && in_ram(addr, len)) {
        std::string data = property_.substr(0, len);
        data.resize(len, '\0');
        mem.replace(addr - base, len, data);
        out = {0, 0, 0, 0};
      } else {
        out = {kErr, 0, 0, 0};
      }
    } else if (cls == 20 && sel == 1) {
      if (!key_ok(in[1])) {
        out = {kErr, 0, 0, 0};
      } else if (in_ram(in[0], 80)) {
        const std::string data = mem.substr(in[0] - base, 80);
        property_ = data.substr(0, data.find('\0'));
        out = {0, 0, 0, 0};
      } else {
        out = {kErr, 0, 0, 0};
      }
    } else if ((cls == 9 || cls == 10 || cls == 12) && sel <= 2) {
      // Passwords: 8 bytes in two words, cut at the first zero byte;
      // 0/1 installed/not, 2 incorrect, the key (unknown to the model:
      // learn_key) in output[1] of a verify.
      const std::size_t k = cls == 9 ? 0 : cls == 10 ? 1 : 2;
      auto bytes = [&](std::uint32_t lo, std::uint32_t hi) {
        std::string b(8, '\0');
        put32(b, 0, lo);
        put32(b, 4, hi);
        return b.substr(0, b.find('\0'));
      };
      if (sel == 0) {
        out = {pw_[k].empty() ? 1u : 0u, 0, 0, 0};
      } else if (sel == 1) {
        if (pw_[k].empty()) {
          out = {1, 0, 0, 0};
        } else if (bytes(in[0], in[1]) != pw_[k]) {
          out = {2, 0, 0, 0};
        } else {
          out = {0, 0, 0, 0};
          learn_key = {k, at + 24};
        }
      } else if (bytes(in[0], in[1]) != pw_[k]) {
        out = {2, 0, 0, 0};
      } else {
        pw_[k] = bytes(in[2], in[3]);
        key_[k].reset();  // a key is good for one password
      }
    }
    for (int i = 0; i < 4; ++i) put32(mem, at + 20 + 4 * i, out[i]);
    ++answers[out[0] == 0 ? 0 : out[0] == kErr ? 1 : 2];
  }

  // The verify that just ran put its security key at this offset of the
  // buffer: the checker takes it from the device (a key is the BIOS's
  // secret) and the model checks the writes against it from then on.
  std::optional<std::pair<std::size_t, std::size_t>> learn_key;
  void learned(std::size_t k, std::uint32_t key) { key_[k] = key; }
  // A boot: keys handed out before are no longer valid; passwords stay.
  void boot() { key_ = {}; }

 private:
  // libsmbios's rule (dcdbas_bios.hpp): the admin password's key, else the
  // user password's; an unknown key (no verify since it changed) is
  // assumed not guessed.
  bool key_ok(std::uint32_t key) const {
    const std::size_t k = !pw_[1].empty() ? 1 : !pw_[0].empty() ? 0 : 3;
    if (k == 3) return true;
    return key_[k] && (key & 0xFFFF) == *key_[k];
  }

  std::array<std::string, 3> pw_;  // user, admin, owner
  std::array<std::optional<std::uint32_t>, 3> key_;
  std::vector<Variant::Setting> settings_;
  std::string asset_, service_, property_;
  unsigned version_;
};

// --- steps ------------------------------------------------------------------------

// A calling-interface command: struct smi_cmd (magic, ebx, ecx, port,
// code) + struct calling_interface_buffer, inputs that are NV locations,
// small values, raw words or addresses inside the buffer.
std::string ci_command(rnd::Gen& g, std::uint64_t phys, bool raw_port) {
  std::string s(16 + 36 + (g.chance(0.5) ? g.below(200) : 0), '\0');
  put32(s, 0, g.chance(0.95) ? 0x534D4931 : static_cast<std::uint32_t>(g.below(1ULL << 32)));
  put32(s, 4, g.chance(0.7) ? static_cast<std::uint32_t>(phys + 16)
                            : static_cast<std::uint32_t>(phys + g.below(64)));
  put32(s, 8, 0x42534931);
  std::uint16_t port = 0xb2;
  std::uint8_t code = 0xda;
  if (raw_port) {
    // Host control by hand, the CMOS ports, or anything.
    switch (g.below(3)) {
      case 0: port = g.chance(0.5) ? 0xb0 : 0xb2; code = 0xa0; break;
      case 1: port = static_cast<std::uint16_t>(0x70 + g.below(4)); code = static_cast<std::uint8_t>(g.below(256)); break;
      default: port = static_cast<std::uint16_t>(g.below(65536)); code = static_cast<std::uint8_t>(g.below(256));
    }
  }
  s[12] = static_cast<char>(port & 0xFF);
  s[13] = static_cast<char>(port >> 8);
  s[14] = static_cast<char>(code);
  static const std::vector<std::uint16_t> kClasses = {0, 1, 11, 20, 7, 17, 12};
  std::uint16_t cls = g.chance(0.9) ? g.pick(kClasses) : static_cast<std::uint16_t>(g.below(65536));
  // A user or admin password installed by a random change would make most
  // later writes fail on the security key: those two classes come only
  // from raw SMIs (the model follows them there too); the owner password
  // (12) guards nothing.
  if (cls == 9 || cls == 10) cls = 17;
  const std::uint16_t sel = static_cast<std::uint16_t>(g.chance(0.9) ? g.below(cls == 11 ? 5 : 3) : g.below(65536));
  s[16] = static_cast<char>(cls & 0xFF);
  s[17] = static_cast<char>(cls >> 8);
  s[18] = static_cast<char>(sel & 0xFF);
  s[19] = static_cast<char>(sel >> 8);
  static const std::vector<std::uint32_t> kLocations = {0x10, 0x20, 0xffff, 0x99, 0x10010};
  std::array<std::uint32_t, 4> in{};
  for (auto& w : in) {
    switch (g.below(4)) {
      case 0: w = g.pick(kLocations); break;
      case 1: w = static_cast<std::uint32_t>(g.below(12)); break;
      case 2: w = static_cast<std::uint32_t>(g.below(1ULL << 32)); break;
      default: w = static_cast<std::uint32_t>(phys + g.below(600));  // inside (or past) the buffer
    }
  }
  if (g.chance(0.7)) {
    // Mostly what the class expects: a real location and an in-range (or
    // just out-of-range) value, tag words, a property buffer inside the
    // SMI buffer (after the 52-byte command) with a length header.
    if (cls == 0 || cls == 1) {
      in[0] = g.pick(std::vector<std::uint32_t>{0x10, 0x20, 0xffff});
      // The settings' bounds and one past them (0..1, 0..9, 0..0xffffffff).
      static const std::vector<std::uint32_t> kEdges = {0, 1, 2, 8, 9, 10, 0x7fffffff, 0xffffffff};
      in[1] = g.chance(0.6) ? g.pick(kEdges)
                            : static_cast<std::uint32_t>(g.chance(0.8) ? g.below(11) : g.below(1ULL << 32));
    } else if (cls == 11) {
      for (auto& w : in) w = static_cast<std::uint32_t>(g.chance(0.2) ? 0 : 0x41414141 + g.below(26));
    } else if (cls == 20) {
      in[0] = static_cast<std::uint32_t>(phys + 52 + g.below(120));
    }
  }
  for (int i = 0; i < 4; ++i) put32(s, 16 + 4 + 4 * i, in[i]);
  put32(s, 36, 0xAAAAAAAA);
  // The tail: a length header (for a property-tag read), then text or NULs.
  for (std::size_t i = 52; i < s.size(); ++i) s[i] = static_cast<char>(g.chance(0.3) ? 0 : 'A' + i % 26);
  if (s.size() >= 56 && g.chance(0.5)) {
    for (std::size_t i = 52; i + 4 <= s.size(); i += 4) put32(s, i, static_cast<std::uint32_t>(g.below(100)));
  }
  return s;
}

std::vector<rnd::Step> generate(const Variant& v, rnd::Gen& g, TestMachine& m, std::size_t n) {
  const auto files = rnd::writable_files(m, {"devices/platform/dcdbas"});
  REQUIRE(files.size() >= 7);  // smi_data, smi_request, host_control_*, ...: from the tree
  std::vector<rnd::Step> steps;
  auto phys = [&] { return rnd::num(m.read(P("smi_data_buf_phys_addr")), true).value_or(0); };
  auto size = [&] { return rnd::num(m.read(P("smi_data_buf_size"))).value_or(0); };
  while (steps.size() < n) {
    std::vector<rnd::Step> batch;
    switch (g.below(12)) {
      case 0: case 1: case 2: {  // a command, then (mostly) its request
        const bool raw = g.chance(0.25);
        batch.push_back({P("smi_data"), ci_command(g, phys(), raw)});
        if (g.chance(0.85)) batch.push_back({P("smi_request"), raw || g.chance(0.2) ? "2\n" : "1\n"});
        break;
      }
      case 3: {  // the buffer size
        const std::uint64_t want = g.chance(0.7) ? g.below(600) : g.below(kMaxBuf + 1000);
        batch.push_back({P("smi_data_buf_size"), g.chance(0.2) ? g.hostile() : std::to_string(want) + "\n"});
        break;
      }
      case 4: {  // raw bytes at an offset (around the end, the limit, or anywhere)
        const std::uint64_t sz = size();
        std::uint64_t off = g.below(sz + 64);
        if (g.chance(0.2)) off = kMaxBuf - g.below(80);
        if (v.wsmt && g.chance(0.2)) off = v.wsmt_pages * kPage - 8 - g.below(40);
        std::string bytes(g.chance(0.05) ? g.between(4000, 5000) : g.between(1, 64), '\0');
        for (auto& c : bytes) c = static_cast<char>(g.below(256));
        batch.push_back({P("smi_data"), bytes, off});
        break;
      }
      case 5:
        batch.push_back({P("smi_request"),
                         g.chance(0.3) ? g.hostile()
                                       : g.pick(std::vector<std::string>{"0", "1\n", "2", "3",
                                                                         "18446744073709551617", "-1", "0x2"})});
        break;
      case 6: {  // host control
        const std::string f = g.pick(std::vector<std::string>{"host_control_action", "host_control_smi_type",
                                                              "host_control_on_shutdown"});
        // Mostly what OpenManage writes (type 2 is the PowerEdge 1400's;
        // 258 is power-off as a u8), sometimes anything.
        std::uint64_t val = g.below(8);
        if (g.chance(0.7)) {
          if (f == "host_control_smi_type") val = g.pick(std::vector<std::uint64_t>{2, 2, 2, 1, 3, 0});
          if (f == "host_control_action") val = g.pick(std::vector<std::uint64_t>{2, 4, 6, 0, 1, 258});
          if (f == "host_control_on_shutdown") val = g.pick(std::vector<std::uint64_t>{1, 1, 0});
        }
        batch.push_back({P(f), g.chance(0.2) ? g.hostile() : std::to_string(val) + "\n"});
        break;
      }
      case 7: {  // CMOS: mostly the apm_cmd pointer bytes, sometimes the buffer's address
        static const std::vector<std::uint64_t> kAt = {0x70 * 256 + 0x70, 0x72 * 256 + 0x38, 0x70 * 256 + 0x5c};
        std::string bytes(4, '\0');
        put32(bytes, 0, static_cast<std::uint32_t>(g.chance(0.6) ? phys() + g.below(64) : g.below(1ULL << 32)));
        batch.push_back({"kernel/debug/vsysfs/dcdbas/cmos", bytes, g.chance(0.8) ? g.pick(kAt) : g.below(70000)});
        break;
      }
      case 8:
        if (g.chance(0.1))
          batch.push_back({"kernel/debug/vsysfs/machine/shutdown",
                           g.pick(std::vector<std::string>{"poweroff", "halt\n", "reboot", "sleep"})});
        else
          batch.push_back({"kernel/debug/vsysfs/clock/advance_ms", g.advance_ms()});
        break;
      default: {  // any writable file of the device, from the tree
        const std::string& f = g.pick(files);
        std::string val = g.chance(0.5) ? g.hostile() : g.number(g.below(300));
        if (f.ends_with("power/control")) val = g.pick(std::vector<std::string>{"auto\n", "on", "off\n"});
        if (f.ends_with("uevent")) val = g.pick(std::vector<std::string>{"change\n", "add", "bogus"});
        if (f.ends_with("driver_override")) val = g.pick(std::vector<std::string>{"dcdbas\n", "\n", "x"});
        rnd::Step s{f, val};
        if (f.ends_with("smi_data")) s.off = g.below(size() + 8);
        batch.push_back(std::move(s));
      }
    }
    for (auto& s : batch) {
      // Generation runs the sequence too, so addresses follow the buffer.
      (void)m.write(s.path, s.data, vsysfs::core::Caller::root(), static_cast<off_t>(s.off));
      steps.push_back(std::move(s));
    }
  }
  steps.resize(n);
  return steps;
}

// --- the checker ---------------------------------------------------------------------

class DcdbasChecker : public rnd::Checker {
 public:
  explicit DcdbasChecker(const Variant& v) : v_(v), bios_(v) {}

  std::string initial(TestMachine& m) override {
    auto b = read_buffer(m);
    if (!b) return "read: smi_data";
    buf_ = *b;
    size_ = buf_.size();
    phys_ = rnd::num(m.read(P("smi_data_buf_phys_addr")), true).value_or(0);
    max_ = v_.wsmt ? std::min<std::uint64_t>(v_.wsmt_pages * kPage, kMaxBuf + 8) - 8 : kMaxBuf;
    return check(m, nullptr, 0);
  }

  std::string after(TestMachine& m, const rnd::Step& s, long rc) override { return check(m, &s, rc); }
  std::string coverage() const override {
    return fmt::format("SMI answers ok {} error {} unsupported {}; {} steps predicted, {} resynced; {}",
                       bios_.answers[0], bios_.answers[1], bios_.answers[2], predicted_, resynced_,
                       shutdown_note_);
  }

 private:
  // What the step should return and do to the buffer; false when the model
  // does not predict this step (it resynchronises from the buffer).
  bool predict(const rnd::Step& s, long& want_rc) {
    const std::string_view f = std::string_view(s.path);
    // A machine that is off answers only its control plane (ENODEV even
    // for an empty write, as for a device that is gone).
    if (off_ && !f.starts_with("kernel/debug/vsysfs/")) {
      want_rc = -ENODEV;
      return true;
    }
    if (s.data.empty()) {  // reference 1.4: a zero-length write never reaches the driver
      want_rc = 0;
      return true;
    }
    const std::string_view text = std::string_view(s.data).substr(0, kPage);  // one page per store
    want_rc = static_cast<long>(text.size());
    auto grow = [&](std::uint64_t want) -> bool {
      if (size_ >= want) return true;
      if (want > max_) return false;
      buf_.resize(want, '\0');
      size_ = want;
      return true;
    };
    if (f == P("smi_data_buf_size")) {
      if (!grow(simple_strtoul10(text))) want_rc = -EINVAL;
      return true;
    }
    if (f == P("smi_data")) {
      if (s.off > max_ || text.size() > max_ - s.off) {
        want_rc = -EINVAL;
        return true;
      }
      grow(s.off + text.size());
      buf_.replace(s.off, text.size(), text);
      return true;
    }
    // The host-control values are unsigned ints from simple_strtoul
    // (dcdbas.c: static unsigned int host_control_*).
    if (f == P("host_control_action")) {
      grow(198);  // sizeof(struct apm_cmd), always within the limit here
      hc_action_ = static_cast<std::uint32_t>(simple_strtoul10(text));
      return true;
    }
    if (f == P("host_control_smi_type")) {
      hc_type_ = static_cast<std::uint32_t>(simple_strtoul10(text));
      return true;
    }
    if (f == P("host_control_on_shutdown")) {
      hc_on_ = static_cast<std::uint32_t>(simple_strtoul10(text));
      return true;
    }
    if (f == P("smi_request")) {
      if (size_ < 17) {
        want_rc = -ENODEV;
        return true;
      }
      const std::uint64_t req = simple_strtoul10(text);
      if (req == 0) {
        std::fill(buf_.begin(), buf_.end(), '\0');
        return true;
      }
      if (req != 1 && req != 2) {
        want_rc = -EINVAL;
        return true;
      }
      if (req == 1) put32(buf_, 4, static_cast<std::uint32_t>(phys_ + 16));
      if (get32(buf_, 0) != 0x534D4931) {
        want_rc = -EBADR;
        return true;
      }
      const std::uint16_t port = static_cast<std::uint16_t>(static_cast<unsigned char>(buf_[12]) |
                                                            static_cast<unsigned char>(buf_[13]) << 8);
      const auto code = static_cast<unsigned char>(buf_[14]);
      if (port == 0xb2 && code == 0xda) {
        bios_.smi(get32(buf_, 4), buf_, phys_);
        return true;
      }
      // The PowerEdge 1400's host-control SMI (TYPE2: port 0xB0) by hand
      // writes the apm_cmd status wherever CMOS points and may power the
      // machine off: not modelled.
      if (!v_.wsmt && port == 0xb0 && code == 0xa0) {
        fw_touched_ = true;
        return false;
      }
      return true;  // the CMOS ports and everything else leave RAM alone
    }
    if (f == "kernel/debug/vsysfs/machine/shutdown") return shutdown(text, want_rc);
    // host_control_smi_type and _on_shutdown store anything (no
    // validation); other files are not the driver's: their return values
    // are not modelled, but none of them touches the buffer.
    if (!f.starts_with(P("host_control_"))) want_rc = kAny;
    return true;
  }

  // machine/shutdown (sim_control.hpp): the reboot notifier runs
  // dcdbas_host_control (reference 2.5, dcdbas.c): one-shot, the action as
  // a u8, power-off before power-cycle, a command 0x10 with parameter 0 or
  // 20 and status -1 in the buffer, then the SMI of host_control_smi_type.
  // Only the PowerEdge 1400's BIOS answers, and only TYPE2 (port 0xB0): it
  // sets the status to 0 and powers off (parameter 0) or cycles.
  bool shutdown(std::string_view text, long& want_rc) {
    std::string_view how = text;
    if (!how.empty() && how.back() == '\n') how.remove_suffix(1);
    if (how != "poweroff" && how != "halt" && how != "reboot") {
      want_rc = -EINVAL;
      return true;
    }
    if (shut_) {
      want_rc = -EBUSY;
      return true;
    }
    shut_ = true;
    const std::string by_os = how == "poweroff" ? "off" : how == "halt" ? "halted" : "rebooted";
    std::string state = by_os;
    bool bios = false;
    if (hc_on_ != 0 && hc_action_ != 0) {
      const auto action = static_cast<std::uint8_t>(hc_action_);
      hc_action_ = 0;
      if (size_ >= 198 && (action & 6)) {
        const std::int16_t parm = (action & 2) ? 0 : 20;
        buf_[0] = 0x10;
        buf_[1] = static_cast<char>(0xFF);
        buf_[2] = buf_[3] = 0;
        buf_[4] = static_cast<char>(parm & 0xFF);
        buf_[5] = static_cast<char>(parm >> 8);
        if (!v_.wsmt && hc_type_ == 2) {
          bios = true;
          buf_[1] = 0;
          state = parm == 0 ? "off" : "cycled";
        }
      }
    }
    shutdown_note_ = fmt::format("shut down ({}): {}", how,
                                 state == by_os && !bios ? "no host control" : "the BIOS made it " + state);
    power_ = state;
    if (state == "cycled" || state == "rebooted") {
      boot();
    } else {
      off_ = true;
    }
    return true;
  }

  // A boot (machine.hpp): the driver probes again (no buffer, or the WSMT
  // buffer zeroed; host-control values 0) and can be shut down again; the
  // BIOS's NV settings and tags stay.
  void boot() {
    buf_.assign(v_.wsmt ? max_ : 0, '\0');
    size_ = size_seen_ = buf_.size();
    hc_action_ = hc_type_ = hc_on_ = 0;
    shut_ = false;
    bios_.boot();
  }

  std::string check(TestMachine& m, const rnd::Step* s, long rc) {
    // The step first (reads change nothing): whether it left the machine
    // off, or booted it, decides what the files should show.
    long want_rc = 0;
    bool known = true;
    if (s) {
      known = predict(*s, want_rc);
      ++(known ? predicted_ : resynced_);
      if (known && want_rc != kAny && rc != want_rc)
        return fmt::format("return value: {} returned {}, the model says {}", rnd::describe(*s), rc,
                           want_rc);
    }
    if (off_) {
      // Off or halted: every device file is ENODEV (machine/power).
      if (read_buffer(m) || m.read(P("smi_data_buf_size")) != "<ENODEV>")
        return "power: a device file answered while the machine is off";
      if (m.read("kernel/debug/vsysfs/machine/power") !=
          (power_ == "halted" ? "halted\n" : "off\n"))
        return "power: machine/power does not say off";
      return {};
    }
    const auto b = read_buffer(m);
    const auto size = rnd::num(m.read(P("smi_data_buf_size")));
    const auto phys = rnd::num(m.read(P("smi_data_buf_phys_addr")), true);
    if (!b || !size || !phys) return "read: smi_data, its size or address";
    // fuzz_smi's invariants.
    if (b->size() != *size)
      return fmt::format("buffer: smi_data has {} bytes, smi_data_buf_size {}", b->size(), *size);
    if (*size < size_seen_) return fmt::format("buffer: shrank {} -> {}", size_seen_, *size);
    size_seen_ = *size;
    if (v_.wsmt) {
      if (*size != max_) return fmt::format("buffer: WSMT buffer size {} != {}", *size, max_);
      if (*phys != v_.wsmt_addr + 8) return fmt::format("buffer: WSMT buffer moved to {:#x}", *phys);
    } else {
      if (*size > kMaxBuf) return fmt::format("buffer: size {} above the limit", *size);
      if ((*size == 0) != (*phys == 0)) return fmt::format("buffer: size {} at {:#x}", *size, *phys);
      if (*phys % kPage) return fmt::format("buffer: {:#x} not page aligned", *phys);
      if (*phys + *size > (std::uint64_t{1} << 32)) return fmt::format("buffer: {:#x} above 4 GiB", *phys);
    }
    if (!s) return {};
    if (auto lk = std::exchange(bios_.learn_key, std::nullopt); lk && lk->second + 4 <= b->size()) {
      const std::uint32_t key = get32(*b, lk->second);
      if (key == 0 || key > 0xFFFF)
        return fmt::format("smi answer: security key {:#x} is not 1..0xffff", key);
      bios_.learned(lk->first, key);
      put32(buf_, lk->second, key);
    }
    if (known && *b != buf_) {
      std::size_t at = 0;
      while (at < b->size() && at < buf_.size() && (*b)[at] == buf_[at]) ++at;
      const bool answer = s->path == P("smi_request") && at >= 16;
      return fmt::format("{}: buffer differs from the model at byte {} of {} (model {}): got {}, model {}",
                         answer ? "smi answer" : "buffer model", at, b->size(), buf_.size(),
                         at < b->size() ? static_cast<int>(static_cast<unsigned char>((*b)[at])) : -1,
                         at < buf_.size() ? static_cast<int>(static_cast<unsigned char>(buf_[at])) : -1);
    }
    const std::pair<std::string_view, std::uint32_t> hc[] = {
        {"host_control_action", hc_action_}, {"host_control_smi_type", hc_type_},
        {"host_control_on_shutdown", hc_on_}};
    for (const auto& [file, value] : hc)
      if (m.read(P(file)) != std::to_string(value) + "\n")
        return fmt::format("host control: {} reads {:?}, the model has {}", file, m.read(P(file)), value);
    const std::string power = m.read("kernel/debug/vsysfs/machine/power_state");
    if (!fw_touched_ && power != power_ + "\n")
      return fmt::format("host control: power_state {:?}, the model says {}", power, power_);
    buf_ = *b;  // resynchronise (a no-op when the model knew)
    size_ = *size;
    phys_ = *phys;
    return {};
  }

  const Variant& v_;
  RefBios bios_;
  std::string buf_;
  std::uint64_t size_ = 0, size_seen_ = 0, phys_ = 0, max_ = kMaxBuf;
  std::size_t predicted_ = 0, resynced_ = 0;
  std::uint32_t hc_action_ = 0, hc_type_ = 0, hc_on_ = 0;
  bool shut_ = false, fw_touched_ = false, off_ = false;
  std::string power_ = "on";
  std::string shutdown_note_ = "no shutdown";
};

rnd::Family dcdbas_family(const Variant& v) {
  rnd::Family f;
  f.name = v.name;
  f.toml = v.toml;
  f.generate = [&v](rnd::Gen& g, TestMachine& m, std::size_t n) { return generate(v, g, m, n); };
  f.make_checker = [&v] { return std::make_unique<DcdbasChecker>(v); };
  f.observed = {"devices/platform/dcdbas", "kernel/debug/vsysfs/machine/power_state",
                "kernel/debug/vsysfs/clock/now_ns"};
  // The buffer model checks every byte of smi_data after every step,
  // failed or not (including the kernel quirk of reference 2.3: request 1
  // stores ebx before it checks the magic, so an EBADR changes the
  // buffer); a snapshot of up to 256 KiB per step would add nothing.
  f.unobserved = {P("smi_data")};
  return f;
}

}  // namespace

TEST_CASE("dcdbas random: a WSMT R740's SMI buffer and calling interface match the models") {
  const auto f = dcdbas_family(kR740);
  const auto o = rnd::run_random(f, rnd::seed_from_env(740), rnd::steps_from_env(300));
  INFO(rnd::report(f, o));
  CHECK(!o.failure);
}

TEST_CASE("dcdbas random: a PowerEdge 1400's growing SMI buffer and calling interface match the models") {
  const auto f = dcdbas_family(kPe1400);
  const auto o = rnd::run_random(f, rnd::seed_from_env(1400), rnd::steps_from_env(300));
  INFO(rnd::report(f, o));
  CHECK(!o.failure);
}

// Sequences in the printed form (rnd::to_cpp), replayed: host control at
// shutdown on the PowerEdge 1400, the way OpenManage sets it up, power-off
// winning over power-cycle, the action taken as a u8 (258 is 2), and a
// type the BIOS does not answer.
TEST_CASE("dcdbas random: replayed host-control sequences match the model") {
  const auto f = dcdbas_family(kPe1400);
  const std::vector<std::vector<rnd::Step>> cases = {
      {
          {"devices/platform/dcdbas/host_control_smi_type", "2\n", 0, 0},
          {"devices/platform/dcdbas/host_control_action", "6\n", 0, 0},
          {"devices/platform/dcdbas/host_control_on_shutdown", "1\n", 0, 0},
          {"kernel/debug/vsysfs/machine/shutdown", "reboot", 0, 0},
      },
      {
          {"devices/platform/dcdbas/host_control_smi_type", "2\n", 0, 0},
          {"devices/platform/dcdbas/host_control_action", "4\n", 0, 0},
          {"devices/platform/dcdbas/host_control_on_shutdown", "1\n", 0, 0},
          {"kernel/debug/vsysfs/machine/shutdown", "halt\n", 0, 0},
          {"kernel/debug/vsysfs/machine/shutdown", "poweroff", 0, 0},
      },
      {
          {"devices/platform/dcdbas/host_control_action", "258", 0, 0},
          {"devices/platform/dcdbas/host_control_smi_type", "2", 0, 0},
          {"devices/platform/dcdbas/host_control_on_shutdown", "7", 0, 0},
          {"kernel/debug/vsysfs/machine/shutdown", "halt", 0, 0},
      },
      {
          {"devices/platform/dcdbas/host_control_smi_type", "3\n", 0, 0},
          {"devices/platform/dcdbas/host_control_action", "2\n", 0, 0},
          {"devices/platform/dcdbas/host_control_on_shutdown", "1\n", 0, 0},
          {"kernel/debug/vsysfs/machine/shutdown", "poweroff", 0, 0},
      },
  };
  for (const auto& steps : cases) {
    const auto r = rnd::replay(f, steps);
    CHECK_MESSAGE(!r, (r ? r->what : ""));
  }
  // And the device did what the model says: the BIOS powered the first off.
  TestMachine m(kPe1400.toml);
  for (const auto& s : cases[0]) (void)m.write(s.path, s.data);
  CHECK(m.read("kernel/debug/vsysfs/machine/power_state") == "off\n");  // 6 has the power-off bit
  // Off: the device answers nothing until the machine is powered on,
  // which boots it (the action is 0 again, as at every probe).
  CHECK(m.read(P("host_control_action")) == "<ENODEV>");
  CHECK(m.write("kernel/debug/vsysfs/machine/power", "on\n") == 3);
  CHECK(m.read(P("host_control_action")) == "0\n");
}
