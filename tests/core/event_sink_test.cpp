// core/event_log: the -o events=FILE sink is a private file of the
// daemon's (docs/trust-files.md): created 0600, never through a symbolic
// link, and no FIFO, device or file someone else owns or can read.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include <doctest/doctest.h>

#include "core/clock.hpp"
#include "core/event_log.hpp"
#include "core/trusted_file.hpp"

namespace core = vsysfs::core;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/vsysfs-events-test.XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_SUITE("event_log") {
  TEST_CASE("the events file is created 0600 (whatever the umask) and appended to") {
    TempDir d;
    core::ManualClock clock;
    const mode_t old = umask(0);
    {
      core::EventLog log(clock);
      log.open_sink(d / "events");
      log.record(nullptr, "vsysfs", "mount", "OK");
    }
    umask(old);
    struct stat st {};
    REQUIRE(::stat((d / "events").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    {
      core::EventLog again(clock);
      again.open_sink(d / "events");
      again.record(nullptr, "vsysfs", "mount", "OK");
    }  // the sink is written by its own thread: closing the log drains it
    const std::string text = slurp(d / "events");
    CHECK(std::count(text.begin(), text.end(), '\n') == 2);
  }

  TEST_CASE("a symbolic link, a FIFO, a device, a readable or foreign file are refused") {
    TempDir d;
    core::ManualClock clock;
    core::EventLog log(clock);
    { std::ofstream(d / "victim") << "precious"; }
    REQUIRE(symlink((d / "victim").c_str(), (d / "link").c_str()) == 0);
    CHECK_THROWS_WITH_AS(log.open_sink(d / "link"),
                         ("events file " + d / "link" + ": is a symbolic link (refused)").c_str(),
                         core::TrustError);
    CHECK(slurp(d / "victim") == "precious");
    REQUIRE(mkfifo((d / "fifo").c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(log.open_sink(d / "fifo"),
                         ("events file " + d / "fifo" + ": not a regular file (a FIFO)").c_str(),
                         core::TrustError);
    CHECK_THROWS_WITH_AS(log.open_sink("/dev/null"),
                         "events file /dev/null: not a regular file (a character device)",
                         core::TrustError);
    REQUIRE(chmod((d / "victim").c_str(), 0644) == 0);
    CHECK_THROWS_WITH_AS(log.open_sink(d / "victim"),
                         ("events file " + d / "victim" +
                          ": mode 0644 gives group or others access (bits 0077 must be clear)")
                             .c_str(),
                         core::TrustError);
    if (geteuid() == 0) {
      REQUIRE(chmod((d / "victim").c_str(), 0600) == 0);
      REQUIRE(chown((d / "victim").c_str(), 65534, 65534) == 0);
      CHECK_THROWS_WITH_AS(log.open_sink(d / "victim"),
                           ("events file " + d / "victim" +
                            ": owned by uid 65534, not by the daemon's uid 0")
                               .c_str(),
                           core::TrustError);
    }
    CHECK(slurp(d / "victim") == "precious");
  }
}
