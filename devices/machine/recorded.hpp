#pragma once

// Recorded files: what a real machine has and vsysfs does not model,
// replayed read-only from a recording (tools/vsysfs-record, docs/recording.md),
// the way umockdev replays a device: each file keeps the mode, stat size
// and bytes (or the errno a read gave) it had on the recorded machine.
//
//   [recorded]
//   dir  = [ { path = "devices/system/cpu/cpufreq", mode = 0o755 }, ... ]
//   file = [ { path = "devices/system/cpu/smt/control", mode = 0o644,
//              size = 4096, text = "on\n" },           text content
//            { path = ".../config", mode = 0o644, size = 256,
//              hex = "8680..." },                       binary content
//            { path = ".../resource0", mode = 0o600, size = 4096,
//              errno = "EINVAL" } ]                     every read fails so
//   link = [ { path = "class/net/eth0", target = "../../devices/..." } ]
//
// Served (kernel analogue: a kernfs node of a bin attribute without a
// write op, fs/kernfs/file.c):
//   read    the recorded bytes from the offset; 0 at or past their end;
//           the recorded errno instead when there is one
//   open for writing   EACCES (kernfs_fop_open: no write op), whatever the
//           recorded mode says: nothing recorded changes
//   stat    the recorded mode and size (sysfs text attributes stat 4096)
// Directories get the recorded mode; symbolic links the recorded target.
//
// The model wins: an entry whose path (or a parent of it) a device
// already built is not added, and is listed, one path a line, in
// kernel/debug/vsysfs/recorded/shadowed (0400), so nothing is dropped
// silently (a recorded directory the model made too is listed only when
// the modes differ). Entries are added directories first, then files,
// then links, so one entry can shadow another the same way. Entries under kernel/debug/vsysfs (the
// control plane) are refused.
//
// Bounds (checked at start-up; a violation is a machine-file error naming
// the entry): a path is relative, at most kMaxRecordedPath bytes and
// kMaxRecordedDepth components, none empty, "." or ".." nor longer than
// NAME_MAX; a link target is relative and its leading ".." components
// never climb above the mount root (no other ".." or "." allowed); at
// most kMaxRecordedEntries entries, kMaxRecordedFileBytes per file and
// kMaxRecordedTotalBytes in all; modes 0..0777.
//
// Thread-safety: a RecordedFile is immutable after construction.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/caller.hpp"
#include "core/result.hpp"

namespace vsysfs::devices {

inline constexpr std::size_t kMaxRecordedEntries = 200000;
inline constexpr std::size_t kMaxRecordedFileBytes = 1U << 20;    // 1 MiB (SMBIOS 3 tables fit)
inline constexpr std::size_t kMaxRecordedTotalBytes = 64U << 20;  // 64 MiB
inline constexpr std::size_t kMaxRecordedPath = 4096;             // PATH_MAX
inline constexpr std::size_t kMaxRecordedDepth = 64;

class RecordedFile {
 public:
  RecordedFile(std::string name, mode_t mode, std::size_t size, std::string content,
               std::optional<int> error);
  RecordedFile(const RecordedFile&) = delete;
  RecordedFile& operator=(const RecordedFile&) = delete;

  std::span<const core::AttributeGroup<RecordedFile>> groups() const { return {&group_, 1}; }

  core::Result<std::size_t> read(const core::Caller&, std::uint64_t pos, std::span<char> out);

 private:
  const std::string name_;
  const std::string content_;
  const std::optional<int> error_;
  core::BinAttribute<RecordedFile> attr_;
  core::AttributeGroup<RecordedFile> group_;
};

// The errno value of a kernel macro name ("EIO"); nullopt for an unknown name.
std::optional<int> errno_from_name(std::string_view name);

}  // namespace vsysfs::devices
