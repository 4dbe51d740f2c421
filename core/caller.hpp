#pragma once

// Caller: who is asking (the process behind a FUSE request): pid, uid, gid,
// and, each fetched lazily on first use, its effective capabilities
// (capget(2) on the pid: one syscall, no /proc text), its command name
// (/proc/PID/comm) and its scheduling priority (/proc/PID/stat, only the
// lock service asks). Devices ask `caller.capable(Capability::SysAdmin)`
// the way a driver calls capable(CAP_SYS_ADMIN).
//
// Who has capabilities: the kernel's capable() checks against the initial
// user namespace, so a process counts only with the capabilities it holds
// in the daemon's user namespace or an ancestor of it (a caller inside
// `unshare -U` has none of this machine's), and a caller the daemon cannot
// identify (pid 0: FUSE's answer for a process in a PID namespace the
// daemon cannot see) has none at all.
//
// A daemon run by a user (not root) is that user's machine, the way a user
// namespace its creator owns is (docs/permissions.md): set_machine_owner()
// names that user, U, once at startup. Then the kernel's rules for a user
// namespace owned by U apply (security/commoncap.c cap_capable): U itself,
// in the daemon's user namespace, has every capability ("the owner of the
// user namespace in the parent user namespace has all caps"); a process in
// a user namespace U created below the daemon's (`unshare -r`, nested ones
// too) has the capabilities it holds there, so dropping one there (capsh
// --drop) is how U tests an unprivileged caller; anyone else has only what
// they hold in the daemon's namespace or an ancestor, as before. Without a
// machine owner (a root daemon) only that last rule applies.
//
// Why lazily and separately: a store is one FUSE round trip, and reading
// /proc/PID/status plus /proc/PID/stat on each one cost more than the round
// trip itself (the store row of docs/performance.md). A store pays only for what its device
// and the event log ask. The daemon keeps /proc/PID and /proc/PID/comm of
// the most recent callers open (core/caller.cpp ProcHandles, one leaf
// mutex): comm and the user namespace are still read on every request,
// without a /proc path lookup; a descriptor stands for the process, so a
// reused pid finds the new one.
//
// Interruption: the fs layer may attach a check that says whether the
// request was interrupted (the writer got a signal: FUSE_INTERRUPT). A store
// that can run long (the manual clock's advance) polls interrupted()
// between steps and gives up with EINTR, like a driver that checks
// signal_pending() in a loop; what it did apply it names with applied_as(),
// as the bytes of a store that does exactly that, so the state journal can
// record the change that really happened (fs/server.cpp).
//
// Thread-safety: a Caller belongs to one request; the lazy fields and the
// applied-part slot are used by that request's thread only; the interrupt
// check may be called from it at any time (it is the fs layer's job to make
// that check thread-safe).

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace vsysfs::core {

// Linux capability numbers (include/uapi/linux/capability.h).
enum class Capability : unsigned {
  DacOverride = 1,
  NetAdmin = 12,
  SysRawio = 17,
  SysAdmin = 21,
  SysNice = 23,
};

class Caller {
 public:
  // A request from process `pid` with credentials uid/gid; details come
  // from /proc on demand.
  Caller(pid_t pid, uid_t uid, gid_t gid) : pid_(pid), uid_(uid), gid_(gid) {}

  // Fully specified callers for unit tests and for the simulation itself.
  static Caller root();                    // pid 1, all capabilities, "test"
  static Caller user(uid_t uid);           // no capabilities
  static Caller with_caps(uid_t uid, std::uint64_t cap_mask, std::string comm = "test");
  static Caller kernel();                  // the simulated kernel (timers, workers): pid 0
  // Who a past request came from, for the event log: no capabilities.
  static Caller described(pid_t pid, uid_t uid, std::string comm);

  pid_t pid() const { return pid_; }
  uid_t uid() const { return uid_; }
  gid_t gid() const { return gid_; }

  bool capable(Capability cap) const;
  // The machine's owner when the daemon runs as a user (see above): set
  // once, before the first request; never for a root daemon.
  static void set_machine_owner(uid_t uid);
  const std::string& comm() const;
  // Kernel numeric priority: 0..99 real-time (99 - rt_priority), 100..139
  // normal (120 + nice). 120 when the process is gone.
  int prio() const;

  // Interruption (see above). `check(arg)` must stay callable while the
  // request runs; no check attached: never interrupted.
  using InterruptCheck = bool (*)(void* arg);
  void set_interrupt_check(InterruptCheck check, void* arg) {
    interrupt_check_ = check;
    interrupt_arg_ = arg;
  }
  bool interrupted() const { return interrupt_check_ && interrupt_check_(interrupt_arg_); }
  // A store cut short (EINTR) that changed state: the bytes of an equivalent
  // complete store. Empty optional: the store applied nothing.
  void applied_as(std::string bytes) const { applied_ = std::move(bytes); }
  const std::optional<std::string>& applied() const { return applied_; }

  // How the state journal (-o state=FILE, fs/server.cpp) keeps a store
  // that succeeded. Record (the default): the store is appended and
  // replayed at the next mount. Skip: the store changed nothing the
  // machine keeps (a snapshot written to a file), so replaying it would
  // only repeat a side effect outside the machine. Base: no record could
  // replay it (its effect came from outside the machine: a snapshot file
  // loaded), so the journal is compacted into a new base that holds the
  // effect instead (docs/state.md "Compaction").
  enum class Journal { Record, Skip, Base };
  void journal_as(Journal how) const { journal_ = how; }
  Journal journal() const { return journal_; }

 private:
  pid_t pid_;
  uid_t uid_;
  gid_t gid_;
  mutable std::optional<std::uint64_t> cap_effective_;
  mutable std::optional<std::string> comm_;
  mutable std::optional<int> prio_;
  InterruptCheck interrupt_check_ = nullptr;
  void* interrupt_arg_ = nullptr;
  mutable std::optional<std::string> applied_;
  mutable Journal journal_ = Journal::Record;
};

}  // namespace vsysfs::core
