// libFuzzer target: the dcdbas SMI buffer driven by smi_request sequences
// (devices/dell/dcdbas*.cpp, docs/kernel-semantics.md section 2), through the real fs::Server
// exactly as a client's open/pwrite/pread would reach it.
//
// Input: byte 0 picks the machine (TYPE1/2/3 host control, WSMT fixed
// buffers of 1..65 pages, Dell SMBIOS version 1 or 2, a calling interface
// on the APM port); then a sequence of ops, each an op byte followed by its
// operands (missing bytes read as 0):
//   0 size      u24 -> smi_data_buf_size as decimal (plus junk when bit 23)
//   1 write     u8 where, u16 offset, u8 len, bytes -> pwrite smi_data
//   2 command   a structured struct smi_cmd + calling_interface_buffer
//               (class/select from the BIOS's table or raw, inputs that
//               can be NV locations, small values, raw words or addresses
//               inside the SMI buffer), optionally followed by smi_request
//   3 request   smi_request "0", "1", "2", junk, wrapping 2^64+1 ...
//   4 read      pread smi_data at an offset, and the whole buffer
//   5 host      host_control_action / _smi_type / _on_shutdown = u8
//   6 clock     clock/advance_ms u16
//   7 shutdown  machine/shutdown poweroff / halt / reboot / junk, or
//               machine/power on (a boot: the buffer may start again from 0)
//   8 cmos      bytes into kernel/debug/vsysfs/dcdbas/cmos (the APM pointer)
//   9 platform  uevent / driver_override / power/control text
// After every op the driver's invariants are checked: the buffer only
// grows, stays within its limit (the WSMT buffer never moves or resizes),
// a dma_alloc_coherent buffer is page-aligned below 4 GiB.
#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/caller.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;

namespace {

constexpr std::string_view kDir = "devices/platform/dcdbas/";
constexpr std::uint64_t kMaxBuf = 256 * 1024;  // MAX_SMI_DATA_BUF_SIZE

struct Variant {
  const char* toml;
  std::uint16_t ci_port;
  std::uint8_t ci_code;
  std::uint16_t apm_port;  // where host control's 0xA0 goes (0: none)
  bool wsmt;
  std::uint64_t wsmt_addr;
  std::uint64_t wsmt_pages;
};

// The NV settings every variant shares, and the tokens on them.
#define VSYSFS_FUZZ_SETTINGS                                                  \
  "[[dcdbas.setting]]\nlocation = 0x10\nvalue = 1\nmin = 0\nmax = 1\n"       \
  "[[dcdbas.setting]]\nlocation = 0x20\nvalue = 3\nbattery = 2\nac = 5\n"    \
  "min = 0\nmax = 9\n"                                                        \
  "[[dcdbas.setting]]\nlocation = 0xffff\nvalue = 0x7fffffff\nmin = 0\n"     \
  "max = 0xffffffff\n"                                                        \
  "[[dcdbas.token]]\nid = 0x51\nlocation = 0x10\nvalue = 1\n"                \
  "[[dcdbas.cmos_token]]\nid = 0x42\nlocation = 0x5c\nand_mask = 0xfe\n"     \
  "or_value = 0x01\nactive = true\n"

constexpr Variant kVariants[] = {
    // TYPE2, growable buffer, SMBIOS v2 (length-headed property tag).
    {"[dcdbas]\nmodel = \"PowerEdge 1400\"\nservice_tag = \"ABC1234\"\n"
     "asset_tag = \"ASSET-42\"\nproperty_tag = \"Property of vsysfs\"\n" VSYSFS_FUZZ_SETTINGS,
     0xb2, 0xda, 0xb0, false, 0, 0},
    // TYPE1 (CMOS page 2, status port 0xB3), SMBIOS v1, no service tag yet.
    {"[dcdbas]\nmodel = \"PowerEdge 300\"\nservice_tag = \"\"\ndell_smbios_version = 1\n"
     VSYSFS_FUZZ_SETTINGS,
     0xb2, 0xda, 0xb2, false, 0, 0},
    // TYPE3: the APM command shares port 0xB2 with the calling interface.
    {"[dcdbas]\nmodel = \"PowerEdge 750\"\nproperty_tag = "
     "\"0123456789012345678901234567890123456789012345678901234567890123456789012345678\"\n"
     VSYSFS_FUZZ_SETTINGS,
     0xb2, 0xda, 0xb2, false, 0, 0},
    // WSMT, 4 pages, no host-control SMI (R740).
    {"[dcdbas]\nmodel = \"PowerEdge R740\"\nwsmt = true\nwsmt_buffer_address = 0x6f7d5000\n"
     "wsmt_buffer_pages = 4\n" VSYSFS_FUZZ_SETTINGS,
     0xb2, 0xda, 0, true, 0x6f7d5000, 4},
    // WSMT, 1 page right below 4 GiB, TYPE2 forced, calling interface on
    // the APM port and code (it wins over host control).
    {"[dcdbas]\nmodel = \"PowerEdge 1400\"\nwsmt = true\nwsmt_buffer_address = 0xfffff000\n"
     "wsmt_buffer_pages = 1\nsmi_port = 0xb0\nsmi_code = 0xa0\n" VSYSFS_FUZZ_SETTINGS,
     0xb0, 0xa0, 0xb0, true, 0xfffff000, 1},
    // WSMT, 65 pages (more than MAX_SMI_DATA_BUF_SIZE: clamped), TYPE3.
    {"[dcdbas]\nmodel = \"PowerEdge 700\"\nwsmt = true\nwsmt_buffer_address = 0x1000\n"
     "wsmt_buffer_pages = 65\nsmi_port = 0x1234\nsmi_code = 0x01\n" VSYSFS_FUZZ_SETTINGS,
     0x1234, 0x01, 0xb2, true, 0x1000, 65},
};

class Input {
 public:
  Input(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool done() const { return i_ >= n_; }
  std::uint8_t u8() { return i_ < n_ ? d_[i_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | u8() << 8); }
  std::uint32_t u24() { return u16() | static_cast<std::uint32_t>(u8()) << 16; }
  std::uint32_t u32() { return u16() | static_cast<std::uint32_t>(u16()) << 16; }
  std::string bytes(std::size_t len) {
    if (len > n_ - i_) len = n_ - i_;
    std::string s(reinterpret_cast<const char*>(d_ + i_), len);
    i_ += len;
    return s;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t i_ = 0;
};

[[noreturn]] void fail(const char* what, unsigned long a, unsigned long b) {
  std::fprintf(stderr, "fuzz_smi invariant: %s (%#lx, %#lx)\n", what, a, b);
  std::abort();
}

std::string path(std::string_view f) { return std::string(kDir) + std::string(f); }

void put32(std::string& s, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

class Driver {
 public:
  Driver(testing::TestMachine& m, const Variant& v) : m_(m), v_(v) {}

  std::uint64_t size() { return std::strtoull(m_.read(path("smi_data_buf_size")).c_str(), nullptr, 10); }
  std::uint64_t phys() { return std::strtoull(m_.read(path("smi_data_buf_phys_addr")).c_str(), nullptr, 16); }

  // The invariants of docs/kernel-semantics.md section 2.2 after any operation.
  // A machine that is off or halted answers ENODEV for every device file
  // (docs/devices/machine.md machine/power) until it is powered on.
  bool powered_off() { return m_.read("kernel/debug/vsysfs/machine/power") != "on\n"; }

  void check() {
    if (powered_off()) {
      if (m_.read(path("smi_data_buf_size")) != "<ENODEV>")
        fail("a device file answers while the machine is off", 0, 0);
      return;
    }
    const std::uint64_t s = size(), p = phys();
    if (s < last_size_) fail("buffer shrank", last_size_, s);
    last_size_ = s;
    if (v_.wsmt) {
      const std::uint64_t remap = std::min<std::uint64_t>(v_.wsmt_pages * 4096, kMaxBuf + 8);
      if (s != remap - 8) fail("WSMT buffer size changed", s, remap - 8);
      if (p != v_.wsmt_addr + 8) fail("WSMT buffer moved", p, v_.wsmt_addr + 8);
    } else {
      if (s > kMaxBuf) fail("buffer above MAX_SMI_DATA_BUF_SIZE", s, kMaxBuf);
      if ((s == 0) != (p == 0)) fail("address without buffer", s, p);
      if (p % 4096) fail("dma buffer not page aligned", p, s);
      if (p + s > (std::uint64_t{1} << 32)) fail("dma buffer above 4 GiB", p, s);
    }
  }

  void op_size(Input& in) {
    const std::uint32_t v = in.u24();
    std::string s = std::to_string(v & 0x7fffff);
    if (v & 0x800000) s += "x\n";
    m_.write(path("smi_data_buf_size"), s);
  }

  void op_write(Input& in) {
    const std::uint8_t where = in.u8();
    std::uint64_t off = in.u16();
    if (where & 1) off *= 4;  // up to 256 KiB and a bit beyond
    if (where & 2) off = kMaxBuf - (off & 0xff);
    std::string bytes = in.bytes(in.u8());
    if (where & 4) bytes.append(static_cast<std::size_t>(in.u8()) * 64, static_cast<char>(where));
    m_.write(path("smi_data"), bytes, core::Caller::root(), static_cast<off_t>(off));
  }

  // A smart 32-bit input word: an NV location, a small value, a raw word,
  // or an address inside the SMI buffer (resolved once the buffer exists).
  std::uint32_t word(Input& in, int idx, std::uint32_t& rel_mask, std::uint16_t* rel_off) {
    static constexpr std::uint32_t kLocations[] = {0x10, 0x20, 0xffff, 0x99, 0x10010};
    const std::uint8_t k = in.u8();
    switch (k & 3) {
      case 0: return kLocations[(k >> 2) % 5];
      case 1: return in.u8();
      case 2: return in.u32();
      default:
        rel_mask |= 1u << idx;
        rel_off[idx] = in.u16();
        return 0;
    }
  }

  void op_command(Input& in) {
    const std::uint8_t flags = in.u8();
    static constexpr std::uint16_t kClasses[] = {0, 1, 11, 20};
    const std::uint8_t c = in.u8(), sl = in.u8();
    const std::uint16_t cls = (c & 0x80) ? in.u16() : kClasses[c % 4];
    const std::uint16_t sel = (sl & 0x80) ? in.u16() : static_cast<std::uint16_t>(sl % 5);
    std::uint32_t rel = 0;
    std::uint16_t rel_off[4] = {};
    std::uint32_t w[4];
    for (int i = 0; i < 4; ++i) w[i] = word(in, i, rel, rel_off);

    std::uint16_t port = v_.ci_port;
    std::uint8_t code = v_.ci_code;
    switch (flags & 3) {
      case 0: break;
      case 1:  // the host-control SMI by hand (raw request 2)
        port = v_.apm_port ? v_.apm_port : 0xb2;
        code = 0xa0;
        break;
      case 2:  // CMOS index/data ports and anything else
        port = in.u16();
        code = in.u8();
        break;
      case 3:
        port = static_cast<std::uint16_t>(0x70 + (in.u8() & 3));
        code = in.u8();
        break;
    }
    const std::size_t tail = (flags & 0x40) ? static_cast<std::size_t>(in.u8()) * 4 : 0;
    std::string s(16 + 36 + tail, '\0');
    put32(s, 0, (flags & 0x80) ? in.u32() : 0x534D4931);  // "SMI1"
    put32(s, 4, (flags & 0x04) ? in.u32() : 0);           // ebx (request 2 uses it)
    put32(s, 8, 0x42534931);                              // "BSI1"
    s[12] = static_cast<char>(port & 0xFF);
    s[13] = static_cast<char>(port >> 8);
    s[14] = static_cast<char>(code);
    s[16] = static_cast<char>(cls & 0xFF);
    s[17] = static_cast<char>(cls >> 8);
    s[18] = static_cast<char>(sel & 0xFF);
    s[19] = static_cast<char>(sel >> 8);
    put32(s, 36, 0xAAAAAAAA);
    for (int i = 0; i < 4; ++i) put32(s, 20 + 4 * i, w[i]);
    for (std::size_t i = 52; i < s.size(); ++i) s[i] = static_cast<char>(i);
    if (m_.write(path("smi_data"), s) < 0) return;
    const bool ebx_self = (flags & 0x0C) == 0x0C;  // EBX = the CI buffer, for request 2
    if (rel || ebx_self) {
      // The buffer exists now (and the same-size rewrite cannot move it).
      const std::uint64_t p = phys();
      for (int i = 0; i < 4; ++i)
        if (rel & (1u << i)) put32(s, 20 + 4 * i, static_cast<std::uint32_t>(p + rel_off[i] % 512));
      if (ebx_self) put32(s, 4, static_cast<std::uint32_t>(p + 16));
      m_.write(path("smi_data"), s);
    }
    if (flags & 0x10) m_.write(path("smi_request"), (flags & 0x20) ? "2\n" : "1\n");
  }

  void op_request(Input& in) {
    static constexpr std::string_view kValues[] = {"0", "1\n", "2", "3", "18446744073709551617", "-1"};
    const std::uint8_t k = in.u8();
    if (k & 0x80) {
      m_.write(path("smi_request"), in.bytes(k & 7));
      return;
    }
    const core::Caller caller = (k & 0x40) ? core::Caller::user(1000) : core::Caller::root();
    m_.write(path("smi_request"), kValues[k % 6], caller);
  }

  void op_read(Input& in) {
    const std::uint8_t k = in.u8();
    std::uint64_t off = in.u16();
    if (k & 1) off *= 4;
    // Through the server, not TestMachine::pread: that one reports errors
    // as "<ENAME>" text, which the buffer's own bytes can spell (a '<' at
    // offset 0 was once taken for a failed read).
    const core::Ino ino = m_.tree.resolve(path("smi_data"));
    auto fh = m_.server.open(ino, O_RDONLY);
    if (!fh) fail("smi_data open failed", off, static_cast<std::uint64_t>(fh.error().value()));
    auto r = m_.server.read(core::Caller::root(), fh->fh, (k >> 1) * 16 + 1, static_cast<off_t>(off));
    const std::string part = r ? std::string(r->bytes()) : std::string();
    m_.server.release(fh->fh);
    if (!r && r.error() == core::Errno{ENODEV} && powered_off()) return;
    if (!r) fail("smi_data pread failed", off, static_cast<std::uint64_t>(r.error().value()));
    const std::uint64_t s = size();
    const std::uint64_t want = off >= s ? 0 : std::min<std::uint64_t>(s - off, (k >> 1) * 16 + 1);
    if (part.size() != want) fail("pread length", part.size(), want);
    if (k & 0x80) {
      const std::string all = m_.read(path("smi_data"));
      if (all.size() != s) fail("smi_data length != smi_data_buf_size", all.size(), s);
    }
  }

  void op_host(Input& in) {
    static constexpr std::string_view kFiles[] = {"host_control_action", "host_control_smi_type",
                                                  "host_control_on_shutdown"};
    const std::uint8_t k = in.u8(), v = in.u8();
    std::string s = std::to_string(v);
    if (k & 0x10) s = std::to_string(static_cast<std::uint64_t>(v) + (std::uint64_t{1} << 32));
    if (k & 0x20) s += "\n";
    const std::string_view file = kFiles[(k & 0x0f) % 3];
    m_.write(path(file), s);
    if (k & 0x40) (void)m_.read(path(file));
  }

  void op_clock(Input& in) {
    m_.write("kernel/debug/vsysfs/clock/advance_ms", std::to_string(in.u16()));
  }

  void op_shutdown(Input& in) {
    static constexpr std::string_view kHow[] = {"poweroff", "halt", "reboot\n", "sleep"};
    const std::size_t boots = m_.events_of("machine", "boot").size();
    const std::uint8_t k = in.u8();
    if (k % 5 == 4)
      m_.write("kernel/debug/vsysfs/machine/power", "on");  // the power button
    else
      m_.write("kernel/debug/vsysfs/machine/shutdown", kHow[k % 5]);
    (void)m_.read("kernel/debug/vsysfs/machine/power_state");
    // A shutdown that ends cycled or rebooted boots the machine: the driver
    // probes again and its buffer is gone (docs/devices/dell.md "Power
    // cycle"), so the buffer may only grow again from there.
    if (m_.events_of("machine", "boot").size() != boots) last_size_ = 0;
  }

  void op_cmos(Input& in) {
    // Mostly the host-control pointer bytes: page 1 (0x70) index 0x70, page 2 (0x72) index 0x38.
    static constexpr std::uint32_t kAt[] = {0x70 * 256 + 0x70, 0x72 * 256 + 0x38, 0x70 * 256 + 0x5c};
    const std::uint8_t k = in.u8();
    std::uint32_t off = (k & 0x80) ? in.u16() : kAt[k % 3];
    std::string bytes = in.bytes(k & 7);
    if (k & 0x40) {
      // The SMI buffer's own address, so an APM SMI finds its apm_cmd.
      const std::uint64_t p = phys() + (k & 0x38);
      bytes.assign(4, '\0');
      put32(bytes, 0, static_cast<std::uint32_t>(p));
    }
    m_.write("kernel/debug/vsysfs/dcdbas/cmos", bytes, core::Caller::root(), off);
  }

  void op_platform(Input& in) {
    static constexpr std::string_view kFiles[] = {"uevent", "driver_override", "power/control"};
    const std::uint8_t k = in.u8();
    m_.write(path(kFiles[k % 3]), in.bytes(in.u8() % 64));
    (void)m_.read(path(kFiles[k % 3]));
  }

 private:
  testing::TestMachine& m_;
  const Variant& v_;
  std::uint64_t last_size_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const Variant& v = kVariants[in.u8() % std::size(kVariants)];
  testing::TestMachine m(v.toml);
  Driver d(m, v);
  d.check();
  for (int steps = 0; !in.done() && steps < 48; ++steps) {
    switch (in.u8() % 10) {
      case 0: d.op_size(in); break;
      case 1: d.op_write(in); break;
      case 2: d.op_command(in); break;
      case 3: d.op_request(in); break;
      case 4: d.op_read(in); break;
      case 5: d.op_host(in); break;
      case 6: d.op_clock(in); break;
      case 7: d.op_shutdown(in); break;
      case 8: d.op_cmos(in); break;
      case 9: d.op_platform(in); break;
    }
    d.check();
  }
  // FUZZ_SMI_TRACE=1 build-fuzz/fuzz_smi SEED: what the sequence reached.
  static const bool trace = std::getenv("FUZZ_SMI_TRACE") != nullptr;
  if (trace)
    for (const auto& e : m.events_of("dcdbas"))
      if (e.what != "smi_data_write" && e.what != "outb" && e.what != "inb")
        std::fprintf(stderr, "%s\n", e.to_json().c_str());
  return 0;
}
