#include "core/config.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace vsysfs::core {

const ConfigValue* ConfigValue::find(std::string_view key) const {
  if (type_ != Type::Table) return nullptr;
  for (const auto& [k, v] : table_) {
    if (k == key) {
      v.used_ = true;
      return &v;
    }
  }
  return nullptr;
}

const ConfigValue& ConfigValue::require(std::string_view key) const {
  const ConfigValue* v = find(key);
  if (!v) fail(fmt::format("missing required key '{}'", key));
  return *v;
}

std::vector<std::string> ConfigValue::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : table_) out.push_back(k);
  return out;
}

std::string_view ConfigValue::type_name() const {
  switch (type_) {
    case Type::Table: return "a table";
    case Type::Array: return "an array";
    case Type::String: return "a string";
    case Type::Integer: return "an integer";
    case Type::Float: return "a number";
    case Type::Boolean: return "a boolean";
  }
  return "a value";
}

void ConfigValue::fail(std::string_view message) const {
  throw ConfigError(fmt::format("{}:{}:{}: {}: {}", file_.empty() ? "<machine>" : file_, line_,
                                column_, path_.empty() ? "(top level)" : path_, message));
}

void ConfigValue::expect(Type t) const {
  if (type_ == t) return;
  ConfigValue probe;
  probe.type_ = t;
  fail(fmt::format("expected {}, found {}", probe.type_name(), type_name()));
}

const std::string& ConfigValue::as_string() const {
  expect(Type::String);
  return string_;
}
std::int64_t ConfigValue::as_int() const {
  expect(Type::Integer);
  return int_;
}
std::uint64_t ConfigValue::as_uint() const {
  expect(Type::Integer);
  if (int_ < 0) fail("must not be negative");
  return static_cast<std::uint64_t>(int_);
}
double ConfigValue::as_float() const {
  if (type_ == Type::Integer) return static_cast<double>(int_);
  expect(Type::Float);
  return float_;
}
bool ConfigValue::as_bool() const {
  expect(Type::Boolean);
  return bool_;
}
const std::vector<ConfigValue>& ConfigValue::as_array() const {
  expect(Type::Array);
  return array_;
}

std::string ConfigValue::get_string(std::string_view key, std::string_view fallback) const {
  const ConfigValue* v = find(key);
  return v ? v->as_string() : std::string(fallback);
}
std::int64_t ConfigValue::get_int(std::string_view key, std::int64_t fallback) const {
  const ConfigValue* v = find(key);
  return v ? v->as_int() : fallback;
}
std::uint64_t ConfigValue::get_uint(std::string_view key, std::uint64_t fallback) const {
  const ConfigValue* v = find(key);
  return v ? v->as_uint() : fallback;
}
double ConfigValue::get_float(std::string_view key, double fallback) const {
  const ConfigValue* v = find(key);
  return v ? v->as_float() : fallback;
}
bool ConfigValue::get_bool(std::string_view key, bool fallback) const {
  const ConfigValue* v = find(key);
  return v ? v->as_bool() : fallback;
}
const std::vector<ConfigValue>& ConfigValue::get_array(std::string_view key) const {
  static const std::vector<ConfigValue> kEmpty;
  const ConfigValue* v = find(key);
  return v ? v->as_array() : kEmpty;
}

void ConfigValue::collect_unused(std::vector<const ConfigValue*>& out) const {
  for (const auto& [k, v] : table_) {
    if (!v.used_) {
      out.push_back(&v);
      continue;
    }
    v.collect_unused(out);
  }
  for (const auto& v : array_) v.collect_unused(out);
}

std::string ConfigValue::canonical() const {
  switch (type_) {
    case Type::Table: {
      std::vector<const std::pair<std::string, ConfigValue>*> sorted;
      for (const auto& kv : table_) sorted.push_back(&kv);
      std::sort(sorted.begin(), sorted.end(),
                [](const auto* a, const auto* b) { return a->first < b->first; });
      std::string out = "{";
      for (const auto* kv : sorted)
        out += fmt::format("{}:{}={};", kv->first.size(), kv->first, kv->second.canonical());
      return out + "}";
    }
    case Type::Array: {
      std::string out = "[";
      for (const auto& v : array_) out += v.canonical() + ",";
      return out + "]";
    }
    case Type::String:
      return fmt::format("s{}:{}", string_.size(), string_);
    case Type::Integer:
      return fmt::format("i{}", int_);
    case Type::Float:
      return fmt::format("f{}", float_);
    case Type::Boolean:
      return bool_ ? "b1" : "b0";
  }
  return "?";
}

ConfigValue& ConfigValue::set(std::string key, ConfigValue value) {
  table_.emplace_back(std::move(key), std::move(value));
  return table_.back().second;
}

}  // namespace vsysfs::core
