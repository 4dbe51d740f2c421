#include "devices/numa/numa_debug.hpp"

#include <cerrno>
#include <set>

#include <fmt/format.h>

#include "core/parse.hpp"
#include "devices/numa/numa_fault.hpp"

namespace vsysfs::devices {
namespace {

constexpr core::DeviceAttribute<NumaDebug> kAttrs[] = {
    VSYSFS_ATTR_WO_MODE(NumaDebug, alloc, 0200),
    VSYSFS_ATTR_WO_MODE(NumaDebug, free, 0200),
    VSYSFS_ATTR_RO_MODE(NumaDebug, last_alloc_id, 0400),
};
constexpr core::SeqAttribute<NumaDebug> kSeq[] = {
    VSYSFS_SEQ_ATTR_RO(NumaDebug, allocations, 0400),
    VSYSFS_SEQ_ATTR_RO(NumaDebug, zonelists, 0400),
};
constexpr core::AttributeGroup<NumaDebug> kGroups[] = {
    {.name = "", .attrs = kAttrs, .seq_attrs = kSeq},
};

constexpr core::Errno kInval{EINVAL};

core::Result<std::vector<int>> parse_nodes(std::string_view list, int nr_node_ids) {
  if (list.empty()) return kInval;
  auto bits = core::bitmap_parselist(list, static_cast<unsigned>(nr_node_ids));
  if (!bits || bits->empty()) return kInval;
  return std::vector<int>(bits->begin(), bits->end());
}

core::Result<MemPolicy> parse_policy(std::string_view v, int nr_node_ids) {
  const auto colon = v.find(':');
  const std::string_view mode = v.substr(0, colon);
  const bool has_list = colon != std::string_view::npos;
  const std::string_view list = has_list ? v.substr(colon + 1) : std::string_view{};
  MemPolicy p;
  if (mode == "default" || mode == "local") {
    if (has_list) return kInval;
    p.mode = PolicyMode::Default;  // MPOL_LOCAL allocates exactly as the default policy
  } else if (mode == "preferred") {
    p.mode = PolicyMode::Preferred;
    p.nodes = VSYSFS_TRY(parse_nodes(list, nr_node_ids));
    if (p.nodes.size() != 1) return kInval;
  } else if (mode == "bind") {
    p.mode = PolicyMode::Bind;
    p.nodes = VSYSFS_TRY(parse_nodes(list, nr_node_ids));
  } else if (mode == "interleave") {
    p.mode = PolicyMode::Interleave;
    if (has_list) {
      p.nodes = VSYSFS_TRY(parse_nodes(list, nr_node_ids));
    } else {
      for (int n = 0; n < nr_node_ids; ++n) p.nodes.push_back(n);  // "all"
    }
  } else {
    return kInval;
  }
  return p;
}

}  // namespace

core::Result<AllocRequest> parse_alloc_line(std::string_view line, const NumaModel& model) {
  // A NUL ends the line as it ends a C string; anything after it is junk.
  if (line.find('\0') != std::string_view::npos) return kInval;
  AllocRequest req;
  std::set<std::string_view> seen;
  bool have_pages = false;
  for (std::string_view tok : core::split_words(core::strip_newline(line))) {
    const auto eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0) return kInval;
    const std::string_view key = tok.substr(0, eq);
    const std::string_view val = tok.substr(eq + 1);
    if (!seen.insert(key).second) return kInval;
    if (key == "pages") {
      auto v = core::kstrtoull(val, 0);
      if (!v || *v == 0) return kInval;
      req.pages = *v;
      have_pages = true;
    } else if (key == "cpu") {
      auto v = core::kstrtouint(val, 10);
      if (!v || !model.cpu_online(*v)) return kInval;
      req.cpu = *v;
    } else if (key == "policy") {
      req.policy = VSYSFS_TRY(parse_policy(val, model.nr_node_ids()));
    } else if (key == "kind") {
      auto k = parse_page_kind(val);
      if (!k) return kInval;
      req.kind = *k;
    } else {
      return kInval;
    }
  }
  if (!have_pages) return kInval;
  return req;
}

std::string policy_string(const MemPolicy& policy, int nr_node_ids) {
  if (policy.mode == PolicyMode::Default) return "default";
  std::vector<bool> bits(static_cast<std::size_t>(nr_node_ids), false);
  for (int n : policy.nodes) bits[static_cast<std::size_t>(n)] = true;
  return fmt::format("{}:{}", policy_mode_name(policy.mode), core::bitmap_print_list(bits));
}

std::string allocation_string(const Allocation& a, int nr_node_ids) {
  std::string s = fmt::format("id={} cpu={} pages={} policy={} kind={}", a.id, a.cpu, a.pages,
                              policy_string(a.policy, nr_node_ids), page_kind_name(a.kind));
  for (int n = 0; n < nr_node_ids; ++n) s += fmt::format(" node{}={}", n, a.per_node[n]);
  return s;
}

std::span<const core::AttributeGroup<NumaDebug>> NumaDebug::groups() { return kGroups; }

core::Result<std::size_t> NumaDebug::alloc_store(const core::Caller& caller, std::string_view in) {
  if (!caller.capable(core::Capability::SysAdmin)) return core::Errno{EPERM};
  auto req = parse_alloc_line(in, *model_);
  if (!req) {
    env_.log(&caller, "numa", "alloc", "EINVAL", {{"line", core::strip_newline(in)}});
    return req.error();
  }
  if (should_fail_numa_alloc(env_, caller, *req)) {
    // fail_page_alloc: the allocator returns nothing; nothing changes.
    env_.log(&caller, "numa", "alloc", "ENOMEM",
             {{"line", core::strip_newline(in)}, {"pages", req->pages}, {"fault", true}});
    return core::Errno{ENOMEM};
  }
  auto a = model_->alloc(*req);
  if (!a) {
    env_.log(&caller, "numa", "alloc", a.error().name(),
             {{"line", core::strip_newline(in)}, {"pages", req->pages}});
    return a.error();
  }
  std::vector<core::EventField> data{
      {"id", a->id}, {"cpu", a->cpu}, {"pages", a->pages},
      {"policy", policy_string(a->policy, model_->nr_node_ids())}, {"kind", page_kind_name(a->kind)}};
  for (int n = 0; n < model_->nr_node_ids(); ++n) data.emplace_back(fmt::format("node{}", n), a->per_node[n]);
  env_.log(&caller, "numa", "alloc", "OK", std::move(data));
  return in.size();
}

core::Result<std::size_t> NumaDebug::free_store(const core::Caller& caller, std::string_view in) {
  if (!caller.capable(core::Capability::SysAdmin)) return core::Errno{EPERM};
  auto id = core::kstrtoull(in, 10);
  if (!id) {
    env_.log(&caller, "numa", "free", "EINVAL", {{"line", core::strip_newline(in)}});
    return kInval;
  }
  auto a = model_->free(*id);
  if (!a) {
    env_.log(&caller, "numa", "free", a.error().name(), {{"id", *id}});
    return a.error();
  }
  env_.log(&caller, "numa", "free", "OK", {{"id", a->id}, {"pages", a->pages}});
  return in.size();
}

core::Status NumaDebug::last_alloc_id_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", model_->last_alloc_id());
  return {};
}

core::Status NumaDebug::allocations_show(std::string& out) const {
  for (const Allocation& a : model_->allocations())
    out += allocation_string(a, model_->nr_node_ids()) + "\n";
  return {};
}

// mm/page_alloc.c build_zonelists: pr_info("Fallback order for Node %d: ",
// local_node); pr_cont("%d ", node) per node; pr_cont("\n").
core::Status NumaDebug::zonelists_show(std::string& out) const {
  for (int nid = 0; nid < model_->nr_node_ids(); ++nid) {
    out += fmt::format("Fallback order for Node {}: ", nid);
    for (int n : model_->zonelist(nid)) out += fmt::format("{} ", n);
    out += "\n";
  }
  return {};
}

}  // namespace vsysfs::devices
