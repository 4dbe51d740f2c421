#pragma once

// Tree: the sysfs hierarchy (kernel: kernfs_root). Node ids (Ino, the FUSE
// node ids) index a table owned by the tree: root is 1, and a removed node
// stays addressable (dead) until the kernel forgets it. Then its slot is
// free and the next new node takes it, with the slot's generation one
// higher, so hotplug that adds and removes nodes forever keeps the table
// at its high-water mark instead of growing a slot per node ever created.
// The inode number users see folds the generation in (Node::st_ino, the
// layout of kernfs ids: fs/kernfs/dir.c), so like in sysfs a re-added file
// never shows an inode number seen before. Devices are added with their attribute tables
// (add_device, the device_add + sysfs_create_groups analogue); each device
// gets a Kobject handle through which it calls sysfs_notify().
//
// The fs layer registers an Observer to learn about notifies (poll wakes)
// and structural changes (kernel cache invalidation).
//
// Thread-safety: every member may be called from any thread. The structure
// is guarded by a SharedMutex (lookups shared, changes exclusive); device
// callbacks are never called with it held. Observer callbacks are called
// after it is released. The kernfs iattrs (times, xattrs) have their own
// SharedMutex, taken before the structure's lock, never with a device's.

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/attribute.hpp"
#include "core/locks.hpp"
#include "core/node.hpp"

namespace vsysfs::core {

class Tree;

// A device's handle to its directory (kernel: struct kobject).
class Kobject {
 public:
  Kobject() = default;
  Kobject(Tree* tree, Ino dir) : tree_(tree), dir_(dir) {}

  bool bound() const { return tree_ != nullptr; }
  Ino ino() const { return dir_; }
  // sysfs_notify(kobj, group, attr): wakes pollers of `group/attr` (group
  // "" is the device directory). A no-op before the device is added.
  void notify(std::string_view attr, std::string_view group = {}) const;
  // kobject_get_path(): "/devices/platform/dcdbas" (relative to /sys, as
  // uevents' DEVPATH); "" before the device is added. Locking: takes the
  // tree lock (read), so no device lock may be held.
  std::string path() const;

 private:
  Tree* tree_ = nullptr;
  Ino dir_ = 0;
};

// What kernfs keeps for a node once anything was set on it (kernel: struct
// kernfs_iattrs, fs/kernfs/kernfs-internal.h): the three times and the
// simple_xattrs. Allocated on the first setattr or xattr set; until then
// stat shows the mount time. Allocation stamps all three times with "now"
// (fs/kernfs/inode.c __kernfs_iattrs), so a first chmod also moves atime
// and mtime, as on sysfs.
struct Times {
  struct timespec atime {};
  struct timespec mtime {};
  struct timespec ctime {};
};
struct IAttrs {
  Times times;
  // simple_xattrs is an rbtree ordered by name (fs/xattr.c): listxattr
  // lists in name order.
  std::map<std::string, std::string, std::less<>> xattrs;
};

// A setattr's time fields (struct iattr's ATTR_ATIME/ATTR_MTIME with or
// without *_SET): nullopt leaves the time alone.
struct TimesIn {
  std::optional<struct timespec> atime;
  std::optional<struct timespec> mtime;
};

// setxattr(2) flags (XATTR_CREATE / XATTR_REPLACE of <linux/xattr.h>).
inline constexpr int kXattrCreate = 1;
inline constexpr int kXattrReplace = 2;

// Raised at start-up for an impossible tree (duplicate name, table with a
// write bit but no store, ...): these are programming or machine-file errors.
class TreeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The order of a kernfs directory's entries, as readdir on sysfs returns
// them: kernfs keeps a directory's children in an rbtree sorted by this
// hash, then by name (fs/kernfs/dir.c kernfs_name_hash, kernfs_sd_compare),
// and readdir walks the rbtree with the hash as the offset. The hash is
// full_name_hash's (include/linux/stringhash.h: partial_name_hash per
// byte, end_name_hash = hash_long(hash, 32) on 64-bit) cut to 31 bits, with
// 0, 1 and INT_MAX kept for "." "..", and the end. The kernel salts it with
// the directory's namespace tag, a pointer (the network namespace for
// class/net and a device's net/ directory): those directories' order
// differs from machine to machine, and vsysfs uses the salt 0 for every
// directory (docs/kernfs-surface.md).
std::uint32_t kernfs_name_hash(std::string_view name);

struct DirEntry {
  std::string name;
  Ino ino;
  NodeKind kind;
  std::uint64_t st_ino;  // what readdir shows (Node::st_ino)
};

class Tree {
 public:
  class Observer {
   public:
    virtual ~Observer() = default;
    virtual void notified(Ino ino) = 0;                                       // sysfs_notify
    virtual void entry_changed(Ino parent, const std::string& name, Ino child) = 0;  // add/remove
    virtual void attr_changed(Ino ino) = 0;                                   // chmod/chown
  };

  // Who the machine's root is on the host: every node starts owned by
  // `owner` (uid 0 and gid 0 for a daemon run as root). The kernel does the
  // same for the sysfs files of a network device in a namespace a user
  // namespace owns: sysfs_add_file_mode_ns takes the owner from
  // kobject_get_ownership, and net_get_ownership (net/core/net-sysfs.c)
  // answers with that namespace's root, make_kuid(net->user_ns, 0). A
  // daemon run by a user is that user's machine (docs/permissions.md).
  struct Owner {
    uid_t uid = 0;
    gid_t gid = 0;
  };
  Tree();  // owned by root
  explicit Tree(Owner owner);
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;

  void set_observer(Observer* observer);

  // mkdir -p of a path relative to the root ("devices/platform/dcdbas").
  Ino mkdir_p(std::string_view path);
  // A symlink at `path` pointing at `target` (relative, as sysfs makes them).
  Ino add_symlink(std::string_view path, std::string target);

  // Creates `path` and the device's groups in it; returns its Kobject.
  template <typename Dev>
  Kobject add_device(std::string_view path, std::shared_ptr<Dev> dev,
                     std::span<const AttributeGroup<Dev>> groups);

  // Removes the subtree at `path` (device_del): its nodes go dead at once,
  // I/O on open files returns ENODEV, the kernel's caches are invalidated.
  Status remove(std::string_view path);

  std::shared_ptr<Node> get(Ino ino) const;
  std::shared_ptr<Node> lookup(Ino parent, std::string_view name) const;
  // 0 when absent. Does not follow symlinks.
  Ino resolve(std::string_view path) const;
  std::shared_ptr<Node> find(std::string_view path) const { return get(resolve(path)); }
  Result<std::vector<DirEntry>> list(Ino dir) const;
  std::string path_of(Ino ino) const;

  // The kernel looked the node up (entry reply) / forgot it n times.
  // looked_up counts only a node that is still alive in its slot (false
  // otherwise: the caller must not hand it out), checked under the tree
  // lock so that a concurrent remove() cannot free the slot in between.
  bool looked_up(Node& node);
  void forget(Ino ino, std::uint64_t n);

  // chmod/chown of a node (root only: the fs layer checks the caller).
  Status set_mode(Ino ino, mode_t mode);
  Status set_owner(Ino ino, uid_t uid, gid_t gid);

  // The log of mode and owner changes, for a snapshot restore that sets
  // back only what changed (devices/machine/snapshot.cpp). Every set_mode,
  // set_owner and new node (whose mode and owner are its own, not those of
  // the node that had its path before) counts as one change. attr_mark():
  // the number of changes so far; the first call starts the log (a tree
  // that nobody snapshots pays nothing). attr_changes_since(mark): the
  // nodes changed after that mark, each once (dead ones included: the
  // caller checks); nullopt when the log no longer reaches back so far
  // (more than kMaxAttrLog changes since, or a mark of another tree's
  // log): then the caller must compare every node.
  static constexpr std::size_t kMaxAttrLog = std::size_t{1} << 15;
  std::uint64_t attr_mark();
  std::optional<std::vector<Ino>> attr_changes_since(std::uint64_t mark) const;
  // The owner new nodes get (see the constructor).
  Owner owner() const { return owner_; }

  // kernfs iattrs (see IAttrs). `now` is the wall-clock time of the
  // request (the fs layer reads it; the tree keeps no clock).
  // The stored times, nullopt while nothing was ever set on the node.
  std::optional<Times> times(Ino ino) const;
  // __kernfs_setattr's time part: ctime = now (notify_change always sets
  // ATTR_CTIME), atime/mtime as asked.
  Status set_times(Ino ino, const TimesIn& in, struct timespec now);
  // simple_xattr_get: the value, ENODATA when absent.
  Result<std::string> xattr_get(Ino ino, std::string_view name) const;
  // simple_xattr_set: `value` nullopt removes. XATTR_CREATE on an existing
  // name is EEXIST; XATTR_REPLACE or a removal of an absent one ENODATA.
  Status xattr_set(Ino ino, std::string_view name, std::optional<std::string_view> value,
                   int flags, struct timespec now);
  // Names in simple_xattrs order (sorted).
  std::vector<std::string> xattr_names(Ino ino) const;

  // sysfs_notify on a node.
  void notify(Ino ino);

  std::size_t node_count() const;
  // Slots in the inode table, used or free: the high-water mark of
  // node_count().
  std::size_t slot_count() const;

 private:
  struct AttrSpec {
    NodeKind kind;
    std::string_view name;
    mode_t mode;
    const void* desc;
    const NodeOps* ops;
    bool has_read;
    bool has_write;
  };
  Ino add_attrs(Ino dir, const std::string& group, std::shared_ptr<void> owner, void* dev,
                const std::vector<AttrSpec>& specs);
  Ino mkdir_locked(Ino parent, std::string_view name, std::vector<std::pair<Ino, std::string>>* added);
  Ino walk_locked(std::string_view path) const;
  // Where `name` is, or would go, in the sorted entries of `dir`.
  std::size_t child_pos_locked(const Node& dir, std::string_view name) const;
  // The entry `name` of `dir`; 0 when absent.
  Ino child_locked(const Node& dir, std::string_view name) const;
  // Throws TreeError when `parent` has an entry of that name already.
  // `pos`: child_pos_locked's answer when the caller has it.
  Ino new_node_locked(NodeKind kind, std::string_view name, mode_t mode, Ino parent,
                      std::string target = {}, std::size_t pos = kNoPos);
  static constexpr std::size_t kNoPos = ~std::size_t{0};
  std::string path_of_locked(Ino ino) const;
  void kill_locked(Ino ino, std::vector<Ino>* dead);
  // Empties slot `ino` (a dead node nobody in the kernel holds) for reuse.
  void free_slot_locked(Ino ino);

  // The iattrs of `ino`, allocated (times = now) when absent. nullptr for
  // an unknown or dead node.
  IAttrs* iattrs_locked(Ino ino, struct timespec now) REQUIRES(iattr_mu_);

  const Owner owner_;
  mutable SharedMutex mu_{"tree"};  // Order: outermost tree lock; device locks are never held with it
  // kernfs_iattr_rwsem. Order: before mu_ (iattrs_locked looks the node
  // up, shared, with it held); never held while calling out.
  mutable SharedMutex iattr_mu_{"kernfs_iattr"};  // stat reads shared
  // Side table, not a Node member: nearly no node ever gets iattrs, and a
  // Node pays for every byte (tests/core/tree_test.cpp bounds its size).
  std::unordered_map<Ino, IAttrs> iattrs_ GUARDED_BY(iattr_mu_);
  // iattrs_.size(), readable without the lock: stat of a node skips the
  // lock while no node has iattrs (the common case).
  std::atomic<std::size_t> iattr_count_{0};
  std::vector<std::shared_ptr<Node>> nodes_;  // index = ino; [0] unused
  // Free slots with the generation of the node that last used each;
  // reused last-freed first. Guarded by mu_.
  struct FreeSlot {
    Ino ino;
    std::uint64_t generation;
  };
  std::vector<FreeSlot> free_;
  Observer* observer_ = nullptr;

  // One more change of `ino`'s mode or owner (see attr_mark).
  void attr_changed(Ino ino);
  // Order: innermost (taken with mu_ held, in new_node_locked).
  mutable Mutex attr_log_mu_{"tree.attr_log"};
  // Set once by the first attr_mark(); read without the lock so that
  // building a machine (no mark yet) takes no lock per node.
  std::atomic<bool> attr_log_on_{false};
  // attr_log_[i] is the node of change number attr_log_base_ + i + 1; when
  // the log is full it starts again empty, its base the count so far.
  std::uint64_t attr_log_base_ GUARDED_BY(attr_log_mu_) = 0;
  std::vector<Ino> attr_log_ GUARDED_BY(attr_log_mu_);
};

// --- template implementation -------------------------------------------------

template <typename Dev>
Kobject Tree::add_device(std::string_view path, std::shared_ptr<Dev> dev,
                         std::span<const AttributeGroup<Dev>> groups) {
  const Ino dir = mkdir_p(path);
  void* raw = dev.get();
  std::shared_ptr<void> owner = dev;
  for (const auto& group : groups) {
    std::vector<AttrSpec> specs;
    auto visible = [&](std::string_view name, mode_t mode) -> mode_t {
      return group.is_visible ? group.is_visible(*dev, name, mode) : mode;
    };
    for (const auto& a : group.attrs) {
      const mode_t mode = visible(a.name, a.mode);
      if (mode == 0) continue;
      if ((mode & 0222) && !a.store)
        throw TreeError(std::string(path) + "/" + std::string(a.name) + ": write bits without store");
      if ((mode & 0444) && !a.show)
        throw TreeError(std::string(path) + "/" + std::string(a.name) + ": read bits without show");
      specs.push_back({NodeKind::Text, a.name, mode, &a, &detail::Thunks<Dev>::kText,
                       a.show != nullptr, a.store != nullptr});
    }
    for (const auto& a : group.bin_attrs) {
      const mode_t mode = visible(a.name, a.mode);
      if (mode == 0) continue;
      specs.push_back({NodeKind::Bin, a.name, mode, &a, &detail::Thunks<Dev>::kBin,
                       a.read != nullptr, a.write != nullptr});
    }
    for (const auto& a : group.seq_attrs) {
      const mode_t mode = visible(a.name, a.mode);
      if (mode == 0) continue;
      if ((mode & 0222) && !a.store)
        throw TreeError(std::string(path) + "/" + std::string(a.name) + ": write bits without store");
      specs.push_back({NodeKind::Seq, a.name, mode, &a, &detail::Thunks<Dev>::kSeq,
                       a.show != nullptr, a.store != nullptr});
    }
    for (const auto& a : group.stream_attrs) {
      const mode_t mode = visible(a.name, a.mode);
      if (mode == 0) continue;
      // A stream is read-only (trace_pipe has no write op).
      if (mode & 0222)
        throw TreeError(std::string(path) + "/" + std::string(a.name) + ": write bits on a stream");
      specs.push_back({NodeKind::Stream, a.name, mode, &a, &detail::Thunks<Dev>::kStream,
                       a.open != nullptr, false});
    }
    add_attrs(dir, std::string(group.name), owner, raw, specs);
  }
  return Kobject{this, dir};
}

}  // namespace vsysfs::core
