#pragma once

// Little-endian loads and stores for simulated firmware structures (SMBIOS
// tables, the SMI calling-interface buffer, CMOS), whatever the host's order.
//
// Thread-safety: pure functions.

#include <cstdint>

namespace vsysfs::core {

inline std::uint32_t le32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

inline void put_le32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace vsysfs::core
