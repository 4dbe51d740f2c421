#include "core/caller.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <span>
#include <string>
#include <string_view>

namespace vsysfs::core {
namespace {

constexpr std::uint64_t kAllCaps = ~std::uint64_t{0};

// Reads a small /proc file into buf (raw syscalls: no stream, no heap);
// returns the bytes read, 0 when the process is gone.
std::size_t read_proc(pid_t pid, const char* leaf, std::span<char> buf) {
  std::array<char, 48> path{};
  auto [end, ec] = std::to_chars(path.data() + 6, path.data() + 24, pid);
  if (ec != std::errc{}) return 0;
  std::string_view("/proc/").copy(path.data(), 6);
  const std::string_view rest = leaf;
  rest.copy(end, rest.size());
  const int fd = ::open(path.data(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  ::close(fd);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
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

Caller Caller::kernel() {
  Caller c = with_caps(0, kAllCaps, "kernel");
  c.pid_ = 0;
  return c;
}

// capget(2) with another process's pid returns that process's sets. A
// process that is gone has no capabilities.
bool Caller::capable(Capability cap) const {
  if (!cap_effective_) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, pid_};
    std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
    if (::syscall(SYS_capget, &hdr, data.data()) == 0)
      cap_effective_ = data[0].effective | (std::uint64_t{data[1].effective} << 32);
    else
      cap_effective_ = 0;
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
