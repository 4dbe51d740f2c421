// Unit tests of core/state_record: a device's state as a versioned field
// list (docs/snapshot.md "Device state").
#include <cerrno>
#include <stdexcept>
#include <string>

#include <doctest/doctest.h>

#include "core/state_record.hpp"

using vsysfs::core::StateReader;
using vsysfs::core::StateWriter;

TEST_SUITE("snapshot") {

TEST_CASE("state record: every type round-trips, any byte string included") {
  StateWriter w(3);
  w.put_u64("a.count", 18446744073709551615ULL);
  w.put_i64("b", -42);
  w.put_bool("on", true);
  w.put_bool("off", false);
  const std::string bytes("x\\y\nz\x01\x7f\xff=", 10);
  w.put_str("q0/s:x-y_z", bytes);
  w.put_str("empty", "");
  CHECK(w.text().rfind("version=3\n", 0) == 0);
  auto r = StateReader::parse(w.text());
  REQUIRE(r);
  CHECK(r->version() == 3);
  CHECK(*r->u64("a.count") == 18446744073709551615ULL);
  CHECK(*r->i64("b") == -42);
  CHECK(*r->boolean("on"));
  CHECK_FALSE(*r->boolean("off"));
  CHECK(*r->str("q0/s:x-y_z") == bytes);
  CHECK(*r->str("empty") == "");
  CHECK(r->has("b"));
  CHECK_FALSE(r->has("c"));
  CHECK(r->u64("c").error().value() == ENOENT);
  CHECK(r->u64("b").error().value() == EINVAL);  // negative is no u64
  CHECK(r->boolean("b").error().value() == EINVAL);
}

TEST_CASE("state record: keys with a prefix, sorted") {
  StateWriter w(1);
  w.put_u64("q1.len", 1);
  w.put_u64("q0.len", 0);
  w.put_u64("r", 0);
  auto r = StateReader::parse(w.text());
  REQUIRE(r);
  CHECK(r->keys_with_prefix("q") == std::vector<std::string>{"q0.len", "q1.len"});
  CHECK(r->keys_with_prefix("z").empty());
}

TEST_CASE("state record: a device's programming errors throw") {
  StateWriter w(1);
  w.put_u64("k", 1);
  CHECK_THROWS_AS(w.put_u64("k", 2), std::invalid_argument);
  CHECK_THROWS_AS(w.put_u64("", 2), std::invalid_argument);
  CHECK_THROWS_AS(w.put_u64("a b", 2), std::invalid_argument);
  CHECK_THROWS_AS(w.put_u64("a=b", 2), std::invalid_argument);
  CHECK_THROWS_AS(w.put_u64("version", 2), std::invalid_argument);
}

TEST_CASE("state record: what is not a record is EINVAL") {
  for (const char* bad : {"", "k=1\n", "version=1", "version=x\n", "version=1\nk\n",
                          "version=1\nk=1\nk=2\n", "version=1\nk=\\q\n", "version=1\nk=\\x4\n",
                          "version=1\nk=\\\n", "version=1\nk=1", "version=1\na b=1\n"}) {
    auto r = StateReader::parse(bad);
    CHECK_MESSAGE(!r, bad);
    if (!r) CHECK(r.error().value() == EINVAL);
  }
  CHECK(StateReader::parse("version=7\n"));
}

}  // TEST_SUITE("snapshot")
