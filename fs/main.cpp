// vsysfs: mount a simulated sysfs. Command line follows libfuse conventions
// (-f, -d, -s, -o opt[,opt], -h, -V); our own options come as -o too:
//
//   -o machine=FILE   machine description (TOML); default: built-in machine
//   -o clock=manual   simulated time moves only through
//                     kernel/debug/vsysfs/clock/advance_ms (default: real)
//   -o events=FILE    append every event to FILE as JSON lines
//   -o state=FILE     crash-safe state: every acknowledged change is
//                     journaled to FILE and replayed at the next mount
//                     (docs/state.md)
//   -o state_compact=BYTES  compact the state journal into a base once its
//                     records pass BYTES (default 1 MiB; docs/state.md)
//   -o snapshot=FILE  start from the snapshot in FILE (docs/snapshot.md);
//                     applied before -o state's base and records
//
// The files behind these options are a trust boundary for a root daemon:
// what is refused, and the size limits: docs/trust-files.md.
//
// Errors are one line on stderr and a non-zero exit. SIGINT/SIGTERM
// unmount cleanly (after running the machine's shutdown sequence).

#define FUSE_USE_VERSION 312
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "core/caller.hpp"
#include "core/clock.hpp"
#include "core/event_log.hpp"
#include "core/lock_service.hpp"
#include "core/snapshot_file.hpp"
#include "core/state_journal.hpp"
#include "core/tree.hpp"
#include "core/trusted_file.hpp"
#include "devices/machine/machine.hpp"
#include "devices/machine/snapshot.hpp"
#include "fs/ops.hpp"
#include "fs/server.hpp"
#include "fs/state_replay.hpp"

namespace {

constexpr const char* kVersion = "0.1.0";
// Idle FUSE workers kept after a burst (-o max_idle_threads overrides):
// libfuse's default before 3.12.
constexpr unsigned kIdleThreads = 10;

// fuse_opt_parse strdup()s every "-o name=value" it fills in: freed here,
// on every way out of main.
struct Options {
  char* machine = nullptr;
  char* clock = nullptr;
  char* events = nullptr;
  char* state = nullptr;
  char* state_compact = nullptr;
  char* snapshot = nullptr;
  char* mountpoint = nullptr;
  int extra_args = 0;

  Options() = default;
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;
  ~Options() {
    for (char* p : {machine, clock, events, state, state_compact, snapshot, mountpoint}) free(p);
  }
};

// The argument vector fuse_opt_parse rebuilt, and the mount point
// fuse_parse_cmdline may return: freed on every way out of main.
struct ArgsOwner {
  fuse_args& args;
  fuse_cmdline_opts& cmd;
  ~ArgsOwner() {
    fuse_opt_free_args(&args);
    free(cmd.mountpoint);
  }
};

// Takes the mount point out of the arguments, so that we (not libfuse,
// whose message names no remedy) check it and report one clear line.
int take_mountpoint(void* data, const char* arg, int key, fuse_args*) {
  auto* opts = static_cast<Options*>(data);
  if (key != FUSE_OPT_KEY_NONOPT) return 1;
  if (opts->mountpoint) {
    ++opts->extra_args;
    return 0;
  }
  opts->mountpoint = strdup(arg);
  return 0;
}

#define VSYSFS_OPT(t, p) {t, offsetof(Options, p), 1}
const fuse_opt kOptionSpec[] = {
    VSYSFS_OPT("machine=%s", machine),
    VSYSFS_OPT("clock=%s", clock),
    VSYSFS_OPT("events=%s", events),
    VSYSFS_OPT("state=%s", state),
    VSYSFS_OPT("state_compact=%s", state_compact),
    VSYSFS_OPT("snapshot=%s", snapshot),
    FUSE_OPT_END,
};

void usage(const char* prog) {
  std::printf(
      "usage: %s [options] MOUNTPOINT\n"
      "\n"
      "Mounts a simulated Linux sysfs (the mount root stands for /sys).\n"
      "\n"
      "vsysfs options:\n"
      "    -o machine=FILE        machine description (TOML); default: the built-in machine\n"
      "    -o clock=real|manual   simulated time source (default: real)\n"
      "    -o events=FILE         append the event log to FILE as JSON lines (a private\n"
      "                           regular file: created 0600, no symlink, no FIFO)\n"
      "    -o state=FILE          keep the machine's state in FILE: every acknowledged\n"
      "                           change is durable and replayed at the next mount;\n"
      "                           FILE must be the daemon user's own, not writable by\n"
      "                           others, in a directory others cannot change (FILE.lock\n"
      "                           beside it keeps a second daemon out)\n"
      "    -o state_compact=BYTES once the journal after its base passes BYTES, write the\n"
      "                           machine as the state file's new base (default 1048576;\n"
      "                           machines that can restore a snapshot only)\n"
      "    -o snapshot=FILE       start from the snapshot in FILE (saved with\n"
      "                           kernel/debug/vsysfs/machine/save from this machine\n"
      "                           description; needs -o clock=manual); -o state applies after\n"
      "    -o allow_other         let other users see the mount (needs user_allow_other\n"
      "                           in /etc/fuse.conf when not root)\n"
      "\n",
      prog);
  std::printf("FUSE options:\n");
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "vsysfs: %s\n", message.c_str());
  std::exit(1);
}

bool is_mount_point(const std::string& path) {
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return false;
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mounts, line)) {
    // Field 5 is the mount point (octal-escaped spaces; good enough here).
    std::size_t pos = 0;
    for (int i = 0; i < 4 && pos != std::string::npos; ++i) pos = line.find(' ', pos + 1);
    if (pos == std::string::npos) continue;
    const std::size_t end = line.find(' ', pos + 1);
    if (line.substr(pos + 1, end - pos - 1) == resolved) return true;
  }
  return false;
}

void check_mount_point(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOTCONN)
      die(fmt::format("mount point {} is a dead FUSE mount (Transport endpoint is not connected); "
                      "run: fusermount3 -u {}",
                      path, path));
    die(fmt::format("mount point {}: {}", path, std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) die(fmt::format("mount point {} is not a directory", path));
  if (is_mount_point(path)) die(fmt::format("mount point {} is busy (already mounted)", path));
}

// Why fuse_session_mount failed, for the one line we print after libfuse's
// own. libfuse mounts directly when it may (root: open /dev/fuse, mount(2))
// and otherwise, on mount(2)'s EPERM, through the setuid-root fusermount3
// (lib/mount.c fuse_kern_mount), which opens /dev/fuse with the user's own
// rights (util/fusermount.c try_open_fuse_device drops privileges first).
// So a user needs both: /dev/fuse readable and writable, and fusermount3.
std::string mount_failure_reason() {
  const int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  const int open_errno = errno;
  if (fd >= 0) close(fd);
  if (fd < 0 && (open_errno == ENOENT || open_errno == ENODEV || open_errno == ENXIO))
    return "/dev/fuse does not exist: the fuse module is not loaded (modprobe fuse)";
  if (fd < 0)
    return fmt::format("/dev/fuse: {}{}", std::strerror(open_errno),
                       geteuid() == 0
                           ? ""
                           : " (mounting as a user needs /dev/fuse readable and writable by you, "
                             "mode 0666 as udev sets it, and a setuid-root fusermount3)");
  if (geteuid() == 0) return "see the line above";
  // libfuse runs FUSERMOUNT_DIR/fusermount3 (/usr/bin), else the one in PATH.
  struct stat st {};
  if (stat("/usr/bin/fusermount3", &st) != 0)
    return "a user's mount needs fusermount3, and /usr/bin/fusermount3 is missing (install fuse3)";
  if (st.st_uid != 0 || !(st.st_mode & S_ISUID))
    return "a user's mount needs a setuid-root fusermount3, and /usr/bin/fusermount3 is not "
           "(chmod u+s /usr/bin/fusermount3, as the fuse3 package installs it)";
  return "see the line above";
}

}  // namespace

// See main(): how the daemon's heap is kept from growing.
constexpr int kMmapThreshold = 1 << 20;
constexpr int kMallocArenas = 2;

int main(int argc, char* argv[]) {
  // A closed reader of -o events (a pipe) must cost the daemon its events,
  // never its life: SIGPIPE stays ignored for the whole run, including
  // after fuse_remove_signal_handlers() puts back the default at unmount
  // (libfuse ignores it only while its handlers are installed).
  std::signal(SIGPIPE, SIG_IGN);
  // Resident memory must not grow with readers of the event log or with
  // the number of FUSE workers a burst started (docs/soak.md, measured):
  // - glibc raises its mmap threshold each time a large block is freed
  //   (up to 32 MiB), so after the first read of kernel/debug/vsysfs/events
  //   (one string the size of the log, up to 32 MiB) the next renderings
  //   came from the heap and stayed resident between the log's own small
  //   blocks: RSS stepped up by a log size at a time. A fixed threshold
  //   keeps every block over 1 MiB in its own mapping, returned on free.
  // - glibc gives threads up to 8 malloc arenas per core, and the log's
  //   churn leaves free memory in each: RSS stepped up with the worker
  //   count. Two arenas kept it flat; the workers mostly wait on /dev/fuse.
  // The MALLOC_* environment variables still win.
  if (!std::getenv("MALLOC_MMAP_THRESHOLD_")) (void)mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  if (!std::getenv("MALLOC_ARENA_MAX")) (void)mallopt(M_ARENA_MAX, kMallocArenas);
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  Options opts;
  if (fuse_opt_parse(&args, &opts, kOptionSpec, take_mountpoint) == -1)
    die("bad options (see --help)");
  fuse_cmdline_opts cmd{};
  const ArgsOwner args_owner{args, cmd};
  if (fuse_parse_cmdline(&args, &cmd) != 0) die("bad command line (see --help)");
  if (cmd.show_help) {
    usage(argv[0]);
    return 0;
  }
  if (cmd.show_version) {
    std::printf("vsysfs version %s\n", kVersion);
    fuse_lowlevel_version();
    return 0;
  }
  if (!opts.mountpoint) die("no mount point given (usage: vsysfs [options] MOUNTPOINT)");
  if (opts.extra_args) die("one mount point only (usage: vsysfs [options] MOUNTPOINT)");
  const std::string mountpoint = opts.mountpoint;

  const std::string clock_kind = opts.clock ? opts.clock : "real";
  if (clock_kind != "real" && clock_kind != "manual")
    die(fmt::format("-o clock={}: expected real or manual", clock_kind));

  // Everything that can fail on bad input is checked before mounting.
  vsysfs::core::ConfigValue description;
  try {
    description = opts.machine ? vsysfs::devices::load_machine_file(opts.machine)
                               : vsysfs::devices::parse_machine_toml(
                                     vsysfs::devices::default_machine_toml(), "<built-in>");
  } catch (const std::exception& e) {
    die(fmt::format("machine file: {}", e.what()));
  }
  check_mount_point(mountpoint);
  // Absolute from here on: the daemon chdirs to / when it backgrounds.
  char resolved[PATH_MAX];
  const std::string abs_mountpoint = realpath(mountpoint.c_str(), resolved) ? resolved : mountpoint;

  std::unique_ptr<vsysfs::core::ManualClock> manual;
  std::unique_ptr<vsysfs::core::SystemClock> system;
  vsysfs::core::Clock* clock;
  if (clock_kind == "manual") {
    manual = std::make_unique<vsysfs::core::ManualClock>();
    clock = manual.get();
  } else {
    system = std::make_unique<vsysfs::core::SystemClock>();
    clock = system.get();
  }
  vsysfs::core::EventLog events(*clock);
  if (opts.events) {
    try {
      events.open_sink(opts.events);
    } catch (const std::exception& e) {
      die(e.what());
    }
  }
  vsysfs::core::FaultInjection faults(*clock, events);
  vsysfs::core::Env env{*clock, events, &faults};
  // A daemon run by a user is that user's machine: the files the machine
  // gives to root are the user's, and so are root's capabilities over it
  // (docs/permissions.md). A root daemon's machine is the host's.
  vsysfs::core::Tree::Owner owner;
  if (geteuid() != 0) {
    owner = {geteuid(), getegid()};
    vsysfs::core::Caller::set_machine_owner(geteuid());
  }
  vsysfs::core::Tree tree(owner);
  vsysfs::core::LockService locks(env);
  auto machine = std::make_unique<vsysfs::devices::Machine>(env, tree, manual.get(), locks);
  try {
    machine->build(description);
  } catch (const std::exception& e) {
    die(fmt::format("machine file: {}", e.what()));
  }
  vsysfs::fs::Server server(env, tree, locks);

  // -o snapshot=FILE: the machine starts from that snapshot, before the
  // state file's base and records (docs/snapshot.md "-o snapshot").
  vsysfs::devices::MachineSnapshots* const snapshots = machine->snapshots();
  if (opts.snapshot) {
    std::string bytes;
    try {
      bytes = vsysfs::core::read_regular_file(opts.snapshot, vsysfs::core::kMaxSnapshotFileBytes,
                                              "snapshot file");
    } catch (const std::exception& e) {
      die(fmt::format("snapshot file: {}", e.what()));
    }
    std::string problem;
    if (!snapshots)
      die(fmt::format("snapshot file {}: this machine has no snapshots", opts.snapshot));
    if (auto st = snapshots->start_from(bytes, &problem); !st)
      die(fmt::format("snapshot file {}: {} ({})", opts.snapshot, problem, st.error().name()));
  }

  // -o state=FILE: replay what earlier mounts acknowledged, before serving.
  std::unique_ptr<vsysfs::core::StateJournal> journal;
  if (opts.state) {
    std::uint64_t compact_bound = vsysfs::core::kDefaultCompactBytes;
    if (opts.state_compact) {
      char* end = nullptr;
      errno = 0;
      const unsigned long long v = std::strtoull(opts.state_compact, &end, 10);
      if (errno || !end || *end || end == opts.state_compact || opts.state_compact[0] == '-')
        die(fmt::format("-o state_compact={}: expected a number of bytes", opts.state_compact));
      compact_bound = v;
    }
    // Absolute (the daemon chdirs to / when it backgrounds), with the
    // directory resolved but never a symbolic link at FILE itself.
    std::string state_path;
    vsysfs::core::DecodedJournal loaded;
    try {
      state_path = vsysfs::core::absolute_keep_last(opts.state, "state file");
      journal = std::make_unique<vsysfs::core::StateJournal>(state_path);
      loaded = journal->load();
    } catch (const std::exception& e) {
      die(e.what());
    }
    // Only a machine that can restore a snapshot can start from a base or
    // write one; the others keep the journal of records (docs/state.md).
    const bool compacts = snapshots && snapshots->cannot_restore().empty();
    if (loaded.has_base) {
      std::string problem;
      if (!snapshots)
        die(fmt::format("state file {}: holds a machine snapshot, and this machine has none",
                        state_path));
      if (auto st = snapshots->load_state_base(loaded.base, &problem); !st)
        die(fmt::format("state file {}: its base: {} ({})", state_path, problem,
                        st.error().name()));
    }
    if (!loaded.problem.empty()) {
      // A torn or corrupt tail: the change it held was never acknowledged
      // (or the file was damaged); say so once and go on without it.
      std::fprintf(stderr, "vsysfs: state file %s: %s; ignoring %llu trailing bytes\n",
                   state_path.c_str(), loaded.problem.c_str(),
                   static_cast<unsigned long long>(loaded.file_bytes - loaded.valid_bytes));
      events.record(nullptr, "vsysfs", "state_corrupt", "ignored",
                    {{"file", state_path},
                     {"problem", loaded.problem},
                     {"valid_bytes", loaded.valid_bytes},
                     {"ignored_bytes", loaded.file_bytes - loaded.valid_bytes}});
    }
    const auto summary = vsysfs::fs::replay_all(env, tree, loaded.records);
    std::size_t snapshot_records = 0;
    std::uint64_t base_bytes = 0;
    try {
      // The machine after the replay is the new base: the next mount loads
      // it and replays nothing. A machine that cannot restore keeps the
      // file as it was (its base and its records), without a torn tail.
      // EBUSY: the machine holds what a new boot could not load (a PCI NIC
      // unbound from its driver); the file keeps its base and records.
      auto base = compacts ? snapshots->state_base() : vsysfs::core::Errno{EOPNOTSUPP};
      if (compacts && !base && base.error().value() != EBUSY)
        die(fmt::format("state file {}: cannot make a base ({})", state_path, base.error().name()));
      if (base) {
        base_bytes = base->size();
        vsysfs::core::MutexLock lock(journal->order_mutex());
        journal->rewrite_base(*base);
      } else if (loaded.has_base) {
        base_bytes = loaded.base.size();
        vsysfs::core::MutexLock lock(journal->order_mutex());
        journal->rewrite_base(loaded.base, loaded.records);
      } else {
        const auto snapshot = vsysfs::core::compact(loaded.records);
        snapshot_records = snapshot.size();
        journal->rewrite(snapshot);
      }
    } catch (const std::exception& e) {
      die(e.what());
    }
    events.record(nullptr, "vsysfs", "state_replay", "OK",
                  {{"file", state_path},
                   {"records", loaded.records.size()},
                   {"applied", summary.applied},
                   {"failed", summary.failed},
                   {"snapshot_records", snapshot_records},
                   {"base_bytes", base_bytes}});
    server.set_journal(journal.get());
    if (compacts)
      server.set_compactor([snapshots] { return snapshots->state_base(); }, compact_bound);
  }

  // default_permissions: the kernel enforces owner and mode, as for sysfs.
  fuse_opt_add_arg(&args, "-odefault_permissions");
  fuse_opt_add_arg(&args, "-ofsname=vsysfs");
  if (!cmd.nodefault_subtype) fuse_opt_add_arg(&args, "-osubtype=vsysfs");

  const fuse_lowlevel_ops ops = vsysfs::fs::make_lowlevel_ops();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), &server);
  if (!se) die("cannot create the FUSE session (bad -o option?)");
  if (fuse_set_signal_handlers(se) != 0) die("cannot install signal handlers");
  if (fuse_session_mount(se, abs_mountpoint.c_str()) != 0)
    die(fmt::format("cannot mount at {}: {}", mountpoint, mount_failure_reason()));
  events.record(nullptr, "vsysfs", "mount", "OK",
                {{"mountpoint", mountpoint}, {"machine", machine->name()}, {"clock", clock_kind}});

  fuse_daemonize(cmd.foreground);
  // The lock file names the holder of the state file: our pid changed.
  if (journal) journal->note_pid();
  // Threads start only now: a daemonizing fork keeps none.
  if (system) system->start();
  server.attach(se);

  int ret;
  if (cmd.singlethread) {
    ret = fuse_session_loop(se);
  } else {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, cmd.clone_fd);
    // libfuse 3.12+ keeps every worker it ever started (max_idle_threads
    // -1) unless told otherwise: a burst of 64 concurrent requests would
    // pin 64 threads (and their stacks) for the life of the mount. Workers
    // beyond kIdleThreads exit once they are idle again.
    fuse_loop_cfg_set_idle_threads(
        config, cmd.max_idle_threads != UINT_MAX ? cmd.max_idle_threads : kIdleThreads);
    // Requests never block a worker for long (locks wait asynchronously),
    // but a manual-clock advance runs device timers on its worker.
    // (max_threads is UINT_MAX when -o max_threads was not given.)
    const unsigned wanted = cmd.max_threads == UINT_MAX ? 64 : cmd.max_threads;
    fuse_loop_cfg_set_max_threads(config, wanted < 64 ? 64 : wanted > 100000 ? 100000 : wanted);
    ret = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
  }

  // Unmount is the machine's shutdown: reboot notifiers (dcdbas host
  // control) run, and their events reach the events file.
  machine->shutdown(vsysfs::devices::RebootCode::PowerOff);
  server.detach();
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  std::signal(SIGPIPE, SIG_IGN);
  fuse_session_destroy(se);
  events.record(nullptr, "vsysfs", "unmount", "OK", {{"mountpoint", mountpoint}});
  // A signal (SIGINT, SIGTERM, SIGHUP) is the normal way to stop: exit 0.
  return ret == 0 || ret == SIGINT || ret == SIGTERM || ret == SIGHUP ? 0 : 1;
}
