// libFuzzer target: the state-file decoder (core/state_journal), which
// reads whatever a crash or a disk left behind. Invariants: never reads
// past the input, valid_bytes <= file_bytes, and re-encoding the decoded
// records gives exactly the valid prefix (the decoder accepts nothing the
// encoder would not write).
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
    std::string again(kStateHeader);
    for (const auto& r : d.records) again += encode_record(r);
    if (again != file.substr(0, d.valid_bytes)) std::abort();
  }
  (void)compact(d.records);
  return 0;
}
