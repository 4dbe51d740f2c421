// Shared helpers of the xen_balloon unit tests (not a test file itself).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "tests/support/test_env.hpp"

namespace xen_test {

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

inline constexpr std::string_view kDev = "devices/system/xen_memory/xen_memory0/";
inline constexpr std::string_view kKnob = "kernel/debug/vsysfs/xen/";

inline std::string dev(std::string_view f) { return std::string(kDev) + std::string(f); }
inline std::string knob(std::string_view f) { return std::string(kKnob) + std::string(f); }

inline std::uint64_t read_u64(TestMachine& m, std::string_view path) {
  const std::string s = m.read(path);
  REQUIRE_MESSAGE(!s.empty(), path);
  REQUIRE_MESSAGE(s[0] != '<', path << ": " << s);
  return std::stoull(s);
}

inline std::uint64_t current_kb(TestMachine& m) { return read_u64(m, dev("info/current_kb")); }

// host free + every domain's current == host total, read through the
// knob files; and this guest's line in `domains` agrees with its
// info/current_kb.
inline bool memory_consistent(TestMachine& m) {
  const std::uint64_t total = read_u64(m, knob("host_total_kb"));
  const std::uint64_t free = read_u64(m, knob("host_free_kb"));
  std::istringstream in(m.read(knob("domains")));
  std::string line;
  std::getline(in, line);  // header
  std::uint64_t sum = 0;
  bool first = true;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string domid, name;
    std::uint64_t cur = 0;
    f >> domid >> name >> cur;
    sum += cur;
    if (first && cur != current_kb(m)) return false;
    first = false;
  }
  return free + sum == total;
}

// A small machine: 1 GiB host; this guest 256 MiB of 512 MiB, 64 MiB used,
// with the given balloon driver.
inline std::string small_machine_with(std::string_view driver, std::string_view extra_xen = "",
                                      std::string_view domains = "") {
  return "[xen]\nhost_memory = \"1G\"\nmemory = \"256M\"\nmax_memory = \"512M\"\nused = \"64M\"\n"
         "driver = \"" + std::string(driver) + "\"\n" + std::string(extra_xen) + std::string(domains);
}

// The same on the 2.6.39-5.14 workqueue driver, which the scenarios
// written before the kthread driver pin (their event sequences are that
// worker's), with its pre-5.4 max_retry_count of 0 unless extra_xen sets it.
inline std::string small_machine(std::string_view extra_xen = "", std::string_view domains = "") {
  const bool sets_retry = extra_xen.find("max_retry_count") != std::string_view::npos;
  return small_machine_with("workqueue",
                            std::string(sets_retry ? "" : "max_retry_count = 0\n") +
                                std::string(extra_xen),
                            domains);
}

}  // namespace xen_test
