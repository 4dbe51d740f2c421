#include "core/state_journal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

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

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
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
  if (file.size() < kStateHeader.size() || file.substr(0, kStateHeader.size()) != kStateHeader) {
    // A torn header (crash while creating the file) is a torn tail too.
    if (file.size() < kStateHeader.size() && kStateHeader.substr(0, file.size()) == file) {
      out.problem = fmt::format("torn header ({} bytes)", file.size());
      return out;
    }
    out.problem = "not a vsysfs state file (bad header)";
    return out;
  }
  Reader r{file, kStateHeader.size()};
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
}

DecodedJournal StateJournal::load() const {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    io_error("open", path_);
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
  }
  ::close(fd);
  auto out = decode_journal(bytes);
  if (out.problem.starts_with("not a vsysfs state file"))
    throw std::runtime_error(fmt::format("state file {}: {}", path_, out.problem));
  return out;
}

void StateJournal::rewrite(const std::vector<StateRecord>& records) {
  MutexLock lock(order_mu_);
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) io_error("create", tmp);
  std::string all(kStateHeader);
  for (const auto& rec : records) all += encode_record(rec);
  if (!write_all(fd, all) || ::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    io_error("write", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) io_error("rename", tmp);
  // The rename is durable once the directory is.
  const auto slash = path_.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) io_error("open for append", path_);
}

Status StateJournal::append(const StateRecord& rec) {
  if (fd_ < 0) return Errno{EBADF};
  const std::string bytes = encode_record(rec);
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  if (!write_all(fd_, bytes) || ::fdatasync(fd_) != 0) {
    const int e = errno ? errno : EIO;
    // Leave no partial record behind: later appends must stay readable.
    if (before >= 0) (void)::ftruncate(fd_, before);
    return Errno{e};
  }
  ++appended_;
  return {};
}

}  // namespace vsysfs::core
