#pragma once

// StateJournal: crash-safe machine state for `-o state=FILE`
// (docs/state.md; docs/design.md section 8). Every acknowledged change (a
// store or binary write that succeeded, a chmod, a chown) is appended to
// FILE as one checksummed record and fdatasync'ed before the
// write(2)/chmod(2) returns. At mount, before serving any request, the
// daemon reads FILE, loads its base if it has one, stops at the first torn
// or corrupt record (reporting it once), replays the valid records in
// order, then compacts: written to FILE.tmp, fsync'ed and renamed over FILE
// (atomic), the directory fsync'ed. On a machine that can restore a
// snapshot the compacted file is a base (the machine and its snapshot
// list, written by the caller: rewrite_base) and no record, also whenever
// the records after the base pass a bound; on others it is the records
// minus superseded chmod/chown (rewrite). docs/state.md "Compaction".
//
// Trust (docs/trust-files.md): the daemon replays FILE with every
// capability, so load() refuses a FILE that anyone but the daemon's user
// could have written: a symbolic link, not a regular file, not owned by
// the effective uid, group- or other-writable, hard-linked, over
// kMaxStateFileBytes, or in a directory chain others may change
// (core/trusted_file.hpp). FILE.tmp is created O_EXCL|O_NOFOLLOW, FILE is
// never opened through a symbolic link. One daemon per FILE: load() takes
// flock(LOCK_EX|LOCK_NB) on FILE.lock, a file that is never renamed or
// removed, so the lock survives the rename that compaction does (a lock
// on FILE itself would stay on the replaced inode); the lock file holds
// the holder's pid for the refusal message.
//
// File format (little-endian):
//   header  "VSYSFS-STATE" NUL "1\n\n" (16 bytes), or "...2\n\n" when a
//           base follows (a compacted file, docs/state.md "Compaction")
//   base    (version 2 only, right after the header) u32 magic 0x42534a56
//           ("VJSB") | u64 length | u32 CRC-32 of the bytes | the bytes:
//           snapshot files (core/snapshot_file.hpp), the machine then its
//           named snapshots. Written only by rename, so never torn by a
//           crash: a bad base refuses the mount.
//   record  u32 magic 0x5253_4a56 ("VJSR") | u32 payload length |
//           u32 CRC-32 (IEEE, as zlib) of the payload | payload
//   payload u8 kind | u32 uid | u32 gid | u32 mode | u64 offset |
//           u32 path length | path | u32 data length | data
// A record is valid when its magic, length (<= kMaxPayload and within the
// file) and CRC match and its payload decodes exactly.
//
// Thread-safety: append() and order_mutex() may be used from any thread;
// the fs layer holds order_mutex() across "run the store, append its
// record", so the journal order is the order the changes happened.
// decode/encode/compact are pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/locks.hpp"
#include "core/result.hpp"

namespace vsysfs::core {

struct StateRecord {
  enum class Kind : std::uint8_t { Store = 1, BinWrite = 2, Chmod = 3, Chown = 4 };
  Kind kind = Kind::Store;
  std::string path;  // relative to the mount root ("devices/...")
  std::string data;  // Store/BinWrite: exactly the bytes store()/write() accepted
  std::uint64_t offset = 0;  // BinWrite
  std::uint32_t uid = 0;     // Store/BinWrite: the caller; Chown: new uid (-1: unchanged)
  std::uint32_t gid = 0;     // Store/BinWrite: the caller; Chown: new gid (-1: unchanged)
  std::uint32_t mode = 0;    // Chmod

  bool operator==(const StateRecord&) const = default;

  static StateRecord store(std::string path, std::string data, std::uint32_t uid = 0,
                           std::uint32_t gid = 0) {
    StateRecord r;
    r.kind = Kind::Store;
    r.path = std::move(path);
    r.data = std::move(data);
    r.uid = uid;
    r.gid = gid;
    return r;
  }
  static StateRecord bin_write(std::string path, std::string data, std::uint64_t offset,
                               std::uint32_t uid = 0, std::uint32_t gid = 0) {
    StateRecord r = store(std::move(path), std::move(data), uid, gid);
    r.kind = Kind::BinWrite;
    r.offset = offset;
    return r;
  }
  static StateRecord chmod(std::string path, std::uint32_t mode) {
    StateRecord r;
    r.kind = Kind::Chmod;
    r.path = std::move(path);
    r.mode = mode;
    return r;
  }
  static StateRecord chown(std::string path, std::uint32_t uid, std::uint32_t gid) {
    StateRecord r;
    r.kind = Kind::Chown;
    r.path = std::move(path);
    r.uid = uid;
    r.gid = gid;
    return r;
  }
};

inline constexpr std::string_view kStateHeader{"VSYSFS-STATE\0" "1\n\n", 16};
// A version-2 file: a base follows the header.
inline constexpr std::string_view kStateHeaderV2{"VSYSFS-STATE\0\x32\n\n", 16};
inline constexpr std::uint32_t kRecordMagic = 0x52534a56;
inline constexpr std::uint32_t kBaseMagic = 0x42534a56;
// A journal longer than this after its base is compacted into a new base
// (docs/state.md "Compaction"; -o state_compact=BYTES overrides).
inline constexpr std::uint64_t kDefaultCompactBytes = 1ULL << 20;
inline constexpr std::uint32_t kMaxPayload = 1u << 20;

// CRC-32 (IEEE 802.3, reflected, init/xorout 0xffffffff: zlib's crc32).
std::uint32_t crc32(std::string_view bytes, std::uint32_t crc = 0) noexcept;

std::string encode_record(const StateRecord& rec);

struct DecodedJournal {
  std::vector<StateRecord> records;
  std::uint64_t valid_bytes = 0;  // header plus every valid record
  std::uint64_t file_bytes = 0;
  std::string problem;  // empty when the whole file was valid
  bool has_base = false;  // a version-2 file: `base` holds its base
  std::string base;
  bool bad_base = false;  // the base itself is damaged: `problem` says how
};
// Decodes a whole state file. An empty file is a valid, empty journal.
DecodedJournal decode_journal(std::string_view file);

// The snapshot of a record list: runs of chmod/chown with no store in
// between keep only the last chmod and the last chown of each path (they
// overwrite, and only a store can reshape the tree); stores are never
// dropped, since a store's effect can depend on everything before it.
std::vector<StateRecord> compact(const std::vector<StateRecord>& records);

class StateJournal {
 public:
  explicit StateJournal(std::string path) : path_(std::move(path)) {}
  ~StateJournal();
  StateJournal(const StateJournal&) = delete;
  StateJournal& operator=(const StateJournal&) = delete;

  // Checks FILE's directory chain, locks FILE.lock, then reads and
  // validates FILE (missing: empty). Throws std::runtime_error (one line)
  // on an I/O error, an untrusted file or directory, a FILE another
  // process holds, or a file that is not a state file at all.
  DecodedJournal load();
  // Writes the calling process's pid into FILE.lock (after the daemon
  // forked into the background, its pid changed).
  void note_pid();
  // Writes `records` as the new FILE (FILE.tmp, fsync, rename, fsync of the
  // directory) and opens it for appending. Throws std::runtime_error.
  void rewrite(const std::vector<StateRecord>& records);
  // Writes `base` as the new FILE's base with no record after it (the
  // same crash-safe steps), and appends after it from now on. Throws
  // std::runtime_error; FILE is then as it was.
  void rewrite_base(std::string_view base) REQUIRES(order_mu_);
  // The same, keeping `records` after the base: for a mount that cannot
  // make a new base (the file's valid part is written back, without a torn
  // tail).
  void rewrite_base(std::string_view base, const std::vector<StateRecord>& records)
      REQUIRES(order_mu_);
  // Bytes of records after the base (or after the header). Call with
  // order_mutex() held.
  std::uint64_t journal_bytes() const REQUIRES(order_mu_) { return journal_bytes_; }
  // Appends one record and fdatasync()s it. Call with order_mutex() held.
  // EFBIG when FILE would grow over kMaxStateFileBytes (the next mount
  // would refuse it).
  Status append(const StateRecord& rec) REQUIRES(order_mu_);

  // Timed, so that a change waiting behind a long one (a clock advance
  // runs device timers for as long as the step takes) can give up when its
  // own writer is interrupted instead of waiting unkillably.
  Mutex& order_mutex() RETURN_CAPABILITY(order_mu_) { return order_mu_; }
  const std::string& path() const { return path_; }
  // Records appended by this object. Call with order_mutex() held.
  std::uint64_t appended() const REQUIRES(order_mu_) { return appended_; }

 private:
  const std::string path_;
  // Order: taken before any device lock (held across store()).
  Mutex order_mu_{"state_journal.order_mu"};
  int fd_ GUARDED_BY(order_mu_) = -1;
  int lock_fd_ = -1;  // start-up thread only: FILE.lock, flock()ed for our life
  std::uint64_t appended_ GUARDED_BY(order_mu_) = 0;
  std::uint64_t journal_bytes_ GUARDED_BY(order_mu_) = 0;
  // FILE.tmp, written, fsync'ed, renamed over FILE, directory fsync'ed;
  // then appends go to it.
  void replace_file(std::string_view all) REQUIRES(order_mu_);
};

}  // namespace vsysfs::core
