// libFuzzer target: every parser of core/parse.hpp (make fuzz).
// The first byte picks the parser and its base/nbits; the rest is the input,
// handed over NUL-terminated as the fs layer hands it to store().
// Invariants checked beyond "no crash, no sanitizer report":
//   - strict kstrto* agree with each other on range (kstrtou8 accepts
//     only what kstrtoull accepts, with the same value);
//   - bitmap_parselist returns bits < nbits, and the list printed back
//     parses to the same set.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "core/parse.hpp"

using namespace vsysfs::core;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const unsigned sel = data[0];
  const std::string buf(reinterpret_cast<const char*>(data + 1), size - 1);  // NUL-terminated
  const std::string_view in(buf);
  static constexpr unsigned kBases[] = {0, 8, 10, 16};
  const unsigned base = kBases[(sel >> 4) & 3];
  switch (sel & 15) {
    case 0: {
      auto ull = kstrtoull(in, base);
      auto u8 = kstrtou8(in, base);
      auto u16 = kstrtou16(in, base);
      auto ui = kstrtouint(in, base);
      auto ul = kstrtoul(in, base);
      if (u8) check(ull && *ull == *u8);
      if (u16) check(ull && *ull == *u16);
      if (ui) check(ull && *ull == *ui);
      if (ul) check(ull && *ull == *ul);
      break;
    }
    case 1: {
      auto ll = kstrtoll(in, base);
      auto s8 = kstrtos8(in, base);
      auto s16 = kstrtos16(in, base);
      auto i = kstrtoint(in, base);
      auto l = kstrtol(in, base);
      if (s8) check(ll && *ll == *s8);
      if (s16) check(ll && *ll == *s16);
      if (i) check(ll && *ll == *i);
      if (l) check(ll && *ll == *l);
      break;
    }
    case 2:
      (void)kstrtobool(in);
      break;
    case 3: {
      auto r = simple_strtoull(in, base);
      auto r2 = simple_strtoul(in, base);
      check(r.consumed <= in.size() && r2.consumed <= in.size());
      break;
    }
    case 4: {
      auto r = simple_strtol(in, base);
      auto r2 = simple_strtoll(in, base);
      (void)r;
      (void)r2;
      break;
    }
    case 5: {
      std::size_t consumed = 0;
      (void)memparse(in, &consumed);
      check(consumed <= in.size());
      break;
    }
    case 6: {
      const auto half = in.size() / 2;
      (void)sysfs_streq(in.substr(0, half), in.substr(half));
      auto t = strim(in);
      check(t.size() <= in.size());
      auto s = skip_spaces(in);
      check(s.size() <= in.size());
      auto n = strip_newline(in);
      check(n.size() <= in.size());
      break;
    }
    default: {
      // bitmap_parselist with nbits from the selector (0..4095).
      const unsigned nbits = ((sel & 15) - 7) * 512 + (sel >> 4) * 7;
      auto bits = bitmap_parselist(in, nbits);
      if (bits) {
        std::vector<bool> mask(nbits, false);
        for (unsigned b : *bits) {
          check(b < nbits);
          mask[b] = true;
        }
        const std::string list = bitmap_print_list(mask);
        const std::string hex = bitmap_print_mask(mask, nbits);
        (void)hex;
        auto again = bitmap_parselist(list, nbits);
        check(static_cast<bool>(again));
        check(std::set<unsigned>(again->begin(), again->end()) ==
              std::set<unsigned>(bits->begin(), bits->end()));
      }
      break;
    }
  }
  return 0;
}
