// The [recorded] section: recorded files replayed read-only (recorded.hpp,
// docs/recording.md).

#include "devices/machine/recorded.hpp"

#include <cerrno>

#include <fmt/format.h>

#include "devices/machine/machine.hpp"

namespace vsysfs::devices {
namespace {

constexpr std::string_view kControlPlane = "kernel/debug/vsysfs";
constexpr std::string_view kControlPlaneDir = "kernel/debug/vsysfs/";

// kernel/debug/vsysfs/recorded/shadowed: the entries the model already
// serves, one path a line.
class RecordedShadowed {
 public:
  explicit RecordedShadowed(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  static std::span<const core::AttributeGroup<RecordedShadowed>> groups();
  core::Status shadowed_show(std::string& out) const {
    for (const auto& p : paths_) out += p + "\n";
    return {};
  }

 private:
  const std::vector<std::string> paths_;
};

constexpr core::SeqAttribute<RecordedShadowed> kShadowedSeq[] = {
    VSYSFS_SEQ_ATTR_RO(RecordedShadowed, shadowed, 0400),
};
constexpr core::AttributeGroup<RecordedShadowed> kShadowedGroups[] = {
    {.name = "", .seq_attrs = kShadowedSeq},
};
std::span<const core::AttributeGroup<RecordedShadowed>> RecordedShadowed::groups() {
  return kShadowedGroups;
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t at = 0;
  while (at <= path.size()) {
    const std::size_t slash = std::min(path.find('/', at), path.size());
    parts.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return parts;
}

// A component of a recorded path: a sysfs name (NAME_MAX, no '/', not
// "." or ".."). NUL bytes never reach here (machine_file.cpp).
bool valid_component(std::string_view c) {
  return !c.empty() && c.size() <= 255 && c != "." && c != "..";
}

const std::string& require_recorded_path(const core::ConfigValue& v) {
  const std::string& p = v.as_string();
  if (p.empty() || p.size() > kMaxRecordedPath)
    v.fail(fmt::format("a recorded path is 1..{} bytes", kMaxRecordedPath));
  if (p.front() == '/') v.fail("a recorded path is relative to the mount root");
  const auto parts = split(p);
  if (parts.size() > kMaxRecordedDepth)
    v.fail(fmt::format("more than {} components", kMaxRecordedDepth));
  for (auto c : parts)
    if (!valid_component(c)) v.fail("a component is empty, \".\", \"..\" or longer than 255 bytes");
  if (p == kControlPlane || p.starts_with(kControlPlaneDir))
    v.fail("kernel/debug/vsysfs is the control plane: nothing is recorded there");
  return p;
}

mode_t require_mode(const core::ConfigValue& entry) {
  const auto& v = entry.require("mode");
  const std::uint64_t m = v.as_uint();
  if (m > 0777) v.fail("a mode is 0..0o777 (no setuid, setgid or sticky bit in sysfs)");
  return static_cast<mode_t>(m);
}

// A symlink target relative to the link's directory: leading ".." climb,
// then names; it may not climb above the mount root.
void check_target(const core::ConfigValue& v, std::string_view link_path) {
  const std::string& t = v.as_string();
  if (t.empty() || t.size() > kMaxRecordedPath)
    v.fail(fmt::format("a link target is 1..{} bytes", kMaxRecordedPath));
  if (t.front() == '/') v.fail("a link target is relative (sysfs links are)");
  const std::size_t parent_depth = split(link_path).size() - 1;
  std::size_t up = 0;
  bool names = false;
  for (auto c : split(t)) {
    if (c == ".." && !names) {
      ++up;
    } else if (valid_component(c)) {
      names = true;
    } else {
      v.fail("a link target is \"../\"* then names (no empty, \".\" or inner \"..\" component)");
    }
  }
  if (up > parent_depth) v.fail("the link target climbs above the mount root");
  if (!names) v.fail("a link target names something below its \"..\"s");
}

std::optional<std::string> decode_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

// True when `path` or one of its parents exists already as something a
// recorded entry cannot go into: the path itself, or a parent that is
// not a directory. (A model directory as a parent is fine: recorded
// files fill in what the model lacks.)
bool taken(const core::Tree& tree, std::string_view path) {
  std::string prefix;
  for (auto c : split(path)) {
    if (!prefix.empty()) prefix += '/';
    prefix += c;
    const auto node = tree.find(prefix);
    if (!node) return false;
    if (prefix.size() == path.size() || !node->is_dir()) return true;
  }
  return false;
}

void build_recorded(MachineContext& ctx, const core::ConfigValue& sec) {
  const auto& dirs = sec.get_array("dir");
  const auto& files = sec.get_array("file");
  const auto& links = sec.get_array("link");
  if (dirs.size() + files.size() + links.size() > kMaxRecordedEntries)
    sec.fail(fmt::format("more than {} recorded entries", kMaxRecordedEntries));
  std::vector<std::string> shadowed;
  std::size_t total = 0;

  for (const auto& d : dirs) {
    const std::string& path = require_recorded_path(d.require("path"));
    const mode_t mode = require_mode(d);
    if (taken(ctx.tree, path)) {
      // A directory the model built: the model's mode stands (listed when
      // the recording's differs). Anything else in the way (a file at the
      // path or above it) shadows it.
      const auto node = ctx.tree.find(path);
      if (!node || !node->is_dir() || node->mode != mode) shadowed.push_back(path);
      continue;
    }
    const core::Ino ino = ctx.tree.mkdir_p(path);
    (void)ctx.tree.set_mode(ino, mode);
  }
  for (const auto& f : files) {
    const std::string& path = require_recorded_path(f.require("path"));
    const mode_t mode = require_mode(f);
    std::string content;
    std::optional<int> error;
    const auto* text = f.find("text");
    const auto* hex = f.find("hex");
    const auto* err = f.find("errno");
    if ((text != nullptr) + (hex != nullptr) + (err != nullptr) != 1)
      f.fail("a recorded file has exactly one of text, hex, errno");
    if (text) content = text->as_string();
    if (hex) {
      auto bytes = decode_hex(hex->as_string());
      if (!bytes) hex->fail("an even number of hex digits");
      content = std::move(*bytes);
    }
    if (err) {
      error = errno_from_name(err->as_string());
      if (!error) err->fail("not an errno name (EIO, EINVAL, ...)");
    }
    if (content.size() > kMaxRecordedFileBytes)
      f.fail(fmt::format("more than {} bytes", kMaxRecordedFileBytes));
    total += content.size();
    if (total > kMaxRecordedTotalBytes)
      f.fail(fmt::format("recorded files hold more than {} bytes in all", kMaxRecordedTotalBytes));
    const std::uint64_t size = f.get_uint("size", content.size());
    if (size > kMaxRecordedFileBytes)
      f.require("size").fail(fmt::format("more than {} bytes", kMaxRecordedFileBytes));
    if (taken(ctx.tree, path)) {
      shadowed.push_back(path);
      continue;
    }
    const std::size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
    auto dev = std::make_shared<RecordedFile>(
        path.substr(slash + 1), mode, static_cast<std::size_t>(size), std::move(content), error);
    ctx.tree.add_device<RecordedFile>(dir, dev, dev->groups());
    ctx.machine.keep(std::move(dev));
  }
  for (const auto& l : links) {
    const std::string& path = require_recorded_path(l.require("path"));
    const auto& target = l.require("target");
    check_target(target, path);
    if (taken(ctx.tree, path)) {
      shadowed.push_back(path);
      continue;
    }
    ctx.tree.add_symlink(path, target.as_string());
  }

  auto dev = std::make_shared<RecordedShadowed>(std::move(shadowed));
  ctx.tree.add_device<RecordedShadowed>("kernel/debug/vsysfs/recorded", dev,
                                        RecordedShadowed::groups());
  ctx.machine.keep(std::move(dev));
  ctx.env.log(nullptr, "recorded", "replay", "OK",
              {{"dirs", dirs.size()}, {"files", files.size()}, {"links", links.size()}});
  // Snapshots (docs/snapshot.md): a recorded machine restores. The
  // section keeps no state of its own: a recorded file's bytes, size and
  // errno, a link's target and the shadowed list are fixed at the build,
  // and a write is EACCES; what a client can change is the mode and owner
  // of a recorded directory, file or link (chmod, chown, chown -h), which
  // every snapshot keeps for every node of the tree (MachineSnapshots).
  ctx.machine.register_state({.name = "recorded",
                              .version = 1,
                              .save = {},
                              .load = {},
                              .loads_into_new_boot = {},
                              .section = {}});
}

// Last: after every device, so that the model wins (see the header).
const SectionRegistrar kRegistrar{"recorded", &build_recorded, 2000};

}  // namespace

RecordedFile::RecordedFile(std::string name, mode_t mode, std::size_t size, std::string content,
                           std::optional<int> error)
    : name_(std::move(name)),
      content_(std::move(content)),
      error_(error),
      attr_{name_, mode, size, &RecordedFile::read, nullptr},
      group_{.name = "", .bin_attrs = {&attr_, 1}} {}

// Locking: none (immutable).
core::Result<std::size_t> RecordedFile::read(const core::Caller&, std::uint64_t pos,
                                             std::span<char> out) {
  if (error_) return core::Errno{*error_};
  if (pos >= content_.size()) return std::size_t{0};
  const std::size_t n = std::min(out.size(), content_.size() - static_cast<std::size_t>(pos));
  content_.copy(out.data(), n, static_cast<std::size_t>(pos));
  return n;
}

std::optional<int> errno_from_name(std::string_view name) {
  for (int e = 1; e < 134; ++e)
    if (core::errno_name(e) == name) return e;
  return std::nullopt;
}

}  // namespace vsysfs::devices
