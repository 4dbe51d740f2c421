#include "devices/machine/lock_debug.hpp"

#include "devices/machine/machine.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::SeqAttribute<LockDebug> kSeq[] = {
    VSYSFS_SEQ_ATTR_RO(LockDebug, locks, 0400),
};
constexpr core::AttributeGroup<LockDebug> kGroups[] = {
    {.name = "", .seq_attrs = kSeq},
};

// Every machine has the lock service, so every machine has its table
// (order < 0: built without a [locks] section; after the control plane,
// which makes kernel/debug/vsysfs).
void build(MachineContext& ctx, const core::ConfigValue&) {
  auto dev = std::make_shared<LockDebug>(ctx.locks);
  ctx.tree.add_device<LockDebug>("kernel/debug/vsysfs", dev, LockDebug::groups());
  ctx.machine.keep(dev);
  // Held locks belong to the processes that hold them, not to the machine:
  // a snapshot restore leaves them (docs/snapshot.md). Nothing to save.
  ctx.machine.register_state({.name = "locks",
                              .version = 1,
                              .save = {},
                              .load = {},
                              .loads_into_new_boot = {},
                              .section = {}});
}
const devices::SectionRegistrar kReg{"locks", &build, -999};

}  // namespace

std::span<const core::AttributeGroup<LockDebug>> LockDebug::groups() { return kGroups; }

core::Status LockDebug::locks_show(std::string& out) const {
  locks_.render(out);
  return {};
}

}  // namespace vsysfs::devices
