// NumaModel's part of a machine snapshot (docs/snapshot.md "Device state").
#include <cerrno>
#include <sstream>

#include <fmt/format.h>

#include "devices/numa/numa_model.hpp"

namespace vsysfs::devices {
namespace {

std::string join_list(const auto& v) {
  return v.empty() ? "-" : fmt::format("{}", fmt::join(v, ","));
}

template <typename T>
bool split_list(const std::string& s, std::vector<T>& out) {
  if (s == "-") return true;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::stringstream one(item);
    T v{};
    if (!(one >> v) || !one.eof()) return false;
    out.push_back(v);
  }
  return true;
}

// "CPU MODE NODES KIND PAGES PER_NODE" (lists comma-separated, "-" empty).
std::string encode_alloc(const Allocation& a) {
  return fmt::format("{} {} {} {} {} {}", a.cpu, static_cast<int>(a.policy.mode),
                     join_list(a.policy.nodes), static_cast<int>(a.kind), a.pages,
                     join_list(a.per_node));
}

bool decode_alloc(const std::string& s, std::uint64_t id, int nodes, Allocation& a) {
  std::stringstream in(s);
  int mode = 0, kind = 0;
  std::string nodes_s, per_node_s;
  if (!(in >> a.cpu >> mode >> nodes_s >> kind >> a.pages >> per_node_s)) return false;
  if (mode < 0 || mode > static_cast<int>(PolicyMode::Interleave)) return false;
  if (kind < 0 || kind >= kPageKinds) return false;
  a.id = id;
  a.policy.mode = static_cast<PolicyMode>(mode);
  a.kind = static_cast<PageKind>(kind);
  if (!split_list(nodes_s, a.policy.nodes) || !split_list(per_node_s, a.per_node)) return false;
  for (int n : a.policy.nodes)
    if (n < 0 || n >= nodes) return false;
  return a.per_node.size() == static_cast<std::size_t>(nodes);
}

}  // namespace

void NumaModel::save_state(core::StateWriter& w) const {
  core::MutexLock lock(mu_);
  for (std::size_t n = 0; n < pgdat_.size(); ++n) {
    const Pgdat& p = pgdat_[n];
    const auto k = [n](std::string_view f) { return fmt::format("numa.node{}.{}", n, f); };
    w.put_u64(k("present"), p.present);
    w.put_u64(k("free"), p.free);
    w.put_str(k("used"), join_list(p.used));
    w.put_u64(k("huge_nr"), p.huge[0].nr);
    w.put_u64(k("huge_free"), p.huge[0].free);
    w.put_u64(k("huge1g_nr"), p.huge[1].nr);
    w.put_u64(k("huge1g_free"), p.huge[1].free);
    w.put_u64(k("kernel"), p.kernel);
    w.put_bool(k("n_memory"), p.n_memory);
    w.put_str(k("numastat"), fmt::format("{},{},{},{},{},{}", p.stat.numa_hit, p.stat.numa_miss,
                                         p.stat.numa_foreign, p.stat.interleave_hit,
                                         p.stat.local_node, p.stat.other_node));
  }
  std::vector<int> online;
  for (bool b : online_) online.push_back(b ? 1 : 0);
  w.put_str("numa.cpu_online", join_list(online));
  for (const auto& [id, a] : allocations_)
    w.put_str(fmt::format("numa.alloc.{}", id), encode_alloc(a));
  w.put_u64("numa.next_id", next_id_);
  w.put_u64("numa.last_id", last_id_);
  w.put_i64("numa.next_nid_to_alloc", next_nid_to_alloc_[0]);
  w.put_i64("numa.next_nid_to_free", next_nid_to_free_[0]);
  w.put_i64("numa.huge1g.next_nid_to_alloc", next_nid_to_alloc_[1]);
  w.put_i64("numa.huge1g.next_nid_to_free", next_nid_to_free_[1]);
}

core::Status NumaModel::load_state(const core::StateReader& r) {
  const int nodes = nr_node_ids();
  std::vector<Pgdat> pgdat(static_cast<std::size_t>(nodes));
  for (int n = 0; n < nodes; ++n) {
    Pgdat& p = pgdat[static_cast<std::size_t>(n)];
    const auto k = [n](std::string_view f) { return fmt::format("numa.node{}.{}", n, f); };
    auto present = r.u64(k("present"));
    auto free = r.u64(k("free"));
    auto used = r.str(k("used"));
    auto huge_nr = r.u64(k("huge_nr"));
    auto huge_free = r.u64(k("huge_free"));
    auto huge1g_nr = r.u64(k("huge1g_nr"));
    auto huge1g_free = r.u64(k("huge1g_free"));
    auto kernel = r.u64(k("kernel"));
    auto n_memory = r.boolean(k("n_memory"));
    auto stat = r.str(k("numastat"));
    if (!present || !free || !used || !huge_nr || !huge_free || !huge1g_nr || !huge1g_free ||
        !kernel || !n_memory || !stat)
      return core::Errno{EINVAL};
    // A pool never has more free pages than pages, and a machine without
    // GBPAGES (or without PSE: no hugetlb) has no 1 GiB (2 MiB) pool to
    // restore.
    if (*huge_free > *huge_nr || *huge1g_free > *huge1g_nr || (*huge1g_nr && !gigantic_pages()) ||
        (*huge_nr && !hugetlb_supported()))
      return core::Errno{EINVAL};
    std::vector<std::uint64_t> u, st;
    if (!split_list(*used, u) || u.size() != kPageKinds) return core::Errno{EINVAL};
    if (!split_list(*stat, st) || st.size() != 6) return core::Errno{EINVAL};
    p.present = *present;
    p.free = *free;
    std::copy(u.begin(), u.end(), p.used.begin());
    p.huge[0] = {*huge_nr, *huge_free};
    p.huge[1] = {*huge1g_nr, *huge1g_free};
    p.kernel = *kernel;
    p.n_memory = *n_memory;
    p.stat = {st[0], st[1], st[2], st[3], st[4], st[5]};
  }
  if (r.has(fmt::format("numa.node{}.present", nodes))) return core::Errno{EINVAL};
  auto online_s = r.str("numa.cpu_online");
  std::vector<int> online;
  if (!online_s || !split_list(*online_s, online)) return core::Errno{EINVAL};
  std::map<std::uint64_t, Allocation> allocs;
  constexpr std::string_view kAlloc = "numa.alloc.";
  for (const auto& key : r.keys_with_prefix(kAlloc)) {
    std::uint64_t id = 0;
    std::stringstream ids(key.substr(kAlloc.size()));
    Allocation a;
    if (!(ids >> id) || !ids.eof() || !decode_alloc(*r.str(key), id, nodes, a))
      return core::Errno{EINVAL};
    allocs.emplace(id, std::move(a));
  }
  auto next_id = r.u64("numa.next_id");
  auto last_id = r.u64("numa.last_id");
  auto next_alloc = r.i64("numa.next_nid_to_alloc");
  auto next_free = r.i64("numa.next_nid_to_free");
  auto next_alloc_1g = r.i64("numa.huge1g.next_nid_to_alloc");
  auto next_free_1g = r.i64("numa.huge1g.next_nid_to_free");
  if (!next_id || !last_id || !next_alloc || !next_free || !next_alloc_1g || !next_free_1g)
    return core::Errno{EINVAL};
  for (auto cursor : {*next_alloc, *next_free, *next_alloc_1g, *next_free_1g})
    if (cursor < 0 || cursor >= nodes) return core::Errno{EINVAL};

  core::MutexLock lock(mu_);
  if (online.size() != online_.size()) return core::Errno{EINVAL};
  for (std::size_t n = 0; n < pgdat.size(); ++n) pgdat[n].zonelist = {};
  pgdat_ = std::move(pgdat);
  for (std::size_t c = 0; c < online.size(); ++c) online_[c] = online[c] != 0;
  allocations_ = std::move(allocs);
  next_id_ = *next_id;
  last_id_ = *last_id;
  next_nid_to_alloc_ = {static_cast<int>(*next_alloc), static_cast<int>(*next_alloc_1g)};
  next_nid_to_free_ = {static_cast<int>(*next_free), static_cast<int>(*next_free_1g)};
  build_all_zonelists_locked();
  return {};
}

}  // namespace vsysfs::devices
