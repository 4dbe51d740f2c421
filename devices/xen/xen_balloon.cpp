// The xen_memory0 sysfs files, the guest knobs and the [xen] machine
// section. The worker is in xen_balloon_worker.cpp, the hypervisor in
// xen_balloon_hypervisor.cpp, the bus files in xen_balloon_bus.cpp.

#include "devices/xen/xen_balloon.hpp"

#include <cerrno>
#include <stdexcept>

#include <fmt/format.h>

#include "core/config.hpp"
#include "core/parse.hpp"
#include "devices/machine/machine.hpp"
#include "devices/numa/numa_model.hpp"
#include "devices/xen/xen_balloon_bus.hpp"

namespace vsysfs::devices {
namespace {

// drivers/xen/xen-balloon.c balloon_attrs[] and balloon_info_attrs[], in
// that order.
constexpr core::DeviceAttribute<XenBalloon> kAttrs[] = {
    VSYSFS_ATTR_RW(XenBalloon, target_kb),
    VSYSFS_ATTR_RW(XenBalloon, target),
    VSYSFS_ATTR_RO(XenBalloon, schedule_delay),
    VSYSFS_ATTR_RW(XenBalloon, max_schedule_delay),
    VSYSFS_ATTR_RO(XenBalloon, retry_count),
    VSYSFS_ATTR_RW(XenBalloon, max_retry_count),
    VSYSFS_ATTR_RW(XenBalloon, uevent),
};
constexpr core::DeviceAttribute<XenBalloon> kInfoAttrs[] = {
    VSYSFS_ATTR_RO(XenBalloon, current_kb),
    VSYSFS_ATTR_RO(XenBalloon, low_kb),
    VSYSFS_ATTR_RO(XenBalloon, high_kb),
};
constexpr core::AttributeGroup<XenBalloon> kGroups[] = {
    {.name = "", .attrs = kAttrs},
    {.name = "info", .attrs = kInfoAttrs},
};

constexpr core::DeviceAttribute<XenBalloon> kKnobAttrs[] = {
    VSYSFS_ATTR_RW_MODE(XenBalloon, used_kb, 0600),
    VSYSFS_ATTR_RO_MODE(XenBalloon, free_kb, 0400),
    VSYSFS_ATTR_RO_MODE(XenBalloon, max_kb, 0400),
    VSYSFS_ATTR_RO_MODE(XenBalloon, state, 0400),
};
// With a NUMA model the guest's workload is numa/alloc's: used_kb goes
// (free_kb and max_kb stay, as sums over the nodes).
mode_t knob_visible(const XenBalloon& dev, std::string_view name, mode_t mode) {
  return dev.numa_backed() && name == "used_kb" ? 0 : mode;
}
constexpr core::AttributeGroup<XenBalloon> kKnobGroups[] = {
    {.name = "", .attrs = kKnobAttrs, .is_visible = &knob_visible}};

constexpr std::string_view kDevicePath = "devices/system/xen_memory/xen_memory0";
constexpr std::string_view kKnobPath = "kernel/debug/vsysfs/xen";

}  // namespace

std::string_view XenBalloon::state_name(BpState s) {
  switch (s) {
    case BpState::Done: return "DONE";
    case BpState::EAgain: return "EAGAIN";
    case BpState::ECanceled: return "ECANCELED";
  }
  return "?";
}

XenBalloon::XenBalloon(core::Env& env, std::shared_ptr<XenHypervisor> hv, XenGuestMemory memory,
                       Params params)
    : env_(env),
      hv_(std::move(hv)),
      domid_(params.domid),
      numa_backed_(memory.numa_backed()),
      mem_(std::move(memory)),
      target_pages_(params.target_pages),
      max_schedule_delay_(params.max_schedule_delay),
      max_retry_count_(params.max_retry_count),
      balloon_worker_(env.clock, [this] { balloon_process(); }) {}

std::span<const core::AttributeGroup<XenBalloon>> XenBalloon::groups() { return kGroups; }
std::span<const core::AttributeGroup<XenBalloon>> XenBalloon::knob_groups() { return kKnobGroups; }

void XenBalloon::start() {
  core::MutexLock lock(balloon_mutex_);
  if (current_credit_locked() != 0) schedule_delayed_work_locked(core::Nanos{0});
}

// kernel: balloon_set_new_target(). Upstream stores the target without the
// mutex ("not read-modify-write"); we take it so readers never race.
void XenBalloon::balloon_set_new_target(const core::Caller& caller, std::uint64_t target,
                                        std::string_view via) {
  core::MutexLock lock(balloon_mutex_);
  target_pages_ = target;
  const bool was_pending = balloon_worker_.pending();
  env_.log(&caller, "xen_balloon", "target", "OK",
           {{"via", via},
            {"target_kb", xen_pages_to_kb(target)},
            {"current_kb", xen_pages_to_kb(mem_.totalram_pages())},
            {"worker_pending", was_pending}});
  schedule_delayed_work_locked(core::Nanos{0});
}

void XenBalloon::schedule_delayed_work_locked(core::Nanos delay) {
  balloon_mutex_.assert_held();
  // Kernel quirk: schedule_delayed_work() on a work item that is already
  // pending does nothing (WORK_STRUCT_PENDING_BIT), so a target written
  // while a back-off retry is queued is acted on at that retry, not now.
  if (balloon_worker_.pending()) return;
  balloon_worker_.schedule_in(delay);
}

core::Nanos XenBalloon::backoff_delay(std::uint64_t delay_s) {
  // schedule_delay * HZ jiffies. A zero delay (max_schedule_delay 0, or
  // the doubling wrapped to 0) re-queues the work at once in the kernel,
  // which then spins; here it runs one jiffy (HZ=250: 4 ms) later so
  // simulated time moves and a manual-clock step cannot loop forever.
  // Very long delays are capped at 100 years (no overflow in nanoseconds).
  constexpr std::uint64_t kMaxDelayS = 100ULL * 365 * 24 * 3600;
  if (delay_s == 0) return std::chrono::milliseconds(4);
  return std::chrono::seconds(std::min(delay_s, kMaxDelayS));
}

bool XenBalloon::accounts_agree() const {
  core::MutexLock lock(balloon_mutex_);
  return mem_.totalram_pages() == hv_->domain_current_pages(domid_);
}

// --- sysfs files ---------------------------------------------------------------

core::Status XenBalloon::target_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(target_pages_));
  return {};
}

// drivers/xen/xen-balloon.c store_target_kb (reference 3.3, upstream).
core::Result<std::size_t> XenBalloon::target_kb_store(const core::Caller& caller,
                                                      std::string_view in) {
  if (!caller.capable(core::Capability::SysAdmin)) {
    env_.log(&caller, "xen_balloon", "target", "EPERM", {{"via", "target_kb"}});
    return core::Errno{EPERM};
  }
  // Kernel quirk: simple_strtoull never fails: junk (or "\n") is 0, so it
  // sets a zero target; the value wraps modulo 2^64 before "* 1024".
  const std::uint64_t target_bytes = core::simple_strtoull(in, 0).value * 1024;
  balloon_set_new_target(caller, target_bytes >> kXenPageShift, "target_kb");
  return in.size();
}

core::Status XenBalloon::target_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", target_pages_ << kXenPageShift);
  return {};
}

// drivers/xen/xen-balloon.c store_target: bytes with an optional K/M/G/T/P/E
// suffix (memparse).
core::Result<std::size_t> XenBalloon::target_store(const core::Caller& caller,
                                                   std::string_view in) {
  if (!caller.capable(core::Capability::SysAdmin)) {
    env_.log(&caller, "xen_balloon", "target", "EPERM", {{"via", "target"}});
    return core::Errno{EPERM};
  }
  // Kernel quirk: memparse never fails either: junk is a zero target.
  const std::uint64_t target_bytes = core::memparse(in);
  balloon_set_new_target(caller, target_bytes >> kXenPageShift, "target");
  return in.size();
}

// Kernel quirk: the four back-off files are DEVICE_ULONG_ATTRs, printed by
// device_show_ulong as "%lx\n": 32 reads back as "20".
core::Status XenBalloon::schedule_delay_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{:x}\n", schedule_delay_);
  return {};
}

core::Status XenBalloon::max_schedule_delay_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{:x}\n", max_schedule_delay_);
  return {};
}

// device_store_ulong: kstrtoul(buf, 0) (decimal unless 0x/0 prefix), no
// capability check beyond the file mode, no wake-up of the worker.
core::Result<std::size_t> XenBalloon::max_schedule_delay_store(const core::Caller& caller,
                                                               std::string_view in) {
  const unsigned long v = VSYSFS_TRY(core::kstrtoul(in, 0));
  core::MutexLock lock(balloon_mutex_);
  max_schedule_delay_ = v;
  env_.log(&caller, "xen_balloon", "max_schedule_delay", "OK", {{"value", v}});
  return in.size();
}

core::Status XenBalloon::retry_count_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{:x}\n", retry_count_);
  return {};
}

core::Status XenBalloon::max_retry_count_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{:x}\n", max_retry_count_);
  return {};
}

core::Result<std::size_t> XenBalloon::max_retry_count_store(const core::Caller& caller,
                                                            std::string_view in) {
  const unsigned long v = VSYSFS_TRY(core::kstrtoul(in, 0));
  core::MutexLock lock(balloon_mutex_);
  max_retry_count_ = v;
  env_.log(&caller, "xen_balloon", "max_retry_count", "OK", {{"value", v}});
  return in.size();
}

core::Status XenBalloon::current_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(mem_.totalram_pages()));
  return {};
}

core::Status XenBalloon::low_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(mem_.balloon_low()));
  return {};
}

core::Status XenBalloon::high_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(mem_.balloon_high()));
  return {};
}

// drivers/base/core.c uevent_show: xen_memory0 has no devt, type, driver
// or bus uevent hook, so there is nothing to print.
core::Status XenBalloon::uevent_show(core::PageBuffer&) const { return {}; }

core::Result<std::size_t> XenBalloon::uevent_store(const core::Caller& caller,
                                                   std::string_view in) {
  VSYSFS_TRY_STATUS(kobject_synth_uevent(env_, caller, "xen_memory0", in));
  return in.size();
}

// --- guest knobs -----------------------------------------------------------------

core::Status XenBalloon::used_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(mem_.used_pages()));
  return {};
}

core::Result<std::size_t> XenBalloon::used_kb_store(const core::Caller& caller,
                                                    std::string_view in) {
  const auto kb = VSYSFS_TRY(core::kstrtoull(in, 0));
  core::MutexLock lock(balloon_mutex_);
  if (!mem_.set_used_pages(xen_kb_to_pages(kb))) return core::Errno{ENOMEM};
  env_.log(&caller, "xen_balloon", "guest_used", "OK",
           {{"used_kb", xen_pages_to_kb(mem_.used_pages())},
            {"free_kb", xen_pages_to_kb(mem_.free_pages())}});
  return in.size();
}

core::Status XenBalloon::free_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(mem_.free_pages()));
  return {};
}

core::Status XenBalloon::max_kb_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", xen_pages_to_kb(mem_.max_pages()));
  return {};
}

core::Status XenBalloon::state_show(core::PageBuffer& buf) const {
  core::MutexLock lock(balloon_mutex_);
  buf.emit("{}\n", state_name(last_state_));
  return {};
}

// --- the [xen] machine section -------------------------------------------------------

namespace {

// A memory size in the machine file: an integer is KiB, a string is a
// number with a K/M/G/T suffix ("4G", "512M"). Returns pages.
std::uint64_t size_pages(const core::ConfigValue& v) {
  std::uint64_t kb;
  if (v.type() == core::ConfigValue::Type::Integer) {
    kb = v.as_uint();
  } else {
    const std::string& s = v.as_string();
    std::size_t used = 0;
    const std::uint64_t bytes = core::memparse(s, &used);
    const char last = s.empty() ? '\0' : s.back();
    if (used != s.size() || used < 2 || std::string_view("KkMmGgTt").find(last) == std::string_view::npos)
      v.fail("expected KiB as an integer or a size with a K/M/G/T suffix, like \"4G\"");
    kb = bytes / 1024;
  }
  if (kb % kXenPagesPerKb != 0) v.fail("must be a multiple of 4 KiB (one page)");
  return xen_kb_to_pages(kb);
}

std::uint64_t size_pages_or(const core::ConfigValue& sec, std::string_view key,
                            std::uint64_t fallback) {
  const core::ConfigValue* v = sec.find(key);
  return v ? size_pages(*v) : fallback;
}

// [xen] keys (sizes: integer KiB, or a string with a K/M/G/T suffix):
//   host_memory         host RAM shared by every domain (default "16G")
//   name, domid         this guest in the hypervisor's view ("guest", 1)
//   memory              populated at boot (default "4G")
//   max_memory          static maximum; the rest starts in the balloon
//                       (default = memory)
//   target              boot target; the worker starts at once when it
//                       differs from memory (default = memory)
//   used                pages the guest's workload holds (default 512 MiB);
//                       not allowed with a [numa] section
// With a [numa] section the guest's memory is its nodes' memory:
// `memory` defaults to the nodes' total and must equal it when given
// (reference 3.5 current_pages is the sum of the nodes' MemTotal), the
// workload is numa/alloc's, and ballooning moves pages in and out of the
// nodes (see xen_balloon_memory.hpp for the node order).
//   max_schedule_delay  seconds (default 32), max_retry_count (default 0 =
//                       unlimited, the [T] default; newest kernels use 4)
// [[xen.domain]] (each other domain): name, domid, memory (required),
//   target (default memory), max_memory (default max(memory, target)),
//   pace (pages per second, default 25600 = 100 MiB/s).
void build_xen(MachineContext& ctx, const core::ConfigValue& sec) {
  constexpr std::uint64_t kGiB = 1024 * 1024 / kXenPagesPerKb;  // pages
  const std::uint64_t host = size_pages_or(sec, "host_memory", 16 * kGiB);

  XenHypervisor::DomainSpec guest;
  guest.name = sec.has("name") ? require_path_name(sec.require("name")) : std::string("guest");
  guest.domid = static_cast<DomId>(sec.get_uint("domid", 1));
  // NUMA builds first (section order -1 < 200): its nodes are this
  // guest's memory.
  // A machine without [numa] has the default topology, whose memory is
  // this guest's boot memory (numa_machine.cpp); its workload stays
  // [xen]'s `used`, so the balloon is not NUMA-backed then.
  std::shared_ptr<NumaModel> numa = numa_model_of(ctx.machine);
  if (numa && numa->implicit()) numa = nullptr;
  const std::uint64_t numa_pages = numa ? XenGuestMemory::numa_total_pages(*numa) : 0;
  guest.current_pages = size_pages_or(sec, "memory", numa ? numa_pages : 4 * kGiB);
  if (numa && guest.current_pages != numa_pages)
    sec.require("memory").fail(fmt::format(
        "{} KiB, but the [numa] nodes hold {} KiB: the guest's memory is its nodes' memory",
        xen_pages_to_kb(guest.current_pages), xen_pages_to_kb(numa_pages)));
  guest.max_pages = size_pages_or(sec, "max_memory", guest.current_pages);
  if (guest.max_pages < guest.current_pages)
    sec.require("max_memory").fail("smaller than memory");
  guest.target_pages = guest.current_pages;
  const std::uint64_t target = size_pages_or(sec, "target", guest.current_pages);
  if (numa && sec.find("used"))
    sec.require("used").fail(
        "not with a [numa] section: the workload is kernel/debug/vsysfs/numa/alloc's");
  const std::uint64_t used = size_pages_or(sec, "used", std::min(guest.current_pages, kGiB / 2));
  if (used > guest.current_pages) sec.require("used").fail("more than the guest's memory");

  XenBalloon::Params params;
  params.domid = guest.domid;
  params.target_pages = target;
  params.max_schedule_delay = sec.get_uint("max_schedule_delay", 32);
  params.max_retry_count = sec.get_uint("max_retry_count", 0);

  std::vector<XenHypervisor::DomainSpec> others;
  for (const core::ConfigValue& d : sec.get_array("domain")) {
    XenHypervisor::DomainSpec spec;
    spec.name = require_path_name(d.require("name"));
    spec.domid = static_cast<DomId>(d.require("domid").as_uint());
    spec.current_pages = size_pages(d.require("memory"));
    spec.target_pages = size_pages_or(d, "target", spec.current_pages);
    spec.max_pages =
        size_pages_or(d, "max_memory", std::max(spec.current_pages, spec.target_pages));
    spec.pace = d.get_uint("pace", 25600);  // pages per second: 100 MiB/s
    if (spec.pace == 0) d.require("pace").fail("must be at least 1 page per second");
    if (spec.current_pages > spec.max_pages || spec.target_pages > spec.max_pages)
      d.require("max_memory").fail("smaller than memory or target");
    others.push_back(std::move(spec));
  }

  std::shared_ptr<XenHypervisor> hv;
  try {
    hv = std::make_shared<XenHypervisor>(ctx.env, host, guest, std::move(others));
  } catch (const std::invalid_argument& e) {
    sec.fail(e.what());
  }
  auto dev = std::make_shared<XenBalloon>(
      ctx.env, hv,
      numa ? XenGuestMemory(numa, guest.max_pages)
           : XenGuestMemory(guest.current_pages, guest.max_pages, used),
      params);
  auto bus = std::make_shared<XenMemoryBus>(ctx.env);

  dev->set_kobject(ctx.tree.add_device<XenBalloon>(kDevicePath, dev, XenBalloon::groups()));
  ctx.tree.add_symlink(std::string(kDevicePath) + "/subsystem", "../../../../bus/xen_memory");
  ctx.tree.add_device<XenMemoryBus>("bus/xen_memory", bus, XenMemoryBus::groups());
  ctx.tree.mkdir_p("bus/xen_memory/drivers");
  ctx.tree.add_symlink("bus/xen_memory/devices/xen_memory0",
                       "../../../devices/system/xen_memory/xen_memory0");

  ctx.tree.add_device<XenHypervisor>(kKnobPath, hv, XenHypervisor::groups());
  ctx.tree.add_device<XenBalloon>(std::string(kKnobPath) + "/guest", dev,
                                  XenBalloon::knob_groups());
  for (const auto& d : hv->other_domains())
    ctx.tree.add_device<XenDomain>(fmt::format("{}/domain/{}", kKnobPath, d->name()), d,
                                   XenDomain::groups());

  ctx.machine.keep(hv);
  ctx.machine.keep(dev);
  ctx.machine.keep(bus);
  hv->start();
  dev->start();
}

const SectionRegistrar kRegistrar{"xen", &build_xen, 200};

}  // namespace

}  // namespace vsysfs::devices
