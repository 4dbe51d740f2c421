// The TOML reader for machine descriptions: toml++ (Debian's
// libtomlplusplus-dev) turned into core::ConfigValue with source positions.
// This is the only file that includes the TOML parser.

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/trusted_file.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::devices {
namespace {

using core::ConfigValue;

std::string join_path(const std::string& base, std::string_view key) {
  return base.empty() ? std::string(key) : base + "." + std::string(key);
}

ConfigValue convert(const toml::node& node, const std::string& path, const std::string& file) {
  const auto& src = node.source();
  const int line = static_cast<int>(src.begin.line);
  const int col = static_cast<int>(src.begin.column);
  if (const auto* t = node.as_table()) {
    ConfigValue out(ConfigValue::Type::Table, path, file, line, col);
    for (const auto& [k, v] : *t) {
      const std::string key(k.str());
      out.set(key, convert(v, join_path(path, key), file));
    }
    return out;
  }
  if (const auto* a = node.as_array()) {
    ConfigValue out(ConfigValue::Type::Array, path, file, line, col);
    std::size_t i = 0;
    for (const auto& v : *a) out.push(convert(v, fmt::format("{}[{}]", path, i++), file));
    return out;
  }
  if (const auto* s = node.as_string()) {
    // TOML allows "\u0000"; no name or value of ours may hold one (a C
    // string would end there: the kernel would see another name).
    if (s->get().find('\0') != std::string::npos)
      throw core::ConfigError(
          fmt::format("{}:{}:{}: {}: a NUL byte in a string", file, line, col, path));
    ConfigValue out(ConfigValue::Type::String, path, file, line, col);
    out.set_scalar(std::string(s->get()));
    return out;
  }
  if (const auto* i = node.as_integer()) {
    ConfigValue out(ConfigValue::Type::Integer, path, file, line, col);
    out.set_scalar(static_cast<std::int64_t>(i->get()));
    return out;
  }
  if (const auto* f = node.as_floating_point()) {
    ConfigValue out(ConfigValue::Type::Float, path, file, line, col);
    out.set_scalar(f->get());
    return out;
  }
  if (const auto* b = node.as_boolean()) {
    ConfigValue out(ConfigValue::Type::Boolean, path, file, line, col);
    out.set_scalar(b->get());
    return out;
  }
  throw core::ConfigError(
      fmt::format("{}:{}:{}: {}: dates and times are not used in machine files", file, line, col,
                  path));
}

}  // namespace

core::ConfigValue parse_machine_toml(std::string_view text, const std::string& source_name) {
  try {
    toml::table table = toml::parse(text, source_name);
    return convert(table, "", source_name);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    throw core::ConfigError(fmt::format("{}:{}:{}: {}", source_name, src.begin.line,
                                        src.begin.column, e.description()));
  }
}

// Only a regular file of at most kMaxMachineFileBytes is read (a FIFO
// would block start-up, /dev/zero would fill memory); a symbolic link is
// followed, since the file is only read and fstat() checks its target
// (docs/trust-files.md).
core::ConfigValue load_machine_file(const std::string& path) {
  std::string text;
  try {
    text = core::read_regular_file(path, core::kMaxMachineFileBytes, "machine file");
  } catch (const core::TrustError& e) {
    throw core::ConfigError(e.what());
  }
  return parse_machine_toml(text, path);
}

}  // namespace vsysfs::devices
