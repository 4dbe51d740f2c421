// core/snapshot_file: the snapshot file format (docs/snapshot.md
// "Snapshot files"): round trip, and every damage refused with EINVAL and
// a reason: each truncation, each flipped byte, a wrong version, flags,
// trailing bytes, entries out of order.
#include "core/snapshot_file.hpp"

#include <cerrno>
#include <string>

#include <doctest/doctest.h>

#include "core/state_journal.hpp"

namespace core = vsysfs::core;

namespace {

core::SnapshotImage sample() {
  core::SnapshotImage img;
  img.machine_name = "lab";
  img.machine_id = "0123456789abcdef";
  img.name = "base";
  img.now_ns = 1234567890123ULL;
  img.states = {{"clocksource", "version=1\ncurrent=tsc\n"}, {"numa", "version=3\nx=\\n\n"}};
  img.attrs = {{"devices", {040755, 0, 0}}, {"devices/a/value", {0100644, 1000, 100}}};
  img.values = {{"devices/a/value", "12\n"}, {"devices/b/bin\xff", std::string("\0\1", 2)}};
  return img;
}

void put(std::string& out, std::size_t at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A file whose header and checksum are right around `body`.
std::string with_body(const std::string& body) {
  std::string f(core::kSnapshotMagic);
  f.resize(core::kSnapshotHeaderBytes);
  put(f, 16, core::kSnapshotVersion, 4);
  put(f, 20, 0, 4);
  put(f, 24, body.size(), 8);
  f += body;
  const std::uint32_t c = core::crc32(f);
  f.resize(f.size() + 4);
  put(f, f.size() - 4, c, 4);
  return f;
}

// The CRC over everything but itself, recomputed after an edit.
void fix_crc(std::string& f) {
  put(f, f.size() - 4, core::crc32(std::string_view(f).substr(0, f.size() - 4)), 4);
}

std::string refused(std::string_view bytes) {
  std::string problem;
  auto r = core::decode_snapshot(bytes, &problem);
  if (r) return "accepted";
  if (r.error() != core::Errno{EINVAL}) return "errno " + std::string(r.error().name());
  return problem.empty() ? "no reason" : problem;
}

}  // namespace

TEST_CASE("snapshot file: round trip, and an empty snapshot too") {
  const auto img = sample();
  const std::string f = core::encode_snapshot(img);
  CHECK(f.substr(0, 16) == core::kSnapshotMagic);
  auto back = core::decode_snapshot(f);
  REQUIRE(back);
  CHECK(*back == img);
  core::SnapshotImage empty;
  auto e = core::decode_snapshot(core::encode_snapshot(empty));
  REQUIRE(e);
  CHECK(*e == empty);
}

TEST_CASE("snapshot file: every truncation is refused with EINVAL") {
  const std::string f = core::encode_snapshot(sample());
  for (std::size_t n = 0; n < f.size(); ++n) {
    CAPTURE(n);
    CHECK(refused(std::string_view(f).substr(0, n)) != "accepted");
    CHECK(refused(std::string_view(f).substr(0, n)) != "no reason");
  }
}

TEST_CASE("snapshot file: every flipped byte is refused (checksum, or the header's own check)") {
  const std::string f = core::encode_snapshot(sample());
  for (std::size_t i = 0; i < f.size(); ++i) {
    for (unsigned char bit : {0x01, 0x80}) {
      std::string g = f;
      g[i] = static_cast<char>(g[i] ^ bit);
      CAPTURE(i);
      CHECK(refused(g) != "accepted");
    }
  }
}

TEST_CASE(
    "snapshot file: version, flags, trailing bytes and a bad checksum, each with its reason") {
  std::string f = core::encode_snapshot(sample());
  {
    std::string g = f;
    put(g, 16, 2, 4);
    fix_crc(g);
    CHECK(refused(g).find("format version 2") != std::string::npos);
  }
  {
    std::string g = f;
    put(g, 20, 1, 4);
    fix_crc(g);
    CHECK(refused(g) == "unknown flags");
  }
  CHECK(refused(f + "x").find("after the checksum") != std::string::npos);
  {
    std::string g = f;
    g[40] = static_cast<char>(g[40] ^ 1);
    CHECK(refused(g) == "checksum mismatch");
  }
  CHECK(refused(std::string("VSYSFS-STATE") + std::string(40, '\0')) ==
        "not a vsysfs snapshot file (bad magic)");
}

TEST_CASE("snapshot file: a body that decodes only in part, or out of order, is refused") {
  // Valid header and checksum around bodies the encoder never writes.
  auto str = [](std::string s) {
    std::string o(4, '\0');
    put(o, 0, s.size(), 4);
    return o + s;
  };
  auto u32 = [](std::uint32_t v) {
    std::string o(4, '\0');
    put(o, 0, v, 4);
    return o;
  };
  const std::string ident = str("m") + str("id") + str("n") + std::string(8, '\0');
  CHECK(refused(with_body(ident + u32(0) + u32(0) + u32(0))) == "accepted");
  CHECK(refused(with_body(ident + u32(0) + u32(0) + u32(0) + "x")) ==
        "1 bytes after the last entry");
  CHECK(refused(with_body(ident + u32(0) + u32(0))) == "bad value count");
  CHECK(refused(with_body(ident + u32(1000) + u32(0) + u32(0))) == "bad state record count");
  CHECK(refused(with_body(ident + u32(2) + str("b") + str("") + str("a") + str("") + u32(0) +
                          u32(0))) == "state records out of order");
  CHECK(refused(with_body(ident + u32(2) + str("a") + str("") + str("a") + str("") + u32(0) +
                          u32(0))) == "state records out of order");
  CHECK(refused(with_body(ident + u32(0) + u32(1) + str("") + u32(0) + u32(0) + u32(0) + u32(0))) ==
        "mode entries out of order");
  CHECK(refused(with_body(ident + u32(0) + u32(0) + u32(2) + str("z") + str("") + str("y") +
                          str(""))) == "value entries out of order");
  CHECK(refused(with_body(str("m"))) == "truncated identity");
}

TEST_CASE("snapshot file: several images in a row (a state file's base)") {
  auto a = sample();
  auto b = sample();
  a.name = "now";
  a.values.clear();
  b.name = "other";
  const std::string both = core::encode_snapshot(a) + core::encode_snapshot(b);
  auto all = core::decode_images(both);
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0] == a);
  CHECK((*all)[1] == b);
  auto none = core::decode_images("");
  REQUIRE(none);
  CHECK(none->empty());
  for (std::size_t n = 1; n < both.size(); ++n) {
    if (n == core::encode_snapshot(a).size()) continue;  // exactly the first image
    std::string problem;
    CAPTURE(n);
    CHECK(!core::decode_images(std::string_view(both).substr(0, n), &problem));
    CHECK(!problem.empty());
  }
}

TEST_CASE("snapshot file: the machine identity hash") {
  CHECK(core::fnv1a64_hex("") == "cbf29ce484222325");
  CHECK(core::fnv1a64_hex("a") == "af63dc4c8601ec8c");
  CHECK(core::fnv1a64_hex("a") != core::fnv1a64_hex("b"));
}
