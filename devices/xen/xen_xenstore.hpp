#pragma once

// The simulated host's xenstore, as the toolstack in dom0 sees it, and the
// watch every domain's balloon driver keeps on its memory/target. This is
// the path toolstacks (xl mem-set, xapi, libvirt) use: they never write a
// guest's sysfs; they write /local/domain/D/memory/target (KiB) and the
// guest's driver reacts.
//
// Models:
//  - xenstored's tree (tools/xenstored): nodes with a value and children
//    in creation order; a write creates missing parents with empty
//    values; every write fires the watches registered on the written node
//    or on one of its ancestors (xenstored fire_watches, is_child), even
//    when the value does not change. Node names: xenstored's
//    is_valid_nodename (starts with '/', no "//", no trailing '/', only
//    [A-Za-z0-9-/_@]).
//  - the guest's watch: drivers/xen/xen-balloon.c watch_target (6.12), on
//    "memory/target" relative to /local/domain/<domid>:
//      xenbus_scanf("memory", "target", "%llu") != 1 -> return silently
//      new_target >>= PAGE_SHIFT - 10                  (KiB -> pages)
//      first fire only: static_max = memory/static-max, else
//        memory/memory_static_max, else new_target (>> PAGE_SHIFT - 10);
//        target_diff = (xen_pv_domain() || xen_initial_domain()) ? 0
//                      : static_max - balloon_stats.target_pages
//      balloon_set_new_target(new_target - target_diff)
//    The watch is registered at boot (balloon_init_watcher), and
//    register_xenbus_watch fires it once at once, so the first fire, the
//    one that reads static-max and fixes target_diff, is at boot. The
//    model boots just after it: the target it sets is the boot target the
//    balloon already has, so start() records it and sets nothing.
//    QUIRK: memory/static-max written later never changes target_diff.
//    QUIRK: a value "%llu" cannot read ("", "abc", "-1") is stored, fires
//    the watch, and the driver ignores it; "12abc" is 12; "+5" is
//    ignored; more than 2^64 wraps (lib/vsprintf.c vsscanf,
//    simple_strntoull). A target below target_diff wraps to a huge
//    unsigned long (the kthread then clamps it to current memory when
//    the balloon is empty).
//    balloon_stats.target_pages at the boot fire: an HVM or PVH guest
//    with less memory than its maximum runs populate-on-demand, so its
//    e820 (get_num_physpages() in balloon_init) covers the whole static
//    maximum: the model takes the guest's max_kb there, which gives
//    target_diff = static-max - max_kb (0 when static-max is the
//    maximum, the default; [xen.xenstore] static_max_kb moves it).
//  - the other domains' drivers: the same watch with target_diff 0 (they
//    are modelled converged; Domain-0 is the initial domain); the new
//    target is clamped to the domain's max_kb (their driver cannot get
//    past Xen's max_pages either) and set through the hypervisor's own
//    domain target (xen_balloon_hypervisor.hpp), which paces towards it.
//
// Not modelled: the sysfs target files do not write back to xenstore (the
// kernel's do not either), nor do the hypervisor knobs; rm, permissions,
// transactions across writes and XS_INTRODUCE (the domains are fixed).
//
// The boot tree (what xl and xen-init-dom0 write; libxl_dom.c
// libxl__build_post, libxl_mem.c libxl__fill_dom0_memory_info):
//   /tool/xenstored
//   /local/domain/D/{vm,name,domid,memory/static-max,memory/target}
//   /vm/UUID/{uuid,name,memory}   (memory in MiB, as libxl writes it)
// for every domain, Domain-0 included. UUIDs: /sys/hypervisor/uuid's for
// this guest, the same derivation for the others, all zeroes for domid 0.
// memory/videoram (HVM with an emulated display) is absent: no device
// model here.
//
// File (kernel/debug/vsysfs/xen/, root-only like the rest of the knobs):
//   xenstore  0600  read: the whole tree as `xenstore-ls` prints it (one
//                   node a line, `name = "value"`, one space of indent per
//                   level, '\' printed as "\\"). write: one or more lines
//                   "PATH VALUE\n" (VALUE is the rest of the line after
//                   one space; may be empty), applied all or nothing.
//                   EINVAL: a line without a space, an invalid path, "/"
//                   itself, a byte outside printable ASCII (0x20-0x7e)
//                   anywhere, an empty line. ENOENT: a path under
//                   /local/domain/N or /vm/U for a domain or VM that does
//                   not exist. ENOSPC: a value over kMaxValueBytes, or a
//                   write that would grow the tree past kMaxNodes nodes
//                   (xenstored's quota-maxsize 2048 and its per-domain
//                   entry quota 1000, which real xenstored does not apply
//                   to dom0; here they bound the store). A refused write
//                   changes nothing.
// Events (device "xenstore"): "write" per line written (path, value), or
// one with the errno and the line at fault for a refused write;
// "watch" per watch fire (domid, path, value read, result OK or "ignored"
// when %llu reads nothing; target_kb set, target_diff_kb, first).
//
// Thread-safety: xenwatch_mutex serializes writers and the watch
// callbacks, as the kernel's single xenwatch thread runs one callback at
// a time; mu guards the tree and is never held while a callback runs.
// Order: xen.xenwatch_mutex (5) -> xen.xenstore (6) | xen.balloon_mutex
// (10) -> xen.hypervisor (20).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attribute.hpp"
#include "core/config.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/thread_annotations.hpp"
#include "devices/xen/xen_balloon_hypervisor.hpp"

namespace vsysfs::devices {

class XenStore {
 public:
  static constexpr std::size_t kMaxNodes = 1000;
  static constexpr std::size_t kMaxValueBytes = 2048;
  static constexpr std::size_t kMaxPathBytes = 3072;  // XENSTORE_ABS_PATH_MAX

  // One domain as the toolstack created it, with its balloon driver.
  struct Domain {
    std::string name;
    DomId domid = 0;
    std::string uuid;  // 8-4-4-4-12, lower case
    std::uint64_t static_max_kb = 0;
    std::uint64_t target_kb = 0;  // memory/target at boot
    // xen_pv_domain() || xen_initial_domain(): target_diff is 0.
    bool pv_or_initial = false;
    // balloon_stats.target_pages when the watch first fires (boot).
    std::uint64_t first_fire_pages = 0;
    // The balloon target the model boots with (what the boot fire set).
    std::uint64_t boot_target_pages = 0;
    // kernel: balloon_set_new_target(target). Called with
    // xenwatch_mutex held, never mu.
    std::function<void(const core::Caller&, std::uint64_t)> set_target;
  };

  XenStore(core::Env& env, std::vector<Domain> domains);
  XenStore(const XenStore&) = delete;
  XenStore& operator=(const XenStore&) = delete;

  static std::span<const core::AttributeGroup<XenStore>> groups();

  // register_xenbus_watch for every domain: fires each watch once (the
  // first fire: static-max, target_diff). Called once the machine is built.
  void start();

  // Locking: mu. Context: FUSE worker.
  core::Status xenstore_show(std::string& out) const;
  // Locking: xenwatch_mutex, mu, then the callbacks' locks.
  core::Result<std::size_t> xenstore_store(const core::Caller& caller, std::string_view in);

  // The value at `path`, or nullopt. Locking: mu.
  std::optional<std::string> read(std::string_view path) const;
  std::size_t node_count() const;
  // xenstored's is_valid_nodename for an absolute path.
  static bool valid_path(std::string_view p);

 private:
  // Machine snapshots (xen_state.cpp, docs/snapshot.md).
  friend class XenStateHandler;

  struct Node {
    std::string value;
    std::vector<std::string> children;  // names, creation order
  };
  struct Watch {
    std::size_t domain;  // index into domains_
    std::string node;    // /local/domain/D/memory/target
  };
  struct WatchState {
    bool fired = false;  // kernel: static bool watch_fired
    long target_diff = 0;
  };
  struct Line {
    std::string path;
    std::string value;
  };

  // Writes `value` at `path`, creating parents. Locking: mu.
  void write_locked(const std::string& path, std::string value) REQUIRES(mu_);
  // Paths of `path` and its ancestors that do not exist yet.
  std::vector<std::string> missing_locked(const std::string& path) const REQUIRES(mu_);
  core::Status check_owner_locked(std::string_view path) const REQUIRES(mu_);
  void show_locked(std::string& out, const std::string& path, const Node& node, int depth) const
      REQUIRES(mu_);
  // kernel: watch_target for domain `i`, fired by a change at `path`;
  // `boot`: the fire of register_xenbus_watch.
  void watch_target(const core::Caller& caller, std::size_t i, std::string_view path,
                    bool boot = false) REQUIRES(xenwatch_mutex_);

  core::Env& env_;
  const std::vector<Domain> domains_;  // immutable after construction
  std::vector<Watch> watches_;         // immutable after construction

  core::Mutex xenwatch_mutex_{"xen.xenwatch_mutex", 5};  // Order: before xen.xenstore (6)
  std::vector<WatchState> watch_state_ GUARDED_BY(xenwatch_mutex_);
  // Order: after xen.xenwatch_mutex; nothing is taken under it (never held
  // while a watch callback runs).
  mutable core::Mutex mu_{"xen.xenstore", 6};
  std::map<std::string, Node, std::less<>> nodes_ GUARDED_BY(mu_);  // "/" is the root
};

struct MachineContext;
class XenBalloon;

// Builds the xenstore of a [xen] machine from its domains and adds
// kernel/debug/vsysfs/xen/xenstore; fires the boot watches. `xen_sec` is
// the [xen] section ([xen.hypervisor] for the guest type and uuid,
// [xen.xenstore] static_max_kb). Returns the store (for its StateHandler).
std::shared_ptr<XenStore> build_xenstore(MachineContext& ctx, const core::ConfigValue& xen_sec,
                                         const std::shared_ptr<XenHypervisor>& hv,
                                         const std::shared_ptr<XenBalloon>& guest,
                                         const XenHypervisor::DomainSpec& guest_spec,
                                         std::uint64_t boot_target_pages);

}  // namespace vsysfs::devices
