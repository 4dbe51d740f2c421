#include "core/snapshot_file.hpp"

#include <cerrno>

#include <fmt/format.h>

#include "core/state_journal.hpp"

namespace vsysfs::core {
namespace {

void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_str(std::string& out, std::string_view s) {
  put32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

std::uint64_t get_le(std::string_view in, std::size_t pos, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  return v;
}

// A cursor that fails instead of overrunning.
struct Cursor {
  std::string_view in;
  std::size_t pos = 0;
  std::size_t left() const { return in.size() - pos; }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = static_cast<std::uint32_t>(get_le(in, pos, 4));
    pos += 4;
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return false;
    v = get_le(in, pos, 8);
    pos += 8;
    return true;
  }
  bool str(std::string& out) {
    std::uint32_t n;
    if (!u32(n) || left() < n) return false;
    out.assign(in.substr(pos, n));
    pos += n;
    return true;
  }
  // A count of entries each at least `min_entry` bytes long: never more
  // than the bytes left could hold (no huge loop on a forged count).
  bool count(std::uint32_t& n, std::size_t min_entry) { return u32(n) && n <= left() / min_entry; }
};

Result<SnapshotImage> refuse(std::string* problem, std::string why) {
  if (problem) *problem = std::move(why);
  return Errno{EINVAL};
}

// The body of one image; false when it does not decode exactly.
bool decode_body(std::string_view body, SnapshotImage& img, std::string& why) {
  Cursor c{body};
  if (!c.str(img.machine_name) || !c.str(img.machine_id) || !c.str(img.name) ||
      !c.u64(img.now_ns)) {
    why = "truncated identity";
    return false;
  }
  std::uint32_t n;
  if (!c.count(n, 8)) {
    why = "bad state record count";
    return false;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string key, rec;
    if (!c.str(key) || !c.str(rec)) {
      why = "truncated state record";
      return false;
    }
    if (!img.states.empty() && key <= img.states.rbegin()->first) {
      why = "state records out of order";
      return false;
    }
    img.states.emplace_hint(img.states.end(), std::move(key), std::move(rec));
  }
  if (!c.count(n, 16)) {
    why = "bad mode count";
    return false;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string path;
    SnapshotImage::Attr a;
    if (!c.str(path) || !c.u32(a.mode) || !c.u32(a.uid) || !c.u32(a.gid)) {
      why = "truncated mode entry";
      return false;
    }
    if (path.empty() || (!img.attrs.empty() && path <= img.attrs.rbegin()->first)) {
      why = "mode entries out of order";
      return false;
    }
    img.attrs.emplace_hint(img.attrs.end(), std::move(path), a);
  }
  if (!c.count(n, 8)) {
    why = "bad value count";
    return false;
  }
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string path, value;
    if (!c.str(path) || !c.str(value)) {
      why = "truncated value entry";
      return false;
    }
    if (path.empty() || (!img.values.empty() && path <= img.values.rbegin()->first)) {
      why = "value entries out of order";
      return false;
    }
    img.values.emplace_hint(img.values.end(), std::move(path), std::move(value));
  }
  if (c.left() != 0) {
    why = fmt::format("{} bytes after the last entry", c.left());
    return false;
  }
  return true;
}

// The length of the image at the start of `bytes` (header checks only), or
// 0 with `why` set.
std::size_t image_length(std::string_view bytes, std::string& why) {
  if (bytes.size() < kSnapshotHeaderBytes) {
    why = fmt::format("truncated header ({} bytes)", bytes.size());
    return 0;
  }
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    why = "not a vsysfs snapshot file (bad magic)";
    return 0;
  }
  const auto version = static_cast<std::uint32_t>(get_le(bytes, 16, 4));
  if (version != kSnapshotVersion) {
    why = fmt::format("format version {} (this build reads version {})", version, kSnapshotVersion);
    return 0;
  }
  if (get_le(bytes, 20, 4) != 0) {
    why = "unknown flags";
    return 0;
  }
  const std::uint64_t body = get_le(bytes, 24, 8);
  if (body > bytes.size() - kSnapshotHeaderBytes ||
      bytes.size() - kSnapshotHeaderBytes - body < 4) {
    why = fmt::format("truncated: body of {} bytes, {} bytes present", body,
                      bytes.size() - kSnapshotHeaderBytes);
    return 0;
  }
  return kSnapshotHeaderBytes + static_cast<std::size_t>(body) + 4;
}

}  // namespace

std::string encode_snapshot(const SnapshotImage& img) {
  std::string body;
  put_str(body, img.machine_name);
  put_str(body, img.machine_id);
  put_str(body, img.name);
  put64(body, img.now_ns);
  put32(body, static_cast<std::uint32_t>(img.states.size()));
  for (const auto& [k, v] : img.states) {
    put_str(body, k);
    put_str(body, v);
  }
  put32(body, static_cast<std::uint32_t>(img.attrs.size()));
  for (const auto& [k, a] : img.attrs) {
    put_str(body, k);
    put32(body, a.mode);
    put32(body, a.uid);
    put32(body, a.gid);
  }
  put32(body, static_cast<std::uint32_t>(img.values.size()));
  for (const auto& [k, v] : img.values) {
    put_str(body, k);
    put_str(body, v);
  }
  std::string out(kSnapshotMagic);
  out.reserve(kSnapshotHeaderBytes + body.size() + 4);
  put32(out, kSnapshotVersion);
  put32(out, 0);
  put64(out, body.size());
  out += body;
  put32(out, crc32(out));
  return out;
}

Result<SnapshotImage> decode_snapshot(std::string_view bytes, std::string* problem) {
  std::string why;
  const std::size_t len = image_length(bytes, why);
  if (len == 0) return refuse(problem, why);
  if (len != bytes.size())
    return refuse(problem, fmt::format("{} bytes after the checksum", bytes.size() - len));
  const std::string_view covered = bytes.substr(0, len - 4);
  if (crc32(covered) != static_cast<std::uint32_t>(get_le(bytes, len - 4, 4)))
    return refuse(problem, "checksum mismatch");
  SnapshotImage img;
  if (!decode_body(covered.substr(kSnapshotHeaderBytes), img, why)) return refuse(problem, why);
  return img;
}

Result<std::vector<SnapshotImage>> decode_images(std::string_view bytes, std::string* problem) {
  std::vector<SnapshotImage> out;
  while (!bytes.empty()) {
    std::string why;
    const std::size_t len = image_length(bytes, why);
    if (len == 0) {
      if (problem) *problem = fmt::format("image {}: {}", out.size(), why);
      return Errno{EINVAL};
    }
    auto img = decode_snapshot(bytes.substr(0, len), &why);
    if (!img) {
      if (problem) *problem = fmt::format("image {}: {}", out.size(), why);
      return img.error();
    }
    out.push_back(std::move(*img));
    bytes.remove_prefix(len);
  }
  return out;
}

std::string fnv1a64_hex(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h);
}

}  // namespace vsysfs::core
