// Unit tests of the small core pieces: PageBuffer, Result, EventLog JSON,
// the clocks and Timer, ConfigValue, Caller.
#include <doctest/doctest.h>

#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "core/caller.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/event_log.hpp"
#include "core/page_buffer.hpp"
#include "core/parse.hpp"
#include "core/result.hpp"
#include "core/tree.hpp"

using namespace vsysfs::core;

TEST_SUITE("core") {

TEST_CASE("PageBuffer clamps at PAGE_SIZE-1 and remembers the overflow") {
  PageBuffer buf;
  buf.emit("{}-{}\n", 1, "two");
  CHECK(buf.view() == "1-two\n");
  CHECK_FALSE(buf.overflowed());
  std::string big(5000, 'x');
  buf.append(big);
  CHECK(buf.size() == 4095);
  CHECK(buf.overflowed());
  buf.clear();
  buf.emit("{}", big);
  CHECK(buf.size() == 4095);
  CHECK(buf.overflowed());
}

Result<int> half(int x) {
  if (x % 2) return Errno{EINVAL};
  return x / 2;
}
Result<int> quarter(int x) {
  int h = VSYSFS_TRY(half(x));
  return VSYSFS_TRY(half(h));
}

TEST_CASE("Result and VSYSFS_TRY propagate errno values") {
  CHECK(*quarter(8) == 2);
  CHECK(quarter(6).error() == Errno{EINVAL});
  CHECK(Errno{ENODEV}.name() == "ENODEV");
  CHECK(Errno{EBADR}.name() == "EBADR");
  Status ok;
  CHECK(ok);
  Status bad = Errno{EPERM};
  CHECK_FALSE(bad);
  CHECK(bad.error().value() == EPERM);
}

TEST_CASE("EventLog renders valid JSON lines, escaping anything a client wrote") {
  ManualClock clock;
  EventLog log(clock);
  clock.advance(std::chrono::milliseconds(5));
  Caller c = Caller::with_caps(1000, 0, "to\"ol");
  log.record(&c, "dev", "store", "EINVAL", {{"data", std::string("a\n\x01\xff", 4)}, {"n", 7}, {"ok", true}});
  auto e = log.snapshot().back();
  CHECK(e.seq == 1);
  CHECK(e.to_json() ==
        R"({"seq":1,"time_ns":5000000,"pid":1,"uid":1000,"comm":"to\"ol","device":"dev","what":"store","result":"EINVAL","data":{"data":"a\n\u0001\u00ff","n":7,"ok":true}})");
  CHECK(e.field("n") == "7");
  log.clear();
  CHECK(log.snapshot().empty());
  log.record(nullptr, "d", "w", "OK");
  CHECK(log.last_seq() == 2);  // sequence numbers survive a clear
}

TEST_CASE("ManualClock::advance stops when interrupted, at a whole millisecond, timers intact") {
  ManualClock clock;
  // A timer every 10 us, re-arming itself: 100 per simulated ms.
  std::size_t fired = 0;
  std::function<void()> tick;
  Clock::TimerId id = 0;
  tick = [&] {
    ++fired;
    id = clock.add_timer(clock.now() + std::chrono::microseconds(10), tick);
  };
  id = clock.add_timer(std::chrono::microseconds(10), tick);
  std::size_t asked = 0;
  // Says stop on its 20th question (about 1280 timers in: 12.8 ms).
  auto r = clock.advance(std::chrono::seconds(100), [&] { return ++asked >= 20; });
  CHECK(r.interrupted);
  CHECK(r.applied == std::chrono::milliseconds(13));
  CHECK(clock.now() == std::chrono::milliseconds(13));
  CHECK(fired == 1300);  // every timer up to and including 13 ms, none after
  CHECK(clock.pending_timers() == 1);
  // The rest of the run is still there for the next advance.
  auto rest = clock.advance(std::chrono::milliseconds(1), [] { return false; });
  CHECK_FALSE(rest.interrupted);
  CHECK(fired == 1400);
  CHECK(clock.advance(std::chrono::milliseconds(0)).applied == Nanos{0});
  clock.cancel_timer(id);
}

TEST_CASE(
    "ManualClock::claim_horizon: capped at the advance's target; an interrupted step keeps the "
    "claim") {
  ManualClock clock;
  // Outside an advance nothing lies ahead.
  CHECK(clock.claim_horizon(std::chrono::milliseconds(5)) == Nanos{0});
  // A timer every 10 us; the one at 0.5 ms simulates ahead to 2.3 ms
  // (as a traffic batch does) and the step is interrupted right after.
  std::size_t fired = 0;
  Nanos claimed{0};
  std::function<void()> tick;
  tick = [&] {
    ++fired;
    if (clock.now() == std::chrono::microseconds(500))
      claimed = clock.claim_horizon(std::chrono::microseconds(2300));
    clock.add_timer(clock.now() + std::chrono::microseconds(10), tick);
  };
  clock.add_timer(std::chrono::microseconds(10), tick);
  std::size_t asked = 0;
  // The first question comes after 64 timers (0.64 ms).
  auto r = clock.advance(std::chrono::seconds(1), [&] { return ++asked >= 1; });
  CHECK(claimed == std::chrono::microseconds(2300));
  CHECK(r.interrupted);
  // Without the claim the step would end at 1 ms, inside what the timer
  // at 0.5 ms already simulated.
  CHECK(r.applied == std::chrono::milliseconds(3));
  CHECK(fired == 300);
  // A claim beyond the step's target gets the target.
  Nanos capped{0};
  clock.add_timer(clock.now() + std::chrono::microseconds(1),
                  [&] { capped = clock.claim_horizon(std::chrono::seconds(10)); });
  clock.advance(std::chrono::milliseconds(4));
  CHECK(capped == std::chrono::milliseconds(7));
}

TEST_CASE("ManualClock::advance waiting for another advance gives up when interrupted") {
  ManualClock clock;
  std::atomic<bool> in_first{false}, release{false}, second_stop{false};
  clock.add_timer(std::chrono::milliseconds(1), [&] {
    in_first = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  std::thread first([&] { clock.advance(std::chrono::milliseconds(10)); });
  while (!in_first) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ManualClock::Advanced second;
  std::atomic<bool> second_done{false};
  std::thread waiter([&] {
    second = clock.advance(std::chrono::milliseconds(5), [&] { return second_stop.load(); });
    second_done = true;
  });
  second_stop = true;  // its writer got a signal while it waited
  // It returns although the first advance still runs (polled, generously:
  // a broken wait fails here instead of hanging the suite).
  for (int i = 0; i < 10000 && !second_done; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(second_done.load());
  release = true;
  waiter.join();
  first.join();
  CHECK(second.interrupted);
  CHECK(second.applied == Nanos{0});
  CHECK(clock.now() == std::chrono::milliseconds(10));  // the second moved nothing
}

TEST_CASE("ManualClock runs timers in deadline order, including ones armed meanwhile") {
  ManualClock clock;
  std::vector<std::pair<int, long>> fired;
  Timer t2(clock, [&] { fired.emplace_back(2, clock.now().count()); });
  Timer t1(clock, [&] {
    fired.emplace_back(1, clock.now().count());
    t2.schedule_in(std::chrono::nanoseconds(10));  // fires within the same advance
  });
  t1.mod_timer(Nanos(100));
  clock.advance(Nanos(99));
  CHECK(fired.empty());
  clock.advance(Nanos(50));
  REQUIRE(fired.size() == 2);
  CHECK(fired[0] == std::make_pair(1, 100L));
  CHECK(fired[1] == std::make_pair(2, 110L));
  CHECK(clock.now() == Nanos(149));
}

TEST_CASE("Timer re-arm replaces the deadline; del_timer cancels") {
  ManualClock clock;
  int n = 0;
  Timer t(clock, [&] { ++n; });
  t.mod_timer(Nanos(10));
  t.mod_timer(Nanos(30));
  clock.advance(Nanos(20));
  CHECK(n == 0);
  CHECK(t.pending());
  CHECK(t.del_timer());
  clock.advance(Nanos(20));
  CHECK(n == 0);
  CHECK_FALSE(t.pending());
  CHECK(clock.pending_timers() == 0);
}

TEST_CASE("SystemClock fires a timer in real time") {
  SystemClock clock;
  clock.start();
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  Timer t(clock, [&] {
    std::lock_guard lock(mu);
    fired = true;
    cv.notify_all();
  });
  t.schedule_in(std::chrono::milliseconds(20));
  std::unique_lock lock(mu);
  CHECK(cv.wait_for(lock, std::chrono::seconds(10), [&] { return fired; }));
  CHECK(clock.now() >= std::chrono::milliseconds(20));
}

TEST_CASE("ConfigValue getters check types and name the key") {
  ConfigValue root(ConfigValue::Type::Table, "", "m.toml", 1, 1);
  ConfigValue v(ConfigValue::Type::String, "dcdbas.model", "m.toml", 3, 9);
  v.set_scalar(std::string("R740"));
  ConfigValue sec(ConfigValue::Type::Table, "dcdbas", "m.toml", 2, 1);
  sec.set("model", v);
  root.set("dcdbas", sec);
  CHECK(root.require("dcdbas").get_string("model", "") == "R740");
  CHECK(root.require("dcdbas").get_uint("absent", 4) == 4);
  CHECK_THROWS_WITH_AS((void)root.require("dcdbas").get_int("model", 0),
                       "m.toml:3:9: dcdbas.model: expected an integer, found a string", ConfigError);
  std::vector<const ConfigValue*> unused;
  root.collect_unused(unused);
  CHECK(unused.empty());
}

TEST_CASE("Caller reads capabilities, comm and priority from /proc") {
  Caller self(getpid(), getuid(), getgid());
  std::ifstream comm_file("/proc/self/comm");
  std::string comm;
  std::getline(comm_file, comm);
  CHECK(self.comm() == comm);
  errno = 0;
  const int nice_value = getpriority(PRIO_PROCESS, 0);
  if (sched_getscheduler(0) == SCHED_OTHER) CHECK(self.prio() == 120 + nice_value);
  if (getuid() == 0) CHECK(self.capable(Capability::SysAdmin));
  CHECK_FALSE(Caller::user(1000).capable(Capability::NetAdmin));
  CHECK(Caller::root().capable(Capability::NetAdmin));
  Caller gone(999999999, 0, 0);
  CHECK_FALSE(gone.capable(Capability::SysAdmin));
  CHECK(gone.comm().empty());
  CHECK(gone.prio() == 120);
}

TEST_CASE("Caller sees another process's effective capabilities (capget on its pid)") {
  if (getuid() != 0) return;  // needs CAP_SYS_ADMIN to drop
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Drop CAP_SYS_ADMIN from the effective set only, then wait to be killed.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    syscall(SYS_capget, &hdr, data);
    data[CAP_SYS_ADMIN / 32].effective &= ~(1U << (CAP_SYS_ADMIN % 32));
    syscall(SYS_capset, &hdr, data);
    prctl(PR_SET_NAME, "capless-child");
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char c;
  REQUIRE(read(ready[0], &c, 1) == 1);
  Caller other(child, 0, 0);
  CHECK_FALSE(other.capable(Capability::SysAdmin));
  CHECK(other.capable(Capability::NetAdmin));
  CHECK(other.comm() == "capless-child");
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
}

namespace {
// A child that takes each line of `cmd` as a command (n NAME: rename, u:
// unshare a user namespace) and acknowledges each on `ack`; `first` is its
// name from the start. Returns its pid (created with clone3 and `tid` as
// its pid when tid > 0; -1 when that was refused).
pid_t command_child(int cmd, int ack, const char* first, pid_t tid = 0) {
  clone_args args{};
  args.exit_signal = SIGCHLD;
  pid_t set_tid = tid;
  if (tid > 0) {
    args.set_tid = reinterpret_cast<std::uintptr_t>(&set_tid);
    args.set_tid_size = 1;
  }
  const long child = syscall(SYS_clone3, &args, sizeof args);
  if (child != 0) return static_cast<pid_t>(child);
  prctl(PR_SET_NAME, first);
  char line[32];
  for (;;) {
    const ssize_t n = read(cmd, line, sizeof line - 1);
    if (n <= 0) _exit(0);
    line[n] = '\0';
    if (line[0] == 'n') prctl(PR_SET_NAME, line + 2);
    if (line[0] == 'u') (void)unshare(CLONE_NEWUSER);
    (void)!write(ack, "k", 1);
  }
}
void tell(int cmd, int ack, const char* what) {
  REQUIRE(write(cmd, what, std::strlen(what)) == static_cast<ssize_t>(std::strlen(what)));
  char c;
  REQUIRE(read(ack, &c, 1) == 1);
}
}  // namespace

TEST_CASE("Caller reads comm and the user namespace afresh for every request of a process") {
  if (getuid() != 0) return;  // the namespace half needs a privileged caller
  int cmd[2], ack[2];
  REQUIRE(pipe(cmd) == 0);
  REQUIRE(pipe(ack) == 0);
  const pid_t child = command_child(cmd[0], ack[1], "first-name");
  REQUIRE(child > 0);
  tell(cmd[1], ack[0], "x");  // it has named itself
  CHECK(Caller(child, 0, 0).comm() == "first-name");
  CHECK(Caller(child, 0, 0).capable(Capability::SysAdmin));
  // prctl(PR_SET_NAME): the same process, a new name.
  tell(cmd[1], ack[0], "n renamed");
  CHECK(Caller(child, 0, 0).comm() == "renamed");
  // unshare(CLONE_NEWUSER): the same process, no longer this machine's root.
  tell(cmd[1], ack[0], "u");
  CHECK_FALSE(Caller(child, 0, 0).capable(Capability::SysAdmin));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  for (int fd : {cmd[0], cmd[1], ack[0], ack[1]}) close(fd);
}

TEST_CASE("Caller: a reused pid is the new process, never the one that had it before") {
  if (getuid() != 0) return;  // clone3 with set_tid needs CAP_SYS_ADMIN
  int cmd[2], ack[2];
  REQUIRE(pipe(cmd) == 0);
  REQUIRE(pipe(ack) == 0);
  const pid_t old = command_child(cmd[0], ack[1], "old-owner");
  REQUIRE(old > 0);
  tell(cmd[1], ack[0], "x");
  CHECK(Caller(old, 0, 0).comm() == "old-owner");
  // The old process leaves the machine's user namespace: the daemon now
  // holds its ns/user link, which names a child namespace.
  tell(cmd[1], ack[0], "u");
  CHECK_FALSE(Caller(old, 0, 0).capable(Capability::SysAdmin));
  kill(old, SIGKILL);
  waitpid(old, nullptr, 0);
  // The same number for a new process (clone3 set_tid), while the daemon
  // still holds what it opened for the old one.
  const pid_t reused = command_child(cmd[0], ack[1], "new-owner", old);
  if (reused < 0) {
    CHECK(Caller(old, 0, 0).comm().empty());  // gone
    MESSAGE("clone3 with set_tid refused here: the pid-reuse case is not checked");
  } else {
    REQUIRE(reused == old);
    tell(cmd[1], ack[0], "x");
    CHECK(Caller(reused, 0, 0).comm() == "new-owner");
    // The new process is root in the machine's namespace: what the daemon
    // held for the old one (its namespace link) must not answer for it.
    CHECK(Caller(reused, 0, 0).capable(Capability::SysAdmin));
    tell(cmd[1], ack[0], "n newer");
    CHECK(Caller(reused, 0, 0).comm() == "newer");
    tell(cmd[1], ack[0], "u");
    CHECK_FALSE(Caller(reused, 0, 0).capable(Capability::SysAdmin));
    kill(reused, SIGKILL);
    waitpid(reused, nullptr, 0);
  }
  for (int fd : {cmd[0], cmd[1], ack[0], ack[1]}) close(fd);
}

TEST_CASE("Caller with pid 0 (a PID namespace the daemon cannot see) has no capabilities") {
  // capget(2) with pid 0 answers with the calling process's own sets: the
  // daemon's. A caller FUSE could not name must not inherit them.
  Caller unseen(0, 0, 0);
  CHECK_FALSE(unseen.capable(Capability::SysAdmin));
  CHECK_FALSE(unseen.capable(Capability::NetAdmin));
  CHECK(unseen.comm().empty());
  CHECK(unseen.prio() == 120);
}

TEST_CASE("Caller in a child user namespace has none of the machine's capabilities") {
  if (getuid() != 0) return;  // an unprivileged unshare(CLONE_NEWUSER) may be off
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A new user namespace gives the child every capability, in it only.
    const char ok = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    pause();
    _exit(0);
  }
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  if (c == 'y') {
    // capget reports the full set the namespace gave it...
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, child};
    __user_cap_data_struct data[2]{};
    REQUIRE(syscall(SYS_capget, &hdr, data) == 0);
    const bool ns_admin = (data[CAP_SYS_ADMIN / 32].effective >> (CAP_SYS_ADMIN % 32)) & 1U;
    CHECK(ns_admin);
    // ...but over this machine it has none.
    Caller other(child, 0, 0);
    CHECK_FALSE(other.capable(Capability::SysAdmin));
    CHECK_FALSE(other.capable(Capability::NetAdmin));
  } else {
    MESSAGE("unshare(CLONE_NEWUSER) refused here: the user-namespace case is not checked");
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
}

}  // TEST_SUITE

TEST_CASE("split_words splits at kernel whitespace and stops at a NUL") {
  using V = std::vector<std::string_view>;
  CHECK(vsysfs::core::split_words("  count 5\tsize  64\n") == V{"count", "5", "size", "64"});
  CHECK(vsysfs::core::split_words(std::string_view("a b\0c d", 7)) == V{"a", "b"});
  CHECK(vsysfs::core::split_words("").empty());
  CHECK(vsysfs::core::split_words(" \n\t ").empty());
}

// A user's daemon (docs/permissions.md): every node the machine makes,
// before and after the build, is owned by the machine's owner, as
// kobject_get_ownership gives a user-namespaced netns's sysfs files to
// that namespace's root.
TEST_CASE("Tree gives every node, later ones too, to its owner; root by default") {
  vsysfs::core::Tree by_root;
  CHECK(by_root.get(vsysfs::core::kRootIno)->uid.load() == 0);
  CHECK(by_root.get(by_root.mkdir_p("devices/system"))->gid.load() == 0);

  vsysfs::core::Tree tree(vsysfs::core::Tree::Owner{1234, 5678});
  CHECK(tree.owner().uid == 1234);
  for (const vsysfs::core::Ino ino :
       {vsysfs::core::kRootIno, tree.mkdir_p("kernel/debug"),
        tree.add_symlink("class/net/eth0", "../../devices/virtual/net/eth0")}) {
    const auto node = tree.get(ino);
    REQUIRE(node);
    CHECK(node->uid.load() == 1234);
    CHECK(node->gid.load() == 5678);
  }
  // chown still changes one node only; new nodes keep the owner.
  const auto dev = tree.mkdir_p("devices/platform");
  CHECK(tree.set_owner(dev, 0, 0));
  CHECK(tree.get(dev)->uid.load() == 0);
  CHECK(tree.get(tree.mkdir_p("devices/platform/dcdbas"))->uid.load() == 1234);
}
