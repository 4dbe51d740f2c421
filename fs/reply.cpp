#include "fs/reply.hpp"

#include <cerrno>

namespace vsysfs::fs {

void reply_error(fuse_req_t req, core::Errno e) noexcept { fuse_reply_err(req, e.value()); }

void reply(fuse_req_t req, core::Status s) noexcept { fuse_reply_err(req, s ? 0 : s.error().value()); }

void reply(fuse_req_t req, const core::Result<EntryOut>& r) noexcept {
  if (!r) return reply_error(req, r.error());
  fuse_entry_param e{};
  e.ino = r->ino;
  e.generation = r->generation;
  e.attr = r->attr;
  e.attr_timeout = r->timeout;
  e.entry_timeout = r->timeout;
  fuse_reply_entry(req, &e);
}

void reply_negative_entry(fuse_req_t req) noexcept {
  fuse_entry_param e{};
  e.ino = 0;
  e.entry_timeout = kCacheTimeout;
  fuse_reply_entry(req, &e);
}

void reply(fuse_req_t req, const core::Result<AttrOut>& r) noexcept {
  if (!r) return reply_error(req, r.error());
  fuse_reply_attr(req, &r->attr, r->timeout);
}

void reply(fuse_req_t req, const core::Result<std::string>& r) noexcept {
  if (!r) return reply_error(req, r.error());
  fuse_reply_readlink(req, r->c_str());
}

bool reply_open(fuse_req_t req, const core::Result<OpenOut>& r, fuse_file_info* fi) noexcept {
  if (!r) {
    reply_error(req, r.error());
    return true;
  }
  fi->fh = r->fh;
  // Content is computed: no page cache, every read reaches show().
  fi->direct_io = r->direct_io;
  fi->keep_cache = 0;
  fi->nonseekable = r->nonseekable;
  // -ENOENT: the open was interrupted and the kernel never saw the handle.
  return fuse_reply_open(req, fi) != -ENOENT;
}

void reply_opendir(fuse_req_t req, const core::Result<std::uint64_t>& r,
                   fuse_file_info* fi) noexcept {
  if (!r) return reply_error(req, r.error());
  fi->fh = *r;
  fuse_reply_open(req, fi);
}

void reply(fuse_req_t req, const core::Result<ReadOut>& r) noexcept {
  if (!r) return reply_error(req, r.error());
  const std::string_view bytes = r->bytes();
  fuse_reply_buf(req, bytes.data(), bytes.size());
}

void reply_write(fuse_req_t req, const core::Result<std::size_t>& r) noexcept {
  if (!r) return reply_error(req, r.error());
  fuse_reply_write(req, *r);
}

void reply(fuse_req_t req, const core::Result<PollOut>& r) noexcept {
  if (!r) return reply_error(req, r.error());
  fuse_reply_poll(req, r->revents);
}

}  // namespace vsysfs::fs
