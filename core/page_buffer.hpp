#pragma once

// PageBuffer: the page a show() callback writes into (the kernel's
// sysfs_emit() target). It holds at most PAGE_SIZE-1 bytes, because the
// kernel clamps a show() that returns >= PAGE_SIZE to 4095 bytes
// (docs/kernel-semantics.md section 1.3; fs/sysfs/file.c sysfs_kf_seq_show). Writes past the end
// are truncated and remembered in overflowed(), which the tree logs as a
// driver bug the way the kernel logs "fill_read_buffer: bad count".
//
// Thread-safety: not shared; one per open file or per call.

#include <array>
#include <cstddef>
#include <iterator>
#include <string_view>

#include <fmt/format.h>

namespace vsysfs::core {

inline constexpr std::size_t kPageSize = 4096;

class PageBuffer {
 public:
  static constexpr std::size_t kCapacity = kPageSize - 1;

  // sysfs_emit(): formats at the end of what is there.
  template <typename... Args>
  void emit(fmt::format_string<Args...> format, Args&&... args) {
    const std::size_t room = kCapacity - len_;
    auto out = fmt::format_to_n(data_.data() + len_, room, format, std::forward<Args>(args)...);
    if (out.size > room) {
      overflowed_ = true;
      len_ = kCapacity;
    } else {
      len_ += out.size;
    }
  }

  void append(std::string_view text) {
    const std::size_t room = kCapacity - len_;
    const std::size_t n = text.size() < room ? text.size() : room;
    if (n < text.size()) overflowed_ = true;
    text.copy(data_.data() + len_, n);
    len_ += n;
  }

  void clear() noexcept {
    len_ = 0;
    overflowed_ = false;
  }

  std::string_view view() const noexcept { return {data_.data(), len_}; }
  std::size_t size() const noexcept { return len_; }
  bool overflowed() const noexcept { return overflowed_; }

 private:
  std::array<char, kPageSize> data_{};
  std::size_t len_ = 0;
  bool overflowed_ = false;
};

}  // namespace vsysfs::core
