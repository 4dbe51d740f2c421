// core/state_journal: record format, CRC, torn/corrupt tails, compaction,
// and the file operations (snapshot by rename, append); the trust checks
// at load (docs/trust-files.md) and the one-daemon-per-file lock.
#include "core/state_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "core/trusted_file.hpp"

using vsysfs::core::StateRecord;
namespace core = vsysfs::core;

namespace {

std::vector<StateRecord> sample() {
  return {
      StateRecord::store("devices/a/value", "12\n"),
      StateRecord::bin_write("devices/a/blob", std::string("\0\1\2", 3), 17, 1000, 1000),
      StateRecord::chmod("devices/a/value", 0666),
      StateRecord::chown("devices/a/value", 65534, static_cast<std::uint32_t>(-1)),
  };
}

std::string file_of(const std::vector<StateRecord>& recs) {
  std::string f(core::kStateHeader);
  for (const auto& r : recs) f += core::encode_record(r);
  return f;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/vsysfs-journal-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  REQUIRE(chmod(path.c_str(), 0600) == 0);
}

}  // namespace

TEST_SUITE("state_journal") {
  TEST_CASE("crc32 is zlib's CRC-32") {
    CHECK(core::crc32("123456789") == 0xCBF43926u);
    CHECK(core::crc32("") == 0u);
    CHECK(core::crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339u);
  }

  TEST_CASE("records round-trip through the file format") {
    const auto recs = sample();
    const auto d = core::decode_journal(file_of(recs));
    CHECK(d.problem.empty());
    CHECK(d.records == recs);
    CHECK(d.valid_bytes == d.file_bytes);
    CHECK(core::decode_journal("").records.empty());
    CHECK(core::decode_journal("").problem.empty());
  }

  TEST_CASE("a torn tail at every length is detected and the prefix kept") {
    const auto recs = sample();
    const std::string full = file_of(recs);
    std::vector<std::size_t> ends{core::kStateHeader.size()};
    for (const auto& r : recs) ends.push_back(ends.back() + core::encode_record(r).size());
    for (std::size_t len = 1; len < full.size(); ++len) {
      const auto d = core::decode_journal(std::string_view(full).substr(0, len));
      std::size_t whole = 0;
      while (whole < recs.size() && ends[whole + 1] <= len) ++whole;
      CAPTURE(len);
      CHECK(d.records.size() == whole);
      const bool on_boundary = len >= core::kStateHeader.size() && ends[whole] == len;
      CHECK(d.problem.empty() == on_boundary);
      CHECK(d.valid_bytes == (len < core::kStateHeader.size() ? 0 : ends[whole]));
    }
  }

  TEST_CASE("a flipped bit anywhere in a record is detected; earlier records survive") {
    const auto recs = sample();
    const std::string full = file_of(recs);
    const std::size_t second = core::kStateHeader.size() + core::encode_record(recs[0]).size();
    for (std::size_t i = second; i < full.size(); ++i) {
      std::string bad = full;
      bad[i] = static_cast<char>(bad[i] ^ 0x10);
      const auto d = core::decode_journal(bad);
      CAPTURE(i);
      CHECK_FALSE(d.problem.empty());
      REQUIRE(d.records.size() >= 1);
      CHECK(d.records[0] == recs[0]);
      CHECK(d.records.size() < recs.size());
    }
  }

  TEST_CASE("a file that is not a state file is refused, not replayed") {
    const auto d = core::decode_journal("[machine]\nname = \"x\"\n");
    CHECK(d.problem.find("not a vsysfs state file") == 0);
    CHECK(d.records.empty());
  }

  TEST_CASE("compact keeps every store and the last chmod/chown of a run") {
    std::vector<StateRecord> recs{
        StateRecord::chmod("a", 0600),  StateRecord::chmod("b", 0600),
        StateRecord::chmod("a", 0644),  StateRecord::store("h", "add x\n"),
        StateRecord::store("h", "add x\n"), StateRecord::chown("a", 1, 0),
        StateRecord::chown("a", 2, 0),
    };
    const auto c = core::compact(recs);
    REQUIRE(c.size() == 5);
    CHECK(c[0] == recs[1]);
    CHECK(c[1] == recs[2]);
    CHECK(c[2] == recs[3]);
    CHECK(c[3] == recs[4]);
    CHECK(c[4] == recs[6]);
  }

  TEST_CASE("rewrite makes a snapshot by rename; append adds durable records") {
    char tmpl[] = "/tmp/vsysfs-journal-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const std::string path = std::string(tmpl) + "/state";
    {
      core::StateJournal j(path);
      CHECK(j.load().records.empty());
      j.rewrite({sample()[0]});
      CHECK(access((path + ".tmp").c_str(), F_OK) != 0);
      std::lock_guard lock(j.order_mutex());
      CHECK(j.append(sample()[1]));
      CHECK(j.append(sample()[2]));
      CHECK(j.appended() == 2);
    }
    core::StateJournal again(path);
    auto d = again.load();
    CHECK(d.problem.empty());
    REQUIRE(d.records.size() == 3);
    CHECK(d.records[2] == sample()[2]);
    // A torn tail on disk: detected, and the rewrite drops it.
    {
      std::ofstream out(path, std::ios::binary | std::ios::app);
      out << core::encode_record(sample()[3]).substr(0, 9);
    }
    d = again.load();
    CHECK_FALSE(d.problem.empty());
    CHECK(d.records.size() == 3);
    again.rewrite(d.records);
    CHECK(core::decode_journal(slurp(path)).problem.empty());
    CHECK(core::decode_journal(slurp(path)).records.size() == 3);
    std::remove(path.c_str());
    std::remove((path + ".lock").c_str());
    rmdir(tmpl);
  }

  TEST_CASE("a base (version 2): renamed in, records after it, damage refused") {
    TempDir d;
    const std::string path = d / "state";
    const std::string base = "the machine's snapshot files";
    {
      core::StateJournal j(path);
      (void)j.load();
      std::lock_guard lock(j.order_mutex());
      j.rewrite_base(base);
      CHECK(j.journal_bytes() == 0);
      CHECK(access((path + ".tmp").c_str(), F_OK) != 0);
      CHECK(j.append(sample()[1]));
      CHECK(j.journal_bytes() == core::encode_record(sample()[1]).size());
    }
    std::string file = slurp(path);
    CHECK(file.substr(0, 16) == core::kStateHeaderV2);
    auto dec = core::decode_journal(file);
    CHECK(dec.problem.empty());
    CHECK(dec.has_base);
    CHECK(dec.base == base);
    REQUIRE(dec.records.size() == 1);
    CHECK(dec.records[0] == sample()[1]);
    // Every cut inside the base is damage (a base is only ever renamed in
    // whole), every cut after it a torn record.
    const std::size_t base_end = 16 + 16 + base.size();
    for (std::size_t n = 17; n < file.size(); ++n) {
      CAPTURE(n);
      auto cut = core::decode_journal(file.substr(0, n));
      CHECK(cut.bad_base == (n < base_end));
      CHECK(cut.problem.empty() == (n == base_end));
    }
    // A damaged base refuses the load, naming the problem.
    file[base_end - 1] = static_cast<char>(file[base_end - 1] ^ 1);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << file;
    core::StateJournal again(path);
    CHECK_THROWS_WITH(again.load(), doctest::Contains("base checksum mismatch"));
  }

  TEST_CASE("one journal per file: FILE.lock names the holder and survives the rename") {
    TempDir d;
    const std::string path = d / "state";
    auto first = std::make_unique<core::StateJournal>(path);
    CHECK(first->load().records.empty());
    first->rewrite({sample()[0]});  // FILE is now a new inode; the lock is not on it
    core::StateJournal second(path);
    CHECK_THROWS_WITH_AS(second.load(),
                         fmt::format("state file {} is in use by pid {} (lock {}.lock)", path,
                                     getpid(), path)
                             .c_str(),
                         std::runtime_error);
    first.reset();  // released with its holder
    CHECK(second.load().records.size() == 1);
  }

  TEST_CASE("a lock holder that wrote no pid is found in /proc/locks") {
    TempDir d;
    const std::string path = d / "state";
    const int fd = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    core::StateJournal j(path);
    CHECK_THROWS_WITH_AS(j.load(),
                         fmt::format("state file {} is in use by pid {} (lock {}.lock)", path,
                                     getpid(), path)
                             .c_str(),
                         std::runtime_error);
    ::close(fd);
  }

  TEST_CASE("symbolic links: FILE.tmp's target is never truncated; a link at FILE is refused") {
    TempDir d;
    const std::string path = d / "state";
    write_text(d / "victim", "precious");
    REQUIRE(symlink((d / "victim").c_str(), (path + ".tmp").c_str()) == 0);
    {
      core::StateJournal j(path);
      CHECK(j.load().records.empty());
      j.rewrite({sample()[0]});
    }
    CHECK(slurp(d / "victim") == "precious");
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(::lstat((path + ".tmp").c_str(), &st) != 0);
    // FILE itself a link to a valid state file: refused, left as it is.
    REQUIRE(std::rename(path.c_str(), (d / "real").c_str()) == 0);
    REQUIRE(symlink((d / "real").c_str(), path.c_str()) == 0);
    core::StateJournal j(path);
    CHECK_THROWS_WITH_AS(j.load(), ("state file " + path + ": is a symbolic link (refused)").c_str(),
                         std::runtime_error);
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    // A link at FILE.lock: refused too, its target untouched.
    TempDir d2;
    REQUIRE(symlink((d2 / "victim").c_str(), (d2 / "state.lock").c_str()) == 0);
    CHECK_THROWS_WITH_AS(core::StateJournal(d2 / "state").load(),
                         ("state file " + d2 / "state" + ": lock file " + d2 / "state.lock" +
                          ": is a symbolic link (refused)")
                             .c_str(),
                         std::runtime_error);
    CHECK(::lstat((d2 / "victim").c_str(), &st) != 0);
  }

  TEST_CASE("a planted state file is refused: another owner, writable by others, open directory") {
    if (geteuid() != 0) return;
    TempDir d;
    const std::string path = d / "state";
    write_text(path, file_of(sample()));
    REQUIRE(chown(path.c_str(), 65534, 65534) == 0);
    CHECK_THROWS_WITH_AS(core::StateJournal(path).load(),
                         ("state file " + path + ": owned by uid 65534, not by the daemon's uid 0").c_str(),
                         std::runtime_error);
    REQUIRE(chown(path.c_str(), 0, 0) == 0);
    REQUIRE(chmod(path.c_str(), 0666) == 0);
    CHECK_THROWS_WITH_AS(core::StateJournal(path).load(),
                         ("state file " + path +
                          ": mode 0666 gives group or others access (bits 0022 must be clear)")
                             .c_str(),
                         std::runtime_error);
    REQUIRE(chmod(path.c_str(), 0600) == 0);
    CHECK(core::StateJournal(path).load().records.size() == sample().size());
    REQUIRE(chmod(d.path.c_str(), 0777) == 0);
    CHECK_THROWS_WITH_AS(core::StateJournal(path).load(),
                         ("state file " + path + ": directory " + d.path +
                          " is writable by others without the sticky bit (mode 0777)")
                             .c_str(),
                         std::runtime_error);
  }

  TEST_CASE("size bound: a larger file is refused at load, append stops short of it (EFBIG)") {
    TempDir d;
    const std::string path = d / "state";
    core::StateJournal j(path);
    CHECK(j.load().records.empty());
    j.rewrite({});
    // Sparse: no disk used.
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(core::kMaxStateFileBytes) - 10) == 0);
    {
      std::lock_guard lock(j.order_mutex());
      auto st = j.append(sample()[0]);
      REQUIRE_FALSE(st);
      CHECK(st.error().value() == EFBIG);
    }
    REQUIRE(::truncate(path.c_str(), static_cast<off_t>(core::kMaxStateFileBytes) + 1) == 0);
    CHECK_THROWS_WITH_AS(j.load(),
                         fmt::format("state file {}: {} bytes, over the limit of {} bytes", path,
                                     core::kMaxStateFileBytes + 1, core::kMaxStateFileBytes)
                             .c_str(),
                         std::runtime_error);
  }

  TEST_CASE("a FIFO or a device as state file is refused without blocking") {
    TempDir d;
    const std::string path = d / "state";
    REQUIRE(mkfifo(path.c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(core::StateJournal(path).load(),
                         ("state file " + path + ": not a regular file (a FIFO)").c_str(),
                         std::runtime_error);
  }
}
