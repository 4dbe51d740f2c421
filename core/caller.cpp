#include "core/caller.hpp"

#include <fstream>
#include <sstream>
#include <string>

namespace vsysfs::core {
namespace {

constexpr std::uint64_t kAllCaps = ~std::uint64_t{0};

}  // namespace

Caller Caller::root() { return with_caps(0, kAllCaps); }

Caller Caller::user(uid_t uid) { return with_caps(uid, 0); }

Caller Caller::with_caps(uid_t uid, std::uint64_t cap_mask, std::string comm) {
  Caller c{1, uid, uid};
  c.loaded_ = true;
  c.cap_effective_ = cap_mask;
  c.comm_ = std::move(comm);
  return c;
}

Caller Caller::kernel() {
  Caller c = with_caps(0, kAllCaps, "kernel");
  c.pid_ = 0;
  return c;
}

bool Caller::capable(Capability cap) const {
  load();
  return (cap_effective_ >> static_cast<unsigned>(cap)) & 1U;
}

const std::string& Caller::comm() const {
  load();
  return comm_;
}

int Caller::prio() const {
  load();
  return prio_;
}

// /proc/PID/status gives CapEff (hex) and Name; /proc/PID/stat gives the
// kernel's own "prio" field (field 18), which is already the numeric
// priority minus 100 for normal tasks and -1-rt_priority for RT ones.
void Caller::load() const {
  if (loaded_) return;
  loaded_ = true;
  const std::string dir = "/proc/" + std::to_string(pid_);
  std::ifstream status(dir + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Name:\t", 0) == 0) {
      comm_ = line.substr(6);
    } else if (line.rfind("CapEff:\t", 0) == 0) {
      cap_effective_ = std::stoull(line.substr(8), nullptr, 16);
    }
  }
  std::ifstream stat(dir + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // comm may contain spaces and parentheses: fields resume after the last ')'.
  const auto close = content.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(content.substr(close + 2));
  std::string field;
  // After ')': state is field 3; prio is field 18, i.e. the 16th from here.
  for (int i = 3; i <= 18 && fields >> field; ++i) {
    if (i == 18) {
      try {
        prio_ = std::stoi(field) + 100;  // kernel: task_prio() = p->prio - MAX_RT_PRIO
      } catch (...) {
        prio_ = 120;
      }
    }
  }
}

}  // namespace vsysfs::core
