#include "core/caller_file.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "core/trusted_file.hpp"

namespace vsysfs::core {
namespace {

// The caller's supplementary groups (/proc/PID/status "Groups:", shown in
// the reader's user namespace, which is the daemon's). None for a caller
// the daemon cannot see (pid 0) or that is gone: only its primary gid.
std::vector<gid_t> caller_groups(const Caller& caller) {
  std::vector<gid_t> out;
  if (caller.pid() <= 0) return out;
  std::ifstream status(fmt::format("/proc/{}/status", caller.pid()));
  std::string line;
  while (std::getline(status, line)) {
    if (!line.starts_with("Groups:")) continue;
    std::istringstream in(line.substr(7));
    long g;
    while (in >> g)
      if (g >= 0 && g <= static_cast<long>(UINT32_MAX - 1)) out.push_back(static_cast<gid_t>(g));
    break;
  }
  return out;
}

// The calling thread's effective capabilities (capget/capset on tid 0:
// the calling thread only).
bool thread_caps(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &hdr, data) == 0;
}
bool set_thread_caps(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

// The caller's identity on this thread while it lives (see the header).
class AsCaller {
 public:
  explicit AsCaller(const Caller& caller) {
    const uid_t euid = ::geteuid();
    if (euid != 0) {
      // A user's daemon: only the user's own callers, as the daemon.
      if (caller.uid() != euid) status_ = Errno{EACCES};
      return;
    }
    const int n = ::getgroups(0, nullptr);
    if (n < 0) {
      status_ = Errno{EIO};
      return;
    }
    old_groups_.resize(static_cast<std::size_t>(n));
    if (n > 0 && ::getgroups(n, old_groups_.data()) != n) {
      status_ = Errno{EIO};
      return;
    }
    old_fsuid_ = static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1)));
    old_fsgid_ = static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1)));
    const auto groups = caller_groups(caller);
    switched_ = true;
    if (::syscall(SYS_setgroups, groups.size(), groups.data()) != 0) {
      status_ = Errno{EACCES};
      return;
    }
    ::setfsgid(caller.gid());
    ::setfsuid(caller.uid());
    // setfsuid/setfsgid report no error: read the values back.
    if (static_cast<uid_t>(::setfsuid(static_cast<uid_t>(-1))) != caller.uid() ||
        static_cast<gid_t>(::setfsgid(static_cast<gid_t>(-1))) != caller.gid()) {
      status_ = Errno{EACCES};
      return;
    }
    if (caller.uid() == 0 && !caller.capable(Capability::DacOverride)) {
      // uid 0 keeps the filesystem capabilities: drop the ones that
      // bypass permission checks, as the caller has none of them.
      if (!thread_caps(old_caps_)) {
        status_ = Errno{EACCES};
        return;
      }
      __user_cap_data_struct caps[2] = {old_caps_[0], old_caps_[1]};
      constexpr std::uint32_t kDrop =
          (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH) | (1u << CAP_FOWNER);
      caps[0].effective &= ~kDrop;
      caps_dropped_ = true;
      if (!set_thread_caps(caps)) status_ = Errno{EACCES};
    }
  }
  ~AsCaller() {
    if (!switched_) return;
    if (caps_dropped_) (void)set_thread_caps(old_caps_);
    ::setfsuid(old_fsuid_);
    ::setfsgid(old_fsgid_);
    (void)::syscall(SYS_setgroups, old_groups_.size(), old_groups_.data());
  }
  AsCaller(const AsCaller&) = delete;
  AsCaller& operator=(const AsCaller&) = delete;

  const Status& status() const { return status_; }

 private:
  Status status_;
  bool switched_ = false;
  bool caps_dropped_ = false;
  uid_t old_fsuid_ = 0;
  gid_t old_fsgid_ = 0;
  std::vector<gid_t> old_groups_;
  __user_cap_data_struct old_caps_[2]{};
};

Status check_path(const std::string& path) {
  if (path.empty() || path.front() != '/') return Errno{EINVAL};
  if (path.size() >= PATH_MAX) return Errno{ENAMETOOLONG};
  if (path.find('\0') != std::string::npos) return Errno{EINVAL};
  if (path.back() == '/') return Errno{EISDIR};
  return {};
}

std::string temp_name(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t n = counter.fetch_add(1) ^ (static_cast<std::uint64_t>(::getpid()) << 20);
  return fmt::format("{}.tmp-{:06x}", path, n & 0xffffff);
}

}  // namespace

Result<std::string> read_file_as(const Caller& caller, const std::string& path,
                                 std::uint64_t max_bytes) {
  VSYSFS_TRY_STATUS(check_path(path));
  int fd;
  {
    AsCaller as(caller);
    VSYSFS_TRY_STATUS(as.status());
    fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return Errno{errno};
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Errno{e};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Errno{S_ISDIR(st.st_mode) ? EISDIR : EINVAL};
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return Errno{EFBIG};
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return Errno{e};
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {  // grew meanwhile
      ::close(fd);
      return Errno{EFBIG};
    }
  }
  ::close(fd);
  return out;
}

Status write_file_as(const Caller& caller, const std::string& path, std::string_view data) {
  VSYSFS_TRY_STATUS(check_path(path));
  AsCaller as(caller);
  VSYSFS_TRY_STATUS(as.status());
  const std::string tmp = temp_name(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Errno{errno == EEXIST ? EAGAIN : errno};
  auto fail = [&](int e) -> Status {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Errno{e ? e : EIO};
  };
  if (!write_all(fd, data) || ::fsync(fd) != 0) return fail(errno);
  // A directory at PATH: rename(2) would say EISDIR too; say it before.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return fail(EISDIR);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno);
  ::close(fd);
  // The rename is durable once the directory is.
  const std::string dir = path.substr(0, std::max<std::size_t>(path.rfind('/'), 1));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const bool ok = ::fsync(dfd) == 0;
    ::close(dfd);
    if (!ok) return Errno{EIO};
  }
  return {};
}

}  // namespace vsysfs::core
