// libFuzzer target: the state-file decoder (core/state_journal), which
// reads whatever a crash or a disk left behind. Invariants: never reads
// past the input, valid_bytes <= file_bytes, and re-encoding the decoded
// records (after the base of a version-2 file) gives exactly the valid
// prefix (the decoder accepts nothing the encoder would not write).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/state_journal.hpp"

using namespace vsysfs::core;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  // Half the inputs get a valid header, so the record parser is reached.
  if (size && (data[0] & 1)) file = std::string(kStateHeader) + file.substr(1);
  const auto d = decode_journal(file);
  if (d.valid_bytes > d.file_bytes) std::abort();
  if (d.problem.empty() != (d.valid_bytes == d.file_bytes)) std::abort();
  if (d.valid_bytes >= kStateHeader.size()) {
    std::string again(d.has_base ? kStateHeaderV2 : kStateHeader);
    if (d.has_base) {
      // A version-2 file: its base, as rewrite_base writes it.
      auto put = [&](std::uint64_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) again.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
      };
      put(kBaseMagic, 4);
      put(d.base.size(), 8);
      put(crc32(d.base), 4);
      again += d.base;
    }
    for (const auto& r : d.records) again += encode_record(r);
    if (again != file.substr(0, d.valid_bytes)) std::abort();
  }
  (void)compact(d.records);
  return 0;
}
