#pragma once

// Files named by a caller (a path written to a control-plane knob:
// kernel/debug/vsysfs/machine/{save,load}, docs/snapshot.md), opened with
// the caller's own permissions, never the daemon's (docs/trust-files.md
// "Paths written by a caller").
//
// The daemon usually runs as root; a path a caller writes must not let it
// read or replace a file the caller could not. So the request's thread
// takes the caller's identity for the open: its filesystem uid and gid
// (setfsuid(2)/setfsgid(2), per thread in Linux) and its supplementary
// groups (the raw setgroups system call, which changes the calling thread
// only; glibc's wrapper would change every thread). Changing the
// filesystem uid from 0 to another clears CAP_DAC_OVERRIDE, CAP_FOWNER
// and the other filesystem capabilities from the thread's effective set
// (capabilities(7) "Effect of user ID changes on capabilities"), so the
// kernel checks the caller's permissions as its own open would. A caller
// with uid 0 but without CAP_DAC_OVERRIDE in the machine's namespace
// (core/caller.hpp) also loses CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
// CAP_FOWNER for the open. Afterwards the thread's identity is put back.
//
// A daemon run by a user can take no other identity: a caller with
// another uid is refused (EACCES); the user's own callers open as the
// daemon does.
//
// Rules (errnos as the open(2) a caller would have made, plus):
//   - the path must be absolute (EINVAL), at most PATH_MAX bytes
//     (ENAMETOOLONG), without a NUL;
//   - a symbolic link at the last component is refused (ELOOP,
//     O_NOFOLLOW); links in the directory part are the caller's to follow;
//   - reading: only a regular file (a directory: EISDIR; a FIFO, device
//     or socket: EINVAL, opened O_NONBLOCK so a FIFO never blocks), at
//     most `max_bytes` (EFBIG);
//   - writing: crash-safe. A temporary "PATH.tmp-XXXXXX" beside PATH is
//     created O_EXCL|O_NOFOLLOW, mode 0600 (the caller's file: the
//     snapshot holds root-only control-plane values), written, fsync'ed,
//     renamed over PATH (a symbolic link at PATH is replaced, never
//     followed), and the directory fsync'ed; on any failure the temporary
//     is removed and PATH is as it was.
//
// Thread-safety: each call changes and restores the calling thread's
// credentials only; no shared state.

#include <cstdint>
#include <string>
#include <string_view>

#include "core/caller.hpp"
#include "core/result.hpp"

namespace vsysfs::core {

Result<std::string> read_file_as(const Caller& caller, const std::string& path,
                                 std::uint64_t max_bytes);

Status write_file_as(const Caller& caller, const std::string& path, std::string_view data);

}  // namespace vsysfs::core
