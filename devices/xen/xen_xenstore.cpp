// The simulated host's xenstore and the balloon drivers' watches on it
// (see xen_xenstore.hpp for what is modelled and why).

#include "devices/xen/xen_xenstore.hpp"

#include <algorithm>
#include <cerrno>
#include <set>

#include <fmt/format.h>

#include "core/page_buffer.hpp"
#include "core/parse.hpp"
#include "devices/machine/machine.hpp"
#include "devices/xen/xen_balloon.hpp"
#include "devices/xen/xen_sys_hypervisor.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::SeqAttribute<XenStore> kSeqAttrs[] = {
    VSYSFS_SEQ_ATTR_RW(XenStore, xenstore, 0600),
};
constexpr core::AttributeGroup<XenStore> kGroups[] = {
    {.name = "", .seq_attrs = kSeqAttrs},
};

constexpr std::string_view kLocalDomain = "/local/domain/";
constexpr std::string_view kVm = "/vm/";

// xenstored valid_chars: [A-Za-z0-9-/_@].
bool valid_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '/' || c == '_' || c == '@';
}

// xenstored is_valid_nodename for an absolute path (no "@" specials).
bool valid_path(std::string_view p) {
  if (p.empty() || p.front() != '/') return false;
  if (p.size() > 1 && p.back() == '/') return false;
  if (p.find("//") != std::string_view::npos) return false;
  if (p.size() > XenStore::kMaxPathBytes) return false;
  return std::all_of(p.begin(), p.end(), valid_char);
}

// xenstored is_child(child, parent): the node itself or one below it.
bool is_child(std::string_view child, std::string_view parent) {
  return child == parent ||
         (child.size() > parent.size() && child.starts_with(parent) && child[parent.size()] == '/');
}

// The component after `prefix` in `path` ("" when path ends there).
std::string_view component_after(std::string_view path, std::string_view prefix) {
  std::string_view rest = path.substr(prefix.size());
  return rest.substr(0, rest.find('/'));
}

// xenbus_scanf(..., "%llu", &v) == 1 (lib/vsprintf.c vsscanf): leading
// kernel whitespace skipped, then a decimal digit is required (no sign),
// then simple_strntoull base 10, which wraps on overflow and stops at the
// first non-digit. nullopt: the node is absent (xenbus_read fails) or no
// number was read.
std::optional<std::uint64_t> scan_llu(const std::optional<std::string>& v) {
  if (!v) return std::nullopt;
  const std::string_view s = core::skip_spaces(*v);
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  return core::simple_strtoull(s, 10).value;
}

// xenstore-ls (tools/xenstore/xenstore_client.c sanitise_value): printable
// ASCII but '\' as is, '\' doubled. Stores only hold printable ASCII.
std::string sanitise_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += '\\';
    out += c;
  }
  return out;
}

std::string uuid_string(const std::array<std::uint8_t, 16>& u) {
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
      u[15]);
}

}  // namespace

std::span<const core::AttributeGroup<XenStore>> XenStore::groups() { return kGroups; }

XenStore::XenStore(core::Env& env, std::vector<Domain> domains)
    : env_(env), domains_(std::move(domains)) {
  core::MutexLock wlock(xenwatch_mutex_);
  core::MutexLock lock(mu_);
  nodes_.emplace("/", Node{});
  write_locked("/tool/xenstored", "");
  for (std::size_t i = 0; i < domains_.size(); ++i) {
    const Domain& d = domains_[i];
    const std::string dom = fmt::format("{}{}", kLocalDomain, d.domid);
    const std::string vm = fmt::format("{}{}", kVm, d.uuid);
    write_locked(dom + "/vm", vm);
    write_locked(dom + "/name", d.name);
    write_locked(dom + "/domid", fmt::format("{}", d.domid));
    write_locked(dom + "/memory/static-max", fmt::format("{}", d.static_max_kb));
    write_locked(dom + "/memory/target", fmt::format("{}", d.target_kb));
    watches_.push_back({i, dom + "/memory/target"});
    watch_state_.emplace_back();
  }
  for (const Domain& d : domains_) {
    const std::string vm = fmt::format("{}{}", kVm, d.uuid);
    write_locked(vm + "/uuid", d.uuid);
    write_locked(vm + "/name", d.name);
    // libxl_set_memory_target writes /vm/UUID/memory as target / 1024.
    write_locked(vm + "/memory", fmt::format("{}", d.target_kb / 1024));
  }
}

void XenStore::start() {
  core::MutexLock wlock(xenwatch_mutex_);
  const core::Caller kernel = core::Caller::kernel();
  for (std::size_t i = 0; i < watches_.size(); ++i)
    watch_target(kernel, watches_[i].domain, watches_[i].node, /*boot=*/true);
}

bool XenStore::valid_path(std::string_view p) { return devices::valid_path(p); }

std::optional<std::string> XenStore::read(std::string_view path) const {
  core::MutexLock lock(mu_);
  auto it = nodes_.find(path);
  if (it == nodes_.end()) return std::nullopt;
  return it->second.value;
}

std::size_t XenStore::node_count() const {
  core::MutexLock lock(mu_);
  return nodes_.size();
}

std::vector<std::string> XenStore::missing_locked(const std::string& path) const {
  mu_.assert_held();
  std::vector<std::string> out;
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (!nodes_.contains(prefix)) out.push_back(std::move(prefix));
  }
  return out;
}

void XenStore::write_locked(const std::string& path, std::string value) {
  mu_.assert_held();
  for (std::string& p : missing_locked(path)) {
    const std::size_t slash = p.rfind('/');
    const std::string parent = slash == 0 ? std::string("/") : p.substr(0, slash);
    nodes_.at(parent).children.push_back(p.substr(slash + 1));
    nodes_.emplace(std::move(p), Node{});
  }
  nodes_.at(path).value = std::move(value);
}

// The domains are fixed: a path under a domain or VM that does not exist
// names nothing a toolstack could write to (XS_INTRODUCE is not modelled).
core::Status XenStore::check_owner_locked(std::string_view path) const {
  mu_.assert_held();
  for (std::string_view prefix : {kLocalDomain, kVm}) {
    if (!path.starts_with(prefix)) continue;
    const std::string_view c = component_after(path, prefix);
    if (!nodes_.contains(std::string(prefix) + std::string(c))) return core::Errno{ENOENT};
  }
  return {};
}

core::Status XenStore::xenstore_show(std::string& out) const {
  core::MutexLock lock(mu_);
  // Depth-first in creation order, as xenstore-ls walks xs_directory.
  struct Frame {
    std::string path;
    std::size_t next = 0;
  };
  std::vector<Frame> stack{{"/", 0}};
  while (!stack.empty()) {
    Frame& f = stack.back();
    const Node& node = nodes_.at(f.path);
    if (f.next == node.children.size()) {
      stack.pop_back();
      continue;
    }
    const std::string& name = node.children[f.next++];
    std::string child = f.path == "/" ? "/" + name : f.path + "/" + name;
    const int depth = static_cast<int>(stack.size()) - 1;
    out +=
        fmt::format("{:{}}{} = \"{}\"\n", "", depth, name, sanitise_value(nodes_.at(child).value));
    stack.push_back({std::move(child), 0});
  }
  return {};
}

core::Result<std::size_t> XenStore::xenstore_store(const core::Caller& caller,
                                                   std::string_view in) {
  // Parse every line before anything changes: a bad one refuses the lot.
  std::string_view rest = in;
  if (rest.ends_with('\n')) rest.remove_suffix(1);
  if (rest.empty()) return core::Errno{EINVAL};
  std::vector<Line> lines;
  while (true) {
    const std::size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    const bool printable = std::all_of(line.begin(), line.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) <= 0x7e;
    });
    const std::size_t sp = line.find(' ');
    if (!printable || sp == std::string_view::npos) return core::Errno{EINVAL};
    const std::string_view path = line.substr(0, sp);
    if (!valid_path(path) || path == "/") return core::Errno{EINVAL};
    lines.push_back({std::string(path), std::string(line.substr(sp + 1))});
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }

  core::MutexLock wlock(xenwatch_mutex_);
  std::vector<std::pair<std::size_t, std::string>> fired;  // (domain, path)
  {
    core::MutexLock lock(mu_);
    std::set<std::string> created;
    for (std::size_t n = 0; n < lines.size(); ++n) {
      const Line& l = lines[n];
      core::Status st = check_owner_locked(l.path);
      if (st && l.value.size() > kMaxValueBytes) st = core::Errno{ENOSPC};
      if (st) {
        for (std::string& p : missing_locked(l.path)) created.insert(std::move(p));
        if (nodes_.size() + created.size() > kMaxNodes) st = core::Errno{ENOSPC};
      }
      if (!st) {
        env_.log(&caller, "xenstore", "write", st.error().name(),
                 {{"line", n + 1}, {"path", l.path}});
        return st.error();
      }
    }
    for (Line& l : lines) {
      env_.log(&caller, "xenstore", "write", "OK", {{"path", l.path}, {"value", l.value}});
      for (const Watch& w : watches_)
        if (is_child(l.path, w.node)) fired.emplace_back(w.domain, l.path);
      write_locked(l.path, std::move(l.value));
    }
  }
  // xenstored queues the events; the xenwatch thread runs the callbacks
  // one by one, after the transaction, reading the store as it is then.
  for (const auto& [domain, path] : fired) watch_target(caller, domain, path);
  return in.size();
}

// kernel: drivers/xen/xen-balloon.c watch_target.
void XenStore::watch_target(const core::Caller& caller, std::size_t i, std::string_view path,
                            bool boot) {
  xenwatch_mutex_.assert_held();
  const Domain& d = domains_[i];
  WatchState& st = watch_state_[i];
  const std::string mem = fmt::format("{}{}/memory/", kLocalDomain, d.domid);
  const std::optional<std::string> raw = read(mem + "target");
  const std::optional<std::uint64_t> kb = scan_llu(raw);
  if (!kb) {
    // "This is ok (for domain0 at least) - so just return".
    env_.log(&caller, "xenstore", "watch", "ignored",
             {{"domid", d.domid}, {"path", path}, {"value", raw.value_or("")}});
    return;
  }
  const std::uint64_t new_target = *kb >> (kXenPageShift - 10);
  const bool first = !st.fired;
  if (first) {
    st.fired = true;
    std::uint64_t static_max = 0;
    if (auto s = scan_llu(read(mem + "static-max")))
      static_max = *s >> (kXenPageShift - 10);
    else if (auto s2 = scan_llu(read(mem + "memory_static_max")))
      static_max = *s2 >> (kXenPageShift - 10);
    else
      static_max = new_target;
    st.target_diff = d.pv_or_initial ? 0 : static_cast<long>(static_max - d.first_fire_pages);
  }
  // unsigned long long - long: the difference wraps when negative.
  const std::uint64_t target = new_target - static_cast<std::uint64_t>(st.target_diff);
  env_.log(&caller, "xenstore", "watch", "OK",
           {{"domid", d.domid},
            {"path", path},
            {"value", *raw},
            {"target_kb", xen_pages_to_kb(target)},
            {"target_diff_kb", static_cast<long long>(st.target_diff) * 4},
            {"first", first}});
  // The boot fire happened before the model's boot state: it set the
  // target the domain boots with, so there is nothing to set again.
  if (boot && target == d.boot_target_pages) return;
  d.set_target(caller, target);
}

// --- the machine ----------------------------------------------------------------

std::shared_ptr<XenStore> build_xenstore(MachineContext& ctx, const core::ConfigValue& xen_sec,
                                         const std::shared_ptr<XenHypervisor>& hv,
                                         const std::shared_ptr<XenBalloon>& guest,
                                         const XenHypervisor::DomainSpec& guest_spec,
                                         std::uint64_t boot_target_pages) {
  const XenSysHypervisor::Info info =
      XenSysHypervisor::parse(xen_sec.find("hypervisor"), guest_spec.domid, guest_spec.name);
  const bool guest_pv_or_initial = info.guest_type == "PV" || guest_spec.domid == 0;
  std::uint64_t static_max_kb = xen_pages_to_kb(guest_spec.max_pages);
  // [xen.xenstore] static_max_kb: memory/static-max of this guest, KiB, at
  // least its max_memory (the guest sees less than the toolstack's static
  // maximum: firmware, holes); target_diff is the difference.
  if (const core::ConfigValue* xs = xen_sec.find("xenstore")) {
    if (const core::ConfigValue* v = xs->find("static_max_kb")) {
      static_max_kb = v->as_uint();
      if (static_max_kb < xen_pages_to_kb(guest_spec.max_pages) ||
          static_max_kb % kXenPagesPerKb != 0 || static_max_kb > (std::uint64_t{1} << 52))
        v->fail("must be a multiple of 4 KiB, at least the guest's max_memory");
    }
  }
  const std::uint64_t diff_pages =
      guest_pv_or_initial ? 0 : xen_kb_to_pages(static_max_kb) - guest_spec.max_pages;

  std::vector<XenStore::Domain> domains;
  XenStore::Domain g;
  g.name = guest_spec.name;
  g.domid = guest_spec.domid;
  g.uuid = uuid_string(info.uuid);
  g.static_max_kb = static_max_kb;
  // The toolstack's target is the guest's plus target_diff.
  g.target_kb = xen_pages_to_kb(boot_target_pages + diff_pages);
  g.pv_or_initial = guest_pv_or_initial;
  g.first_fire_pages = guest_spec.max_pages;
  g.boot_target_pages = boot_target_pages;
  g.set_target = [guest](const core::Caller& c, std::uint64_t pages) {
    guest->set_target_from_watch(c, pages);
  };
  domains.push_back(std::move(g));

  for (const std::shared_ptr<XenDomain>& d : hv->other_domains()) {
    XenStore::Domain o;
    o.name = d->name();
    o.domid = d->domid();
    o.uuid = d->domid() == 0
                 ? std::string("00000000-0000-0000-0000-000000000000")
                 : uuid_string(XenSysHypervisor::parse(nullptr, d->domid(), d->name()).uuid);
    const std::uint64_t max_pages = hv->domain_max_pages(d->domid());
    core::PageBuffer buf;
    (void)d->target_kb_show(buf);
    const std::uint64_t target_kb = core::simple_strtoull(buf.view(), 10).value;
    o.static_max_kb = xen_pages_to_kb(max_pages);
    o.target_kb = target_kb;
    o.pv_or_initial = true;  // modelled converged: target_diff 0
    o.first_fire_pages = max_pages;
    o.boot_target_pages = xen_kb_to_pages(target_kb);
    o.set_target = [d, max_pages](const core::Caller& c, std::uint64_t pages) {
      // The domain's own driver cannot get past Xen's max_pages: the
      // hypervisor's pacing model takes the reachable target.
      (void)d->target_kb_store(c, fmt::format("{}", xen_pages_to_kb(std::min(pages, max_pages))));
    };
    domains.push_back(std::move(o));
  }
  std::sort(domains.begin(), domains.end(),
            [](const XenStore::Domain& a, const XenStore::Domain& b) { return a.domid < b.domid; });

  auto store = std::make_shared<XenStore>(ctx.env, std::move(domains));
  ctx.tree.add_device<XenStore>("kernel/debug/vsysfs/xen", store, XenStore::groups());
  ctx.machine.keep(store);
  store->start();
  return store;
}

}  // namespace vsysfs::devices
