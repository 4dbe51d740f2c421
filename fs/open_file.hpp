#pragma once

// OpenFile: the per-open state of a vsysfs file (kernel: struct
// kernfs_open_file). It keeps the node (and so its device) alive, the
// show() snapshot that reads at offsets other than 0 slice, the event
// counter seen at the last show() (for poll), the poll handle, and whether
// this open file description took a flock.
//
// Thread-safety: `mu` guards the snapshot and the poll state; concurrent
// reads on one descriptor are serialised by it.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/node.hpp"
#include "core/page_buffer.hpp"

struct fuse_pollhandle;

namespace vsysfs::fs {

struct OpenFile {
  explicit OpenFile(std::shared_ptr<core::Node> n) : node(std::move(n)) {}

  const std::shared_ptr<core::Node> node;
  std::mutex mu;
  bool have_snapshot = false;
  core::PageBuffer page;  // text attributes
  std::string seq;        // seq files (no page limit)
  std::uint64_t seen_event = 0;
  fuse_pollhandle* poll_handle = nullptr;
  bool polled = false;  // registered in Server's poller table
};

// opendir snapshot: readdir offsets index it, so concurrent changes never
// corrupt an iteration.
struct DirHandle {
  struct Entry {
    std::string name;
    std::uint64_t st_ino;  // what readdir shows: Node::st_ino, not the node id
    core::NodeKind kind;
  };
  std::vector<Entry> entries;
};

}  // namespace vsysfs::fs
