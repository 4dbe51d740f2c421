#include "tests/random/random_seq.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "core/caller.hpp"

namespace vsysfs::testing::rnd {

namespace {

std::string cpp_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u >= 0x20 && u < 0x7f) {
          out.push_back(c);
        } else {
          // Octal (three digits, never swallows a following digit), and
          // the string is split where it follows so it stays unambiguous.
          out += fmt::format("\\{:03o}", u);
        }
    }
  }
  return out + "\"";
}

core::Caller caller_of(const Step& s) {
  return s.uid == 0 ? core::Caller::root() : core::Caller::user(s.uid);
}

void walk(const TestMachine& m, core::Ino dir, const std::string& path, bool want_write,
          std::vector<std::string>& out) {
  auto entries = m.tree.list(dir);
  if (!entries) return;
  for (const auto& e : *entries) {
    const std::string p = path.empty() ? e.name : path + "/" + e.name;
    auto node = m.tree.get(e.ino);
    if (!node) continue;
    if (node->kind == core::NodeKind::Dir) {
      walk(m, e.ino, p, want_write, out);
    } else if (node->kind != core::NodeKind::Symlink) {
      const mode_t mode = node->mode.load();
      if (want_write ? (mode & 0222) : (mode & 0444)) out.push_back(p);
    }
  }
}

std::vector<std::string> files(const TestMachine& m, const std::vector<std::string>& prefixes,
                               bool want_write) {
  std::vector<std::string> out;
  for (const auto& pre : prefixes) {
    const core::Ino ino = m.tree.resolve(pre);
    if (!ino) continue;
    auto node = m.tree.get(ino);
    if (node && node->kind == core::NodeKind::Dir) {
      walk(m, ino, pre, want_write, out);
    } else if (node && node->kind != core::NodeKind::Symlink &&
               (node->mode.load() & (want_write ? 0222 : 0444))) {
      out.push_back(pre);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::map<std::string, std::string> snapshot(TestMachine& m, const std::vector<std::string>& paths) {
  std::map<std::string, std::string> out;
  for (const auto& p : paths) out[p] = m.read(p);
  return out;
}

}  // namespace

std::string describe(const Step& s) {
  std::string d = cpp_string(s.data);
  if (d.size() > 90) d = d.substr(0, 80) + "...\"(" + std::to_string(s.data.size()) + " bytes)";
  std::string out = fmt::format("write {} <- {}", s.path, d);
  if (s.off) out += fmt::format(" at {}", s.off);
  if (s.uid) out += fmt::format(" as uid {}", s.uid);
  return out;
}

std::string to_cpp(const std::vector<Step>& steps) {
  std::string out = "{\n";
  for (const auto& s : steps)
    out += fmt::format("    {{{}, {}, {}, {}}},\n", cpp_string(s.path), cpp_string(s.data), s.off,
                       s.uid);
  return out + "}";
}

// --- Gen ------------------------------------------------------------------------

std::string Gen::number(std::uint64_t v) {
  switch (below(8)) {
    case 0: return std::to_string(v);
    case 1: return fmt::format("{:#x}\n", v);
    case 2: return "0" + std::to_string(v) + "\n";  // octal for base 0, decimal for base 10
    default: return std::to_string(v) + "\n";
  }
}

std::string Gen::hostile() {
  static const std::vector<std::string> kFixed = {
      "", "\n", "-1", "-1\n", "junk", "junk\n", "18446744073709551616", "18446744073709551615",
      "4294967296", "5 5", "0x", "0x\n", "+", "+5", "1e3", " 5", "5 ", "\t5\n", "5\n\n", "0x10",
      "010", "0b1", "9999999999999999999999", "-0", "\xff\xfe", "nan",
  };
  switch (below(4)) {
    case 0: {
      std::string s = std::to_string(below(1000));
      s.insert(below(s.size() + 1), 1, '\0');  // an embedded NUL
      return s;
    }
    case 1: return std::string(between(4090, 5000), static_cast<char>('0' + below(10)));
    default: return pick(kFixed);
  }
}

std::string Gen::advance_ms() {
  static const std::vector<std::uint64_t> kSizes = {0, 1, 4, 250, 999, 1000, 1001, 2000, 5000,
                                                    30000, 60000, 600000};
  // Hostile, but never a huge valid step: advance() runs every due timer,
  // so its cost grows with simulated time over the shortest period (a
  // balloon retrying every 4 ms makes one simulated hour 900k runs; see
  // docs/random-tests.md section 4). Junk, overflow, just past the cap.
  static const std::vector<std::string> kBad = {"",     "\n",   "-1",  "junk", "0x",  "+",
                                                "5 5",  "1e3",  "\t5", "18446744073709551616",
                                                "3153600000001"};
  if (chance(0.05)) return pick(kBad);
  if (chance(0.3)) return std::to_string(below(70000)) + "\n";
  return number(pick(kSizes));
}

// --- tree walks -------------------------------------------------------------------

std::vector<std::string> writable_files(const TestMachine& m,
                                        const std::vector<std::string>& prefixes) {
  return files(m, prefixes, true);
}

std::vector<std::string> readable_files(const TestMachine& m,
                                        const std::vector<std::string>& prefixes) {
  return files(m, prefixes, false);
}

// --- running -------------------------------------------------------------------------

std::optional<Failure> replay(const Family& f, const std::vector<Step>& steps,
                              std::size_t* rejected, std::string* coverage) {
  TestMachine m(f.toml);
  auto checker = f.make_checker();
  std::vector<std::string> observed = readable_files(m, f.observed);
  std::erase_if(observed, [&](const std::string& p) {
    return std::find(f.unobserved.begin(), f.unobserved.end(), p) != f.unobserved.end();
  });
  if (auto w = checker->initial(m); !w.empty()) return Failure{std::string::npos, w};
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    checker->before(m, s);
    const auto pre = snapshot(m, observed);
    const long rc = f.apply && s.path.starts_with('@')
                        ? f.apply(m, s)
                        : m.write(s.path, s.data, caller_of(s), static_cast<off_t>(s.off));
    if (rc < 0) {
      if (rejected) ++*rejected;
      const auto post = snapshot(m, observed);
      for (const auto& [path, text] : pre) {
        if (post.at(path) == text) continue;
        if (f.failed_write_may_change && f.failed_write_may_change(s, rc, path)) continue;
        return Failure{i, fmt::format("failed write changed state: {} (rc {}) changed {}: {} -> {}",
                                      describe(s), rc, path, cpp_string(text.substr(0, 200)),
                                      cpp_string(post.at(path).substr(0, 200)))};
      }
    }
    if (auto w = checker->after(m, s, rc); !w.empty())
      return Failure{i, w + fmt::format(" [after step {}: {} -> rc {}]", i, describe(s), rc)};
  }
  if (coverage) *coverage = checker->coverage();
  return std::nullopt;
}

std::vector<Step> shrink(const Family& f, std::vector<Step> steps, const Failure& failure,
                         std::size_t budget, std::size_t* runs) {
  return shrink_steps(
      std::move(steps), failure, [&f](const std::vector<Step>& cand) { return replay(f, cand); },
      budget, runs);
}

Outcome run_random(const Family& f, std::uint64_t seed, std::size_t steps,
                   std::size_t shrink_budget) {
  Outcome o;
  o.seed = seed;
  {
    TestMachine m(f.toml);
    Gen gen(seed);
    o.steps = f.generate(gen, m, steps);
  }
  o.failure = replay(f, o.steps, &o.rejected, &o.coverage);
  if (o.failure) {
    o.shrunk = shrink(f, o.steps, *o.failure, shrink_budget, &o.shrink_runs);
    o.shrunk_failure = replay(f, o.shrunk);
  }
  if (verbose()) std::fprintf(stderr, "%s\n", report(f, o).c_str());
  return o;
}

std::string report(const Family& f, const Outcome& o) {
  if (!o.failure)
    return fmt::format("random {}: seed {}, {} steps ({} refused with an errno{}{}): OK", f.name,
                       o.seed, o.steps.size(), o.rejected, o.coverage.empty() ? "" : "; ",
                       o.coverage);
  std::string out = fmt::format(
      "random {}: seed {}, {} steps: FAILED at step {}: {}\n"
      "  shrunk to {} steps in {} replays; it fails with: {}\n"
      "  replay: VSYSFS_RANDOM_SEED={} VSYSFS_RANDOM_STEPS={} build/unit-tests -tc='{} random*'\n"
      "  or paste into a regression test: rnd::replay(family, std::vector<rnd::Step>{{LIST}})\n"
      "  with the list:\n{}",
      f.name, o.seed, o.steps.size(), o.failure->step, o.failure->what, o.shrunk.size(),
      o.shrink_runs, o.shrunk_failure ? o.shrunk_failure->what : "(no longer fails: flaky?)",
      o.seed, o.steps.size(), f.name.substr(0, f.name.find(' ')), to_cpp(o.shrunk));
  return out;
}

std::uint64_t seed_from_env(std::uint64_t fallback) {
  const char* s = std::getenv("VSYSFS_RANDOM_SEED");
  if (!s || !*s) return fallback;
  return std::strtoull(s, nullptr, 0);
}

std::size_t steps_from_env(std::size_t fallback) {
  const char* s = std::getenv("VSYSFS_RANDOM_STEPS");
  if (!s || !*s) return fallback;
  return static_cast<std::size_t>(std::strtoull(s, nullptr, 0));
}

bool verbose() {
  const char* s = std::getenv("VSYSFS_RANDOM_VERBOSE");
  return s && *s && *s != '0';
}

// --- parsing helpers -------------------------------------------------------------------

std::optional<std::uint64_t> num(std::string_view s, bool hex) {
  if (s.empty() || s.front() == '<') return std::nullopt;
  std::size_t i = 0;
  auto digit = [&](char c) {
    return hex ? std::isxdigit(static_cast<unsigned char>(c)) != 0
               : std::isdigit(static_cast<unsigned char>(c)) != 0;
  };
  while (i < s.size() && !digit(s[i])) ++i;
  if (i == s.size()) return std::nullopt;
  std::uint64_t v = 0;
  for (; i < s.size() && digit(s[i]); ++i) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    v = v * (hex ? 16 : 10) + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return v;
}

std::optional<std::uint64_t> meminfo_kb(std::string_view meminfo, std::string_view label) {
  const std::string want = " " + std::string(label) + ":";
  const std::size_t at = meminfo.find(want);
  if (at == std::string_view::npos) return std::nullopt;
  return num(meminfo.substr(at + want.size(), 40));
}

std::optional<std::uint64_t> field(std::string_view text, std::string_view name) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, eol - pos);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ' ')
      return num(line.substr(name.size()));
    pos = eol + 1;
  }
  return std::nullopt;
}

}  // namespace vsysfs::testing::rnd
