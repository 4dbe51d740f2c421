#include "core/tree.hpp"

#include <algorithm>
#include <cerrno>
#include <limits>

namespace vsysfs::core {
namespace {

// Splits "a/b/c" (leading, trailing and doubled slashes ignored).
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const std::size_t j = path.find('/', i);
    const std::size_t end = j == std::string_view::npos ? path.size() : j;
    if (end > i) parts.push_back(path.substr(i, end - i));
    i = end;
  }
  return parts;
}

}  // namespace

std::uint32_t kernfs_name_hash(std::string_view name) {
  std::uint64_t hash = 0;  // init_name_hash(ns) with ns NULL
  for (const char ch : name) {
    const auto c = static_cast<std::uint64_t>(static_cast<unsigned char>(ch));
    hash = (hash + (c << 4) + (c >> 4)) * 11;  // partial_name_hash
  }
  // end_name_hash: hash_long(hash, 32), hash_64_generic on x86_64
  auto h = static_cast<std::uint32_t>((hash * 0x61C8864680B583EBull) >> 32);
  h &= 0x7fffffffU;
  if (h < 2) h += 2;
  if (h >= 0x7fffffffU) h = 0x7fffffffU - 1;
  return h;
}

std::uint64_t Node::size() const {
  switch (kind) {
    case NodeKind::Text:
      return 4096;
    case NodeKind::Bin:
      return ops->size(dev, desc);
    default:
      return 0;
  }
}

std::string Kobject::path() const { return tree_ ? "/" + tree_->path_of(dir_) : std::string(); }

void Kobject::notify(std::string_view attr, std::string_view group) const {
  if (!tree_) return;
  std::shared_ptr<Node> dir = tree_->get(dir_);
  if (!dir) return;
  if (!group.empty()) {
    dir = tree_->get(tree_->resolve(tree_->path_of(dir_) + "/" + std::string(group)));
    if (!dir) return;
  }
  if (auto node = tree_->lookup(dir->ino, attr)) tree_->notify(node->ino);
}

Tree::Tree() : Tree(Owner{}) {}

Tree::Tree(Owner owner) : owner_(owner) {
  nodes_.push_back(nullptr);  // ino 0 is never used
  auto root = std::make_shared<Node>(NodeKind::Dir, Name(), kRootIno, 0755);
  root->parent = kRootIno;
  root->uid.store(owner_.uid);
  root->gid.store(owner_.gid);
  nodes_.push_back(std::move(root));
}

void Tree::set_observer(Observer* observer) {
  WriteLock lock(mu_);
  observer_ = observer;
}

std::size_t Tree::child_pos_locked(const Node& dir, std::string_view name) const {
  const Node::Children& entries = *dir.children();
  auto it = std::lower_bound(
      entries.begin(), entries.end(), name,
      [this](std::uint32_t child, std::string_view n) { return nodes_[child]->name.view() < n; });
  return static_cast<std::size_t>(it - entries.begin());
}

Ino Tree::child_locked(const Node& dir, std::string_view name) const {
  const Node::Children* entries = dir.children();
  if (!entries) return 0;
  const std::size_t pos = child_pos_locked(dir, name);
  if (pos == entries->size() || nodes_[(*entries)[pos]]->name.view() != name) return 0;
  return (*entries)[pos];
}

// One search of the parent's entries per new node (the search is the
// duplicate check): building a large machine inserts about a million.
Ino Tree::new_node_locked(NodeKind kind, std::string_view name, mode_t mode, Ino parent,
                          std::string target, std::size_t pos) {
  Ino ino = nodes_.size();
  std::uint64_t generation = 0;
  if (!free_.empty()) {
    ino = free_.back().ino;
    generation = free_.back().generation + 1;
  }
  // Node::ino and the entries are 32 bits wide.
  if (ino > std::numeric_limits<std::uint32_t>::max()) throw TreeError("inode table full");
  Node& dir = *nodes_[parent];
  Node::Children& entries = *dir.children();
  if (pos == kNoPos) pos = child_pos_locked(dir, name);
  if (pos < entries.size() && nodes_[entries[pos]]->name.view() == name)
    throw TreeError("duplicate name: " + path_of_locked(parent) + "/" + std::string(name));
  auto node = std::make_shared<Node>(kind, Name(name), ino, mode, std::move(target), generation);
  node->parent = static_cast<std::uint32_t>(parent);
  node->uid.store(owner_.uid);
  node->gid.store(owner_.gid);
  if (ino == nodes_.size()) nodes_.emplace_back();  // may throw: nothing changed yet
  entries.insert(entries.begin() + static_cast<std::ptrdiff_t>(pos),
                 static_cast<std::uint32_t>(ino));
  nodes_[ino] = std::move(node);
  if (!free_.empty() && free_.back().ino == ino) free_.pop_back();
  attr_changed(ino);
  return ino;
}

Ino Tree::mkdir_locked(Ino parent, std::string_view name,
                       std::vector<std::pair<Ino, std::string>>* added) {
  Node& dir = *nodes_[parent];
  if (!dir.is_dir()) throw TreeError("not a directory: " + std::string(dir.name.view()));
  const Node::Children& entries = *dir.children();
  const std::size_t pos = child_pos_locked(dir, name);
  if (pos < entries.size() && nodes_[entries[pos]]->name.view() == name) {
    if (!nodes_[entries[pos]]->is_dir()) throw TreeError("not a directory: " + std::string(name));
    return entries[pos];
  }
  if (added) added->emplace_back(parent, std::string(name));
  return new_node_locked(NodeKind::Dir, name, 0755, parent, {}, pos);
}

Ino Tree::mkdir_p(std::string_view path) {
  std::vector<std::pair<Ino, std::string>> added;
  Ino at = kRootIno;
  Observer* obs;
  {
    WriteLock lock(mu_);
    obs = observer_;
    for (auto part : split_path(path)) at = mkdir_locked(at, part, obs ? &added : nullptr);
  }
  if (obs)
    for (auto& [parent, name] : added) obs->entry_changed(parent, name, 0);
  return at;
}

Ino Tree::add_symlink(std::string_view path, std::string target) {
  auto parts = split_path(path);
  if (parts.empty()) throw TreeError("empty symlink path");
  std::vector<std::pair<Ino, std::string>> added;
  Ino ino;
  Observer* obs;
  {
    WriteLock lock(mu_);
    obs = observer_;
    Ino at = kRootIno;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i)
      at = mkdir_locked(at, parts[i], obs ? &added : nullptr);
    if (!nodes_[at]->is_dir()) throw TreeError("not a directory: " + std::string(path));
    ino = new_node_locked(NodeKind::Symlink, parts.back(), 0777, at, std::move(target));
    if (obs) added.emplace_back(at, std::string(parts.back()));
  }
  if (obs)
    for (auto& [parent, name] : added) obs->entry_changed(parent, name, 0);
  return ino;
}

Ino Tree::add_attrs(Ino dir, const std::string& group, std::shared_ptr<void> owner, void* dev,
                    const std::vector<AttrSpec>& specs) {
  std::vector<std::pair<Ino, std::string>> added;
  Observer* obs;
  Ino at = dir;
  {
    WriteLock lock(mu_);
    obs = observer_;
    for (auto part : split_path(group)) at = mkdir_locked(at, part, obs ? &added : nullptr);
    for (const auto& s : specs) {
      const Ino ino = new_node_locked(s.kind, s.name, s.mode, at);
      Node& n = *nodes_[ino];
      n.owner = owner;
      n.dev = dev;
      n.desc = s.desc;
      n.ops = s.ops;
      n.has_read = s.has_read;
      n.has_write = s.has_write;
      if (obs) added.emplace_back(at, std::string(s.name));
    }
  }
  if (obs)
    for (auto& [parent, name] : added) obs->entry_changed(parent, name, 0);
  return at;
}

void Tree::kill_locked(Ino ino, std::vector<Ino>* dead) {
  Node& n = *nodes_[ino];
  n.alive.store(false);
  dead->push_back(ino);
  if (Node::Children* entries = n.children()) {
    for (const std::uint32_t child : *entries) kill_locked(child, dead);
    // A removed kernfs directory is empty; and its entries' slots may be
    // reused by other nodes, which a lookup under it must never reach.
    entries->clear();
    entries->shrink_to_fit();
  }
}

void Tree::free_slot_locked(Ino ino) {
  free_.push_back({ino, nodes_[ino]->generation});
  nodes_[ino].reset();
}

Status Tree::remove(std::string_view path) {
  std::vector<Ino> dead;
  Ino parent;
  std::string name;
  Observer* obs;
  {
    WriteLock lock(mu_);
    const Ino ino = walk_locked(path);
    if (ino == 0 || ino == kRootIno) return Errno{ENOENT};
    parent = nodes_[ino]->parent;
    name = std::string(nodes_[ino]->name.view());
    kill_locked(ino, &dead);
    Node::Children& siblings = *nodes_[parent]->children();
    siblings.erase(siblings.begin() +
                   static_cast<std::ptrdiff_t>(child_pos_locked(*nodes_[parent], name)));
    obs = observer_;
    // Nodes the kernel never looked up can go now; the others when forgotten.
    for (Ino d : dead)
      if (nodes_[d]->nlookup.load() == 0) free_slot_locked(d);
  }
  {
    // kernfs frees a node's iattrs with the node; inode numbers are never
    // reused, so nothing would ever read these again.
    WriteLock lock(iattr_mu_);
    for (Ino d : dead) iattrs_.erase(d);
    iattr_count_.store(iattrs_.size());
  }
  if (obs) {
    obs->entry_changed(parent, name, dead.front());
    for (Ino d : dead) obs->notified(d);  // a removed node reports the changed poll mask
  }
  return {};
}

// The components one by one, without split_path's vector: a restore
// looks up a few hundred knob paths.
Ino Tree::walk_locked(std::string_view path) const {
  Ino at = kRootIno;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    const std::size_t j = path.find('/', i);
    const std::size_t end = j == std::string_view::npos ? path.size() : j;
    const std::string_view part = path.substr(i, end - i);
    i = end;
    const auto& node = nodes_[at];
    if (!node || !node->is_dir()) return 0;
    at = child_locked(*node, part);
    if (at == 0) return 0;
  }
  return at;
}

std::shared_ptr<Node> Tree::get(Ino ino) const {
  ReadLock lock(mu_);
  if (ino == 0 || ino >= nodes_.size()) return nullptr;
  return nodes_[ino];
}

std::shared_ptr<Node> Tree::lookup(Ino parent, std::string_view name) const {
  ReadLock lock(mu_);
  if (parent == 0 || parent >= nodes_.size() || !nodes_[parent]) return nullptr;
  const Node& dir = *nodes_[parent];
  // A dead directory has no entries, and its parent's slot may hold
  // another node by now.
  if (!dir.alive.load()) return nullptr;
  if (name == ".") return nodes_[parent];
  if (name == "..") return nodes_[dir.parent];
  const Ino child = child_locked(dir, name);
  if (child == 0) return nullptr;
  return nodes_[child];
}

Ino Tree::resolve(std::string_view path) const {
  ReadLock lock(mu_);
  return walk_locked(path);
}

Result<std::vector<DirEntry>> Tree::list(Ino dir) const {
  ReadLock lock(mu_);
  if (dir == 0 || dir >= nodes_.size() || !nodes_[dir]) return Errno{ENOENT};
  const Node& d = *nodes_[dir];
  if (!d.is_dir()) return Errno{ENOTDIR};
  std::vector<DirEntry> out;
  out.reserve(d.children()->size());
  for (const std::uint32_t ino : *d.children()) {
    const Node& n = *nodes_[ino];
    out.push_back({std::string(n.name.view()), ino, n.kind, n.st_ino()});
  }
  return out;
}

std::string Tree::path_of(Ino ino) const {
  ReadLock lock(mu_);
  return path_of_locked(ino);
}

std::string Tree::path_of_locked(Ino ino) const {
  std::vector<std::string_view> parts;
  while (ino != kRootIno && ino < nodes_.size() && nodes_[ino]) {
    parts.push_back(nodes_[ino]->name);
    ino = nodes_[ino]->parent;
  }
  std::string out;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!out.empty()) out.push_back('/');
    out += *it;
  }
  return out;
}

void Tree::forget(Ino ino, std::uint64_t n) {
  WriteLock lock(mu_);
  if (ino <= kRootIno || ino >= nodes_.size() || !nodes_[ino]) return;
  Node& node = *nodes_[ino];
  const std::uint64_t before = node.nlookup.load();
  node.nlookup.store(before >= n ? before - n : 0);
  // A dead node leaves the table once the kernel holds no reference.
  if (!node.alive.load() && node.nlookup.load() == 0) free_slot_locked(ino);
}

bool Tree::looked_up(Node& node) {
  ReadLock lock(mu_);
  // remove() and forget() decide under the write lock whether a slot is
  // free; under the read lock, the node either is still in its slot (and
  // the count we add keeps it there) or is gone.
  if (node.ino >= nodes_.size() || nodes_[node.ino].get() != &node || !node.alive.load())
    return false;
  node.nlookup.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Status Tree::set_mode(Ino ino, mode_t mode) {
  auto node = get(ino);
  if (!node) return Errno{ENOENT};
  node->mode.store(mode & 07777);
  attr_changed(ino);
  Observer* obs;
  {
    ReadLock lock(mu_);
    obs = observer_;
  }
  if (obs) obs->attr_changed(ino);
  return {};
}

Status Tree::set_owner(Ino ino, uid_t uid, gid_t gid) {
  auto node = get(ino);
  if (!node) return Errno{ENOENT};
  if (uid != static_cast<uid_t>(-1)) node->uid.store(uid);
  if (gid != static_cast<gid_t>(-1)) node->gid.store(gid);
  attr_changed(ino);
  Observer* obs;
  {
    ReadLock lock(mu_);
    obs = observer_;
  }
  if (obs) obs->attr_changed(ino);
  return {};
}

void Tree::attr_changed(Ino ino) {
  if (!attr_log_on_.load()) return;
  MutexLock lock(attr_log_mu_);
  // Full: forget it all. A restore from a mark before this point compares
  // every node (attr_changes_since is nullopt), which is always right.
  if (attr_log_.size() == kMaxAttrLog) {
    attr_log_base_ += attr_log_.size();
    attr_log_.clear();
  }
  attr_log_.push_back(ino);
}

std::uint64_t Tree::attr_mark() {
  MutexLock lock(attr_log_mu_);
  attr_log_on_.store(true);
  return attr_log_base_ + attr_log_.size();
}

std::optional<std::vector<Ino>> Tree::attr_changes_since(std::uint64_t mark) const {
  MutexLock lock(attr_log_mu_);
  if (!attr_log_on_.load() || mark < attr_log_base_ || mark > attr_log_base_ + attr_log_.size())
    return std::nullopt;
  std::vector<Ino> out(attr_log_.begin() + static_cast<std::ptrdiff_t>(mark - attr_log_base_),
                       attr_log_.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

IAttrs* Tree::iattrs_locked(Ino ino, struct timespec now) {
  auto node = get(ino);
  if (!node || !node->alive.load()) return nullptr;
  auto [it, added] = iattrs_.try_emplace(ino);
  if (added) {
    it->second.times.atime = it->second.times.mtime = it->second.times.ctime = now;
    iattr_count_.store(iattrs_.size());
  }
  return &it->second;
}

std::optional<Times> Tree::times(Ino ino) const {
  if (iattr_count_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  ReadLock lock(iattr_mu_);
  auto it = iattrs_.find(ino);
  if (it == iattrs_.end()) return std::nullopt;
  return it->second.times;
}

Status Tree::set_times(Ino ino, const TimesIn& in, struct timespec now) {
  WriteLock lock(iattr_mu_);
  IAttrs* attrs = iattrs_locked(ino, now);
  // A removed node's iattrs are gone (remove() freed them); a chmod
  // through a descriptor still open on it succeeds without new ones,
  // which nothing would ever free.
  if (!attrs) return get(ino) ? Status{} : Status{Errno{ENOENT}};
  if (in.atime) attrs->times.atime = *in.atime;
  if (in.mtime) attrs->times.mtime = *in.mtime;
  attrs->times.ctime = now;
  return {};
}

Result<std::string> Tree::xattr_get(Ino ino, std::string_view name) const {
  ReadLock lock(iattr_mu_);
  auto it = iattrs_.find(ino);
  if (it == iattrs_.end()) return Errno{ENODATA};
  auto x = it->second.xattrs.find(name);
  if (x == it->second.xattrs.end()) return Errno{ENODATA};
  return x->second;
}

Status Tree::xattr_set(Ino ino, std::string_view name, std::optional<std::string_view> value,
                       int flags, struct timespec now) {
  WriteLock lock(iattr_mu_);
  // kernfs_xattr_set allocates the iattrs even for a set that then fails.
  IAttrs* attrs = iattrs_locked(ino, now);
  if (!attrs) return Errno{ENOENT};
  auto it = attrs->xattrs.find(name);
  if (!value) {
    if (it == attrs->xattrs.end()) return Errno{ENODATA};
    attrs->xattrs.erase(it);
    return {};
  }
  if (it != attrs->xattrs.end()) {
    if (flags & kXattrCreate) return Errno{EEXIST};
    it->second.assign(*value);
    return {};
  }
  if (flags & kXattrReplace) return Errno{ENODATA};
  attrs->xattrs.emplace(std::string(name), std::string(*value));
  return {};
}

std::vector<std::string> Tree::xattr_names(Ino ino) const {
  std::vector<std::string> names;
  if (iattr_count_.load(std::memory_order_relaxed) == 0) return names;
  ReadLock lock(iattr_mu_);
  auto it = iattrs_.find(ino);
  if (it == iattrs_.end()) return names;
  for (const auto& [name, value] : it->second.xattrs) names.push_back(name);
  return names;
}

void Tree::notify(Ino ino) {
  auto node = get(ino);
  if (!node) return;
  node->event.fetch_add(1);
  Observer* obs;
  {
    ReadLock lock(mu_);
    obs = observer_;
  }
  if (obs) obs->notified(ino);
}

std::size_t Tree::slot_count() const {
  ReadLock lock(mu_);
  return nodes_.size() - 1;
}

std::size_t Tree::node_count() const {
  ReadLock lock(mu_);
  std::size_t n = 0;
  for (const auto& p : nodes_)
    if (p) ++n;
  return n;
}

}  // namespace vsysfs::core
