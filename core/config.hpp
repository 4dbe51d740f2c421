#pragma once

// ConfigValue: a machine description as a tree of typed values, each
// remembering where it came from (file, line, column, dotted key path), so
// every error names the key and line at fault. The TOML reader lives in
// devices/machine/machine_file.cpp; devices read their section through the typed
// getters here and never see the parser. Every key a device reads is
// marked used; Machine rejects keys nobody read (typos fail loudly).
//
// Thread-safety: built once at start-up, then read by one thread.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vsysfs::core {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigValue {
 public:
  enum class Type { Table, Array, String, Integer, Float, Boolean };

  ConfigValue() = default;
  ConfigValue(Type type, std::string path, std::string file, int line, int column)
      : type_(type), path_(std::move(path)), file_(std::move(file)), line_(line), column_(column) {}

  Type type() const { return type_; }
  const std::string& path() const { return path_; }
  int line() const { return line_; }
  bool is_table() const { return type_ == Type::Table; }

  // Table access. find() returns null when absent and marks the key used.
  const ConfigValue* find(std::string_view key) const;
  const ConfigValue& require(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  std::vector<std::string> keys() const;

  std::string get_string(std::string_view key, std::string_view fallback) const;
  std::int64_t get_int(std::string_view key, std::int64_t fallback) const;
  std::uint64_t get_uint(std::string_view key, std::uint64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  // An array of tables ([[net.interface]]) or of scalars; empty when absent.
  const std::vector<ConfigValue>& get_array(std::string_view key) const;

  // This value as a scalar (type-checked).
  const std::string& as_string() const;
  std::int64_t as_int() const;
  std::uint64_t as_uint() const;
  double as_float() const;
  bool as_bool() const;
  const std::vector<ConfigValue>& as_array() const;

  // Throws ConfigError "FILE:LINE:COL: KEY: message".
  [[noreturn]] void fail(std::string_view message) const;

  // Keys (dotted paths) under this value nobody read.
  void collect_unused(std::vector<const ConfigValue*>& out) const;
  // The value as canonical text: table keys sorted, every scalar with its
  // type, no file positions or comments; two descriptions that differ only
  // in layout give the same text (a snapshot file's machine identity,
  // docs/snapshot.md). Marks nothing used.
  std::string canonical() const;

  // Builders for the reader and for tests.
  ConfigValue& set(std::string key, ConfigValue value);
  void push(ConfigValue value) { array_.push_back(std::move(value)); }
  void set_scalar(std::string s) { string_ = std::move(s); }
  void set_scalar(std::int64_t i) { int_ = i; }
  void set_scalar(double f) { float_ = f; }
  void set_scalar(bool b) { bool_ = b; }

 private:
  std::string_view type_name() const;
  void expect(Type t) const;

  Type type_ = Type::Table;
  std::string path_;
  std::string file_;
  int line_ = 0;
  int column_ = 0;
  mutable bool used_ = false;

  std::vector<std::pair<std::string, ConfigValue>> table_;
  std::vector<ConfigValue> array_;
  std::string string_;
  std::int64_t int_ = 0;
  double float_ = 0;
  bool bool_ = false;
};

}  // namespace vsysfs::core
