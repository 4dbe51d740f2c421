#pragma once

// The kernel's string parsers and list/mask formatters, as used by sysfs
// store() and show() methods: what a driver does with the bytes userspace
// wrote (docs/kernel-semantics.md section 1.4 "Writing a text
// attribute", and sections 4.2/4.3 for the cpumap and cpulist formats).
//
// Followed line by line from the modern kernel (torvalds/linux):
//   lib/kstrtox.c     _parse_integer_fixup_radix, _parse_integer_limit,
//                     _kstrtoull, kstrto{ull,ul,uint,u16,u8,ll,l,int,s16,s8},
//                     kstrtobool (the 2022 version that also takes t/T/f/F)
//   lib/vsprintf.c    simple_strntoull (via simple_strtoull, max_chars INT_MAX),
//                     simple_strtoul, simple_strtol, simple_strtoll,
//                     bitmap_string (%*pb), bitmap_list_string (%*pbl)
//   lib/cmdline.c     memparse
//   lib/string.c      sysfs_streq, strim, skip_spaces
//   lib/ctype.c       isspace (includes 0xA0)
//   lib/bitmap-str.c  bitmap_parselist (was lib/bitmap.c before 6.x)
//
// C-string model: the kernel's parsers read a NUL-terminated buffer (sysfs
// NUL-terminates what userspace wrote). Every function here that models a
// C-string function therefore sees the view only up to its first NUL byte,
// and treats "past the end" as the terminator; none reads outside the view.
// Only strip_newline() (which is not a kernel function) is purely view-based.
//
// Nothing here throws except std::bad_alloc from the functions that return
// a std::vector or std::string; the integer parsers never allocate.
//
// Thread-safety: pure functions, no shared state.

#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace vsysfs::core {

// The most digits simple_strtoull() looks at: the kernel calls
// simple_strntoull(cp, INT_MAX, ...). Only reachable with views > 2 GiB.
inline constexpr std::size_t kMaxParseChars = INT_MAX;

// The kernel's isspace() (lib/ctype.c): \t \n \v \f \r, space, and
// Kernel quirk: 0xA0 (Latin-1 no-break space) is whitespace too.
constexpr bool kernel_isspace(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 9 && u <= 13) || u == 32 || u == 0xA0;
}

// ---------------------------------------------------------------------------
// Strict parsers: kstrto*() (lib/kstrtox.c).
//
// Optional leading '+' (and '-' for the signed ones), then digits in @base,
// then at most one '\n', then the end of the string. Base 0 autodetects:
// "0x"/"0X" followed by a hex digit -> 16, leading '0' -> 8, else 10. Base 16
// accepts an optional 0x prefix. No whitespace anywhere. EINVAL for no digits
// or junk, ERANGE when the value does not fit the type. Bases above 16 behave
// as in the kernel (only 0-9a-f are digits, overflow detection assumes <= 16);
// callers pass 0, 8, 10 or 16.
// ---------------------------------------------------------------------------
Result<unsigned long long> kstrtoull(std::string_view s, unsigned base) noexcept;
Result<unsigned long> kstrtoul(std::string_view s, unsigned base) noexcept;
Result<unsigned int> kstrtouint(std::string_view s, unsigned base) noexcept;
Result<std::uint16_t> kstrtou16(std::string_view s, unsigned base) noexcept;
Result<std::uint8_t> kstrtou8(std::string_view s, unsigned base) noexcept;
Result<long long> kstrtoll(std::string_view s, unsigned base) noexcept;
Result<long> kstrtol(std::string_view s, unsigned base) noexcept;
Result<int> kstrtoint(std::string_view s, unsigned base) noexcept;
Result<std::int16_t> kstrtos16(std::string_view s, unsigned base) noexcept;
Result<std::int8_t> kstrtos8(std::string_view s, unsigned base) noexcept;

// kstrtobool (lib/kstrtox.c, modern): decided by the first one or two
// characters only. y Y t T 1 -> true; n N f F 0 -> false; o/O followed by
// n/N -> true, by f/F -> false; anything else (including "") -> EINVAL.
Result<bool> kstrtobool(std::string_view s) noexcept;

// ---------------------------------------------------------------------------
// Lenient parsers: simple_strto*() (lib/vsprintf.c). They never fail.
// ---------------------------------------------------------------------------

// What simple_strtoull() returns plus where its *endp would point, as an
// offset from the start of the view. consumed == 0 means "no number" (the
// drivers' "if (end == buf) return -EINVAL" check).
struct Lenient {
  unsigned long long value;
  std::size_t consumed;
  friend constexpr bool operator==(const Lenient&, const Lenient&) = default;
};

// The same for the signed simple_strtol()/simple_strtoll().
struct LenientSigned {
  long long value;
  std::size_t consumed;
  friend constexpr bool operator==(const LenientSigned&, const LenientSigned&) = default;
};

// simple_strtoull: no whitespace skipping, no sign, base 0 autodetect as for
// kstrto*, stops at the first character that is not a digit in the base.
// Overflow wraps modulo 2^64 silently (the kernel computes the overflow bit
// and drops it: "FIXME"); every digit is still consumed.
// Kernel quirk: in base 16 a bare "0x" is consumed (value 0, consumed 2),
// while in base 0 "0x" not followed by a hex digit is octal "0" (consumed 1).
Lenient simple_strtoull(std::string_view s, unsigned base) noexcept;
// simple_strtoull truncated to unsigned long (identical on LP64).
Lenient simple_strtoul(std::string_view s, unsigned base) noexcept;
// Kernel quirk: a leading '-' is always consumed, even with no digits after
// it: simple_strtol("-", 10) is {0, 1}, simple_strtol("-x", 10) is {0, 1}.
LenientSigned simple_strtol(std::string_view s, unsigned base) noexcept;
LenientSigned simple_strtoll(std::string_view s, unsigned base) noexcept;

// memparse (lib/cmdline.c): simple_strtoull(s, 0) then one optional suffix
// K/k M/m G/g T/t P/p E/e, each worth 10 more bits of left shift (bits
// shifted out are lost). *consumed (if non-null) gets the end offset,
// including the suffix.
// Kernel quirk: the suffix is consumed even without digits ("K" -> 0,
// consumed 1), and in hex "0x1E" is 0x1e (E is a hex digit), not 1 EiB.
unsigned long long memparse(std::string_view s, std::size_t* consumed = nullptr) noexcept;

// ---------------------------------------------------------------------------
// String helpers (lib/string.c).
// ---------------------------------------------------------------------------

// True iff the strings are equal, or one is the other plus a single '\n'.
// Kernel quirk: so "a\n\n" equals "a\n", but "a" does not equal "a\n\n".
bool sysfs_streq(std::string_view a, std::string_view b) noexcept;

// strim: the string without leading and trailing kernel_isspace()
// characters (a sub-view of the input, cut at its first NUL).
std::string_view strim(std::string_view s) noexcept;

// skip_spaces: the string without leading kernel_isspace() characters.
std::string_view skip_spaces(std::string_view s) noexcept;

// The view without one trailing '\n' (if there is one). Not a kernel
// function: what drivers do with "if (buf[len-1] == '\n') len--".
std::string_view strip_newline(std::string_view s) noexcept;

// ---------------------------------------------------------------------------
// Bitmaps: CPU and node lists and masks.
// ---------------------------------------------------------------------------

// bitmap_parselist (lib/bitmap-str.c): "0-3,8,10-11", strides
// "0-1023:2/256" (2 bits of every group of 256), "N" for nbits-1, "all"
// (any case) for 0-N. Regions are separated by commas and/or whitespace;
// parsing ends at NUL, or at a '\n' that directly follows a region.
// Kernel quirk: anything after that '\n' is ignored ("0-3\nxyz" is 0-3),
// but a '\n' after a separator or after a stride's group size is just
// whitespace ("1,\n2" and "0-7:1/2\n5" go on parsing).
// Returns the set bit numbers in ascending order. An empty string (or only
// separators) is an empty list, not an error.
// Errors, as the kernel: EINVAL for bad syntax, start > end, a zero group
// size or a used size above the group size; ERANGE for a bit >= nbits;
// EOVERFLOW for a number that does not fit 32 bits.
// Memory is O(nbits).
Result<std::vector<unsigned>> bitmap_parselist(std::string_view s, unsigned nbits);

// %*pbl (lib/vsprintf.c bitmap_list_string) over all bits of @bits:
// "0-3,8,10-11"; a run of two is "0-1"; no bits set -> "". No newline.
std::string bitmap_print_list(const std::vector<bool>& bits);

// %*pb (lib/vsprintf.c bitmap_string) for an @nbits-wide mask: 32-bit words
// in lowercase hex, most significant first, separated by ','. The first word
// holds nbits % 32 bits (32 if 0) and is zero-padded to ceil(bits/4) digits;
// later words to 8: nbits=4 -> "f", 40 -> "ff,ffffffff". nbits=0 -> "".
// Bits of @bits at or above nbits are ignored; missing ones count as 0.
// No newline.
std::string bitmap_print_mask(const std::vector<bool>& bits, unsigned nbits);

// The words of a knob's command line, split at kernel whitespace (the
// kernel's argv_split), ending at a NUL as a C string would.
std::vector<std::string_view> split_words(std::string_view s);

}  // namespace vsysfs::core
