#include "core/locks.hpp"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace vsysfs::core {
namespace lockdep {
namespace {

struct Held {
  const char* name;
  int rank;
  const void* lock;
};

#if VSYSFS_DEBUG_CHECKS
thread_local std::vector<Held> tls_held;
#endif

}  // namespace

void acquired([[maybe_unused]] const char* name, [[maybe_unused]] int rank,
              [[maybe_unused]] const void* lock) {
#if VSYSFS_DEBUG_CHECKS
  if (rank != 0) {
    for (const Held& h : tls_held) {
      if (h.rank != 0 && h.rank >= rank) {
        std::fprintf(stderr,
                     "vsysfs lockdep: lock order violation: taking %s (rank %d) while holding "
                     "%s (rank %d)\n",
                     name, rank, h.name, h.rank);
        std::abort();
      }
    }
  }
  tls_held.push_back({name, rank, lock});
#endif
}

void released([[maybe_unused]] const void* lock) {
#if VSYSFS_DEBUG_CHECKS
  for (auto it = tls_held.rbegin(); it != tls_held.rend(); ++it) {
    if (it->lock == lock) {
      tls_held.erase(std::next(it).base());
      return;
    }
  }
#endif
}

bool held([[maybe_unused]] const void* lock) {
#if VSYSFS_DEBUG_CHECKS
  for (const Held& h : tls_held)
    if (h.lock == lock) return true;
  return false;
#else
  return true;
#endif
}

}  // namespace lockdep

void Mutex::assert_held() const {
  if (!held()) {
    std::fprintf(stderr, "vsysfs: %s must be held here\n", name_);
    std::abort();
  }
}

}  // namespace vsysfs::core
