#include "core/state_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "core/trusted_file.hpp"

namespace vsysfs::core {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A cursor over bytes that fails (returns false) instead of overrunning.
struct Reader {
  std::string_view in;
  std::size_t pos = 0;
  bool get32(std::uint32_t& v) {
    if (in.size() - pos < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
    pos += 4;
    return true;
  }
  bool get64(std::uint64_t& v) {
    if (in.size() - pos < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
    pos += 8;
    return true;
  }
  bool get8(std::uint8_t& v) {
    if (pos >= in.size()) return false;
    v = static_cast<std::uint8_t>(in[pos++]);
    return true;
  }
  bool bytes(std::string& out) {
    std::uint32_t n;
    if (!get32(n) || in.size() - pos < n) return false;
    out.assign(in.substr(pos, n));
    pos += n;
    return true;
  }
};

bool decode_payload(std::string_view payload, StateRecord& rec) {
  Reader r{payload};
  std::uint8_t kind;
  if (!r.get8(kind) || kind < 1 || kind > 4) return false;
  rec.kind = static_cast<StateRecord::Kind>(kind);
  return r.get32(rec.uid) && r.get32(rec.gid) && r.get32(rec.mode) && r.get64(rec.offset) &&
         r.bytes(rec.path) && r.bytes(rec.data) && r.pos == payload.size() && !rec.path.empty();
}

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  throw std::runtime_error(fmt::format("state file {}: {}: {}", path, what, std::strerror(errno)));
}

}  // namespace

std::uint32_t crc32(std::string_view bytes, std::uint32_t crc) noexcept {
  crc = ~crc;
  for (unsigned char c : bytes) crc = kCrcTable[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

std::string encode_record(const StateRecord& rec) {
  std::string payload;
  payload.push_back(static_cast<char>(rec.kind));
  put32(payload, rec.uid);
  put32(payload, rec.gid);
  put32(payload, rec.mode);
  put64(payload, rec.offset);
  put32(payload, static_cast<std::uint32_t>(rec.path.size()));
  payload += rec.path;
  put32(payload, static_cast<std::uint32_t>(rec.data.size()));
  payload += rec.data;
  std::string out;
  out.reserve(12 + payload.size());
  put32(out, kRecordMagic);
  put32(out, static_cast<std::uint32_t>(payload.size()));
  put32(out, crc32(payload));
  out += payload;
  return out;
}

DecodedJournal decode_journal(std::string_view file) {
  DecodedJournal out;
  out.file_bytes = file.size();
  if (file.empty()) return out;
  const bool v2 = file.size() >= kStateHeaderV2.size() &&
                  file.substr(0, kStateHeaderV2.size()) == kStateHeaderV2;
  if (!v2 &&
      (file.size() < kStateHeader.size() || file.substr(0, kStateHeader.size()) != kStateHeader)) {
    // A torn header (crash while creating the file) is a torn tail too.
    if (file.size() < kStateHeader.size() && kStateHeader.substr(0, file.size()) == file) {
      out.problem = fmt::format("torn header ({} bytes)", file.size());
      return out;
    }
    out.problem = "not a vsysfs state file (bad header)";
    return out;
  }
  Reader r{file, kStateHeader.size()};
  if (v2) {
    std::uint32_t magic, crc;
    std::uint64_t len;
    out.has_base = true;
    out.bad_base = true;
    if (!r.get32(magic) || !r.get64(len) || !r.get32(crc)) {
      out.problem = "torn base header";
      return out;
    }
    if (magic != kBaseMagic) {
      out.problem = "bad base magic";
      return out;
    }
    if (len > file.size() - r.pos) {
      out.problem = fmt::format("torn base ({} of {} bytes)", file.size() - r.pos, len);
      return out;
    }
    const std::string_view base = file.substr(r.pos, len);
    if (crc32(base) != crc) {
      out.problem = "base checksum mismatch";
      return out;
    }
    out.base.assign(base);
    out.bad_base = false;
    r.pos += len;
  }
  out.valid_bytes = r.pos;
  while (r.pos < file.size()) {
    const std::size_t at = r.pos;
    std::uint32_t magic, len, crc;
    if (!r.get32(magic) || !r.get32(len) || !r.get32(crc)) {
      out.problem = fmt::format("torn record header at offset {}", at);
      break;
    }
    if (magic != kRecordMagic) {
      out.problem = fmt::format("bad record magic at offset {}", at);
      break;
    }
    if (len > kMaxPayload) {
      out.problem = fmt::format("record length {} out of range at offset {}", len, at);
      break;
    }
    if (file.size() - r.pos < len) {
      out.problem = fmt::format("torn record at offset {} ({} of {} payload bytes)", at,
                                file.size() - r.pos, len);
      break;
    }
    const std::string_view payload = file.substr(r.pos, len);
    if (crc32(payload) != crc) {
      out.problem = fmt::format("checksum mismatch at offset {}", at);
      break;
    }
    StateRecord rec;
    if (!decode_payload(payload, rec)) {
      out.problem = fmt::format("undecodable record at offset {}", at);
      break;
    }
    r.pos += len;
    out.records.push_back(std::move(rec));
    out.valid_bytes = r.pos;
  }
  return out;
}

std::vector<StateRecord> compact(const std::vector<StateRecord>& records) {
  std::vector<StateRecord> out;
  std::size_t i = 0;
  while (i < records.size()) {
    if (records[i].kind == StateRecord::Kind::Store ||
        records[i].kind == StateRecord::Kind::BinWrite) {
      out.push_back(records[i++]);
      continue;
    }
    // A run of chmod/chown: the last of each (kind, path) wins, in order.
    std::size_t end = i;
    while (end < records.size() && (records[end].kind == StateRecord::Kind::Chmod ||
                                    records[end].kind == StateRecord::Kind::Chown))
      ++end;
    std::map<std::pair<StateRecord::Kind, std::string>, std::size_t> last;
    for (std::size_t k = i; k < end; ++k) last[{records[k].kind, records[k].path}] = k;
    for (std::size_t k = i; k < end; ++k)
      if (last[{records[k].kind, records[k].path}] == k) out.push_back(records[k]);
    i = end;
  }
  return out;
}

StateJournal::~StateJournal() {
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

namespace {

std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The pid holding a flock on (dev, ino), from /proc/locks
// (fs/locks.c lock_get_status: "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INO ...").
std::string flock_holder(dev_t dev, ino_t ino) {
  std::ifstream locks("/proc/locks");
  std::string line;
  const std::string want = fmt::format("{:02x}:{:02x}:{}", major(dev), minor(dev), ino);
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string n, type, adv, rw, pid, where;
    if (!(in >> n >> type)) continue;
    if (type == "->") continue;  // a waiter: "N: -> FLOCK ..."
    if (in >> adv >> rw >> pid >> where && type == "FLOCK" && where == want) return pid;
  }
  return {};
}

}  // namespace

DecodedJournal StateJournal::load() {
  if (const std::string bad = untrusted_directory(dir_of(path_)); !bad.empty())
    throw std::runtime_error(fmt::format("state file {}: {}", path_, bad));
  if (lock_fd_ < 0) {
    const std::string lock_path = path_ + ".lock";
    const int lfd =
        ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (lfd < 0 && errno == ELOOP)
      throw std::runtime_error(
          fmt::format("state file {}: lock file {}: is a symbolic link (refused)", path_, lock_path));
    if (lfd < 0) io_error("open", lock_path);
    struct stat st {};
    if (::fstat(lfd, &st) != 0) {
      ::close(lfd);
      io_error("stat", lock_path);
    }
    if (const std::string bad = untrusted_file(st, 022, 0); !bad.empty()) {
      ::close(lfd);
      throw std::runtime_error(fmt::format("state file {}: lock file {}: {}", path_, lock_path, bad));
    }
    if (::flock(lfd, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      if (e != EWOULDBLOCK) {
        ::close(lfd);
        errno = e;
        io_error("lock", lock_path);
      }
      char buf[32] = {};
      const ssize_t n = ::pread(lfd, buf, sizeof buf - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos)
        pid = flock_holder(st.st_dev, st.st_ino);
      ::close(lfd);
      throw std::runtime_error(fmt::format("state file {} is in use by {} (lock {})", path_,
                                           pid.empty() ? "another process" : "pid " + pid,
                                           lock_path));
    }
    lock_fd_ = lfd;
    note_pid();
  }

  // O_NOFOLLOW: a symbolic link at FILE is refused (ELOOP), never followed;
  // O_NONBLOCK: a FIFO cannot block the open.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    if (errno == ELOOP)
      throw std::runtime_error(fmt::format("state file {}: is a symbolic link (refused)", path_));
    io_error("open", path_);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    io_error("stat", path_);
  }
  if (const std::string bad = untrusted_file(st, 022, kMaxStateFileBytes); !bad.empty()) {
    ::close(fd);
    throw std::runtime_error(fmt::format("state file {}: {}", path_, bad));
  }
  std::string bytes;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      errno = e;
      io_error("read", path_);
    }
    if (n == 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
    if (bytes.size() > kMaxStateFileBytes) {
      ::close(fd);
      throw std::runtime_error(fmt::format("state file {}: grew over the limit of {} bytes",
                                           path_, kMaxStateFileBytes));
    }
  }
  ::close(fd);
  auto out = decode_journal(bytes);
  if (out.problem.starts_with("not a vsysfs state file"))
    throw std::runtime_error(fmt::format("state file {}: {}", path_, out.problem));
  // A base is only ever written whole (rename), so a bad one is damage,
  // not a crash: mounting without it would drop every change it holds.
  if (out.bad_base)
    throw std::runtime_error(
        fmt::format("state file {}: {} (refused: the base holds the "
                    "machine's state)",
                    path_, out.problem));
  return out;
}

void StateJournal::note_pid() {
  if (lock_fd_ < 0) return;
  const std::string pid = fmt::format("{}\n", ::getpid());
  // Best effort: the pid only informs a human. (A condition, not a (void)
  // cast: with _FORTIFY_SOURCE, as Debian builds, glibc marks pwrite
  // warn_unused_result, which GCC reports through a cast.)
  if (::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0) return;
}

void StateJournal::rewrite(const std::vector<StateRecord>& records) {
  MutexLock lock(order_mu_);
  std::string all(kStateHeader);
  for (const auto& rec : records) all += encode_record(rec);
  replace_file(all);
  journal_bytes_ = all.size() - kStateHeader.size();
}

void StateJournal::rewrite_base(std::string_view base) { rewrite_base(base, {}); }

void StateJournal::rewrite_base(std::string_view base, const std::vector<StateRecord>& records) {
  std::string all(kStateHeaderV2);
  put32(all, kBaseMagic);
  put64(all, base.size());
  put32(all, crc32(base));
  all += base;
  const std::size_t base_end = all.size();
  for (const auto& rec : records) all += encode_record(rec);
  replace_file(all);
  journal_bytes_ = all.size() - base_end;
}

void StateJournal::replace_file(std::string_view all) {
  const std::string tmp = path_ + ".tmp";
  // O_EXCL|O_NOFOLLOW: never open (and truncate) what a planted FILE.tmp
  // points to. We hold FILE.lock, so an existing FILE.tmp is a crashed
  // daemon's leftover or planted: remove the name (unlink does not follow
  // it) and create our own.
  const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = ::open(tmp.c_str(), flags, 0600);
  if (fd < 0 && errno == EEXIST && ::unlink(tmp.c_str()) == 0) fd = ::open(tmp.c_str(), flags, 0600);
  if (fd < 0) io_error("create", tmp);
  if (!write_all(fd, all) || ::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    io_error("write", tmp);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = e;
    io_error("rename", tmp);
  }
  // The rename is durable once the directory is.
  const int dfd = ::open(dir_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  // Append through the descriptor we created: the inode now named FILE,
  // with no second lookup of the name.
  if (::fcntl(fd, F_SETFL, O_APPEND) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    io_error("open for append", path_);
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status StateJournal::append(const StateRecord& rec) {
  if (fd_ < 0) return Errno{EBADF};
  const std::string bytes = encode_record(rec);
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  if (before >= 0 && static_cast<std::uint64_t>(before) + bytes.size() > kMaxStateFileBytes)
    return Errno{EFBIG};
  if (!write_all(fd_, bytes) || ::fdatasync(fd_) != 0) {
    const int e = errno ? errno : EIO;
    // Leave no partial record behind: later appends must stay readable.
    // (Best effort, and a condition for the same reason as in note_pid.)
    if (before >= 0 && ::ftruncate(fd_, before) != 0) return Errno{e};
    return Errno{e};
  }
  ++appended_;
  journal_bytes_ += bytes.size();
  return {};
}

}  // namespace vsysfs::core
