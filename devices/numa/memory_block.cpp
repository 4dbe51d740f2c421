#include "devices/numa/memory_block.hpp"

#include <cerrno>

#include <fmt/format.h>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

// drivers/base/memory.c memory_root_attrs (probe, soft/hard_offline_page
// need CONFIG_ARCH_MEMORY_PROBE / CONFIG_MEMORY_FAILURE: not modelled).
constexpr core::DeviceAttribute<MemoryRoot> kRootAttrs[] = {
    VSYSFS_ATTR_RO(MemoryRoot, block_size_bytes),
    VSYSFS_ATTR_RW(MemoryRoot, auto_online_blocks),
    VSYSFS_ATTR_RW(MemoryRoot, uevent),
};
constexpr core::AttributeGroup<MemoryRoot> kRootGroups[] = {{.name = "", .attrs = kRootAttrs}};

// drivers/base/memory.c memory_memblk_attrs, plus the device's uevent.
// One attribute a line, as the kernel's tables.
// clang-format off
constexpr core::DeviceAttribute<MemoryBlock> kBlockAttrs[] = {
    VSYSFS_ATTR_RO(MemoryBlock, phys_index),
    VSYSFS_ATTR_RW(MemoryBlock, state),
    VSYSFS_ATTR_RO(MemoryBlock, phys_device),
    VSYSFS_ATTR_RO(MemoryBlock, removable),
    VSYSFS_ATTR_RO(MemoryBlock, valid_zones),
    VSYSFS_ATTR_RW(MemoryBlock, online),
    VSYSFS_ATTR_RW(MemoryBlock, uevent),
};
// clang-format on
// drivers/base/power/sysfs.c power_attrs + runtime_attrs.
constexpr core::DeviceAttribute<MemoryBlock> kBlockPower[] = {
    VSYSFS_ATTR_RW(MemoryBlock, control),
    VSYSFS_ATTR_RO(MemoryBlock, runtime_active_time),
    VSYSFS_ATTR_RO(MemoryBlock, runtime_status),
    VSYSFS_ATTR_RO(MemoryBlock, runtime_suspended_time),
    VSYSFS_ATTR_RW(MemoryBlock, autosuspend_delay_ms),
};
constexpr core::AttributeGroup<MemoryBlock> kBlockGroups[] = {
    {.name = "", .attrs = kBlockAttrs},
    {.name = "power", .attrs = kBlockPower},
};

constexpr std::uint64_t kMiB = 1024 * 1024;

}  // namespace

std::string_view online_type_name(OnlineType t) {
  switch (t) {
    case OnlineType::Offline:
      return "offline";
    case OnlineType::Online:
      return "online";
    case OnlineType::OnlineKernel:
      return "online_kernel";
    case OnlineType::OnlineMovable:
      return "online_movable";
  }
  return "offline";
}

std::optional<OnlineType> parse_online_type(std::string_view s) {
  for (OnlineType t : {OnlineType::Offline, OnlineType::Online, OnlineType::OnlineKernel,
                       OnlineType::OnlineMovable})
    if (core::sysfs_streq(s, online_type_name(t))) return t;
  return std::nullopt;
}

// arch/x86/mm/init_64.c: MEM_SIZE_FOR_LARGE_BLOCK (64 GiB); below it
// MIN_MEMORY_BLOCK_SIZE (128 MiB), above it MAX_BLOCK_SIZE (2 GiB) on bare
// metal.
std::uint64_t default_memory_block_bytes(std::uint64_t total_bytes) {
  return total_bytes < 64 * 1024 * kMiB ? 128 * kMiB : 2048 * kMiB;
}

// --- MemoryHotplug ---

OnlineType MemoryHotplug::auto_online() const {
  core::MutexLock lock(mu_);
  return auto_online_;
}

void MemoryHotplug::set_auto_online(OnlineType t) {
  core::MutexLock lock(mu_);
  auto_online_ = t;
}

// --- MemoryRoot ---

std::span<const core::AttributeGroup<MemoryRoot>> MemoryRoot::groups() { return kRootGroups; }

core::Status MemoryRoot::block_size_bytes_show(core::PageBuffer& buf) const {
  buf.emit("{:x}\n", hp_->block_bytes());
  return {};
}

core::Status MemoryRoot::auto_online_blocks_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", online_type_name(hp_->auto_online()));
  return {};
}

// auto_online_blocks_store: mhp_online_type_from_str, else -EINVAL.
core::Result<std::size_t> MemoryRoot::auto_online_blocks_store(const core::Caller& caller,
                                                               std::string_view in) {
  const auto t = parse_online_type(in);
  if (!t) return core::Errno{EINVAL};
  hp_->set_auto_online(*t);
  hp_->env().log(&caller, "memory", "auto_online_blocks", "OK",
                 {{"value", std::string(online_type_name(*t))}});
  return in.size();
}

core::Status MemoryRoot::uevent_show(core::PageBuffer&) const { return {}; }
core::Result<std::size_t> MemoryRoot::uevent_store(const core::Caller& caller,
                                                   std::string_view in) {
  // The subsystem's root device (subsys_system_register) has no bus.
  return core::uevent_store(hp_->env(), caller, {"/devices/system/memory", "", ""}, in);
}

// --- MemoryBlock ---

std::span<const core::AttributeGroup<MemoryBlock>> MemoryBlock::groups() { return kBlockGroups; }

bool MemoryBlock::is_online() const {
  core::MutexLock lock(hp_->mu());
  return online_;
}

core::Status MemoryBlock::state_show(core::PageBuffer& buf) const {
  buf.append(is_online() ? "online\n" : "offline\n");
  return {};
}

core::Status MemoryBlock::online_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", is_online() ? 1 : 0);
  return {};
}

core::Result<int> MemoryBlock::set_online(const core::Caller& caller, bool online,
                                          std::string_view how) {
  const auto log = [&](std::string_view result) {
    hp_->env().log(&caller, "memory", "state", result,
                   {{"block", id_}, {"node", nid_}, {"to", std::string(how)}});
  };
  if (online_ == online) return 1;
  if (online) {
    auto st = model_->add_present_pages(nid_, pages_);
    if (!st) {
      log(st.error().name());
      return st.error();
    }
  } else {
    // offline_pages: every page of the block must be isolated; pages in
    // use cannot be migrated anywhere in this model, so a node without
    // that many free pages refuses (EBUSY) and keeps what it had.
    auto got = model_->remove_present_pages(nid_, pages_);
    if (!got) {
      log(got.error().name());
      return got.error();
    }
    if (*got < pages_) {
      (void)model_->add_present_pages(nid_, *got);
      log("EBUSY");
      return core::Errno{EBUSY};
    }
  }
  online_ = online;
  log("OK");
  return 0;
}

// state_store: lock_device_hotplug_sysfs, device_online/offline; a block
// already in that state is EINVAL (the 1 from device_online).
core::Result<std::size_t> MemoryBlock::state_store(const core::Caller& caller,
                                                   std::string_view in) {
  const auto t = parse_online_type(in);
  if (!t) return core::Errno{EINVAL};
  core::MutexLock lock(hp_->mu());
  const int r = VSYSFS_TRY(set_online(caller, *t != OnlineType::Offline, online_type_name(*t)));
  if (r) return core::Errno{EINVAL};  // QUIRK: already there is an error here, not in `online`
  return in.size();
}

// drivers/base/core.c online_store: kstrtobool; unchanged is success.
core::Result<std::size_t> MemoryBlock::online_store(const core::Caller& caller,
                                                    std::string_view in) {
  const bool val = VSYSFS_TRY(core::kstrtobool(in));
  core::MutexLock lock(hp_->mu());
  (void)VSYSFS_TRY(set_online(caller, val, val ? "online" : "offline"));
  return in.size();
}

core::Status MemoryBlock::phys_index_show(core::PageBuffer& buf) const {
  buf.emit("{:08x}\n", id_);
  return {};
}
core::Status MemoryBlock::phys_device_show(core::PageBuffer& buf) const {
  buf.append("0\n");
  return {};
}
core::Status MemoryBlock::removable_show(core::PageBuffer& buf) const {
  buf.append("1\n");
  return {};
}
// valid_zones_show: an online block shows its zone; an offline one the
// zones it could be onlined to (default_kernel_zone_for_pfn, then Movable).
core::Status MemoryBlock::valid_zones_show(core::PageBuffer& buf) const {
  buf.append(is_online() ? "Normal\n" : "Normal Movable\n");
  return {};
}
core::Status MemoryBlock::uevent_show(core::PageBuffer&) const { return {}; }
core::Result<std::size_t> MemoryBlock::uevent_store(const core::Caller& caller,
                                                    std::string_view in) {
  const std::string devpath = fmt::format("/devices/system/memory/memory{}", id_);
  return core::uevent_store(hp_->env(), caller, {devpath, "memory", ""}, in);
}

core::Status MemoryBlock::control_show(core::PageBuffer& buf) const {
  core::MutexLock lock(hp_->mu());
  buf.append(runtime_pm_allowed_ ? "auto\n" : "on\n");
  return {};
}

core::Result<std::size_t> MemoryBlock::control_store(const core::Caller& caller,
                                                     std::string_view in) {
  bool allow;
  if (core::sysfs_streq(in, "auto")) {
    allow = true;
  } else if (core::sysfs_streq(in, "on")) {
    allow = false;
  } else {
    return core::Errno{EINVAL};
  }
  {
    core::MutexLock lock(hp_->mu());
    runtime_pm_allowed_ = allow;
  }
  hp_->env().log(&caller, "memory", "power/control", "OK",
                 {{"block", id_}, {"value", allow ? "auto" : "on"}});
  return in.size();
}

// Runtime PM is never enabled for a memory block (disable_depth > 0).
core::Status MemoryBlock::runtime_status_show(core::PageBuffer& buf) const {
  buf.append("unsupported\n");
  return {};
}
core::Status MemoryBlock::runtime_active_time_show(core::PageBuffer& buf) const {
  buf.append("0\n");
  return {};
}
core::Status MemoryBlock::runtime_suspended_time_show(core::PageBuffer& buf) const {
  buf.append("0\n");
  return {};
}
core::Status MemoryBlock::autosuspend_delay_ms_show(core::PageBuffer&) const {
  return core::Errno{EIO};
}
core::Result<std::size_t> MemoryBlock::autosuspend_delay_ms_store(const core::Caller&,
                                                                  std::string_view) {
  return core::Errno{EIO};
}

void add_memory_blocks(core::Env& env, core::Tree& tree, std::shared_ptr<NumaModel> model,
                       std::uint64_t block_bytes, OnlineType auto_online,
                       std::vector<std::shared_ptr<void>>& keep,
                       const std::vector<std::vector<unsigned>>& block_ids,
                       std::vector<std::shared_ptr<MemoryBlock>>* blocks) {
  std::uint64_t total = 0;
  for (int nid = 0; nid < model->nr_node_ids(); ++nid)
    total += model->node(nid).present * kPageKiB * 1024;
  if (block_bytes == 0) block_bytes = default_memory_block_bytes(total);
  auto hp = std::make_shared<MemoryHotplug>(env, block_bytes, auto_online);
  keep.push_back(hp);
  auto root = std::make_shared<MemoryRoot>(hp);
  tree.add_device<MemoryRoot>("devices/system/memory", root, MemoryRoot::groups());
  keep.push_back(root);
  tree.mkdir_p("bus/memory/devices");

  const std::uint64_t block_pages = block_bytes / (kPageKiB * 1024);
  std::uint64_t id = 0;
  for (int nid = 0; nid < model->nr_node_ids(); ++nid) {
    // register_memory_blocks_under_node at boot.
    const bool listed = static_cast<std::size_t>(nid) < block_ids.size() && !block_ids[nid].empty();
    std::size_t nth = 0;
    const std::uint64_t present = model->node(nid).present;
    for (std::uint64_t left = present; listed ? nth < block_ids[nid].size() : left > 0; ++id) {
      // Listed blocks (memory_blocks, a recorded layout: the caller checked
      // they hold the node's pages and that no two nodes share one) each
      // get an equal share: the pages the kernel reserved are spread over
      // them. Otherwise the blocks are filled in order.
      std::uint64_t pages = std::min(left, block_pages);
      if (listed) {
        const std::uint64_t n = block_ids[nid].size();
        pages = present / n + (nth < present % n ? 1 : 0);
        id = block_ids[nid][nth++];
      }
      left -= pages;
      auto blk = std::make_shared<MemoryBlock>(hp, model, id, nid, pages);
      const std::string path = fmt::format("devices/system/memory/memory{}", id);
      tree.add_device<MemoryBlock>(path, blk, MemoryBlock::groups());
      tree.add_symlink(fmt::format("{}/node{}", path, nid), fmt::format("../../node/node{}", nid));
      tree.add_symlink(path + "/subsystem", "../../../../bus/memory");
      tree.add_symlink(fmt::format("devices/system/node/node{}/memory{}", nid, id),
                       fmt::format("../../memory/memory{}", id));
      tree.add_symlink(fmt::format("bus/memory/devices/memory{}", id),
                       fmt::format("../../../devices/system/memory/memory{}", id));
      if (blocks) blocks->push_back(blk);
      keep.push_back(blk);
    }
  }
}

bool MemoryBlock::online_flag() const {
  core::MutexLock lock(hp_->mu());
  return online_;
}

void MemoryBlock::set_online_flag(bool online) {
  core::MutexLock lock(hp_->mu());
  online_ = online;
}

}  // namespace vsysfs::devices
