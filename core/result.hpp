#pragma once

// Errno, Result<T> and Status: errno-carrying results for every operation a
// device or the FUSE adapter performs. Devices return exactly the errno the
// kernel would (a kernel "return -EINVAL" becomes "return Errno{EINVAL}").
// Exceptions are reserved for start-up (bad command line or machine file).
//
// Thread-safety: value types; no shared state.

#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace vsysfs::core {

// A positive errno value (what fuse_reply_err expects).
class Errno {
 public:
  constexpr explicit Errno(int value) noexcept : value_(value) {}
  constexpr int value() const noexcept { return value_; }
  friend constexpr bool operator==(Errno, Errno) = default;

  // "EINVAL", "ENODEV", ...: the kernel's macro name, or "E<number>".
  std::string_view name() const noexcept;

 private:
  int value_;
};

// The macro name of an errno value ("EINVAL"); "E<n>" style names are not
// produced: unknown values give "EUNKNOWN".
std::string_view errno_name(int value) noexcept;

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Errno e) : v_(e) {}                 // NOLINT: implicit by design

  explicit operator bool() const noexcept { return v_.index() == 0; }
  bool ok() const noexcept { return v_.index() == 0; }

  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T&& operator*() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T value_or(T other) const { return ok() ? std::get<0>(v_) : other; }

  Errno error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Errno> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  constexpr Result() noexcept = default;
  constexpr Result(Errno e) noexcept : err_(e.value()) {}  // NOLINT: implicit by design

  constexpr explicit operator bool() const noexcept { return err_ == 0; }
  constexpr bool ok() const noexcept { return err_ == 0; }
  constexpr Errno error() const noexcept { return Errno{err_}; }

 private:
  int err_ = 0;
};

using Status = Result<void>;

}  // namespace vsysfs::core

// Propagates an error out of the enclosing function (which must return a
// Result of any type) and yields the value otherwise. GCC/Clang statement
// expression: the project is Linux-only.
#define VSYSFS_TRY(expr)                                            \
  __extension__({                                                   \
    auto&& vsysfs_try_result_ = (expr);                             \
    if (!vsysfs_try_result_) return vsysfs_try_result_.error();     \
    std::move(*vsysfs_try_result_);                                 \
  })

// For Status-returning expressions: propagate the error, yield nothing.
#define VSYSFS_TRY_STATUS(expr)                                     \
  do {                                                              \
    auto vsysfs_try_status_ = (expr);                               \
    if (!vsysfs_try_status_) return vsysfs_try_status_.error();     \
  } while (0)
