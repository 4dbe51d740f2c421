#pragma once

// Server: the typed FUSE operations over the Tree, implementing the sysfs
// contract of docs/design.md section 3 (docs/kernel-semantics.md section 1): sizes and modes in
// getattr, the open-time permission check that applies even to root,
// show() on a read at offset 0 into a per-open snapshot, offset-ignoring
// capped writes to store(), binary attribute bounds, poll after notify,
// EACCES/EPERM for everything sysfs refuses, flock/POSIX locks through
// the LockService, and the rest of the kernfs file surface (xattrs, kept
// times, O_DIRECT, s_maxbytes; docs/kernfs-surface.md). ops.cpp calls one
// method per request and replies with its result; nothing here replies
// except the asynchronous lock, poll and stream-read paths, which own
// their request.
//
// Stream files (core/stream.hpp; kernel/debug/vsysfs/events_pipe): a read
// with nothing to hand out is parked, not served by a waiting worker (a
// reader that waits for hours must not hold one of the bounded pool): the
// request is kept with its reply callback until the stream's wait queue
// is woken (the notifier thread then reads again and replies), until
// FUSE_INTERRUPT for it (EINTR), or until the daemon stops serving
// (ENODEV, so that stopping a daemon with a blocked reader ends that
// read instead of leaving it waiting for a reply). O_NONBLOCK: EAGAIN.
// The file is nonseekable (FOPEN_NONSEEKABLE: lseek and pread are
// ESPIPE), as trace_pipe's stream_open makes it.
//
// Thread-safety: every method may be called concurrently from the FUSE
// worker threads. The Tree is thread-safe; per-open state is guarded by
// OpenFile::mu; the poller table by pollers_mu_; kernel notifications are
// sent from the notifier thread, never from a request handler.

#include <sys/stat.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "core/caller.hpp"
#include "core/env.hpp"
#include "core/lock_service.hpp"
#include "core/locks.hpp"
#include "core/state_journal.hpp"
#include "core/tree.hpp"
#include "fs/open_file.hpp"

struct fuse_session;
struct fuse_pollhandle;

namespace vsysfs::fs {

// How long the kernel may cache entries and attributes. Long, because the
// tree rarely changes and every change is invalidated explicitly.
inline constexpr double kCacheTimeout = 3600.0;
// How long a tree change waits for the kernel to drop a cached entry.
inline constexpr std::chrono::seconds kInvalidationWait{1};

struct EntryOut {
  struct stat attr {};
  core::Ino ino = 0;              // the FUSE node id (a tree slot)
  std::uint64_t generation = 0;  // with ino, never reused (core/node.hpp)
  double timeout = kCacheTimeout;
};
struct AttrOut {
  struct stat attr {};
  double timeout = kCacheTimeout;
};
struct OpenOut {
  std::uint64_t fh = 0;
  bool direct_io = true;
  bool nonseekable = false;  // stream files
};
// A read's bytes, owned by the reply: nothing in it refers to the open file.
// The reply completes the request, so the reader's close() and its RELEASE
// on another worker may free the OpenFile while this is still alive (a lock
// or a view into the snapshot held here was a use-after-free). Text and
// binary reads (never more than a page) land in `page`, without heap
// allocation; seq-file slices (no page limit) in `owned`.
//
// A ReadOut travels by value (into its Result, out of Server::read): a copy
// or move takes [0, len) of the page, not all of it (the implicit ones
// copied the whole 4 KiB array twice per read, for a 5-byte `mtu`: 2.6% of
// the daemon's CPU per pread, docs/performance.md).
struct ReadOut {
  std::array<char, core::kPageSize> page;  // not initialised: only [0, len) is used
  std::size_t len = 0;
  std::string owned;
  bool use_owned = false;

  ReadOut() = default;
  ReadOut(const ReadOut& o) : len(o.len), owned(o.owned), use_owned(o.use_owned) {
    std::memcpy(page.data(), o.page.data(), len);
  }
  ReadOut(ReadOut&& o) noexcept : len(o.len), owned(std::move(o.owned)), use_owned(o.use_owned) {
    std::memcpy(page.data(), o.page.data(), len);
  }
  ReadOut& operator=(const ReadOut& o) {
    if (this != &o) *this = ReadOut(o);
    return *this;
  }
  ReadOut& operator=(ReadOut&& o) noexcept {
    if (this == &o) return *this;
    len = o.len;
    std::memcpy(page.data(), o.page.data(), len);
    owned = std::move(o.owned);
    use_owned = o.use_owned;
    return *this;
  }

  std::string_view bytes() const {
    return use_owned ? std::string_view(owned) : std::string_view(page.data(), len);
  }
};
struct PollOut {
  unsigned revents = 0;
};

struct SetAttrIn {
  bool set_mode = false;
  mode_t mode = 0;
  bool set_uid = false;
  uid_t uid = 0;
  bool set_gid = false;
  gid_t gid = 0;
  bool set_size = false;
  off_t size = 0;
  // utimensat: an explicit time, or "now" (UTIME_NOW, touch).
  bool set_atime = false;
  bool atime_now = false;
  struct timespec atime {};
  bool set_mtime = false;
  bool mtime_now = false;
  struct timespec mtime {};
};

// sysfs never sets s_maxbytes, so it keeps alloc_super's MAX_NON_LFS
// (fs/super.c): lseek and truncate past it fail there.
inline constexpr off_t kSysfsMaxBytes = 0x7fffffff;

class Server final : public core::Tree::Observer {
 public:
  Server(core::Env& env, core::Tree& tree, core::LockService& locks);
  ~Server() override;
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Starts/stops the notifier thread, which needs the session.
  void attach(fuse_session* se);
  void detach();

  core::Result<EntryOut> lookup(core::Ino parent, std::string_view name);
  void forget(core::Ino ino, std::uint64_t nlookup);
  core::Result<AttrOut> getattr(core::Ino ino) const;
  core::Result<AttrOut> setattr(const core::Caller& caller, core::Ino ino, const SetAttrIn& in);
  core::Result<std::string> readlink(core::Ino ino) const;

  core::Result<OpenOut> open(core::Ino ino, int flags);
  // `page_cache`: the kernel reads for its page cache (a MAP_PRIVATE
  // mapping's fault), not for a read(2); see the definition.
  core::Result<ReadOut> read(const core::Caller& caller, std::uint64_t fh, std::size_t size,
                             off_t off, bool page_cache = false);
  core::Result<std::size_t> write(const core::Caller& caller, std::uint64_t fh,
                                  std::string_view data, off_t off);
  void release(std::uint64_t fh);
  core::Result<PollOut> poll(std::uint64_t fh, fuse_pollhandle* ph);

  // Stream files. A ticket names one read; take it before the read so
  // that an interrupt can be registered first: cancel_read() of a ticket
  // whose read has not been parked yet makes that read EINTR when it
  // would park. `done` is called exactly once, at once or later (on the
  // notifier thread, or the interrupting worker). Locking: OpenFile::mu,
  // then streams_mu_; `done` runs with neither held.
  using ReadTicket = std::uint64_t;
  using ReadDone = std::function<void(core::Result<ReadOut>)>;
  bool is_stream(std::uint64_t fh) const;
  ReadTicket new_read_ticket();
  void read_stream(ReadTicket ticket, std::uint64_t fh, std::size_t size, bool nonblock,
                   ReadDone done);
  void cancel_read(ReadTicket ticket);
  // Reads parked now (tests).
  std::size_t parked_reads() const;

  // Extended attributes (kernfs simple_xattrs; fs/kernfs/inode.c,
  // fs/kernfs/xattr handlers). The VFS has already applied
  // xattr_permission (trusted.* needs CAP_SYS_ADMIN, user.* only on
  // regular files and directories) before FUSE forwards the request.
  core::Result<std::string> getxattr(core::Ino ino, std::string_view name);
  core::Status setxattr(core::Ino ino, std::string_view name, std::string_view value, int flags);
  core::Status removexattr(core::Ino ino, std::string_view name);
  // The names, each NUL-terminated, as listxattr(2) returns them.
  core::Result<std::string> listxattr(const core::Caller& caller, core::Ino ino);

  core::Result<std::uint64_t> opendir(core::Ino ino);
  // Fills entries from `off` with `add(name, ino, kind, next_off)` until it
  // returns false (buffer full).
  template <typename Add>
  core::Status readdir(std::uint64_t dh, off_t off, Add&& add) const;
  void releasedir(std::uint64_t dh);

  // Locks. `key` is the inode; the name is for the locks table and log.
  core::LockService& locks() { return locks_; }
  // FUSE FLUSH, sent at every close(2) with lock_owner = the closing
  // process: its POSIX locks on the file go, whichever descriptor they were
  // taken through (fs/locks.c filp_flush -> locks_remove_posix). An OFD
  // lock's owner is its open file description, never a process: a close of
  // a dup leaves it alone.
  void flush_locks(core::Ino ino, std::uint64_t lock_owner);
  // FUSE RELEASE, the last close of open file description `fh`: its flock
  // goes (if it took one: flock_release) and so do the POSIX locks taken
  // through it, i.e. its OFD locks (fs/locks.c locks_remove_file). Call it
  // before release(fh).
  void release_locks(core::Ino ino, std::uint64_t fh, bool flock_release);
  std::string name_of(core::Ino ino) const { return tree_.path_of(ino); }

  core::Tree& tree() { return tree_; }

  // -o state=FILE: from now on every successful store, binary write, chmod
  // and chown is journaled (durably) before the request returns.
  void set_journal(core::StateJournal* journal) { journal_ = journal; }
  // Compaction (docs/state.md "Compaction"): `make_base` returns the bytes
  // of a new base (the machine now and its snapshots); once the records
  // after the base pass `bound` bytes, the journal is rewritten as that
  // base and no record. Without it (a machine that cannot restore) the
  // journal only grows until the next mount. Set before serving.
  void set_compactor(std::function<core::Result<std::string>()> make_base, std::uint64_t bound) {
    make_base_ = std::move(make_base);
    compact_bound_ = bound;
  }

  // Tree::Observer: queued for the notifier thread.
  void notified(core::Ino ino) override;
  void entry_changed(core::Ino parent, const std::string& name, core::Ino child) override;
  void attr_changed(core::Ino ino) override;

 private:
  struct Notice {
    enum Kind { Poll, InvalEntry, InvalInode, StreamWake } kind;
    core::Ino ino;
    std::string name;
    std::uint64_t seq = 0;
  };
  void fill_stat(const core::Node& node, struct stat& st) const;
  core::Result<ReadOut> read_bytes(const core::Caller& caller, std::uint64_t fh, std::size_t size,
                                   off_t off);
  // The machine is off and `node` is not under kernel/debug/vsysfs.
  bool powered_off(const core::Node& node) const;
  // With a state file: takes the journal's order lock into `order`, which
  // serialises every change with its record. EINTR, having changed
  // nothing, when the caller's request is interrupted while it waits.
  // The store/show fault points: the injected errno, or OK.
  core::Status inject(core::FaultPoint point, const core::Caller& caller, const core::Node& node);
  // The loop is ending (an unmount, a signal): a request that waits for
  // something (a delay_ms) gives up. Locking: takes queue_mu_.
  bool session_exited();
  core::Status lock_order(const core::Caller& caller, core::ConditionalLock& order);
  // Appends a record (caller uid/gid filled in for stores); EIO on failure.
  // Called with the journal's order mutex held.
  core::Status journal_append(const core::Caller& caller, core::StateRecord& rec);
  // A store succeeded: journal it as the caller asked (core::Caller::Journal).
  core::Status journal_store(const core::Caller& caller, core::StateRecord& rec);
  // Rewrites the journal as a new base (order mutex held). EIO when no
  // base could be made or written (the old file stays as it was).
  core::Status compact_journal(const core::Caller* caller);
  void notifier_loop();
  // The waker of every open stream: on the producer's thread, so it only
  // queues a StreamWake for the notifier (inline when there is no session
  // yet: the unit tests).
  void stream_wake();
  // Retries every parked read and tells the stream pollers to poll again.
  void wake_streams();
  // Ends every parked read with `err` and refuses new parking.
  void abort_streams(core::Errno err);
  // One non-blocking read of of's stream: data, EAGAIN, or ENODEV.
  core::Result<ReadOut> stream_read_locked(OpenFile& of, std::size_t size) REQUIRES(of.mu);
  // Returns the notice's sequence number, 0 when it was dropped.
  std::uint64_t enqueue(Notice n);
  // Waits until the notifier has handed notice `seq` to the kernel.
  void wait_sent(std::uint64_t seq);

  core::Env& env_;
  core::Tree& tree_;
  core::LockService& locks_;
  const struct timespec mount_time_;

  // Order: after OpenFile::mu. Also guards each OpenFile's poll_handle and
  // polled (not annotated: the analysis names no lock of another object).
  core::Mutex pollers_mu_{"server.pollers_mu"};
  std::map<core::Ino, std::set<OpenFile*>> pollers_ GUARDED_BY(pollers_mu_);

  core::Mutex queue_mu_{"server.queue_mu"};  // Order: leaf
  core::CondVar queue_cv_;
  std::deque<Notice> queue_ GUARDED_BY(queue_mu_);
  std::uint64_t queued_seq_ GUARDED_BY(queue_mu_) = 0;  // last sequence number queued
  // last sequence number the kernel has processed
  std::uint64_t sent_seq_ GUARDED_BY(queue_mu_) = 0;
  core::CondVar sent_cv_;
  bool stop_ GUARDED_BY(queue_mu_) = false;
  fuse_session* session_ GUARDED_BY(queue_mu_) = nullptr;
  std::thread notifier_;

  // Handles the kernel has not released yet. A daemon stopped by a signal or
  // an unmount with files still open never gets their RELEASE: the
  // destructor frees what is left.
  core::Mutex handles_mu_{"server.handles_mu"};  // Order: leaf
  std::set<OpenFile*> open_files_ GUARDED_BY(handles_mu_);
  std::set<DirHandle*> dir_handles_ GUARDED_BY(handles_mu_);
  core::StateJournal* journal_ = nullptr;  // set before the mount serves requests
  std::function<core::Result<std::string>()> make_base_;  // likewise
  std::uint64_t compact_bound_ = 0;

  // Stream reads. Order: after OpenFile::mu.
  struct ParkedRead {
    OpenFile* of;  // alive: the kernel holds the file while the read is out
    std::size_t size;
    ReadDone done;
  };
  mutable core::Mutex streams_mu_{"server.streams_mu"};
  ReadTicket next_ticket_ GUARDED_BY(streams_mu_) = 1;
  // Tickets taken and not parked nor completed yet: whether an interrupt
  // came meanwhile.
  std::map<ReadTicket, bool> unparked_ GUARDED_BY(streams_mu_);
  std::map<ReadTicket, ParkedRead> parked_ GUARDED_BY(streams_mu_);
  bool streams_closed_ GUARDED_BY(streams_mu_) = false;
  // Open stream files with a poll handle (the handle itself: pollers_mu_).
  std::set<OpenFile*> stream_pollers_ GUARDED_BY(pollers_mu_);
  // A StreamWake is queued and not yet taken by the notifier: events in a
  // burst queue one.
  std::atomic<bool> stream_wake_queued_{false};
};

template <typename Add>
core::Status Server::readdir(std::uint64_t dh, off_t off, Add&& add) const {
  auto* handle = reinterpret_cast<DirHandle*>(dh);
  if (off < 0) return core::Errno{EINVAL};
  for (std::size_t i = static_cast<std::size_t>(off); i < handle->entries.size(); ++i) {
    const auto& e = handle->entries[i];
    if (!add(e.name, e.st_ino, e.kind, static_cast<off_t>(i + 1))) break;
  }
  return {};
}

}  // namespace vsysfs::fs
