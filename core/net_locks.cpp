#include "core/net_locks.hpp"

#include <cstdio>
#include <cstdlib>

namespace vsysfs::core {

Mutex& rtnl_mutex() {
  static Mutex mu{"rtnl_mutex", kRankRtnl};
  return mu;
}

SharedMutex& dev_base_lock() {
  static SharedMutex mu{"dev_base_lock", kRankDevBase};
  return mu;
}

void assert_rtnl() { rtnl_mutex().assert_held(); }

void assert_dev_base_lock() {
  if (!dev_base_lock().held()) {
    std::fprintf(stderr, "vsysfs: dev_base_lock must be held here\n");
    std::abort();
  }
}

}  // namespace vsysfs::core
