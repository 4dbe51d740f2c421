#include "devices/numa/cpu.hpp"

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/numa/cpuidle.hpp"
#include "devices/numa/numa_node.hpp"

namespace vsysfs::devices {
namespace {

// drivers/base/cpu.c cpu_root_attrs: online/possible/present via
// cpu_attrs[] (print_cpus_map), offline (print_cpus_offline), kernel_max.
constexpr core::DeviceAttribute<CpuRoot> kRootAttrs[] = {
    VSYSFS_ATTR_RO(CpuRoot, online),
    VSYSFS_ATTR_RO(CpuRoot, possible),
    VSYSFS_ATTR_RO(CpuRoot, present),
    VSYSFS_ATTR_RO(CpuRoot, offline),
    VSYSFS_ATTR_RO(CpuRoot, kernel_max),
};
constexpr core::AttributeGroup<CpuRoot> kRootGroups[] = {{.name = "", .attrs = kRootAttrs}};

constexpr core::DeviceAttribute<CpuDevice> kCpuAttrs[] = {
    VSYSFS_ATTR_RW(CpuDevice, online),
    VSYSFS_ATTR_RW(CpuDevice, uevent),
};

// The modelled processor (the default caches and vulnerabilities are a
// Skylake-SP's, as the SMBIOS type 4 signature 0x50654): vendor
// X86_VENDOR_INTEL, family 6, model 0x55, and its CPUID.1:EDX feature word
// (x86_capability[CPUID_1_EDX], feature numbers 0..31).
constexpr unsigned kCpuVendor = 0, kCpuFamily = 6, kCpuModel = 0x55;
constexpr std::uint32_t kCpuid1Edx = 0xBFEBFBFF;

// Kernel quirk: cpu0 is not hotpluggable on x86, so device_add never
// creates its "online" file (dev->offline_disabled).
mode_t cpu_attr_visible(const CpuDevice& dev, std::string_view name, mode_t mode) {
  return (name == "online" && dev.cpu() == 0) ? 0 : mode;
}

constexpr core::AttributeGroup<CpuDevice> kCpuGroups[] = {
    {.name = "", .attrs = kCpuAttrs, .is_visible = &cpu_attr_visible},
};

// drivers/base/topology.c default_attrs, in its order.
constexpr core::DeviceAttribute<CpuDevice> kTopoAttrs[] = {
    VSYSFS_ATTR_RO(CpuDevice, physical_package_id),
    VSYSFS_ATTR_RO(CpuDevice, die_id),
    VSYSFS_ATTR_RO(CpuDevice, core_id),
};
constexpr core::BinAttribute<CpuDevice> kTopoBin[] = {
    {"core_cpus", 0444, 0, &CpuDevice::core_cpus_read, nullptr, &CpuDevice::mask_size},
    {"core_cpus_list", 0444, 0, &CpuDevice::core_cpus_list_read, nullptr, &CpuDevice::list_size},
    {"thread_siblings", 0444, 0, &CpuDevice::thread_siblings_read, nullptr, &CpuDevice::mask_size},
    {"thread_siblings_list", 0444, 0, &CpuDevice::thread_siblings_list_read, nullptr, &CpuDevice::list_size},
    {"core_siblings", 0444, 0, &CpuDevice::core_siblings_read, nullptr, &CpuDevice::mask_size},
    {"core_siblings_list", 0444, 0, &CpuDevice::core_siblings_list_read, nullptr, &CpuDevice::list_size},
    {"die_cpus", 0444, 0, &CpuDevice::die_cpus_read, nullptr, &CpuDevice::mask_size},
    {"die_cpus_list", 0444, 0, &CpuDevice::die_cpus_list_read, nullptr, &CpuDevice::list_size},
    {"package_cpus", 0444, 0, &CpuDevice::package_cpus_read, nullptr, &CpuDevice::mask_size},
    {"package_cpus_list", 0444, 0, &CpuDevice::package_cpus_list_read, nullptr, &CpuDevice::list_size},
};
constexpr core::AttributeGroup<CpuDevice> kTopoGroups[] = {
    {.name = "", .attrs = kTopoAttrs, .bin_attrs = kTopoBin},
};

std::string list_of(const std::vector<unsigned>& cpus, unsigned nbits) {
  return cpu_list_string(cpus, nbits);
}

}  // namespace

// --- CpuRoot ---

std::span<const core::AttributeGroup<CpuRoot>> CpuRoot::groups() { return kRootGroups; }

core::Status CpuRoot::online_show(core::PageBuffer& buf) const {
  buf.append(list_of(model_->online_cpus(), model_->nr_cpu_ids()));
  return {};
}

core::Status CpuRoot::possible_show(core::PageBuffer& buf) const {
  std::vector<unsigned> all;
  for (unsigned c = 0; c < model_->nr_cpu_ids(); ++c) all.push_back(c);
  buf.append(list_of(all, model_->nr_cpu_ids()));
  return {};
}

core::Status CpuRoot::present_show(core::PageBuffer& buf) const {
  buf.append(list_of(model_->present_cpus(), model_->nr_cpu_ids()));
  return {};
}

// print_cpus_offline: possible & ~online. The ",N-M" tail for CPUs beyond
// nr_cpu_ids needs total_cpus, which x86 never sets, so it never appears.
core::Status CpuRoot::offline_show(core::PageBuffer& buf) const {
  const std::vector<unsigned> online = model_->online_cpus();  // one consistent view
  std::vector<unsigned> offline;
  for (unsigned c = 0; c < model_->nr_cpu_ids(); ++c)
    if (!std::binary_search(online.begin(), online.end(), c)) offline.push_back(c);
  buf.append(list_of(offline, model_->nr_cpu_ids()));
  return {};
}

core::Status CpuRoot::kernel_max_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", model_->nr_cpus() - 1);
  return {};
}

// --- CpuDevice ---

std::span<const core::AttributeGroup<CpuDevice>> CpuDevice::groups() { return kCpuGroups; }
std::span<const core::AttributeGroup<CpuDevice>> CpuDevice::topology_groups() { return kTopoGroups; }

std::string CpuDevice::path() const { return fmt::format("devices/system/cpu/cpu{}", cpu_); }

void CpuDevice::add_topology() {
  core::Tree& tree = hotplug_->tree();
  tree.add_device<CpuDevice>(path() + "/topology", shared_from_this(), topology_groups());
  // cacheinfo_cpu_online: cpuN/cache and its indexM leaves (cpu_cache.hpp).
  tree.add_device<CacheDir>(path() + "/cache", std::make_shared<CacheDir>(hotplug_->env(), cpu_),
                            CacheDir::groups());
  for (std::size_t i = 0; i < model_->caches().size(); ++i)
    tree.add_device<CacheIndex>(fmt::format("{}/cache/index{}", path(), i),
                                std::make_shared<CacheIndex>(hotplug_->env(), model_, cpu_, i),
                                CacheIndex::groups());
  // intel_idle_cpu_online -> cpuidle_register_device: cpuN/cpuidle/stateK.
  if (CpuidleRoot* idle = hotplug_->cpuidle()) cpuidle_add_cpu(*idle, tree, cpu_);
}

void CpuDevice::remove_topology() {
  (void)hotplug_->tree().remove(path() + "/topology");
  (void)hotplug_->tree().remove(path() + "/cache");  // cacheinfo_cpu_pre_down
  cpuidle_remove_cpu(hotplug_->tree(), cpu_);        // intel_idle_cpu_offline
}

// drivers/base/cpu.c cpu_uevent -> print_cpu_modalias:
// "cpu:type:x86,venVVVVfamFFFFmodMMMM:feature:" (CPU_FEATURE_TYPEFMT,
// arch/x86/include/asm/cpufeature.h) then ",%04X" per set feature bit.
// Only word 0 is modelled; a recorded machine's CPU is printed as recorded.
// Kernel quirk: print_cpu_modalias ends the value with "\n" (it is also
// the show() of cpu/modalias), and cpu_uevent passes it to add_uevent_var
// whole, so the uevent file ends with an empty line: "MODALIAS=...\n\n".
core::Status CpuDevice::uevent_show(core::PageBuffer& buf) const {
  if (!model_->cpu_modalias().empty()) {  // a recorded CPU ([numa] cpu_modalias)
    buf.emit("MODALIAS={}\n\n", model_->cpu_modalias());
    return {};
  }
  buf.emit("MODALIAS=cpu:type:x86,ven{:04X}fam{:04X}mod{:04X}:feature:", kCpuVendor, kCpuFamily,
           kCpuModel);
  for (unsigned bit = 0; bit < 32; ++bit)
    if (kCpuid1Edx & (1u << bit)) buf.emit(",{:04X}", bit);
  buf.emit("\n\n");
  return {};
}

// drivers/base/core.c uevent_store -> kobject_synth_uevent.
core::Result<std::size_t> CpuDevice::uevent_store(const core::Caller& caller, std::string_view in) {
  core::PageBuffer vars;
  (void)uevent_show(vars);
  // One variable per line: the empty line of the quirk above is not one.
  std::string_view lines = vars.view();
  if (lines.ends_with("\n\n")) lines.remove_suffix(1);
  const std::string devpath = "/" + path();
  return core::uevent_store(hotplug_->env(), caller, {devpath, "cpu", lines}, in);
}

core::Status CpuDevice::online_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", model_->cpu_online(cpu_) ? 1 : 0);
  return {};
}

// drivers/base/core.c online_store: kstrtobool, lock_device_hotplug_sysfs,
// device_online/device_offline; an unchanged state is not an error.
core::Result<std::size_t> CpuDevice::online_store(const core::Caller& caller, std::string_view in) {
  auto val = core::kstrtobool(in);
  if (!val) return val.error();
  core::MutexLock lock(hotplug_->mu());
  auto changed = model_->set_cpu_online(cpu_, *val);
  if (!changed) {
    hotplug_->env().log(&caller, "numa", "cpu_online", changed.error().name(),
                        {{"cpu", cpu_}, {"online", *val}});
    return changed.error();
  }
  if (*changed) {
    if (*val)
      add_topology();
    else
      remove_topology();
  }
  hotplug_->env().log(&caller, "numa", "cpu_online", "OK",
                      {{"cpu", cpu_}, {"online", *val}, {"changed", *changed}});
  return in.size();
}

core::Status CpuDevice::physical_package_id_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", model_->topology(cpu_).package);
  return {};
}

core::Status CpuDevice::die_id_show(core::PageBuffer& buf) const {
  buf.append("0\n");  // one die per package
  return {};
}

core::Status CpuDevice::core_id_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", model_->topology(cpu_).core_id);
  return {};
}

std::vector<unsigned> CpuDevice::online_only(std::vector<unsigned> cpus) const {
  return model_->online_subset(std::move(cpus));
}

std::size_t CpuDevice::mask_size() const { return cpumap_file_max_bytes(model_->nr_cpus()); }
std::size_t CpuDevice::list_size() const { return cpulist_file_max_bytes(model_->nr_cpus()); }

core::Result<std::size_t> CpuDevice::mask_read(const std::vector<unsigned>& cpus,
                                               std::uint64_t pos, std::span<char> out) const {
  return read_slice(cpu_mask_string(online_only(cpus), model_->nr_cpu_ids()), pos, out);
}

core::Result<std::size_t> CpuDevice::list_read(const std::vector<unsigned>& cpus,
                                               std::uint64_t pos, std::span<char> out) const {
  return read_slice(cpu_list_string(online_only(cpus), model_->nr_cpu_ids()), pos, out);
}

// thread_siblings and core_cpus are both topology_sibling_cpumask; core_siblings
// and package_cpus are topology_core_cpumask; die_cpus is the package too
// (one die per package).
#define VSYSFS_CPU_MASK_IMPL(name, set)                                                        \
  core::Result<std::size_t> CpuDevice::name##_read(const core::Caller&, std::uint64_t pos,      \
                                                   std::span<char> out) {                      \
    return mask_read(model_->set(cpu_), pos, out);                                             \
  }                                                                                            \
  core::Result<std::size_t> CpuDevice::name##_list_read(const core::Caller&, std::uint64_t pos, \
                                                        std::span<char> out) {                 \
    return list_read(model_->set(cpu_), pos, out);                                             \
  }
VSYSFS_CPU_MASK_IMPL(core_cpus, core_cpus)
VSYSFS_CPU_MASK_IMPL(thread_siblings, core_cpus)
VSYSFS_CPU_MASK_IMPL(core_siblings, package_cpus)
VSYSFS_CPU_MASK_IMPL(die_cpus, package_cpus)
VSYSFS_CPU_MASK_IMPL(package_cpus, package_cpus)
#undef VSYSFS_CPU_MASK_IMPL

void add_cpu_devices(core::Env& env, core::Tree& tree, std::shared_ptr<NumaModel> model,
                     CpuVulnerabilities::Values vulnerabilities,
                     std::vector<std::shared_ptr<void>>& keep,
                     std::shared_ptr<CpuidleRoot> cpuidle) {
  auto root = std::make_shared<CpuRoot>(model);
  tree.add_device<CpuRoot>("devices/system/cpu", root, CpuRoot::groups());
  keep.push_back(root);
  auto vuln = std::make_shared<CpuVulnerabilities>(std::move(vulnerabilities));
  tree.add_device<CpuVulnerabilities>("devices/system/cpu/vulnerabilities", vuln,
                                      CpuVulnerabilities::groups());
  keep.push_back(vuln);
  if (cpuidle) {
    tree.add_device<CpuidleRoot>("devices/system/cpu/cpuidle", cpuidle, CpuidleRoot::groups());
    keep.push_back(cpuidle);
  }
  auto hotplug = std::make_shared<CpuHotplug>(env, tree, std::move(cpuidle));
  keep.push_back(hotplug);
  // register_cpu for each present CPU, then register_cpu_under_node.
  for (unsigned cpu : model->present_cpus()) {
    auto dev = std::make_shared<CpuDevice>(model, hotplug, cpu);
    tree.add_device<CpuDevice>(dev->path(), dev, CpuDevice::groups());
    if (model->cpu_online(cpu)) dev->add_topology();
    const int nid = model->topology(cpu).node;
    tree.add_symlink(fmt::format("{}/node{}", dev->path(), nid), fmt::format("../../node/node{}", nid));
    tree.add_symlink(dev->path() + "/subsystem", "../../../../bus/cpu");
    tree.add_symlink(fmt::format("bus/cpu/devices/cpu{}", cpu),
                     fmt::format("../../../devices/system/cpu/cpu{}", cpu));
    keep.push_back(dev);
  }
}

}  // namespace vsysfs::devices
