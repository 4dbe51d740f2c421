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

#include "core/locks.hpp"

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

// ProcHandles: open descriptors on /proc/PID/comm and on the symbolic link
// /proc/PID/ns/user itself (O_PATH | O_NOFOLLOW) of the most recent
// callers, so that a store does not pay a /proc path lookup for the
// caller's command name and user namespace each time (measured:
// open+read+close of /proc/PID/comm 2.8 us against 0.7 us for a pread on
// an open descriptor; stat of /proc/PID/ns/user 4.8 us against 1.5 us for
// readlinkat of "ns/user" under an open /proc/PID, and that again against
// readlinkat(fd, "") on the link's own descriptor, which skips the walk
// of "ns" and "user": 2.3-3.2 us against 1.7-2.6 us a call in a loop;
// docs/performance.md).
//
// Never stale, also when a pid is reused: a descriptor under /proc/PID
// stands for the process (its struct pid), not for the number. Once that
// process is gone, a read through it fails (ESRCH), and the link's
// readlink fails too (EACCES: fs/proc/namespaces.c proc_ns_readlink finds
// no task behind the inode's pid) (fs/proc/base.c get_proc_task), even
// after the number names another process; then the entry is opened again
// by path, which finds the process that has the number now. Nothing read
// is kept: comm is read afresh on every use (a pread from offset 0 re-runs
// comm_show: fs/seq_file.c seq_read_iter), so prctl(PR_SET_NAME), a write
// to /proc/PID/comm and exec show at once; the link's descriptor is the
// link, not the namespace it names (O_NOFOLLOW: it was never followed),
// and its readlink names the task's user namespace at the time of the call
// (proc_ns_readlink -> ns_get_name -> userns_get reads the task's current
// credentials), so unshare and setns show at once too.
//
// Thread-safety: mu_ is a leaf; the descriptors are used under it, so an
// entry cannot be closed under a reader.
class ProcHandles {
 public:
  // Never destroyed: request threads may still ask while the daemon exits.
  static ProcHandles& instance() {
    static ProcHandles* const handles = new ProcHandles;
    return *handles;
  }

  // Reads /proc/PID/comm into buf; returns its length, 0 when the process
  // is gone or unknown (pid <= 0).
  std::size_t read_comm(pid_t pid, std::span<char> buf) {
    return use(pid, [&](const Entry& e) -> ssize_t {
      return e.comm < 0 ? -1 : ::pread(e.comm, buf.data(), buf.size(), 0);
    });
  }
  // readlink of /proc/PID/ns/user ("user:[INODE]"); 0 when the process is
  // gone or its namespace may not be read.
  std::size_t read_user_ns_link(pid_t pid, std::span<char> buf) {
    return use(pid, [&](const Entry& e) -> ssize_t {
      // An empty path reads the link the descriptor is (readlinkat(2),
      // since 2.6.39): no lookup of "ns" and "user" on every store.
      return e.user_ns < 0 ? -1 : ::readlinkat(e.user_ns, "", buf.data(), buf.size());
    });
  }

 private:
  struct Entry {
    pid_t pid = 0;
    int user_ns = -1;  // the link /proc/PID/ns/user (O_PATH | O_NOFOLLOW), or -1
    int comm = -1;     // /proc/PID/comm, or -1 when it could not be opened
    std::uint64_t last_use = 0;
  };
  static constexpr std::size_t kEntries = 16;  // callers storing at the same time

  static void close_entry(Entry& e) {
    if (e.comm >= 0) ::close(e.comm);
    if (e.user_ns >= 0) ::close(e.user_ns);
    e = Entry{};
  }

  // Runs op on pid's entry; when it fails, on a freshly opened one (the
  // process behind the cached one may be gone and the number reused).
  template <typename Op>
  std::size_t use(pid_t pid, Op op) {
    if (pid <= 0) return 0;
    MutexLock lock(mu_);
    Entry* e = nullptr;
    for (auto& c : entries_)
      if (c.pid == pid && (c.user_ns >= 0 || c.comm >= 0)) e = &c;
    if (e) {
      e->last_use = ++tick_;
      const ssize_t n = op(*e);
      if (n > 0) return static_cast<std::size_t>(n);
      close_entry(*e);
    } else {
      e = &*std::min_element(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
        return a.last_use < b.last_use;
      });
      close_entry(*e);
    }
    std::array<char, 48> path{};
    if (fmt_proc_path(path, pid, "") == 0) return 0;
    const int dir = ::open(path.data(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return 0;
    *e = Entry{pid, ::openat(dir, "ns/user", O_PATH | O_NOFOLLOW | O_CLOEXEC),
               ::openat(dir, "comm", O_RDONLY | O_CLOEXEC), ++tick_};
    ::close(dir);
    const ssize_t n = op(*e);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  Mutex mu_{"caller.proc_handles"};  // Order: leaf
  std::array<Entry, kEntries> entries_ GUARDED_BY(mu_){};
  std::uint64_t tick_ GUARDED_BY(mu_) = 0;
};

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
//
// The namespace is read as the link's text, "user:[INODE]" (fs/nsfs.c
// ns_get_name), not with stat(2), which instantiates the nsfs dentry on
// every call (3x the cost). The inode alone names it: every namespace
// lives in the one nsfs superblock, so the device is the chain's.
std::optional<ino_t> user_ns_inode(pid_t pid) {
  std::array<char, 64> buf{};
  const std::size_t n = ProcHandles::instance().read_user_ns_link(pid, buf);
  const std::string_view link(buf.data(), n);
  constexpr std::string_view kPrefix = "user:[";
  if (!link.starts_with(kPrefix) || !link.ends_with(']')) return std::nullopt;
  const std::string_view digits = link.substr(kPrefix.size(), link.size() - kPrefix.size() - 1);
  ino_t ino = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ino);
  if (ec != std::errc{} || p != digits.data() + digits.size()) return std::nullopt;
  return ino;
}

bool in_trusted_user_ns(pid_t pid) {
  const auto& chain = own_user_ns_chain();
  if (chain.empty()) return false;
  const auto ino = user_ns_inode(pid);
  if (!ino) return false;
  return std::any_of(chain.begin(), chain.end(),
                     [&](const NsId& id) { return id.dev == chain.front().dev && id.ino == *ino; });
}

// Whether process `pid` is in the daemon's own user namespace.
bool in_own_user_ns(pid_t pid) {
  const auto& chain = own_user_ns_chain();
  if (chain.empty()) return false;
  const auto ino = user_ns_inode(pid);
  return ino && *ino == chain.front().ino;
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
    // capget is the cheaper check (0.4-0.6 us against 1.7-2.6 us for the
    // namespace link: docs/performance.md) and decides alone when the
    // process holds no capability in its own namespace, which is true of
    // every caller except the machine's owner in its namespace (every
    // capability whatever capget says). Read first, it is also the
    // stricter order for a process that unshares meanwhile: its sets,
    // then its namespace, both of this machine's or no capability.
    const bool owner_caller = user_machine && uid_ == owner;
    std::optional<std::uint64_t> caps;  // capget's answer, read once
    if (pid_ > 0 && !owner_caller) caps = effective_caps(pid_);
    const auto sets = [&] {
      if (!caps) caps = effective_caps(pid_);
      return *caps;
    };
    if (pid_ <= 0 || caps == std::uint64_t{0}) {
      // Unidentified, or nothing to grant in any namespace.
    } else if (in_trusted_user_ns(pid_)) {
      // cap_capable's owner rule: the machine's owner, in the namespace
      // the machine's belongs to, has every capability in it. Checked in
      // the daemon's own namespace only (an ancestor's uid U is another
      // user).
      cap_effective_ = owner_caller && in_own_user_ns(pid_) ? kAllCaps : sets();
    } else if (user_machine && in_owned_user_ns(pid_, owner)) {
      cap_effective_ = sets();
    }
  }
  return (*cap_effective_ >> static_cast<unsigned>(cap)) & 1U;
}

const std::string& Caller::comm() const {
  if (!comm_) {
    std::array<char, 64> buf{};
    std::size_t n = ProcHandles::instance().read_comm(pid_, buf);
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
