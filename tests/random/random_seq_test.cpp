// The random-sequence framework itself (random_seq.hpp): the printed list
// pastes back as the same steps, shrinking ends 1-minimal, and the generic
// "a failed write changes nothing" invariant fires.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "tests/random/random_seq.hpp"

namespace rnd = vsysfs::testing::rnd;
using vsysfs::testing::TestMachine;

namespace {

const std::string kNuma =
    "[numa]\n"
    "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 16\n"
    "[[numa.node]]\ncpus = \"1\"\nmemory_mb = 16\n";

constexpr std::string_view kHuge = "devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages";

// A planted invariant: "fails once node1 has 3 huge pages and two
// allocations were made". The shortest failing sequences are exactly two
// successful allocs and one hugepage write taking node1 to >= 3.
class Planted : public rnd::Checker {
 public:
  std::string initial(TestMachine& m) override { return after(m, {}, 0); }
  std::string after(TestMachine& m, const rnd::Step&, long) override {
    const auto huge = rnd::num(m.read(std::string(kHuge)));
    const auto id = rnd::num(m.read("kernel/debug/vsysfs/numa/last_alloc_id"));
    if (huge.value_or(0) >= 3 && id.value_or(0) >= 2)
      return fmt::format("planted: {} huge pages and {} allocations", *huge, *id);
    return {};
  }
};

rnd::Family planted_family() {
  rnd::Family f;
  f.name = "planted (a failure the framework test expects)";
  f.toml = kNuma;
  f.generate = [](rnd::Gen& g, TestMachine&, std::size_t n) {
    std::vector<rnd::Step> steps;
    for (std::size_t i = 0; i < n; ++i) {
      switch (g.below(4)) {
        case 0: steps.push_back({"kernel/debug/vsysfs/numa/alloc", fmt::format("pages={}", g.between(1, 50))}); break;
        case 1: steps.push_back({std::string(kHuge), std::to_string(g.below(5))}); break;
        case 2: steps.push_back({"kernel/debug/vsysfs/numa/free", std::to_string(g.below(4))}); break;
        default: steps.push_back({"kernel/debug/vsysfs/clock/advance_ms", g.advance_ms()});
      }
    }
    return steps;
  };
  f.make_checker = [] { return std::make_unique<Planted>(); };
  return f;
}

}  // namespace

TEST_CASE("random framework: the printed list pastes back as the same steps") {
  const std::vector<rnd::Step> steps = {
      {"a/b", std::string("x\0\"\\\n\xff" "7\t", 8), 12, 0},
      {"c", "", 0, 1000},
  };
  const std::string printed = rnd::to_cpp(steps);
  CHECK(printed ==
        "{\n"
        "    {\"a/b\", \"x\\000\\\"\\\\\\n\\3777\\t\", 12, 0},\n"
        "    {\"c\", \"\", 0, 1000},\n"
        "}");
  // The same text, pasted as C++ (what a regression test does):
  const std::vector<rnd::Step> pasted = {
      {"a/b", std::string("x\000\"\\\n\3777\t", 8), 12, 0},
      {"c", "", 0, 1000},
  };
  REQUIRE(pasted.size() == steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    CHECK(pasted[i].path == steps[i].path);
    CHECK(pasted[i].data == steps[i].data);
    CHECK(pasted[i].off == steps[i].off);
    CHECK(pasted[i].uid == steps[i].uid);
  }
}

TEST_CASE("random framework: a planted failure is found, and shrinking ends 1-minimal") {
  const auto f = planted_family();
  const auto o = rnd::run_random(f, 99, 200);  // fixed: this tests the shrinker, not the device
  INFO(rnd::report(f, o));
  REQUIRE(o.failure);
  REQUIRE(o.shrunk_failure);
  CHECK(o.shrunk_failure->kind() == "planted");
  CHECK(o.shrunk.size() < o.steps.size());
  // Dropping any one step of the shrunk list makes the failure go away.
  for (std::size_t i = 0; i < o.shrunk.size(); ++i) {
    auto fewer = o.shrunk;
    fewer.erase(fewer.begin() + static_cast<long>(i));
    const auto r = rnd::replay(f, fewer);
    CHECK_MESSAGE((!r || r->kind() != "planted"), "step ", i, " was not needed");
  }
  // Two allocations and one hugepage write are all it takes.
  CHECK(o.shrunk.size() == 3);
}

TEST_CASE("random framework: a failed write that changes an observed file is reported") {
  // dcdbas smi_request 1 writes ebx before it checks the magic (a kernel
  // quirk the dcdbas family allows): without that allowance the generic
  // invariant flags the refused request.
  rnd::Family f;
  f.name = "generic";
  f.toml = "[dcdbas]\nmodel = \"PowerEdge 1400\"\n";
  f.make_checker = [] {
    struct None : rnd::Checker {
      std::string initial(TestMachine&) override { return {}; }
      std::string after(TestMachine&, const rnd::Step&, long) override { return {}; }
    };
    return std::make_unique<None>();
  };
  f.observed = {"devices/platform/dcdbas"};
  const std::vector<rnd::Step> steps = {
      {"devices/platform/dcdbas/smi_data", std::string(32, 'x'), 0, 0},
      {"devices/platform/dcdbas/smi_request", "1\n", 0, 0},
  };
  const auto r = rnd::replay(f, steps);
  REQUIRE(r);
  CHECK(r->step == 1);
  CHECK(r->kind() == "failed write changed state");
  f.failed_write_may_change = [](const rnd::Step& s, long rc, const std::string& path) {
    return s.path.ends_with("smi_request") && rc == -EBADR && path.ends_with("/smi_data");
  };
  CHECK(!rnd::replay(f, steps));
}
