#pragma once

// StateWriter / StateReader: a device's state as a versioned list of named
// fields (docs/snapshot.md "Device state"). Not a memory image: each device
// writes the fields that make up its state, by name, and reads them back by
// name, so a field added later is absent from an older record (the device
// decides its default) and the version says which layout the device wrote.
//
// Text, one field per line: "key=value\n". The first line is
// "version=N". Keys are [A-Za-z0-9_.:/-]+ (a device builds "queue3.len");
// values are escaped: '\\' as "\\\\", '\n' as "\\n", any other byte below
// 0x20 or 0x7f..0xff as "\\xHH", so a value is any byte string.
//
// Thread-safety: none; a writer or reader belongs to one thread.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/result.hpp"

namespace vsysfs::core {

class StateWriter {
 public:
  explicit StateWriter(unsigned version);

  // Throws std::invalid_argument for a key outside [A-Za-z0-9_.:/-]+ or a
  // key written twice: a programming error of the device, never input.
  void put_u64(std::string_view key, std::uint64_t v);
  void put_i64(std::string_view key, std::int64_t v);
  void put_bool(std::string_view key, bool v);
  void put_str(std::string_view key, std::string_view v);

  const std::string& text() const { return text_; }

 private:
  void put_raw(std::string_view key, std::string_view escaped);
  std::string text_;
  std::unordered_set<std::string> keys_;  // the keys written, each once
};

class StateReader {
 public:
  // EINVAL for text that is not a record (no version line, a line without
  // '=', a bad escape, a key twice).
  static Result<StateReader> parse(std::string_view text);

  unsigned version() const { return version_; }
  bool has(std::string_view key) const { return fields_.find(key) != fields_.end(); }
  // ENOENT when absent, EINVAL when the value is not of that type.
  Result<std::uint64_t> u64(std::string_view key) const;
  Result<std::int64_t> i64(std::string_view key) const;
  Result<bool> boolean(std::string_view key) const;
  Result<std::string> str(std::string_view key) const;
  // Keys beginning with `prefix`, sorted.
  std::vector<std::string> keys_with_prefix(std::string_view prefix) const;

 private:
  unsigned version_ = 0;
  std::map<std::string, std::string, std::less<>> fields_;
};

}  // namespace vsysfs::core
