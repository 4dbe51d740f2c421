// The [numa] section of a machine description: builds the NumaModel, the
// node and CPU directories (numa_node.hpp, cpu.hpp) and the workload knobs
// (numa_debug.hpp). Keys:
//
//   [numa]
//   distance = [[10, 21], [21, 10]]   SLIT, one row per node (default 10/20)
//   threads_per_core = 2              hardware threads per core (default 1)
//   possible_cpus = 16                nr_cpu_ids (default: highest CPU + 1)
//   nr_cpus = 8192                    NR_CPUS, for kernel_max and bin file sizes
//   offline_cpus = "3"                CPUs that start offline (never cpu0)
//   cpu_modalias = "cpu:type:x86,..." every cpuN/uevent's MODALIAS (a recorded
//                                     CPU; default: the modelled Skylake-SP's)
//   zonelist_penalty = "add1"         build_zonelists' node_load rule: add1
//                                     (current), add_countdown (2.6.18, 5.16),
//                                     assign (2.6.23-5.15)
//   pse = true                        the CPU has PSE (X86_FEATURE_PSE, cpuinfo
//                                     "pse"), so hugetlb exists (x86
//                                     hugepages_supported()); default: true, but
//                                     false on a Xen PV guest, which Xen does not
//                                     offer PSE. false: no hstate at all, no
//                                     kernel/mm/hugepages, no nodeN/hugepages, no
//                                     HugePages_* lines in nodeN/meminfo, and
//                                     hugepages_2m/hugepages_1g are errors
//   pdpe1gb = true                    the CPU has 1 GiB pages (X86_FEATURE_GBPAGES,
//                                     cpuinfo "pdpe1gb"): the hugepages-1048576kB
//                                     hstate exists, with pse (default: true, as on
//                                     every current server CPU, but false on a Xen
//                                     PV guest); false: the 2 MiB one only
//   [[numa.node]]                     one per node, node ids in order
//   cpus = "0-1,4-5"                  cpulist; "" for a CPU-less node
//   memory_mb = 8192                  0 for a memoryless node
//   hugepages_2m = 0                  persistent 2 MiB pages at boot; needs pse
//   hugepages_1g = 0                  persistent 1 GiB pages at boot (the kernel's
//                                     hugepagesz=1G hugepages=0:2,1:2 per node);
//                                     needs pse and pdpe1gb; taken before the
//                                     2 MiB ones
//   package = 0                       physical package (default: the node id)
//   memory_kb = 10053448              instead of memory_mb: a recorded MemTotal
//   memory_blocks = "0-23,32-199"     the node's memory block ids (a recorded
//                                     machine's layout, holes included); needs
//                                     memory_block_size_mb; the memory defaults
//                                     to the blocks' size and may not exceed it
//                                     (less: the kernel's reserved pages, spread
//                                     over the blocks)
//   [[numa.cache]]                    one per cache leaf, in index order
//                                     (cpuN/cache/indexM); none: the default,
//                                     a Skylake-SP core (L1d/L1i 32 KiB 8-way,
//                                     L2 1 MiB 16-way per core, L3 1.375 MiB
//                                     per core 11-way per package)
//   level = 1                         1..4
//   type = "Data"                     Data, Instruction or Unified
//   size_kb = 32                      a whole number of sets
//   ways = 8                          ways_of_associativity
//   line_size = 64                    coherency_line_size (default 64)
//   partition = 1                     physical_line_partition (default 1)
//   shared = "core"                   "core" (the core's threads) or "package"
//   memory_block_size_mb = 128        devices/system/memory/block_size_bytes: a
//                                     power of two, 128..2048 (default: x86
//                                     probe_memory_block_size, 128 MiB below
//                                     64 GiB of memory, else 2 GiB)
//   auto_online_blocks = "offline"    offline, online, online_kernel, online_movable
//   [numa.vulnerabilities]            devices/system/cpu/vulnerabilities/NAME
//   meltdown = "Not affected"         overrides one file's line (the 6.12 names;
//                                     defaults: a Skylake-SP, cpu_cache.cpp)
//
// A machine without [numa] still has devices/system/node/node0 and
// devices/system/cpu, as every kernel does (without a SRAT, x86
// numa_init falls back to dummy_numa_init: one node with all CPUs and all
// memory). Its default topology:
//   CPUs     [net] nr_cpu_ids (default 4), one thread per core
//   nodes    [net] nr_node_ids (default 1): the CPUs and memory split in
//            equal contiguous parts, one package per node
//   memory   [xen] memory when the machine is a Xen guest (its boot
//            memory), else 4 GiB
// so that the sections reading nr_cpu_ids/nr_node_ids from the model
// agree with what they declare.

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "core/parse.hpp"
#include "devices/machine/machine.hpp"
#include "devices/machine/snapshot.hpp"
#include "devices/machine/subsys_bus.hpp"
#include "devices/numa/cpu.hpp"
#include "devices/numa/cpuidle.hpp"
#include "devices/numa/hugetlb.hpp"
#include "devices/numa/ksm.hpp"
#include "devices/numa/memory_block.hpp"
#include "devices/numa/numa_debug.hpp"
#include "devices/numa/numa_node.hpp"

namespace vsysfs::devices {
namespace {

std::vector<unsigned> parse_cpu_list(const core::ConfigValue& v, unsigned nbits) {
  auto bits = core::bitmap_parselist(v.as_string(), nbits);
  if (!bits) v.fail(fmt::format("not a CPU list below {} ({})", nbits, bits.error().name()));
  return *bits;
}

NumaConfig parse_numa_section(const core::ConfigValue& sec,
                              std::vector<std::vector<unsigned>>& block_ids) {
  NumaConfig c;
  c.nr_cpus = static_cast<unsigned>(sec.get_uint("nr_cpus", 8192));
  if (c.nr_cpus == 0 || c.nr_cpus > 65536) sec.require("nr_cpus").fail("must be 1..65536");
  c.threads_per_core = static_cast<unsigned>(sec.get_uint("threads_per_core", 1));
  if (c.threads_per_core == 0 || c.threads_per_core > 8)
    sec.require("threads_per_core").fail("must be 1..8");
  c.possible_cpus = static_cast<unsigned>(sec.get_uint("possible_cpus", 0));
  if (const auto* v = sec.find("zonelist_penalty")) {
    const std::string& p = v->as_string();
    if (p == "add1") {
      c.node_load = NodeLoadPenalty::Add1;
    } else if (p == "add_countdown") {
      c.node_load = NodeLoadPenalty::AddCountdown;
    } else if (p == "assign") {
      c.node_load = NodeLoadPenalty::Assign;
    } else {
      v->fail("one of add1 (current kernels), add_countdown (2.6.18, 5.16), assign (2.6.23-5.15)");
    }
  }
  if (const auto* off = sec.find("offline_cpus")) c.offline_cpus = parse_cpu_list(*off, c.nr_cpus);
  if (const auto* v = sec.find("pse")) {
    if (v->type() != core::ConfigValue::Type::Boolean) v->fail("must be true or false");
    c.pse = v->as_bool();
  }
  if (const auto* v = sec.find("pdpe1gb")) {
    if (v->type() != core::ConfigValue::Type::Boolean) v->fail("must be true or false");
    c.gbpages = v->as_bool();
  }
  // What cpu_uevent prints after MODALIAS= (arch_print_cpu_modalias: on
  // x86 "cpu:type:x86,venVVVVfamFFFFmodMMMM:feature:,XXXX..."), as
  // vsysfs-record copies it from a real machine. The uevent file holds it
  // within a page with "MODALIAS=" and the newline.
  if (const auto* v = sec.find("cpu_modalias")) {
    const std::string& m = v->as_string();
    const bool printable =
        std::all_of(m.begin(), m.end(), [](char ch) { return ch > ' ' && ch < 0x7f; });
    if (!m.starts_with("cpu:type:") || !printable || m.size() > 4000)
      v->fail("a cpu modalias (\"cpu:type:...\", printable, no blanks, at most 4000 bytes)");
    c.cpu_modalias = m;
  }

  const auto& nodes = sec.get_array("node");
  if (nodes.empty()) sec.fail("needs at least one [[numa.node]]");
  std::vector<bool> block_used;
  for (const auto& n : nodes) {
    NumaConfig::Node node;
    if (const auto* cpus = n.find("cpus")) node.cpus = parse_cpu_list(*cpus, c.nr_cpus);
    std::uint64_t default_mb = 0;
    block_ids.emplace_back();
    if (const auto* blocks = n.find("memory_blocks")) {
      const auto* size = sec.find("memory_block_size_mb");
      if (!size) blocks->fail("needs [numa] memory_block_size_mb");
      constexpr unsigned kMaxBlocks = 1U << 20;  // 128 TiB of 128 MiB blocks
      auto ids = core::bitmap_parselist(blocks->as_string(), kMaxBlocks);
      if (!ids)
        blocks->fail(fmt::format("not a block list below {} ({})", kMaxBlocks, ids.error().name()));
      if (ids->empty()) blocks->fail("a node with memory_blocks has at least one");
      block_used.resize(kMaxBlocks);
      for (unsigned id : *ids) {
        if (block_used[id])
          blocks->fail(fmt::format("memory block {} belongs to another node", id));
        block_used[id] = true;
      }
      default_mb = ids->size() * size->as_uint();
      block_ids.back() = std::move(*ids);
    }
    if (n.has("memory_mb") && n.has("memory_kb"))
      n.require("memory_kb").fail("memory_mb or memory_kb, not both");
    const std::uint64_t mb = n.get_uint("memory_mb", default_mb);
    if (mb > (1ULL << 32)) n.require("memory_mb").fail("more than 4 PiB");
    const std::uint64_t kb = n.get_uint("memory_kb", mb * 1024);
    if (kb > (1ULL << 42)) n.require("memory_kb").fail("more than 4 PiB");
    if (n.has("memory_blocks") && kb > default_mb * 1024)
      n.require(n.has("memory_kb") ? "memory_kb" : "memory_mb")
          .fail("more than the node's memory_blocks hold");
    node.present_pages = kb / kPageKiB;
    node.hugepages = n.get_uint("hugepages_2m", 0);
    node.hugepages_1g = n.get_uint("hugepages_1g", 0);
    node.package = static_cast<int>(n.get_int("package", -1));
    c.nodes.push_back(std::move(node));
  }
  for (const auto& leaf : sec.get_array("cache")) {
    CacheLeaf l;
    l.level = static_cast<unsigned>(leaf.require("level").as_uint());
    const std::string& t = leaf.require("type").as_string();
    if (t == "Data") {
      l.type = CacheType::Data;
    } else if (t == "Instruction") {
      l.type = CacheType::Instruction;
    } else if (t == "Unified") {
      l.type = CacheType::Unified;
    } else {
      leaf.require("type").fail("one of Data, Instruction, Unified");
    }
    l.size_kib = leaf.require("size_kb").as_uint();
    if (l.size_kib > (1ULL << 32)) leaf.require("size_kb").fail("more than 4 TiB");
    l.ways =
        static_cast<unsigned>(std::min<std::uint64_t>(leaf.require("ways").as_uint(), 1U << 16));
    l.line_size =
        static_cast<unsigned>(std::min<std::uint64_t>(leaf.get_uint("line_size", 64), 1U << 16));
    l.partition =
        static_cast<unsigned>(std::min<std::uint64_t>(leaf.get_uint("partition", 1), 1U << 16));
    const std::string shared = leaf.get_string("shared", l.level >= 3 ? "package" : "core");
    if (shared != "core" && shared != "package")
      leaf.require("shared").fail("\"core\" or \"package\"");
    l.per_package = shared == "package";
    c.caches.push_back(l);
  }
  for (const auto& row : sec.get_array("distance")) {
    std::vector<int> r;
    for (const auto& d : row.as_array()) {
      const std::int64_t v = d.as_int();
      if (v < 0 || v > 255) d.fail("a distance is 0..255 (u8 in the SLIT)");
      r.push_back(static_cast<int>(v));
    }
    c.distance.push_back(std::move(r));
  }
  return c;
}

// [xen.hypervisor] guest_type as the Xen builder reads it ("PV" for domid 0,
// else "HVM", when unset); "" for a machine that is not a Xen guest. Only
// peeked at: the Xen builder validates it.
std::string xen_guest_type(const core::ConfigValue& root) {
  const auto* xen = root.find("xen");
  if (!xen) return "";
  if (const auto* hv = xen->find("hypervisor"))
    if (const auto* gt = hv->find("guest_type");
        gt && gt->type() == core::ConfigValue::Type::String)
      return gt->as_string();
  // The hardware domain (domid 0) defaults to PV, as in [xen.hypervisor].
  const auto* domid = xen->find("domid");
  const bool dom0 =
      domid && domid->type() == core::ConfigValue::Type::Integer && domid->as_uint() == 0;
  return dom0 ? "PV" : "HVM";
}

// The default topology of a machine without [numa] (see the header).
// Keys of other sections are only peeked at here; their own builders
// validate them (a bad value there is reported by its owner).
NumaConfig default_numa_config(const core::ConfigValue& root) {
  unsigned cpus = 4, nodes = 1;
  std::uint64_t kib = 4ULL << 20;
  if (const auto* net = root.find("net")) {
    if (const auto* v = net->find("nr_cpu_ids"); v && v->type() == core::ConfigValue::Type::Integer)
      cpus = static_cast<unsigned>(std::clamp<std::int64_t>(v->as_int(), 1, 4096));
    if (const auto* v = net->find("nr_node_ids");
        v && v->type() == core::ConfigValue::Type::Integer)
      nodes = static_cast<unsigned>(std::clamp<std::int64_t>(v->as_int(), 1, 1024));
  }
  if (const auto* xen = root.find("xen")) {
    if (const auto* v = xen->find("memory")) {
      // At most a node's 4 PiB (parse_numa_section); build_xen reports
      // what this leaves at the default.
      constexpr std::uint64_t kMaxKiB = 1ULL << 42;
      if (v->type() == core::ConfigValue::Type::Integer && v->as_int() > 0 &&
          v->as_uint() <= kMaxKiB) {
        kib = v->as_uint();
      } else if (v->type() == core::ConfigValue::Type::String) {
        std::size_t used = 0;
        // Only what build_xen's size_pages takes (a K/M/G/T suffix); it
        // reports anything else.
        const std::string& str = v->as_string();
        const std::uint64_t bytes = core::memparse(str, &used);
        if (used == str.size() && bytes >= 1024 && !str.empty() &&
            std::string_view("KkMmGgTt").find(str.back()) != std::string_view::npos &&
            bytes / 1024 <= kMaxKiB)
          kib = bytes / 1024;
      }
    }
  }
  nodes = std::min(nodes, cpus);  // every default node has a CPU
  NumaConfig c;
  c.implicit = true;
  const std::uint64_t pages = kib / kPageKiB;
  for (unsigned nid = 0; nid < nodes; ++nid) {
    NumaConfig::Node n;
    for (unsigned cpu = nid * cpus / nodes; cpu < (nid + 1) * cpus / nodes; ++cpu)
      n.cpus.push_back(cpu);
    n.present_pages = pages / nodes + (nid == 0 ? pages % nodes : 0);
    c.nodes.push_back(std::move(n));
  }
  c.possible_cpus = cpus;
  return c;
}

// The NUMA section's part of a machine snapshot (docs/snapshot.md): the
// model (pages, numastat, hugepages, CPU online state, allocations), ksm,
// the memory blocks' online flags, and the settings that are knobs
// (cpuidle governor and per-state disable, overcommit hugepages where
// hugetlb exists (save_knobs skips a missing path), auto_online_blocks,
// each block's power/control, the buses' drivers_autoprobe). A CPU whose
// online state differs is hotplugged through its own online file first,
// which adds or removes its cpuidle and cache directories as a hotplug
// does; the model record then overwrites what that changed.
void register_numa_state(MachineContext& ctx, std::shared_ptr<NumaModel> model,
                         std::shared_ptr<Ksm> ksm,
                         std::vector<std::shared_ptr<MemoryBlock>> blocks) {
  core::Tree& tree = ctx.tree;
  auto knob_nodes = std::make_shared<KnobNodes>();
  const auto knob_paths = [&tree, model, knob_nodes] {
    std::vector<std::string> paths{"bus/node/drivers_autoprobe",
                                   "bus/cpu/drivers_autoprobe",
                                   "bus/memory/drivers_autoprobe",
                                   "devices/system/cpu/cpuidle/current_governor",
                                   "kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages",
                                   "devices/system/memory/auto_online_blocks"};
    for (unsigned cpu : model->online_cpus())
      for (unsigned st = 0;; ++st) {
        const auto path = fmt::format("devices/system/cpu/cpu{}/cpuidle/state{}/disable", cpu, st);
        if (!knob_nodes->find(tree, path)) break;
        paths.push_back(path);
      }
    auto mem = tree.list(tree.resolve("devices/system/memory"));
    if (mem)
      for (const auto& e : *mem)
        if (e.name.rfind("memory", 0) == 0)
          paths.push_back("devices/system/memory/" + e.name + "/power/control");
    return paths;
  };
  auto save = [model, ksm, blocks, &tree, knob_paths, knob_nodes](core::StateWriter& w) {
    model->save_state(w);
    ksm->save_state(w);
    for (const auto& b : blocks)
      w.put_bool(fmt::format("memory{}.online", b->id()), b->online_flag());
    save_knobs(tree, knob_paths(), w, knob_nodes.get());
  };
  auto load = [model, ksm, blocks, &tree, knob_nodes](const core::StateReader& r) -> core::Status {
    // Check what is read here before anything changes.
    auto online_s = r.str("numa.cpu_online");
    if (!online_s) return core::Errno{EINVAL};
    std::vector<bool> online;
    for (std::size_t i = 0; i < online_s->size(); i += 2) online.push_back((*online_s)[i] == '1');
    std::vector<bool> block_online;
    for (const auto& b : blocks) {
      auto v = r.boolean(fmt::format("memory{}.online", b->id()));
      if (!v) return core::Errno{EINVAL};
      block_online.push_back(*v);
    }
    // CPU hotplug: online first, so that the last online CPU is never
    // asked to go.
    for (bool want : {true, false})
      for (unsigned cpu = 0; cpu < online.size(); ++cpu) {
        if (online[cpu] != want || model->cpu_online(cpu) == want) continue;
        const auto node = tree.find(fmt::format("devices/system/cpu/cpu{}/online", cpu));
        if (!node || !node->store(core::Caller::kernel(), want ? "1" : "0"))
          return core::Errno{EINVAL};
      }
    if (auto st = model->load_state(r); !st) return st;
    if (auto st = ksm->load_state(r); !st) return st;
    for (std::size_t i = 0; i < blocks.size(); ++i) blocks[i]->set_online_flag(block_online[i]);
    return load_knobs(tree, r, knob_nodes.get());
  };
  // Version 2: the 1 GiB pools and cursors (numa.nodeN.huge1g_*,
  // numa.huge1g.*).
  ctx.machine.register_state({.name = "numa",
                              .version = 2,
                              .save = save,
                              .load = load,
                              .loads_into_new_boot = {},
                              .section = {}});
}

// Every memory block is a device of about a dozen files. The kernel's only
// limit is the physical address space (4 PiB with 5-level paging); the
// daemon's is its memory, so a machine may have at most kMaxMemoryBlocks
// (128 TiB in 2 GiB blocks; the largest example machine has 48 GiB). The
// count is checked before any block is made: a machine file asking for
// exabytes is an error naming the key, not a mount that never finishes.
constexpr std::uint64_t kMaxMemoryBlocks = 65536;

void check_memory_block_count(const core::ConfigValue& root, const core::ConfigValue& sec,
                              const NumaModel& model, std::uint64_t block_mb,
                              const std::vector<std::vector<unsigned>>& block_ids) {
  std::uint64_t total = 0;  // bytes; at most 1024 nodes of 4 PiB: no overflow
  for (int nid = 0; nid < model.nr_node_ids(); ++nid)
    total += model.node(nid).present * kPageKiB * 1024;
  const std::uint64_t block = block_mb ? block_mb << 20 : default_memory_block_bytes(total);
  std::uint64_t count = 0;
  for (int nid = 0; nid < model.nr_node_ids(); ++nid) {
    const auto i = static_cast<std::size_t>(nid);
    const std::uint64_t bytes = model.node(nid).present * kPageKiB * 1024;
    count += i < block_ids.size() && !block_ids[i].empty() ? block_ids[i].size()
                                                           : (bytes + block - 1) / block;
  }
  if (count <= kMaxMemoryBlocks) return;
  const std::string why =
      fmt::format("{} KiB of memory is {} memory blocks of {} MiB; a machine has at most {}",
                  total / 1024, count, block >> 20, kMaxMemoryBlocks);
  // Without [numa] the memory is [xen]'s (default_numa_config).
  if (!root.has("numa"))
    if (const auto* xen = root.find("xen"); xen && xen->has("memory"))
      xen->require("memory").fail(why);
  sec.fail(why);
}

void build_numa(MachineContext& ctx, const core::ConfigValue& sec) {
  std::shared_ptr<NumaModel> model;
  std::vector<std::vector<unsigned>> block_ids;  // per node; empty: laid out in order
  try {
    NumaConfig config =
        ctx.root.has("numa") ? parse_numa_section(sec, block_ids) : default_numa_config(ctx.root);
    // A Xen PV guest sees neither pse nor pdpe1gb: Xen offers PSE to HVM
    // guests only and PAGE1GB to HAP HVM guests only
    // (xen/include/public/arch-x86/cpufeatureset.h marks them "S" and
    // "H"), so without the keys such a guest has no hugetlb at all
    // (hugetlb_init returns early: hugepages_supported() is
    // boot_cpu_has(X86_FEATURE_PSE)) and no 1 GiB hstate.
    if (xen_guest_type(ctx.root) == "PV") {
      const bool numa = ctx.root.has("numa");
      if (!(numa && sec.has("pse"))) config.pse = false;
      if (!(numa && sec.has("pdpe1gb"))) config.gbpages = false;
    }
    model = std::make_shared<NumaModel>(std::move(config));
  } catch (const std::invalid_argument& e) {
    sec.fail(e.what());
  }
  std::vector<std::shared_ptr<void>> keep;

  // subsys_system_register of the node, cpu and memory buses.
  for (const char* bus : {"node", "cpu", "memory"})
    add_subsys_bus(ctx.env, ctx.tree, ctx.machine, bus);
  auto root = std::make_shared<NodeRoot>(model);
  ctx.tree.add_device<NodeRoot>("devices/system/node", root, NodeRoot::groups());
  keep.push_back(root);
  for (int nid = 0; nid < model->nr_node_ids(); ++nid) {
    auto node = std::make_shared<NumaNode>(ctx.env, model, nid);
    const std::string path = fmt::format("devices/system/node/node{}", nid);
    ctx.tree.add_device<NumaNode>(path, node, NumaNode::groups(*model));
    for (unsigned cpu : model->node_cpus(nid))
      ctx.tree.add_symlink(fmt::format("{}/cpu{}", path, cpu), fmt::format("../../cpu/cpu{}", cpu));
    ctx.tree.add_symlink(path + "/subsystem", "../../../../bus/node");
    ctx.tree.add_symlink(fmt::format("bus/node/devices/node{}", nid),
                         fmt::format("../../../devices/system/node/node{}", nid));
    keep.push_back(node);
  }
  CpuVulnerabilities::Values vulns = CpuVulnerabilities::defaults();
  if (ctx.root.has("numa")) {
    if (const auto* table = sec.find("vulnerabilities")) {
      for (const std::string& name : table->keys()) {
        const auto it =
            std::find(CpuVulnerabilities::kNames.begin(), CpuVulnerabilities::kNames.end(), name);
        if (it == CpuVulnerabilities::kNames.end())
          table->require(name).fail(fmt::format("not a Linux 6.12 vulnerability file (known: {})",
                                                fmt::join(CpuVulnerabilities::kNames, ", ")));
        vulns[static_cast<std::size_t>(it - CpuVulnerabilities::kNames.begin())] =
            require_line_text(table->require(name));
      }
    }
  }
  // cpuidle: intel_idle on bare metal; a Xen HVM/PVH guest registers no
  // driver ("none"); a Xen PV guest disables cpuidle (xen_arch_setup
  // disable_cpuidle) and has no cpuidle directory.
  std::shared_ptr<CpuidleRoot> cpuidle;
  if (ctx.root.find("xen")) {
    if (xen_guest_type(ctx.root) != "PV") cpuidle = std::make_shared<CpuidleRoot>(ctx.env, "none");
  } else {
    cpuidle = std::make_shared<CpuidleRoot>(ctx.env, "intel_idle");
  }
  // [numa] cpuidle_driver overrides the machine kind's choice: "intel_idle",
  // "none" (no driver registered), or "off" (cpuidle.off=1: no cpuidle
  // directory at all; a recording then serves the recorded one).
  if (ctx.root.has("numa"))
    if (const auto* drv = sec.find("cpuidle_driver")) {
      if (drv->type() != core::ConfigValue::Type::String)
        drv->fail("must be \"intel_idle\", \"none\" or \"off\"");
      const std::string& d = drv->as_string();
      if (d == "intel_idle" || d == "none")
        cpuidle = std::make_shared<CpuidleRoot>(ctx.env, d);
      else if (d == "off")
        cpuidle.reset();
      else
        drv->fail("must be \"intel_idle\", \"none\" or \"off\"");
    }
  add_cpu_devices(ctx.env, ctx.tree, model, std::move(vulns), keep, std::move(cpuidle));
  add_uevent_only_device(ctx.env, ctx.tree, ctx.machine, "devices/system/cpu");
  add_uevent_only_device(ctx.env, ctx.tree, ctx.machine, "devices/system/node");

  std::uint64_t block_mb = 0;  // the default for the machine's memory
  OnlineType auto_online = OnlineType::Offline;
  if (ctx.root.has("numa")) {
    if (const auto* v = sec.find("memory_block_size_mb")) {
      block_mb = v->as_uint();
      if (block_mb < 128 || block_mb > 2048 || (block_mb & (block_mb - 1)) != 0)
        v->fail("a power of two from 128 to 2048 (x86 MIN_MEMORY_BLOCK_SIZE..MAX_BLOCK_SIZE)");
    }
    if (const auto* v = sec.find("auto_online_blocks")) {
      const auto t = parse_online_type(v->as_string());
      if (!t) v->fail("one of offline, online, online_kernel, online_movable");
      auto_online = *t;
    }
  }
  if (std::any_of(block_ids.begin(), block_ids.end(), [](const auto& b) { return !b.empty(); }))
    for (std::size_t nid = 0; nid < block_ids.size(); ++nid)
      if (block_ids[nid].empty() && model->node(static_cast<int>(nid)).present > 0)
        sec.get_array("node")[nid].fail(
            "memory_blocks on one node needs them on every node with memory");
  check_memory_block_count(ctx.root, sec, *model, block_mb, block_ids);
  std::vector<std::shared_ptr<MemoryBlock>> blocks;
  add_memory_blocks(ctx.env, ctx.tree, model, block_mb * 1024 * 1024, auto_online, keep, block_ids,
                    &blocks);

  // hugetlb_sysfs_init: kernel/mm/hugepages/hugepages-<size>kB for every
  // hstate (for_each_hstate), over the nodes' pools. Without PSE
  // hugetlb_init returns before it: no kernel/mm/hugepages at all.
  for (HugeSize size : {HugeSize::k2M, HugeSize::k1G}) {
    if (!model->hstate_exists(size)) continue;
    auto hugetlb = std::make_shared<HugetlbGlobal>(ctx.env, model, size);
    ctx.tree.add_device<HugetlbGlobal>("kernel/mm/hugepages/" + HugetlbGlobal::dir_name(size),
                                       hugetlb, HugetlbGlobal::groups(size));
    keep.push_back(hugetlb);
  }

  // ksm_init: kernel/mm/ksm.
  auto ksm = std::make_shared<Ksm>(ctx.env);
  ctx.tree.add_device<Ksm>("kernel/mm/ksm", ksm, Ksm::groups());
  keep.push_back(ksm);

  auto debug = std::make_shared<NumaDebug>(ctx.env, model);
  ctx.tree.add_device<NumaDebug>("kernel/debug/vsysfs/numa", debug, NumaDebug::groups());
  keep.push_back(debug);

  register_numa_state(ctx, model, ksm, std::move(blocks));

  // A boot: the memory the last boot's processes held (numa/alloc's
  // allocations) is gone; they are freed, oldest first, before the
  // balloon's hook (registered later: Xen builds after NUMA) rebuilds.
  std::weak_ptr<NumaModel> weak_model = model;
  ctx.machine.register_boot_hook([weak_model, &env = ctx.env] {
    auto m = weak_model.lock();
    if (!m) return;
    std::uint64_t freed = 0, pages = 0;
    for (const Allocation& a : m->allocations()) {
      if (!m->free(a.id)) continue;
      ++freed;
      pages += a.pages;
    }
    env.log(nullptr, "numa", "boot", "OK", {{"freed", freed}, {"pages", pages}});
  });

  for (auto& k : keep) ctx.machine.keep(std::move(k));
  ctx.machine.keep(model);
  set_numa_model(ctx.machine, model);

  std::vector<core::EventField> data{{"nodes", model->nr_node_ids()}, {"cpus", model->nr_cpu_ids()}};
  for (int nid = 0; nid < model->nr_node_ids(); ++nid)
    data.emplace_back(fmt::format("zonelist{}", nid), fmt::format("{}", fmt::join(model->zonelist(nid), " ")));
  ctx.env.log(nullptr, "numa", "build_all_zonelists", "OK", std::move(data));
}

// Before the devices that move pages in these nodes (the Xen balloon) and
// those whose widths are the machine's (net). Negative: it runs on every
// machine, with [numa] or the default topology.
const SectionRegistrar kRegistrar{"numa", &build_numa, -10};

}  // namespace
}  // namespace vsysfs::devices
