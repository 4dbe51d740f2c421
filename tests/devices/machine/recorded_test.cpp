// Recorded files (devices/machine/recorded.hpp): replayed read-only with
// their modes, sizes, bytes or errno; the model wins over a recording and
// says so; paths and link targets never leave the tree; bounds checked.
#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include <doctest/doctest.h>

#include "core/config.hpp"
#include "tests/support/test_env.hpp"

using vsysfs::core::ConfigError;
using vsysfs::testing::TestMachine;

namespace {

std::string error_of(const std::string& toml) {
  try {
    TestMachine m(toml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

const char* kRecording = R"(
[recorded]
dir = [ { path = "devices/system/cpu/cpufreq/policy0", mode = 0o755 },
        { path = "firmware/acpi", mode = 0o700 } ]
file = [
  { path = "devices/system/cpu/smt/control", mode = 0o644, size = 4096, text = "on\n" },
  { path = "devices/pci0000:00/0000:00:03.0/config", mode = 0o644, size = 8, hex = "f41a001000" },
  { path = "devices/pci0000:00/0000:00:03.0/resource0", mode = 0o600, size = 4096, errno = "EIO" },
  { path = "devices/system/cpu/online", mode = 0o444, size = 4096, text = "0-63\n" },
]
link = [ { path = "class/net/eth0", target = "../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0" } ]
)";

}  // namespace

TEST_SUITE("recorded") {
TEST_CASE("recorded files read back their bytes, modes and errno") {
  TestMachine m(kRecording);
  CHECK(m.read("devices/system/cpu/smt/control") == "on\n");
  CHECK(m.pread("devices/pci0000:00/0000:00:03.0/config", 16, 0) ==
        std::string("\xf4\x1a\x00\x10\x00", 5));
  CHECK(m.pread("devices/pci0000:00/0000:00:03.0/config", 16, 3) == std::string("\x10\x00", 2));
  CHECK(m.pread("devices/pci0000:00/0000:00:03.0/config", 16, 99) == "");
  CHECK(m.read("devices/pci0000:00/0000:00:03.0/resource0") == "<EIO>");
  CHECK(m.tree.find("devices/system/cpu/smt/control")->mode == 0644);
  CHECK(m.tree.find("firmware/acpi")->mode == 0700);
  CHECK(m.link_target("class/net/eth0") ==
        "../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0");
  // Replayed read-only: even a 0644 file refuses writers, as a kernfs
  // node without a write op does.
  CHECK(m.open_errno("devices/system/cpu/smt/control", O_WRONLY) == -EACCES);
  CHECK(m.read("devices/system/cpu/smt/control") == "on\n");
}

TEST_CASE("the model wins over a recording, and lists what it shadowed") {
  TestMachine m(kRecording);
  // devices/system/cpu/online is the NUMA model's (4 CPUs by default).
  CHECK(m.read("devices/system/cpu/online") == "0-3\n");
  CHECK(m.read("kernel/debug/vsysfs/recorded/shadowed") == "devices/system/cpu/online\n");
}

TEST_CASE("entries in each other's way are shadowed, never crash the build") {
  TestMachine m(R"(
[recorded]
dir = [ { path = "a/f/d", mode = 0o755 }, { path = "devices/system/cpu", mode = 0o700 } ]
file = [ { path = "a/f", mode = 0o444, text = "1" }, { path = "a/f", mode = 0o444, text = "2" },
         { path = "a/l/x", mode = 0o444, text = "3" } ]
link = [ { path = "a/l", target = "f" }, { path = "a/f", target = "l" } ]
)");
  // Directories come first (a/f/d makes a/f a directory), then files (a/l/x
  // makes a/l one), then links: whatever finds its path taken is listed.
  CHECK(m.tree.find("a/f/d")->is_dir());
  CHECK(m.read("a/l/x") == "3");
  // The model's directory keeps its mode.
  CHECK(m.tree.find("devices/system/cpu")->mode == 0755);
  CHECK(m.read("kernel/debug/vsysfs/recorded/shadowed") ==
        "devices/system/cpu\na/f\na/f\na/l\na/f\n");
}

TEST_CASE("paths and targets never leave the tree; bounds are checked") {
  auto file = [](const std::string& path) {
    return "[recorded]\nfile = [ { path = \"" + path + "\", mode = 0o444, text = \"x\" } ]\n";
  };
  CHECK(error_of(file("/etc/passwd")).find("relative to the mount root") != std::string::npos);
  for (const char* bad : {"a/../b", "a//b", "./a", "a/", ".."}) {
    CAPTURE(bad);
    CHECK(error_of(file(bad)).find("a component is empty") != std::string::npos);
  }
  CHECK(error_of(file("kernel/debug/vsysfs/clock")).find("control plane") != std::string::npos);
  CHECK(error_of(file(std::string(256, 'a'))).find("longer than 255") != std::string::npos);
  auto link = [](const std::string& path, const std::string& target) {
    return "[recorded]\nlink = [ { path = \"" + path + "\", target = \"" + target + "\" } ]\n";
  };
  CHECK(error_of(link("a/b/l", "../../x")) == "");
  CHECK(error_of(link("a/b/l", "../../../x")).find("climbs above the mount root") !=
        std::string::npos);
  CHECK(error_of(link("a/l", "/etc")).find("relative") != std::string::npos);
  CHECK(error_of(link("a/b/l", "../x/../../..")).find("inner") != std::string::npos);
  CHECK(error_of(link("a/b/l", "..")).find("names something") != std::string::npos);
  CHECK(error_of("[recorded]\nfile = [ { path = \"a\", mode = 0o4755, text = \"\" } ]\n")
            .find("a mode is 0..0o777") != std::string::npos);
  CHECK(
      error_of("[recorded]\nfile = [ { path = \"a\", mode = 0o444, text = \"\", hex = \"00\" } ]\n")
          .find("exactly one of") != std::string::npos);
  CHECK(error_of("[recorded]\nfile = [ { path = \"a\", mode = 0o444, hex = \"0\" } ]\n")
            .find("even number") != std::string::npos);
  CHECK(error_of("[recorded]\nfile = [ { path = \"a\", mode = 0o444, errno = \"EWHAT\" } ]\n")
            .find("not an errno name") != std::string::npos);
  CHECK(error_of("[recorded]\nfile = [ { path = \"a\", mode = 0o444, text = \"" +
                 std::string((1U << 20) + 1, 'x') + "\" } ]\n")
            .find("more than 1048576 bytes") != std::string::npos);
}
}  // TEST_SUITE("recorded")

// [numa] memory_blocks / memory_kb: a recorded machine's block layout,
// holes included, and its MemTotal (the pages the kernel reserved spread
// over the blocks).
TEST_SUITE("recorded_numa") {
TEST_CASE("memory_blocks keeps the recorded block ids; memory_kb the recorded MemTotal") {
  TestMachine m(R"(
[numa]
memory_block_size_mb = 128
[[numa.node]]
cpus = "0"
memory_blocks = "0-1,4"
memory_kb = 300000
[[numa.node]]
cpus = "1"
memory_blocks = "2"
)");
  CHECK(m.exists("devices/system/memory/memory0"));
  CHECK(m.exists("devices/system/memory/memory1"));
  CHECK_FALSE(m.exists("devices/system/memory/memory3"));  // the hole
  CHECK(m.link_target("devices/system/memory/memory4/node0") == "../../node/node0");
  CHECK(m.link_target("devices/system/memory/memory2/node1") == "../../node/node1");
  CHECK(m.read("devices/system/memory/memory4/phys_index") == "00000004\n");
  CHECK(m.read("devices/system/node/node0/meminfo")
            .starts_with("Node 0 MemTotal:         300000 kB\n"));
  // Without memory_kb: the blocks' size.
  CHECK(m.read("devices/system/node/node1/meminfo")
            .starts_with("Node 1 MemTotal:         131072 kB\n"));
}

TEST_CASE("memory_blocks errors name the key") {
  auto numa = [](const std::string& node0) {
    return "[numa]\nmemory_block_size_mb = 128\n[[numa.node]]\ncpus = \"0\"\n" + node0 +
           "\n[[numa.node]]\ncpus = \"1\"\nmemory_blocks = \"2\"\n";
  };
  CHECK(error_of(numa("memory_blocks = \"0-2\"")).find("memory block 2 belongs to another node") !=
        std::string::npos);
  CHECK(error_of(numa("memory_blocks = \"0\"\nmemory_kb = 131073"))
            .find("more than the node's memory_blocks hold") != std::string::npos);
  CHECK(error_of(numa("memory_blocks = \"0\"\nmemory_kb = 1\nmemory_mb = 1"))
            .find("memory_mb or memory_kb, not both") != std::string::npos);
  CHECK(error_of(numa("memory_mb = 128")).find("needs them on every node with memory") !=
        std::string::npos);
  CHECK(error_of("[numa]\n[[numa.node]]\ncpus = \"0\"\nmemory_blocks = \"0\"\n")
            .find("needs [numa] memory_block_size_mb") != std::string::npos);
}

// Regression (fuzz_machine timeout: [xen] memory = "4E" made the default
// topology a node of 4 EiB, and the mount tried to make 2^31 memory blocks).
TEST_CASE("a machine whose memory needs more than 65536 memory blocks is a machine-file error") {
  // 1 TiB nodes: 2 GiB blocks (64 GiB and more), 512 blocks each.
  auto nodes = [](int n, const char* memory) {
    std::string t = "[numa]\nnr_cpus = " + std::to_string(n) + "\n";
    for (int i = 0; i < n; ++i)
      t += "[[numa.node]]\ncpus = \"" + std::to_string(i) + "\"\n" + memory + "\n";
    return t;
  };
  // 129 nodes of 1 TiB: 66048 blocks (no block is made before the check).
  CHECK(error_of(nodes(129, "memory_mb = 1048576"))
            .find("66048 memory blocks of 2048 MiB; a machine has at most 65536") !=
        std::string::npos);
  CHECK(error_of(nodes(1, "memory_mb = 4294967296")).find("at most 65536") !=
        std::string::npos);  // 4 PiB
  // Without [numa], the memory is [xen]'s: the error names that key.
  const std::string xen = "[xen]\nhost_memory = \"16G\"\nmemory = ";
  const std::string big = error_of(xen + "\"256T\"\n");
  CHECK(big.find("at most 65536") != std::string::npos);
  CHECK(big.find("memory") != std::string::npos);
  // What only build_xen takes or refuses is its to report.
  CHECK(error_of(xen + "\"4E\"\n").find("K/M/G/T suffix") != std::string::npos);
  const std::string huge = error_of(xen + "4611686018427387904\n");
  CHECK(!huge.empty());
  CHECK(huge.find("memory blocks") == std::string::npos);
}
}  // TEST_SUITE("recorded_numa")

// A recorded machine restores (docs/snapshot.md): the section keeps no
// state of its own, and the modes and owners a client changes on recorded
// directories, files and links (chmod, chown, chown -h) are in every
// snapshot.
TEST_CASE("recorded snapshot: a recorded machine restores its modes and owners, links too") {
  TestMachine m(kRecording);
  const char* kSnap = "kernel/debug/vsysfs/machine/snapshot";
  const char* kRestore = "kernel/debug/vsysfs/machine/restore";
  CHECK(m.write(kSnap, "base") == 4);
  const auto dir = m.tree.resolve("firmware/acpi");
  const auto file = m.tree.resolve("devices/system/cpu/smt/control");
  const auto link = m.tree.resolve("class/net/eth0");
  REQUIRE((dir && file && link));
  REQUIRE(m.tree.get(link)->kind == vsysfs::core::NodeKind::Symlink);
  REQUIRE(m.tree.set_mode(dir, 0755));
  REQUIRE(m.tree.set_mode(file, 0600));
  REQUIRE(m.tree.set_owner(file, 1000, 1000));
  REQUIRE(m.tree.set_owner(link, 1001, 1002));
  CHECK(m.write(kRestore, "base") == 4);
  CHECK(m.tree.get(dir)->mode.load() == 0700);
  CHECK(m.tree.get(file)->mode.load() == 0644);
  CHECK(m.tree.get(file)->uid.load() == 0);
  CHECK(m.tree.get(link)->uid.load() == 0);
  CHECK(m.tree.get(link)->gid.load() == 0);
  CHECK(m.read("devices/system/cpu/smt/control") == "on\n");
}
