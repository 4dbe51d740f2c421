#include "core/parse.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <limits>

namespace vsysfs::core {

namespace {

// The kernel's view of a buffer: a C string. It ends at the first NUL of the
// view (or the view's end), and reading at or past the end yields '\0', as
// the terminator would. The kernel's parsers peek up to two bytes ahead
// (_parse_integer_fixup_radix looks at s[1] and s[2]); this keeps those
// peeks inside the view.
class CStr {
 public:
  explicit constexpr CStr(std::string_view s) noexcept : s_(s.substr(0, s.find('\0'))) {}

  constexpr char operator[](std::size_t i) const noexcept {
    return i < s_.size() ? s_[i] : '\0';
  }
  constexpr std::size_t size() const noexcept { return s_.size(); }
  constexpr std::string_view view() const noexcept { return s_; }
  // The string from offset n on (the kernel's "s + n").
  constexpr CStr tail(std::size_t n) const noexcept { return CStr(s_.substr(std::min(n, s_.size())), 0); }

 private:
  // Already NUL-free: skips the find().
  constexpr CStr(std::string_view s, int /*trusted*/) noexcept : s_(s) {}
  std::string_view s_;
};

constexpr char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c; }

constexpr bool is_xdigit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// _parse_integer_fixup_radix: settles base 0 and returns how many prefix
// characters ("0x") to skip.
// Kernel quirk: with base 0, "0x" counts as a hex prefix only when a hex
// digit follows, so "0x" and "0xg" are octal 0 followed by junk.
std::size_t fixup_radix(const CStr& s, unsigned& base) noexcept {
  if (base == 0) {
    if (s[0] == '0') {
      base = (to_lower(s[1]) == 'x' && is_xdigit(s[2])) ? 16 : 8;
    } else {
      base = 10;
    }
  }
  if (base == 16 && s[0] == '0' && to_lower(s[1]) == 'x') return 2;
  return 0;
}

struct Digits {
  unsigned long long value;  // wrapped modulo 2^64 on overflow, as the kernel's
  std::size_t count;         // digits consumed
  bool overflow;             // the kernel's KSTRTOX_OVERFLOW bit
};

// _parse_integer_limit: digits 0-9a-fA-F below @base, at most @max_chars.
Digits parse_integer_limit(const CStr& s, unsigned base, std::size_t max_chars) noexcept {
  unsigned long long res = 0;
  std::size_t n = 0;
  bool overflow = false;
  while (n < max_chars) {
    const unsigned c = static_cast<unsigned char>(s[n]);
    const unsigned lc = c | 0x20;  // the kernel's "don't tolower() this line"
    unsigned val;
    if (c >= '0' && c <= '9') {
      val = c - '0';
    } else if (lc >= 'a' && lc <= 'f') {
      val = lc - 'a' + 10;
    } else {
      break;
    }
    if (val >= base) break;
    // The kernel only checks once the top 4 bits are in use: below 2^60 no
    // base up to 16 can overflow. Kept verbatim so bases > 16 match too.
    if (res & (~0ULL << 60)) {
      if (res > (std::numeric_limits<unsigned long long>::max() - val) / base) overflow = true;
    }
    res = res * base + val;
    ++n;
  }
  return {res, n, overflow};
}

// _kstrtoull: everything after the optional '+'.
Result<unsigned long long> kstrtoull_body(CStr s, unsigned base) noexcept {
  s = s.tail(fixup_radix(s, base));
  const Digits d = parse_integer_limit(s, base, kMaxParseChars);
  // Overflow is checked before "no digits" and before trailing junk, so
  // "99999999999999999999x" is ERANGE, not EINVAL.
  if (d.overflow) return Errno{ERANGE};
  if (d.count == 0) return Errno{EINVAL};
  std::size_t i = d.count;
  if (s[i] == '\n') ++i;
  if (s[i] != '\0') return Errno{EINVAL};
  return d.value;
}

// Narrowing the way the kernel does: "if (tmp != (type)tmp) return -ERANGE".
template <typename T, typename Wide>
Result<T> narrow(Result<Wide> r) noexcept {
  if (!r) return r.error();
  const Wide v = *r;
  if (v != static_cast<Wide>(static_cast<T>(v))) return Errno{ERANGE};
  return static_cast<T>(v);
}

// simple_strntoull.
Lenient simple_strntoull(const CStr& s, std::size_t max_chars, unsigned base) noexcept {
  const std::size_t prefix = fixup_radix(s, base);
  if (prefix >= max_chars) return {0, max_chars};  // field too short for prefix + digit
  const Digits d = parse_integer_limit(s.tail(prefix), base, max_chars - prefix);
  return {d.value, prefix + d.count};
}

}  // namespace

// ----------------------------------------------------------------- kstrto*

Result<unsigned long long> kstrtoull(std::string_view s, unsigned base) noexcept {
  CStr c(s);
  if (c[0] == '+') c = c.tail(1);
  return kstrtoull_body(c, base);
}

Result<long long> kstrtoll(std::string_view s, unsigned base) noexcept {
  const CStr c(s);
  if (c[0] == '-') {
    // Kernel quirk: no '+' after '-', and "-0" is fine (0).
    const Result<unsigned long long> r = kstrtoull_body(c.tail(1), base);
    if (!r) return r.error();
    const unsigned long long neg = 0ULL - *r;
    if (static_cast<long long>(neg) > 0) return Errno{ERANGE};
    return static_cast<long long>(neg);  // LLONG_MIN included
  }
  const Result<unsigned long long> r = kstrtoull(s, base);
  if (!r) return r.error();
  if (static_cast<long long>(*r) < 0) return Errno{ERANGE};
  return static_cast<long long>(*r);
}

Result<unsigned long> kstrtoul(std::string_view s, unsigned base) noexcept {
  return narrow<unsigned long>(kstrtoull(s, base));
}
Result<unsigned int> kstrtouint(std::string_view s, unsigned base) noexcept {
  return narrow<unsigned int>(kstrtoull(s, base));
}
Result<std::uint16_t> kstrtou16(std::string_view s, unsigned base) noexcept {
  return narrow<std::uint16_t>(kstrtoull(s, base));
}
Result<std::uint8_t> kstrtou8(std::string_view s, unsigned base) noexcept {
  return narrow<std::uint8_t>(kstrtoull(s, base));
}
Result<long> kstrtol(std::string_view s, unsigned base) noexcept {
  return narrow<long>(kstrtoll(s, base));
}
Result<int> kstrtoint(std::string_view s, unsigned base) noexcept {
  return narrow<int>(kstrtoll(s, base));
}
Result<std::int16_t> kstrtos16(std::string_view s, unsigned base) noexcept {
  return narrow<std::int16_t>(kstrtoll(s, base));
}
Result<std::int8_t> kstrtos8(std::string_view s, unsigned base) noexcept {
  return narrow<std::int8_t>(kstrtoll(s, base));
}

Result<bool> kstrtobool(std::string_view s) noexcept {
  // Kernel quirk: only the first one or two characters matter, so "yellow",
  // "1234", "0x" and "offensive" are all valid booleans.
  const CStr c(s);
  switch (c[0]) {
    case 'y':
    case 'Y':
    case 't':
    case 'T':
    case '1':
      return true;
    case 'n':
    case 'N':
    case 'f':
    case 'F':
    case '0':
      return false;
    case 'o':
    case 'O':
      switch (c[1]) {
        case 'n':
        case 'N':
          return true;
        case 'f':
        case 'F':
          return false;
        default:
          break;
      }
      break;
    default:
      break;
  }
  return Errno{EINVAL};
}

// ------------------------------------------------------------ simple_strto*

Lenient simple_strtoull(std::string_view s, unsigned base) noexcept {
  return simple_strntoull(CStr(s), kMaxParseChars, base);
}

Lenient simple_strtoul(std::string_view s, unsigned base) noexcept {
  const Lenient r = simple_strtoull(s, base);
  return {static_cast<unsigned long>(r.value), r.consumed};
}

LenientSigned simple_strtol(std::string_view s, unsigned base) noexcept {
  const CStr c(s);
  if (c[0] == '-') {
    const Lenient r = simple_strntoull(c.tail(1), kMaxParseChars, base);
    const unsigned long neg = 0UL - static_cast<unsigned long>(r.value);
    return {static_cast<long>(neg), r.consumed + 1};
  }
  const Lenient r = simple_strtoul(s, base);
  return {static_cast<long>(static_cast<unsigned long>(r.value)), r.consumed};
}

LenientSigned simple_strtoll(std::string_view s, unsigned base) noexcept {
  const CStr c(s);
  if (c[0] == '-') {
    const Lenient r = simple_strntoull(c.tail(1), kMaxParseChars - 1, base);
    return {static_cast<long long>(0ULL - r.value), r.consumed + 1};
  }
  const Lenient r = simple_strntoull(c, kMaxParseChars, base);
  return {static_cast<long long>(r.value), r.consumed};
}

unsigned long long memparse(std::string_view s, std::size_t* consumed) noexcept {
  const CStr c(s);
  const Lenient r = simple_strntoull(c, kMaxParseChars, 0);
  unsigned long long ret = r.value;
  std::size_t end = r.consumed;
  switch (c[end]) {
    case 'E':
    case 'e':
      ret <<= 10;
      [[fallthrough]];
    case 'P':
    case 'p':
      ret <<= 10;
      [[fallthrough]];
    case 'T':
    case 't':
      ret <<= 10;
      [[fallthrough]];
    case 'G':
    case 'g':
      ret <<= 10;
      [[fallthrough]];
    case 'M':
    case 'm':
      ret <<= 10;
      [[fallthrough]];
    case 'K':
    case 'k':
      ret <<= 10;
      ++end;
      break;
    default:
      break;
  }
  if (consumed != nullptr) *consumed = end;
  return ret;
}

// ------------------------------------------------------------ string helpers

bool sysfs_streq(std::string_view a, std::string_view b) noexcept {
  const std::string_view x = CStr(a).view();
  const std::string_view y = CStr(b).view();
  if (x == y) return true;
  // One is the other plus exactly one '\n' (the kernel's two tail checks).
  if (y.size() == x.size() + 1 && y.back() == '\n' && y.substr(0, x.size()) == x) return true;
  if (x.size() == y.size() + 1 && x.back() == '\n' && x.substr(0, y.size()) == y) return true;
  return false;
}

std::string_view skip_spaces(std::string_view s) noexcept {
  std::string_view v = CStr(s).view();
  while (!v.empty() && kernel_isspace(v.front())) v.remove_prefix(1);
  return v;
}

std::string_view strim(std::string_view s) noexcept {
  std::string_view v = CStr(s).view();
  while (!v.empty() && kernel_isspace(v.back())) v.remove_suffix(1);
  return skip_spaces(v);
}

std::string_view strip_newline(std::string_view s) noexcept {
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  return s;
}

// ------------------------------------------------------------------ bitmaps

namespace {

// Region 9-38:4/10 sets 4 bits out of every 10, from 9 up to 38.
struct Region {
  unsigned start = 0;
  unsigned off = 0;        // bits used per group
  unsigned group_len = 0;  // group size
  unsigned end = 0;
  unsigned nbits = 0;
};

constexpr std::size_t kRegionsDone = std::string_view::npos;

constexpr bool end_of_str(char c) noexcept { return c == '\0' || c == '\n'; }
constexpr bool end_of_region_strict(char c) noexcept { return kernel_isspace(c) || c == ','; }
constexpr bool end_of_region(char c) noexcept { return end_of_region_strict(c) || end_of_str(c); }

// bitmap_getnum: 'N' or an unsigned 32-bit decimal (no sign, no prefix).
// Returns the offset after the number.
Result<std::size_t> bitmap_getnum(const CStr& s, std::size_t pos, unsigned& num,
                                  unsigned lastbit) noexcept {
  if (s[pos] == 'N') {
    num = lastbit;
    return pos + 1;
  }
  const Digits d = parse_integer_limit(s.tail(pos), 10, kMaxParseChars);
  if (d.count == 0) return Errno{EINVAL};
  if (d.overflow || d.value > std::numeric_limits<unsigned>::max()) return Errno{EOVERFLOW};
  num = static_cast<unsigned>(d.value);
  return pos + d.count;
}

// bitmap_parse_region: one region at @pos; returns where the next search
// starts, or kRegionsDone when the string ended right after the region.
Result<std::size_t> bitmap_parse_region(const CStr& s, std::size_t pos, Region& r) noexcept {
  const unsigned lastbit = r.nbits - 1;  // Kernel quirk: UINT_MAX when nbits == 0
  bool have_end = false;

  const std::string_view rest = s.view().substr(std::min(pos, s.size()));
  if (rest.size() >= 3 && to_lower(rest[0]) == 'a' && to_lower(rest[1]) == 'l' &&
      to_lower(rest[2]) == 'l') {
    r.start = 0;
    r.end = lastbit;
    pos += 3;
    have_end = true;
  } else {
    const Result<std::size_t> p = bitmap_getnum(s, pos, r.start, lastbit);
    if (!p) return p.error();
    pos = *p;
    if (!end_of_region(s[pos])) {
      if (s[pos] != '-') return Errno{EINVAL};
      const Result<std::size_t> q = bitmap_getnum(s, pos + 1, r.end, lastbit);
      if (!q) return q.error();
      pos = *q;
      have_end = true;
    }
  }

  if (!have_end) r.end = r.start;
  if (!have_end || end_of_region(s[pos])) {
    // Kernel quirk: with end == UINT_MAX these wrap to 0 and the region is
    // rejected as EINVAL (group_len == 0) rather than ERANGE.
    r.off = r.end + 1;
    r.group_len = r.end + 1;
    return end_of_str(s[pos]) ? kRegionsDone : pos;
  }

  if (s[pos] != ':') return Errno{EINVAL};
  const Result<std::size_t> p = bitmap_getnum(s, pos + 1, r.off, lastbit);
  if (!p) return p.error();
  pos = *p;
  if (s[pos] != '/') return Errno{EINVAL};
  // Kernel quirk: nothing checks what follows the group size; the next
  // region search starts right there, so "0-7:1/2N" also sets bit N.
  return bitmap_getnum(s, pos + 1, r.group_len, lastbit);
}

Status bitmap_check_region(const Region& r) noexcept {
  if (r.start > r.end || r.group_len == 0 || r.off > r.group_len) return Errno{EINVAL};
  if (r.end >= r.nbits) return Errno{ERANGE};
  return {};
}

void bitmap_set_region(const Region& r, std::vector<bool>& mask) {
  // 64-bit cursor: start + group_len cannot wrap even for nbits near 2^32.
  for (std::uint64_t start = r.start; start <= r.end; start += r.group_len) {
    const std::uint64_t n = std::min<std::uint64_t>(r.end - start + 1, r.off);
    for (std::uint64_t b = start; b < start + n; ++b) mask[b] = true;
  }
}

}  // namespace

Result<std::vector<unsigned>> bitmap_parselist(std::string_view s, unsigned nbits) {
  const CStr c(s);
  Region r;
  r.nbits = nbits;
  std::vector<bool> mask(nbits);

  std::size_t pos = 0;
  while (true) {
    // bitmap_find_region: commas and whitespace (newlines included) may
    // precede a region.
    while (end_of_region_strict(c[pos])) ++pos;
    if (end_of_str(c[pos])) break;

    const Result<std::size_t> next = bitmap_parse_region(c, pos, r);
    if (!next) return next.error();
    if (const Status st = bitmap_check_region(r); !st) return st.error();
    bitmap_set_region(r, mask);
    if (*next == kRegionsDone) break;
    pos = *next;
  }

  std::vector<unsigned> out;
  for (unsigned i = 0; i < nbits; ++i) {
    if (mask[i]) out.push_back(i);
  }
  return out;
}

std::string bitmap_print_list(const std::vector<bool>& bits) {
  std::string out;
  auto it = std::back_inserter(out);
  const std::size_t n = bits.size();
  std::size_t i = 0;
  while (i < n) {
    if (!bits[i]) {
      ++i;
      continue;
    }
    std::size_t top = i;
    while (top + 1 < n && bits[top + 1]) ++top;
    if (!out.empty()) out.push_back(',');
    if (top == i) {
      fmt::format_to(it, "{}", i);
    } else {
      fmt::format_to(it, "{}-{}", i, top);
    }
    i = top + 1;
  }
  return out;
}

std::string bitmap_print_mask(const std::vector<bool>& bits, unsigned nbits) {
  constexpr unsigned kChunkSz = 32;
  std::string out;
  auto it = std::back_inserter(out);
  unsigned chunksz = nbits % kChunkSz;
  if (chunksz == 0) chunksz = kChunkSz;

  const std::uint64_t aligned = (std::uint64_t{nbits} + kChunkSz - 1) / kChunkSz * kChunkSz;
  for (std::uint64_t end = aligned; end >= kChunkSz; end -= kChunkSz) {
    const std::uint64_t base = end - kChunkSz;
    std::uint32_t val = 0;
    for (unsigned b = 0; b < chunksz; ++b) {
      if (base + b < bits.size() && bits[base + b]) val |= std::uint32_t{1} << b;
    }
    if (!out.empty()) out.push_back(',');
    fmt::format_to(it, "{:0{}x}", val, (chunksz + 3) / 4);
    chunksz = kChunkSz;
  }
  return out;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  s = s.substr(0, s.find('\0'));
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && kernel_isspace(s[i])) ++i;
    std::size_t j = i;
    while (j < s.size() && !kernel_isspace(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace vsysfs::core
