#pragma once

// Memory blocks: /sys/devices/system/memory (kernel: drivers/base/memory.c,
// arch/x86/mm/init_64.c probe_memory_block_size), over the nodes of
// NumaModel. The nodes' memory is laid out in node order from physical
// address 0, each node spanning whole blocks (a node whose memory is not a
// multiple of the block size ends in a partial block, like the reserved
// tail of a real node: the blocks span more than MemTotal).
//
//   devices/system/memory/            (MemoryRoot)
//     block_size_bytes         0444  "%lx\n" memory_block_size_bytes()
//     auto_online_blocks       0644  "offline\n" | "online\n" | "online_kernel\n" |
//                                    "online_movable\n"; store: one of those
//                                    (mhp_online_type_from_str), else EINVAL
//     uevent                   0644  empty; store: kobject_synth_uevent
//   devices/system/memory/memoryN/    (MemoryBlock)
//     state                    0644  "online\n" | "offline\n"; store: "online",
//                                    "online_kernel", "online_movable" or
//                                    "offline" (sysfs_streq), else EINVAL; a block
//                                    already in that state: EINVAL (QUIRK:
//                                    state_store maps device_online's 1 to -EINVAL)
//     online                   0644  "%u\n"; store: kstrtobool, device_online/
//                                    offline; an unchanged state is no error
//     phys_index               0444  "%08lx\n" the block id
//     phys_device              0444  "0\n" (x86 arch_get_memory_phys_device)
//     removable                0444  "1\n" (CONFIG_MEMORY_HOTREMOVE, since 5.8)
//     valid_zones              0444  online: "Normal\n" (the model's one zone);
//                                    offline: "Normal Movable\n"
//     uevent                   0644  empty; store: kobject_synth_uevent
//     power/                         runtime PM never enabled (drivers/base/power/sysfs.c):
//       control                  0644  "auto\n"; store "auto"/"on" (sysfs_streq) else EINVAL
//       runtime_status           0444  "unsupported\n"
//       runtime_active_time, runtime_suspended_time  0444 "0\n"
//       autosuspend_delay_ms     0644  EIO both ways (!use_autosuspend)
//     nodeM -> ../../node/nodeM, subsystem -> ../../../../bus/memory
//   devices/system/node/nodeM/memoryN -> ../../memory/memoryN
//   bus/memory/devices/memoryN -> ../../../devices/system/memory/memoryN
//
// Offlining takes the block's pages out of its node (remove_present_pages):
// EBUSY when the node cannot give them all (offline_pages cannot migrate
// what is in use), and nothing changes; onlining gives them back. A node
// whose last present page goes offline leaves N_MEMORY (has_memory) and
// the zonelists are rebuilt; onlining puts it back.
//
// Thread-safety: state changes are serialised by the hotplug mutex
// (lock_device_hotplug); the block's state is guarded by it; the model
// locks its own state.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/thread_annotations.hpp"
#include "core/tree.hpp"
#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {

// mhp_online_type: what auto_online_blocks holds.
enum class OnlineType { Offline, Online, OnlineKernel, OnlineMovable };
std::string_view online_type_name(OnlineType t);
std::optional<OnlineType> parse_online_type(std::string_view s);  // sysfs_streq

// x86 probe_memory_block_size on bare metal: 128 MiB below 64 GiB of
// memory, else 2 GiB.
std::uint64_t default_memory_block_bytes(std::uint64_t total_bytes);

class MemoryHotplug {
 public:
  MemoryHotplug(core::Env& env, std::uint64_t block_bytes, OnlineType auto_online)
      : env_(env), block_bytes_(block_bytes), auto_online_(auto_online) {}
  core::Env& env() { return env_; }
  core::Mutex& mu() { return mu_; }
  std::uint64_t block_bytes() const { return block_bytes_; }
  OnlineType auto_online() const;
  void set_auto_online(OnlineType t);

 private:
  core::Env& env_;
  const std::uint64_t block_bytes_;
  mutable core::Mutex mu_{"memory.device_hotplug_lock", 10};  // Order: before numa.pgdat (leaf)
  OnlineType auto_online_ GUARDED_BY(mu_);
};

class MemoryRoot {
 public:
  explicit MemoryRoot(std::shared_ptr<MemoryHotplug> hp) : hp_(std::move(hp)) {}
  static std::span<const core::AttributeGroup<MemoryRoot>> groups();

  // Locking: the hotplug mutex for auto_online_blocks. Context: FUSE worker.
  core::Status block_size_bytes_show(core::PageBuffer& buf) const;
  core::Status auto_online_blocks_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> auto_online_blocks_store(const core::Caller& caller,
                                                     std::string_view in);
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);

 private:
  std::shared_ptr<MemoryHotplug> hp_;
};

class MemoryBlock {
 public:
  MemoryBlock(std::shared_ptr<MemoryHotplug> hp, std::shared_ptr<NumaModel> model, std::uint64_t id,
              int nid, std::uint64_t pages)
      : hp_(std::move(hp)), model_(std::move(model)), id_(id), nid_(nid), pages_(pages) {}
  static std::span<const core::AttributeGroup<MemoryBlock>> groups();

  // Locking: the hotplug mutex (state, online), then the model's.
  // Context: FUSE worker; state changes log "memory"/"state".
  core::Status state_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> state_store(const core::Caller& caller, std::string_view in);
  core::Status online_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> online_store(const core::Caller& caller, std::string_view in);
  core::Status phys_index_show(core::PageBuffer& buf) const;
  core::Status phys_device_show(core::PageBuffer& buf) const;
  core::Status removable_show(core::PageBuffer& buf) const;
  core::Status valid_zones_show(core::PageBuffer& buf) const;
  core::Status uevent_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> uevent_store(const core::Caller& caller, std::string_view in);
  // power/. Locking: the hotplug mutex for control.
  core::Status control_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> control_store(const core::Caller& caller, std::string_view in);
  core::Status runtime_status_show(core::PageBuffer& buf) const;
  core::Status runtime_active_time_show(core::PageBuffer& buf) const;
  core::Status runtime_suspended_time_show(core::PageBuffer& buf) const;
  core::Status autosuspend_delay_ms_show(core::PageBuffer& buf) const;
  core::Result<std::size_t> autosuspend_delay_ms_store(const core::Caller& caller,
                                                       std::string_view in);

  // Machine snapshots (docs/snapshot.md): the block's online flag (its
  // pages are the NUMA model's, restored with it). Locking: the hotplug
  // mutex.
  std::uint64_t id() const { return id_; }
  bool online_flag() const;
  void set_online_flag(bool online);

 private:
  bool is_online() const;
  // device_online/device_offline under the hotplug mutex: 1 when already
  // in that state, 0 when changed, or the errno.
  core::Result<int> set_online(const core::Caller& caller, bool online, std::string_view how)
      REQUIRES(hp_->mu());

  std::shared_ptr<MemoryHotplug> hp_;
  std::shared_ptr<NumaModel> model_;
  const std::uint64_t id_;
  const int nid_;
  const std::uint64_t pages_;  // present pages in the block (the last of a node may be partial)
  bool online_ GUARDED_BY(hp_->mu()) = true;
  bool runtime_pm_allowed_ GUARDED_BY(hp_->mu()) = true;  // power/control
};

// Adds devices/system/memory, every block of every node with memory, and
// the node/bus links (called by the [numa] section builder).
// block_bytes 0: default_memory_block_bytes of the nodes' total.
void add_memory_blocks(core::Env& env, core::Tree& tree, std::shared_ptr<NumaModel> model,
                       std::uint64_t block_bytes, OnlineType auto_online,
                       std::vector<std::shared_ptr<void>>& keep,
                       const std::vector<std::vector<unsigned>>& block_ids = {},
                       std::vector<std::shared_ptr<MemoryBlock>>* blocks = nullptr);

}  // namespace vsysfs::devices
