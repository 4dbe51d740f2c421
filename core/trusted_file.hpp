#pragma once

// Opening the daemon's own files (the machine description, -o state=FILE
// and its lock, -o events=FILE) across a trust boundary: a root daemon
// must not be steered by whoever can write the directories those files
// live in. The rules follow OpenSSH's StrictModes (auth.c secure_path,
// auth_secure_path): a file the daemon trusts is a regular file owned by
// the daemon's user, not writable by group or others, with one link,
// reached without a symbolic link at its last component, in a directory
// chain that only root or the daemon's user can change (or, for a
// world-writable directory such as /tmp, one with the sticky bit, where
// nobody else can rename or remove the daemon's files). What is refused
// and why, with the messages: docs/trust-files.md.
//
// Every file is opened with O_NONBLOCK before it is fstat()ed, so a FIFO
// cannot block start-up (open(2) of a FIFO for reading blocks until a
// writer appears) and a device cannot feed endless bytes: only regular
// files of bounded size are read.
//
// Errors are one line (no trailing newline), thrown as TrustError; the
// caller prefixes nothing: the message names the file and its role.
//
// Thread-safety: free functions on the start-up thread; no shared state.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vsysfs::core {

class TrustError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Size limits (docs/trust-files.md "Limits").
inline constexpr std::uint64_t kMaxMachineFileBytes =
    32ULL << 20;  // 32 MiB (recordings, docs/recording.md)
inline constexpr std::uint64_t kMaxStateFileBytes = 1ULL << 30;    // 1 GiB

// "regular file", "directory", "FIFO", "character device", ...
const char* file_type_name(mode_t mode);

// `path` made absolute without following a symbolic link at its last
// component: the directory part is resolved (realpath), the last
// component is kept as given. Throws TrustError "ROLE PATH: ..." when the
// directory does not exist or the last component is empty, "." or "..".
std::string absolute_keep_last(const std::string& path, const std::string& role);

// Checks every directory from `dir` (absolute, resolved) up to "/": each
// must be owned by root or the effective uid, and not writable by group
// or others unless its sticky bit is set. Returns "" or the problem
// ("directory /x is writable by others without the sticky bit (mode 0777)").
std::string untrusted_directory(const std::string& dir);

// Checks an fstat()ed file the daemon will trust: a regular file, owned
// by the effective uid, with none of `forbidden_mode` bits (e.g. 022), one
// link, at most `max_bytes` (0: no limit). Returns "" or the problem.
std::string untrusted_file(const struct stat& st, mode_t forbidden_mode, std::uint64_t max_bytes);

// Reads a whole input file the daemon does not write (the machine file):
// opened O_RDONLY|O_NONBLOCK (a symbolic link is followed; fstat checks
// what it points to), refused unless a regular file of at most
// `max_bytes`. Throws TrustError "PATH: ..." (an I/O error: "PATH: cannot
// read ROLE: strerror").
std::string read_regular_file(const std::string& path, std::uint64_t max_bytes,
                              const std::string& role = "file");

// Writes all of `data` to `fd`, past short writes and EINTR; false with
// errno set on an error (the state journal and snapshot files use it).
bool write_all(int fd, std::string_view data);

}  // namespace vsysfs::core
