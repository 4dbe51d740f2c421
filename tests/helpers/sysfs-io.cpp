// sysfs-io: the syscalls shell tools cannot express, for the bats suites.
// Prints results as words so tests compare strings:
//   sysfs-io write FILE DATA [OFFSET]     -> count written, or errno name
//   sysfs-io writehex FILE HEX [OFFSET]   -> same, data given as hex bytes
//   sysfs-io writelen FILE LEN            -> one write(2) of LEN bytes of '1'
//   sysfs-io open FILE r|w|rw|creat|trunc -> OK or errno name
//   sysfs-io read FILE SIZE OFFSET        -> the bytes (one pread)
//   sysfs-io readtwice FILE               -> read at 0, then pread at 0 again; prints both
//   sysfs-io readsplit FILE N             -> reads N bytes at a time until EOF; prints all
//   sysfs-io poll FILE TIMEOUT_MS         -> read, print READY, poll for POLLPRI: PRI or TIMEOUT
//   sysfs-io flock FILE sh|ex|un [nb] [HOLD_MS] -> OK or errno name; holds HOLD_MS
//   sysfs-io syscall OP PATH              -> OK or errno name; OP is mkdir, rmdir,
//                                            unlink, rename, mknod, symlink, link, creat
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/result.hpp"

namespace {

int fail(int e) {
  std::printf("%s\n", std::string(vsysfs::core::errno_name(e)).c_str());
  return 0;
}

std::string from_hex(const char* hex) {
  std::string out;
  for (std::size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
    char b[3] = {hex[i], hex[i + 1], 0};
    out.push_back(static_cast<char>(std::strtoul(b, nullptr, 16)));
  }
  return out;
}

int open_flags(const std::string& m) {
  if (m == "w") return O_WRONLY;
  if (m == "rw") return O_RDWR;
  if (m == "creat") return O_RDWR | O_CREAT;
  if (m == "trunc") return O_RDWR | O_CREAT | O_TRUNC;
  return O_RDONLY;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: see the comment at the top of tests/helpers/sysfs-io.cpp\n");
    return 2;
  }
  const std::string cmd = argv[1];
  const char* path = argv[2];
  if ((cmd == "write" || cmd == "writehex" || cmd == "writelen") && argc > 3) {
    const std::string data = cmd == "writehex"   ? from_hex(argv[3])
                             : cmd == "writelen" ? std::string(std::strtoul(argv[3], nullptr, 10), '1')
                                                 : std::string(argv[3]);
    int fd = open(path, O_WRONLY);
    if (fd < 0) return fail(errno);
    const off_t off = argc > 4 ? std::strtoll(argv[4], nullptr, 10) : 0;
    const ssize_t n = pwrite(fd, data.data(), data.size(), off);
    const int e = errno;
    close(fd);
    if (n < 0) return fail(e);
    std::printf("%zd\n", n);
    return 0;
  }
  if (cmd == "open") {
    int fd = open(path, open_flags(argc > 3 ? argv[3] : "r"), 0644);
    if (fd < 0) return fail(errno);
    close(fd);
    std::printf("OK\n");
    return 0;
  }
  if (cmd == "read" && argc > 4) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(errno);
    std::string buf(std::strtoul(argv[3], nullptr, 10), '\0');
    const ssize_t n = pread(fd, buf.data(), buf.size(), std::strtoll(argv[4], nullptr, 10));
    const int e = errno;
    close(fd);
    if (n < 0) return fail(e);
    std::fwrite(buf.data(), 1, n, stdout);
    return 0;
  }
  if (cmd == "readtwice") {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(errno);
    char a[4096], b[4096];
    const ssize_t n1 = read(fd, a, sizeof a);
    const ssize_t n2 = pread(fd, b, sizeof b, 0);
    const int e = errno;
    close(fd);
    if (n1 < 0 || n2 < 0) return fail(e);
    std::fwrite(a, 1, n1, stdout);
    std::fwrite(b, 1, n2, stdout);
    return 0;
  }
  if (cmd == "readsplit" && argc > 3) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(errno);
    const std::size_t step = std::strtoul(argv[3], nullptr, 10);
    std::string buf(step, '\0');
    for (;;) {
      const ssize_t n = read(fd, buf.data(), step);
      if (n < 0) return close(fd), fail(errno);
      if (n == 0) break;
      std::fwrite(buf.data(), 1, n, stdout);
    }
    close(fd);
    return 0;
  }
  if (cmd == "poll" && argc > 3) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(errno);
    char buf[4096];
    if (read(fd, buf, sizeof buf) < 0) return close(fd), fail(errno);
    std::printf("READY\n");
    std::fflush(stdout);
    pollfd p{fd, POLLPRI | POLLERR, 0};
    const int r = poll(&p, 1, std::atoi(argv[3]));
    std::printf(r > 0 && (p.revents & POLLPRI) ? "PRI\n" : r == 0 ? "TIMEOUT\n" : "OTHER\n");
    close(fd);
    return 0;
  }
  if (cmd == "flock" && argc > 3) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) fd = open(path, O_WRONLY);
    if (fd < 0) return fail(errno);
    const std::string how = argv[3];
    int op = how == "sh" ? LOCK_SH : how == "un" ? LOCK_UN : LOCK_EX;
    int argi = 4;
    if (argc > argi && std::string(argv[argi]) == "nb") {
      op |= LOCK_NB;
      ++argi;
    }
    if (flock(fd, op) != 0) return close(fd), fail(errno);
    std::printf("OK\n");
    std::fflush(stdout);
    if (argc > argi) usleep(static_cast<useconds_t>(std::strtoul(argv[argi], nullptr, 10) * 1000));
    close(fd);
    return 0;
  }
  if (cmd == "syscall" && argc > 3) {
    const std::string op = argv[2];
    const char* p = argv[3];
    const std::string other = std::string(p) + ".other";
    int r = op == "mkdir"     ? mkdir(p, 0755)
            : op == "rmdir"   ? rmdir(p)
            : op == "unlink"  ? unlink(p)
            : op == "rename"  ? rename(p, other.c_str())
            : op == "mknod"   ? mknod(p, S_IFREG | 0644, 0)
            : op == "symlink" ? symlink("target", p)
            : op == "link"    ? link(p, other.c_str())
            : op == "creat"   ? open(p, O_CREAT | O_WRONLY, 0644)
                              : -2;
    if (r == -2) return 2;
    if (r < 0) return fail(errno);
    std::printf("OK\n");
    return 0;
  }
  std::fprintf(stderr, "sysfs-io: bad arguments\n");
  return 2;
}
