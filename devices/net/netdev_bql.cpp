// dql_completed / dql_reset, after lib/dynamic_queue_limits.c (the 2011
// algorithm without the later stall detector).

#include "devices/net/netdev_bql.hpp"

#include <algorithm>

namespace vsysfs::devices {
namespace {

// The positive part of a - b in modular unsigned arithmetic (POSDIFF).
unsigned posdiff(unsigned a, unsigned b) {
  return static_cast<int>(a - b) > 0 ? a - b : 0;
}
// a is at or after b, modulo 2^32 (AFTER_EQ).
bool after_eq(unsigned a, unsigned b) { return static_cast<int>(a - b) >= 0; }

}  // namespace

void Dql::completed(unsigned count, core::Nanos now) {
  const unsigned done = num_completed + count;
  unsigned lim = limit;
  unsigned ovlimit = posdiff(num_queued - num_completed, lim);
  const unsigned inprogress = num_queued - done;
  const unsigned prev_inprogress = prev_num_queued - num_completed;
  const bool all_prev_completed = after_eq(done, prev_num_queued);

  if ((ovlimit && !inprogress) || (prev_ovlimit && all_prev_completed)) {
    // The queue starved while it was over the limit: the limit was too
    // small by what went out since last time, plus the previous overshoot.
    lim += posdiff(done, prev_num_queued) + prev_ovlimit;
    slack_start_time = now;
    lowest_slack = UINT_MAX;
  } else if (inprogress && prev_inprogress && !all_prev_completed) {
    // Busy the whole interval: remember the smallest excess, and after
    // hold_time take it off the limit.
    unsigned slack = posdiff(lim + prev_ovlimit, 2 * (done - num_completed));
    const unsigned slack_last_objs = prev_ovlimit ? posdiff(prev_last_obj_cnt, prev_ovlimit) : 0;
    slack = std::max(slack, slack_last_objs);
    lowest_slack = std::min(lowest_slack, slack);
    if (now > slack_start_time + slack_hold_time) {
      lim = posdiff(lim, lowest_slack);
      slack_start_time = now;
      lowest_slack = UINT_MAX;
    }
  }
  lim = std::clamp(lim, min_limit, max_limit);
  if (lim != limit) {
    limit = lim;
    ovlimit = 0;
  }
  adj_limit = lim + done;
  prev_ovlimit = ovlimit;
  prev_last_obj_cnt = last_obj_cnt;
  num_completed = done;
  prev_num_queued = num_queued;
}

void Dql::reset(core::Nanos now) {
  limit = min_limit;  // modern dql_reset (2011: 0)
  num_queued = 0;
  num_completed = 0;
  last_obj_cnt = 0;
  prev_num_queued = 0;
  prev_last_obj_cnt = 0;
  prev_ovlimit = 0;
  lowest_slack = UINT_MAX;
  slack_start_time = now;
  // Kernel quirk: adj_limit is left alone; the next completion recomputes it.
}

}  // namespace vsysfs::devices
