#pragma once

// The synthetic uevent every `uevent` file takes on write
// (lib/kobject_uevent.c kobject_synth_uevent, kobject_action_type,
// kobject_action_args, kobject_uevent_env; drivers/base/core.c
// uevent_store, drivers/base/bus.c bus_uevent_store): one parser and one
// store for all devices.
//
// Grammar (count-based; one trailing '\n' or NUL is not part of it):
//   ACTION                      -> the event, with SYNTH_UUID=0
//   ACTION UUID[ KEY=VALUE]...  -> SYNTH_UUID=UUID, SYNTH_ARG_KEY=VALUE
// ACTION is one of add remove change move online offline bind unbind;
// UUID is 8-4-4-4-12 hex digits; KEY and VALUE are non-empty runs of
// [0-9A-Za-z], one space before each pair. Anything else is EINVAL
// ("unknown uevent action string" / "incorrect uevent action arguments").
//
// QUIRKs, all the kernel's:
//   - "add " (a space and nothing after it) is EINVAL: the space starts
//     arguments and there are none.
//   - '_' is not alphanumeric, so KEY=VALUE cannot be MY_KEY=x.
//   - more than 63 arguments, or arguments past the 2048-byte uevent
//     buffer, are EINVAL (add_uevent_var fails inside
//     kobject_action_args, whose error is always -EINVAL); fewer that
//     still do not fit beside ACTION/DEVPATH/SUBSYSTEM, the device's own
//     variables and SEQNUM are ENOMEM (kobject_uevent_env).
//   - the action word is matched with strncmp(), which stops at a NUL:
//     "add\0\n" makes the kernel read kobject_actions[0][4], past the
//     string; we treat that byte as not NUL (EINVAL).
//
// The store returns the count on success and the error otherwise (since
// 4.20, commit df44b479654f; it used to log and return the count).
//
// Thread-safety: parsing is pure; the sequence number is an atomic
// (uevent_seqnum), the log is the Env's.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/caller.hpp"
#include "core/env.hpp"
#include "core/page_buffer.hpp"
#include "core/result.hpp"

namespace vsysfs::core {

// include/linux/kobject.h enum kobject_action, in lib/kobject_uevent.c
// kobject_actions[] order.
enum class KobjAction : std::uint8_t { Add, Remove, Change, Move, Online, Offline, Bind, Unbind };
std::string_view kobject_action_name(KobjAction a);

// include/linux/kobject.h
inline constexpr std::size_t kUeventNumEnvp = 64;       // UEVENT_NUM_ENVP
inline constexpr std::size_t kUeventBufferSize = 2048;  // UEVENT_BUFFER_SIZE

// struct kobj_uevent_env: at most kUeventNumEnvp variables in
// kUeventBufferSize bytes (each with its NUL).
class KobjUeventEnv {
 public:
  // add_uevent_var(): ENOMEM when the variable does not fit.
  Status add(std::string_view var);
  const std::vector<std::string>& vars() const { return vars_; }
  // zap_modalias_env(): drops MODALIAS= (an unbind event).
  void zap_modalias();

 private:
  std::vector<std::string> vars_;
  std::size_t buflen_ = 0;
};

// kobject_action_type + kobject_action_args: the action and the synthetic
// variables ("SYNTH_UUID=0" when there are no arguments).
struct SynthUevent {
  KobjAction action;
  std::vector<std::string> envp;
};
Result<SynthUevent> kobject_synth_parse(std::string_view buf);

// What kobject_uevent_env needs to know of the kobject.
struct UeventKobject {
  std::string_view devpath;    // kobject_get_path(): "/devices/platform/dcdbas"
  std::string_view subsystem;  // the bus or class name; "bus" for a bus's own kobject
  std::string_view vars;       // the kset's uevent variables, "KEY=value\n" each
                               // (what the uevent file shows)
};

// drivers/base/core.c uevent_show of a device whose type, bus and class
// add no variables (no devt, no driver): an empty file.
template <typename Dev>
Status uevent_show_empty(const Dev&, PageBuffer&) {
  return {};
}

// drivers/base/core.c uevent_store -> kobject_synth_uevent: the count, or
// EINVAL / ENOMEM. Logs the event under the kobject's name ("uevent", OK
// with action, seqnum and env) or the kernel's warning on failure.
// Locking: none. Context: process.
Result<std::size_t> uevent_store(Env& env, const Caller& caller, const UeventKobject& kobj,
                                 std::string_view in);

// kobject_uevent(kobj, action) as the driver core sends it (device_add,
// device_del, driver_bound, __device_release_driver): ACTION, DEVPATH,
// SUBSYSTEM, the kset's variables (MODALIAS dropped for unbind), SEQNUM;
// logged under the kobject's name as "uevent" with the action and env.
// `caller` is the process whose write caused it (nullptr: the machine).
// Locking: none. Context: process.
void kobject_uevent(Env& env, const Caller* caller, const UeventKobject& kobj, KobjAction action);

}  // namespace vsysfs::core
