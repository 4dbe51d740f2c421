// fs::Server: the sysfs contract without a mount, on the test device.
#include "fs/server.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>

#include "tests/support/test_env.hpp"

using vsysfs::core::Caller;
using vsysfs::testing::TestMachine;

namespace {
constexpr const char* kMachine = "[testdev]\nvalue = 3\n";
constexpr const char* kDev = "devices/virtual/vsysfs_test/testdev0/";
std::string p(const char* attr) { return std::string(kDev) + attr; }
}  // namespace

TEST_SUITE("server") {

TEST_CASE("open applies the mode check even for root") {
  TestMachine m(kMachine);
  CHECK(m.open_errno(p("ro"), O_WRONLY) == -EACCES);
  CHECK(m.open_errno(p("ro"), O_RDWR) == -EACCES);
  CHECK(m.open_errno(p("wo"), O_RDONLY) == -EACCES);
  CHECK(m.open_errno(p("wo"), O_WRONLY) == 0);
  CHECK(m.open_errno(p("value"), O_RDWR) == 0);
  CHECK(m.open_errno(std::string(kDev) + "stats", O_RDONLY) == -EISDIR);
}

TEST_CASE("getattr: sizes and modes") {
  TestMachine m(kMachine);
  auto attr = [&](const std::string& path) { return *m.server.getattr(m.tree.resolve(path)); };
  CHECK(attr(p("value")).attr.st_size == 4096);
  CHECK((attr(p("value")).attr.st_mode & 07777) == 0644);
  CHECK(S_ISREG(attr(p("value")).attr.st_mode));
  CHECK(attr(p("blob")).attr.st_size == 64);
  CHECK(attr(p("stream")).attr.st_size == 0);
  CHECK(S_ISDIR(attr(p("stats")).attr.st_mode));
  CHECK(S_ISLNK(attr("class/vsysfs_test/testdev0").attr.st_mode));
  CHECK(m.server.getattr(99999).error().value() == ENOENT);
}

TEST_CASE("read: show at offset 0 into a snapshot, slices elsewhere, re-show at 0") {
  TestMachine m(kMachine);
  auto fh = *m.server.open(m.tree.resolve(p("shows")), O_RDONLY);
  auto root = Caller::root();
  std::string first(m.server.read(root, fh.fh, 1, 0)->bytes());
  std::string rest(m.server.read(root, fh.fh, 100, 1)->bytes());
  CHECK(first + rest == "1\n");
  CHECK(m.server.read(root, fh.fh, 100, 2)->bytes().empty());
  CHECK(m.server.read(root, fh.fh, 100, 0)->bytes() == "2\n");
  m.server.release(fh.fh);
}

TEST_CASE("a read result owns its bytes: it outlives the open file (close races the reply)") {
  // The reply completes the request, so the reader's close() and its
  // RELEASE may free the open file before the read result is destroyed.
  TestMachine m(kMachine);
  auto root = Caller::root();
  for (const char* attr : {"value", "blob"}) {
    auto fh = *m.server.open(m.tree.resolve(p(attr)), O_RDONLY);
    auto r = m.server.read(root, fh.fh, 4096, 0);
    REQUIRE(r);
    const std::string before(r->bytes());
    m.server.release(fh.fh);  // under SANITIZE=address, any reference to it is caught
    CHECK(std::string(r->bytes()) == before);
  }
  auto fh = *m.server.open(m.tree.resolve(p("value")), O_RDONLY);
  CHECK(m.server.read(root, fh.fh, 4096, 0)->bytes() == "3\n");
  m.server.release(fh.fh);
}

TEST_CASE("write: offset ignored, page cap, NUL termination, zero length") {
  TestMachine m(kMachine);
  CHECK(m.write(p("value"), "12", Caller::root(), 4000) == 2);
  CHECK(m.read(p("value")) == "12\n");
  CHECK(m.write(p("sink"), std::string(9000, 'x')) == 4096);
  CHECK(m.read(p("sink")) == "len=4096 nul=1\n");
  CHECK(m.write(p("value"), "") == 0);
  CHECK(m.write(p("value"), "nope") == -EINVAL);
  CHECK(m.read(p("value")) == "12\n");
}

TEST_CASE("binary: size bounds, EFBIG, page per call") {
  TestMachine m(kMachine);
  CHECK(m.write(p("blob"), "abcdef", Caller::root(), 60) == 4);
  CHECK(m.pread(p("blob"), 10, 60) == "abcd");
  CHECK(m.pread(p("blob"), 10, 64).empty());
  CHECK(m.write(p("blob"), "z", Caller::root(), 64) == -EFBIG);
  CHECK(m.write(p("stream"), std::string(5000, 'q')) == 4096);
  CHECK(m.pread(p("stream"), 10000, 0).size() == 4096);
}

TEST_CASE("poll reports POLLPRI|POLLERR after a notify, until the next show") {
  TestMachine m(kMachine);
  auto fh = *m.server.open(m.tree.resolve(p("value")), O_RDONLY);
  auto root = Caller::root();
  (void)m.server.read(root, fh.fh, 4096, 0);
  const unsigned base = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
  CHECK(m.server.poll(fh.fh, nullptr)->revents == base);
  CHECK(m.write("kernel/debug/vsysfs/testdev/set", "5") == 1);
  CHECK(m.server.poll(fh.fh, nullptr)->revents == (base | POLLPRI | POLLERR));
  (void)m.server.read(root, fh.fh, 4096, 0);
  CHECK(m.server.poll(fh.fh, nullptr)->revents == base);
  m.server.release(fh.fh);
}

TEST_CASE("a removed device: lookups fail, open files get ENODEV") {
  TestMachine m(kMachine);
  CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "add hot") == 7);
  const auto ino = m.tree.resolve("devices/virtual/vsysfs_test/hot/value");
  REQUIRE(ino != 0);
  auto fh = *m.server.open(ino, O_RDONLY);
  CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "remove hot") == 10);
  CHECK_FALSE(m.exists("devices/virtual/vsysfs_test/hot"));
  CHECK_FALSE(m.exists("class/vsysfs_test/hot"));
  CHECK(m.server.read(Caller::root(), fh.fh, 10, 0).error().value() == ENODEV);
  CHECK(m.server.write(Caller::root(), fh.fh, "1", 0).error().value() == ENODEV);
  m.server.release(fh.fh);
  for (const char* bad : {"add", "add ", "add a/b", "add testdev0", "remove nothere", "frob x"}) {
    CAPTURE(bad);
    CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", bad) < 0);
  }
}

TEST_CASE("setattr: chmod/chown stick; size changes are ignored (kernfs)") {
  TestMachine m(kMachine);
  const auto ino = m.tree.resolve(p("value"));
  vsysfs::fs::SetAttrIn in;
  in.set_mode = true;
  in.mode = 0600;
  in.set_size = true;
  auto r = m.server.setattr(Caller::root(), ino, in);
  REQUIRE(r);
  CHECK((r->attr.st_mode & 07777) == 0600);
  CHECK(r->attr.st_size == 4096);
  CHECK(m.read(p("value")) == "3\n");
}

TEST_CASE("seq files have no page limit") {
  TestMachine m(kMachine);
  for (int i = 0; i < 200; ++i) CHECK(m.write(p("wo"), std::string(30, 'a' + i % 26)) == 30);
  const std::string events = m.read("kernel/debug/vsysfs/events");
  CHECK(events.size() > 4096);
  CHECK(std::count(events.begin(), events.end(), '\n') >= 200);
}

// FLUSH names the closing process; RELEASE the open file description.
TEST_CASE("close: a process's POSIX locks go at any close; OFD locks and flocks at the last") {
  using vsysfs::core::LockOwner;
  using vsysfs::core::LockType;
  using vsysfs::core::PosixRange;
  using vsysfs::core::Status;
  TestMachine m(kMachine);
  const auto ino = m.tree.resolve(p("value"));
  auto fa = m.server.open(ino, O_RDWR)->fh;  // process A's description
  auto fb = m.server.open(ino, O_RDWR)->fh;  // A's second one
  auto fo = m.server.open(ino, O_RDWR)->fh;  // an OFD locker's
  constexpr std::uint64_t kProcA = 0xa, kProcB = 0xb;
  const std::uint64_t ofd_owner = 0x5eed;  // the kernel's id for fo's struct file
  int oks = 0;
  auto count = [&](Status s) { oks += s ? 1 : 0; };
  auto& locks = m.server.locks();
  locks.setlk(locks.new_ticket(), ino, "value", LockOwner{kProcA, 1, "a", 120, fa},
              LockType::Write, PosixRange{0, 9}, false, count);
  locks.setlk(locks.new_ticket(), ino, "value", LockOwner{ofd_owner, 2, "o", 120, fo},
              LockType::Write, PosixRange{20, 29}, false, count);
  locks.flock(locks.new_ticket(), ino, "value", LockOwner{fo, 2, "o", 120, fo}, LockType::Write,
              false, count);
  CHECK(oks == 3);
  auto held = [&](PosixRange r) {
    return bool(locks.getlk(ino, LockOwner{kProcB, 3, "b", 120, 0}, LockType::Write, r));
  };
  // A closes its other description: FLUSH(A) drops A's lock (POSIX rule),
  // RELEASE(fb) has nothing of its own.
  m.server.flush_locks(ino, kProcA);
  m.server.release_locks(ino, fb, false);
  m.server.release(fb);
  CHECK_FALSE(held({0, 9}));
  CHECK(held({20, 29}));
  // A dup of fo is closed by its process: FLUSH names the process, and the
  // OFD lock stays.
  m.server.flush_locks(ino, kProcB);
  CHECK(held({20, 29}));
  // The last close of fo: the OFD lock and the flock go.
  m.server.flush_locks(ino, kProcB);
  m.server.release_locks(ino, fo, true);
  m.server.release(fo);
  CHECK_FALSE(held({20, 29}));
  CHECK_FALSE(locks.exclusive_holder(ino));
  m.server.release_locks(ino, fa, false);
  m.server.release(fa);
}

}  // TEST_SUITE
