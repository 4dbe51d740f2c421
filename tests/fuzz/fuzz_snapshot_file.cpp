// libFuzzer target: the snapshot-file decoder (core/snapshot_file), which
// reads files a caller names (kernel/debug/vsysfs/machine/load), the file
// of -o snapshot=FILE and the base of a compacted state file. Invariants:
// never reads past the input; a file it accepts encodes back to exactly
// the same bytes (the decoder accepts nothing the encoder would not
// write); a sequence of images decodes to images that re-encode to the
// input. Half the inputs get a valid header and checksum around the
// fuzzed body, so the body parser is reached.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/snapshot_file.hpp"
#include "core/state_journal.hpp"

using namespace vsysfs::core;

namespace {

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  if (size && (data[0] & 1)) {
    const std::string body = file.substr(1);
    file = std::string(kSnapshotMagic);
    put(file, kSnapshotVersion, 4);
    put(file, 0, 4);
    put(file, body.size(), 8);
    file += body;
    put(file, crc32(file), 4);
  }
  std::string problem;
  auto img = decode_snapshot(file, &problem);
  if (img) {
    if (encode_snapshot(*img) != file) std::abort();
  } else if (problem.empty()) {
    std::abort();
  }
  auto all = decode_images(file, &problem);
  if (all) {
    std::string again;
    for (const auto& i : *all) again += encode_snapshot(i);
    if (again != file) std::abort();
  }
  return 0;
}
