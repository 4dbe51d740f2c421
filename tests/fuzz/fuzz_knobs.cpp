// libFuzzer target: every writable file's command language, through the
// real fs::Server (open, write at an offset, read back), on a machine with
// every section the linked devices know (the test device, the control
// plane, and every device of the default machine).
// Input: a sequence of records [file][flags][len][bytes...]; `file` picks a
// writable file (rediscovered after each write: hotplug reshapes the tree),
// flags pick the offset and whether to read every file back afterwards.
#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/caller.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;

namespace {

// The machine under fuzz: the built-in default machine (so every device
// that lands in machines/default.toml is fuzzed with no change here) plus
// the test device and its knobs.
std::string machine_text() {
  return std::string(devices::default_machine_toml()) + "\n[testdev]\nvalue = 7\n";
}

void collect(core::Tree& tree, core::Ino dir, const std::string& prefix,
             std::vector<std::string>& writable, std::vector<std::string>& readable) {
  auto entries = tree.list(dir);
  if (!entries) return;
  for (const auto& e : *entries) {
    const std::string path = prefix.empty() ? e.name : prefix + "/" + e.name;
    if (e.kind == core::NodeKind::Dir) {
      collect(tree, e.ino, path, writable, readable);
      continue;
    }
    if (e.kind == core::NodeKind::Symlink) continue;
    auto node = tree.get(e.ino);
    if (!node) continue;
    if (node->mode.load() & 0222) writable.push_back(path);
    if (node->mode.load() & 0444) readable.push_back(path);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string kMachine = machine_text();
  testing::TestMachine m(kMachine);
  std::size_t i = 0;
  int steps = 0;
  while (i + 3 <= size && steps++ < 64) {
    const unsigned file = data[i], flags = data[i + 1];
    std::size_t len = data[i + 2];
    i += 3;
    if (flags & 0x40) len *= 64;  // big writes: up to 16 KiB
    if (len > size - i) len = size - i;
    const std::string bytes(reinterpret_cast<const char*>(data + i), len);
    i += len;

    std::vector<std::string> writable, readable;
    collect(m.tree, core::kRootIno, "", writable, readable);
    if (writable.empty()) break;
    const std::string& path = writable[file % writable.size()];
    static constexpr off_t kOffsets[] = {0, 1, 63, 64, 4095, 4096, 8191, 8192};
    const off_t off = kOffsets[flags & 7];
    const core::Caller caller = (flags & 0x08) ? core::Caller::user(1000) : core::Caller::root();
    (void)m.write(path, bytes, caller, off);
    if (flags & 0x10) m.advance_ms(flags);
    if (flags & 0x20)
      for (const auto& r : readable) (void)m.read(r);
  }
  return 0;
}
