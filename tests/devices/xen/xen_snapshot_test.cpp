// Machine snapshots of a [xen] machine (devices/xen/xen_state.cpp,
// docs/snapshot.md): a restore brings back every balloon, hypervisor,
// xenstore and bus file, the worker's and the pacing timer at their saved
// deadlines (and no timer armed after the snapshot), with both balloon
// drivers; a malformed record is EINVAL and changes nothing.
#include <cerrno>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/state_record.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;

namespace {

constexpr std::string_view kDev = "devices/system/xen_memory/xen_memory0/";
std::string K(std::string_view f) { return "kernel/debug/vsysfs/" + std::string(f); }
std::string D(std::string_view f) { return std::string(kDev) + std::string(f); }

// A flat guest (no [numa]) of 2 GiB with a 3 GiB maximum on an 8 GiB host,
// and a domain "db" ballooning down at 10 MiB/s.
std::string xen_machine(std::string_view driver) {
  return fmt::format(R"([xen]
host_memory = "8G"
memory = "2G"
max_memory = "3G"
used = "256M"
kernel_memory = "64M"
driver = "{}"

[[xen.domain]]
name = "Domain-0"
domid = 0
memory = "1G"

[[xen.domain]]
name = "db"
domid = 2
memory = "2G"
target = "1G"
pace = 2560
)",
                     driver);
}

// The Xen events of `ms` of simulated time, with their instants.
std::vector<std::string> advance_events(testing::TestMachine& m, std::uint64_t ms) {
  const std::uint64_t from = m.events.snapshot().back().seq;
  m.advance_ms(ms);
  std::vector<std::string> out;
  for (const auto& e : m.events.since(from)) {
    if (e.device != "xen" && e.device != "xen_balloon" && e.device != "xenstore") continue;
    std::string line = fmt::format("{} {} {} {}", e.time.count(), e.device, e.what, e.result);
    for (const auto& f : e.data) line += " " + f.key + "=" + f.json;
    out.push_back(std::move(line));
  }
  return out;
}

const devices::StateHandler& handler(testing::TestMachine& m, std::string_view name) {
  for (const auto& h : m.machine.state_handlers())
    if (h.name == name) return h;
  throw std::logic_error("no handler " + std::string(name));
}

std::string save(const devices::StateHandler& h) {
  core::StateWriter w(h.version);
  h.save(w);
  return w.text();
}

// The record with field `key` set to `value` (added when absent), or
// removed when `value` is null.
std::string with_field(const std::string& text, std::string_view key, const char* value) {
  std::string out;
  bool found = false;
  for (std::size_t pos = 0; pos < text.size();) {
    const auto nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind(std::string(key) + "=", 0) == 0) {
      found = true;
      if (value) out += std::string(key) + "=" + value + "\n";
      continue;
    }
    out += line + "\n";
  }
  if (!found && value) out += std::string(key) + "=" + value + "\n";
  return out;
}

std::string without_seq(const std::string& text) {
  std::string out;
  for (std::size_t pos = 0; pos < text.size();) {
    const auto nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos + 1);
    pos = nl + 1;
    if (line.find(".seq=") == std::string::npos) out += line;
  }
  return out;
}

core::Status load(const devices::StateHandler& h, const std::string& text) {
  auto r = core::StateReader::parse(text);
  if (!r) return r.error();
  return h.load(*r);
}

}  // namespace

TEST_SUITE("snapshot") {

TEST_CASE("xen snapshot: every file, the xenstore and the timers come back (both drivers)") {
  for (const char* driver : {"kthread", "workqueue"}) {
    CAPTURE(driver);
    testing::TestMachine m(xen_machine(driver));
    m.advance_ms(10);
    // A failed populate: the worker backs off (EAGAIN, retry in 2 s) and the
    // pacing timer of "db" is pending: both timers pending at the snapshot.
    REQUIRE(m.write(K("xen/populate_fail"), "1") == 1);
    REQUIRE(m.write(D("target_kb"), "3145728") == 7);
    m.advance_ms(1);
    REQUIRE(m.read(K("xen/guest/state")) == "EAGAIN\n");
    const std::string xenstore = m.read(K("xen/xenstore"));
    const std::string domains = m.read(K("xen/domains"));
    REQUIRE(m.write(K("machine/snapshot"), "base") == 4);
    // The timers as they run from the snapshot on: the pacing tick at 1 s,
    // the worker's retry 2 s after the failed step.
    const auto first = advance_events(m, 5000);
    REQUIRE(first.size() > 3);
    CHECK(m.read(K("xen/guest/state")) == "DONE\n");

    // A change of every kind: each writable file, the hypervisor's side,
    // the xenstore (its watch sets targets), and the clock with the worker
    // armed again by a target.
    CHECK(m.write(D("target_kb"), "2097152") == 7);
    CHECK(m.write(D("target"), "1G") == 2);
    CHECK(m.write(D("max_schedule_delay"), "0x10") == 4);
    CHECK(m.write(D("max_retry_count"), "7") == 1);
    CHECK(m.write(D("scrub_pages"), "0") == 1);
    CHECK(m.write(K("xen/guest/used_kb"), "524288") == 6);
    CHECK(m.write("bus/xen_memory/drivers_autoprobe", "0") == 1);
    CHECK(m.write(K("xen/host_free_kb"), "1048576") == 7);
    CHECK(m.write(K("xen/populate_fail"), "3") == 1);
    CHECK(m.write(K("xen/domain/db/target_kb"), "524288") == 6);
    CHECK(m.write(K("xen/domain/db/pace"), "100") == 3);
    CHECK(m.write(K("xen/domain/Domain-0/current_kb"), "524288") == 6);
    CHECK(m.write(K("xen/xenstore"),
                  "/local/domain/2/memory/target 786432\n/local/domain/1/x y\n") > 0);
    m.advance_ms(3000);
    CHECK(m.write(D("target_kb"), "2500000") == 7);  // the worker armed after the snapshot
    CHECK(m.write(K("machine/diff"), "base now") == 8);
    const std::string changed = m.read(K("machine/diff"));
    for (const std::string& p : std::vector<std::string>{
             D("target_kb"), D("target"), D("max_schedule_delay"), D("max_retry_count"),
             D("scrub_pages"), D("info/current_kb"), K("xen/guest/used_kb"),
             "bus/xen_memory/drivers_autoprobe", K("xen/host_total_kb"), K("xen/populate_fail"),
             K("xen/domain/db/target_kb"), K("xen/domain/db/current_kb"), K("xen/domain/db/pace"),
             K("xen/domain/Domain-0/current_kb")})
      CHECK_MESSAGE(("\n" + changed).find("\n" + p + ": ") != std::string::npos, p);

    REQUIRE(m.write(K("machine/restore"), "base") == 4);
    CHECK(m.write(K("machine/diff"), "base now") == 8);
    CHECK(m.read(K("machine/diff")) == "");
    // The seq files, which the diff does not render.
    CHECK(m.read(K("xen/xenstore")) == xenstore);
    CHECK(m.read(K("xen/domains")) == domains);
    // Same instants, same steps; the worker armed after the snapshot never
    // runs (it would add a step at the restore's instant).
    CHECK(advance_events(m, 5000) == first);
    // The hypervisor's account agrees with the guest's after all that.
    const std::string cur = m.read(D("info/current_kb"));
    CHECK(m.read(K("xen/domains")).find("\n1 guest " + cur.substr(0, cur.size() - 1) + " - ") !=
          std::string::npos);
  }
}

// With [numa] the guest's memory is its nodes' (the default machine's
// layout): the nodes' pages come back through the numa handler, the pages
// each node is owed and the round-robin cursor through xen's.
TEST_CASE("xen snapshot: a NUMA-backed balloon comes back with its nodes") {
  testing::TestMachine m(R"([numa]
[[numa.node]]
cpus = "0"
memory_mb = 64
[[numa.node]]
cpus = "1"
memory_mb = 64

[xen]
host_memory = "512M"
max_memory = "256M"
kernel_memory = 0

[[xen.domain]]
name = "other"
domid = 2
memory = "128M"
)");
  m.advance_ms(10);
  // Down to 64 MiB (pages taken from the nodes), then up with a failed
  // populate: the retry, pending at the snapshot, returns them.
  REQUIRE(m.write(D("target_kb"), "65536") == 5);
  m.advance_ms(1);
  REQUIRE(m.read(D("info/current_kb")) == "65536\n");
  REQUIRE(m.write(K("xen/populate_fail"), "1") == 1);
  REQUIRE(m.write(D("target_kb"), "229376") == 6);
  m.advance_ms(1);
  REQUIRE(m.read(K("xen/guest/state")) == "EAGAIN\n");
  REQUIRE(m.write(K("machine/snapshot"), "n") == 1);
  const std::string before =
      m.read("devices/system/node/node0/meminfo") + m.read("devices/system/node/node1/meminfo");
  const auto first = advance_events(m, 5000);
  REQUIRE(m.read(D("info/current_kb")) == "229376\n");
  // Where the retry put the pages: first back to the nodes they came from.
  const std::string grown =
      m.read("devices/system/node/node0/meminfo") + m.read("devices/system/node/node1/meminfo");

  CHECK(m.write(D("target_kb"), "98304") == 5);
  CHECK(m.write(K("numa/alloc"), "pages=100") == 9);
  m.advance_ms(3000);
  CHECK(m.write(K("machine/diff"), "n now") == 5);
  CHECK(m.read(K("machine/diff")) != "");
  REQUIRE(m.write(K("machine/restore"), "n") == 1);
  CHECK(m.write(K("machine/diff"), "n now") == 5);
  CHECK(m.read(K("machine/diff")) == "");
  CHECK(m.read("devices/system/node/node0/meminfo") + m.read("devices/system/node/node1/meminfo") ==
        before);
  CHECK(advance_events(m, 5000) == first);
  CHECK(m.read("devices/system/node/node0/meminfo") + m.read("devices/system/node/node1/meminfo") ==
        grown);
}

// Timers due at the same instant fire in the order they were armed
// (core/clock.hpp); a restore re-arms them in that order, not in the
// order the handler happens to visit them.
TEST_CASE("xen snapshot: the worker and the pacing timer due at one instant keep their order") {
  testing::TestMachine m(R"([xen]
host_memory = "8G"
memory = "2G"
max_memory = "3G"
max_schedule_delay = 1

[[xen.domain]]
name = "db"
domid = 2
memory = "1G"
pace = 2560
)");
  m.advance_ms(1000);
  // The pacing timer first (due at 2 s), then the worker, which fails its
  // step at 1 s and retries a second later: also at 2 s.
  REQUIRE(m.write(K("xen/domain/db/target_kb"), "524288") == 6);
  REQUIRE(m.write(K("xen/populate_fail"), "1") == 1);
  REQUIRE(m.write(D("target_kb"), "3145728") == 7);
  m.advance_ms(1);
  REQUIRE(m.read(K("xen/guest/state")) == "EAGAIN\n");
  REQUIRE(m.write(K("machine/snapshot"), "s") == 1);
  const auto first = advance_events(m, 1500);
  std::vector<std::string> at_2s;
  for (const auto& e : first)
    if (e.rfind("2000000000 ", 0) == 0) {
      const auto what_end = e.find(' ', e.find(' ', 11) + 1);
      at_2s.push_back(e.substr(0, what_end));
    }
  CAPTURE(fmt::format("{}", fmt::join(first, "\n")));
  REQUIRE(at_2s ==
          std::vector<std::string>{"2000000000 xen domain_step", "2000000000 xen_balloon step"});
  REQUIRE(m.write(K("machine/restore"), "s") == 1);
  CHECK(advance_events(m, 1500) == first);
}

// Idle at the snapshot (the workqueue's worker with nothing to do, db at
// its target), armed after it: after the restore neither runs.
TEST_CASE("xen snapshot: timers armed after the snapshot never fire") {
  testing::TestMachine m(R"([xen]
host_memory = "8G"
memory = "2G"
max_memory = "3G"
driver = "workqueue"

[[xen.domain]]
name = "db"
domid = 2
memory = "1G"
)");
  m.advance_ms(10);
  REQUIRE(m.write(K("machine/snapshot"), "idle") == 4);
  CHECK(advance_events(m, 3000).empty());
  REQUIRE(m.write(D("target_kb"), "3145728") == 7);
  REQUIRE(m.write(K("xen/domain/db/target_kb"), "524288") == 6);
  REQUIRE(m.write(K("machine/restore"), "idle") == 4);
  CHECK(advance_events(m, 3000).empty());
  CHECK(m.read(D("info/current_kb")) == "2097152\n");
}

TEST_CASE("xen snapshot: a malformed record is EINVAL and changes nothing") {
  testing::TestMachine m(xen_machine("kthread"));
  m.advance_ms(10);
  REQUIRE(m.write(K("xen/populate_fail"), "1") == 1);
  REQUIRE(m.write(D("target_kb"), "3145728") == 7);
  m.advance_ms(1);
  REQUIRE(m.write(K("machine/snapshot"), "x") == 1);
  const auto& h = handler(m, "xen");
  const std::string good = save(h);
  const std::string xenstore = m.read(K("xen/xenstore"));
  REQUIRE(good.find("hv.dom.2.max=") != std::string::npos);
  const std::string nodes = [&] {
    auto r = core::StateReader::parse(good);
    return std::to_string(*r->u64("xenstore.nodes"));
  }();
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"field missing", with_field(good, "balloon.target_pages", nullptr)},
      {"unknown state", with_field(good, "balloon.state", "BOGUS")},
      {"other driver", with_field(good, "balloon.driver", "workqueue")},
      {"negative deadline", with_field(good, "balloon.worker.expires_ns", "-5")},
      {"pages not summing to the maximum", with_field(good, "mem.current", "1")},
      {"another domain's maximum", with_field(good, "hv.dom.2.max", "99999999")},
      {"current above max", with_field(good, "hv.dom.2.current", "99999999")},
      {"a domain this machine lacks", with_field(good, "hv.dom.7.current", "1")},
      {"domains above the host", with_field(good, "hv.total_pages", "1")},
      {"zero pace", with_field(good, "hv.dom.2.pace", "0")},
      {"node without its parent",
       with_field(with_field(good, "xenstore.nodes", std::to_string(std::stoul(nodes) + 1).c_str()),
                  "xenstore.node." + nodes, "/nope/child v")},
      {"node count off", with_field(good, "xenstore.nodes", "3")},
      {"node value not printable", with_field(good, "xenstore.node.0", "/tool \\x01")},
      {"bad autoprobe", with_field(good, "bus.drivers_autoprobe", "2")},
      {"watch missing", with_field(good, "xenstore.watch.2.fired", nullptr)},
      // This host runs with vPMU off: only off and no features.
      {"vpmu mode with vpmu off", with_field(good, "hv.vpmu.mode", "1")},
      {"vpmu features with vpmu off", with_field(good, "hv.vpmu.features", "1")},
      {"vpmu mode without features", with_field(good, "hv.vpmu.features", nullptr)},
  };
  for (const auto& [why, text] : bad) {
    CAPTURE(std::string(why));
    const auto st = load(h, text);
    REQUIRE_FALSE(st);
    CHECK(st.error().value() == EINVAL);
    CHECK(save(h) == good);
  }
  CHECK(m.read(K("xen/xenstore")) == xenstore);
  CHECK(m.write(K("machine/diff"), "x now") == 5);
  CHECK(m.read(K("machine/diff")) == "");
  // The record itself loads (and changes nothing either: the timers are
  // armed again at the same deadlines, under new arming ids).
  CHECK(load(h, good));
  CHECK(without_seq(save(h)) == without_seq(good));
}

TEST_CASE("xen snapshot: the vPMU of dom0's hypervisor; records without it get the boot values") {
  testing::TestMachine m(R"([xen]
host_memory = "8G"
domid = 0
memory = "2G"
used = "256M"

[xen.hypervisor]
vpmu = "on,ipc"
)");
  const std::string P = "hypervisor/pmu/";
  REQUIRE(m.write(P + "pmu_mode", "hv\n") == 3);
  REQUIRE(m.write(P + "pmu_features", "4") == 1);
  const auto& h = handler(m, "xen");
  const std::string good = save(h);
  CHECK(good.find("hv.vpmu.mode=2\n") != std::string::npos);
  CHECK(good.find("hv.vpmu.features=4\n") != std::string::npos);
  for (const auto& [mode, features] : {std::pair{"3", "0"}, {"8", "0"}, {"1", "8"}}) {
    CAPTURE(mode);
    CAPTURE(features);
    const auto st =
        load(h, with_field(with_field(good, "hv.vpmu.mode", mode), "hv.vpmu.features", features));
    REQUIRE_FALSE(st);
    CHECK(st.error().value() == EINVAL);
    CHECK(save(h) == good);
  }
  REQUIRE(load(h, with_field(with_field(good, "hv.vpmu.mode", "4"), "hv.vpmu.features", "1")));
  CHECK(m.read(P + "pmu_mode") == "all\n");
  CHECK(m.read(P + "pmu_features") == "0x1\n");
  // A record of a build before the vPMU: the boot mode (self) and features.
  REQUIRE(
      load(h, with_field(with_field(good, "hv.vpmu.mode", nullptr), "hv.vpmu.features", nullptr)));
  CHECK(m.read(P + "pmu_mode") == "self\n");
  CHECK(m.read(P + "pmu_features") == "0x2\n");
}

}  // TEST_SUITE("snapshot")
