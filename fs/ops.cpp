// The fuse_lowlevel_ops table: one noexcept shim per operation. Each unpacks
// its arguments, calls one Server method and replies exactly once through
// reply(); nothing may unwind into libfuse (a backstop replies EIO).
// This is the only file that knows the ops table.

#include "fs/ops.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <cstdio>

#include "fs/reply.hpp"

namespace vsysfs::fs {
namespace {

Server& server(fuse_req_t req) { return *static_cast<Server*>(fuse_req_userdata(req)); }

// The request's interruption as the device layer sees it: libfuse marks
// the request when FUSE_INTERRUPT for it arrives (the writer got a signal;
// another worker reads it). Polled, not a callback: a callback may run on
// that other worker after this request replied.
bool request_interrupted(void* req) {
  return fuse_req_interrupted(static_cast<fuse_req_t>(req)) != 0;
}

// Valid while the request is: it carries the request for interrupted().
core::Caller caller_of(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  core::Caller caller(ctx->pid, ctx->uid, ctx->gid);
  caller.set_interrupt_check(&request_interrupted, req);
  return caller;
}

// Runs `body`; if it throws, replies EIO (if it had not replied yet, which
// a throwing body never has: replies are its last statement).
template <typename Body>
void guarded(fuse_req_t req, Body&& body) noexcept {
  try {
    body();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vsysfs: internal error: %s\n", e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    fuse_reply_err(req, EIO);
  }
}

void op_init(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  // flock and POSIX locks are served by the daemon (docs/design.md section 9).
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  if (conn->capable & FUSE_CAP_POSIX_LOCKS) conn->want |= FUSE_CAP_POSIX_LOCKS;
  // A sysfs symlink never changes its target: removal kills the node and a
  // re-added link gets a new inode. So the kernel may keep targets in its
  // page cache: one READLINK per link instead of one per path walk through
  // it (class/net/eth0/...; docs/performance.md).
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  // O_TRUNC arrives as a setattr(size=0), which kernfs ignores.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  guarded(req, [&] {
    auto r = server(req).lookup(parent, name);
    if (!r && r.error() == core::Errno{ENOENT}) return reply_negative_entry(req);
    reply(req, r);
  });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept {
  try {
    server(req).forget(ino, nlookup);
  } catch (...) {
  }
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept {
  try {
    for (size_t i = 0; i < count; ++i) server(req).forget(forgets[i].ino, forgets[i].nlookup);
  } catch (...) {
  }
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) noexcept {
  guarded(req, [&] { reply(req, server(req).getattr(ino)); });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                fuse_file_info*) noexcept {
  guarded(req, [&] {
    SetAttrIn in;
    in.set_mode = to_set & FUSE_SET_ATTR_MODE;
    in.mode = attr->st_mode;
    in.set_uid = to_set & FUSE_SET_ATTR_UID;
    in.uid = attr->st_uid;
    in.set_gid = to_set & FUSE_SET_ATTR_GID;
    in.gid = attr->st_gid;
    in.set_size = to_set & FUSE_SET_ATTR_SIZE;
    in.size = attr->st_size;
    in.set_atime = to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW);
    in.atime_now = to_set & FUSE_SET_ATTR_ATIME_NOW;
    in.atime = attr->st_atim;
    in.set_mtime = to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW);
    in.mtime_now = to_set & FUSE_SET_ATTR_MTIME_NOW;
    in.mtime = attr->st_mtim;
    reply(req, server(req).setattr(caller_of(req), ino, in));
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) noexcept {
  guarded(req, [&] { reply(req, server(req).readlink(ino)); });
}

// sysfs refuses to create anything (docs/kernel-semantics.md section 1.7): a new name is EACCES
// through create (the directory has no create op), the rest EPERM.
void op_create(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) noexcept {
  fuse_reply_err(req, EACCES);
}
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) noexcept {
  fuse_reply_err(req, EPERM);
}
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) noexcept {
  fuse_reply_err(req, EPERM);
}
void op_unlink(fuse_req_t req, fuse_ino_t, const char*) noexcept { fuse_reply_err(req, EPERM); }
void op_rmdir(fuse_req_t req, fuse_ino_t, const char*) noexcept { fuse_reply_err(req, EPERM); }
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) noexcept {
  fuse_reply_err(req, EPERM);
}
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*,
               unsigned int flags) noexcept {
  // kernfs_iop_rename: non-zero renameat2 flags are EINVAL, else EPERM.
  fuse_reply_err(req, flags ? EINVAL : EPERM);
}
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) noexcept {
  fuse_reply_err(req, EPERM);
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  guarded(req, [&] {
    Server& s = server(req);
    auto r = s.open(ino, fi->flags);
    if (!reply_open(req, r, fi) && r) s.release(r->fh);
  });
}

// A read(2) on a direct-io file reaches us through fuse_direct_io, which
// always names the reader's files_struct (FUSE_READ_LOCKOWNER): lock_owner
// is non-zero. The page cache's reads (fuse_read_folio, readahead: a
// MAP_PRIVATE mapping's faults) send none.
bool page_cache_read(const fuse_file_info* fi) { return fi->lock_owner == 0; }

// An interrupt (the reader got a signal) ends its parked stream read with
// EINTR; the ticket travels in the data pointer.
void on_read_interrupt(fuse_req_t req, void* data) {
  server(req).cancel_read(reinterpret_cast<std::uintptr_t>(data));
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) noexcept {
  guarded(req, [&] {
    Server& s = server(req);
    if (s.is_stream(fi->fh)) {
      // A stream has no page to fault in (trace_pipe has no mmap).
      if (page_cache_read(fi)) return reply_error(req, core::Errno{EIO});
      // The ticket and its interrupt first: once read_stream parks the
      // request, another thread may reply to it at any time.
      const auto ticket = s.new_read_ticket();
      fuse_req_interrupt_func(req, on_read_interrupt, reinterpret_cast<void*>(ticket));
      s.read_stream(ticket, fi->fh, size, (fi->flags & O_NONBLOCK) != 0,
                    [req](core::Result<ReadOut> r) { reply(req, r); });
      return;
    }
    reply(req, s.read(caller_of(req), fi->fh, size, off, page_cache_read(fi)));
  });
}

void op_write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
              fuse_file_info* fi) noexcept {
  guarded(req, [&] {
    reply_write(req, server(req).write(caller_of(req), fi->fh, std::string_view(buf, size), off));
  });
}

// A flock belongs to the open file description. The kernel names it by the
// struct file's address (lock_owner), but RELEASE, which drops the lock, is
// sent asynchronously after that struct file is freed: a new open can get
// the same address, and its FLOCK can reach a worker before the old
// RELEASE. The daemon would then grant the new file "its own" lock and let
// the late RELEASE drop it, while a third process locks too. (The load
// test, tests/load/load.py, once saw two SMI clients in dcdbas's buffer at once, under
// flock; this race is the candidate cause, not a proven one: it did not
// reproduce on demand.) The FUSE handle has no such reuse: it is freed only
// after RELEASE has dropped its lock. OFD locks have the same owner id and
// the same race: their pieces remember the handle too, and RELEASE drops
// them by it (Server::release_locks).
std::uint64_t flock_owner(const fuse_file_info* fi) { return fi->fh; }

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  // Every close(2): lock_owner is the closing process (its files_struct).
  guarded(req, [&] {
    server(req).flush_locks(ino, fi->lock_owner);
    fuse_reply_err(req, 0);
  });
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  guarded(req, [&] {
    Server& s = server(req);
    // The last close of the open file description, also when the holder
    // died (the kernel closes its files). fi->lock_owner names the file
    // only after a flock (fuse_file_release): the handle is what we know.
    s.release_locks(ino, fi->fh, fi->flock_release);
    s.release(fi->fh);
    fuse_reply_err(req, 0);
  });
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  guarded(req, [&] { reply_opendir(req, server(req).opendir(ino), fi); });
}

void op_readdir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) noexcept {
  guarded(req, [&] {
    std::string buf(size, '\0');
    std::size_t used = 0;
    auto status = server(req).readdir(
        fi->fh, off, [&](const std::string& name, std::uint64_t ino, core::NodeKind kind, off_t next) {
          struct stat st {};
          st.st_ino = ino;
          st.st_mode = kind == core::NodeKind::Dir       ? S_IFDIR
                       : kind == core::NodeKind::Symlink ? S_IFLNK
                                                         : S_IFREG;
          const std::size_t need =
              fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, next);
          if (need > size - used) return false;
          used += need;
          return true;
        });
    if (!status) return reply(req, status);
    fuse_reply_buf(req, buf.data(), used);
  });
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  guarded(req, [&] {
    server(req).releasedir(fi->fh);
    fuse_reply_err(req, 0);
  });
}

void op_statfs(fuse_req_t req, fuse_ino_t) noexcept {
  struct statvfs st {};
  st.f_bsize = 4096;
  st.f_frsize = 4096;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

void op_poll(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, fuse_pollhandle* ph) noexcept {
  // Never ENOSYS: the kernel would remember it for the whole mount.
  guarded(req, [&] { reply(req, server(req).poll(fi->fh, ph)); });
}

// --- extended attributes -----------------------------------------------------

// getxattr/listxattr: size 0 asks for the length; a buffer too small is
// ERANGE (vfs_getxattr / vfs_listxattr semantics).
void reply_xattr_value(fuse_req_t req, const core::Result<std::string>& r, size_t size) {
  if (!r) return reply_error(req, r.error());
  if (size == 0) {
    fuse_reply_xattr(req, r->size());
    return;
  }
  if (r->size() > size) return reply_error(req, core::Errno{ERANGE});
  fuse_reply_buf(req, r->data(), r->size());
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  guarded(req, [&] { reply_xattr_value(req, server(req).getxattr(ino, name), size); });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  guarded(req, [&] { reply_xattr_value(req, server(req).listxattr(caller_of(req), ino), size); });
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                 size_t size, int flags) noexcept {
  guarded(req, [&] {
    reply(req, server(req).setxattr(ino, name, std::string_view(value, size), flags));
  });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  guarded(req, [&] { reply(req, server(req).removexattr(ino, name)); });
}

// --- locks -------------------------------------------------------------------

// `owner` is the FUSE lock owner (the process for POSIX locks, the open
// file description for OFD locks), fi->fh the open file description the
// request came through.
core::LockOwner lock_owner_of(fuse_req_t req, std::uint64_t owner, const fuse_file_info* fi) {
  const core::Caller caller = caller_of(req);
  return core::LockOwner{owner,        caller.pid(), caller.comm(), caller.prio(),
                         caller.uid(), fi->fh};
}

// An interrupt (the waiter got a signal) cancels its queued lock; the ticket
// travels in the data pointer so nothing needs freeing.
void on_lock_interrupt(fuse_req_t req, void* data) {
  server(req).locks().cancel(reinterpret_cast<std::uintptr_t>(data));
}

void op_flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) noexcept {
  guarded(req, [&] {
    Server& s = server(req);
    const core::LockType type = (op & LOCK_UN)   ? core::LockType::Unlock
                                : (op & LOCK_EX) ? core::LockType::Write
                                                 : core::LockType::Read;
    auto& locks = s.locks();
    const auto ticket = locks.new_ticket();
    fuse_req_interrupt_func(req, on_lock_interrupt, reinterpret_cast<void*>(ticket));
    locks.flock(ticket, ino, s.name_of(ino), lock_owner_of(req, flock_owner(fi), fi), type,
                !(op & LOCK_NB), [req](core::Status st) { reply(req, st); });
  });
}

void op_getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) noexcept {
  guarded(req, [&] {
    Server& s = server(req);
    const core::LockType type =
        lock->l_type == F_RDLCK ? core::LockType::Read : core::LockType::Write;
    core::PosixRange range{static_cast<std::uint64_t>(lock->l_start),
                           lock->l_len == 0 ? UINT64_MAX
                                            : static_cast<std::uint64_t>(lock->l_start + lock->l_len - 1)};
    auto held = s.locks().getlk(ino, lock_owner_of(req, fi->lock_owner, fi), type, range);
    struct flock out = *lock;
    if (!held) {
      out.l_type = F_UNLCK;
    } else {
      out.l_type = held->type == core::LockType::Read ? F_RDLCK : F_WRLCK;
      out.l_start = static_cast<off_t>(held->range.start);
      out.l_len = held->range.end == UINT64_MAX
                      ? 0
                      : static_cast<off_t>(held->range.end - held->range.start + 1);
      out.l_pid = held->owner.pid;
    }
    fuse_reply_lock(req, &out);
  });
}

void op_setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock,
              int sleep) noexcept {
  guarded(req, [&] {
    Server& s = server(req);
    if (lock->l_start < 0 || lock->l_len < 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    const core::LockType type = lock->l_type == F_UNLCK   ? core::LockType::Unlock
                                : lock->l_type == F_RDLCK ? core::LockType::Read
                                                          : core::LockType::Write;
    core::PosixRange range{static_cast<std::uint64_t>(lock->l_start),
                           lock->l_len == 0 ? UINT64_MAX
                                            : static_cast<std::uint64_t>(lock->l_start + lock->l_len - 1)};
    auto& locks = s.locks();
    const auto ticket = locks.new_ticket();
    fuse_req_interrupt_func(req, on_lock_interrupt, reinterpret_cast<void*>(ticket));
    locks.setlk(ticket, ino, s.name_of(ino), lock_owner_of(req, fi->lock_owner, fi), type, range,
                sleep != 0, [req](core::Status st) { reply(req, st); });
  });
}

}  // namespace

// Assigned field by field: designated initializers would have to follow the
// struct's declaration order, and -Wextra warns on every omitted member.
fuse_lowlevel_ops make_lowlevel_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.statfs = op_statfs;
  ops.create = op_create;
  ops.getlk = op_getlk;
  ops.setlk = op_setlk;
  ops.poll = op_poll;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.setxattr = op_setxattr;
  ops.removexattr = op_removexattr;
  ops.flock = op_flock;
  return ops;
}

}  // namespace vsysfs::fs
