// libFuzzer target: the machine description loader (make fuzz):
// devices::parse_machine_toml on arbitrary text, then Machine::build with
// every device linked in (the test device included). A bad description
// must end in core::ConfigError (or another std::exception, which the
// daemon reports as one line); never a crash, a hang or a leak.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/event_log.hpp"
#include "core/lock_service.hpp"
#include "core/tree.hpp"
#include "devices/machine/machine.hpp"

using namespace vsysfs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  core::ManualClock clock;
  core::EventLog events{clock};
  core::Env env{clock, events};
  core::Tree tree;
  core::LockService locks{env};
  try {
    auto desc = devices::parse_machine_toml(text, "<fuzz>");
    devices::Machine machine{env, tree, &clock, locks};
    machine.build(desc);
    machine.shutdown(devices::RebootCode::PowerOff);
  } catch (const std::exception&) {
  }
  return 0;
}
