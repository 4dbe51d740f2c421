#pragma once

// Replay of a state journal (-o state=FILE, docs/state.md) at mount, before the
// session serves anything: each record is re-executed against the tree
// the way it first ran, minus the permission checks it already passed (a
// journaled store was acknowledged, so its open and its capability checks
// succeeded then): a store runs the attribute's store() with the same
// bytes and a caller with the recorded uid and every capability; a binary
// write runs write() at the recorded offset; chmod/chown set the bits.
//
// Thread-safety: runs on the start-up thread before any request.

#include "core/env.hpp"
#include "core/result.hpp"
#include "core/state_journal.hpp"
#include "core/tree.hpp"

namespace vsysfs::fs {

// One record: ENOENT when its path does not exist (anymore), or the
// error the device returned now.
core::Status replay_record(core::Tree& tree, const core::StateRecord& rec);

struct ReplaySummary {
  std::size_t applied = 0;
  std::size_t failed = 0;
};
// Every record in order; each failure is logged ("vsysfs" "state_replay").
ReplaySummary replay_all(core::Env& env, core::Tree& tree,
                         const std::vector<core::StateRecord>& records);

}  // namespace vsysfs::fs
