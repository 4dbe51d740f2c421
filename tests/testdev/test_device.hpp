#pragma once

// TestDevice: a test-only device with every kind of file vsysfs serves, so
// the integration suite can check the generic sysfs contract (docs/design.md
// section 3, docs/kernel-semantics.md section 1) independently of any real driver. It is
// linked only into build/vsysfs-test and the unit tests, and appears when a
// machine file has a [testdev] section.
//
// devices/virtual/vsysfs_test/NAME/       (class/vsysfs_test/NAME -> there)
//   value       0644  int, kstrtoint; a store notifies pollers of `value`
//   ro          0444  constant "read-only\n"
//   wo          0200  write-only; stores are logged
//   secret      0600  root-only int
//   shows       0444  how many times show() ran on it (re-show checks)
//   sink        0644  store records length and NUL termination; show reports them
//   big         0444  a show() that overflows the page (clamped to 4095)
//   blob        bin 0644, size 64: read/write at an offset
//   stream      bin 0600, size 0 (unbounded, like dcdbas smi_data): 8 KiB store
//   stats/count 0444  a named group (subdirectory)
// kernel/debug/vsysfs/testdev/
//   notify      0200  NAME: sysfs_notify(NAME) on testdev0
//   set         0200  INT: set testdev0's value from outside (notifies)
//   timer_ms    0600  N: arm a timer N ms from now; shows "idle" or the deadline
//   fired       0400  how many times the timer fired
//   hotplug     0200  "add NAME" / "remove NAME": device_add / device_del
//
// Thread-safety: every callback may run concurrently; state is under mu_.

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "core/attribute.hpp"
#include "core/clock.hpp"
#include "core/env.hpp"
#include "core/tree.hpp"

namespace vsysfs::testing {

class TestDevice {
 public:
  explicit TestDevice(core::Env& env, std::string name) : env_(env), name_(std::move(name)) {}

  static std::span<const core::AttributeGroup<TestDevice>> groups();

  core::Status value_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> value_store(const core::Caller& c, std::string_view in);
  core::Status ro_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> wo_store(const core::Caller& c, std::string_view in);
  core::Status secret_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> secret_store(const core::Caller& c, std::string_view in);
  core::Status shows_show(core::PageBuffer& buf) const;
  core::Status sink_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> sink_store(const core::Caller& c, std::string_view in);
  core::Status big_show(core::PageBuffer& buf) const;
  core::Status count_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> blob_read(const core::Caller& c, std::uint64_t pos, std::span<char> out);
  core::Result<std::size_t> blob_write(const core::Caller& c, std::uint64_t pos,
                                       std::span<const char> in);
  core::Result<std::size_t> stream_read(const core::Caller& c, std::uint64_t pos,
                                        std::span<char> out);
  core::Result<std::size_t> stream_write(const core::Caller& c, std::uint64_t pos,
                                         std::span<const char> in);

  // Used by the knobs.
  void set_value(int v);
  // Machine snapshots (docs/snapshot.md): every field but `shows` (which
  // counts reads, and a snapshot reads), keys "PREFIX.*".
  void save_state(core::StateWriter& w, const std::string& prefix) const;
  core::Status load_state(const core::StateReader& r, const std::string& prefix);
  core::Kobject kobj_;

 private:
  core::Env& env_;
  const std::string name_;
  mutable std::mutex mu_;  // Order: leaf
  int value_ = 0;
  int secret_ = 42;
  mutable std::atomic<std::uint64_t> shows_{0};
  std::size_t sink_len_ = 0;
  bool sink_nul_ = false;
  std::array<char, 64> blob_{};
  std::array<char, 8192> stream_{};
};

class TestDeviceKnobs {
 public:
  TestDeviceKnobs(core::Env& env, core::Tree& tree, std::shared_ptr<TestDevice> dev0);
  static std::span<const core::AttributeGroup<TestDeviceKnobs>> groups();

  core::Result<std::size_t> notify_store(const core::Caller& c, std::string_view in);
  core::Result<std::size_t> set_store(const core::Caller& c, std::string_view in);
  core::Status timer_ms_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> timer_ms_store(const core::Caller& c, std::string_view in);
  core::Status fired_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> hotplug_store(const core::Caller& c, std::string_view in);

  // Machine snapshots: testdev0, the hotplugged devices (a load adds and
  // removes them as hotplug does), `fired` and the timer at its deadline.
  void save_state(core::StateWriter& w) const;
  core::Status load_state(const core::StateReader& r);

 private:
  core::Env& env_;
  core::Tree& tree_;
  mutable std::mutex hp_mu_;  // Order: leaf; the hotplugged devices by name
  std::map<std::string, std::shared_ptr<TestDevice>> hotplugged_;
  std::shared_ptr<TestDevice> dev0_;
  std::atomic<std::uint64_t> fired_{0};
  core::Timer timer_;
};

}  // namespace vsysfs::testing
