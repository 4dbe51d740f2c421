#include "devices/machine/snapshot.hpp"

#include <cerrno>
#include <limits>
#include <set>

#include <fmt/format.h>

#include "core/caller_file.hpp"
#include "core/fault_inject.hpp"
#include "core/page_buffer.hpp"
#include "core/parse.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::SeqAttribute<MachineSnapshots> kSeq[] = {
    VSYSFS_SEQ_ATTR_RW(MachineSnapshots, snapshot, 0600),
    VSYSFS_SEQ_ATTR_RW(MachineSnapshots, diff, 0600),
};
constexpr core::DeviceAttribute<MachineSnapshots> kAttrs[] = {
    VSYSFS_ATTR_WO_MODE(MachineSnapshots, restore, 0200),
    VSYSFS_ATTR_WO_MODE(MachineSnapshots, save, 0200),
    VSYSFS_ATTR_WO_MODE(MachineSnapshots, load, 0200),
};
constexpr core::AttributeGroup<MachineSnapshots> kGroups[] = {
    {.name = "", .attrs = kAttrs, .seq_attrs = kSeq},
};

// Text files whose value is about the event log, which a restore does not
// rewind: rendering them would make every diff across a restore noisy.
constexpr std::string_view kNotState[] = {"kernel/debug/vsysfs/events_dropped"};

// One line of diff output per value: a show() ends in '\n' (dropped) and
// may hold more lines (escaped, so that one line is one path).
std::string one_line(std::string_view v) {
  if (!v.empty() && v.back() == '\n') v.remove_suffix(1);
  std::string out;
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += ch;
    }
  }
  return out;
}

// The written name without the newline echo adds.
std::string_view chomp(std::string_view in) {
  if (!in.empty() && in.back() == '\n') in.remove_suffix(1);
  return in;
}

core::Status check_name(std::string_view name) {
  if (name.empty()) return core::Errno{EINVAL};
  if (name.size() > MachineSnapshots::kMaxName) return core::Errno{ENAMETOOLONG};
  if (name == "now" || name == "." || name == "..") return core::Errno{EINVAL};
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return core::Errno{EINVAL};
  }
  return {};
}

}  // namespace

std::span<const core::AttributeGroup<MachineSnapshots>> MachineSnapshots::groups() {
  return kGroups;
}

std::shared_ptr<core::Node> KnobNodes::find(const core::Tree& tree, const std::string& path) {
  core::MutexLock lock(mu_);
  if (auto it = hints_.find(path); it != hints_.end()) {
    auto node = tree.get(it->second.ino);
    if (node && node->generation == it->second.generation && node->alive.load()) return node;
    hints_.erase(it);
  }
  const core::Ino ino = tree.resolve(path);
  auto node = ino ? tree.get(ino) : nullptr;
  if (node && node->alive.load()) hints_.emplace(path, Hint{ino, node->generation});
  return node;
}

void save_knobs(const core::Tree& tree, const std::vector<std::string>& paths, core::StateWriter& w,
                KnobNodes* nodes) {
  for (const auto& path : paths) {
    const auto node = nodes ? nodes->find(tree, path) : tree.find(path);
    if (!node || node->kind != core::NodeKind::Text || !node->has_read) continue;
    core::PageBuffer buf;
    if (node->show(buf)) w.put_str("knob:" + path, buf.view());
  }
}

core::Status load_knobs(const core::Tree& tree, const core::StateReader& r, KnobNodes* nodes) {
  constexpr std::string_view kPrefix = "knob:";
  for (const auto& key : r.keys_with_prefix(kPrefix)) {
    const std::string path = key.substr(kPrefix.size());
    const auto node = nodes ? nodes->find(tree, path) : tree.find(path);
    if (!node || node->kind != core::NodeKind::Text || !node->has_write) return core::Errno{EINVAL};
    const auto value = r.str(key);
    core::PageBuffer buf;
    if (node->show(buf) && buf.view() == *value) continue;
    auto n = node->store(core::Caller::kernel(), *value);
    if (!n) return core::Errno{EINVAL};
  }
  return {};
}

std::vector<std::string> writable_files(const core::Tree& tree, const std::string& dir) {
  std::vector<std::string> out;
  auto entries = tree.list(tree.resolve(dir));
  if (!entries) return out;
  for (const auto& e : *entries) {
    const auto node = tree.get(e.ino);
    if (node && node->kind == core::NodeKind::Text && node->has_read && node->has_write &&
        (node->mode.load() & 0222) && e.name != "uevent")
      out.push_back(dir + "/" + e.name);
  }
  return out;
}

void build_machine_snapshots(MachineContext& ctx) {
  auto dev = std::make_shared<MachineSnapshots>(ctx.env, ctx.tree, ctx.machine, ctx.manual_clock);
  ctx.tree.add_device<MachineSnapshots>("kernel/debug/vsysfs/machine", dev,
                                        MachineSnapshots::groups());
  ctx.machine.set_snapshots(dev.get());
  ctx.machine.keep(dev);
}

MachineSnapshots::Snapshot MachineSnapshots::capture(bool with_values) const {
  Snapshot snap;
  snap.now = env_.now();
  // Before any node is read: a change after this mark is in the tree's
  // log, so a restore compares that node (see Snapshot::attr_sync).
  snap.attr_sync = tree_.attr_mark();
  // Depth first from the root, in readdir order.
  std::vector<std::pair<core::Ino, std::string>> stack{{core::kRootIno, ""}};
  while (!stack.empty()) {
    auto [dir, dir_path] = std::move(stack.back());
    stack.pop_back();
    auto entries = tree_.list(dir);
    if (!entries) continue;  // removed meanwhile (hotplug)
    for (const auto& e : *entries) {
      if (e.name == "." || e.name == "..") continue;
      const auto node = tree_.get(e.ino);
      if (!node || !node->alive.load()) continue;
      std::string path = dir_path.empty() ? e.name : dir_path + "/" + e.name;
      // A symlink's owner changes too (lchown: kernfs_iop_setattr is a
      // symlink's setattr as well); it has no value to render.
      snap.attrs.emplace(path, NodeAttr{node->mode.load(), node->uid.load(), node->gid.load(),
                                        e.ino, node->generation});
      snap.size += path.size() + kAttrBytes;
      if (node->kind == core::NodeKind::Symlink) continue;
      if (node->kind == core::NodeKind::Dir) {
        stack.emplace_back(e.ino, std::move(path));
        continue;
      }
      if (!with_values || node->kind != core::NodeKind::Text || !node->has_read) continue;
      bool skip = false;
      for (auto p : kNotState) skip = skip || path == p;
      if (skip) continue;
      core::PageBuffer buf;
      const auto st = node->show(buf);
      std::string value = st ? std::string(buf.view()) : fmt::format("<{}>", st.error().name());
      snap.size += path.size() + value.size();
      snap.values.emplace(std::move(path), std::move(value));
    }
  }
  for (const auto& h : machine_.state_handlers()) {
    if (!h.save) continue;
    core::StateWriter w(h.version);
    h.save(w);
    snap.size += h.name.size() + w.text().size();
    snap.states.emplace(h.name, w.text());
  }
  parse_records(snap);
  return snap;
}

void MachineSnapshots::parse_records(Snapshot& snap) {
  snap.records.clear();
  for (const auto& [name, text] : snap.states)
    if (auto rec = core::StateReader::parse(text)) snap.records.emplace(name, std::move(*rec));
}

core::Result<const core::StateReader*> MachineSnapshots::record_of(
    const Snapshot& snap, const std::string& name, std::optional<core::StateReader>& tmp) {
  if (auto it = snap.records.find(name); it != snap.records.end()) return &it->second;
  auto it = snap.states.find(name);
  if (it == snap.states.end()) return core::Errno{EINVAL};
  auto rec = core::StateReader::parse(it->second);
  if (!rec) return rec.error();
  tmp = std::move(*rec);
  return &*tmp;
}

const MachineSnapshots::Snapshot* MachineSnapshots::find_locked(std::string_view name) const {
  for (const auto& s : snaps_)
    if (s.name == name) return &s;
  return nullptr;
}

core::Status MachineSnapshots::take(const core::Caller* caller, std::string_view name) {
  if (auto st = check_name(name); !st) return st;
  core::MutexLock lock(mu_);
  const Snapshot* old = find_locked(name);
  if (!old && snaps_.size() >= kMaxSnapshots) return core::Errno{ENOSPC};
  Snapshot snap = capture();
  snap.name = std::string(name);
  env_.log(caller, "machine", "snapshot", "OK",
           {{"name", snap.name},
            {"now_ns", static_cast<std::uint64_t>(snap.now.count())},
            {"size", snap.size}});
  return insert_locked(std::move(snap));
}

core::Status MachineSnapshots::load_states(const Snapshot& snap, std::size_t* loaded,
                                           std::size_t limit, std::string* refused) {
  manual_clock_->set_time(snap.now);
  std::size_t n = 0;
  if (loaded) *loaded = 0;
  for (const auto& h : machine_.state_handlers()) {
    if (n == limit) break;
    ++n;
    if (!h.load) continue;
    std::optional<core::StateReader> tmp;
    auto rec = record_of(snap, h.name, tmp);
    if (!rec) return rec.error();
    if (auto st = h.load(**rec); !st) {
      if (refused) *refused = h.name;
      return st;
    }
    if (loaded) *loaded = n;
  }
  return {};
}

std::string MachineSnapshots::cannot_restore() const {
  // Simulated time goes back to the capture: only the manual clock can.
  if (!manual_clock_) return "clock=real";
  // A section that registered no StateHandler would come back only in
  // part: refuse the whole restore instead.
  if (const auto missing = machine_.sections_without_state(); !missing.empty())
    return fmt::format("{}", fmt::join(missing, ","));
  return {};
}

core::Status MachineSnapshots::apply_locked(const Snapshot& snap, std::string* refused) {
  // Every record must be one this build reads before anything changes.
  for (const auto& h : machine_.state_handlers()) {
    if (!h.load) continue;
    auto it = snap.records.find(h.name);
    if (it == snap.records.end() || it->second.version() != h.version) return core::Errno{EINVAL};
  }
  // The state now, to roll back to if a load fails half way (a device
  // validates its whole record before changing anything, so that only
  // happens between devices).
  Snapshot before;
  before.now = env_.now();
  for (const auto& h : machine_.state_handlers()) {
    if (!h.save) continue;
    core::StateWriter w(h.version);
    h.save(w);
    before.states.emplace(h.name, w.text());
  }
  // A handler that refuses changes nothing, and the ones after it were not
  // reached: only those loaded before it are set back.
  std::size_t loaded = 0;
  std::string section;
  if (auto st = load_states(snap, &loaded, SIZE_MAX, &section); !st) {
    const auto back = load_states(before, nullptr, loaded);
    env_.log(nullptr, "machine", "restore", "EIO",
             {{"load", st.error().name()},
              {"section", section},
              {"rollback", back ? "OK" : back.error().name()}});
    if (refused) *refused = fmt::format("{} ({})", section, st.error().name());
    return core::Errno{EIO};
  }
  apply_attrs_locked(snap);
  return {};
}

void MachineSnapshots::apply_attrs_locked(const Snapshot& snap) {
  // Taken before any node is compared: a change after it (this restore's
  // own included) is in the log, for the next restore of `snap`.
  const std::uint64_t mark = tree_.attr_mark();
  auto set_back = [&](core::Ino ino, const core::Node& node, const NodeAttr& attr) {
    if (node.mode.load() != attr.mode) (void)tree_.set_mode(ino, attr.mode);
    if (node.uid.load() != attr.uid || node.gid.load() != attr.gid)
      (void)tree_.set_owner(ino, attr.uid, attr.gid);
  };
  // Every node that has a path in the snapshot and has not changed since
  // attr_sync has the snapshot's mode and owner already: only the nodes
  // changed since (chmod, chown, or created: the node a hotplug put at a
  // path the snapshot knows has its own mode) are compared. (The tree has
  // no rename: a node keeps its path for its life.)
  std::optional<std::vector<core::Ino>> changed;
  if (snap.attr_sync) changed = tree_.attr_changes_since(*snap.attr_sync);
  if (changed) {
    for (const core::Ino ino : *changed) {
      const auto node = tree_.get(ino);
      // A dead node's path, if made again, is a new node in the log.
      if (!node || !node->alive.load()) continue;
      const auto it = snap.attrs.find(tree_.path_of(ino));
      // A node the snapshot does not know (added since) keeps its own.
      if (it == snap.attrs.end()) continue;
      set_back(ino, *node, it->second);
    }
  } else {
    for (const auto& [path, attr] : snap.attrs) {
      // The node the snapshot saw, if it is still there (no lookup by
      // path: that was half of a restore's time on a machine of 36,000
      // files); else whatever has the path now.
      core::Ino ino = attr.ino;
      auto node = ino ? tree_.get(ino) : nullptr;
      if (!node || node->generation != attr.generation || !node->alive.load()) {
        ino = tree_.resolve(path);
        node = ino ? tree_.get(ino) : nullptr;
      }
      if (!node) continue;
      set_back(ino, *node, attr);
    }
  }
  snap.attr_sync = mark;
}

core::Status MachineSnapshots::restore(const core::Caller* caller, std::string_view name) {
  core::MutexLock lock(mu_);
  const Snapshot* snap = find_locked(name);
  if (!snap) return core::Errno{ENOENT};
  auto refuse = [&](core::Errno e, std::vector<core::EventField> why) -> core::Status {
    why.insert(why.begin(), core::EventField{"name", std::string(name)});
    env_.log(caller, "machine", "restore", e.name(), std::move(why));
    return e;
  };
  if (const auto why = cannot_restore(); !why.empty())
    return refuse(core::Errno{EOPNOTSUPP}, {{"unsupported", why}});
  for (const auto& h : machine_.state_handlers()) {
    if (!h.load) continue;
    if (!snap->states.contains(h.name)) return refuse(core::Errno{EINVAL}, {{"missing", h.name}});
    auto it = snap->records.find(h.name);
    if (it == snap->records.end() || it->second.version() != h.version)
      return refuse(core::Errno{EINVAL}, {{"bad_record", h.name}});
  }
  if (auto st = apply_locked(*snap); !st) return refuse(st.error(), {});
  env_.log(
      caller, "machine", "restore", "OK",
      {{"name", std::string(name)}, {"now_ns", static_cast<std::uint64_t>(snap->now.count())}});
  return {};
}

core::SnapshotImage MachineSnapshots::to_image(const Snapshot& snap) const {
  core::SnapshotImage img;
  img.machine_name = machine_.name();
  img.machine_id = machine_.identity();
  img.name = snap.name;
  img.now_ns = static_cast<std::uint64_t>(snap.now.count());
  img.states = snap.states;
  for (const auto& [path, a] : snap.attrs)
    img.attrs.emplace(path, core::SnapshotImage::Attr{a.mode, a.uid, a.gid});
  img.values = snap.values;
  return img;
}

MachineSnapshots::Snapshot MachineSnapshots::from_image(core::SnapshotImage&& img) {
  Snapshot snap;
  snap.name = std::move(img.name);
  snap.now = core::Nanos(static_cast<core::Nanos::rep>(img.now_ns));
  for (auto& [path, a] : img.attrs) {
    snap.size += path.size() + kAttrBytes;
    snap.attrs.emplace(path, NodeAttr{static_cast<mode_t>(a.mode), static_cast<uid_t>(a.uid),
                                      static_cast<gid_t>(a.gid)});
  }
  for (auto& [path, v] : img.values) snap.size += path.size() + v.size();
  for (auto& [h, rec] : img.states) snap.size += h.size() + rec.size();
  snap.values = std::move(img.values);
  snap.states = std::move(img.states);
  parse_records(snap);
  return snap;
}

core::Status MachineSnapshots::check_image(const core::SnapshotImage& img,
                                           std::string* problem) const {
  auto fail = [&](int e, std::string why) -> core::Status {
    if (problem) *problem = std::move(why);
    return core::Errno{e};
  };
  if (img.machine_id != machine_.identity())
    return fail(
        EXDEV, fmt::format("a snapshot of machine \"{}\" (description {}), not of this "
                           "machine \"{}\" (description {})",
                           img.machine_name, img.machine_id, machine_.name(), machine_.identity()));
  // "now" names the machine itself in a state file's base.
  if (img.name != "now" && !check_name(img.name)) return fail(EINVAL, "not a valid snapshot name");
  if (img.now_ns > static_cast<std::uint64_t>(std::numeric_limits<core::Nanos::rep>::max()))
    return fail(EINVAL, "time out of range");
  for (const auto& h : machine_.state_handlers()) {
    if (!h.load) continue;
    auto it = img.states.find(h.name);
    if (it == img.states.end()) return fail(EINVAL, fmt::format("no record for {}", h.name));
    auto rec = core::StateReader::parse(it->second);
    if (!rec) return fail(EINVAL, fmt::format("record of {} does not parse", h.name));
    if (rec->version() != h.version)
      return fail(EINVAL, fmt::format("record of {} has version {} (this build: {})", h.name,
                                      rec->version(), h.version));
  }
  for (const auto& [h, rec] : img.states) {
    bool known = false;
    for (const auto& mine : machine_.state_handlers()) known = known || mine.name == h;
    if (!known) return fail(EINVAL, fmt::format("a record for {}, which this machine lacks", h));
  }
  return {};
}

core::Status MachineSnapshots::insert_locked(Snapshot snap) {
  if (!find_locked(snap.name) && snaps_.size() >= kMaxSnapshots) return core::Errno{ENOSPC};
  // A name taken again replaces the old snapshot, which goes to the end
  // of the list like a new one.
  std::erase_if(snaps_, [&](const Snapshot& s) { return s.name == snap.name; });
  snaps_.push_back(std::move(snap));
  return {};
}

core::Status MachineSnapshots::save_file(const core::Caller& caller, std::string_view name,
                                         const std::string& path) {
  std::string bytes;
  {
    core::MutexLock lock(mu_);
    const Snapshot* snap = find_locked(name);
    if (!snap) return core::Errno{ENOENT};
    bytes = core::encode_snapshot(to_image(*snap));
  }
  // The file is written outside mu_: a slow disk holds up no restore.
  const auto st = core::write_file_as(caller, path, bytes);
  env_.log(&caller, "machine", "save", st ? "OK" : st.error().name(),
           {{"name", std::string(name)}, {"path", path}, {"size", bytes.size()}});
  return st;
}

core::Status MachineSnapshots::load_file(const core::Caller& caller, std::string_view name,
                                         const std::string& path) {
  auto refuse = [&](core::Errno e, const std::string& problem) -> core::Status {
    env_.log(&caller, "machine", "load", e.name(),
             {{"name", std::string(name)}, {"path", path}, {"problem", problem}});
    return e;
  };
  if (const auto why = cannot_restore(); !why.empty())
    return refuse(core::Errno{EOPNOTSUPP}, "unsupported: " + why);
  auto bytes = core::read_file_as(caller, path, core::kMaxSnapshotFileBytes);
  if (!bytes) return refuse(bytes.error(), "cannot read the file");
  std::string problem;
  auto img = core::decode_snapshot(*bytes, &problem);
  if (!img) return refuse(img.error(), problem);
  if (auto st = check_image(*img, &problem); !st) return refuse(st.error(), problem);
  if (img->name == "now") return refuse(core::Errno{EINVAL}, "not a valid snapshot name");
  if (!name.empty()) img->name = std::string(name);
  Snapshot snap = from_image(std::move(*img));
  const std::string loaded = snap.name;
  const auto now_ns = static_cast<std::uint64_t>(snap.now.count());
  core::MutexLock lock(mu_);
  if (auto st = insert_locked(std::move(snap)); !st) return refuse(st.error(), "the list is full");
  env_.log(&caller, "machine", "load", "OK",
           {{"name", loaded}, {"path", path}, {"now_ns", now_ns}});
  return {};
}

core::Status MachineSnapshots::start_from(std::string_view bytes, std::string* problem) {
  auto fail = [&](int e, std::string why) -> core::Status {
    if (problem) *problem = std::move(why);
    return core::Errno{e};
  };
  if (const auto why = cannot_restore(); !why.empty())
    return fail(EOPNOTSUPP, "this machine cannot restore a snapshot (unsupported: " + why + ")");
  auto img = core::decode_snapshot(bytes, problem);
  if (!img) return img.error();
  VSYSFS_TRY_STATUS(check_image(*img, problem));
  if (img->name == "now") return fail(EINVAL, "not a valid snapshot name");
  Snapshot snap = from_image(std::move(*img));
  core::MutexLock lock(mu_);
  std::string refused;
  if (auto st = apply_locked(snap, &refused); !st)
    return fail(st.error().value(), "a device refused its record: " + refused);
  env_.log(nullptr, "machine", "restore", "OK",
           {{"name", snap.name},
            {"now_ns", static_cast<std::uint64_t>(snap.now.count())},
            {"from", "-o snapshot"}});
  return insert_locked(std::move(snap));
}

core::Result<std::string> MachineSnapshots::state_base() const {
  if (!cannot_restore().empty()) return core::Errno{EOPNOTSUPP};
  // A base must load into the machine as the next mount builds it.
  for (const auto& h : machine_.state_handlers())
    if (h.loads_into_new_boot && !h.loads_into_new_boot()) return core::Errno{EBUSY};
  core::MutexLock lock(mu_);
  Snapshot now = capture(false);
  now.name = "now";
  std::string out = core::encode_snapshot(to_image(now));
  for (const auto& s : snaps_) out += core::encode_snapshot(to_image(s));
  return out;
}

core::Status MachineSnapshots::load_state_base(std::string_view bytes, std::string* problem) {
  auto fail = [&](int e, std::string why) -> core::Status {
    if (problem) *problem = std::move(why);
    return core::Errno{e};
  };
  if (const auto why = cannot_restore(); !why.empty())
    return fail(EOPNOTSUPP, "this machine cannot restore a snapshot (unsupported: " + why + ")");
  auto images = core::decode_images(bytes, problem);
  if (!images) return images.error();
  if (images->empty() || (*images)[0].name != "now")
    return fail(EINVAL, "the base does not start with the machine's image");
  if (images->size() > kMaxSnapshots + 1) return fail(EINVAL, "too many snapshots");
  for (const auto& img : *images) VSYSFS_TRY_STATUS(check_image(img, problem));
  std::vector<Snapshot> list;
  for (std::size_t i = 1; i < images->size(); ++i) {
    if ((*images)[i].name == "now") return fail(EINVAL, "a snapshot named now");
    list.push_back(from_image(std::move((*images)[i])));
  }
  const Snapshot now = from_image(std::move((*images)[0]));
  core::MutexLock lock(mu_);
  std::string refused;
  if (auto st = apply_locked(now, &refused); !st)
    return fail(st.error().value(), "a device refused its record: " + refused);
  snaps_ = std::move(list);
  return {};
}

core::Result<std::string> MachineSnapshots::diff(std::string_view a, std::string_view b) const {
  core::MutexLock lock(mu_);
  // "now" is captured once, however many sides name it. (No lambda: the
  // thread-safety analysis does not see mu_ held inside one.)
  std::optional<Snapshot> now;
  if (a == "now" || b == "now") now = capture();
  const Snapshot* sa = a == "now" ? &*now : find_locked(a);
  const Snapshot* sb = b == "now" ? &*now : find_locked(b);
  if (!sa || !sb) return core::Errno{ENOENT};
  std::string out;
  auto ia = sa->values.begin();
  auto ib = sb->values.begin();
  constexpr std::string_view kAbsent = "(absent)";
  while (ia != sa->values.end() || ib != sb->values.end()) {
    if (ib == sb->values.end() || (ia != sa->values.end() && ia->first < ib->first)) {
      out += fmt::format("{}: {} -> {}\n", ia->first, one_line(ia->second), kAbsent);
      ++ia;
    } else if (ia == sa->values.end() || ib->first < ia->first) {
      out += fmt::format("{}: {} -> {}\n", ib->first, kAbsent, one_line(ib->second));
      ++ib;
    } else {
      if (ia->second != ib->second)
        out += fmt::format("{}: {} -> {}\n", ia->first, one_line(ia->second), one_line(ib->second));
      ++ia;
      ++ib;
    }
  }
  return out;
}

core::Status MachineSnapshots::snapshot_show(std::string& out) const {
  core::MutexLock lock(mu_);
  for (const auto& s : snaps_) out += fmt::format("{} {} {}\n", s.name, s.now.count(), s.size);
  return {};
}

core::Result<std::size_t> MachineSnapshots::snapshot_store(const core::Caller& caller,
                                                           std::string_view in) {
  if (auto st = take(&caller, chomp(in)); !st) return st.error();
  return in.size();
}

core::Result<std::size_t> MachineSnapshots::restore_store(const core::Caller& caller,
                                                          std::string_view in) {
  const auto name = chomp(in);
  if (auto st = check_name(name); !st) return st.error();
  if (auto st = restore(&caller, name); !st) return st.error();
  return in.size();
}

core::Status MachineSnapshots::diff_show(std::string& out) const {
  core::MutexLock lock(mu_);
  out += diff_;
  return {};
}

core::Result<std::size_t> MachineSnapshots::diff_store(const core::Caller&, std::string_view in) {
  // Two names separated by blanks; "now" is the machine at this write.
  std::vector<std::string_view> names;
  std::string_view rest = in;
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(" \t\n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = std::min(rest.find_first_of(" \t\n"), rest.size());
    names.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  if (names.size() != 2) return core::Errno{EINVAL};
  for (auto n : names)
    if (n != "now")
      if (auto st = check_name(n); !st) return st.error();
  auto d = diff(names[0], names[1]);
  if (!d) return d.error();
  core::MutexLock lock(mu_);
  diff_ = std::move(*d);
  return in.size();
}

// "NAME PATH" (save) or "[NAME] PATH" (load): the name is the first word
// when there are two; the path is the rest of the line (it may hold
// spaces), and must be absolute. A path alone starts with '/', which no
// name holds.
namespace {
struct NamePath {
  std::string_view name;
  std::string path;
};
core::Result<NamePath> split_name_path(std::string_view in, bool name_optional) {
  in = chomp(in);
  const auto start = in.find_first_not_of(" \t");
  if (start == std::string_view::npos) return core::Errno{EINVAL};
  in.remove_prefix(start);
  NamePath out;
  if (!(name_optional && in.front() == '/')) {
    const auto end = in.find_first_of(" \t");
    if (end == std::string_view::npos) return core::Errno{EINVAL};
    out.name = in.substr(0, end);
    VSYSFS_TRY_STATUS(check_name(out.name));
    in.remove_prefix(end);
    const auto p = in.find_first_not_of(" \t");
    if (p == std::string_view::npos) return core::Errno{EINVAL};
    in.remove_prefix(p);
  }
  if (in.empty() || in.front() != '/' || in.find('\n') != std::string_view::npos)
    return core::Errno{EINVAL};
  out.path = std::string(in);
  return out;
}
}  // namespace

core::Result<std::size_t> MachineSnapshots::save_store(const core::Caller& caller,
                                                       std::string_view in) {
  auto np = split_name_path(in, false);
  if (!np) return np.error();
  // Writing a file changes nothing of the machine: the state journal
  // keeps no record (a replay would write the file again).
  caller.journal_as(core::Caller::Journal::Skip);
  if (auto st = save_file(caller, np->name, np->path); !st) return st.error();
  return in.size();
}

core::Result<std::size_t> MachineSnapshots::load_store(const core::Caller& caller,
                                                       std::string_view in) {
  auto np = split_name_path(in, true);
  if (!np) return np.error();
  if (auto st = load_file(caller, np->name, np->path); !st) return st.error();
  // The file may change or go after this store: the journal keeps the
  // loaded snapshot itself, in a new base (docs/state.md "Compaction").
  caller.journal_as(core::Caller::Journal::Base);
  return in.size();
}

}  // namespace vsysfs::devices
