#include "tests/testdev/test_device.hpp"

#include <cerrno>
#include <cstring>
#include <set>

#include "core/parse.hpp"
#include "devices/machine/machine.hpp"

namespace vsysfs::testing {
namespace {

using TD = TestDevice;
using TK = TestDeviceKnobs;

constexpr core::DeviceAttribute<TD> kAttrs[] = {
    VSYSFS_ATTR_RW(TD, value),
    VSYSFS_ATTR_RO(TD, ro),
    VSYSFS_ATTR_WO(TD, wo),
    VSYSFS_ATTR_RW_MODE(TD, secret, 0600),
    VSYSFS_ATTR_RO(TD, shows),
    VSYSFS_ATTR_RW(TD, sink),
    VSYSFS_ATTR_RO(TD, big),
};
constexpr core::BinAttribute<TD> kBin[] = {
    VSYSFS_BIN_ATTR_RW(TD, blob, 0644, 64),
    VSYSFS_BIN_ATTR_RW(TD, stream, 0600, 0),
};
constexpr core::DeviceAttribute<TD> kStats[] = {
    VSYSFS_ATTR_RO(TD, count),
};
constexpr core::AttributeGroup<TD> kGroups[] = {
    {.name = "", .attrs = kAttrs, .bin_attrs = kBin},
    {.name = "stats", .attrs = kStats},
};

constexpr core::DeviceAttribute<TK> kKnobs[] = {
    VSYSFS_ATTR_WO_MODE(TK, notify, 0200),
    VSYSFS_ATTR_WO_MODE(TK, set, 0200),
    VSYSFS_ATTR_RW_MODE(TK, timer_ms, 0600),
    VSYSFS_ATTR_RO_MODE(TK, fired, 0400),
    VSYSFS_ATTR_WO_MODE(TK, hotplug, 0200),
};
constexpr core::AttributeGroup<TK> kKnobGroups[] = {{.name = "", .attrs = kKnobs}};

std::string dir_of(std::string_view name) {
  return "devices/virtual/vsysfs_test/" + std::string(name);
}

std::shared_ptr<TD> add_test_device(core::Env& env, core::Tree& tree, std::string_view name) {
  auto dev = std::make_shared<TD>(env, std::string(name));
  dev->kobj_ = tree.add_device<TD>(dir_of(name), dev, TD::groups());
  tree.add_symlink("class/vsysfs_test/" + std::string(name),
                   "../../devices/virtual/vsysfs_test/" + std::string(name));
  return dev;
}

void build_testdev(devices::MachineContext& ctx, const core::ConfigValue& sec) {
  const int initial = static_cast<int>(sec.get_int("value", 0));
  auto dev0 = add_test_device(ctx.env, ctx.tree, "testdev0");
  dev0->set_value(initial);
  auto knobs = std::make_shared<TK>(ctx.env, ctx.tree, dev0);
  ctx.tree.add_device<TK>("kernel/debug/vsysfs/testdev", knobs, TK::groups());
  ctx.machine.keep(dev0);
  ctx.machine.keep(knobs);
  ctx.machine.register_state(
      {.name = "testdev",
       .version = 1,
       .save = [knobs](core::StateWriter& w) { knobs->save_state(w); },
       .load = [knobs](const core::StateReader& r) { return knobs->load_state(r); },
       .loads_into_new_boot = {},
       .section = {}});
}
const devices::SectionRegistrar kRegistrar{"testdev", &build_testdev};

}  // namespace

std::span<const core::AttributeGroup<TD>> TD::groups() { return kGroups; }

core::Status TD::value_show(core::PageBuffer& buf) const {
  std::lock_guard lock(mu_);
  shows_++;
  buf.emit("{}\n", value_);
  return {};
}

core::Result<std::size_t> TD::value_store(const core::Caller& c, std::string_view in) {
  auto v = core::kstrtoint(in, 0);
  env_.log(&c, "testdev", "store", v ? "OK" : v.error().name(), {{"attr", "value"}});
  if (!v) return v.error();
  set_value(*v);
  return in.size();
}

void TD::set_value(int v) {
  {
    std::lock_guard lock(mu_);
    value_ = v;
  }
  kobj_.notify("value");
}

core::Status TD::ro_show(core::PageBuffer& buf) const {
  shows_++;
  buf.append("read-only\n");
  return {};
}

core::Result<std::size_t> TD::wo_store(const core::Caller& c, std::string_view in) {
  env_.log(&c, "testdev", "store", "OK", {{"attr", "wo"}, {"data", in}});
  return in.size();
}

core::Status TD::secret_show(core::PageBuffer& buf) const {
  std::lock_guard lock(mu_);
  buf.emit("{}\n", secret_);
  return {};
}

core::Result<std::size_t> TD::secret_store(const core::Caller&, std::string_view in) {
  auto v = VSYSFS_TRY(core::kstrtoint(in, 0));
  std::lock_guard lock(mu_);
  secret_ = v;
  return in.size();
}

core::Status TD::shows_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", ++shows_);
  return {};
}

core::Status TD::sink_show(core::PageBuffer& buf) const {
  std::lock_guard lock(mu_);
  buf.emit("len={} nul={}\n", sink_len_, sink_nul_ ? 1 : 0);
  return {};
}

core::Result<std::size_t> TD::sink_store(const core::Caller&, std::string_view in) {
  std::lock_guard lock(mu_);
  sink_len_ = in.size();
  // The fs layer promises store() a NUL right after the data.
  sink_nul_ = in.data()[in.size()] == '\0';
  return in.size();
}

core::Status TD::big_show(core::PageBuffer& buf) const {
  for (int i = 0; i < 500; ++i) buf.append("0123456789");
  buf.append("\n");
  return {};
}

core::Status TD::count_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", shows_.load());
  return {};
}

core::Result<std::size_t> TD::blob_read(const core::Caller&, std::uint64_t pos,
                                        std::span<char> out) {
  std::lock_guard lock(mu_);
  // The fs layer clamps to the declared size; this is defence in depth.
  if (pos >= blob_.size()) return std::size_t{0};
  const std::size_t n = std::min<std::size_t>(out.size(), blob_.size() - pos);
  std::memcpy(out.data(), blob_.data() + pos, n);
  return n;
}

core::Result<std::size_t> TD::blob_write(const core::Caller&, std::uint64_t pos,
                                         std::span<const char> in) {
  std::lock_guard lock(mu_);
  if (pos >= blob_.size()) return core::Errno{EFBIG};
  const std::size_t n = std::min<std::size_t>(in.size(), blob_.size() - pos);
  std::memcpy(blob_.data() + pos, in.data(), n);
  return n;
}

core::Result<std::size_t> TD::stream_read(const core::Caller&, std::uint64_t pos,
                                          std::span<char> out) {
  std::lock_guard lock(mu_);
  if (pos >= stream_.size()) return std::size_t{0};
  const std::size_t n = std::min<std::size_t>(out.size(), stream_.size() - pos);
  std::memcpy(out.data(), stream_.data() + pos, n);
  return n;
}

core::Result<std::size_t> TD::stream_write(const core::Caller&, std::uint64_t pos,
                                           std::span<const char> in) {
  std::lock_guard lock(mu_);
  if (pos >= stream_.size()) return core::Errno{ENOSPC};
  const std::size_t n = std::min<std::size_t>(in.size(), stream_.size() - pos);
  std::memcpy(stream_.data() + pos, in.data(), n);
  return n;
}

// --- knobs -------------------------------------------------------------------

TK::TestDeviceKnobs(core::Env& env, core::Tree& tree, std::shared_ptr<TestDevice> dev0)
    : env_(env), tree_(tree), dev0_(std::move(dev0)), timer_(env.clock, [this] {
        fired_++;
        env_.log(nullptr, "testdev", "timer", "fired", {{"count", fired_.load()}});
      }) {}

std::span<const core::AttributeGroup<TK>> TK::groups() { return kKnobGroups; }

core::Result<std::size_t> TK::notify_store(const core::Caller&, std::string_view in) {
  const std::string_view name = core::strim(in);
  if (!tree_.lookup(dev0_->kobj_.ino(), name)) return core::Errno{ENOENT};
  dev0_->kobj_.notify(name);
  return in.size();
}

core::Result<std::size_t> TK::set_store(const core::Caller&, std::string_view in) {
  dev0_->set_value(VSYSFS_TRY(core::kstrtoint(in, 0)));
  return in.size();
}

core::Status TK::timer_ms_show(core::PageBuffer& buf) const {
  if (timer_.pending()) {
    buf.emit("{}\n", timer_.expires().count());
  } else {
    buf.append("idle\n");
  }
  return {};
}

core::Result<std::size_t> TK::timer_ms_store(const core::Caller& c, std::string_view in) {
  const auto ms = VSYSFS_TRY(core::kstrtouint(in, 0));
  timer_.schedule_in(std::chrono::milliseconds(ms));
  env_.log(&c, "testdev", "timer", "armed", {{"deadline_ns", timer_.expires().count()}});
  return in.size();
}

core::Status TK::fired_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", fired_.load());
  return {};
}

core::Result<std::size_t> TK::hotplug_store(const core::Caller& c, std::string_view in) {
  const std::string_view cmd = core::strim(in);
  const auto space = cmd.find(' ');
  if (space == std::string_view::npos) return core::Errno{EINVAL};
  const std::string_view verb = cmd.substr(0, space);
  const std::string name(core::strim(cmd.substr(space + 1)));
  if (name.empty() || name.find('/') != std::string::npos || name == "testdev0" || name == "." ||
      name == "..")
    return core::Errno{EINVAL};
  if (verb == "add") {
    if (tree_.resolve(dir_of(name))) return core::Errno{EEXIST};
    auto dev = add_test_device(env_, tree_, name);
    std::lock_guard lock(hp_mu_);
    hotplugged_[name] = std::move(dev);
  } else if (verb == "remove") {
    if (!tree_.resolve(dir_of(name))) return core::Errno{ENOENT};
    (void)tree_.remove("class/vsysfs_test/" + name);
    VSYSFS_TRY_STATUS(tree_.remove(dir_of(name)));
    std::lock_guard lock(hp_mu_);
    hotplugged_.erase(name);
  } else {
    return core::Errno{EINVAL};
  }
  env_.log(&c, "testdev", "hotplug", "OK", {{"verb", verb}, {"name", name}});
  return in.size();
}

// --- machine snapshots (docs/snapshot.md) ------------------------------------

void TD::save_state(core::StateWriter& w, const std::string& prefix) const {
  std::lock_guard lock(mu_);
  w.put_i64(prefix + ".value", value_);
  w.put_i64(prefix + ".secret", secret_);
  w.put_u64(prefix + ".sink_len", sink_len_);
  w.put_bool(prefix + ".sink_nul", sink_nul_);
  w.put_str(prefix + ".blob", std::string_view(blob_.data(), blob_.size()));
  w.put_str(prefix + ".stream", std::string_view(stream_.data(), stream_.size()));
}

core::Status TD::load_state(const core::StateReader& r, const std::string& prefix) {
  auto value = r.i64(prefix + ".value");
  auto secret = r.i64(prefix + ".secret");
  auto sink_len = r.u64(prefix + ".sink_len");
  auto sink_nul = r.boolean(prefix + ".sink_nul");
  auto blob = r.str(prefix + ".blob");
  auto stream = r.str(prefix + ".stream");
  if (!value || !secret || !sink_len || !sink_nul || !blob || !stream ||
      blob->size() != blob_.size() || stream->size() != stream_.size())
    return core::Errno{EINVAL};
  {
    std::lock_guard lock(mu_);
    secret_ = static_cast<int>(*secret);
    sink_len_ = *sink_len;
    sink_nul_ = *sink_nul;
    std::memcpy(blob_.data(), blob->data(), blob_.size());
    std::memcpy(stream_.data(), stream->data(), stream_.size());
  }
  set_value(static_cast<int>(*value));  // notifies pollers, as a restore changes it
  return {};
}

void TK::save_state(core::StateWriter& w) const {
  dev0_->save_state(w, "testdev0");
  std::string names;
  {
    std::lock_guard lock(hp_mu_);
    // By position in the (sorted) list: a name may hold any byte but '/'.
    std::size_t i = 0;
    for (const auto& [name, dev] : hotplugged_) {
      names += name + "\n";
      dev->save_state(w, "dev" + std::to_string(i++));
    }
  }
  w.put_str("hotplugged", names);
  w.put_u64("fired", fired_.load());
  const core::TimerState t = timer_.state();
  w.put_bool("timer.pending", t.pending);
  w.put_i64("timer.expires_ns", t.expires.count());
  w.put_u64("timer.order", t.order);
}

core::Status TK::load_state(const core::StateReader& r) {
  auto names_s = r.str("hotplugged");
  auto fired = r.u64("fired");
  auto pending = r.boolean("timer.pending");
  auto expires = r.i64("timer.expires_ns");
  // Its place among timers due at the same instant (absent in records of
  // older builds: then after them).
  const auto order =
      r.has("timer.order") ? r.u64("timer.order") : core::Result<std::uint64_t>{std::uint64_t{0}};
  if (!names_s || !fired || !pending || !expires || !order) return core::Errno{EINVAL};
  std::set<std::string> names;
  for (std::string_view rest = *names_s; !rest.empty();) {
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos || nl == 0) return core::Errno{EINVAL};
    names.emplace(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  // Hotplug: remove what the snapshot lacks, add what it has.
  std::map<std::string, std::shared_ptr<TD>> now;
  {
    std::lock_guard lock(hp_mu_);
    now = hotplugged_;
  }
  for (const auto& [name, dev] : now)
    if (!names.count(name)) {
      (void)tree_.remove("class/vsysfs_test/" + name);
      (void)tree_.remove(dir_of(name));
      std::lock_guard lock(hp_mu_);
      hotplugged_.erase(name);
    }
  for (const auto& name : names)
    if (!now.count(name)) {
      if (tree_.resolve(dir_of(name))) return core::Errno{EINVAL};
      auto dev = add_test_device(env_, tree_, name);
      std::lock_guard lock(hp_mu_);
      hotplugged_[name] = std::move(dev);
    }
  VSYSFS_TRY_STATUS(dev0_->load_state(r, "testdev0"));
  {
    std::lock_guard lock(hp_mu_);
    std::size_t i = 0;
    for (const auto& [name, dev] : hotplugged_)
      VSYSFS_TRY_STATUS(dev->load_state(r, "dev" + std::to_string(i++)));
  }
  timer_.del_timer_sync();
  fired_ = *fired;
  timer_.restore({.pending = *pending, .expires = core::Nanos(*expires), .order = *order});
  return {};
}

}  // namespace vsysfs::testing
