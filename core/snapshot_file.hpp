#pragma once

// Snapshot files: one machine snapshot (docs/snapshot.md "Snapshot files")
// as bytes, for MOUNT/kernel/debug/vsysfs/machine/{save,load}, for
// `-o snapshot=FILE`, and as the base of a compacted `-o state=FILE`
// (docs/state.md "Compaction"). Pure functions: no I/O here.
//
// Layout (little-endian, version 1):
//   0   magic   "VSYSFS-SNAPSHOT\n" (16 bytes)
//   16  u32     format version (1)
//   20  u32     flags (0; any other value is refused)
//   24  u64     body length L
//   32  body    L bytes
//   32+L u32    CRC-32 (IEEE, as zlib) of bytes [0, 32+L)
// and nothing after it (a file is exactly 36+L bytes).
// body, every string a u32 length then its bytes:
//   str machine_name | str machine_id | str snapshot name | u64 now_ns |
//   u32 n, n x (str handler, str record)          strictly sorted by handler
//   u32 n, n x (str path, u32 mode, u32 uid, u32 gid)  sorted by path
//   u32 n, n x (str path, str value)              sorted by path
// The body must be consumed exactly. A file that fails any check (magic,
// version, flags, length, checksum, decoding, order) decodes to EINVAL
// with the reason in `problem`; the caller changes nothing.
//
// Several images may follow each other in one byte string (the base of a
// compacted state file): decode_images() reads them in order.
//
// Thread-safety: pure functions, no shared state.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace vsysfs::core {

inline constexpr std::string_view kSnapshotMagic{"VSYSFS-SNAPSHOT\n", 16};
inline constexpr std::uint32_t kSnapshotVersion = 1;
inline constexpr std::size_t kSnapshotHeaderBytes = 32;
// A snapshot file read by the daemon (`load`, -o snapshot=FILE) is at most
// this big (docs/trust-files.md "Limits"): a snapshot of the default
// machine is a few hundred KiB.
inline constexpr std::uint64_t kMaxSnapshotFileBytes = 256ULL << 20;

struct SnapshotImage {
  struct Attr {
    std::uint32_t mode = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    bool operator==(const Attr&) const = default;
  };
  std::string machine_name;                   // the [machine] name, for messages
  std::string machine_id;                     // identity of the description (Machine::identity)
  std::string name;                           // the snapshot's name
  std::uint64_t now_ns = 0;                   // simulated time of the capture
  std::map<std::string, std::string> states;  // StateHandler name -> record
  std::map<std::string, Attr> attrs;          // path -> mode, owner
  std::map<std::string, std::string> values;  // path -> show() output (for diff)

  bool operator==(const SnapshotImage&) const = default;
};

std::string encode_snapshot(const SnapshotImage& image);

// One image filling `bytes` exactly. EINVAL, with `problem` set, when the
// bytes are not one valid version-1 snapshot file.
Result<SnapshotImage> decode_snapshot(std::string_view bytes, std::string* problem = nullptr);

// Images one after another (each a whole snapshot file), until the end.
Result<std::vector<SnapshotImage>> decode_images(std::string_view bytes,
                                                 std::string* problem = nullptr);

// 64-bit FNV-1a of `text` as 16 lower-case hex digits (a machine identity;
// not a security checksum).
std::string fnv1a64_hex(std::string_view text);

}  // namespace vsysfs::core
