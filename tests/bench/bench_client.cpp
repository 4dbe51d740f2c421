// bench-client: the measuring half of `make bench` (docs/performance.md). One
// invocation measures one operation on one file system for about --ms
// milliseconds (after a short warm-up) and prints the cost of one
// operation in nanoseconds (for N threads: wall time / total operations,
// so the figure is the inverse of the aggregate throughput). The driver
// (tests/bench/run-bench) interleaves invocations over the baseline, vsysfs
// and kernel sysfs, round after round, and takes medians.
//
//   bench-client [--ms N] [--threads N] OP PATH [ARG]
//
//   orc PATH        open(O_RDONLY) + read(4096) + close
//   stat PATH       stat()
//   pread PATH      pread(4096, 0) on a descriptor kept open
//   store PATH VAL  pwrite(VAL) on a descriptor kept open (O_WRONLY)
//   readdir DIR     opendir + readdir to the end + closedir
//   lsl DIR         what `ls -l DIR` asks the kernel: readdir, then lstat of
//                   every entry and readlink of every symlink
//   cat PATH        fork+exec of /bin/cat PATH >/dev/null, waited for
//   smi DIR         one SMI transaction as libsmbios does it on the dcdbas
//                   directory DIR: flock(smi_data), write smi_data_buf_size,
//                   write the command to smi_data, write 1 to smi_request,
//                   read smi_data back, unlock
//   hotplug KNOB N  (not timed per op) writes "add benchI" for I in [0,N)
//                   to the test device's hotplug knob; prints total ns
//   advance FILE STEP_MS [TOTAL_MS]
//                   (simulation speed) writes STEP_MS to the manual clock's
//                   advance_ms FILE, one step after the other, until TOTAL_MS
//                   simulated milliseconds have been advanced or, without
//                   TOTAL_MS, until --ms real milliseconds have passed (at
//                   least one step; a step runs every timer due in it before
//                   the write returns); prints "SIM_MS REAL_NS": simulated
//                   milliseconds advanced and real nanoseconds taken
//
// Exit status: 0 with the figure on stdout; 2 with "error: OP PATH: ENAME"
// on stderr when the operation fails (a benchmark of a failing call would
// measure nothing); 1 for bad usage.

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what, int err) {
  std::fprintf(stderr, "error: %s: %s (%s)\n", what.c_str(), strerrorname_np(err) ? strerrorname_np(err) : "?",
               std::strerror(err));
  std::exit(2);
}

// One operation; returns 0 or an errno.
using Op = std::function<int()>;

int do_orc(const char* path) {
  char buf[4096];
  const int fd = open(path, O_RDONLY);
  if (fd < 0) return errno;
  const ssize_t n = read(fd, buf, sizeof buf);
  const int err = n < 0 ? errno : 0;
  close(fd);
  return err;
}

int do_readdir(const char* dir, bool lsl) {
  DIR* d = opendir(dir);
  if (!d) return errno;
  const int dfd = dirfd(d);
  int err = 0;
  while (dirent* e = readdir(d)) {
    if (!lsl) continue;
    struct stat st;
    if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      err = errno;
      break;
    }
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      if (readlinkat(dfd, e->d_name, target, sizeof target) < 0) {
        err = errno;
        break;
      }
    }
  }
  closedir(d);
  return err;
}

int do_cat(const char* path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  char cat[] = "/bin/cat";
  char* argv[] = {cat, const_cast<char*>(path), nullptr};
  pid_t pid;
  const int rc = posix_spawn(&pid, "/bin/cat", &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return rc;
  int status;
  if (waitpid(pid, &status, 0) < 0) return errno;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EIO;
}

int write_all(int fd, const void* data, std::size_t len, off_t off) {
  const ssize_t n = pwrite(fd, data, len, off);
  if (n < 0) return errno;
  return static_cast<std::size_t>(n) == len ? 0 : EIO;
}

// The SMI transaction (docs/kernel-semantics.md section 2.3, "documented userspace protocol").
// The command is a struct smi_cmd with the right magic and a calling-
// interface buffer behind it; what the simulated BIOS answers does not
// matter here, only that every step succeeds.
int do_smi(const std::string& dir) {
  const std::string data = dir + "/smi_data";
  const int dfd = open(data.c_str(), O_RDWR);
  if (dfd < 0) return errno;
  int err = 0;
  auto step = [&](int e) {
    if (!err) err = e;
    return err == 0;
  };
  if (step(flock(dfd, LOCK_EX) != 0 ? errno : 0)) {
    const std::string size_path = dir + "/smi_data_buf_size";
    const int sfd = open(size_path.c_str(), O_WRONLY);
    if (step(sfd < 0 ? errno : 0)) {
      step(write_all(sfd, "64\n", 3, 0));
      close(sfd);
    }
    unsigned char cmd[16 + 36] = {};
    const std::uint32_t magic = 0x534D4931;  // SMI_CMD_MAGIC
    std::memcpy(cmd, &magic, 4);
    cmd[12] = 0xb2;  // command_address (APM port), command_code 0
    if (err == 0) step(write_all(dfd, cmd, sizeof cmd, 0));
    if (err == 0) {
      const std::string req_path = dir + "/smi_request";
      const int rfd = open(req_path.c_str(), O_WRONLY);
      if (step(rfd < 0 ? errno : 0)) {
        step(write_all(rfd, "1\n", 2, 0));
        close(rfd);
      }
    }
    unsigned char back[sizeof cmd];
    if (err == 0 && pread(dfd, back, sizeof back, 0) < 0) step(errno);
    flock(dfd, LOCK_UN);
  }
  close(dfd);
  return err;
}

// Runs `make_op()`'s operation on `threads` threads for `ms` milliseconds
// after a warm-up; returns wall-clock ns per operation (all threads).
double measure(int threads, int ms, const std::function<Op()>& make_op, const std::string& what) {
  std::atomic<bool> go{false}, stop{false};
  std::atomic<int> ready{0};
  std::atomic<std::uint64_t> total{0};
  std::atomic<int> error{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      Op op = make_op();
      for (int i = 0; i < 20; ++i)  // warm-up: caches, lazy state, thread start
        if (int e = op()) {
          error = e;
          break;
        }
      ready++;
      while (!go.load()) std::this_thread::yield();
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed) && !error.load(std::memory_order_relaxed)) {
        if (int e = op()) {
          error = e;
          break;
        }
        ++n;
      }
      total += n;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  stop = true;
  for (auto& th : pool) th.join();
  const auto elapsed = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  if (error) fail(what, error);
  if (total == 0) fail(what, ETIMEDOUT);
  return elapsed / static_cast<double>(total.load());
}

int usage() {
  std::fprintf(stderr,
               "usage: bench-client [--ms N] [--threads N] OP PATH [ARG]\n"
               "  OP: orc stat pread store readdir lsl cat smi hotplug advance (see the source header)\n");
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int ms = 150, threads = 1;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; ++i) {
    const std::string a = argv[i];
    if ((a == "--ms" || a == "--threads") && i + 1 < argc) {
      (a == "--ms" ? ms : threads) = std::atoi(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      return usage();
    }
  }
  if (argc - i < 2 || ms <= 0 || threads <= 0) return usage();
  const std::string op = argv[i];
  const std::string path = argv[i + 1];
  const std::string arg = argc - i > 2 ? argv[i + 2] : "";
  const std::string what = op + " " + path;
  double ns = 0;

  if (op == "orc") {
    ns = measure(threads, ms, [&] { return Op([&] { return do_orc(path.c_str()); }); }, what);
  } else if (op == "stat") {
    ns = measure(threads, ms, [&] {
      return Op([&] {
        struct stat st;
        return stat(path.c_str(), &st) == 0 ? 0 : errno;
      });
    }, what);
  } else if (op == "pread" || op == "store") {
    if (op == "store" && arg.empty()) return usage();
    ns = measure(threads, ms, [&] {
      const int fd = open(path.c_str(), op == "store" ? O_WRONLY : O_RDONLY);
      if (fd < 0) fail(what, errno);
      // The descriptor lives as long as the process: kept open on purpose.
      if (op == "store") return Op([fd, &arg] { return write_all(fd, arg.data(), arg.size(), 0); });
      return Op([fd] {
        char buf[4096];
        return pread(fd, buf, sizeof buf, 0) < 0 ? errno : 0;
      });
    }, what);
  } else if (op == "readdir" || op == "lsl") {
    const bool lsl = op == "lsl";
    ns = measure(threads, ms, [&] { return Op([&, lsl] { return do_readdir(path.c_str(), lsl); }); }, what);
  } else if (op == "cat") {
    ns = measure(threads, ms, [&] { return Op([&] { return do_cat(path.c_str()); }); }, what);
  } else if (op == "smi") {
    ns = measure(threads, ms, [&] { return Op([&] { return do_smi(path); }); }, what);
  } else if (op == "hotplug") {
    const long n = std::atol(arg.c_str());
    const int fd = open(path.c_str(), O_WRONLY);
    if (fd < 0) fail(what, errno);
    const auto start = Clock::now();
    for (long k = 0; k < n; ++k) {
      const std::string cmd = "add bench" + std::to_string(k) + "\n";
      if (int e = write_all(fd, cmd.data(), cmd.size(), 0)) fail(what + " " + cmd, e);
    }
    ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    close(fd);
  } else if (op == "advance") {
    const long step = std::atol(arg.c_str());
    if (step <= 0) return usage();
    const int fd = open(path.c_str(), O_WRONLY);
    if (fd < 0) fail(what, errno);
    const std::string cmd = std::to_string(step) + "\n";
    const auto start = Clock::now();
    const auto until = start + std::chrono::milliseconds(ms);
    const long total = argc - i > 3 ? std::atol(argv[i + 3]) : 0;
    long steps = 0;
    do {
      if (int e = write_all(fd, cmd.data(), cmd.size(), 0)) fail(what, e);
      ++steps;
    } while (total > 0 ? steps * step < total : Clock::now() < until);
    const auto real = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    close(fd);
    std::printf("%ld %.0f\n", steps * step, real);
    return 0;
  } else {
    return usage();
  }
  std::printf("%.0f\n", ns);
  return 0;
}
