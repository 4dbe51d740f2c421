// Random operation sequences for the Xen family (devices/xen): every
// writable file of xen_memory0, bus/xen_memory and the hypervisor knobs
// under kernel/debug/vsysfs/xen, with valid and hostile values, plus clock
// advances, on a NUMA-backed guest (the balloon moves the nodes' pages;
// the nodes' hugepage pools, numa/alloc and CPU hotplug join in) and a
// flat one. Invariants after every step (docs/random-tests.md):
//   host accounting   host free + every domain's current == host total
//                     (xen_balloon_hypervisor.hpp), and this guest's
//                     current in the hypervisor == info/current_kb
//   overshoot         the guest's current_kb stays between where it was
//                     before the step and min(target, static maximum): the
//                     worker never passes the target in its direction of
//                     travel (reference 3.7: credit = target - current);
//                     the same for every other domain's pacing towards its
//                     target, unless the step set that domain's current
//   domain max        no domain's current exceeds its max_kb
//   numa coupling     with [numa]: sum of nodeN MemTotal == current_kb,
//                     sum of MemFree == guest/free_kb (xen_balloon_memory.hpp)
//   kernel memory     guest/kernel_kb never changes; with [numa] it stays
//                     allocated (sum of SUnreclaim >= kernel_kb, so sum of
//                     MemTotal >= kernel_kb + sum of MemFree), and the node
//                     states (has_memory, has_normal_memory) and zonelists
//                     never change: ballooning is adjust_managed_page_count,
//                     not memory hotplug
//   balloon           low_kb == max_kb - current_kb; high_kb == 0 (x86-64)
//   flat workload     without [numa]: used_kb + kernel_kb + free_kb == current_kb
//   worker state      guest/state is DONE, EAGAIN or ECANCELED
//   converged         after a clock advance, a worker in DONE has current_kb
//                     == min(target, static maximum)
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "tests/random/random_seq.hpp"

namespace rnd = vsysfs::testing::rnd;
using vsysfs::testing::TestMachine;

namespace {

constexpr std::string_view kXen = "kernel/debug/vsysfs/xen/";
constexpr std::string_view kDev = "devices/system/xen_memory/xen_memory0/";

// Paths under the knob and device directories (appended, not operator+ on
// a temporary: GCC 12 warns falsely about that).
std::string xen(std::string_view rel) {
  std::string s(kXen);
  s.append(rel);
  return s;
}
std::string dev(std::string_view rel) {
  std::string s(kDev);
  s.append(rel);
  return s;
}

// Two nodes of 16 MiB; the guest is their 32 MiB of a 48 MiB maximum on a
// 96 MiB host with two other domains (16 MiB, and 24 MiB growable to 40).
const std::string kNumaMachine =
    "[numa]\n"
    "distance = [[10, 21], [21, 10]]\n"
    "[[numa.node]]\ncpus = \"0\"\nmemory_mb = 16\n"
    "[[numa.node]]\ncpus = \"1\"\nmemory_mb = 16\n"
    "[xen]\nhost_memory = \"96M\"\nmax_memory = \"48M\"\nmax_schedule_delay = 8\n"
    "kernel_memory = \"1M\"\n"
    "[[xen.domain]]\nname = \"Domain-0\"\ndomid = 0\nmemory = \"16M\"\npace = 1000\n"
    "[[xen.domain]]\nname = \"db\"\ndomid = 2\nmemory = \"24M\"\nmax_memory = \"40M\"\n"
    "pace = 3000\n";

// The flat guest of machines/xen-host-3dom.toml, scaled down to MiB.
const std::string kFlatMachine =
    "[xen]\nhost_memory = \"64M\"\nname = \"web\"\nmemory = \"16M\"\nmax_memory = \"32M\"\n"
    "used = \"8M\"\nkernel_memory = \"2M\"\nmax_schedule_delay = 4\nmax_retry_count = 3\n"
    "[[xen.domain]]\nname = \"Domain-0\"\ndomid = 0\nmemory = \"16M\"\npace = 1000\n"
    "[[xen.domain]]\nname = \"db\"\ndomid = 2\nmemory = \"24M\"\nmax_memory = \"40M\"\n"
    "pace = 2500\n";

std::string base(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// A value for a Xen file: mostly plausible, sometimes hostile.
std::string xen_value(rnd::Gen& g, const std::string& path, std::uint64_t host_kb,
                      std::uint64_t guest_max_kb) {
  if (g.chance(0.2)) return g.hostile();
  const std::string b = base(path);
  // The guest's own sizes mostly within its static maximum (a little past
  // it: the worker caps there), the host's up to twice the host.
  const bool guest = path.starts_with("devices/") || path.find("/guest/") != std::string::npos;
  const std::uint64_t scale_kb = guest ? guest_max_kb * 6 / 10 : host_kb;
  auto kb = [&] {
    std::uint64_t v = g.below(scale_kb * 2);
    if (g.chance(0.8)) v -= v % 4;  // whole pages, mostly
    return v;
  };
  if (b == "target_kb" || b == "current_kb" || b == "host_total_kb" || b == "host_free_kb" ||
      b == "used_kb")
    return g.number(kb());
  if (b == "target") {
    const std::uint64_t v = kb();
    switch (g.below(3)) {
      case 0: return std::to_string(v * 1024) + "\n";
      case 1: return std::to_string(v) + "K\n";
      default: return std::to_string(v / 1024) + "M";
    }
  }
  if (b == "max_schedule_delay")
    return g.number(g.pick(std::vector<std::uint64_t>{0, 1, 2, 3, 4, 8, 32, 64,
                                                      std::uint64_t{1} << 63, ~std::uint64_t{0}}));
  if (b == "max_retry_count") return g.number(g.below(6));
  if (b == "pace") return g.number(g.between(0, 5000));
  if (b == "populate_fail") return g.number(g.below(4));
  if (b == "uevent")
    return g.pick(std::vector<std::string>{"change\n", "add", "online\n", "bogus\n",
                                           "change 00000000-0000-0000-0000-000000000000 A=b\n"});
  if (b == "drivers_probe")
    return g.pick(std::vector<std::string>{"xen_memory0\n", "xen_memory0", "xen_memory1\n"});
  if (b == "drivers_autoprobe") return g.pick(std::vector<std::string>{"0\n", "1\n", "x"});
  // The NUMA guest's workload and topology (the balloon can only take
  // free pages; hugepage pools and allocations hold them).
  if (b == "alloc")
    return fmt::format("pages={} cpu={} policy={}\n", g.between(1, 3000), g.below(3),
                       g.pick(std::vector<std::string>{"default", "interleave", "bind:1", "preferred:0"}));
  if (b == "free") return g.number(g.below(12));
  if (b == "nr_hugepages") return g.number(g.below(10));
  if (b == "online") return g.pick(std::vector<std::string>{"0\n", "1\n"});
  return g.number(g.below(100));
}

std::vector<rnd::Step> generate(rnd::Gen& g, TestMachine& m, std::size_t n) {
  // With [numa] the guest's memory is its nodes': their hugepage pools,
  // the workload knobs and CPU hotplug take part too (empty otherwise).
  const auto files = rnd::writable_files(
      m, {"devices/system/xen_memory", "bus/xen_memory", std::string(kXen.substr(0, kXen.size() - 1)),
          "devices/system/node", "devices/system/cpu", "kernel/debug/vsysfs/numa"});
  REQUIRE(files.size() >= 10);  // target_kb, target, ..., domain knobs: found from the tree
  const std::uint64_t host = rnd::num(m.read(xen("host_total_kb"))).value_or(65536);
  const std::uint64_t gmax = rnd::num(m.read(xen("guest/max_kb"))).value_or(65536);
  std::vector<rnd::Step> steps;
  for (std::size_t i = 0; i < n; ++i) {
    if (g.chance(0.3)) {
      steps.push_back({"kernel/debug/vsysfs/clock/advance_ms", g.advance_ms()});
      continue;
    }
    const std::string& f = g.pick(files);
    rnd::Step s{f, xen_value(g, f, host, gmax)};
    if (g.chance(0.05)) s.uid = 1000;  // no CAP_SYS_ADMIN: target stores are EPERM
    steps.push_back(std::move(s));
  }
  return steps;
}

struct Dom {
  std::uint64_t current = 0, target = 0, max = 0;
  bool guest = false;
};

// kernel/debug/vsysfs/xen/domains: "domid name current_kb target_kb max_kb pace",
// this guest with '-' for target and pace.
std::map<std::string, Dom> domains(TestMachine& m) {
  std::map<std::string, Dom> out;
  std::istringstream in(m.read(xen("domains")));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, name, cur, tgt, max, pace;
    f >> id >> name >> cur >> tgt >> max >> pace;
    Dom d;
    d.current = std::stoull(cur);
    d.guest = tgt == "-";
    d.target = d.guest ? 0 : std::stoull(tgt);
    d.max = std::stoull(max);
    out[name] = d;
  }
  return out;
}

bool between(std::uint64_t v, std::uint64_t a, std::uint64_t b) {
  return std::min(a, b) <= v && v <= std::max(a, b);
}

class XenChecker : public rnd::Checker {
 public:
  explicit XenChecker(bool numa) : numa_(numa) {}

  std::string initial(TestMachine& m) override {
    snap(m);
    kernel0_ = m.read(xen("guest/kernel_kb"));
    has_memory0_ = m.read("devices/system/node/has_memory");
    has_normal0_ = m.read("devices/system/node/has_normal_memory");
    zonelists0_ = m.read("kernel/debug/vsysfs/numa/zonelists");
    return check(m, nullptr, 0);
  }
  void before(TestMachine& m, const rnd::Step&) override { snap(m); }
  std::string after(TestMachine& m, const rnd::Step& s, long rc) override {
    return check(m, &s, rc);
  }

 private:
  void snap(TestMachine& m) {
    current0_ = rnd::num(m.read(dev("info/current_kb"))).value_or(0);
    doms0_ = domains(m);
  }

  std::string check(TestMachine& m, const rnd::Step* s, long rc) {
    const auto total = rnd::num(m.read(xen("host_total_kb")));
    const auto free = rnd::num(m.read(xen("host_free_kb")));
    const auto current = rnd::num(m.read(dev("info/current_kb")));
    const auto target = rnd::num(m.read(dev("target_kb")));
    const auto low = rnd::num(m.read(dev("info/low_kb")));
    const auto high = rnd::num(m.read(dev("info/high_kb")));
    const auto gmax = rnd::num(m.read(xen("guest/max_kb")));
    const auto gfree = rnd::num(m.read(xen("guest/free_kb")));
    const std::string state = m.read(xen("guest/state"));
    if (!total || !free || !current || !target || !low || !high || !gmax || !gfree)
      return "read: a Xen file did not read as a number";
    const auto doms = domains(m);

    std::uint64_t sum = 0;
    const Dom* guest = nullptr;
    for (const auto& [name, d] : doms) {
      sum += d.current;
      if (d.guest) guest = &d;
      if (d.current > d.max)
        return fmt::format("domain max: {} current {} > max {}", name, d.current, d.max);
    }
    if (*free + sum != *total)
      return fmt::format("host accounting: free {} + domains {} != total {}", *free, sum, *total);
    if (!guest || guest->current != *current)
      return fmt::format("host accounting: hypervisor has the guest at {} KiB, current_kb {}",
                         guest ? guest->current : 0, *current);

    // The worker moves current towards min(target, static maximum) and
    // never past it (current_credit caps the target at what the balloon
    // holds).
    const std::uint64_t goal = std::min(*target, *gmax);
    if (*current > current0_) ++grew_;
    if (*current < current0_) ++shrank_;
    if (state == "EAGAIN\n") ++eagain_;
    if (state == "ECANCELED\n") ++canceled_;
    if (!between(*current, current0_, goal))
      return fmt::format("overshoot: guest current_kb {} outside [{}, goal {}] (target {}, max {})",
                         *current, current0_, goal, *target, *gmax);
    for (const auto& [name, d] : doms) {
      if (d.guest) continue;
      if (s && s->path == xen("domain/") + name + "/current_kb") continue;
      const auto it = doms0_.find(name);
      if (it != doms0_.end() && !between(d.current, it->second.current, d.target))
        return fmt::format("overshoot: domain {} current {} outside [{}, target {}]", name,
                           d.current, it->second.current, d.target);
    }

    if (*low + *current != *gmax)
      return fmt::format("balloon: low_kb {} + current_kb {} != max_kb {}", *low, *current, *gmax);
    if (*high != 0) return fmt::format("balloon: high_kb {} on x86-64", *high);
    if (state != "DONE\n" && state != "EAGAIN\n" && state != "ECANCELED\n")
      return "worker state: " + state;
    // Once time has moved, every queued worker run is done; a run that
    // ends in DONE left the loop with no credit (reference 3.7), and a
    // target written since then queued a run (delay 0) that has now run
    // too: DONE means current is at the goal. (rc 0: an empty write never
    // reaches the store, reference 1.4, so time did not move.)
    if (s && rc > 0 && s->path == "kernel/debug/vsysfs/clock/advance_ms" && state == "DONE\n" &&
        *current != goal)
      return fmt::format("converged: worker DONE with current_kb {} but goal {}", *current, goal);

    const std::string kernel_s = m.read(xen("guest/kernel_kb"));
    const auto kernel = rnd::num(kernel_s);
    if (!kernel || kernel_s != kernel0_)
      return fmt::format("kernel memory: guest/kernel_kb {} (was {})", kernel_s, kernel0_);
    if (numa_) {
      std::uint64_t mt = 0, mf = 0, sunreclaim = 0;
      for (int nid = 0; nid < 2; ++nid) {
        const std::string mi = m.read(fmt::format("devices/system/node/node{}/meminfo", nid));
        mt += rnd::meminfo_kb(mi, "MemTotal").value_or(0);
        mf += rnd::meminfo_kb(mi, "MemFree").value_or(0);
        sunreclaim += rnd::meminfo_kb(mi, "SUnreclaim").value_or(0);
      }
      if (mt != *current)
        return fmt::format("numa coupling: nodes' MemTotal {} != current_kb {}", mt, *current);
      if (mf != *gfree)
        return fmt::format("numa coupling: nodes' MemFree {} != guest/free_kb {}", mf, *gfree);
      if (sunreclaim < *kernel || mt < *kernel + mf)
        return fmt::format("kernel memory: SUnreclaim {}, MemTotal {}, MemFree {}, kernel_kb {}",
                           sunreclaim, mt, mf, *kernel);
      if (m.read("devices/system/node/has_memory") != has_memory0_ ||
          m.read("devices/system/node/has_normal_memory") != has_normal0_)
        return "kernel memory: node states changed: has_memory " +
               m.read("devices/system/node/has_memory");
      if (m.read("kernel/debug/vsysfs/numa/zonelists") != zonelists0_)
        return "kernel memory: zonelists changed: " + m.read("kernel/debug/vsysfs/numa/zonelists");
    } else {
      const auto used = rnd::num(m.read(xen("guest/used_kb")));
      if (!used || *used + *kernel + *gfree != *current)
        return fmt::format("flat workload: used {} + kernel {} + free {} != current {}",
                           used.value_or(0), *kernel, *gfree, *current);
    }
    return {};
  }

  std::string coverage() const override {
    return fmt::format("guest grew in {} steps, shrank in {}; EAGAIN seen {}, ECANCELED {}", grew_,
                       shrank_, eagain_, canceled_);
  }

  bool numa_;
  std::string kernel0_, has_memory0_, has_normal0_, zonelists0_;
  std::size_t grew_ = 0, shrank_ = 0, eagain_ = 0, canceled_ = 0;
  std::uint64_t current0_ = 0;
  std::map<std::string, Dom> doms0_;
};

rnd::Family xen_family(bool numa) {
  rnd::Family f;
  f.name = numa ? "xen (numa guest)" : "xen (flat guest)";
  f.toml = numa ? kNumaMachine : kFlatMachine;
  f.generate = generate;
  f.make_checker = [numa] { return std::make_unique<XenChecker>(numa); };
  f.observed = {"devices/system/xen_memory", "bus/xen_memory", "kernel/debug/vsysfs/xen",
                "devices/system/node", "kernel/debug/vsysfs/clock/now_ns"};
  return f;
}

}  // namespace

TEST_CASE("xen random: a NUMA guest's balloon keeps host accounting, targets and node sums") {
  const auto f = xen_family(true);
  const auto o = rnd::run_random(f, rnd::seed_from_env(20261203), rnd::steps_from_env(250));
  INFO(rnd::report(f, o));
  CHECK(!o.failure);
}

TEST_CASE("xen random: a flat guest's balloon keeps host accounting and targets") {
  const auto f = xen_family(false);
  const auto o = rnd::run_random(f, rnd::seed_from_env(1203), rnd::steps_from_env(250));
  INFO(rnd::report(f, o));
  CHECK(!o.failure);
}
