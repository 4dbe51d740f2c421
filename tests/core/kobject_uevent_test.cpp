// Tests for core/kobject_uevent: the synthetic uevent grammar of
// lib/kobject_uevent.c (kobject_action_type, kobject_action_args,
// kobject_uevent_env) and drivers/base/core.c uevent_store, one table of
// accepted and refused inputs.

#include "core/kobject_uevent.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "tests/support/test_env.hpp"

using namespace std::literals;
namespace core = vsysfs::core;

namespace {

constexpr std::string_view kUuid = "12345678-1234-1234-1234-123456789abc";

// n arguments " k<i>=v" after an action and the UUID.
std::string with_args(std::size_t n, std::size_t value_len = 1) {
  std::string s = "add " + std::string(kUuid);
  for (std::size_t i = 0; i < n; ++i) s += " k" + std::to_string(i) + "=" + std::string(value_len, 'v');
  return s;
}

struct Case {
  std::string input;
  int err;               // 0: accepted (the store returns the count)
  std::string env;       // accepted: the synthetic variables, space-separated
};

}  // namespace

TEST_SUITE("kobject_uevent") {

TEST_CASE("kobject_synth_uevent: the kernel's grammar, accepted and refused") {
  const std::string u(kUuid);
  const Case cases[] = {
      // ACTION alone: SYNTH_UUID=0; one trailing '\n' or NUL ignored.
      {"add", 0, "SYNTH_UUID=0"},
      {"change\n", 0, "SYNTH_UUID=0"},
      {"remove\0"s, 0, "SYNTH_UUID=0"},
      {"move", 0, "SYNTH_UUID=0"},
      {"online", 0, "SYNTH_UUID=0"},
      {"offline", 0, "SYNTH_UUID=0"},
      {"bind", 0, "SYNTH_UUID=0"},
      {"unbind\n", 0, "SYNTH_UUID=0"},
      // ACTION UUID [KEY=VALUE]...
      {"add " + u, 0, "SYNTH_UUID=" + u},
      {"add " + u + "\n", 0, "SYNTH_UUID=" + u},
      {"change " + u + " A=b c=D1\n", 0, "SYNTH_UUID=" + u + " SYNTH_ARG_A=b SYNTH_ARG_c=D1"},
      {"add ABCDEF01-ABCD-ABCD-ABCD-ABCDEF012345", 0, "SYNTH_UUID=ABCDEF01-ABCD-ABCD-ABCD-ABCDEF012345"},
      // 63 arguments fill the 64 slots of kobject_action_args's env, but
      // then do not fit beside ACTION, DEVPATH, SUBSYSTEM, the device's two
      // variables and SEQNUM: ENOMEM from kobject_uevent_env. 57 fit.
      {with_args(63), -ENOMEM, ""},
      {with_args(58), -ENOMEM, ""},
      {with_args(57), 0, ""},
      // Unknown or malformed action: EINVAL.
      {"", -EINVAL, ""},
      {"\n", -EINVAL, ""},
      {"\0"s, -EINVAL, ""},
      {"junk\n", -EINVAL, ""},
      {"Add", -EINVAL, ""},
      {"ad", -EINVAL, ""},
      {"add2", -EINVAL, ""},
      {"change\n\n", -EINVAL, ""},
      {" add", -EINVAL, ""},
      {"ad\0d"s, -EINVAL, ""},
      {"add\0\n"s, -EINVAL, ""},  // QUIRK: strncmp past the action's NUL
      // An action with bad arguments: EINVAL.
      {"add ", -EINVAL, ""},     // QUIRK: a space starts arguments
      {"add \n", -EINVAL, ""},
      {"add 1234", -EINVAL, ""},  // the old netdev/PCI parser accepted this
      {"add notauuid", -EINVAL, ""},
      {"add " + u + " junk", -EINVAL, ""},  // the old dcdbas parser accepted this
      {"add " + u + " A", -EINVAL, ""},
      {"add " + u + " A=", -EINVAL, ""},
      {"add " + u + " =b", -EINVAL, ""},
      {"add " + u + " A=b!", -EINVAL, ""},
      {"add " + u + " MY_KEY=x", -EINVAL, ""},  // QUIRK: '_' is not alphanumeric
      {"add " + u + " A=b ", -EINVAL, ""},
      {"add " + u + "  A=b", -EINVAL, ""},
      {"add " + u + "x", -EINVAL, ""},
      {"add " + u.substr(0, 35), -EINVAL, ""},
      {"add 12345678x1234-1234-1234-123456789abc", -EINVAL, ""},
      {"add 1234567g-1234-1234-1234-123456789abc", -EINVAL, ""},
      {"add " + u + " A=b\0"s, 0, "SYNTH_UUID=" + u + " SYNTH_ARG_A=b"},
      {"add " + u + " A=b\0c"s, -EINVAL, ""},
      {with_args(64), -EINVAL, ""},  // more than UEVENT_NUM_ENVP
      {with_args(40, 60), -EINVAL, ""},  // past UEVENT_BUFFER_SIZE
  };
  vsysfs::testing::TestEnv te;
  const core::UeventKobject kobj{"/devices/platform/dcdbas", "platform",
                                 "DRIVER=dcdbas\nMODALIAS=platform:dcdbas\n"};
  for (const Case& c : cases) {
    CAPTURE(c.input);
    auto r = core::uevent_store(te.env, core::Caller::root(), kobj, c.input);
    if (c.err == 0) {
      CHECK(r);
      if (!r) continue;
      CHECK(*r == c.input.size());
      auto parsed = core::kobject_synth_parse(c.input);
      CHECK(parsed);
      if (parsed && !c.env.empty()) {
        std::string joined;
        for (const auto& v : parsed->envp) joined += (joined.empty() ? "" : " ") + v;
        CHECK(joined == c.env);
      }
    } else {
      CHECK_FALSE(r);
      if (r) continue;
      CHECK(-r.error().value() == c.err);
    }
  }
}

TEST_CASE("the logged event: kobject_uevent_env's variables; failures log the kernel's warning") {
  vsysfs::testing::TestEnv te;
  const core::UeventKobject kobj{"/devices/platform/dcdbas", "platform",
                                 "DRIVER=dcdbas\nMODALIAS=platform:dcdbas\n"};
  REQUIRE(core::uevent_store(te.env, core::Caller::root(), kobj, "unbind " + std::string(kUuid) + " A=1\n"));
  const auto ok = te.events.snapshot();
  REQUIRE(!ok.empty());
  const core::Event& e = ok.back();
  CHECK(e.device == "dcdbas");
  CHECK(e.result == "OK");
  CHECK(e.field("action") == "\"unbind\"");
  const std::string env = e.field("env");
  CHECK(env.starts_with("\"ACTION=unbind DEVPATH=/devices/platform/dcdbas SUBSYSTEM=platform SYNTH_UUID=" +
                        std::string(kUuid) + " SYNTH_ARG_A=1 DRIVER=dcdbas SEQNUM="));
  // zap_modalias_env: an unbind event carries no MODALIAS.
  CHECK(env.find("MODALIAS") == std::string::npos);

  CHECK_FALSE(core::uevent_store(te.env, core::Caller::root(), kobj, "add 1234"));
  const core::Event bad = te.events.snapshot().back();
  CHECK(bad.result == "EINVAL");
  CHECK(bad.field("message") == "\"synth uevent: /devices/platform/dcdbas: incorrect uevent action arguments\"");
  CHECK_FALSE(core::uevent_store(te.env, core::Caller::root(), kobj, "explode"));
  CHECK(te.events.snapshot().back().field("message") ==
        "\"synth uevent: /devices/platform/dcdbas: unknown uevent action string\"");
}

}  // TEST_SUITE
