// core/trusted_file: the checks behind every file the daemon opens
// (docs/trust-files.md): directory chains, private regular files, bounded
// reads that never block on a FIFO or stream a device.
#include "core/trusted_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <doctest/doctest.h>

namespace core = vsysfs::core;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/trustfiles-unit.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st;
}

}  // namespace

TEST_SUITE("trusted_file") {
  TEST_CASE("absolute_keep_last resolves the directory, never a link at the last component") {
    TempDir d;
    REQUIRE(mkdir((d / "real").c_str(), 0700) == 0);
    REQUIRE(symlink((d / "real").c_str(), (d / "dirlink").c_str()) == 0);
    REQUIRE(symlink("elsewhere", (d / "real/state").c_str()) == 0);
    CHECK(core::absolute_keep_last(d / "dirlink/state", "state file") == d / "real/state");
    char cwd[4096];
    REQUIRE(getcwd(cwd, sizeof cwd));
    REQUIRE(chdir(d.path.c_str()) == 0);
    CHECK(core::absolute_keep_last("state", "state file") == d / "state");
    REQUIRE(chdir(cwd) == 0);
    CHECK_THROWS_WITH_AS(core::absolute_keep_last(d / "missing/state", "state file"),
                         (std::string("state file ") + d / "missing/state" + ": directory " +
                          d / "missing" + ": No such file or directory")
                             .c_str(),
                         core::TrustError);
    CHECK_THROWS_AS(core::absolute_keep_last(d / "real/..", "state file"), core::TrustError);
    CHECK_THROWS_AS(core::absolute_keep_last(d.path + "/", "state file"), core::TrustError);
  }

  TEST_CASE("untrusted_directory: owner root or us; group/other-writable only with the sticky bit") {
    if (geteuid() != 0) return;  // the checks name uid 0 and chown to 65534
    TempDir d;
    CHECK(core::untrusted_directory(d.path) == "");
    CHECK(core::untrusted_directory("/") == "");
    const std::string sub = d / "sub";
    REQUIRE(mkdir(sub.c_str(), 0700) == 0);
    REQUIRE(chmod(d.path.c_str(), 0777) == 0);
    CHECK(core::untrusted_directory(sub) ==
          "directory " + d.path + " is writable by others without the sticky bit (mode 0777)");
    REQUIRE(chmod(d.path.c_str(), 0770) == 0);
    CHECK(core::untrusted_directory(sub) ==
          "directory " + d.path + " is writable by its group without the sticky bit (mode 0770)");
    REQUIRE(chmod(d.path.c_str(), 01777) == 0);
    CHECK(core::untrusted_directory(sub) == "");
    REQUIRE(chmod(d.path.c_str(), 0700) == 0);
    REQUIRE(chown(sub.c_str(), 65534, 65534) == 0);
    CHECK(core::untrusted_directory(sub) ==
          "directory " + sub + " is owned by uid 65534 (neither root nor the daemon's uid 0)");
  }

  TEST_CASE("untrusted_file: regular, ours, no forbidden mode bits, one link, bounded") {
    if (geteuid() != 0) return;
    TempDir d;
    const std::string f = d / "f";
    write_file(f, "12345");
    REQUIRE(chmod(f.c_str(), 0600) == 0);
    CHECK(core::untrusted_file(stat_of(f), 022, 0) == "");
    CHECK(core::untrusted_file(stat_of(f), 022, 5) == "");
    CHECK(core::untrusted_file(stat_of(f), 022, 4) == "5 bytes, over the limit of 4 bytes");
    REQUIRE(chmod(f.c_str(), 0644) == 0);
    CHECK(core::untrusted_file(stat_of(f), 022, 0) == "");
    CHECK(core::untrusted_file(stat_of(f), 077, 0) ==
          "mode 0644 gives group or others access (bits 0077 must be clear)");
    REQUIRE(chmod(f.c_str(), 0620) == 0);
    CHECK(core::untrusted_file(stat_of(f), 022, 0) ==
          "mode 0620 gives group or others access (bits 0022 must be clear)");
    REQUIRE(chmod(f.c_str(), 0600) == 0);
    REQUIRE(link(f.c_str(), (d / "g").c_str()) == 0);
    CHECK(core::untrusted_file(stat_of(f), 022, 0) == "has 2 hard links (expected 1)");
    REQUIRE(unlink((d / "g").c_str()) == 0);
    REQUIRE(chown(f.c_str(), 65534, 0) == 0);
    CHECK(core::untrusted_file(stat_of(f), 022, 0) == "owned by uid 65534, not by the daemon's uid 0");
    REQUIRE(mkfifo((d / "p").c_str(), 0600) == 0);
    CHECK(core::untrusted_file(stat_of(d / "p"), 022, 0) == "not a regular file (a FIFO)");
    REQUIRE(symlink("f", (d / "l").c_str()) == 0);
    CHECK(core::untrusted_file(stat_of(d / "l"), 022, 0) == "not a regular file (a symbolic link)");
    CHECK(core::untrusted_file(stat_of(d.path), 022, 0) == "not a regular file (a directory)");
  }

  TEST_CASE("read_regular_file reads at most the limit and refuses devices") {
    TempDir d;
    const std::string f = d / "m.toml";
    write_file(f, std::string(1024, 'x'));
    CHECK(core::read_regular_file(f, 1024).size() == 1024);
    CHECK_THROWS_WITH_AS(core::read_regular_file(f, 1023),
                         (f + ": 1024 bytes, over the limit of 1023 bytes").c_str(),
                         core::TrustError);
    // /dev/zero never ends: refused before a byte is read.
    CHECK_THROWS_WITH_AS(core::read_regular_file("/dev/zero", core::kMaxMachineFileBytes),
                         "/dev/zero: not a regular file (a character device)", core::TrustError);
    CHECK_THROWS_WITH_AS(core::read_regular_file(d.path, 10),
                         (d.path + ": not a regular file (a directory)").c_str(), core::TrustError);
    // A FIFO with no writer: O_NONBLOCK opens it at once, fstat refuses it.
    REQUIRE(mkfifo((d / "p").c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(core::read_regular_file(d / "p", 10),
                         (d / "p" + ": not a regular file (a FIFO)").c_str(), core::TrustError);
    // A symbolic link is followed: what it points to is checked.
    REQUIRE(symlink("m.toml", (d / "l").c_str()) == 0);
    CHECK(core::read_regular_file(d / "l", 1024).size() == 1024);
    REQUIRE(symlink("/dev/zero", (d / "z").c_str()) == 0);
    CHECK_THROWS_AS(core::read_regular_file(d / "z", 1024), core::TrustError);
  }
}
