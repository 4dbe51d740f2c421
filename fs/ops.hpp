#pragma once

// The FUSE low-level operations table; the session's userdata must be the
// fs::Server.

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "fs/server.hpp"

namespace vsysfs::fs {

fuse_lowlevel_ops make_lowlevel_ops();

}  // namespace vsysfs::fs
