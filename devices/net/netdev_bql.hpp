#pragma once

// Byte queue limits (lib/dynamic_queue_limits.c, include/linux/
// dynamic_queue_limits.h; the netdev_tx_sent_queue/netdev_tx_completed_queue
// helpers of include/linux/netdevice.h). A BQL driver reports the bytes it
// puts on its ring and the bytes the hardware completed; the limit grows
// when the queue ran dry while over the limit (starvation) and shrinks by
// the smallest slack seen during hold_time. Over the limit, the stack stops
// the queue (__QUEUE_STATE_STACK_XOFF) until completions bring it back.
//
// Thread-safety: a Dql is plain data; NetDevice guards its queues' Dql with
// one leaf mutex.

#include <climits>
#include <cstdint>

#include "core/clock.hpp"

namespace vsysfs::devices {

// DQL_MAX_OBJECT = UINT_MAX / 16, DQL_MAX_LIMIT = UINT_MAX / 2 - DQL_MAX_OBJECT
inline constexpr unsigned kDqlMaxObject = UINT_MAX / 16;
inline constexpr unsigned kDqlMaxLimit = UINT_MAX / 2 - kDqlMaxObject;

struct Dql {
  unsigned num_queued = 0;
  unsigned adj_limit = 0;
  unsigned last_obj_cnt = 0;
  unsigned limit = 0;
  unsigned num_completed = 0;
  unsigned prev_ovlimit = 0;
  unsigned prev_num_queued = 0;
  unsigned prev_last_obj_cnt = 0;
  unsigned lowest_slack = UINT_MAX;
  core::Nanos slack_start_time{0};
  unsigned max_limit = kDqlMaxLimit;
  unsigned min_limit = 0;
  core::Nanos slack_hold_time = std::chrono::seconds(1);  // dql_init(.., HZ)

  // dql_queued: `count` more bytes are on the ring.
  void queued(unsigned count) {
    num_queued += count;
    last_obj_cnt = count;
  }
  // dql_avail: < 0 means over the limit.
  int avail() const { return static_cast<int>(adj_limit - num_queued); }
  unsigned inflight() const { return num_queued - num_completed; }
  // dql_completed: `count` bytes completed at `now`; recomputes the limit.
  void completed(unsigned count, core::Nanos now);
  // dql_reset
  void reset(core::Nanos now);
};

}  // namespace vsysfs::devices
