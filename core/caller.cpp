#include "core/caller.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vsysfs::core {
namespace {

// Writes "/proc/PID<leaf>" NUL-terminated into path; returns its length, 0
// for a pid that names no process the daemon can see (pid <= 0: FUSE
// reports 0 for a caller in a PID namespace the daemon cannot see).
std::size_t fmt_proc_path(std::array<char, 48>& path, pid_t pid, std::string_view leaf) {
  if (pid <= 0 || leaf.size() > 16) return 0;
  auto [end, ec] = std::to_chars(path.data() + 6, path.data() + 24, pid);
  if (ec != std::errc{}) return 0;
  std::string_view("/proc/").copy(path.data(), 6);
  leaf.copy(end, leaf.size());
  end[leaf.size()] = '\0';
  return static_cast<std::size_t>(end - path.data()) + leaf.size();
}

// Reads a small /proc file into buf (raw syscalls: no stream, no heap);
// returns the bytes read, 0 when the process is gone.
std::size_t read_proc(pid_t pid, const char* leaf, std::span<char> buf) {
  std::array<char, 48> path{};
  if (fmt_proc_path(path, pid, leaf) == 0) return 0;
  const int fd = ::open(path.data(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  ::close(fd);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// A namespace is named by the (device, inode) of its nsfs file.
struct NsId {
  dev_t dev;
  ino_t ino;
  bool operator==(const NsId&) const = default;
};

// The daemon's user namespace and every ancestor it can see, innermost
// first. A user namespace's capabilities hold in it and in the namespaces
// it owns, never in its parent (kernel/capability.c ns_capable ->
// cap_capable walks from the target namespace up to the caller's): so a
// caller's capabilities count here only when its user namespace is the
// daemon's or an ancestor of it. NS_GET_PARENT stops with EPERM at the
// edge of what the daemon may see; what lies beyond is an ancestor too,
// but no caller from there can reach a daemon that cannot see it.
const std::vector<NsId>& own_user_ns_chain() {
  static const std::vector<NsId> chain = [] {
    std::vector<NsId> out;
    int fd = ::open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    for (int depth = 0; fd >= 0 && depth < 64; ++depth) {  // user namespaces nest 32 deep
      struct stat st {};
      if (::fstat(fd, &st) != 0) break;
      out.push_back({st.st_dev, st.st_ino});
      const int parent = ::ioctl(fd, NS_GET_PARENT);
      ::close(fd);
      fd = parent;
    }
    if (fd >= 0) ::close(fd);
    return out;
  }();
  return chain;
}

// Whether process `pid` is in the daemon's user namespace or one of its
// ancestors. A process that is gone, or whose namespace cannot be read,
// is not.
bool in_trusted_user_ns(pid_t pid) {
  const auto& chain = own_user_ns_chain();
  if (chain.empty()) return false;
  std::array<char, 48> path{};
  const auto n = fmt_proc_path(path, pid, "/ns/user");
  if (n == 0) return false;
  struct stat st {};
  if (::stat(path.data(), &st) != 0) return false;
  const NsId id{st.st_dev, st.st_ino};
  return std::find(chain.begin(), chain.end(), id) != chain.end();
}

// Whether process `pid` is in the daemon's own user namespace.
bool in_own_user_ns(pid_t pid) {
  const auto& chain = own_user_ns_chain();
  if (chain.empty()) return false;
  std::array<char, 48> path{};
  if (fmt_proc_path(path, pid, "/ns/user") == 0) return false;
  struct stat st {};
  return ::stat(path.data(), &st) == 0 && NsId{st.st_dev, st.st_ino} == chain.front();
}

constexpr std::uint64_t kAllCaps = ~std::uint64_t{0};

// The machine's owner (Caller::set_machine_owner): written once before the
// daemon serves, read by every request thread after.
std::atomic<bool> g_has_machine_owner{false};
std::atomic<uid_t> g_machine_owner{0};

// Whether process `pid` is in a user namespace below the daemon's whose
// every level up to the daemon's was created by `owner` (NS_GET_OWNER_UID
// answers in the daemon's namespace, where the creator's euid is kept:
// kernel/user_namespace.c create_user_ns records cred->euid as owner).
// NS_GET_PARENT refuses (EPERM) a parent outside the daemon's view, so a
// namespace that is not below the daemon's ends the walk with false.
bool in_owned_user_ns(pid_t pid, uid_t owner) {
  const auto& chain = own_user_ns_chain();
  if (chain.empty()) return false;
  std::array<char, 48> path{};
  if (fmt_proc_path(path, pid, "/ns/user") == 0) return false;
  int fd = ::open(path.data(), O_RDONLY | O_CLOEXEC);
  bool owned = false;
  for (int depth = 0; fd >= 0 && depth < 64; ++depth) {  // user namespaces nest 32 deep
    struct stat st {};
    if (::fstat(fd, &st) != 0) break;
    if (NsId{st.st_dev, st.st_ino} == chain.front()) {
      owned = depth > 0;
      break;
    }
    uid_t creator = 0;
    if (::ioctl(fd, NS_GET_OWNER_UID, &creator) != 0 || creator != owner) break;
    const int parent = ::ioctl(fd, NS_GET_PARENT);
    ::close(fd);
    fd = parent;
  }
  if (fd >= 0) ::close(fd);
  return owned;
}

// The effective capabilities of `pid` (capget(2) answers for any pid).
std::uint64_t effective_caps(pid_t pid) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, pid};
  std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
  if (::syscall(SYS_capget, &hdr, data.data()) != 0) return 0;
  return data[0].effective | (std::uint64_t{data[1].effective} << 32);
}

}  // namespace

Caller Caller::root() { return with_caps(0, kAllCaps); }

Caller Caller::user(uid_t uid) { return with_caps(uid, 0); }

Caller Caller::with_caps(uid_t uid, std::uint64_t cap_mask, std::string comm) {
  Caller c{1, uid, uid};
  c.cap_effective_ = cap_mask;
  c.comm_ = std::move(comm);
  c.prio_ = 120;
  return c;
}

Caller Caller::described(pid_t pid, uid_t uid, std::string comm) {
  Caller c = with_caps(uid, 0, std::move(comm));
  c.pid_ = pid;
  return c;
}

Caller Caller::kernel() {
  Caller c = with_caps(0, kAllCaps, "kernel");
  c.pid_ = 0;
  return c;
}

void Caller::set_machine_owner(uid_t uid) {
  g_machine_owner.store(uid);
  g_has_machine_owner.store(true);
}

// capget(2) with another process's pid returns that process's sets. A
// process that is gone has no capabilities; nor has a caller the daemon
// cannot identify: FUSE sends pid 0 for a process in a PID namespace the
// daemon cannot see, and capget(0) would answer with the daemon's own
// sets. Capabilities held in a user namespace below the daemon's (unshare
// -U) are capabilities over that namespace only, not over this machine
// (the kernel's capable() checks against the initial namespace), unless
// the machine is the user's who created that namespace (see the header).
bool Caller::capable(Capability cap) const {
  if (!cap_effective_) {
    cap_effective_ = 0;
    const bool user_machine = g_has_machine_owner.load();
    const uid_t owner = g_machine_owner.load();
    if (pid_ <= 0) {
      // Unidentified: nothing.
    } else if (in_trusted_user_ns(pid_)) {
      // cap_capable's owner rule: the machine's owner, in the namespace
      // the machine's belongs to, has every capability in it. Checked in
      // the daemon's own namespace only (an ancestor's uid U is another
      // user).
      if (user_machine && uid_ == owner && in_own_user_ns(pid_))
        cap_effective_ = kAllCaps;
      else
        cap_effective_ = effective_caps(pid_);
    } else if (user_machine && in_owned_user_ns(pid_, owner)) {
      cap_effective_ = effective_caps(pid_);
    }
  }
  return (*cap_effective_ >> static_cast<unsigned>(cap)) & 1U;
}

const std::string& Caller::comm() const {
  if (!comm_) {
    std::array<char, 64> buf{};
    std::size_t n = read_proc(pid_, "/comm", buf);
    if (n > 0 && buf[n - 1] == '\n') --n;
    comm_.emplace(buf.data(), n);
  }
  return *comm_;
}

// /proc/PID/stat field 18 is the kernel's task_prio(): p->prio - 100, so
// normal tasks read 0..39 (nice -20..19) and RT ones -2..-100.
int Caller::prio() const {
  if (!prio_) {
    prio_ = 120;
    std::array<char, 1024> buf{};
    const std::size_t n = read_proc(pid_, "/stat", buf);
    const std::string_view content(buf.data(), n);
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    const auto close = content.rfind(')');
    if (close == std::string_view::npos) return *prio_;
    std::string_view rest = content.substr(close + 1);
    // After ')': state is field 3; prio is field 18.
    for (int field = 3; field <= 18; ++field) {
      rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
      const auto end = std::min(rest.find(' '), rest.size());
      if (field == 18) {
        int value = 0;
        auto [p, ec] = std::from_chars(rest.data(), rest.data() + end, value);
        if (ec == std::errc{} && p == rest.data() + end) prio_ = value + 100;
      }
      rest.remove_prefix(end);
    }
  }
  return *prio_;
}

}  // namespace vsysfs::core
