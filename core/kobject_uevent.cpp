#include "core/kobject_uevent.hpp"

#include <atomic>
#include <cerrno>

#include <fmt/format.h>

namespace vsysfs::core {
namespace {

// lib/kobject_uevent.c kobject_actions[], indexed by KobjAction.
constexpr std::string_view kActions[] = {"add",    "remove",  "change", "move",
                                         "online", "offline", "bind",   "unbind"};
constexpr std::size_t kUuidStringLen = 36;  // UUID_STRING_LEN

// lib/kobject_uevent.c uevent_seqnum.
std::atomic<std::uint64_t> g_uevent_seqnum{0};

// The byte at `i` of the kernel's buffer: sysfs NUL-terminates it at count.
char at(std::string_view buf, std::size_t i) { return i < buf.size() ? buf[i] : '\0'; }

bool isalnum_c(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool isxdigit_c(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// One trailing '\n' or NUL is not part of the input.
std::size_t trim_count(std::string_view buf, std::size_t count) {
  if (count && (buf[count - 1] == '\n' || buf[count - 1] == '\0')) --count;
  return count;
}

// lib/string.c strncmp(name, buf, n) == 0 && name[n] == '\0', where name
// is an action (NUL-terminated) and buf the user's bytes.
bool action_matches(std::string_view name, std::string_view buf, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const char c1 = at(name, i);
    if (c1 != at(buf, i)) return false;
    if (c1 == '\0') {
      // Equal through the action's NUL: the kernel then tests name[n],
      // past the string (see the header's QUIRK); never NUL here.
      return false;
    }
  }
  return at(name, n) == '\0';
}

// lib/kobject_uevent.c kobject_action_type: the action and where the
// arguments start (npos: none).
Result<KobjAction> kobject_action_type(std::string_view buf, std::size_t* args) {
  const std::size_t count = trim_count(buf, buf.size());
  if (!count) return Errno{EINVAL};
  // strnchr(buf, count, ' '): stops at the first NUL.
  std::size_t space = std::string_view::npos;
  for (std::size_t i = 0; i < count && buf[i] != '\0'; ++i) {
    if (buf[i] == ' ') {
      space = i;
      break;
    }
  }
  const std::size_t count_first = space == std::string_view::npos ? count : space;
  for (std::size_t a = 0; a < std::size(kActions); ++a) {
    if (!action_matches(kActions[a], buf, count_first)) continue;
    *args = space == std::string_view::npos ? std::string_view::npos : space + 1;
    return static_cast<KobjAction>(a);
  }
  return Errno{EINVAL};
}

// lib/uuid.c uuid_is_valid: 8-4-4-4-12 hex digits.
bool uuid_is_valid(std::string_view s) {
  for (std::size_t i = 0; i < kUuidStringLen; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (at(s, i) != '-') return false;
    } else if (!isxdigit_c(at(s, i))) {
      return false;
    }
  }
  return true;
}

// action_arg_word_end: the end of a non-empty run of alphanumerics that
// stops at `delim` or at the end (npos: a non-alphanumeric, or empty).
std::size_t arg_word_end(std::string_view s, std::size_t from, std::size_t end, char delim) {
  std::size_t next = from;
  while (next < end && s[next] != delim)
    if (!isalnum_c(s[next++])) return std::string_view::npos;
  return next == from ? std::string_view::npos : next;
}

// lib/kobject_uevent.c kobject_action_args: every failure is EINVAL,
// add_uevent_var's ENOMEM included.
Result<KobjUeventEnv> kobject_action_args(std::string_view buf) {
  const std::size_t count = trim_count(buf, buf.size());
  if (!count) return Errno{EINVAL};
  KobjUeventEnv env;
  if (count < kUuidStringLen || !uuid_is_valid(buf) ||
      !env.add(fmt::format("SYNTH_UUID={}", buf.substr(0, kUuidStringLen))))
    return Errno{EINVAL};
  std::size_t next = kUuidStringLen;
  while (next < count) {
    if (buf[next] != ' ') return Errno{EINVAL};
    const std::size_t key = ++next;  // a key must follow the ' '
    if (key >= count) return Errno{EINVAL};
    next = arg_word_end(buf, key, count, '=');
    if (next == std::string_view::npos || next >= count) return Errno{EINVAL};
    const std::size_t value = ++next;  // a value must follow the '='
    if (value >= count) return Errno{EINVAL};
    next = arg_word_end(buf, value, count, ' ');
    if (next == std::string_view::npos) return Errno{EINVAL};
    if (!env.add(fmt::format("SYNTH_ARG_{}={}", buf.substr(key, value - 1 - key),
                             buf.substr(value, next - value))))
      return Errno{EINVAL};
  }
  return env;
}

std::string_view kobject_name(std::string_view devpath) {
  const auto slash = devpath.rfind('/');
  return slash == std::string_view::npos ? devpath : devpath.substr(slash + 1);
}

}  // namespace

std::string_view kobject_action_name(KobjAction a) { return kActions[static_cast<std::size_t>(a)]; }

// include/linux/kobject.h add_uevent_var: the variable and its NUL must
// fit in what is left of the buffer, and there must be a free slot.
Status KobjUeventEnv::add(std::string_view var) {
  if (vars_.size() >= kUeventNumEnvp) return Errno{ENOMEM};
  if (var.size() >= kUeventBufferSize - buflen_) return Errno{ENOMEM};
  vars_.emplace_back(var);
  buflen_ += var.size() + 1;
  return {};
}

void KobjUeventEnv::zap_modalias() {
  for (auto it = vars_.begin(); it != vars_.end();) {
    if (std::string_view(*it).starts_with("MODALIAS=")) {
      buflen_ -= it->size() + 1;
      it = vars_.erase(it);
    } else {
      ++it;
    }
  }
}

Result<SynthUevent> kobject_synth_parse(std::string_view buf) {
  std::size_t args = std::string_view::npos;
  const KobjAction action = VSYSFS_TRY(kobject_action_type(buf, &args));
  if (args == std::string_view::npos) return SynthUevent{action, {"SYNTH_UUID=0"}};
  // The arguments run to the original count: kobject_action_args trims
  // the trailing '\n' or NUL itself.
  const KobjUeventEnv env = VSYSFS_TRY(kobject_action_args(buf.substr(args)));
  return SynthUevent{action, env.vars()};
}

Result<std::size_t> uevent_store(Env& env, const Caller& caller, const UeventKobject& kobj,
                                 std::string_view in) {
  const std::string_view who = kobject_name(kobj.devpath);
  // pr_warn("synth uevent: %s: %s\n") and dev_err(..., "%d\n", rc).
  auto fail = [&](Errno e, std::string_view msg) -> Result<std::size_t> {
    env.log(&caller, who, "uevent", e.name(),
            {{"message", fmt::format("synth uevent: {}: {}", kobj.devpath, msg)}});
    return e;
  };
  std::size_t args = std::string_view::npos;
  const auto action = kobject_action_type(in, &args);
  if (!action) return fail(action.error(), "unknown uevent action string");
  const auto synth = kobject_synth_parse(in);
  if (!synth) return fail(synth.error(), "incorrect uevent action arguments");

  // kobject_uevent_env: the default keys, the synthetic ones, the kset's
  // (dev_uevent: what the uevent file shows), then SEQNUM; any of them
  // not fitting is ENOMEM.
  KobjUeventEnv ev;
  auto build = [&]() -> Status {
    VSYSFS_TRY_STATUS(ev.add(fmt::format("ACTION={}", kobject_action_name(*action))));
    VSYSFS_TRY_STATUS(ev.add(fmt::format("DEVPATH={}", kobj.devpath)));
    VSYSFS_TRY_STATUS(ev.add(fmt::format("SUBSYSTEM={}", kobj.subsystem)));
    for (const auto& v : synth->envp) VSYSFS_TRY_STATUS(ev.add(v));
    std::string_view vars = kobj.vars;
    while (!vars.empty()) {
      const auto nl = vars.find('\n');
      VSYSFS_TRY_STATUS(ev.add(vars.substr(0, nl)));
      vars = nl == std::string_view::npos ? std::string_view{} : vars.substr(nl + 1);
    }
    if (*action == KobjAction::Unbind) ev.zap_modalias();
    return ev.add(fmt::format("SEQNUM={}", ++g_uevent_seqnum));
  };
  if (auto st = build(); !st) return fail(st.error(), "failed to send uevent");

  std::string joined;
  for (const auto& v : ev.vars()) {
    if (!joined.empty()) joined.push_back(' ');
    joined += v;
  }
  env.log(&caller, who, "uevent", "OK",
          {{"action", kobject_action_name(*action)}, {"env", joined}});
  return in.size();
}

void kobject_uevent(Env& env, const Caller* caller, const UeventKobject& kobj, KobjAction action) {
  KobjUeventEnv ev;
  (void)ev.add(fmt::format("ACTION={}", kobject_action_name(action)));
  (void)ev.add(fmt::format("DEVPATH={}", kobj.devpath));
  (void)ev.add(fmt::format("SUBSYSTEM={}", kobj.subsystem));
  std::string_view vars = kobj.vars;
  while (!vars.empty()) {
    const auto nl = vars.find('\n');
    if (nl != 0) (void)ev.add(vars.substr(0, nl));
    vars = nl == std::string_view::npos ? std::string_view{} : vars.substr(nl + 1);
  }
  if (action == KobjAction::Unbind) ev.zap_modalias();
  (void)ev.add(fmt::format("SEQNUM={}", ++g_uevent_seqnum));
  std::string joined;
  for (const auto& v : ev.vars()) {
    if (!joined.empty()) joined.push_back(' ');
    joined += v;
  }
  env.log(caller, kobject_name(kobj.devpath), "uevent", "OK",
          {{"action", kobject_action_name(action)}, {"env", joined}});
}

}  // namespace vsysfs::core
