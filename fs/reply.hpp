#pragma once

// reply(): the only place that calls fuse_reply_*. One overload per result
// type; each sends exactly one reply for its request.

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "fs/server.hpp"

namespace vsysfs::fs {

void reply_error(fuse_req_t req, core::Errno e) noexcept;
void reply(fuse_req_t req, core::Status s) noexcept;
void reply(fuse_req_t req, const core::Result<EntryOut>& r) noexcept;
void reply(fuse_req_t req, const core::Result<AttrOut>& r) noexcept;
void reply(fuse_req_t req, const core::Result<std::string>& r) noexcept;  // readlink
// false when the kernel will never see the handle (interrupted open).
bool reply_open(fuse_req_t req, const core::Result<OpenOut>& r, fuse_file_info* fi) noexcept;
void reply_opendir(fuse_req_t req, const core::Result<std::uint64_t>& r,
                   fuse_file_info* fi) noexcept;
void reply(fuse_req_t req, const core::Result<ReadOut>& r) noexcept;
void reply_write(fuse_req_t req, const core::Result<std::size_t>& r) noexcept;
void reply(fuse_req_t req, const core::Result<PollOut>& r) noexcept;
// A negative entry the kernel may cache: lookups of absent names.
void reply_negative_entry(fuse_req_t req) noexcept;

}  // namespace vsysfs::fs
