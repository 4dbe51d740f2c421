#pragma once

// Node: one entry of the tree (kernel: struct kernfs_node). Directories,
// text/binary/seq/stream attributes and symlinks share one type; an attribute node
// holds a type-erased binding to its device (the owner pointer keeps the
// device alive while any node or open file refers to it).
//
// Thread-safety: kind, name, ino, target and the binding are constant after
// creation; mode/uid/gid/alive/nlookup/event are atomics; `children()` (the
// vector's contents) and `parent` are guarded by the Tree's lock.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/attribute.hpp"

namespace vsysfs::core {

using Ino = std::uint64_t;
inline constexpr Ino kRootIno = 1;

enum class NodeKind : std::uint8_t { Dir, Text, Bin, Seq, Symlink, Stream };

// Thunks from type-erased calls to a Dev's attribute callbacks.
struct NodeOps {
  Status (*show)(void* dev, const void* desc, PageBuffer& buf);
  Status (*seq_show)(void* dev, const void* desc, std::string& out);
  Result<std::size_t> (*store)(void* dev, const void* desc, const Caller& c, std::string_view in);
  Result<std::size_t> (*read)(void* dev, const void* desc, const Caller& c, std::uint64_t pos,
                              std::span<char> out);
  Result<std::size_t> (*write)(void* dev, const void* desc, const Caller& c, std::uint64_t pos,
                               std::span<const char> in);
  std::size_t (*size)(void* dev, const void* desc);
  std::unique_ptr<Stream> (*open_stream)(void* dev, const void* desc);
};

// An entry's name, interned (kernel: kernfs_node.name, a kstrdup'd string
// that kstrdup_const shares when it is in .rodata). A large machine has a
// million entries but only some thousands of distinct names ("mtu",
// "statistics", "rx_bytes" in every interface): each distinct name is
// stored once, in a process-wide table, with a count of the entries that
// use it; the last one gone frees it, so hotplug with ever new names
// (vif0, vif1, ...) does not grow the table. A Name is one pointer.
//
// Thread-safety: a Name is immutable; copying and destroying one take the
// table's leaf lock (never held while taking another).
class Name {
 public:
  Name() = default;  // ""
  explicit Name(std::string_view s);
  Name(const Name& other);
  Name(Name&& other) noexcept : rep_(other.rep_) { other.rep_ = nullptr; }
  Name& operator=(const Name&) = delete;
  ~Name();

  std::string_view view() const {
    return rep_ ? std::string_view(rep_->chars(), rep_->size) : std::string_view();
  }
  operator std::string_view() const { return view(); }  // NOLINT: reads as the name
  const char* data() const { return rep_ ? rep_->chars() : ""; }
  std::size_t size() const { return rep_ ? rep_->size : 0; }
  bool empty() const { return rep_ == nullptr; }
  friend bool operator==(const Name& a, std::string_view b) { return a.view() == b; }

  // Distinct names in the table (for tests: the table frees unused ones).
  static std::size_t interned();

  // One allocation: the header, then size + 1 characters (NUL-terminated).
  struct Rep {
    std::uint32_t refs;  // guarded by the table's lock
    std::uint32_t size;
    const char* chars() const { return reinterpret_cast<const char*>(this + 1); }
  };

 private:
  Rep* rep_ = nullptr;
};

class Node {
 public:
  // A directory's entries: slots of the tree's table, sorted by name
  // (kernel: the rbtree of kernfs_node.dir.children, 3 pointers in each
  // node; a sorted array of 4-byte slots costs a tenth of the std::map
  // node per entry it replaces).
  using Children = std::vector<std::uint32_t>;

  // `target` only for a symlink. `gen`: see `generation`.
  Node(NodeKind k, Name n, Ino i, mode_t m, std::string link_target = {}, std::uint64_t gen = 0)
      : kind(k),
        mode(m),
        ino(static_cast<std::uint32_t>(i)),
        generation(static_cast<std::uint32_t>(gen)),
        name(std::move(n)),
        extra_(k == NodeKind::Dir ? static_cast<void*>(new Children())
               : k == NodeKind::Symlink
                   ? static_cast<void*>(new std::string(std::move(link_target)))
                   : nullptr) {}
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() {
    if (kind == NodeKind::Dir) delete static_cast<Children*>(extra_);
    if (kind == NodeKind::Symlink) delete static_cast<std::string*>(extra_);
  }

  // Memory: a large machine has about a million nodes, so every byte here
  // counts (docs/performance.md: at most 256 bytes per file, everything
  // included). The small fields are packed first; slots and generations
  // are 32 bits (st_ino keeps 32 of each); the name is a pointer into the
  // shared table; what only one kind needs (a directory's entries, a
  // symlink's target) is one pointer allocated only for that kind.
  const NodeKind kind;
  bool has_read = false;   // a show/read callback exists
  bool has_write = false;  // a store/write callback exists
  std::atomic<bool> alive{true};
  std::atomic<mode_t> mode;  // permission bits only
  std::atomic<uid_t> uid{0};
  std::atomic<gid_t> gid{0};
  const std::uint32_t ino;
  // `ino` is the slot in the tree's table (the FUSE node id), reused once
  // the kernel forgot a removed node; the pair (ino, generation) is never
  // reused. FUSE gets the generation with every entry (the kernel treats a
  // node id whose generation changed as a different inode: fuse_iget and
  // fuse_stale_inode, fs/fuse/inode.c), and st_ino() folds it in the way
  // kernfs builds its ids (fs/kernfs/dir.c __kernfs_new_node: id =
  // id_highbits << 32 | cyclic low bits; kernfs_id_ino on 64-bit is the
  // whole id), so a re-added file never shows an inode number seen before.
  const std::uint32_t generation;
  std::uint32_t parent = 0;  // guarded by Tree::mu_
  std::atomic<std::uint64_t> nlookup{0};
  std::atomic<std::uint64_t> event{0};  // sysfs_notify counter
  const Name name;

  // Attributes.
  std::shared_ptr<void> owner;
  void* dev = nullptr;
  const void* desc = nullptr;
  const NodeOps* ops = nullptr;

  // Dir only (null otherwise): the entries, sorted by name, so readdir
  // order is stable. Guarded by Tree::mu_.
  Children* children() const {
    return kind == NodeKind::Dir ? static_cast<Children*>(extra_) : nullptr;
  }
  // Symlink target (relative, as sysfs makes them); "" for other kinds.
  const std::string& target() const {
    static const std::string kNoTarget;
    return kind == NodeKind::Symlink ? *static_cast<const std::string*>(extra_) : kNoTarget;
  }

 private:
  void* const extra_;  // Children (Dir), std::string (Symlink), null

 public:
  bool is_dir() const { return kind == NodeKind::Dir; }

  // The inode number stat() and readdir show (see `generation`). Slots stay
  // far below 2^32: a large machine has about a million nodes.
  static std::uint64_t st_ino_of(Ino slot, std::uint64_t gen) { return gen << 32 | slot; }
  std::uint64_t st_ino() const { return st_ino_of(ino, generation); }

  // The file size stat() reports: 4096 for text, the declared (or
  // run-time) size for binary, 0 for seq and stream files, dirs and links.
  std::uint64_t size() const;

  Status show(PageBuffer& buf) const { return ops->show(dev, desc, buf); }
  Status seq_show(std::string& out) const { return ops->seq_show(dev, desc, out); }
  Result<std::size_t> store(const Caller& c, std::string_view in) const {
    return ops->store(dev, desc, c, in);
  }
  Result<std::size_t> bin_read(const Caller& c, std::uint64_t pos, std::span<char> out) const {
    return ops->read(dev, desc, c, pos, out);
  }
  Result<std::size_t> bin_write(const Caller& c, std::uint64_t pos,
                                std::span<const char> in) const {
    return ops->write(dev, desc, c, pos, in);
  }
  std::unique_ptr<Stream> open_stream() const { return ops->open_stream(dev, desc); }
};

namespace detail {

template <typename Dev>
struct Thunks {
  static Status show(void* d, const void* a, PageBuffer& b) {
    auto* attr = static_cast<const DeviceAttribute<Dev>*>(a);
    return attr->show(*static_cast<const Dev*>(d), *attr, b);
  }
  static Result<std::size_t> store(void* d, const void* a, const Caller& c, std::string_view in) {
    auto* attr = static_cast<const DeviceAttribute<Dev>*>(a);
    return attr->store(*static_cast<Dev*>(d), *attr, c, in);
  }
  static Status seq_show(void* d, const void* a, std::string& out) {
    auto* attr = static_cast<const SeqAttribute<Dev>*>(a);
    return (static_cast<const Dev*>(d)->*(attr->show))(out);
  }
  static Result<std::size_t> seq_store(void* d, const void* a, const Caller& c,
                                       std::string_view in) {
    auto* attr = static_cast<const SeqAttribute<Dev>*>(a);
    return (static_cast<Dev*>(d)->*(attr->store))(c, in);
  }
  static Result<std::size_t> read(void* d, const void* a, const Caller& c, std::uint64_t pos,
                                  std::span<char> out) {
    auto* attr = static_cast<const BinAttribute<Dev>*>(a);
    return (static_cast<Dev*>(d)->*(attr->read))(c, pos, out);
  }
  static Result<std::size_t> write(void* d, const void* a, const Caller& c, std::uint64_t pos,
                                   std::span<const char> in) {
    auto* attr = static_cast<const BinAttribute<Dev>*>(a);
    return (static_cast<Dev*>(d)->*(attr->write))(c, pos, in);
  }
  static std::size_t size(void* d, const void* a) {
    auto* attr = static_cast<const BinAttribute<Dev>*>(a);
    return attr->size_fn ? (static_cast<const Dev*>(d)->*(attr->size_fn))() : attr->size;
  }

  static std::unique_ptr<Stream> open_stream(void* d, const void* a) {
    auto* attr = static_cast<const StreamAttribute<Dev>*>(a);
    return (static_cast<const Dev*>(d)->*(attr->open))();
  }

  static constexpr NodeOps kText{&show, nullptr, &store, nullptr, nullptr, nullptr, nullptr};
  static constexpr NodeOps kSeq{nullptr, &seq_show, &seq_store, nullptr, nullptr, nullptr, nullptr};
  static constexpr NodeOps kBin{nullptr, nullptr, nullptr, &read, &write, &size, nullptr};
  static constexpr NodeOps kStream{nullptr, nullptr, nullptr,     nullptr,
                                   nullptr, nullptr, &open_stream};
};

}  // namespace detail
}  // namespace vsysfs::core
