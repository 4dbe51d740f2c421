#pragma once

// Seeded random operation sequences with invariants (docs/random-tests.md).
//
// A Family names a machine description, a generator of steps and a
// checker of invariants. run_random() builds the machine in-process
// (TestMachine: the real fs::Server, no mount), draws a sequence of steps
// from a std::mt19937_64 seeded with a printed seed, applies them one by
// one and checks the invariants after each. On a failure it shrinks the
// sequence (shrink_steps(): greedy delta debugging, drop chunks of steps,
// halving the chunk size, while the same invariant still fails; bounded by
// a run budget; 1-minimal when the budget allows) and report() prints the
// seed and the shortest failing sequence as a C++ initializer list that
// replay() accepts, so it can be pasted into a regression test. The Xen,
// NUMA, dcdbas and net families are Families; the lock-service sequences
// (tests/core/lock_service_random_test.cpp), whose steps are calls rather
// than writes, use shrink_steps() and Failure with their own step type.
//
// Every step is one write(2) to a file of the tree (a store, a knob
// command, clock/advance_ms, cpuN/online, machine/shutdown): the family's
// whole interface is files, and a replayed list needs nothing else. A
// family may add steps it applies itself (Family::apply, paths starting
// with '@'), for what no file says precisely enough.
//
// Generic invariant (every family): a write that fails changes none of the
// family's observed files ("bad input changes nothing", docs/design.md);
// a family may allow a documented exception (Family::failed_write_may_change).
//
// Environment: VSYSFS_RANDOM_SEED and VSYSFS_RANDOM_STEPS override a test's
// seed and step count; VSYSFS_RANDOM_VERBOSE=1 prints one line per run.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/test_env.hpp"

namespace vsysfs::testing::rnd {

struct Step {
  std::string path;       // relative to the mount root, like "devices/system/..."
  std::string data;       // the bytes of the one write(2)
  std::uint64_t off = 0;  // pwrite offset (binary files)
  std::uint32_t uid = 0;  // 0: root; else an unprivileged caller with this uid
};

// The steps as a C++ initializer list: {{"path", "data", off, uid}, ...}.
std::string to_cpp(const std::vector<Step>& steps);
// One step, for messages.
std::string describe(const Step& s);

// The seeded generator with the helpers every family uses.
class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}
  std::uint64_t below(std::uint64_t n) {  // uniform in [0, n); 0 when n == 0
    return n == 0 ? 0 : std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
  }
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
  std::mt19937_64& engine() { return rng_; }

  // A number as a user would write it: decimal, often with "\n", sometimes
  // 0x-hex or with leading zeros (kstrtoul base 0 reads those as hex/octal).
  std::string number(std::uint64_t v);
  // Input no store should accept as a number, or only as the kernel's
  // quirky parsers do: "", "\n", "-1", "junk", 2^64, "5 5", "0x", NUL, a
  // 5000-byte string, a bare "+", "1e3", whitespace...
  std::string hostile();
  // A clock step: 0, a jiffy, a second, a minute, up to ten minutes.
  std::string advance_ms();

 private:
  std::mt19937_64 rng_;
};

// Files under `prefixes` (mount-relative directories) whose mode has a
// write bit, walked from the tree, sorted; symlinks are not followed.
std::vector<std::string> writable_files(const TestMachine& m,
                                        const std::vector<std::string>& prefixes);
// Files under `prefixes` whose mode has a read bit.
std::vector<std::string> readable_files(const TestMachine& m,
                                        const std::vector<std::string>& prefixes);

// Invariant state for one run. Messages are "<invariant>: <detail>"; two
// failures are the same when the text before the first ':' is.
class Checker {
 public:
  virtual ~Checker() = default;
  // Called once on the fresh machine, then before and after every step.
  virtual std::string initial(TestMachine& m) = 0;
  virtual void before(TestMachine& m, const Step& s) { (void)m, (void)s; }
  // `rc` is the write's count or -errno.
  virtual std::string after(TestMachine& m, const Step& s, long rc) = 0;
  // What the run covered ("412 SMIs answered, ..."), for the report: a
  // sequence that never reaches the interesting states proves little.
  virtual std::string coverage() const { return {}; }
};

struct Family {
  std::string name;  // first word = the test cases' prefix: "xen random: ..."
  std::string toml;
  // Steps drawn from `gen` for the fresh machine `m` (generation may look
  // at the tree and the boot values, never at state a step changes).
  std::function<std::vector<Step>(Gen& gen, TestMachine& m, std::size_t steps)> generate;
  std::function<std::unique_ptr<Checker>()> make_checker;
  // Readable files whose contents a failed write must leave alone: every
  // readable file under these directories, less the `unobserved` paths
  // (ones the checker already models more strictly, or large ones).
  std::vector<std::string> observed;
  std::vector<std::string> unobserved;
  // A kernel quirk that lets a failed write change `path`.
  std::function<bool(const Step& s, long rc, const std::string& path)> failed_write_may_change;
  // Steps whose path starts with '@' are applied by the family instead of
  // written (the count or -errno): for what no file says at the precision
  // the family needs, like the net family's sub-millisecond clock steps
  // (clock/advance_ms counts whole milliseconds). They replay and print
  // like any other step.
  std::function<long(TestMachine& m, const Step& s)> apply;
};

struct Failure {
  std::size_t step = 0;  // index of the step after which the check failed (npos: initial)
  std::string what;
  std::string kind() const { return what.substr(0, what.find(':')); }
};

// Builds the family's machine and applies `steps`; the first failure.
// `rejected` (optional) counts the writes that failed with an errno.
std::optional<Failure> replay(const Family& f, const std::vector<Step>& steps,
                              std::size_t* rejected = nullptr, std::string* coverage = nullptr);

struct Outcome {
  std::uint64_t seed = 0;
  std::vector<Step> steps;         // what was drawn
  std::optional<Failure> failure;  // on the whole sequence
  std::size_t rejected = 0;        // writes of the sequence that failed with an errno
  std::string coverage;            // the checker's coverage() after the whole sequence
  std::vector<Step> shrunk;        // shortest failing sequence found
  std::optional<Failure> shrunk_failure;
  std::size_t shrink_runs = 0;
};

// Greedy delta debugging over any replayable step type: `replay_fn`
// replays a candidate from a fresh start and returns its first failure.
// Cuts what follows the failing step, then drops chunks (half the list,
// then quarters ..., down to single steps) while the same invariant (the
// Failure's kind()) still fails, at most `budget` replays and 3 million
// replayed steps. When the budget is not spent the result is 1-minimal:
// no single step can be dropped. The Xen, NUMA and dcdbas families
// (shrink() below), the net family and the lock-service sequences
// (tests/core/lock_service_random_test.cpp, whose steps are calls, not
// writes) all shrink with this one function.
template <typename S, typename Replay>
std::vector<S> shrink_steps(std::vector<S> steps, const Failure& failure, Replay&& replay_fn,
                            std::size_t budget, std::size_t* runs = nullptr) {
  std::size_t used = 0;
  // A second bound, on the steps replayed in all: a failure late in a long
  // run would otherwise cost `budget` replays of the whole prefix.
  std::size_t replayed = 0;
  constexpr std::size_t kStepBudget = 3'000'000;
  const std::string kind = failure.kind();
  auto still_fails = [&](const std::vector<S>& cand) -> std::optional<Failure> {
    ++used;
    replayed += cand.size();
    if (replayed > kStepBudget) used = budget;  // this replay is the last
    std::optional<Failure> r = replay_fn(cand);
    if (r && r->kind() == kind) return r;
    return std::nullopt;
  };
  // Nothing after the failing step matters.
  if (failure.step != std::string::npos && failure.step + 1 < steps.size())
    steps.resize(failure.step + 1);
  std::size_t chunk = std::max<std::size_t>(steps.size() / 2, 1);
  while (used < budget && !steps.empty()) {
    bool removed = false;
    for (std::size_t at = 0; at < steps.size() && used < budget;) {
      std::vector<S> cand;
      cand.reserve(steps.size());
      cand.insert(cand.end(), steps.begin(), steps.begin() + static_cast<long>(at));
      const std::size_t end = std::min(at + chunk, steps.size());
      cand.insert(cand.end(), steps.begin() + static_cast<long>(end), steps.end());
      if (auto r = still_fails(cand)) {
        // Keep the removal, and cut what follows the new failing step.
        steps = std::move(cand);
        if (r->step != std::string::npos && r->step + 1 < steps.size()) steps.resize(r->step + 1);
        removed = true;
      } else {
        at += chunk;
      }
    }
    if (chunk == 1 && !removed) break;
    if (!removed) chunk = std::max<std::size_t>(chunk / 2, 1);
  }
  if (runs) *runs = used;
  return steps;
}

// shrink_steps() with the family's replay().
std::vector<Step> shrink(const Family& f, std::vector<Step> steps, const Failure& failure,
                         std::size_t budget, std::size_t* runs = nullptr);

Outcome run_random(const Family& f, std::uint64_t seed, std::size_t steps,
                   std::size_t shrink_budget = 600);
// "random <family>: seed N, M steps: OK" or the failure, the shrunk list
// and how to replay it.
std::string report(const Family& f, const Outcome& o);

// A sanitizer build (gcc defines these for -fsanitize=address and
// -fsanitize=thread). A step costs far more there (a net step ~500x under
// TSan at -O0: 340 steps take 6 s of CPU), so the families with many default seeds run fewer of
// them; the plain build runs them all, and the environment overrides hold.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
// TSan alone: tests that simulate frames one by one cost 60x there (the
// batch equivalence test: 6.5 s plain, 385 s under TSan), and what they
// check runs on the thread that advances the manual clock.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitized = true;
#else
inline constexpr bool kThreadSanitized = false;
#endif

// VSYSFS_RANDOM_SEED / VSYSFS_RANDOM_STEPS, else the defaults.
std::uint64_t seed_from_env(std::uint64_t fallback);
std::size_t steps_from_env(std::size_t fallback);
bool verbose();

// --- file parsing helpers for checkers ---------------------------------------
// The first unsigned number in `s` (base 10, or 16 with hex=true); nullopt
// when `s` starts with '<' (a TestMachine error) or has no digit.
std::optional<std::uint64_t> num(std::string_view s, bool hex = false);
// "Node N Label:   123 kB" -> 123 for `label` (without the colon).
std::optional<std::uint64_t> meminfo_kb(std::string_view meminfo, std::string_view label);
// "name value" lines -> value of `name`.
std::optional<std::uint64_t> field(std::string_view text, std::string_view name);

}  // namespace vsysfs::testing::rnd
