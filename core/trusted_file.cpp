#include "core/trusted_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace vsysfs::core {

const char* file_type_name(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFIFO: return "FIFO";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFSOCK: return "socket";
    case S_IFLNK: return "symbolic link";
  }
  return "file of unknown type";
}

std::string absolute_keep_last(const std::string& path, const std::string& role) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const std::string last = slash == std::string::npos ? path : path.substr(slash + 1);
  if (last.empty() || last == "." || last == "..")
    throw TrustError(fmt::format("{} {}: not a file name", role, path));
  char resolved[PATH_MAX];
  if (!realpath(dir.c_str(), resolved))
    throw TrustError(fmt::format("{} {}: directory {}: {}", role, path, dir, std::strerror(errno)));
  const std::string d = resolved;
  return d == "/" ? "/" + last : d + "/" + last;
}

std::string untrusted_directory(const std::string& dir) {
  const uid_t me = geteuid();
  std::string d = dir;
  for (;;) {
    struct stat st {};
    if (::stat(d.c_str(), &st) != 0)
      return fmt::format("directory {}: {}", d, std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) return fmt::format("{} is not a directory", d);
    // Its owner can rename or replace anything below it.
    if (st.st_uid != 0 && st.st_uid != me)
      return fmt::format("directory {} is owned by uid {} (neither root nor the daemon's uid {})",
                         d, st.st_uid, me);
    // Without the sticky bit, anyone who may write a directory may rename
    // or remove what it holds (fs/namei.c may_delete, check_sticky).
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
      return fmt::format("directory {} is writable by {} without the sticky bit (mode {:04o})", d,
                         (st.st_mode & S_IWOTH) ? "others" : "its group", st.st_mode & 07777);
    if (d == "/") return {};
    const auto slash = d.rfind('/');
    d = slash == 0 ? "/" : d.substr(0, slash);
  }
}

std::string untrusted_file(const struct stat& st, mode_t forbidden_mode, std::uint64_t max_bytes) {
  if (!S_ISREG(st.st_mode)) return fmt::format("not a regular file (a {})", file_type_name(st.st_mode));
  const uid_t me = geteuid();
  if (st.st_uid != me)
    return fmt::format("owned by uid {}, not by the daemon's uid {}", st.st_uid, me);
  if (st.st_mode & forbidden_mode)
    return fmt::format("mode {:04o} gives group or others access (bits {:04o} must be clear)",
                       st.st_mode & 07777, forbidden_mode);
  // A second name (a hard link planted by someone else) reaches the same
  // data from a place the directory checks never saw.
  if (st.st_nlink != 1) return fmt::format("has {} hard links (expected 1)", st.st_nlink);
  if (max_bytes && static_cast<std::uint64_t>(st.st_size) > max_bytes)
    return fmt::format("{} bytes, over the limit of {} bytes", st.st_size, max_bytes);
  return {};
}

std::string read_regular_file(const std::string& path, std::uint64_t max_bytes,
                              const std::string& role) {
  // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw TrustError(fmt::format("{}: cannot read {}: {}", path, role, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw TrustError(fmt::format("{}: cannot read {}: {}", path, role, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw TrustError(fmt::format("{}: not a regular file (a {})", path, file_type_name(st.st_mode)));
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw TrustError(
        fmt::format("{}: {} bytes, over the limit of {} bytes", path, st.st_size, max_bytes));
  }
  // The size may change under us: read at most one byte past the limit.
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw TrustError(fmt::format("{}: cannot read {}: {}", path, role, std::strerror(e)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      throw TrustError(fmt::format("{}: grew over the limit of {} bytes while being read", path,
                                   max_bytes));
    }
  }
  ::close(fd);
  return out;
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace vsysfs::core
