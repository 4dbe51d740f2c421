// The interned entry names of core/node.hpp (Name).

#include <cstring>
#include <new>
#include <unordered_map>

#include "core/locks.hpp"
#include "core/node.hpp"

namespace vsysfs::core {
namespace {

struct NameTable {
  // Leaf lock (rank 0): taken with the tree lock held (nodes are made and
  // freed under it) and without it (the last reference to a node dropped
  // anywhere); nothing is called with it held.
  Mutex mu{"name_table"};
  // Keys view the Rep's own characters.
  std::unordered_map<std::string_view, Name::Rep*> names GUARDED_BY(mu);
};

// Never destroyed: a node still alive at exit (a static Tree in a test)
// releases its name after static destructors ran.
NameTable& table() {
  static auto* t = new NameTable;
  return *t;
}

}  // namespace

Name::Name(std::string_view s) {
  if (s.empty()) return;
  NameTable& t = table();
  MutexLock lock(t.mu);
  auto it = t.names.find(s);
  if (it != t.names.end()) {
    rep_ = it->second;
    ++rep_->refs;
    return;
  }
  void* mem = ::operator new(sizeof(Rep) + s.size() + 1);
  rep_ = new (mem) Rep{1, static_cast<std::uint32_t>(s.size())};
  char* chars = static_cast<char*>(mem) + sizeof(Rep);
  std::memcpy(chars, s.data(), s.size());
  chars[s.size()] = '\0';
  try {
    t.names.emplace(std::string_view(rep_->chars(), s.size()), rep_);
  } catch (...) {
    ::operator delete(mem);
    throw;
  }
}

Name::Name(const Name& other) : rep_(other.rep_) {
  if (!rep_) return;
  NameTable& t = table();
  MutexLock lock(t.mu);
  ++rep_->refs;
}

Name::~Name() {
  if (!rep_) return;
  NameTable& t = table();
  MutexLock lock(t.mu);
  if (--rep_->refs != 0) return;
  t.names.erase(view());
  ::operator delete(rep_);
}

std::size_t Name::interned() {
  NameTable& t = table();
  MutexLock lock(t.mu);
  return t.names.size();
}

}  // namespace vsysfs::core
