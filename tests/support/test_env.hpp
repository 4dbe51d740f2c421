#pragma once

// Test support: a TestEnv (manual clock + event log) for device unit
// tests, one-line show/store helpers, and TestMachine, which builds a
// machine from TOML text and drives its files through the real fs::Server
// (open/read/write/release with the sysfs rules), without a mount.

#include <fcntl.h>

#include <stdexcept>
#include <string>
#include <string_view>

#include "core/caller.hpp"
#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/event_log.hpp"
#include "core/lock_service.hpp"
#include "core/page_buffer.hpp"
#include "core/tree.hpp"
#include "devices/machine/machine.hpp"
#include "fs/server.hpp"

namespace vsysfs::testing {

struct TestEnv {
  core::ManualClock clock;
  core::EventLog events{clock};
  core::FaultInjection faults{clock, events};
  core::Env env{clock, events, &faults};

  operator core::Env&() { return env; }  // NOLINT: devices take Env&
  void advance_ms(std::uint64_t ms) { clock.advance(std::chrono::milliseconds(ms)); }
};

// show() of one attribute as a string ("" plus a failed CHECK on error).
template <typename Dev>
std::string show(const Dev& dev, core::Status (Dev::*fn)(core::PageBuffer&) const) {
  core::PageBuffer buf;
  auto st = (dev.*fn)(buf);
  if (!st) return "<" + std::string(st.error().name()) + ">";
  return std::string(buf.view());
}

// store() returning the count, or -errno.
template <typename Dev>
long store(Dev& dev, core::Result<std::size_t> (Dev::*fn)(const core::Caller&, std::string_view),
           std::string_view input, const core::Caller& caller = core::Caller::root()) {
  auto r = (dev.*fn)(caller, input);
  return r ? static_cast<long>(*r) : -static_cast<long>(r.error().value());
}

// The text attribute at `path` ("mtu", "statistics/tx_packets") of
// `groups` (default Dev::groups()); std::logic_error if absent.
template <typename Dev>
using Groups = std::span<const core::AttributeGroup<Dev>>;
template <typename Dev>
const core::DeviceAttribute<Dev>& attribute(std::string_view path, Groups<Dev> groups = Dev::groups()) {
  const auto slash = path.rfind('/');
  const std::string_view group = slash == std::string_view::npos ? "" : path.substr(0, slash);
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  for (const auto& g : groups)
    if (g.name == group)
      for (const auto& a : g.attrs)
        if (a.name == name) return a;
  throw std::logic_error("no attribute " + std::string(path));
}

// show()/store() of the table entry at `path`, as the tree calls it.
template <typename Dev>
std::string show(const Dev& dev, std::string_view path, Groups<Dev> groups = Dev::groups()) {
  const auto& a = attribute<Dev>(path, groups);
  core::PageBuffer buf;
  auto st = a.show(dev, a, buf);
  if (!st) return "<" + std::string(st.error().name()) + ">";
  return std::string(buf.view());
}
template <typename Dev>
long store(Dev& dev, std::string_view path, std::string_view input,
           const core::Caller& caller = core::Caller::root()) {
  const auto& a = attribute<Dev>(path);
  auto r = a.store(dev, a, caller, input);
  return r ? static_cast<long>(*r) : -static_cast<long>(r.error().value());
}

// The text of machines/FILE (the tests run from the source tree, as make
// runs them); throws std::runtime_error when it cannot be read.
std::string machine_file_text(std::string_view file);

// A whole machine, driven through fs::Server exactly as the FUSE ops do.
class TestMachine {
 public:
  explicit TestMachine(std::string_view toml, bool manual_clock = true);

  // Reads the whole file (open O_RDONLY, read at 0 until EOF, release);
  // on error returns "<EACCES>" style text.
  std::string read(std::string_view path, const core::Caller& caller = core::Caller::root());
  // One write(2) at offset 0 (open O_WRONLY, write, release): the count or -errno.
  long write(std::string_view path, std::string_view data,
             const core::Caller& caller = core::Caller::root(), off_t off = 0);
  // Binary I/O at an offset.
  std::string pread(std::string_view path, std::size_t size, off_t off,
                    const core::Caller& caller = core::Caller::root());
  // open() result: 0 or -errno.
  int open_errno(std::string_view path, int flags);
  bool exists(std::string_view path) const { return tree.resolve(path) != 0; }
  std::string link_target(std::string_view path) const;
  // Events whose device and what match, oldest first.
  std::vector<core::Event> events_of(std::string_view device, std::string_view what = {}) const;
  void advance_ms(std::uint64_t ms) { clock.advance(std::chrono::milliseconds(ms)); }

  core::ManualClock clock;
  core::EventLog events{clock};
  core::FaultInjection faults{clock, events};
  core::Env env{clock, events, &faults};
  core::Tree tree;
  core::LockService locks{env};
  devices::Machine machine{env, tree, &clock, locks};
  fs::Server server{env, tree, locks};
};

}  // namespace vsysfs::testing
