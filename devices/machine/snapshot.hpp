#pragma once

// Machine snapshots: MOUNT/kernel/debug/vsysfs/machine/{snapshot,restore,diff}
// (docs/snapshot.md). A test suite takes a snapshot of the machine once and
// restores it before every test case, instead of unmounting and mounting.
// There is no kernel original: this is control-plane machinery like
// netdevsim's debugfs knobs, so the errnos are the ones a debugfs file of
// that shape would return.
//
//   file              mode  what
//   machine/snapshot  0600  write NAME: capture the whole machine now (a
//                           name taken before is replaced). Read: one line
//                           per snapshot, oldest first: "NAME NOW_NS SIZE\n"
//                           (simulated time of the capture, bytes held).
//                           NAME: 1..kMaxName bytes of [A-Za-z0-9._-], not
//                           "now" (EINVAL; longer: ENAMETOOLONG); a
//                           (kMaxSnapshots+1)th name: ENOSPC.
//   machine/restore   0200  write NAME: the machine, in place, is what it
//                           was at that snapshot: simulated time, every
//                           device's state (StateHandler, machine.hpp),
//                           modes and owners. ENOENT: no such snapshot;
//                           EOPNOTSUPP: the real clock (time cannot go
//                           back), or a section without a StateHandler
//                           (the event's "unsupported" field names them):
//                           refused rather than restored partly. Held
//                           locks and the event log are not machine state.
//   machine/diff      0600  write "A B" (snapshot names or "now"): read
//                           then gives one line per attribute whose value
//                           differs, "PATH: OLD -> NEW", sorted by path.
//   machine/save      0200  write "NAME PATH": snapshot NAME to the file
//                           PATH (core/snapshot_file.hpp), opened with the
//                           writer's own permissions (core/caller_file.hpp),
//                           crash-safe. ENOENT: no such snapshot; EINVAL:
//                           PATH not absolute; the open's errno otherwise.
//   machine/load      0200  write "[NAME] PATH": the snapshot in the file
//                           PATH becomes snapshot NAME (default: the name
//                           it was saved under); restore then applies it.
//                           EINVAL: not a valid snapshot file (checksum,
//                           truncation, version, a record this build cannot
//                           read); EXDEV: a snapshot of another machine
//                           description; EOPNOTSUPP: this machine cannot
//                           restore (as restore); ENOSPC: the list is full.
//                           Nothing changes on any error.
//
// What a snapshot holds: the simulated time, every device's StateHandler
// record, the mode/uid/gid of every node, and the rendered value of every
// readable text attribute (for diff). Binary, seq and stream files are not
// rendered; neither is events_dropped, which reports the event log.
//
// Thread-safety: mu_ serialises snapshot, restore and diff; it is taken
// before any device lock (show(), save(), load() run under it) and never
// inside a device callback.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/attribute.hpp"
#include "core/env.hpp"
#include "core/locks.hpp"
#include "core/snapshot_file.hpp"
#include "core/state_record.hpp"
#include "core/thread_annotations.hpp"
#include "core/tree.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::devices {

class MachineSnapshots {
 public:
  // Each snapshot of the default machine holds a few hundred KiB.
  static constexpr std::size_t kMaxSnapshots = 16;
  static constexpr std::size_t kMaxName = 64;

  MachineSnapshots(core::Env& env, core::Tree& tree, Machine& machine,
                   core::ManualClock* manual_clock)
      : env_(env), tree_(tree), machine_(machine), manual_clock_(manual_clock) {}
  MachineSnapshots(const MachineSnapshots&) = delete;
  MachineSnapshots& operator=(const MachineSnapshots&) = delete;

  static std::span<const core::AttributeGroup<MachineSnapshots>> groups();

  // The files. Context: FUSE worker. Locking: mu_, then device locks.
  core::Status snapshot_show(std::string& out) const;
  core::Result<std::size_t> snapshot_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> restore_store(const core::Caller& caller, std::string_view in);
  core::Status diff_show(std::string& out) const;
  core::Result<std::size_t> diff_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> save_store(const core::Caller& caller, std::string_view in);
  core::Result<std::size_t> load_store(const core::Caller& caller, std::string_view in);

  // The same operations for tests (caller null: the simulated kernel).
  core::Status take(const core::Caller* caller, std::string_view name);
  core::Status restore(const core::Caller* caller, std::string_view name);
  core::Result<std::string> diff(std::string_view a, std::string_view b) const;
  core::Status save_file(const core::Caller& caller, std::string_view name,
                         const std::string& path);
  // `name` empty: the name in the file.
  core::Status load_file(const core::Caller& caller, std::string_view name,
                         const std::string& path);

  // Whether this machine can restore a snapshot (the manual clock, and a
  // StateHandler in every section); else the reason ("clock=real",
  // "sections net,xen").
  std::string cannot_restore() const;
  // -o snapshot=FILE (fs/main.cpp): the bytes of a snapshot file become a
  // snapshot of the list and the machine is restored to it. EINVAL/EXDEV/
  // EOPNOTSUPP as load, with the reason in `problem`.
  core::Status start_from(std::string_view bytes, std::string* problem);

  // The base of a compacted state file (docs/state.md "Compaction"): the
  // machine now (an image named "now", without rendered values) followed
  // by every snapshot of the list, oldest first, each a snapshot file.
  // EOPNOTSUPP when this machine cannot restore.
  core::Result<std::string> state_base() const;
  // At mount: the machine becomes the base's "now" and the list the
  // base's snapshots. EINVAL/EXDEV with the reason in `problem`; nothing
  // changes then.
  core::Status load_state_base(std::string_view bytes, std::string* problem);

 private:
  struct NodeAttr {
    mode_t mode;
    uid_t uid;
    gid_t gid;
    // Which node it was, for a snapshot taken by this daemon: (ino,
    // generation) is never reused (core/node.hpp), so a restore finds the
    // node without a lookup by path when it is still there. 0: unknown (a
    // snapshot from a file).
    core::Ino ino = 0;
    std::uint64_t generation = 0;
  };
  // What a NodeAttr counts in a snapshot's SIZE (mode, uid, gid).
  static constexpr std::size_t kAttrBytes = sizeof(mode_t) + sizeof(uid_t) + sizeof(gid_t);
  struct Snapshot {
    std::string name;
    core::Nanos now{0};
    std::map<std::string, std::string> values;  // path -> show() output
    std::map<std::string, NodeAttr> attrs;      // path -> mode, owner
    std::map<std::string, std::string> states;  // StateHandler name -> record
    // The same records parsed, once, when the snapshot is made: a restore
    // reads them as they are (parsing each record again was a third of a
    // restore's time). A record that does not parse is absent (EINVAL).
    std::map<std::string, core::StateReader> records;
    std::size_t size = 0;
    // The tree's change count (Tree::attr_mark) at which every node that
    // has a path in `attrs` had the mode and owner `attrs` gives it, unless
    // changed since: the capture, and then each restore of this snapshot.
    // A restore compares only the nodes changed after it. nullopt: not
    // known (a snapshot from a file): a restore compares every node.
    mutable std::optional<std::uint64_t> attr_sync;
  };
  // Parses `states` into `records`.
  static void parse_records(Snapshot& snap);
  // The record of handler `name` in `snap`: the parsed one, else `states`
  // parsed now (a rollback's records). EINVAL when absent or not a record.
  static core::Result<const core::StateReader*> record_of(const Snapshot& snap,
                                                          const std::string& name,
                                                          std::optional<core::StateReader>& tmp);
  // Sets back the modes and owners of `snap.attrs`: those of the nodes
  // changed since snap.attr_sync, else of every node.
  void apply_attrs_locked(const Snapshot& snap) REQUIRES(mu_);

  Snapshot capture(bool with_values = true) const REQUIRES(mu_);
  core::SnapshotImage to_image(const Snapshot& snap) const;
  static Snapshot from_image(core::SnapshotImage&& image);
  // The checks load makes before a file's snapshot is accepted: this
  // machine's identity, a record for every handler in its version.
  core::Status check_image(const core::SnapshotImage& image, std::string* problem) const;
  // The machine becomes `snap` (no checks but the records; no event).
  // `*refused` names the section whose record was refused, if one was.
  core::Status apply_locked(const Snapshot& snap, std::string* refused = nullptr) REQUIRES(mu_);
  // Adds or replaces a snapshot of the list (ENOSPC when full).
  core::Status insert_locked(Snapshot snap) REQUIRES(mu_);
  // The device states and time of `snap` (no modes): the part a failed
  // load rolls back.
  // Loads the records of the first `limit` handlers (in registration
  // order) and stops at the first that refuses; `*loaded` is how many did.
  core::Status load_states(const Snapshot& snap, std::size_t* loaded = nullptr,
                           std::size_t limit = SIZE_MAX, std::string* refused = nullptr)
      REQUIRES(mu_);
  const Snapshot* find_locked(std::string_view name) const REQUIRES(mu_);

  core::Env& env_;
  core::Tree& tree_;
  Machine& machine_;
  core::ManualClock* const manual_clock_;
  // Order: before every device lock and the tree lock.
  mutable core::Mutex mu_{"snapshot.mu"};
  std::vector<Snapshot> snaps_ GUARDED_BY(mu_);  // oldest first
  std::string diff_ GUARDED_BY(mu_);
};

// Settings a StateHandler may keep as their rendered value: text
// attributes whose store() takes its own show() output back and whose
// show() is all there is of them (a governor name, a bool knob), unlike
// counters or values with side effects. Saved as "knob:PATH=VALUE";
// load_knobs stores each value that differs from the current show() with
// the simulated kernel as caller (logged like any store). EINVAL when a
// path is missing or refuses its value.
//
// `nodes` (optional) remembers each knob's node: a restore saves and loads
// every knob, and walking each path from the root was a third of the numa
// handler's time in one.
class KnobNodes {
 public:
  // The node at `path` (nullptr when absent): the one found last time
  // while it lives (the tree has no rename, so it still has that path),
  // else a lookup. Locking: its own mutex, then the tree's.
  std::shared_ptr<core::Node> find(const core::Tree& tree, const std::string& path);

 private:
  struct Hint {
    core::Ino ino;
    std::uint64_t generation;
  };
  core::Mutex mu_{"knob_nodes"};
  // One entry per knob path of one handler: bounded by its machine.
  std::unordered_map<std::string, Hint> hints_ GUARDED_BY(mu_);
};
void save_knobs(const core::Tree& tree, const std::vector<std::string>& paths, core::StateWriter& w,
                KnobNodes* nodes = nullptr);
core::Status load_knobs(const core::Tree& tree, const core::StateReader& r,
                        KnobNodes* nodes = nullptr);
// The writable text attributes directly in directory `dir` (sorted), for
// a device whose every such file is a knob.
std::vector<std::string> writable_files(const core::Tree& tree, const std::string& dir);

// Adds kernel/debug/vsysfs/machine/{snapshot,restore,diff} (from the
// control plane's builder).
void build_machine_snapshots(MachineContext& ctx);

}  // namespace vsysfs::devices
