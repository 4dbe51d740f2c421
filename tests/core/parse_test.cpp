// Tests for core/parse: the kernel's kstrto*, simple_strto*, memparse,
// kstrtobool, sysfs_streq, strim and the bitmap list/mask helpers.
// Expected values follow lib/kstrtox.c, lib/vsprintf.c, lib/cmdline.c,
// lib/string.c and lib/bitmap-str.c (see core/parse.hpp).

#include "core/parse.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using vsysfs::core::Errno;
using vsysfs::core::Lenient;
using vsysfs::core::LenientSigned;
using vsysfs::core::Result;
namespace core = vsysfs::core;

namespace {

// A Result as one comparable string: the value, or the errno's name.
template <typename T>
std::string show(const Result<T>& r) {
  if (!r) return std::string(r.error().name());
  if constexpr (std::is_same_v<T, bool>) {
    return *r ? "true" : "false";
  } else {
    return fmt::format("{}", +*r);  // + : int8_t/uint8_t as numbers
  }
}

std::string show(const Result<std::vector<unsigned>>& r) {
  if (!r) return std::string(r.error().name());
  std::string out;
  for (unsigned b : *r) out += (out.empty() ? "" : ",") + std::to_string(b);
  return out;
}

std::string show(const Lenient& l) { return fmt::format("{}/{}", l.value, l.consumed); }
std::string show(const LenientSigned& l) { return fmt::format("{}/{}", l.value, l.consumed); }

// memparse value and consumed count as "value/consumed".
std::string mp(std::string_view s) {
  std::size_t consumed = 12345;
  const unsigned long long v = core::memparse(s, &consumed);
  return fmt::format("{}/{}", v, consumed);
}

std::vector<bool> bits_from_string(std::string_view s) {  // "1100" -> bit0=1 bit1=1
  std::vector<bool> v;
  for (char c : s) v.push_back(c == '1');
  return v;
}

std::vector<bool> ones(std::size_t n) { return std::vector<bool>(n, true); }

std::vector<bool> only(std::size_t n, std::size_t bit) {
  std::vector<bool> v(n);
  v[bit] = true;
  return v;
}

}  // namespace

TEST_SUITE("parse") {

TEST_CASE("kstrtoull") {
  SUBCASE("plain values") {
    CHECK(show(core::kstrtoull("0", 10)) == "0");
    CHECK(show(core::kstrtoull("12", 10)) == "12");
    CHECK(show(core::kstrtoull("12\n", 10)) == "12");
    CHECK(show(core::kstrtoull("+5", 10)) == "5");
    CHECK(show(core::kstrtoull("+5\n", 0)) == "5");
    CHECK(show(core::kstrtoull("101", 2)) == "5");
    CHECK(show(core::kstrtoull("777", 8)) == "511");
  }
  SUBCASE("base 0 autodetection") {
    CHECK(show(core::kstrtoull("0777", 0)) == "511");
    CHECK(show(core::kstrtoull("0", 0)) == "0");
    CHECK(show(core::kstrtoull("00", 0)) == "0");
    CHECK(show(core::kstrtoull("0x1f", 0)) == "31");
    CHECK(show(core::kstrtoull("0X1F", 0)) == "31");
    CHECK(show(core::kstrtoull("+0x10", 0)) == "16");
    CHECK(show(core::kstrtoull("08", 0)) == "EINVAL");  // octal, 8 is junk
    CHECK(show(core::kstrtoull("0x", 0)) == "EINVAL");  // octal 0, then 'x'
    CHECK(show(core::kstrtoull("0xg", 0)) == "EINVAL");
    CHECK(show(core::kstrtoull("ff", 0)) == "EINVAL");  // decimal
    CHECK(show(core::kstrtoull("0b101", 0)) == "EINVAL");
  }
  SUBCASE("base 16 prefix") {
    CHECK(show(core::kstrtoull("1f", 16)) == "31");
    CHECK(show(core::kstrtoull("0x1f", 16)) == "31");
    CHECK(show(core::kstrtoull("0X1F\n", 16)) == "31");
    CHECK(show(core::kstrtoull("0x", 16)) == "EINVAL");
    CHECK(show(core::kstrtoull("0x0x1", 16)) == "EINVAL");
    CHECK(show(core::kstrtoull("0x1f", 8)) == "EINVAL");  // prefix only in base 0/16
    CHECK(show(core::kstrtoull("0x2", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("1e3", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("1e3", 16)) == "483");
  }
  SUBCASE("junk, signs, whitespace and newlines") {
    CHECK(show(core::kstrtoull("", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("\n", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("+", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("++5", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("-1", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("-0", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull(" 5", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("5 ", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("\t5", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("5\n\n", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("5\r\n", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("\n5", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("5x", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("1.5", 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("abc", 10)) == "EINVAL");
  }
  SUBCASE("NUL ends the string, as in the kernel's C string") {
    CHECK(show(core::kstrtoull("12\0abc"sv, 10)) == "12");
    CHECK(show(core::kstrtoull("12\n\0"sv, 10)) == "12");
    CHECK(show(core::kstrtoull("12\0\n"sv, 10)) == "12");
    CHECK(show(core::kstrtoull("12\0\n\n"sv, 10)) == "12");
    CHECK(show(core::kstrtoull("\0" "12"sv, 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("+\0" "12"sv, 10)) == "EINVAL");
    CHECK(show(core::kstrtoull("0\0x1"sv, 0)) == "0");  // fixup_radix sees NUL at s[1]
  }
  SUBCASE("range limits") {
    CHECK(show(core::kstrtoull("18446744073709551615", 10)) == "18446744073709551615");
    CHECK(show(core::kstrtoull("18446744073709551615\n", 0)) == "18446744073709551615");
    CHECK(show(core::kstrtoull("18446744073709551616", 10)) == "ERANGE");
    CHECK(show(core::kstrtoull("18446744073709551617", 10)) == "ERANGE");
    CHECK(show(core::kstrtoull("1000000000000000000000000000000", 10)) == "ERANGE");
    CHECK(show(core::kstrtoull("0xffffffffffffffff", 0)) == "18446744073709551615");
    CHECK(show(core::kstrtoull("0x10000000000000000", 0)) == "ERANGE");
    CHECK(show(core::kstrtoull("01777777777777777777777", 0)) == "18446744073709551615");
    CHECK(show(core::kstrtoull("02000000000000000000000", 0)) == "ERANGE");
    CHECK(show(core::kstrtoull(std::string(64, '1'), 2)) == "18446744073709551615");
    CHECK(show(core::kstrtoull(std::string(65, '1'), 2)) == "ERANGE");
    // Overflow is reported before trailing junk.
    CHECK(show(core::kstrtoull("99999999999999999999x", 10)) == "ERANGE");
  }
  SUBCASE("long inputs: linear, no crash") {
    CHECK(show(core::kstrtoull(std::string(4095, '0').append("1"), 10)) == "1");
    CHECK(show(core::kstrtoull(std::string(4095, '0').append("1"), 0)) == "1");
    CHECK(show(core::kstrtoull("1" + std::string(4095, '0'), 10)) == "ERANGE");
    CHECK(show(core::kstrtoull(std::string(4096, '9'), 10)) == "ERANGE");
    CHECK(show(core::kstrtoull(std::string(4096, 'f'), 16)) == "ERANGE");
    CHECK(show(core::kstrtoull(std::string(4096, 'x'), 10)) == "EINVAL");
    CHECK(show(core::kstrtoull(std::string(4096, '\n'), 10)) == "EINVAL");
    CHECK(show(core::kstrtoull(std::string(1 << 20, '0').append("\n"), 10)) == "0");
  }
}

TEST_CASE("kstrtoul") {
  CHECK(show(core::kstrtoul("4096\n", 0)) == "4096");
  CHECK(show(core::kstrtoul("0x1000", 0)) == "4096");
  CHECK(show(core::kstrtoul("18446744073709551615", 10)) == "18446744073709551615");
  CHECK(show(core::kstrtoul("18446744073709551616", 10)) == "ERANGE");
  CHECK(show(core::kstrtoul("-1", 10)) == "EINVAL");
  CHECK(show(core::kstrtoul("", 10)) == "EINVAL");
}

TEST_CASE("kstrtouint") {
  CHECK(show(core::kstrtouint("4294967295", 10)) == "4294967295");
  CHECK(show(core::kstrtouint("0xffffffff\n", 0)) == "4294967295");
  CHECK(show(core::kstrtouint("4294967296", 10)) == "ERANGE");
  CHECK(show(core::kstrtouint("18446744073709551616", 10)) == "ERANGE");
  CHECK(show(core::kstrtouint("-1", 10)) == "EINVAL");
  CHECK(show(core::kstrtouint("+7", 10)) == "7");
  CHECK(show(core::kstrtouint("7 ", 10)) == "EINVAL");
}

TEST_CASE("kstrtou16 and kstrtou8") {
  CHECK(show(core::kstrtou16("65535", 10)) == "65535");
  CHECK(show(core::kstrtou16("65536", 10)) == "ERANGE");
  CHECK(show(core::kstrtou16("0xffff", 16)) == "65535");
  CHECK(show(core::kstrtou8("255\n", 10)) == "255");
  CHECK(show(core::kstrtou8("256", 10)) == "ERANGE");
  CHECK(show(core::kstrtou8("-1", 10)) == "EINVAL");
  CHECK(show(core::kstrtou8("0377", 0)) == "255");
}

TEST_CASE("kstrtoll") {
  CHECK(show(core::kstrtoll("-1", 10)) == "-1");
  CHECK(show(core::kstrtoll("-1\n", 10)) == "-1");
  CHECK(show(core::kstrtoll("+1", 10)) == "1");
  CHECK(show(core::kstrtoll("-0", 10)) == "0");
  CHECK(show(core::kstrtoll("-0x10", 0)) == "-16");
  CHECK(show(core::kstrtoll("-010", 0)) == "-8");
  CHECK(show(core::kstrtoll("9223372036854775807", 10)) == "9223372036854775807");
  CHECK(show(core::kstrtoll("9223372036854775808", 10)) == "ERANGE");
  CHECK(show(core::kstrtoll("-9223372036854775808", 10)) == "-9223372036854775808");
  CHECK(show(core::kstrtoll("-9223372036854775809", 10)) == "ERANGE");
  CHECK(show(core::kstrtoll("-18446744073709551615", 10)) == "ERANGE");
  CHECK(show(core::kstrtoll("-18446744073709551616", 10)) == "ERANGE");
  CHECK(show(core::kstrtoll("18446744073709551615", 10)) == "ERANGE");
  CHECK(show(core::kstrtoll("-", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll("--1", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll("-+1", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll("+-1", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll("- 1", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll(" -1", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll("-1\n\n", 10)) == "EINVAL");
  CHECK(show(core::kstrtoll("-12\0" "3"sv, 10)) == "-12");
}

TEST_CASE("kstrtol") {
  CHECK(show(core::kstrtol("-42", 10)) == "-42");
  CHECK(show(core::kstrtol("9223372036854775807\n", 0)) == "9223372036854775807");
  CHECK(show(core::kstrtol("9223372036854775808", 0)) == "ERANGE");
  CHECK(show(core::kstrtol("x", 0)) == "EINVAL");
}

TEST_CASE("kstrtoint") {
  CHECK(show(core::kstrtoint("2147483647", 10)) == "2147483647");
  CHECK(show(core::kstrtoint("2147483648", 10)) == "ERANGE");
  CHECK(show(core::kstrtoint("-2147483648", 10)) == "-2147483648");
  CHECK(show(core::kstrtoint("-2147483649", 10)) == "ERANGE");
  CHECK(show(core::kstrtoint("0x7fffffff", 0)) == "2147483647");
  CHECK(show(core::kstrtoint("0xffffffff", 0)) == "ERANGE");
  CHECK(show(core::kstrtoint("", 0)) == "EINVAL");
}

TEST_CASE("kstrtos16 and kstrtos8") {
  CHECK(show(core::kstrtos16("-32768", 10)) == "-32768");
  CHECK(show(core::kstrtos16("32767", 10)) == "32767");
  CHECK(show(core::kstrtos16("32768", 10)) == "ERANGE");
  CHECK(show(core::kstrtos8("-128", 10)) == "-128");
  CHECK(show(core::kstrtos8("127\n", 10)) == "127");
  CHECK(show(core::kstrtos8("128", 10)) == "ERANGE");
  CHECK(show(core::kstrtos8("-129", 10)) == "ERANGE");
}

TEST_CASE("kstrtobool") {
  SUBCASE("true") {
    for (std::string_view s : {"y", "Y", "t", "T", "1", "yes", "Yes", "true", "True", "1\n",
                               "y\n", "yellow", "10", "on", "ON", "On", "oN", "on\n", "onward"}) {
      CAPTURE(s);
      CHECK(show(core::kstrtobool(s)) == "true");
    }
  }
  SUBCASE("false") {
    for (std::string_view s : {"n", "N", "f", "F", "0", "no", "false", "False", "0\n", "n\n",
                               "0x", "01", "off", "OFF", "Off", "of", "oF", "off\n", "offensive"}) {
      CAPTURE(s);
      CHECK(show(core::kstrtobool(s)) == "false");
    }
  }
  SUBCASE("invalid") {
    CHECK(show(core::kstrtobool("")) == "EINVAL");
    CHECK(show(core::kstrtobool("\n")) == "EINVAL");
    CHECK(show(core::kstrtobool("o")) == "EINVAL");
    CHECK(show(core::kstrtobool("o\n")) == "EINVAL");
    CHECK(show(core::kstrtobool("ox")) == "EINVAL");
    CHECK(show(core::kstrtobool(" y")) == "EINVAL");
    CHECK(show(core::kstrtobool("2")) == "EINVAL");
    CHECK(show(core::kstrtobool("-1")) == "EINVAL");
    CHECK(show(core::kstrtobool("enable")) == "EINVAL");   // no 'e' in the modern table
    CHECK(show(core::kstrtobool("disable")) == "EINVAL");  // nor 'd'
    CHECK(show(core::kstrtobool("\0y"sv)) == "EINVAL");
    CHECK(show(core::kstrtobool("o\0n"sv)) == "EINVAL");
  }
}

TEST_CASE("simple_strtoull") {
  SUBCASE("stops at the first non-digit") {
    CHECK(show(core::simple_strtoull("12", 10)) == "12/2");
    CHECK(show(core::simple_strtoull("12abc", 10)) == "12/2");
    CHECK(show(core::simple_strtoull("12\n", 10)) == "12/2");
    CHECK(show(core::simple_strtoull("12 34", 10)) == "12/2");
    CHECK(show(core::simple_strtoull("12\0" "34"sv, 10)) == "12/2");
    CHECK(show(core::simple_strtoull("1.5", 10)) == "1/1");
  }
  SUBCASE("junk gives 0 with nothing consumed") {
    CHECK(show(core::simple_strtoull("", 10)) == "0/0");
    CHECK(show(core::simple_strtoull("abc", 10)) == "0/0");
    CHECK(show(core::simple_strtoull("\n", 10)) == "0/0");
    CHECK(show(core::simple_strtoull(" 5", 10)) == "0/0");   // no whitespace skipping
    CHECK(show(core::simple_strtoull("\t5", 0)) == "0/0");
    CHECK(show(core::simple_strtoull("+5", 10)) == "0/0");   // no '+' either
    CHECK(show(core::simple_strtoull("-5", 10)) == "0/0");
  }
  SUBCASE("bases and prefixes") {
    CHECK(show(core::simple_strtoull("0x2", 10)) == "0/1");
    CHECK(show(core::simple_strtoull("08", 0)) == "0/1");
    CHECK(show(core::simple_strtoull("0777", 0)) == "511/4");
    CHECK(show(core::simple_strtoull("0x1f", 0)) == "31/4");
    CHECK(show(core::simple_strtoull("0X1Fz", 0)) == "31/4");
    CHECK(show(core::simple_strtoull("0x1f", 16)) == "31/4");
    CHECK(show(core::simple_strtoull("1f", 16)) == "31/2");
    CHECK(show(core::simple_strtoull("0x", 0)) == "0/1");
    CHECK(show(core::simple_strtoull("0xg", 0)) == "0/1");
    CHECK(show(core::simple_strtoull("0x", 16)) == "0/2");   // kernel quirk: prefix eaten
    CHECK(show(core::simple_strtoull("0xg", 16)) == "0/2");
    CHECK(show(core::simple_strtoull("ff", 0)) == "0/0");
    CHECK(show(core::simple_strtoull("1012", 2)) == "5/3");
  }
  SUBCASE("overflow wraps silently, every digit consumed") {
    CHECK(show(core::simple_strtoull("18446744073709551615", 10)) == "18446744073709551615/20");
    CHECK(show(core::simple_strtoull("18446744073709551616", 10)) == "0/20");
    CHECK(show(core::simple_strtoull("18446744073709551617", 10)) == "1/20");
    CHECK(show(core::simple_strtoull("1000000000000000000000000000000", 10)) ==
          "5076944270305263616/31");
    CHECK(show(core::simple_strtoull("0x10000000000000001", 0)) == "1/19");
  }
  SUBCASE("long inputs") {
    CHECK(show(core::simple_strtoull(std::string(4096, '9'), 10)) == "18446744073709551615/4096");
    CHECK(show(core::simple_strtoull("1" + std::string(4095, '0'), 16)) == "0/4096");
    CHECK(show(core::simple_strtoull(std::string(4095, '0').append("7x"), 0)) == "7/4096");
    CHECK(show(core::simple_strtoull(std::string(4096, 'z'), 10)) == "0/0");
    CHECK(show(core::simple_strtoull(std::string(1 << 20, '1'), 2)) ==
          fmt::format("18446744073709551615/{}", 1 << 20));
  }
}

TEST_CASE("simple_strtoul") {
  CHECK(show(core::simple_strtoul("4096", 0)) == "4096/4");
  CHECK(show(core::simple_strtoul("0x1000\n", 0)) == "4096/6");
  CHECK(show(core::simple_strtoul("junk", 0)) == "0/0");
  CHECK(show(core::simple_strtoul("18446744073709551616", 10)) == "0/20");
}

TEST_CASE("simple_strtol") {
  CHECK(show(core::simple_strtol("5", 10)) == "5/1");
  CHECK(show(core::simple_strtol("-5", 10)) == "-5/2");
  CHECK(show(core::simple_strtol("-5x", 10)) == "-5/2");
  CHECK(show(core::simple_strtol("-0x10", 0)) == "-16/5");
  CHECK(show(core::simple_strtol("-", 10)) == "0/1");     // kernel quirk: '-' consumed
  CHECK(show(core::simple_strtol("-x", 10)) == "0/1");
  CHECK(show(core::simple_strtol("--5", 10)) == "0/1");
  CHECK(show(core::simple_strtol("+5", 10)) == "0/0");
  CHECK(show(core::simple_strtol(" -5", 10)) == "0/0");
  CHECK(show(core::simple_strtol("", 10)) == "0/0");
  CHECK(show(core::simple_strtol("9223372036854775808", 10)) == "-9223372036854775808/19");
  CHECK(show(core::simple_strtol("-18446744073709551615", 10)) == "1/21");
}

TEST_CASE("simple_strtoll") {
  CHECK(show(core::simple_strtoll("-9223372036854775808", 10)) == "-9223372036854775808/20");
  CHECK(show(core::simple_strtoll("-", 10)) == "0/1");
  CHECK(show(core::simple_strtoll("077", 0)) == "63/3");
  CHECK(show(core::simple_strtoll("x", 0)) == "0/0");
}

TEST_CASE("memparse") {
  SUBCASE("suffixes") {
    CHECK(mp("1G") == "1073741824/2");
    CHECK(mp("512k") == "524288/4");
    CHECK(mp("512K") == "524288/4");
    CHECK(mp("0x10M") == "16777216/5");
    CHECK(mp("3m") == "3145728/2");
    CHECK(mp("2g") == "2147483648/2");
    CHECK(mp("1T") == "1099511627776/2");
    CHECK(mp("1p") == "1125899906842624/2");
    CHECK(mp("1E") == "1152921504606846976/2");
    CHECK(mp("2e") == "2305843009213693952/2");
    CHECK(mp("16E") == "0/3");  // shifted out of 64 bits, silently
    CHECK(mp("010k") == "8192/4");  // base 0: octal
  }
  SUBCASE("no suffix, junk and quirks") {
    CHECK(mp("12abc") == "12/2");
    CHECK(mp("4096") == "4096/4");
    CHECK(mp("4096\n") == "4096/4");
    CHECK(mp("1Kb") == "1024/2");
    CHECK(mp("1G\n") == "1073741824/2");
    CHECK(mp("1 G") == "1/1");
    CHECK(mp("") == "0/0");
    CHECK(mp("abc") == "0/0");
    CHECK(mp("K") == "0/1");       // kernel quirk: bare suffix consumed
    CHECK(mp("0x1E") == "30/4");   // kernel quirk: E is a hex digit here
    CHECK(mp("0x1e") == "30/4");
    CHECK(mp("1\0G"sv) == "1/1");
  }
  SUBCASE("consumed is optional") {
    CHECK(core::memparse("2M") == 2097152);
    CHECK(core::memparse("2M", nullptr) == 2097152);
  }
}

TEST_CASE("sysfs_streq") {
  CHECK(core::sysfs_streq("a", "a"));
  CHECK(core::sysfs_streq("a\n", "a"));
  CHECK(core::sysfs_streq("a", "a\n"));
  CHECK(core::sysfs_streq("a\n", "a\n"));
  CHECK(core::sysfs_streq("", ""));
  CHECK(core::sysfs_streq("\n", ""));
  CHECK(core::sysfs_streq("", "\n"));
  CHECK(core::sysfs_streq("a\n\n", "a\n"));  // kernel quirk: one '\n' on either side
  CHECK(core::sysfs_streq("a\n", "a\n\n"));
  CHECK_FALSE(core::sysfs_streq("a", "a\n\n"));
  CHECK_FALSE(core::sysfs_streq("a\n\n", "a"));
  CHECK_FALSE(core::sysfs_streq("a", "b"));
  CHECK_FALSE(core::sysfs_streq("ab", "a"));
  CHECK_FALSE(core::sysfs_streq("a", "ab"));
  CHECK_FALSE(core::sysfs_streq("a ", "a"));
  CHECK_FALSE(core::sysfs_streq("a\r\n", "a"));
  CHECK_FALSE(core::sysfs_streq("a\nb", "a"));
  CHECK_FALSE(core::sysfs_streq("\n", "\n\n\n"));
  CHECK(core::sysfs_streq("a\0junk"sv, "a"));
  CHECK(core::sysfs_streq("a\n\0junk"sv, "a\0other"sv));
}

TEST_CASE("strim") {
  CHECK(core::strim("  abc  ") == "abc");
  CHECK(core::strim("\t\n abc \n") == "abc");
  CHECK(core::strim("\v\fabc\r") == "abc");
  CHECK(core::strim("a b") == "a b");
  CHECK(core::strim("abc") == "abc");
  CHECK(core::strim("") == "");
  CHECK(core::strim(" \n\t ") == "");
  CHECK(core::strim("\xa0" "abc\xa0") == "abc");  // kernel quirk: 0xA0 is space
  CHECK(core::strim(" abc\0  x"sv) == "abc");
  const std::string buf = "  xyz\n";
  CHECK(core::strim(buf).data() == buf.data() + 2);  // a sub-view, not a copy
}

TEST_CASE("skip_spaces") {
  CHECK(core::skip_spaces("  abc ") == "abc ");
  CHECK(core::skip_spaces("\n\tx") == "x");
  CHECK(core::skip_spaces("") == "");
  CHECK(core::skip_spaces("   ") == "");
}

TEST_CASE("strip_newline") {
  CHECK(core::strip_newline("abc\n") == "abc");
  CHECK(core::strip_newline("abc\n\n") == "abc\n");
  CHECK(core::strip_newline("abc") == "abc");
  CHECK(core::strip_newline("abc ") == "abc ");
  CHECK(core::strip_newline("\n") == "");
  CHECK(core::strip_newline("") == "");
}

TEST_CASE("kernel_isspace") {
  for (char c : {' ', '\t', '\n', '\v', '\f', '\r', '\xa0'}) {
    CAPTURE(static_cast<int>(c));
    CHECK(core::kernel_isspace(c));
  }
  for (char c : {'\0', 'a', ',', '\x1c', '\x85', '\xff'}) {
    CAPTURE(static_cast<int>(c));
    CHECK_FALSE(core::kernel_isspace(c));
  }
}

TEST_CASE("bitmap_parselist") {
  SUBCASE("lists and ranges") {
    CHECK(show(core::bitmap_parselist("0-3,8,10-11", 16)) == "0,1,2,3,8,10,11");
    CHECK(show(core::bitmap_parselist("0-3,8,10-11\n", 16)) == "0,1,2,3,8,10,11");
    CHECK(show(core::bitmap_parselist("5", 8)) == "5");
    CHECK(show(core::bitmap_parselist("3,1,1", 8)) == "1,3");
    CHECK(show(core::bitmap_parselist("0-1,1-2", 8)) == "0,1,2");
    CHECK(show(core::bitmap_parselist("7-7", 8)) == "7");
  }
  SUBCASE("strides") {
    CHECK(show(core::bitmap_parselist("0-15:2/4", 16)) == "0,1,4,5,8,9,12,13");
    CHECK(show(core::bitmap_parselist("0-1023:2/256", 1024)) == "0,1,256,257,512,513,768,769");
    CHECK(show(core::bitmap_parselist("1-9:3/4", 16)) == "1,2,3,5,6,7,9");
    CHECK(show(core::bitmap_parselist("0-3:0/4", 8)) == "");  // zero used bits is valid
    CHECK(show(core::bitmap_parselist("0-3:4/4", 8)) == "0,1,2,3");
  }
  SUBCASE("N and all") {
    CHECK(show(core::bitmap_parselist("N", 8)) == "7");
    CHECK(show(core::bitmap_parselist("0-N", 4)) == "0,1,2,3");
    CHECK(show(core::bitmap_parselist("all", 4)) == "0,1,2,3");
    CHECK(show(core::bitmap_parselist("ALL\n", 4)) == "0,1,2,3");
    CHECK(show(core::bitmap_parselist("all:1/2", 8)) == "0,2,4,6");
    CHECK(show(core::bitmap_parselist("alla", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("al", 8)) == "EINVAL");
  }
  SUBCASE("separators") {
    CHECK(show(core::bitmap_parselist("", 8)) == "");
    CHECK(show(core::bitmap_parselist("\n", 8)) == "");
    CHECK(show(core::bitmap_parselist(",,,", 8)) == "");
    CHECK(show(core::bitmap_parselist("  ", 8)) == "");
    CHECK(show(core::bitmap_parselist("1 2", 8)) == "1,2");
    CHECK(show(core::bitmap_parselist(" 1 , 2 ", 8)) == "1,2");
    CHECK(show(core::bitmap_parselist("1\t2", 8)) == "1,2");
    CHECK(show(core::bitmap_parselist(",1", 8)) == "1");
    CHECK(show(core::bitmap_parselist("1,,2", 8)) == "1,2");
  }
  SUBCASE("where parsing ends") {
    CHECK(show(core::bitmap_parselist("0-3\n\n", 8)) == "0,1,2,3");
    CHECK(show(core::bitmap_parselist("0-3\nxyz", 8)) == "0,1,2,3");  // kernel quirk
    CHECK(show(core::bitmap_parselist("1\n2", 8)) == "1");
    CHECK(show(core::bitmap_parselist("1,\n2", 8)) == "1,2");  // kernel quirk: '\n' skipped
    CHECK(show(core::bitmap_parselist("0-7:1/2\n5", 8)) == "0,2,4,5,6");  // kernel quirk
    CHECK(show(core::bitmap_parselist("0-3\0xyz"sv, 8)) == "0,1,2,3");
    CHECK(show(core::bitmap_parselist("0-7:1/2N", 16)) == "0,2,4,6,15");  // kernel quirk
  }
  SUBCASE("EINVAL") {
    CHECK(show(core::bitmap_parselist("a", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("-1", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("+1", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("0x1", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("1-", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("1-2-3", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("1:1/2", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("3-1", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("5-3", 4)) == "EINVAL");  // checked before ERANGE
    CHECK(show(core::bitmap_parselist("0-3:", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("0-3:1", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("0-3:1/", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("0-3:5/4", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("0-3:1/0", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("0-7:1/2x", 16)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("1 x", 8)) == "EINVAL");
    CHECK(show(core::bitmap_parselist("4294967295", 8)) == "EINVAL");  // kernel quirk: wraps
  }
  SUBCASE("ERANGE and EOVERFLOW") {
    CHECK(show(core::bitmap_parselist("8", 8)) == "ERANGE");
    CHECK(show(core::bitmap_parselist("0-8", 8)) == "ERANGE");
    CHECK(show(core::bitmap_parselist("1,9", 8)) == "ERANGE");
    CHECK(show(core::bitmap_parselist("4294967294", 8)) == "ERANGE");
    CHECK(show(core::bitmap_parselist("0", 0)) == "ERANGE");
    CHECK(show(core::bitmap_parselist("", 0)) == "");
    CHECK(show(core::bitmap_parselist("4294967296", 8)) == "EOVERFLOW");
    CHECK(show(core::bitmap_parselist("99999999999999999999999", 8)) == "EOVERFLOW");
    CHECK(show(core::bitmap_parselist("0-3:4294967296/1", 8)) == "EOVERFLOW");
  }
  SUBCASE("long input") {
    std::string s;
    while (s.size() < 4096) s += "0-4095,";
    CHECK(core::bitmap_parselist(s, 4096)->size() == 4096);
    CHECK(show(core::bitmap_parselist(std::string(4095, '0').append("3"), 8)) == "3");
  }
}

TEST_CASE("bitmap_print_list") {
  CHECK(core::bitmap_print_list({}) == "");
  CHECK(core::bitmap_print_list(bits_from_string("0000")) == "");
  CHECK(core::bitmap_print_list(bits_from_string("111100001011")) == "0-3,8,10-11");
  CHECK(core::bitmap_print_list(bits_from_string("11")) == "0-1");
  CHECK(core::bitmap_print_list(bits_from_string("101")) == "0,2");
  CHECK(core::bitmap_print_list(bits_from_string("0001")) == "3");
  CHECK(core::bitmap_print_list(ones(64)) == "0-63");
  CHECK(core::bitmap_print_list(only(4096, 4095)) == "4095");
  SUBCASE("round trip through bitmap_parselist") {
    for (std::string_view s : {"0-3,8,10-11", "0", "0-1", "1,3,5-7", "0-127"}) {
      CAPTURE(s);
      const auto parsed = core::bitmap_parselist(s, 128);
      REQUIRE(parsed);
      std::vector<bool> bits(128);
      for (unsigned b : *parsed) bits[b] = true;
      CHECK(core::bitmap_print_list(bits) == s);
    }
  }
}

TEST_CASE("bitmap_print_mask") {
  SUBCASE("widths, all CPUs") {
    CHECK(core::bitmap_print_mask(ones(4), 4) == "f");
    CHECK(core::bitmap_print_mask(ones(8), 8) == "ff");
    CHECK(core::bitmap_print_mask(ones(12), 12) == "fff");
    CHECK(core::bitmap_print_mask(ones(32), 32) == "ffffffff");
    CHECK(core::bitmap_print_mask(ones(40), 40) == "ff,ffffffff");
    CHECK(core::bitmap_print_mask(ones(64), 64) == "ffffffff,ffffffff");
    CHECK(core::bitmap_print_mask(ones(96), 96) == "ffffffff,ffffffff,ffffffff");
    CHECK(core::bitmap_print_mask(ones(1), 1) == "1");
    CHECK(core::bitmap_print_mask(ones(33), 33) == "1,ffffffff");
  }
  SUBCASE("single CPUs: zero padding") {
    CHECK(core::bitmap_print_mask(only(40, 0), 40) == "00,00000001");
    CHECK(core::bitmap_print_mask(only(4, 0), 4) == "1");
    CHECK(core::bitmap_print_mask(only(64, 63), 64) == "80000000,00000000");
    CHECK(core::bitmap_print_mask(only(96, 95), 96) == "80000000,00000000,00000000");
    CHECK(core::bitmap_print_mask(only(96, 32), 96) == "00000000,00000001,00000000");
    CHECK(core::bitmap_print_mask(only(33, 32), 33) == "1,00000000");
  }
  SUBCASE("vector size differs from nbits") {
    CHECK(core::bitmap_print_mask({}, 0) == "");
    CHECK(core::bitmap_print_mask(ones(4), 0) == "");
    CHECK(core::bitmap_print_mask({}, 8) == "00");
    CHECK(core::bitmap_print_mask(ones(8), 4) == "f");
    CHECK(core::bitmap_print_mask(only(8, 4), 4) == "0");
    CHECK(core::bitmap_print_mask(ones(4), 40) == "00,0000000f");
  }
}

}  // TEST_SUITE("parse")
