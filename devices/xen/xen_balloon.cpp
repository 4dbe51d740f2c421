// The xen_memory0 sysfs files, the guest knobs and the [xen] machine
// section. The worker is in xen_balloon_worker.cpp, the hypervisor in
// xen_balloon_hypervisor.cpp, the bus files in xen_balloon_bus.cpp.

#include "devices/xen/xen_balloon.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "core/config.hpp"
#include "core/kobject_uevent.hpp"
#include "core/parse.hpp"
#include "devices/machine/machine.hpp"
#include "devices/numa/numa_model.hpp"
#include "devices/xen/xen_balloon_bus.hpp"
#include "devices/xen/xen_state.hpp"
#include "devices/xen/xen_sys_hypervisor.hpp"
#include "devices/xen/xen_xenstore.hpp"

namespace vsysfs::devices {
namespace {

// With a NUMA model the guest's workload is numa/alloc's: used_kb goes
// (free_kb and max_kb stay, as sums over the nodes).
mode_t knob_visible(const XenBalloon& dev, std::string_view name, mode_t mode) {
  return dev.numa_backed() && name == "used_kb" ? 0 : mode;
}

// drivers/xen/balloon.c: module_param(balloon_boot_timeout, uint, 0444)
// with MODULE_PARAM_PREFIX "xen.".
constexpr core::DeviceAttribute<XenBalloon> kModuleParamAttrs[] = {
    VSYSFS_ATTR_RO(XenBalloon, balloon_boot_timeout),
};
constexpr core::AttributeGroup<XenBalloon> kModuleParamGroups[] = {
    {.name = "", .attrs = kModuleParamAttrs}};

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
      driver_(params.driver),
      balloon_boot_timeout_(params.balloon_boot_timeout),
      mem_(std::move(memory)),
      target_pages_(params.target_pages),
      max_schedule_delay_(params.max_schedule_delay),
      max_retry_count_(params.max_retry_count),
      scrub_pages_(params.scrub_pages),
      boot_params_(params),
      boot_pages_(mem_.totalram_pages()),
      boot_used_pages_(mem_.used_pages()),
      balloon_worker_(env.clock, [this] {
        if (driver_ == Driver::Kthread)
          balloon_thread();
        else
          balloon_process();
      }) {}

// The tables live in members so that entries may name the private fields
// they show (the kernel's balloon_stats.x). BALLOON_SHOW(name, mode, store,
// Fmt, expr), like xen-balloon.c's BALLOON_SHOW(name, format, args): the
// file prints expr, an expression of the device `d`, with the format Fmt,
// read under balloon_mutex.
#define BALLOON_SHOW(name, mode, store, Fmt, ...)                                      \
  VSYSFS_ATTR_VALUE_LOCKED(XenBalloon, name, mode, store, Fmt, &XenBalloon::balloon_mutex_, \
                           [](const XenBalloon& d) {                                  \
                             d.balloon_mutex_.assert_held();                          \
                             return __VA_ARGS__;                                      \
                           })

// drivers/xen/xen-balloon.c balloon_attrs[] and balloon_info_attrs[], in
// that order.
std::span<const core::AttributeGroup<XenBalloon>> XenBalloon::groups() {
  using B = XenBalloon;
  static constexpr core::DeviceAttribute<B> kAttrs[] = {
      BALLOON_SHOW(target_kb, 0644, &B::target_kb_store, fmt_ulong,
                   xen_pages_to_kb(d.target_pages_)),
      BALLOON_SHOW(target, 0644, &B::target_store, fmt_u64,
                   d.target_pages_ << kXenPageShift),
      // QUIRK: the four back-off files are DEVICE_ULONG_ATTRs, printed by
      // device_show_ulong as "%lx\n": 32 reads back as "20".
      BALLOON_SHOW(schedule_delay, 0444, nullptr, fmt_lx, d.schedule_delay_),
      BALLOON_SHOW(max_schedule_delay, 0644, &B::max_schedule_delay_store, fmt_lx, d.max_schedule_delay_),
      BALLOON_SHOW(retry_count, 0444, nullptr, fmt_lx, d.retry_count_),
      BALLOON_SHOW(max_retry_count, 0644, &B::max_retry_count_store, fmt_lx, d.max_retry_count_),
      // drivers/base/core.c device_show_bool: "%d\n".
      BALLOON_SHOW(scrub_pages, 0644, &B::scrub_pages_store, fmt_dec, d.scrub_pages_ ? 1 : 0),
      // drivers/base/core.c uevent_show: xen_memory0 has no devt, type,
      // driver or bus uevent hook, so there is nothing to print.
      VSYSFS_ATTR(B, uevent, 0644, core::uevent_show_empty<B>, &B::uevent_store),
  };
  static constexpr core::DeviceAttribute<B> kInfoAttrs[] = {
      BALLOON_SHOW(current_kb, 0444, nullptr, fmt_ulong,
                   xen_pages_to_kb(d.mem_.totalram_pages())),
      BALLOON_SHOW(low_kb, 0444, nullptr, fmt_ulong,
                   xen_pages_to_kb(d.mem_.balloon_low())),
      BALLOON_SHOW(high_kb, 0444, nullptr, fmt_ulong,
                   xen_pages_to_kb(d.mem_.balloon_high())),
  };
  static constexpr core::AttributeGroup<B> kGroups[] = {
      {.name = "", .attrs = kAttrs},
      {.name = "info", .attrs = kInfoAttrs},
  };
  return kGroups;
}

std::span<const core::AttributeGroup<XenBalloon>> XenBalloon::knob_groups() {
  using B = XenBalloon;
  static constexpr core::DeviceAttribute<B> kKnobAttrs[] = {
      BALLOON_SHOW(used_kb, 0600, &B::used_kb_store, fmt_u64, xen_pages_to_kb(d.mem_.used_pages())),
      BALLOON_SHOW(free_kb, 0400, nullptr, fmt_u64, xen_pages_to_kb(d.mem_.free_pages())),
      BALLOON_SHOW(kernel_kb, 0400, nullptr, fmt_u64, xen_pages_to_kb(d.mem_.kernel_pages())),
      BALLOON_SHOW(max_kb, 0400, nullptr, fmt_u64, xen_pages_to_kb(d.mem_.max_pages())),
      BALLOON_SHOW(state, 0400, nullptr, fmt_str, state_name(d.last_state_)),
      VSYSFS_ATTR_RO_MODE(B, driver, 0400),
      BALLOON_SHOW(reserve_kb, 0400, nullptr, fmt_u64,
                   xen_pages_to_kb(d.mem_.totalreserve_pages())),
  };
  static constexpr core::AttributeGroup<B> kKnobGroups[] = {
      {.name = "", .attrs = kKnobAttrs, .is_visible = &knob_visible}};
  return kKnobGroups;
}

std::span<const core::AttributeGroup<XenBalloon>> XenBalloon::module_param_groups() {
  return kModuleParamGroups;
}

void XenBalloon::start() {
  core::MutexLock lock(balloon_mutex_);
  if (driver_ == Driver::Kthread) {
    balloon_thread_sleep_locked();  // kthread_run: straight into its first wait
    return;
  }
  if (current_credit_locked() != 0) schedule_delayed_work_locked(core::Nanos{0});
}

void XenBalloon::power_off() {
  core::MutexLock lock(balloon_mutex_);
  powered_off_ = true;
  balloon_worker_.del_timer();
}

void XenBalloon::boot() {
  core::MutexLock lock(balloon_mutex_);
  balloon_worker_.del_timer();
  // The new domain has its boot memory (what Xen can give it now); the
  // guest's pages follow: ballooned pfns populated again, or surplus
  // pages ballooned out.
  const std::uint64_t got = hv_->rebuild_domain(domid_, boot_pages_);
  const std::uint64_t have = mem_.totalram_pages();
  if (got > have)
    mem_.populate_from_balloon(std::min(got - have, mem_.ballooned_pages()));
  else if (got < have)
    (void)mem_.alloc_balloon_pages(have - got);
  // The workload of the last boot is gone (the NUMA back end's went with
  // numa/alloc's allocations, freed by the NUMA boot hook before this).
  (void)mem_.set_used_pages(
      std::min(boot_used_pages_, mem_.totalram_pages() - mem_.kernel_pages()));
  target_pages_ = boot_params_.target_pages;
  schedule_delay_ = 1;
  retry_count_ = 1;
  max_schedule_delay_ = boot_params_.max_schedule_delay;
  max_retry_count_ = boot_params_.max_retry_count;
  scrub_pages_ = boot_params_.scrub_pages;
  last_state_ = BpState::Done;
  sleep_credit_ = 0;
  worker_dead_ = false;
  powered_off_ = false;
  env_.log(nullptr, "xen_balloon", "boot", "OK",
           {{"current_kb", xen_pages_to_kb(mem_.totalram_pages())},
            {"target_kb", xen_pages_to_kb(target_pages_)}});
  // balloon_init's kick, or kthread_run.
  if (driver_ == Driver::Kthread)
    balloon_thread_sleep_locked();
  else if (current_credit_locked() != 0)
    schedule_delayed_work_locked(core::Nanos{0});
}

// kernel: balloon_set_new_target(): stores the target and kicks the worker
// (schedule_delayed_work, or wake_up(&balloon_thread_wq)). Upstream stores
// the target without the mutex ("not read-modify-write"); we take it so
// readers never race.
void XenBalloon::balloon_set_new_target(const core::Caller& caller, std::uint64_t target,
                                        std::string_view via) {
  core::MutexLock lock(balloon_mutex_);
  target_pages_ = target;
  const bool was_pending = balloon_worker_.pending();
  env_.log(&caller, "xen_balloon", "target", "OK",
           {{"via", via},
            {"target_kb", xen_pages_to_kb(target)},
            {"current_kb", xen_pages_to_kb(mem_.totalram_pages())},
            {"worker_pending", was_pending},
            {"worker_dead", worker_dead_}});
  if (driver_ == Driver::Kthread)
    wake_up_locked();
  else
    schedule_delayed_work_locked(core::Nanos{0});
}

void XenBalloon::schedule_delayed_work_locked(core::Nanos delay) {
  balloon_mutex_.assert_held();
  // A kworker that died in balloon_process holds balloon_mutex for good:
  // a queued run would block on it at once. Nothing runs.
  if (worker_dead_ || powered_off_) return;
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

// drivers/xen/xen-balloon.c store_target_kb (docs/kernel-semantics.md section 3.3, upstream).
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

core::Result<std::size_t> XenBalloon::max_retry_count_store(const core::Caller& caller,
                                                            std::string_view in) {
  const unsigned long v = VSYSFS_TRY(core::kstrtoul(in, 0));
  core::MutexLock lock(balloon_mutex_);
  max_retry_count_ = v;
  env_.log(&caller, "xen_balloon", "max_retry_count", "OK", {{"value", v}});
  return in.size();
}

// device_store_bool: kstrtobool, any failure is EINVAL; the mode is the
// only permission check.
core::Result<std::size_t> XenBalloon::scrub_pages_store(const core::Caller& caller,
                                                        std::string_view in) {
  const auto v = core::kstrtobool(in);
  if (!v) return core::Errno{EINVAL};
  core::MutexLock lock(balloon_mutex_);
  scrub_pages_ = *v;
  env_.log(&caller, "xen_balloon", "scrub_pages", "OK", {{"value", *v}});
  return in.size();
}

// kernel/params.c param_get_uint: "%u\n". Fixed at boot (0444).
core::Status XenBalloon::balloon_boot_timeout_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", balloon_boot_timeout_);
  return {};
}

core::Result<std::size_t> XenBalloon::uevent_store(const core::Caller& caller,
                                                   std::string_view in) {
  return core::uevent_store(env_, caller, {"/devices/system/xen_memory/xen_memory0", "xen_memory", ""}, in);
}

// --- guest knobs -----------------------------------------------------------------

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

core::Status XenBalloon::driver_show(core::PageBuffer& buf) const {
  buf.emit("{}\n", driver_ == Driver::Kthread ? "kthread" : "workqueue");
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

// The guest kernel's boot allocations on each node ([xen] kernel_memory,
// see below): what the kernel holds before any workload runs.
void reserve_kernel_memory(NumaModel& numa, const core::ConfigValue& sec) {
  const int n = numa.nr_node_ids();
  std::vector<std::uint64_t> present(static_cast<std::size_t>(n));
  std::uint64_t total = 0;
  for (int nid = 0; nid < n; ++nid) total += present[nid] = numa.node(nid).present;
  std::vector<std::uint64_t> share(static_cast<std::size_t>(n), 0);
  const core::ConfigValue* key = sec.find("kernel_memory");
  if (!key) {
    // A node whose hugepages leave less free gets what is left.
    for (int nid = 0; nid < n; ++nid) share[nid] = std::min(present[nid] / 64, numa.node(nid).free);
  } else {
    const std::uint64_t want = size_pages(*key);
    if (want > total) key->fail("more than the [numa] nodes' memory");
    std::uint64_t given = 0;
    int first = -1;
    for (int nid = 0; nid < n && total > 0; ++nid) {
      if (present[nid] && first < 0) first = nid;
      // Floor of want * present / total without overflow (both below 2^64).
      share[nid] = std::min<std::uint64_t>(
          static_cast<std::uint64_t>(static_cast<long double>(want) * present[nid] / total),
          want - given);
      given += share[nid];
    }
    if (first >= 0) share[first] += want - given;
  }
  for (int nid = 0; nid < n; ++nid) {
    if (!share[nid]) continue;
    if (!numa.reserve_kernel_pages(nid, share[nid]))
      sec.require("kernel_memory")
          .fail(fmt::format("node {} has only {} KiB free for {} KiB of kernel memory", nid,
                            xen_pages_to_kb(numa.node(nid).free), xen_pages_to_kb(share[nid])));
  }
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
//   kernel_memory       pages the guest kernel holds from boot (slab, kernel
//                       stacks, page tables), which ballooning never takes.
//                       With [numa]: default 1/64 of each node's memory
//                       (256 MiB of the default machine's 16 GiB); a size
//                       given here is split over the nodes in proportion to
//                       their memory (the remainder on the first node with
//                       memory) and must fit in each node's free pages.
//                       Without [numa]: default 0 (`used` then stands for
//                       every page in use); kernel_memory + used <= memory.
// With a [numa] section the guest's memory is its nodes' memory:
// `memory` defaults to the nodes' total and must equal it when given
// (docs/kernel-semantics.md section 3.5: current_pages is the sum of the nodes' MemTotal), the
// workload is numa/alloc's, and ballooning moves pages in and out of the
// nodes (see xen_balloon_memory.hpp for the node order).
//   driver              "kthread" (default: the 5.15+ xen-balloon thread)
//                       or "workqueue" (the 2.6.39-5.14 delayed work)
//   max_schedule_delay  seconds (default 32), max_retry_count (default 4,
//                       balloon_init since 5.4; 0 = unlimited)
//   scrub_pages         xen_scrub_pages at boot (default true)
//   balloon_boot_timeout  xen.balloon_boot_timeout, seconds (default 180;
//                       kthread driver only: module/xen/parameters)
// [xen.hypervisor]: what /sys/hypervisor shows (xen_sys_hypervisor.hpp):
//   guest_type, uuid, version ("4.17.3"), compiler, compiled_by,
//   compile_date, capabilities, changeset, virtual_start, features,
//   buildid (hex), start_flags; defaults: a Xen 4.17 host.
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
  const std::uint64_t kernel = numa ? 0 : size_pages_or(sec, "kernel_memory", 0);
  if (!numa && kernel > guest.current_pages - used)
    sec.require("kernel_memory").fail("more than the guest's memory less `used`");
  if (numa) reserve_kernel_memory(*numa, sec);

  XenBalloon::Params params;
  params.domid = guest.domid;
  params.target_pages = target;
  params.max_schedule_delay = sec.get_uint("max_schedule_delay", 32);
  params.max_retry_count = sec.get_uint("max_retry_count", 4);
  if (const core::ConfigValue* d = sec.find("driver")) {
    const std::string& name = d->as_string();
    if (name == "kthread")
      params.driver = XenBalloon::Driver::Kthread;
    else if (name == "workqueue")
      params.driver = XenBalloon::Driver::Workqueue;
    else
      d->fail("expected \"kthread\" (5.15+) or \"workqueue\" (2.6.39-5.14)");
  }
  if (const core::ConfigValue* v = sec.find("scrub_pages")) params.scrub_pages = v->as_bool();
  const std::uint64_t boot_timeout = sec.get_uint("balloon_boot_timeout", 180);
  if (boot_timeout > UINT_MAX) sec.require("balloon_boot_timeout").fail("above UINT_MAX");
  params.balloon_boot_timeout = static_cast<unsigned>(boot_timeout);

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
           : XenGuestMemory(guest.current_pages, guest.max_pages, kernel, used),
      params);
  auto bus = std::make_shared<XenMemoryBus>(ctx.env);
  // /sys/hypervisor: drivers/xen/sys-hypervisor.c on every Xen domain.
  const XenSysHypervisor::Info hyp_info =
      XenSysHypervisor::parse(sec.find("hypervisor"), guest.domid, guest.name);
  auto sys_hyp = std::make_shared<XenSysHypervisor>(hyp_info);

  dev->set_kobject(ctx.tree.add_device<XenBalloon>(kDevicePath, dev, XenBalloon::groups()));
  ctx.tree.add_symlink(std::string(kDevicePath) + "/subsystem", "../../../../bus/xen_memory");
  ctx.tree.add_device<XenMemoryBus>("bus/xen_memory", bus, XenMemoryBus::groups());
  ctx.tree.mkdir_p("bus/xen_memory/drivers");
  ctx.tree.add_symlink("bus/xen_memory/devices/xen_memory0",
                       "../../../devices/system/xen_memory/xen_memory0");

  ctx.tree.add_device<XenHypervisor>(kKnobPath, hv, XenHypervisor::groups());
  ctx.tree.add_device<XenBalloon>(std::string(kKnobPath) + "/guest", dev,
                                  XenBalloon::knob_groups());
  if (params.driver == XenBalloon::Driver::Kthread)
    ctx.tree.add_device<XenBalloon>("module/xen/parameters", dev,
                                    XenBalloon::module_param_groups());
  for (const auto& d : hv->other_domains())
    ctx.tree.add_device<XenDomain>(fmt::format("{}/domain/{}", kKnobPath, d->name()), d,
                                   XenDomain::groups());

  ctx.machine.keep(hv);
  ctx.machine.keep(dev);
  ctx.machine.keep(bus);
  ctx.tree.add_device<XenSysHypervisor>("hypervisor", sys_hyp, XenSysHypervisor::groups());
  ctx.machine.keep(sys_hyp);
  hv->set_vpmu_boot(hyp_info.vpmu, hyp_info.vpmu_features);
  // pmu/: only in the initial domain (xen_initial_domain()); a PVH dom0
  // has a vLAPIC, so Xen answers it EOPNOTSUPP.
  if (hyp_info.start_flags & XenSysHypervisor::kSifInitdomain) {
    auto pmu = std::make_shared<XenPmu>(ctx.env, hv, hyp_info.guest_type != "PV");
    ctx.tree.add_device<XenPmu>("hypervisor/pmu", pmu, XenPmu::groups());
    ctx.machine.keep(pmu);
  }
  // An HVM domU boots through hvmloader, which writes its SMBIOS (a PV or
  // PVH guest has none; dom0 sees the host's, [dcdbas]'s). Its vCPUs are
  // the CPU model's, its memory the boot memory (the nodes' total). A
  // machine file that also has [dcdbas] names Dell's firmware for the
  // tables (the test machines that combine the two families): that
  // builder serves DMI then, one set of tables per machine.
  if (hyp_info.guest_type == "HVM" && !ctx.root.find("dcdbas")) {
    const auto model = numa_model_of(ctx.machine);
    const auto vcpus = model ? static_cast<unsigned>(model->present_cpus().size()) : 1U;
    add_hvmloader_dmi(ctx, hyp_info, vcpus, xen_pages_to_kb(guest.current_pages));
  }
  hv->start();
  dev->start();
  // The power cycle: registered after NUMA's hooks (NUMA builds first), so
  // the nodes' allocations are freed before the balloon rebuilds.
  std::weak_ptr<XenBalloon> weak = dev;
  ctx.machine.register_shutdown_hook([weak] {
    if (auto d = weak.lock()) d->power_off();
  });
  ctx.machine.register_boot_hook([weak] {
    if (auto d = weak.lock()) d->boot();
  });
  auto store = build_xenstore(ctx, sec, hv, dev, guest, target);
  // docs/snapshot.md: the balloon, the hypervisor, the xenstore and the
  // bus; /sys/hypervisor is fixed.
  register_xen_state(ctx, hv, dev, store, bus);
}

const SectionRegistrar kRegistrar{"xen", &build_xen, 200};

}  // namespace

}  // namespace vsysfs::devices
