// libFuzzer target: every writable file's command language, through the
// real fs::Server (open, write at an offset, read back), on machines with
// every section the linked devices know: the built-in default machine and
// every example machine (machines/*.toml, read from the working directory,
// which tests/fuzz/run sets to the repository), each with the test device
// and its knobs added, so every device and knob that lands in one of them
// is fuzzed with no change here (the example machines reach knobs and
// configurations the default lacks: the Xen guest's used_kb without NUMA,
// BQL and multi-queue NICs, TYPE1/2/3 Dell host control).
// Input: [machine] then a sequence of records
// [file][flags]([file_hi])[len][bytes...]. `machine` picks the machine
// (0: the default; 1..: machines/*.toml in name order); `file` (plus 256 *
// file_hi when flags bit 0x80 is set) picks a writable file in the tree's
// listing order, rediscovered after each write (hotplug reshapes the
// tree); flags pick the offset (bits 0-2), an unprivileged caller (0x08),
// a clock advance of `flags` ms (0x10), reading every file back (0x20)
// and a 64x length (0x40).
// Seeds: tests/fuzz/make_knob_seeds.py (FUZZ_KNOBS_LIST=N prints machine
// N's numbered file list, which it needs); tests/fuzz/fuzz_knobs.dict has
// the keywords of every command language.
#include <fcntl.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/caller.hpp"
#include "tests/support/test_env.hpp"

using namespace vsysfs;

namespace {

constexpr std::string_view kTestdev = "\n[testdev]\nvalue = 7\n";

// The machines under fuzz: the default, then machines/*.toml by name.
std::vector<std::pair<std::string, std::string>> machine_texts() {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("default", std::string(devices::default_machine_toml()) + std::string(kTestdev));
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("machines", ec))
    if (e.path().extension() == ".toml" && e.path().filename() != "default.toml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream text;
    text << in.rdbuf();
    out.emplace_back(f.stem().string(), text.str() + std::string(kTestdev));
  }
  return out;
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
  static const auto kMachines = machine_texts();
  if (size == 0) return 0;
  static const char* list = std::getenv("FUZZ_KNOBS_LIST");
  const std::size_t which = list ? std::strtoul(list, nullptr, 10) : data[0];
  const auto& [name, text] = kMachines[which % kMachines.size()];
  testing::TestMachine m(text);
  std::size_t i = 1;
  int steps = 0;
  if (list) {
    for (std::size_t k = 0; k < kMachines.size(); ++k) std::printf("# machine %zu %s\n", k, kMachines[k].first.c_str());
    std::vector<std::string> writable, readable;
    collect(m.tree, core::kRootIno, "", writable, readable);
    std::printf("# files of %s\n", name.c_str());
    for (std::size_t k = 0; k < writable.size(); ++k) std::printf("%zu %s\n", k, writable[k].c_str());
    std::fflush(stdout);
    std::_Exit(0);  // not exit(): libFuzzer treats that as a failure
  }
  while (i + 3 <= size && steps++ < 64) {
    unsigned file = data[i];
    const unsigned flags = data[i + 1];
    i += 2;
    if (flags & 0x80) file |= static_cast<unsigned>(data[i++]) << 8;
    if (i >= size) break;
    std::size_t len = data[i++];
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
    const long r = m.write(path, bytes, caller, off);
    // FUZZ_KNOBS_TRACE=1 build-fuzz/fuzz_knobs SEED: what each write got.
    static const bool trace = std::getenv("FUZZ_KNOBS_TRACE") != nullptr;
    if (trace) std::fprintf(stderr, "%s <- %zu bytes: %ld\n", path.c_str(), bytes.size(), r);
    if (flags & 0x10) m.advance_ms(flags);
    if (flags & 0x20)
      for (const auto& r : readable) (void)m.read(r);
  }
  return 0;
}
