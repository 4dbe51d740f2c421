#pragma once

// Shared helpers of the dcdbas unit tests: machines, paths, and building
// the bytes a client writes to smi_data (struct smi_cmd + the 36-byte
// calling_interface_buffer, docs/kernel-semantics.md sections 2.3, 2.4).

#include <array>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/support/test_env.hpp"

namespace vsysfs::testing::dcdbas {

inline constexpr std::string_view kDir = "devices/platform/dcdbas/";

// A TYPE2 PowerEdge without WSMT (growable buffer) and two NV settings.
inline constexpr std::string_view kPe1400 = R"([dcdbas]
model = "PowerEdge 1400"
service_tag = "ABC1234"
asset_tag = "ASSET-42"
property_tag = "Property of vsysfs"
[[dcdbas.setting]]
location = 0x10
value = 1
min = 0
max = 1
[[dcdbas.setting]]
location = 0x20
value = 3
battery = 2
ac = 5
min = 0
max = 9
[[dcdbas.token]]
id = 0x51
location = 0x10
value = 1
)";

// A machine with the WSMT fixed firmware buffer (4 pages).
inline constexpr std::string_view kWsmt = R"([dcdbas]
model = "PowerEdge R740"
wsmt = true
wsmt_buffer_address = 0x6f7d5000
wsmt_buffer_pages = 4
)";

inline std::string path(std::string_view file) { return std::string(kDir) + std::string(file); }

inline unsigned long phys(TestMachine& m) {
  return std::strtoul(m.read(path("smi_data_buf_phys_addr")).c_str(), nullptr, 16);
}

inline void put32(std::string& s, std::size_t off, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

inline std::uint32_t u32_at(std::string_view s, std::size_t off) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(s[off + i])) << (8 * i);
  return v;
}

inline std::int32_t s32_at(std::string_view s, std::size_t off) {
  return static_cast<std::int32_t>(u32_at(s, off));
}

// struct smi_cmd (magic, ebx, ecx, port, code) + calling_interface_buffer
// {class, select, input[4], output[4]} + `tail` zero bytes after it.
inline std::string ci_command(std::uint16_t port, std::uint8_t code, std::uint16_t cls,
                              std::uint16_t sel, std::array<std::uint32_t, 4> in,
                              std::size_t tail = 0, std::uint32_t ebx = 0) {
  std::string s(16 + 36 + tail, '\0');
  put32(s, 0, 0x534D4931);
  put32(s, 4, ebx);
  put32(s, 8, 0x42534931);
  s[12] = static_cast<char>(port & 0xFF);
  s[13] = static_cast<char>(port >> 8);
  s[14] = static_cast<char>(code);
  s[16] = static_cast<char>(cls & 0xFF);
  s[17] = static_cast<char>(cls >> 8);
  s[18] = static_cast<char>(sel & 0xFF);
  s[19] = static_cast<char>(sel >> 8);
  for (int i = 0; i < 4; ++i) put32(s, 20 + 4 * i, in[i]);
  put32(s, 36, 0xAAAAAAAA);  // output[] poison: the BIOS must overwrite it
  return s;
}

// output[] of the calling-interface buffer after an SMI.
inline std::array<std::int32_t, 4> outputs(TestMachine& m) {
  const std::string buf = m.pread(path("smi_data"), 52, 0);
  return {s32_at(buf, 36), s32_at(buf, 40), s32_at(buf, 44), s32_at(buf, 48)};
}

// One calling-interface SMI through the files, the way dcdbas.txt says.
inline std::array<std::int32_t, 4> ci_smi(TestMachine& m, std::uint16_t cls, std::uint16_t sel,
                                          std::array<std::uint32_t, 4> in) {
  const std::string cmd = ci_command(0xb2, 0xda, cls, sel, in);
  if (m.write(path("smi_data"), cmd) != static_cast<long>(cmd.size())) return {-100, 0, 0, 0};
  if (m.write(path("smi_request"), "1\n") != 2) return {-101, 0, 0, 0};
  return outputs(m);
}

}  // namespace vsysfs::testing::dcdbas
