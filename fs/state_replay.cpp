#include "fs/state_replay.hpp"

#include <cerrno>
#include <cstring>

#include "core/caller.hpp"
#include "core/node.hpp"

namespace vsysfs::fs {

core::Status replay_record(core::Tree& tree, const core::StateRecord& rec) {
  const core::Ino ino = tree.resolve(rec.path);
  auto node = ino ? tree.get(ino) : nullptr;
  if (!node || !node->alive.load()) return core::Errno{ENOENT};
  using Kind = core::StateRecord::Kind;
  switch (rec.kind) {
    case Kind::Store: {
      if (node->kind != core::NodeKind::Text && node->kind != core::NodeKind::Seq)
        return core::Errno{EINVAL};
      if (!node->has_write || rec.data.size() > core::kPageSize) return core::Errno{EIO};
      // The same NUL-terminated buffer the original write handed to store().
      char buf[core::kPageSize + 1];
      std::memcpy(buf, rec.data.data(), rec.data.size());
      buf[rec.data.size()] = '\0';
      const auto caller = core::Caller::with_caps(rec.uid, ~std::uint64_t{0}, "vsysfs-replay");
      auto n = node->store(caller, std::string_view(buf, rec.data.size()));
      if (!n) return n.error();
      return {};
    }
    case Kind::BinWrite: {
      if (node->kind != core::NodeKind::Bin) return core::Errno{EINVAL};
      if (!node->has_write) return core::Errno{EIO};
      const auto caller = core::Caller::with_caps(rec.uid, ~std::uint64_t{0}, "vsysfs-replay");
      auto n = node->bin_write(caller, rec.offset,
                               std::span<const char>(rec.data.data(), rec.data.size()));
      if (!n) return n.error();
      return {};
    }
    case Kind::Chmod:
      return tree.set_mode(ino, static_cast<mode_t>(rec.mode & 07777));
    case Kind::Chown:
      return tree.set_owner(ino, static_cast<uid_t>(rec.uid), static_cast<gid_t>(rec.gid));
  }
  return core::Errno{EINVAL};
}

ReplaySummary replay_all(core::Env& env, core::Tree& tree,
                         const std::vector<core::StateRecord>& records) {
  ReplaySummary out;
  for (const auto& rec : records) {
    auto st = replay_record(tree, rec);
    if (st) {
      ++out.applied;
    } else {
      ++out.failed;
      env.log(nullptr, "vsysfs", "state_replay", st.error().name(), {{"path", rec.path}});
    }
  }
  return out;
}

}  // namespace vsysfs::fs
