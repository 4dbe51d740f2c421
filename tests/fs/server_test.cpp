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
  locks.setlk(locks.new_ticket(), ino, "value", LockOwner{kProcA, 1, "a", 120, 0, fa},
              LockType::Write, PosixRange{0, 9}, false, count);
  locks.setlk(locks.new_ticket(), ino, "value", LockOwner{ofd_owner, 2, "o", 120, 0, fo},
              LockType::Write, PosixRange{20, 29}, false, count);
  locks.flock(locks.new_ticket(), ino, "value", LockOwner{fo, 2, "o", 120, 0, fo},
              LockType::Write, false, count);
  CHECK(oks == 3);
  auto held = [&](PosixRange r) {
    return bool(locks.getlk(ino, LockOwner{kProcB, 3, "b", 120, 0, 0}, LockType::Write, r));
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

TEST_CASE("the show page is allocated by the first read, not at open") {
  TestMachine m(kMachine);
  auto fh = *m.server.open(m.tree.resolve(p("value")), O_RDWR);
  auto* of = reinterpret_cast<vsysfs::fs::OpenFile*>(fh.fh);
  CHECK(of->page == nullptr);
  CHECK(*m.server.write(Caller::root(), fh.fh, "5", 0) == 1);
  CHECK(of->page == nullptr);  // a store needs no show page
  CHECK(m.server.read(Caller::root(), fh.fh, 100, 0)->bytes() == "5\n");
  CHECK(of->page != nullptr);
  // The first read at a non-zero offset runs show() too (no snapshot yet).
  auto fh2 = *m.server.open(m.tree.resolve(p("value")), O_RDONLY);
  CHECK(m.server.read(Caller::root(), fh2.fh, 100, 1)->bytes() == "\n");
  m.server.release(fh.fh);
  m.server.release(fh2.fh);
}

TEST_CASE("page-cache reads are padded with zeros to the page, within the file size") {
  // fuse_read_folio takes a short reply for EOF and shrinks i_size
  // (Linux 6.12 fuse_short_read); read(2) replies stay exact.
  TestMachine m(kMachine);
  auto root = Caller::root();
  auto fh = *m.server.open(m.tree.resolve(p("value")), O_RDONLY);
  CHECK(m.server.read(root, fh.fh, 4096, 0)->bytes() == "3\n");
  auto paged = m.server.read(root, fh.fh, 4096, 0, true);
  REQUIRE(paged);
  CHECK(paged->bytes().size() == 4096);
  CHECK(paged->bytes().substr(0, 2) == "3\n");
  CHECK(paged->bytes().find_first_not_of('\0', 2) == std::string_view::npos);
  CHECK(m.server.read(root, fh.fh, 4096, 4096, true)->bytes().empty());  // past the size
  m.server.release(fh.fh);
  auto bin = *m.server.open(m.tree.resolve(p("blob")), O_RDONLY);  // 64 bytes
  CHECK(m.server.read(root, bin.fh, 4096, 0, true)->bytes().size() == 64);
  CHECK(m.server.read(root, bin.fh, 4096, 60, true)->bytes().size() == 4);
  m.server.release(bin.fh);
}

TEST_CASE("open with O_DIRECT is EINVAL, after the sysfs mode check") {
  TestMachine m(kMachine);
  CHECK(m.open_errno(p("value"), O_RDONLY | O_DIRECT) == -EINVAL);
  CHECK(m.open_errno(p("blob"), O_RDWR | O_DIRECT) == -EINVAL);
  CHECK(m.open_errno(p("ro"), O_WRONLY | O_DIRECT) == -EACCES);
}

TEST_CASE("setattr: growing past MAX_NON_LFS is EFBIG before anything changes") {
  TestMachine m(kMachine);
  const auto ino = m.tree.resolve(p("value"));
  vsysfs::fs::SetAttrIn in;
  in.set_mode = true;
  in.mode = 0600;
  in.set_size = true;
  in.size = off_t{1} << 40;
  CHECK(m.server.setattr(Caller::root(), ino, in).error().value() == EFBIG);
  CHECK((m.server.getattr(ino)->attr.st_mode & 07777) == 0644);
  CHECK(!m.tree.times(ino));
  in.size = vsysfs::fs::kSysfsMaxBytes;
  CHECK(m.server.setattr(Caller::root(), ino, in));
  CHECK((m.server.getattr(ino)->attr.st_mode & 07777) == 0600);
}

TEST_CASE("setattr keeps times like kernfs iattrs") {
  TestMachine m(kMachine);
  const auto ino = m.tree.resolve(p("value"));
  const auto mount_time = m.server.getattr(ino)->attr.st_mtim;
  vsysfs::fs::SetAttrIn in;
  in.set_atime = true;
  in.atime = {1, 2};
  in.set_mtime = true;
  in.mtime = {3, 4};
  auto r = m.server.setattr(Caller::root(), ino, in);
  REQUIRE(r);
  CHECK(r->attr.st_atim.tv_sec == 1);
  CHECK(r->attr.st_atim.tv_nsec == 2);
  CHECK(r->attr.st_mtim.tv_sec == 3);
  CHECK(r->attr.st_mtim.tv_nsec == 4);
  CHECK(r->attr.st_ctim.tv_sec >= mount_time.tv_sec);
  // Another node still shows the mount time.
  CHECK(m.server.getattr(m.tree.resolve(p("ro")))->attr.st_mtim.tv_sec == mount_time.tv_sec);
  // A truncate moves mtime to now (do_truncate's ATTR_MTIME).
  vsysfs::fs::SetAttrIn trunc;
  trunc.set_size = true;
  CHECK(m.server.setattr(Caller::root(), ino, trunc)->attr.st_mtim.tv_sec >= mount_time.tv_sec);
}

TEST_CASE("xattrs: kernfs namespaces, flags, listing order, trusted.* hidden without CAP_SYS_ADMIN") {
  TestMachine m(kMachine);
  const auto ino = m.tree.resolve(p("value"));
  CHECK(m.server.getxattr(ino, "user.x").error().value() == ENODATA);
  CHECK(m.server.setxattr(ino, "user.x", "v", 0).error().value() == EOPNOTSUPP);
  CHECK(m.server.getxattr(ino, "os2.x").error().value() == EOPNOTSUPP);
  CHECK(m.server.getxattr(ino, "security.").error().value() == EINVAL);
  CHECK(m.server.setxattr(ino, "trusted.b", "2", 0));
  CHECK(m.server.setxattr(ino, "security.a", "1", 0));
  CHECK(m.server.setxattr(ino, "trusted.b", "x", vsysfs::core::kXattrCreate).error().value() ==
        EEXIST);
  CHECK(m.server.setxattr(ino, "trusted.c", "x", vsysfs::core::kXattrReplace).error().value() ==
        ENODATA);
  CHECK(*m.server.getxattr(ino, "trusted.b") == "2");
  CHECK(*m.server.listxattr(Caller::root(), ino) == std::string("security.a\0trusted.b\0", 21));
  CHECK(*m.server.listxattr(Caller::user(1000), ino) == std::string("security.a\0", 11));
  CHECK(m.server.removexattr(ino, "trusted.b"));
  CHECK(m.server.removexattr(ino, "trusted.b").error().value() == ENODATA);
  // A removed node's iattrs go with it.
  CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "add hot") == 7);
  const auto hot = m.tree.resolve("devices/virtual/vsysfs_test/hot/value");
  REQUIRE(hot != 0);
  CHECK(m.server.setxattr(hot, "security.h", "1", 0));
  CHECK(m.tree.xattr_names(hot).size() == 1);
  CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "remove hot") == 10);
  CHECK(m.tree.xattr_names(hot).empty());
  CHECK(m.server.setxattr(hot, "security.h", "1", 0).error().value() == ENOENT);
}

TEST_CASE("chmod through a descriptor of a removed node succeeds and keeps no iattrs") {
  TestMachine m(kMachine);
  CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "add hot") == 7);
  const auto ino = m.tree.resolve("devices/virtual/vsysfs_test/hot/value");
  REQUIRE(ino != 0);
  m.tree.looked_up(*m.tree.get(ino));  // the kernel holds it: it stays addressable
  CHECK(m.write("kernel/debug/vsysfs/testdev/hotplug", "remove hot") == 10);
  vsysfs::fs::SetAttrIn in;
  in.set_mode = true;
  in.mode = 0600;
  CHECK(m.server.setattr(Caller::root(), ino, in));
  CHECK(!m.tree.times(ino));
}

}  // TEST_SUITE
