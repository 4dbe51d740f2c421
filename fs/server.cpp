#define FUSE_USE_VERSION 312
#include "fs/server.hpp"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vsysfs::fs {
namespace {

struct timespec now_realtime() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// kernfs: DEFAULT_POLLMASK, plus EPOLLERR|EPOLLPRI once the attribute was
// notified since this open file last ran show() (docs/kernel-semantics.md section 1.6).
constexpr unsigned kDefaultPollMask = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
constexpr unsigned kNotifiedMask = POLLERR | POLLPRI;

OpenFile* as_open(std::uint64_t fh) { return reinterpret_cast<OpenFile*>(fh); }

}  // namespace

Server::Server(core::Env& env, core::Tree& tree, core::LockService& locks)
    : env_(env), tree_(tree), locks_(locks), mount_time_(now_realtime()) {
  tree_.set_observer(this);
}

Server::~Server() {
  detach();
  tree_.set_observer(nullptr);
  core::MutexLock lock(handles_mu_);
  for (OpenFile* of : open_files_) {
    if (of->poll_handle) fuse_pollhandle_destroy(of->poll_handle);
    // The producer (a timer's event) may outlive us: no waker may call
    // into a freed server.
    if (of->wait_queue) of->wait_queue->remove(of->waker_id);
    delete of;
  }
  for (DirHandle* dh : dir_handles_) delete dh;
}

void Server::attach(fuse_session* se) {
  {
    core::MutexLock lock(streams_mu_);
    streams_closed_ = false;
  }
  core::MutexLock lock(queue_mu_);
  session_ = se;
  stop_ = false;
  if (!notifier_.joinable()) notifier_ = std::thread([this] { notifier_loop(); });
}

void Server::detach() {
  {
    core::MutexLock lock(queue_mu_);
    stop_ = true;
  }
  queue_cv_.notify_all();
  sent_cv_.notify_all();
  if (notifier_.joinable()) notifier_.join();
  {
    core::MutexLock lock(queue_mu_);
    session_ = nullptr;
  }
  // The loop has ended: no new request comes, and a parked read would
  // never get its reply (its reader would wait until killed, and keep the
  // mount busy). What is ready now (the shutdown's own events) goes out
  // first; the rest end with ENODEV, as a read of a removed attribute.
  // The session still exists (fs/main.cpp destroys it after this), so the
  // replies reach the kernel.
  stream_wake_queued_.store(false);
  wake_streams();
  abort_streams(core::Errno{ENODEV});
  // Lock requests the lock failure point holds back would be answered by
  // a timer after the session is gone: answered ENODEV now, like the
  // parked reads above.
  locks_.shutdown();
}

void Server::fill_stat(const core::Node& node, struct stat& st) const {
  st.st_ino = node.st_ino();
  const mode_t perm = node.mode.load();
  switch (node.kind) {
    case core::NodeKind::Dir:
      st.st_mode = S_IFDIR | perm;
      st.st_nlink = 2;
      break;
    case core::NodeKind::Symlink:
      st.st_mode = S_IFLNK | 0777;
      st.st_nlink = 1;
      break;
    default:
      st.st_mode = S_IFREG | perm;
      st.st_nlink = 1;
      break;
  }
  st.st_uid = node.uid.load();
  st.st_gid = node.gid.load();
  st.st_size = static_cast<off_t>(node.size());
  st.st_blksize = 4096;
  // kernfs_refresh_inode: the iattrs' times once anything was set on the
  // node, else the times the inode was made with.
  if (auto t = tree_.times(node.ino)) {
    st.st_atim = t->atime;
    st.st_mtim = t->mtime;
    st.st_ctim = t->ctime;
  } else {
    st.st_atim = st.st_mtim = st.st_ctim = mount_time_;
  }
}

core::Result<EntryOut> Server::lookup(core::Ino parent, std::string_view name) {
  auto dir = tree_.get(parent);
  if (!dir) return core::Errno{ENOENT};
  if (!dir->is_dir()) return core::Errno{ENOTDIR};
  auto node = tree_.lookup(parent, name);
  if (!node || !node->alive.load()) return core::Errno{ENOENT};
  EntryOut out;
  fill_stat(*node, out.attr);
  out.ino = node->ino;
  out.generation = node->generation;
  // Removed meanwhile (its slot may already serve another node): as if
  // the lookup had come a moment later.
  if (!tree_.looked_up(*node)) return core::Errno{ENOENT};
  return out;
}

void Server::forget(core::Ino ino, std::uint64_t nlookup) { tree_.forget(ino, nlookup); }

core::Result<AttrOut> Server::getattr(core::Ino ino) const {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  AttrOut out;
  fill_stat(*node, out.attr);
  return out;
}

core::Result<AttrOut> Server::setattr(const core::Caller& caller, core::Ino ino,
                                      const SetAttrIn& in) {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  // default_permissions already made the kernel check ownership (chmod),
  // CAP_CHOWN (chown) and owner-or-CAP_FOWNER (explicit times), exactly
  // as setattr_prepare does for kernfs_iop_setattr.
  // The rest of setattr_prepare, before anything changes: inode_newsize_ok
  // refuses to grow a file past s_maxbytes with EFBIG. FUSE's own check
  // used its far larger limit (MAX_LFS_FILESIZE).
  if (in.set_size && in.size > static_cast<off_t>(node->size()) && in.size > kSysfsMaxBytes)
    return core::Errno{EFBIG};
  // With a state file, the change and its journal record are one step:
  // ordered with every other change, durable before we return.
  core::ConditionalLock order;
  VSYSFS_TRY_STATUS(lock_order(caller, order));
  if (in.set_mode) {
    VSYSFS_TRY_STATUS(tree_.set_mode(ino, in.mode & 07777));
    env_.log(&caller, "vfs", "chmod", "OK",
             {{"path", tree_.path_of(ino)}, {"mode", static_cast<unsigned>(in.mode & 07777)}});
    if (journal_) {
      auto rec = core::StateRecord::chmod(tree_.path_of(ino), in.mode & 07777);
      VSYSFS_TRY_STATUS(journal_append(caller, rec));
    }
  }
  if (in.set_uid || in.set_gid) {
    VSYSFS_TRY_STATUS(tree_.set_owner(ino, in.set_uid ? in.uid : static_cast<uid_t>(-1),
                                      in.set_gid ? in.gid : static_cast<gid_t>(-1)));
    env_.log(&caller, "vfs", "chown", "OK",
             {{"path", tree_.path_of(ino)}, {"uid", node->uid.load()}, {"gid", node->gid.load()}});
    if (journal_) {
      auto rec = core::StateRecord::chown(tree_.path_of(ino),
                                          in.set_uid ? in.uid : static_cast<std::uint32_t>(-1),
                                          in.set_gid ? in.gid : static_cast<std::uint32_t>(-1));
      VSYSFS_TRY_STATUS(journal_append(caller, rec));
    }
  }
  // __kernfs_setattr keeps the times in the node's iattrs: notify_change
  // always adds ATTR_CTIME (now); utimensat asks for atime/mtime (given or
  // now); every truncate (truncate, ftruncate, O_TRUNC: do_truncate's
  // ATTR_MTIME) moves mtime to now, although FUSE leaves it out of the
  // request for ftruncate and O_TRUNC.
  const struct timespec now = now_realtime();
  core::TimesIn times;
  if (in.set_atime) times.atime = in.atime_now ? now : in.atime;
  if (in.set_mtime) times.mtime = in.mtime_now ? now : in.mtime;
  else if (in.set_size) times.mtime = now;
  VSYSFS_TRY_STATUS(tree_.set_times(ino, times, now));
  // Kernel quirk: kernfs ignores ATTR_SIZE, so O_TRUNC and truncate(2)
  // succeed and change nothing; the size stays 4096 (docs/kernel-semantics.md section 1.2).
  return getattr(ino);
}

core::Result<std::string> Server::readlink(core::Ino ino) const {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  if (node->kind != core::NodeKind::Symlink) return core::Errno{EINVAL};
  return node->target();
}

core::Result<OpenOut> Server::open(core::Ino ino, int flags) {
  auto node = tree_.get(ino);
  if (!node || !node->alive.load()) return core::Errno{ENOENT};
  if (node->is_dir()) return core::Errno{EISDIR};
  // The sysfs open check, applied even to root (docs/kernel-semantics.md section 1.2): the mode
  // must have a read/write bit for the access asked for; for binary files
  // the callback must exist too (sysfs_bin_kfops_ro/wo).
  const int acc = flags & O_ACCMODE;
  const mode_t mode = node->mode.load();
  const bool want_read = acc == O_RDONLY || acc == O_RDWR;
  const bool want_write = acc == O_WRONLY || acc == O_RDWR;
  const bool bin = node->kind == core::NodeKind::Bin;
  if (want_write && (!(mode & 0222) || (bin && !node->has_write))) return core::Errno{EACCES};
  if (want_read && (!(mode & 0444) || (bin && !node->has_read))) return core::Errno{EACCES};
  // do_dentry_open, after the file system's open: kernfs never sets
  // FMODE_CAN_ODIRECT, so O_DIRECT is EINVAL. FUSE would allow it (its
  // files have direct_IO), so the daemon refuses it here.
  if (flags & O_DIRECT) return core::Errno{EINVAL};
  const bool stream = node->kind == core::NodeKind::Stream;
  auto* of = new OpenFile(std::move(node));
  if (stream) {
    // The waker first, then the first read can look: an event after the
    // reader's starting point either is seen by that read or wakes it.
    core::MutexLock hold(of->mu);
    of->stream = of->node->open_stream();
    of->wait_queue = &of->stream->wait_queue();
    of->waker_id = of->wait_queue->add([this] { stream_wake(); });
  }
  {
    core::MutexLock lock(handles_mu_);
    open_files_.insert(of);
  }
  return OpenOut{reinterpret_cast<std::uint64_t>(of), true, stream};
}

// A page-cache read (the fault of a MAP_PRIVATE mapping: FUSE refuses only
// MAP_SHARED on direct-io files, sysfs refuses both with ENODEV, see
// docs/kernfs-surface.md) is filled up to the length asked for, within the
// file size: a binary attribute page by page (one read(2) of sysfs moves
// at most a page), the rest with zeros. The mapping sees the same bytes
// either way (the kernel zero-fills a short page), but Linux 6.12 takes a
// short page-cache reply for EOF: fuse_short_read -> fuse_read_update_size
// would shrink the cached i_size, a text attribute's from 4096 to its
// content length.
core::Result<ReadOut> Server::read(const core::Caller& caller, std::uint64_t fh, std::size_t size,
                                   off_t off, bool page_cache) {
  auto r = read_bytes(caller, fh, size, off);
  if (!r || !page_cache) return r;
  const core::Node& node = *as_open(fh)->node;
  const std::uint64_t file_size = node.size();
  const auto pos = static_cast<std::uint64_t>(off);
  if (pos >= file_size) return r;
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, file_size - pos));
  if (r->bytes().size() >= want) return r;
  if (want <= r->page.size() && !r->use_owned) {
    if (node.kind == core::NodeKind::Text || node.kind == core::NodeKind::Seq) {
      std::memset(r->page.data() + r->len, 0, want - r->len);
      r->len = want;
      return r;
    }
  }
  std::string all(r->bytes());
  while (node.kind == core::NodeKind::Bin && all.size() < want) {
    auto more = read_bytes(caller, fh, want - all.size(), static_cast<off_t>(pos + all.size()));
    if (!more) return more.error();
    if (more->bytes().empty()) break;
    all.append(more->bytes());
  }
  all.resize(want, '\0');
  ReadOut out;
  out.owned = std::move(all);
  out.use_owned = true;
  return out;
}

// A machine that is off answers nothing but its control plane
// (core/env.hpp powered_off): a device file is ENODEV, as a device that
// is gone.
bool Server::powered_off(const core::Node& node) const {
  if (!env_.powered_off.load(std::memory_order_acquire)) return false;
  return !tree_.path_of(node.ino).starts_with("kernel/debug/vsysfs");
}

core::Result<ReadOut> Server::read_bytes(const core::Caller& caller, std::uint64_t fh,
                                         std::size_t size, off_t off) {
  OpenFile* of = as_open(fh);
  const core::Node& node = *of->node;
  if (!node.alive.load() || powered_off(node)) return core::Errno{ENODEV};
  if (off < 0) return core::Errno{EINVAL};
  const auto pos = static_cast<std::uint64_t>(off);
  ReadOut out;

  if (node.kind == core::NodeKind::Stream) {
    // The synchronous path (no request to park: tests, state replay)
    // never waits.
    core::MutexLock hold(of->mu);
    return stream_read_locked(*of, size);
  }

  if (node.kind == core::NodeKind::Bin) {
    if (!node.has_read) return core::Errno{EIO};
    const std::uint64_t limit = node.size();
    std::size_t count = std::min<std::size_t>(size, core::kPageSize);
    if (limit != 0) {
      if (pos >= limit) return out;  // EOF
      count = static_cast<std::size_t>(std::min<std::uint64_t>(count, limit - pos));
    }
    VSYSFS_TRY_STATUS(inject(core::FaultPoint::Show, caller, node));
    auto n = node.bin_read(caller, pos, std::span<char>(out.page.data(), count));
    if (!n) return n.error();
    out.len = std::min(*n, count);
    return out;
  }

  core::MutexLock hold(of->mu);
  // show() runs for a read at offset 0 and whenever there is no snapshot
  // yet; other offsets slice the snapshot (modern seq_file rule, 1.3).
  if (off == 0 || !of->have_snapshot) {
    if (!node.has_read) return core::Errno{EIO};
    VSYSFS_TRY_STATUS(inject(core::FaultPoint::Show, caller, node));
    of->seen_event = node.event.load();
    of->have_snapshot = false;
    if (node.kind == core::NodeKind::Seq) {
      of->seq.clear();
      VSYSFS_TRY_STATUS(node.seq_show(of->seq));
    } else {
      if (!of->page) of->page = std::make_unique<core::PageBuffer>();
      of->page->clear();
      VSYSFS_TRY_STATUS(node.show(*of->page));
      if (of->page->overflowed())
        env_.log(nullptr, "sysfs", "fill_read_buffer", "bad count",
                 {{"path", tree_.path_of(node.ino)}, {"clamped_to", core::PageBuffer::kCapacity}});
    }
    of->have_snapshot = true;
  }
  const std::string_view all =
      node.kind == core::NodeKind::Seq ? std::string_view(of->seq) : of->page->view();
  if (pos >= all.size()) return out;
  // Copied out under the lock: the reply must not depend on `of`.
  const std::string_view slice = all.substr(pos, size);
  if (slice.size() <= out.page.size()) {
    slice.copy(out.page.data(), slice.size());
    out.len = slice.size();
  } else {
    out.owned.assign(slice);
    out.use_owned = true;
  }
  return out;
}

core::Result<std::size_t> Server::write(const core::Caller& caller, std::uint64_t fh,
                                        std::string_view data, off_t off) {
  OpenFile* of = as_open(fh);
  const core::Node& node = *of->node;
  if (!node.alive.load() || powered_off(node)) return core::Errno{ENODEV};
  if (!node.has_write) return core::Errno{EIO};

  if (node.kind == core::NodeKind::Bin) {
    if (off < 0) return core::Errno{EINVAL};
    const auto pos = static_cast<std::uint64_t>(off);
    const std::uint64_t limit = node.size();
    std::size_t count = std::min(data.size(), core::kPageSize);
    if (limit != 0) {
      if (pos >= limit) return core::Errno{EFBIG};  // sysfs_kf_bin_write
      count = static_cast<std::size_t>(std::min<std::uint64_t>(count, limit - pos));
    }
    if (count == 0) return std::size_t{0};
    VSYSFS_TRY_STATUS(inject(core::FaultPoint::Store, caller, node));
    core::ConditionalLock order;
    VSYSFS_TRY_STATUS(lock_order(caller, order));
    auto n = node.bin_write(caller, pos, std::span<const char>(data.data(), count));
    if (!n) return n.error();
    if (journal_ && *n > 0) {
      auto rec = core::StateRecord::bin_write(tree_.path_of(node.ino),
                                              std::string(data.substr(0, count)), pos);
      VSYSFS_TRY_STATUS(journal_append(caller, rec));
    }
    return std::min(*n, count);
  }

  // Text and seq attributes: the offset is ignored, at most a page reaches
  // store(), NUL-terminated; a zero-length write never calls it (1.4).
  if (data.empty()) return std::size_t{0};
  const std::size_t count = std::min(data.size(), core::kPageSize);
  char buf[core::kPageSize + 1];
  std::memcpy(buf, data.data(), count);
  buf[count] = '\0';
  VSYSFS_TRY_STATUS(inject(core::FaultPoint::Store, caller, node));
  core::ConditionalLock order;
  VSYSFS_TRY_STATUS(lock_order(caller, order));
  auto n = node.store(caller, std::string_view(buf, count));
  if (n && *n > 0 && journal_) {
    // Exactly what store() saw: replay hands it the same buffer.
    auto rec = core::StateRecord::store(tree_.path_of(node.ino), std::string(buf, count));
    if (auto st = journal_store(caller, rec); !st) n = st.error();
  } else if (!n && journal_ && caller.applied()) {
    // Interrupted part way (EINTR): the part it did apply is a change
    // like any other, recorded as the equivalent complete store.
    auto rec = core::StateRecord::store(tree_.path_of(node.ino), *caller.applied());
    (void)journal_append(caller, rec);
  }
  {
    // A write on this descriptor makes the next read re-run show().
    core::MutexLock lock(of->mu);
    of->have_snapshot = false;
  }
  if (!n) return n.error();
  return std::min(*n, count);
}

// The store/show failure points (docs/fault-injection.md): checked before
// the device sees the request, so an injected failure changes nothing and
// journals nothing.
core::Status Server::inject(core::FaultPoint point, const core::Caller& caller,
                            const core::Node& node) {
  if (!env_.faults || !env_.faults->armed(point)) return {};
  // delay_ms is read before the decision, as the errno is inside it.
  const std::uint32_t delay_ms = env_.faults->settings(point).delay_ms;
  const std::string path = tree_.path_of(node.ino);
  auto e = env_.faults->should_fail_attr(point, caller, path);
  if (!e) return {};
  if (delay_ms == 0) return *e;
  // Simulated latency: this worker waits for the simulation clock, then
  // the request runs as if nothing happened. An interrupt (the caller got
  // a signal) ends the wait with EINTR and a stopping daemon with ENODEV,
  // both before the device saw anything (docs/fault-injection.md section 3.11).
  const std::string_view name = core::fault_point_name(point);
  bool started = false;
  bool stopping = false;
  const auto end = env_.faults->delay(std::chrono::milliseconds(delay_ms), [&] {
    // The first call comes once the timer is armed: from the "start" event
    // on, an advance of the clock counts towards this request's deadline.
    if (!started) {
      started = true;
      env_.log(&caller, "fault_inject", "delay", "start",
               {{"name", name}, {"path", path}, {"delay_ms", delay_ms}});
    }
    if (caller.interrupted()) return true;
    stopping = session_exited();
    return stopping;
  });
  switch (end) {
    case core::FaultInjection::DelayEnd::Elapsed:
      env_.log(&caller, "fault_inject", "delay", "done", {{"name", name}, {"path", path}});
      return {};
    case core::FaultInjection::DelayEnd::Overflow:
      // Every delay slot is taken: the request runs at once.
      env_.log(&caller, "fault_inject", "delay", "overflow",
               {{"name", name}, {"path", path}, {"limit", core::FaultInjection::kMaxDelayed}});
      return {};
    case core::FaultInjection::DelayEnd::Cancelled:
      break;
  }
  const core::Errno err{stopping ? ENODEV : EINTR};
  env_.log(&caller, "fault_inject", "delay", err.name(), {{"name", name}, {"path", path}});
  return err;
}

bool Server::session_exited() {
  core::MutexLock lock(queue_mu_);
  return stop_ || (session_ != nullptr && fuse_session_exited(session_) != 0);
}

core::Status Server::lock_order(const core::Caller& caller, core::ConditionalLock& order) {
  if (!journal_) return {};
  // How often a change waiting for the order lock looks at its own
  // interruption: a long change (a clock advance) may hold the lock for
  // as long as its writer lets it run.
  constexpr auto kWaitPoll = std::chrono::milliseconds(20);
  if (!order.acquire(journal_->order_mutex(), kWaitPoll, [&] { return caller.interrupted(); }))
    return core::Errno{EINTR};  // nothing changed
  return {};
}

core::Status Server::journal_append(const core::Caller& caller, core::StateRecord& rec) {
  // Taken by the caller with a ConditionalLock (only when there is a journal).
  journal_->order_mutex().assert_held();
  if (rec.kind == core::StateRecord::Kind::Store || rec.kind == core::StateRecord::Kind::BinWrite) {
    rec.uid = caller.uid();
    rec.gid = caller.gid();
  }
  auto st = journal_->append(rec);
  if (!st) {
    // The change happened but is not durable: the writer gets EIO, and
    // the log says which change may not survive a crash.
    env_.log(&caller, "vsysfs", "state_append", st.error().name(), {{"path", rec.path}});
    return core::Errno{EIO};
  }
  // Past the bound, the journal becomes a base again. The record is
  // durable already: a compaction that fails costs only file size (it is
  // logged and tried again at the next record).
  if (make_base_ && journal_->journal_bytes() > compact_bound_) (void)compact_journal(&caller);
  return {};
}

core::Status Server::journal_store(const core::Caller& caller, core::StateRecord& rec) {
  journal_->order_mutex().assert_held();
  switch (caller.journal()) {
    case core::Caller::Journal::Record:
      return journal_append(caller, rec);
    case core::Caller::Journal::Skip:
      return {};
    case core::Caller::Journal::Base:
      // The change is durable only in a new base. A machine that cannot
      // make one refused the store already (it cannot restore either).
      if (!make_base_) {
        env_.log(&caller, "vsysfs", "state_append", "EOPNOTSUPP", {{"path", rec.path}});
        return core::Errno{EIO};
      }
      return compact_journal(&caller);
  }
  return core::Errno{EIO};
}

core::Status Server::compact_journal(const core::Caller* caller) {
  journal_->order_mutex().assert_held();
  const std::uint64_t before = journal_->journal_bytes();
  auto base = make_base_();
  if (!base) {
    env_.log(caller, "vsysfs", "state_compact", base.error().name(), {{"journal_bytes", before}});
    return core::Errno{EIO};
  }
  try {
    journal_->rewrite_base(*base);
  } catch (const std::exception& e) {
    env_.log(caller, "vsysfs", "state_compact", "EIO",
             {{"journal_bytes", before}, {"problem", std::string(e.what())}});
    return core::Errno{EIO};
  }
  env_.log(caller, "vsysfs", "state_compact", "OK",
           {{"journal_bytes", before}, {"base_bytes", base->size()}});
  return {};
}

void Server::release(std::uint64_t fh) {
  OpenFile* of = as_open(fh);
  {
    core::MutexLock lock(pollers_mu_);
    if (of->polled) {
      auto it = pollers_.find(of->node->ino);
      if (it != pollers_.end()) {
        it->second.erase(of);
        if (it->second.empty()) pollers_.erase(it);
      }
    }
    stream_pollers_.erase(of);
    if (of->poll_handle) fuse_pollhandle_destroy(of->poll_handle);
  }
  // No wake may reach this file once it is freed.
  if (of->wait_queue) of->wait_queue->remove(of->waker_id);
  // A read or write on another worker may still be inside show()/store()
  // with of->mu held (a close can race a read on a shared descriptor):
  // wait for it before freeing the mutex.
  { core::MutexLock wait_for_reader(of->mu); }
  {
    core::MutexLock lock(handles_mu_);
    open_files_.erase(of);
  }
  delete of;
}

void Server::flush_locks(core::Ino ino, std::uint64_t lock_owner) {
  locks_.release_posix(ino, lock_owner);
}

void Server::release_locks(core::Ino ino, std::uint64_t fh, bool flock_release) {
  // The flock owner is the handle too (fs/ops.cpp flock_owner).
  if (flock_release) locks_.release_flock(ino, fh);
  locks_.release_file(ino, fh);
}

core::Result<PollOut> Server::poll(std::uint64_t fh, fuse_pollhandle* ph) {
  OpenFile* of = as_open(fh);
  if (of->node->kind == core::NodeKind::Stream) {
    // trace_poll (kernel/trace/trace.c): EPOLLIN | EPOLLRDNORM when there
    // is something to read, else nothing and wait. Registered before
    // looking, so an event between the two still wakes the poller.
    if (ph) {
      core::MutexLock lock(pollers_mu_);
      if (of->poll_handle) fuse_pollhandle_destroy(of->poll_handle);
      of->poll_handle = ph;
      stream_pollers_.insert(of);
    }
    core::MutexLock hold(of->mu);
    if (!of->node->alive.load()) return PollOut{POLLIN | POLLRDNORM | POLLERR};
    return PollOut{of->stream->ready() ? static_cast<unsigned>(POLLIN | POLLRDNORM) : 0U};
  }
  // Register before looking at the counter, so a notify between the two
  // still wakes this poller.
  if (ph) {
    core::MutexLock lock(pollers_mu_);
    if (of->poll_handle) fuse_pollhandle_destroy(of->poll_handle);
    of->poll_handle = ph;
    of->polled = true;
    pollers_[of->node->ino].insert(of);
  }
  std::uint64_t seen;
  {
    core::MutexLock lock(of->mu);
    seen = of->seen_event;
  }
  PollOut out{kDefaultPollMask};
  if (!of->node->alive.load() || of->node->event.load() != seen) out.revents |= kNotifiedMask;
  return out;
}

// --- stream files ------------------------------------------------------------

bool Server::is_stream(std::uint64_t fh) const {
  return as_open(fh)->node->kind == core::NodeKind::Stream;
}

Server::ReadTicket Server::new_read_ticket() {
  core::MutexLock lock(streams_mu_);
  const ReadTicket t = next_ticket_++;
  unparked_.emplace(t, false);
  return t;
}

std::size_t Server::parked_reads() const {
  core::MutexLock lock(streams_mu_);
  return parked_.size();
}

core::Result<ReadOut> Server::stream_read_locked(OpenFile& of, std::size_t size) {
  if (!of.node->alive.load()) return core::Errno{ENODEV};
  ReadOut out;
  if (size <= out.page.size()) {
    auto n = of.stream->read(std::span<char>(out.page.data(), size));
    if (!n) return n.error();
    out.len = *n;
    return out;
  }
  out.owned.resize(size);
  auto n = of.stream->read(std::span<char>(out.owned.data(), size));
  if (!n) return n.error();
  out.owned.resize(*n);
  out.use_owned = true;
  return out;
}

void Server::read_stream(ReadTicket ticket, std::uint64_t fh, std::size_t size, bool nonblock,
                         ReadDone done) {
  OpenFile* of = as_open(fh);
  core::Result<ReadOut> r = core::Errno{EAGAIN};
  {
    core::MutexLock hold(of->mu);
    r = stream_read_locked(*of, size);
    core::MutexLock lock(streams_mu_);
    auto it = unparked_.find(ticket);
    const bool interrupted = it != unparked_.end() && it->second;
    if (it != unparked_.end()) unparked_.erase(it);
    if (!r && r.error() == core::Errno{EAGAIN} && !nonblock) {
      // Parked under of->mu, which the stream's reads take too: an event
      // recorded after the read above queues a wake that finds this entry.
      if (interrupted)
        r = core::Errno{EINTR};
      else if (streams_closed_)
        r = core::Errno{ENODEV};
      else {
        parked_.emplace(ticket, ParkedRead{of, size, std::move(done)});
        return;
      }
    }
  }
  // The reply owns its bytes: `of` may be released as soon as it is sent.
  done(std::move(r));
}

void Server::cancel_read(ReadTicket ticket) {
  ReadDone done;
  {
    core::MutexLock lock(streams_mu_);
    if (auto it = parked_.find(ticket); it != parked_.end()) {
      done = std::move(it->second.done);
      parked_.erase(it);
    } else if (auto u = unparked_.find(ticket); u != unparked_.end()) {
      u->second = true;  // read_stream ends it when it would park
      return;
    } else {
      return;  // completed already: the interrupt raced the reply
    }
  }
  done(core::Errno{EINTR});
}

void Server::stream_wake() {
  bool inline_wake = false;
  {
    core::MutexLock lock(queue_mu_);
    if (stop_) return;  // detach() ends what is parked
    inline_wake = session_ == nullptr;
  }
  if (inline_wake) return wake_streams();
  // One queued wake serves a burst: the notifier clears the flag before it
  // reads, so an event after that queues another.
  if (stream_wake_queued_.exchange(true)) return;
  if (enqueue({Notice::StreamWake, 0, {}}) == 0) stream_wake_queued_.store(false);
}

void Server::wake_streams() {
  std::map<ReadTicket, ParkedRead> woken;
  {
    core::MutexLock lock(streams_mu_);
    woken.swap(parked_);
    // Until each is parked again or answered, an interrupt marks it.
    for (const auto& entry : woken) unparked_.emplace(entry.first, false);
  }
  for (auto& [ticket, p] : woken)
    read_stream(ticket, reinterpret_cast<std::uint64_t>(p.of), p.size, false, std::move(p.done));
  // Every poller of a stream polls again; one whose stream has nothing
  // new (another wait queue was woken) just registers again.
  core::MutexLock lock(pollers_mu_);
  for (OpenFile* of : stream_pollers_) {
    if (!of->poll_handle) continue;
    fuse_lowlevel_notify_poll(of->poll_handle);
    fuse_pollhandle_destroy(of->poll_handle);
    of->poll_handle = nullptr;
  }
}

void Server::abort_streams(core::Errno err) {
  std::map<ReadTicket, ParkedRead> aborted;
  {
    core::MutexLock lock(streams_mu_);
    streams_closed_ = true;
    aborted.swap(parked_);
  }
  for (auto& [ticket, p] : aborted) p.done(err);
}

// --- extended attributes -------------------------------------------------------

namespace {

enum class XattrNs { Security, Trusted, User };

// xattr_resolve_name over kernfs_xattr_handlers: a name outside the three
// namespaces has no handler (EOPNOTSUPP); a bare prefix is EINVAL. FUSE
// hands the daemon every name, so the daemon resolves it as kernfs would.
core::Result<XattrNs> xattr_namespace(std::string_view name) {
  static constexpr std::pair<std::string_view, XattrNs> kHandlers[] = {
      {"security.", XattrNs::Security},
      {"trusted.", XattrNs::Trusted},
      {"user.", XattrNs::User},
  };
  for (const auto& [prefix, ns] : kHandlers) {
    if (!name.starts_with(prefix)) continue;
    if (name.size() == prefix.size()) return core::Errno{EINVAL};
    return ns;
  }
  return core::Errno{EOPNOTSUPP};
}

}  // namespace

core::Result<std::string> Server::getxattr(core::Ino ino, std::string_view name) {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  if (auto ns = xattr_namespace(name); !ns) return ns.error();
  // kernfs_vfs_xattr_get serves all three namespaces: user.* reads find
  // nothing on sysfs (nothing can be set there), ENODATA.
  return tree_.xattr_get(ino, name);
}

core::Status Server::setxattr(core::Ino ino, std::string_view name, std::string_view value,
                              int flags) {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  auto ns = xattr_namespace(name);
  if (!ns) return ns.error();
  // kernfs_vfs_user_xattr_set: user.* needs KERNFS_ROOT_SUPPORT_USER_XATTR,
  // which cgroupfs sets and sysfs does not.
  if (*ns == XattrNs::User) return core::Errno{EOPNOTSUPP};
  return tree_.xattr_set(ino, name, value, flags, now_realtime());
}

core::Status Server::removexattr(core::Ino ino, std::string_view name) {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  auto ns = xattr_namespace(name);
  if (!ns) return ns.error();
  if (*ns == XattrNs::User) return core::Errno{EOPNOTSUPP};
  // removexattr is a set with a NULL value and XATTR_REPLACE.
  return tree_.xattr_set(ino, name, std::nullopt, core::kXattrReplace, now_realtime());
}

core::Result<std::string> Server::listxattr(const core::Caller& caller, core::Ino ino) {
  auto node = tree_.get(ino);
  if (!node) return core::Errno{ENOENT};
  // simple_xattr_list hides trusted.* from callers without CAP_SYS_ADMIN
  // (the VFS would refuse them a getxattr of those names as well).
  const auto names = tree_.xattr_names(ino);
  std::string out;
  bool trusted = false;
  bool asked = false;
  for (const auto& name : names) {
    if (name.starts_with("trusted.")) {
      if (!asked) {
        trusted = caller.capable(core::Capability::SysAdmin);
        asked = true;
      }
      if (!trusted) continue;
    }
    out.append(name);
    out.push_back('\0');
  }
  return out;
}

core::Result<std::uint64_t> Server::opendir(core::Ino ino) {
  auto entries = tree_.list(ino);
  if (!entries) return entries.error();
  auto* dh = new DirHandle;
  {
    core::MutexLock lock(handles_mu_);
    dir_handles_.insert(dh);
  }
  auto node = tree_.get(ino);
  auto up = node ? tree_.get(node->parent) : nullptr;
  dh->entries.reserve(entries->size() + 2);
  dh->entries.push_back({".", node ? node->st_ino() : ino, core::NodeKind::Dir});
  dh->entries.push_back({"..", up ? up->st_ino() : ino, core::NodeKind::Dir});
  // In kernfs order (core/tree.hpp kernfs_name_hash): the tree lists by
  // name, and a stable sort by hash keeps name order among equal hashes,
  // as kernfs_sd_compare does.
  std::vector<std::pair<std::uint32_t, core::DirEntry*>> order;
  order.reserve(entries->size());
  for (auto& e : *entries) order.emplace_back(core::kernfs_name_hash(e.name), &e);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [hash, e] : order) dh->entries.push_back({std::move(e->name), e->st_ino, e->kind});
  return reinterpret_cast<std::uint64_t>(dh);
}

void Server::releasedir(std::uint64_t dh) {
  auto* handle = reinterpret_cast<DirHandle*>(dh);
  {
    core::MutexLock lock(handles_mu_);
    dir_handles_.erase(handle);
  }
  delete handle;
}

// --- kernel notifications ----------------------------------------------------

std::uint64_t Server::enqueue(Notice n) {
  std::uint64_t seq;
  {
    core::MutexLock lock(queue_mu_);
    if (!session_ || stop_) return 0;  // nothing is cached before the mount
    seq = n.seq = ++queued_seq_;
    queue_.push_back(std::move(n));
  }
  queue_cv_.notify_one();
  return seq;
}

void Server::wait_sent(std::uint64_t seq) {
  if (seq == 0) return;
  // Bounded, never a hang: with a single worker (-s) the kernel may hold
  // the directory lock for a LOOKUP that only this thread could answer.
  const auto deadline = std::chrono::steady_clock::now() + kInvalidationWait;
  core::MutexLock lock(queue_mu_);
  while (!stop_ && session_ && sent_seq_ < seq)
    if (!sent_cv_.wait_until(queue_mu_, deadline)) break;
}

void Server::notified(core::Ino ino) { enqueue({Notice::Poll, ino, {}}); }

// Hotplug must be visible the moment the change returns (docs/performance.md): the
// kernel may hold a cached entry, or a cached "no such file", for an hour.
// So the thread that changed the tree (a knob's store, a device timer)
// waits until the kernel has dropped the entry, before its request replies.
// A directory the kernel never looked up (nlookup 0) has nothing cached
// under it: a new device's subtree costs no notification per file.
void Server::entry_changed(core::Ino parent, const std::string& name, core::Ino) {
  if (parent != core::kRootIno) {
    auto dir = tree_.get(parent);
    if (!dir || dir->nlookup.load() == 0) return;
  }
  wait_sent(enqueue({Notice::InvalEntry, parent, name}));
}

void Server::attr_changed(core::Ino ino) { enqueue({Notice::InvalInode, ino, {}}); }

void Server::notifier_loop() {
  for (;;) {
    Notice n;
    fuse_session* se;
    {
      core::MutexLock lock(queue_mu_);
      while (!stop_ && queue_.empty()) queue_cv_.wait(queue_mu_);
      if (stop_) return;
      n = std::move(queue_.front());
      queue_.pop_front();
      se = session_;
    }
    switch (n.kind) {
      case Notice::Poll: {
        core::MutexLock lock(pollers_mu_);
        auto it = pollers_.find(n.ino);
        if (it == pollers_.end()) break;
        for (OpenFile* of : it->second) {
          if (!of->poll_handle) continue;
          fuse_lowlevel_notify_poll(of->poll_handle);
          fuse_pollhandle_destroy(of->poll_handle);
          of->poll_handle = nullptr;
        }
        break;
      }
      case Notice::InvalEntry:
        // -ENOENT just means the kernel had nothing cached.
        (void)fuse_lowlevel_notify_inval_entry(se, n.ino, n.name.data(), n.name.size());
        break;
      case Notice::InvalInode:
        (void)fuse_lowlevel_notify_inval_inode(se, n.ino, 0, 0);
        break;
      case Notice::StreamWake:
        stream_wake_queued_.store(false);
        wake_streams();
        break;
    }
    {
      core::MutexLock lock(queue_mu_);
      sent_seq_ = n.seq;
    }
    sent_cv_.notify_all();
  }
}

}  // namespace vsysfs::fs
