#pragma once

// OpenFile: the per-open state of a vsysfs file (kernel: struct
// kernfs_open_file). It keeps the node (and so its device) alive, the
// show() snapshot that reads at offsets other than 0 slice (its page is
// allocated by the first read, as seq_read allocates m->buf on the first
// read, not at open: a descriptor that is only polled, written or held
// costs no page), the event
// counter seen at the last show() (for poll), the poll handle, and whether
// this open file description took a flock. A stream file (events_pipe)
// has its own reader (core/stream.hpp) here, made at open, and a waker in
// the stream's wait queue that lives as long as the open file.
//
// Thread-safety: `mu` guards the snapshot and the event counter; concurrent
// reads on one descriptor are serialised by it. The server's pollers_mu_
// guards the poll handle and `polled`.

#include <cstdint>
#include <memory>
#include <string>

#include "core/locks.hpp"
#include "core/node.hpp"
#include "core/page_buffer.hpp"
#include "core/stream.hpp"

struct fuse_pollhandle;

namespace vsysfs::fs {

struct OpenFile {
  explicit OpenFile(std::shared_ptr<core::Node> n) : node(std::move(n)) {}

  const std::shared_ptr<core::Node> node;
  core::Mutex mu{"open_file.mu"};
  bool have_snapshot GUARDED_BY(mu) = false;
  // Text attributes; null until the first read (an open costs no page).
  std::unique_ptr<core::PageBuffer> page GUARDED_BY(mu);
  std::string seq GUARDED_BY(mu);  // seq files (no page limit)
  std::uint64_t seen_event GUARDED_BY(mu) = 0;
  // Stream files only: the reader, and where its waker is registered
  // (both set at open, before the handle is published).
  std::unique_ptr<core::Stream> stream GUARDED_BY(mu);
  core::WaitQueue* wait_queue = nullptr;
  std::uint64_t waker_id = 0;
  // Guarded by Server::pollers_mu_.
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
