#pragma once

// Attribute tables: the DEVICE_ATTR / BIN_ATTR / ATTRIBUTE_GROUPS analogue.
// A device declares constexpr arrays of these, in the kernel's order and
// with the kernel's modes, and the Tree binds each entry by name to the
// device's `name_show` / `name_store` members. No switch on names anywhere.
//
//   DeviceAttribute  text file: show() fills one page (<= 4095 bytes),
//                    store() gets at most 4096 NUL-terminated bytes.
//   BinAttribute     binary file: read/write at an offset; `size` is what
//                    stat() shows (0: unbounded, the driver decides).
//   SeqAttribute     debugfs-style seq_file: show() has no page limit (the
//                    event log, the locks table); reads slice the snapshot.
//   AttributeGroup   a set of the above; a non-empty name is a
//                    subdirectory ("statistics", "info"; may contain '/').
//
// Thread-safety: tables are immutable; the callbacks' locking is the
// device's and is stated at each callback.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/caller.hpp"
#include "core/page_buffer.hpp"
#include "core/result.hpp"

namespace vsysfs::core {

template <typename Dev>
struct DeviceAttribute {
  using Show = Status (Dev::*)(PageBuffer&) const;
  using Store = Result<std::size_t> (Dev::*)(const Caller&, std::string_view);

  std::string_view name;
  mode_t mode;
  Show show = nullptr;
  Store store = nullptr;
};

template <typename Dev>
struct BinAttribute {
  using Read = Result<std::size_t> (Dev::*)(const Caller&, std::uint64_t pos, std::span<char>);
  using Write = Result<std::size_t> (Dev::*)(const Caller&, std::uint64_t pos,
                                             std::span<const char>);
  using Size = std::size_t (Dev::*)() const;

  std::string_view name;
  mode_t mode;
  std::size_t size = 0;  // stat() size; 0 means unbounded
  Read read = nullptr;
  Write write = nullptr;
  Size size_fn = nullptr;  // when the size is only known at run time (DMI tables)
};

template <typename Dev>
struct SeqAttribute {
  using Show = Status (Dev::*)(std::string&) const;
  using Store = Result<std::size_t> (Dev::*)(const Caller&, std::string_view);

  std::string_view name;
  mode_t mode;
  Show show = nullptr;
  Store store = nullptr;
};

template <typename Dev>
struct AttributeGroup {
  std::string_view name;  // "" = the device directory itself
  std::span<const DeviceAttribute<Dev>> attrs = {};
  std::span<const BinAttribute<Dev>> bin_attrs = {};
  std::span<const SeqAttribute<Dev>> seq_attrs = {};
  // kernel: attribute_group.is_visible; 0 hides the file, otherwise the
  // returned mode replaces the table's.
  mode_t (*is_visible)(const Dev&, std::string_view name, mode_t mode) = nullptr;
};

}  // namespace vsysfs::core

// DEVICE_ATTR_RW/RO/WO: bind NAME to NAME_show / NAME_store with the
// kernel's 0644 / 0444 / 0200.
#define VSYSFS_ATTR(Dev, name, mode, show, store) \
  ::vsysfs::core::DeviceAttribute<Dev> { #name, mode, show, store }
#define VSYSFS_ATTR_RW(Dev, name) VSYSFS_ATTR(Dev, name, 0644, &Dev::name##_show, &Dev::name##_store)
#define VSYSFS_ATTR_RO(Dev, name) VSYSFS_ATTR(Dev, name, 0444, &Dev::name##_show, nullptr)
#define VSYSFS_ATTR_WO(Dev, name) VSYSFS_ATTR(Dev, name, 0200, nullptr, &Dev::name##_store)
// Root-only variants (DCDBAS_DEV_ATTR_RW and friends, debug knobs).
#define VSYSFS_ATTR_RW_MODE(Dev, name, mode) \
  VSYSFS_ATTR(Dev, name, mode, &Dev::name##_show, &Dev::name##_store)
#define VSYSFS_ATTR_RO_MODE(Dev, name, mode) VSYSFS_ATTR(Dev, name, mode, &Dev::name##_show, nullptr)
#define VSYSFS_ATTR_WO_MODE(Dev, name, mode) VSYSFS_ATTR(Dev, name, mode, nullptr, &Dev::name##_store)

#define VSYSFS_BIN_ATTR(Dev, name, mode, size, read, write) \
  ::vsysfs::core::BinAttribute<Dev> { #name, mode, size, read, write }
#define VSYSFS_BIN_ATTR_RW(Dev, name, mode, size) \
  VSYSFS_BIN_ATTR(Dev, name, mode, size, &Dev::name##_read, &Dev::name##_write)
#define VSYSFS_BIN_ATTR_RO(Dev, name, mode, size) \
  VSYSFS_BIN_ATTR(Dev, name, mode, size, &Dev::name##_read, nullptr)

#define VSYSFS_SEQ_ATTR_RO(Dev, name, mode) \
  ::vsysfs::core::SeqAttribute<Dev> { #name, mode, &Dev::name##_show, nullptr }
#define VSYSFS_SEQ_ATTR_RW(Dev, name, mode) \
  ::vsysfs::core::SeqAttribute<Dev> { #name, mode, &Dev::name##_show, &Dev::name##_store }
