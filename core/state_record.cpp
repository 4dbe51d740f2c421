#include "core/state_record.hpp"

#include <cerrno>
#include <charconv>
#include <stdexcept>

#include <fmt/format.h>

namespace vsysfs::core {
namespace {

bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '-';
}

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key)
    if (!key_char(c)) return false;
  return true;
}

std::string escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool unescape(std::string_view in, std::string& out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out += in[i];
      continue;
    }
    if (++i >= in.size()) return false;
    if (in[i] == '\\') {
      out += '\\';
    } else if (in[i] == 'n') {
      out += '\n';
    } else if (in[i] == 'x' && i + 2 < in.size()) {
      const int hi = hex_digit(in[i + 1]);
      const int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

template <typename T>
Result<T> parse_int(std::string_view s) {
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return Errno{EINVAL};
  return v;
}

}  // namespace

StateWriter::StateWriter(unsigned version) { text_ = fmt::format("version={}\n", version); }

void StateWriter::put_raw(std::string_view key, std::string_view escaped) {
  if (!valid_key(key) || key == "version")
    throw std::invalid_argument(fmt::format("state key \"{}\"", key));
  // A set, not a scan of every key written before: a record of a few
  // thousand fields (a restore saves every device's) was quadratic.
  if (!keys_.emplace(key).second)
    throw std::invalid_argument(fmt::format("state key {} twice", key));
  text_.append(key).append("=").append(escaped).append("\n");
}

void StateWriter::put_u64(std::string_view key, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  put_raw(key, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}
void StateWriter::put_i64(std::string_view key, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  put_raw(key, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}
void StateWriter::put_bool(std::string_view key, bool v) { put_raw(key, v ? "1" : "0"); }
void StateWriter::put_str(std::string_view key, std::string_view v) { put_raw(key, escape(v)); }

Result<StateReader> StateReader::parse(std::string_view text) {
  StateReader r;
  bool first = true;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) return Errno{EINVAL};  // torn: every line ends in '\n'
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) return Errno{EINVAL};
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (first) {
      if (key != "version") return Errno{EINVAL};
      auto v = parse_int<unsigned>(value);
      if (!v) return v.error();
      r.version_ = *v;
      first = false;
      continue;
    }
    if (!valid_key(key) || key == "version") return Errno{EINVAL};
    std::string decoded;
    if (!unescape(value, decoded)) return Errno{EINVAL};
    if (!r.fields_.emplace(std::string(key), std::move(decoded)).second) return Errno{EINVAL};
  }
  if (first) return Errno{EINVAL};
  return r;
}

Result<std::uint64_t> StateReader::u64(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return Errno{ENOENT};
  return parse_int<std::uint64_t>(it->second);
}

Result<std::int64_t> StateReader::i64(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return Errno{ENOENT};
  return parse_int<std::int64_t>(it->second);
}

Result<bool> StateReader::boolean(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return Errno{ENOENT};
  if (it->second == "1") return true;
  if (it->second == "0") return false;
  return Errno{EINVAL};
}

Result<std::string> StateReader::str(std::string_view key) const {
  auto it = fields_.find(key);
  if (it == fields_.end()) return Errno{ENOENT};
  return it->second;
}

std::vector<std::string> StateReader::keys_with_prefix(std::string_view prefix) const {
  std::vector<std::string> out;
  for (auto it = fields_.lower_bound(prefix); it != fields_.end(); ++it) {
    if (it->first.compare(0, prefix.size(), prefix) != 0) break;
    out.push_back(it->first);
  }
  return out;
}

}  // namespace vsysfs::core
