#include "tests/support/test_env.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vsysfs::testing {

std::string machine_file_text(std::string_view file) {
  const std::string path = "machines/" + std::string(file);
  std::ifstream in(path);
  if (!in.good()) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TestMachine::TestMachine(std::string_view toml, bool manual_clock) {
  (void)manual_clock;
  machine.build(devices::parse_machine_toml(toml, "<test>"));
}

int TestMachine::open_errno(std::string_view path, int flags) {
  const core::Ino ino = tree.resolve(path);
  if (!ino) return -ENOENT;
  auto r = server.open(ino, flags);
  if (!r) return -r.error().value();
  server.release(r->fh);
  return 0;
}

std::string TestMachine::read(std::string_view path, const core::Caller& caller) {
  const core::Ino ino = tree.resolve(path);
  if (!ino) return "<ENOENT>";
  auto fh = server.open(ino, O_RDONLY);
  if (!fh) return "<" + std::string(fh.error().name()) + ">";
  std::string out;
  for (;;) {
    auto r = server.read(caller, fh->fh, 65536, static_cast<off_t>(out.size()));
    if (!r) {
      server.release(fh->fh);
      return "<" + std::string(r.error().name()) + ">";
    }
    if (r->bytes().empty()) break;
    out.append(r->bytes());
  }
  server.release(fh->fh);
  return out;
}

long TestMachine::write(std::string_view path, std::string_view data, const core::Caller& caller,
                        off_t off) {
  const core::Ino ino = tree.resolve(path);
  if (!ino) return -ENOENT;
  auto fh = server.open(ino, O_WRONLY);
  if (!fh) return -fh.error().value();
  auto r = server.write(caller, fh->fh, data, off);
  server.release(fh->fh);
  return r ? static_cast<long>(*r) : -static_cast<long>(r.error().value());
}

std::string TestMachine::pread(std::string_view path, std::size_t size, off_t off,
                               const core::Caller& caller) {
  const core::Ino ino = tree.resolve(path);
  if (!ino) return "<ENOENT>";
  auto fh = server.open(ino, O_RDONLY);
  if (!fh) return "<" + std::string(fh.error().name()) + ">";
  auto r = server.read(caller, fh->fh, size, off);
  std::string out = r ? std::string(r->bytes()) : "<" + std::string(r.error().name()) + ">";
  server.release(fh->fh);
  return out;
}

std::string TestMachine::link_target(std::string_view path) const {
  auto node = tree.find(path);
  if (!node || node->kind != core::NodeKind::Symlink) return "<not a link>";
  return node->target();
}

std::vector<core::Event> TestMachine::events_of(std::string_view device,
                                                std::string_view what) const {
  std::vector<core::Event> out;
  for (auto& e : events.snapshot())
    if (e.device == device && (what.empty() || e.what == what)) out.push_back(e);
  return out;
}

}  // namespace vsysfs::testing
