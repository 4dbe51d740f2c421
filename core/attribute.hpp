#pragma once

// Attribute tables: the DEVICE_ATTR / BIN_ATTR / ATTRIBUTE_GROUPS analogue.
// A device declares constexpr arrays of these, in the kernel's order and
// with the kernel's modes, and the Tree binds each entry by name to the
// device's `name_show` / `name_store` members, or to file-local functions
// where a member adds nothing. No switch on names anywhere.
//
//   DeviceAttribute  text file: show() fills one page (<= 4095 bytes),
//                    store() gets at most 4096 NUL-terminated bytes.
//   BinAttribute     binary file: read/write at an offset; `size` is what
//                    stat() shows (0: unbounded, the driver decides).
//   SeqAttribute     debugfs-style seq_file: show() has no page limit (the
//                    event log, the locks table); reads slice the snapshot.
//   StreamAttribute  a pipe-like file (trace_pipe): open() gives each open
//                    file description its own core::Stream; a read with
//                    nothing ready waits (core/stream.hpp).
//   AttributeGroup   a set of the above; a non-empty name is a
//                    subdirectory ("statistics", "info"; may contain '/').
//
// A text attribute's show/store is a plain function that gets the device
// and the attribute, as the kernel's device_attribute callbacks do
// (ssize_t (*show)(struct device *, struct device_attribute *, char *)).
// bind_show / bind_store adapt what a table names to that:
//   &Dev::x_show                       a member, (PageBuffer&) const
//   f(const Dev&, PageBuffer&)         a file-local function
//   f(const Dev&, const Attr&, PageBuffer&)  one that reads the attribute
//                                      (a shared show that logs its name)
// and likewise for stores ((const Caller&, std::string_view)).
//
// Typed attributes (the kernel's device_show_ulong / device_show_int and
// NETDEVICE_SHOW(field, fmt_dec)): show_value<Dev, Fmt, Get> prints one
// value read by Get (a data member, std::atomic or not; a const member
// function; or a function of const Dev&) with the kernel's printf format
// Fmt (fmt_dec "%d\n", fmt_ulong "%lu\n", fmt_hex "%#x\n", ...). The value
// is first converted to the format's C argument type, as the kernel's
// varargs call converts it: an unsigned field shown with fmt_dec prints
// 4294967295 as -1 (QUIRK, net-sysfs.c tx_queue_len).
//   VSYSFS_ATTR_VALUE_RO(Dev, name, mode, Fmt, get)       read-only, no lock
//   VSYSFS_ATTR_VALUE(Dev, name, mode, store, Fmt, get)   with a store
//   VSYSFS_ATTR_VALUE_LOCKED(Dev, name, mode, store, Fmt, &Dev::mu_, get)
//                                                         read under a mutex
// `get` may be a lambda (C++20 allows one in a template argument). A table
// whose getters name private fields lives inside the device's static
// groups() member, which has their access (devices/net/netdev_sysfs.cpp).
//
// Thread-safety: tables are immutable; the callbacks' locking is the
// device's and is stated at each callback.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/caller.hpp"
#include "core/locks.hpp"
#include "core/page_buffer.hpp"
#include "core/result.hpp"
#include "core/stream.hpp"

namespace vsysfs::core {

template <typename Dev>
struct DeviceAttribute {
  using Show = Status (*)(const Dev&, const DeviceAttribute&, PageBuffer&);
  using Store = Result<std::size_t> (*)(Dev&, const DeviceAttribute&, const Caller&,
                                        std::string_view);

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
struct StreamAttribute {
  // A new reader, positioned at "now". Context: FUSE worker (open).
  using Open = std::unique_ptr<Stream> (Dev::*)() const;

  std::string_view name;
  mode_t mode;
  Open open = nullptr;
};

template <typename Dev>
struct AttributeGroup {
  std::string_view name;  // "" = the device directory itself
  std::span<const DeviceAttribute<Dev>> attrs = {};
  std::span<const BinAttribute<Dev>> bin_attrs = {};
  std::span<const SeqAttribute<Dev>> seq_attrs = {};
  std::span<const StreamAttribute<Dev>> stream_attrs = {};
  // kernel: attribute_group.is_visible; 0 hides the file, otherwise the
  // returned mode replaces the table's.
  mode_t (*is_visible)(const Dev&, std::string_view name, mode_t mode) = nullptr;
};

// --- binding a table entry to a function ------------------------------------

namespace attr_detail {

template <typename Dev, auto F>
Status show_thunk(const Dev& d, [[maybe_unused]] const DeviceAttribute<Dev>& a, PageBuffer& b) {
  if constexpr (std::is_member_function_pointer_v<decltype(F)>)
    return (d.*F)(b);
  else if constexpr (std::is_invocable_v<decltype(F), const Dev&, const DeviceAttribute<Dev>&,
                                         PageBuffer&>)
    return F(d, a, b);
  else
    return F(d, b);
}

template <typename Dev, auto F>
Result<std::size_t> store_thunk(Dev& d, [[maybe_unused]] const DeviceAttribute<Dev>& a,
                                const Caller& c, std::string_view in) {
  if constexpr (std::is_member_function_pointer_v<decltype(F)>)
    return (d.*F)(c, in);
  else if constexpr (std::is_invocable_v<decltype(F), Dev&, const DeviceAttribute<Dev>&,
                                         const Caller&, std::string_view>)
    return F(d, a, c, in);
  else
    return F(d, c, in);
}

template <typename T>
concept Loadable = requires(const T& v) { v.load(); };

}  // namespace attr_detail

// The show a table entry names (nullptr: none), as the table's pointer type.
template <typename Dev, auto F>
constexpr typename DeviceAttribute<Dev>::Show bind_show() {
  if constexpr (std::is_null_pointer_v<decltype(F)>)
    return nullptr;
  else if constexpr (std::is_same_v<decltype(F), typename DeviceAttribute<Dev>::Show>)
    return F;
  else
    return &attr_detail::show_thunk<Dev, F>;
}

template <typename Dev, auto F>
constexpr typename DeviceAttribute<Dev>::Store bind_store() {
  if constexpr (std::is_null_pointer_v<decltype(F)>)
    return nullptr;
  else if constexpr (std::is_same_v<decltype(F), typename DeviceAttribute<Dev>::Store>)
    return F;
  else
    return &attr_detail::store_thunk<Dev, F>;
}

// --- typed attributes -------------------------------------------------------

// The kernel's sysfs printf formats. `type` is the C argument type the
// conversion reads; emit() prints one value of it and the newline.
struct fmt_dec {  // "%d\n" (net-sysfs.c fmt_dec, device_show_int)
  using type = int;
  static void emit(PageBuffer& b, type v) { b.emit("{}\n", v); }
};
struct fmt_udec {  // "%u\n"
  using type = unsigned;
  static void emit(PageBuffer& b, type v) { b.emit("{}\n", v); }
};
struct fmt_long {  // "%ld\n"
  using type = long;
  static void emit(PageBuffer& b, type v) { b.emit("{}\n", v); }
};
struct fmt_ulong {  // "%lu\n" (net-sysfs.c fmt_ulong)
  using type = unsigned long;
  static void emit(PageBuffer& b, type v) { b.emit("{}\n", v); }
};
struct fmt_u64 {  // "%llu\n" (net-sysfs.c fmt_u64)
  using type = unsigned long long;
  static void emit(PageBuffer& b, type v) { b.emit("{}\n", v); }
};
// "%#x\n" (net-sysfs.c fmt_hex). QUIRK: the kernel's vsnprintf prints 0
// as "0x0" where glibc prints "0"; fmt's {:#x} agrees with the kernel.
struct fmt_hex {
  using type = unsigned;
  static void emit(PageBuffer& b, type v) { b.emit("{:#x}\n", v); }
};
struct fmt_x {  // "%x\n"
  using type = unsigned;
  static void emit(PageBuffer& b, type v) { b.emit("{:x}\n", v); }
};
struct fmt_lx {  // "%lx\n" (drivers/base/core.c device_show_ulong)
  using type = unsigned long;
  static void emit(PageBuffer& b, type v) { b.emit("{:x}\n", v); }
};

// "0x%0Nx\n" (drivers/pci/pci-sysfs.c pci_config_attr: 0x%04x, 0x%06x, ...)
template <int Width>
struct fmt_0x {
  using type = unsigned;
  static void emit(PageBuffer& b, type v) { b.emit("0x{:0{}x}\n", v, Width); }
};
struct fmt_str {  // "%s\n"
  using type = std::string_view;
  static void emit(PageBuffer& b, type v) { b.emit("{}\n", v); }
};

// The value Get reads from `d`: a data member (loaded if atomic), a const
// member function, or a function of const Dev&.
template <auto Get, typename Dev>
auto attr_value(const Dev& d) {
  if constexpr (std::is_member_object_pointer_v<decltype(Get)>) {
    const auto& v = d.*Get;
    if constexpr (attr_detail::Loadable<std::remove_cvref_t<decltype(v)>>)
      return v.load();
    else
      return v;
  } else if constexpr (std::is_member_function_pointer_v<decltype(Get)>) {
    return (d.*Get)();
  } else {
    return Get(d);
  }
}

// Prints `v` as the kernel's sysfs_emit(buf, Fmt, v) would.
template <typename Fmt, typename T>
Status emit_value(PageBuffer& b, const T& v) {
  Fmt::emit(b, static_cast<typename Fmt::type>(v));
  return {};
}

// A show that prints one value and takes no lock (the value is constant
// after registration, or an atomic read once: the kernel's READ_ONCE).
template <typename Dev, typename Fmt, auto Get>
Status show_value(const Dev& d, const DeviceAttribute<Dev>&, PageBuffer& b) {
  return emit_value<Fmt>(b, attr_value<Get>(d));
}

// A show that prints one value read under the device's mutex Mu (a
// pointer to a `mutable core::Mutex` member). Locking: takes Mu. The
// thread-safety analysis cannot name a lock reached through a pointer to
// member, so Get asserts it (Mutex::assert_held) where it reads a guarded
// field.
template <typename Dev, typename Fmt, auto Mu, auto Get>
Status show_value_locked(const Dev& d, const DeviceAttribute<Dev>&, PageBuffer& b)
    NO_THREAD_SAFETY_ANALYSIS {
  // A pointer to member does not carry `mutable`: d.*Mu is const here
  // although the member is mutable, as every lock a const show takes is.
  MutexLock lock(const_cast<Mutex&>(d.*Mu));
  return emit_value<Fmt>(b, attr_value<Get>(d));
}

}  // namespace vsysfs::core

// DEVICE_ATTR_RW/RO/WO: bind NAME to NAME_show / NAME_store with the
// kernel's 0644 / 0444 / 0200. VSYSFS_ATTR names any show/store (a member,
// a file-local function, nullptr).
#define VSYSFS_ATTR(Dev, name, mode, show, store)                                        \
  ::vsysfs::core::DeviceAttribute<Dev> {                                                 \
    #name, mode, ::vsysfs::core::bind_show<Dev, show>(), ::vsysfs::core::bind_store<Dev, store>() \
  }
#define VSYSFS_ATTR_RW(Dev, name) VSYSFS_ATTR(Dev, name, 0644, &Dev::name##_show, &Dev::name##_store)
#define VSYSFS_ATTR_RO(Dev, name) VSYSFS_ATTR(Dev, name, 0444, &Dev::name##_show, nullptr)
#define VSYSFS_ATTR_WO(Dev, name) VSYSFS_ATTR(Dev, name, 0200, nullptr, &Dev::name##_store)
// Root-only variants (DCDBAS_DEV_ATTR_RW and friends, debug knobs).
#define VSYSFS_ATTR_RW_MODE(Dev, name, mode) \
  VSYSFS_ATTR(Dev, name, mode, &Dev::name##_show, &Dev::name##_store)
#define VSYSFS_ATTR_RO_MODE(Dev, name, mode) VSYSFS_ATTR(Dev, name, mode, &Dev::name##_show, nullptr)
#define VSYSFS_ATTR_WO_MODE(Dev, name, mode) VSYSFS_ATTR(Dev, name, mode, nullptr, &Dev::name##_store)

// A read-only typed attribute (device_show_int / device_show_ulong style):
// NAME prints Get (the trailing argument, which may contain commas: a
// lambda) with the kernel format Fmt, without a lock.
#define VSYSFS_ATTR_VALUE_RO(Dev, name, mode, Fmt, ...)                          \
  ::vsysfs::core::DeviceAttribute<Dev> {                                        \
    #name, mode, &::vsysfs::core::show_value<Dev, ::vsysfs::core::Fmt, __VA_ARGS__>, nullptr \
  }

// A typed attribute with a store (nullptr: none).
#define VSYSFS_ATTR_VALUE(Dev, name, mode, store, Fmt, ...)                             \
  ::vsysfs::core::DeviceAttribute<Dev> {                                                \
    #name, mode, &::vsysfs::core::show_value<Dev, ::vsysfs::core::Fmt, __VA_ARGS__>,    \
        ::vsysfs::core::bind_store<Dev, store>()                                        \
  }

// The same, read under the device mutex `mu` (&Dev::mu_).
#define VSYSFS_ATTR_VALUE_LOCKED(Dev, name, mode, store, Fmt, mu, ...)                    \
  ::vsysfs::core::DeviceAttribute<Dev> {                                                 \
    #name, mode, &::vsysfs::core::show_value_locked<Dev, ::vsysfs::core::Fmt, mu, __VA_ARGS__>, \
        ::vsysfs::core::bind_store<Dev, store>()                                         \
  }

#define VSYSFS_BIN_ATTR(Dev, name, mode, size, read, write) \
  ::vsysfs::core::BinAttribute<Dev> { #name, mode, size, read, write }
#define VSYSFS_BIN_ATTR_RW(Dev, name, mode, size) \
  VSYSFS_BIN_ATTR(Dev, name, mode, size, &Dev::name##_read, &Dev::name##_write)
#define VSYSFS_BIN_ATTR_RO(Dev, name, mode, size) \
  VSYSFS_BIN_ATTR(Dev, name, mode, size, &Dev::name##_read, nullptr)

#define VSYSFS_SEQ_ATTR_RO(Dev, name, mode) \
  ::vsysfs::core::SeqAttribute<Dev> { #name, mode, &Dev::name##_show, nullptr }
#define VSYSFS_STREAM_ATTR(Dev, name, mode) \
  ::vsysfs::core::StreamAttribute<Dev> { #name, mode, &Dev::name##_open }
#define VSYSFS_SEQ_ATTR_RW(Dev, name, mode) \
  ::vsysfs::core::SeqAttribute<Dev> { #name, mode, &Dev::name##_show, &Dev::name##_store }
