// fuse-baseline: the minimal low-level libfuse filesystem `make bench`
// measures vsysfs against (docs/performance.md). It is what "nothing beyond the FUSE
// round trips" looks like: the same libfuse, the same thread model as the
// vsysfs daemon (fuse_session_loop_mt, at least 64 workers, clone_fd as
// given), small fixed files at the same paths (so the same depths), no
// kernel caching at all (entry and attribute timeouts 0), direct_io, and no
// work per request beyond a hash lookup and a memcpy.
//
//   fuse-baseline [FUSE-OPTIONS] -o spec=FILE MOUNTPOINT
//
// FILE has one node a line (parents are created as needed):
//   D PATH            a directory
//   F PATH CONTENT    a file whose content is CONTENT plus "\n" (mode 0644;
//                     writes replace it, at most 4095 bytes, like a store)
//   L PATH TARGET     a symlink
//
// Thread-safety: the tree is built before the session starts and never
// changes shape; each file's content has its own mutex.

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Node {
  fuse_ino_t ino = 0;
  fuse_ino_t parent = 0;
  char kind = 'D';  // D, F, L
  std::string name;
  std::map<std::string, fuse_ino_t, std::less<>> children;
  std::string target;  // symlink
  std::mutex mu;       // guards content
  char content[4096];
  std::size_t len = 0;
};

std::vector<std::unique_ptr<Node>> g_nodes;  // index = ino; [0] unused
struct timespec g_time;

Node* node_of(fuse_ino_t ino) { return ino < g_nodes.size() ? g_nodes[ino].get() : nullptr; }

fuse_ino_t add_node(fuse_ino_t parent, const std::string& name, char kind) {
  Node* p = g_nodes[parent].get();
  auto it = p->children.find(name);
  if (it != p->children.end()) return it->second;
  auto n = std::make_unique<Node>();
  n->ino = g_nodes.size();
  n->parent = parent;
  n->kind = kind;
  n->name = name;
  p->children.emplace(name, n->ino);
  g_nodes.push_back(std::move(n));
  return g_nodes.back()->ino;
}

fuse_ino_t add_path(const std::string& path, char kind) {
  fuse_ino_t cur = FUSE_ROOT_ID;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    const std::string part = path.substr(pos, slash - pos);
    if (!part.empty()) cur = add_node(cur, part, slash == path.size() ? kind : 'D');
    pos = slash + 1;
  }
  return cur;
}

bool load_spec(const char* file) {
  std::ifstream in(file);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string kind, path, rest;
    ls >> kind >> path;
    std::getline(ls >> std::ws, rest);
    if (kind != "D" && kind != "F" && kind != "L") return false;
    Node* n = g_nodes[add_path(path, kind[0])].get();
    if (kind == "F") {
      rest += "\n";
      n->len = std::min(rest.size(), sizeof n->content - 1);
      std::memcpy(n->content, rest.data(), n->len);
    } else if (kind == "L") {
      n->target = rest;
    }
  }
  return true;
}

void fill_stat(const Node& n, struct stat& st) {
  st = {};
  st.st_ino = n.ino;
  st.st_mode = n.kind == 'D' ? (S_IFDIR | 0755) : n.kind == 'L' ? (S_IFLNK | 0777) : (S_IFREG | 0644);
  st.st_nlink = n.kind == 'D' ? 2 : 1;
  st.st_size = n.kind == 'F' ? 4096 : 0;
  st.st_blksize = 4096;
  st.st_atim = st.st_mtim = st.st_ctim = g_time;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Node* p = node_of(parent);
  if (!p) return (void)fuse_reply_err(req, ENOENT);
  auto it = p->children.find(std::string_view(name));
  if (it == p->children.end()) return (void)fuse_reply_err(req, ENOENT);
  fuse_entry_param e{};
  e.ino = it->second;
  fill_stat(*g_nodes[it->second], e.attr);
  e.attr_timeout = 0;  // no caching: every path walk and stat reaches us
  e.entry_timeout = 0;
  fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Node* n = node_of(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  struct stat st;
  fill_stat(*n, st);
  fuse_reply_attr(req, &st, 0);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  Node* n = node_of(ino);
  if (!n || n->kind != 'L') return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_readlink(req, n->target.c_str());
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Node* n = node_of(ino);
  if (!n) return (void)fuse_reply_err(req, ENOENT);
  if (n->kind == 'D') return (void)fuse_reply_err(req, EISDIR);
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fuse_reply_open(req, fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Node* n = node_of(ino);
  char buf[4096];
  std::size_t len;
  {
    std::lock_guard lock(n->mu);
    len = n->len;
    std::memcpy(buf, n->content, len);
  }
  if (static_cast<std::size_t>(off) >= len) return (void)fuse_reply_buf(req, nullptr, 0);
  fuse_reply_buf(req, buf + off, std::min(size, len - static_cast<std::size_t>(off)));
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t,
              fuse_file_info*) {
  Node* n = node_of(ino);
  const std::size_t len = std::min(size, sizeof n->content - 1);
  {
    std::lock_guard lock(n->mu);
    std::memcpy(n->content, buf, len);
    n->len = len;
  }
  fuse_reply_write(req, size);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

// The SMI transaction flocks smi_data; served here as "granted" so the
// flock is a round trip in both filesystems.
void op_flock(fuse_req_t req, fuse_ino_t, fuse_file_info*, int) { fuse_reply_err(req, 0); }

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Node* n = node_of(ino);
  if (!n || n->kind != 'D') return (void)fuse_reply_err(req, ENOTDIR);
  std::vector<char> buf(size);
  std::size_t used = 0;
  off_t i = 0;
  auto add = [&](const char* name, const Node& child) {
    if (i++ < off) return true;
    struct stat st;
    fill_stat(child, st);
    const std::size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, i);
    if (need > size - used) return false;
    used += need;
    return true;
  };
  if (add(".", *n) && add("..", *g_nodes[n->parent ? n->parent : ino])) {
    for (const auto& [name, child] : n->children)
      if (!add(name.c_str(), *g_nodes[child])) break;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void op_init(void*, fuse_conn_info* conn) {
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

struct Opts {
  char* spec = nullptr;
};
const fuse_opt kSpec[] = {{"spec=%s", offsetof(Opts, spec), 1}, FUSE_OPT_END};

}  // namespace

int main(int argc, char* argv[]) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  Opts opts;
  if (fuse_opt_parse(&args, &opts, kSpec, nullptr) == -1) return 1;
  fuse_cmdline_opts cmd{};
  if (fuse_parse_cmdline(&args, &cmd) != 0) return 1;
  if (cmd.show_help || !cmd.mountpoint || !opts.spec) {
    std::printf("usage: %s [FUSE-OPTIONS] -o spec=FILE MOUNTPOINT\n", argv[0]);
    return cmd.show_help ? 0 : 1;
  }
  clock_gettime(CLOCK_REALTIME, &g_time);
  g_nodes.emplace_back();  // ino 0
  g_nodes.push_back(std::make_unique<Node>());
  g_nodes[1]->ino = FUSE_ROOT_ID;
  if (!load_spec(opts.spec)) {
    std::fprintf(stderr, "fuse-baseline: bad spec file %s\n", opts.spec);
    return 1;
  }

  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.readlink = op_readlink;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.release = op_release;
  ops.readdir = op_readdir;
  ops.flock = op_flock;

  fuse_opt_add_arg(&args, "-ofsname=fuse-baseline");
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), nullptr);
  if (!se) return 1;
  if (fuse_set_signal_handlers(se) != 0) return 1;
  if (fuse_session_mount(se, cmd.mountpoint) != 0) return 1;
  fuse_daemonize(cmd.foreground);
  int ret;
  if (cmd.singlethread) {
    ret = fuse_session_loop(se);
  } else {
    // The same loop configuration as fs/main.cpp.
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, cmd.clone_fd);
    if (cmd.max_idle_threads != UINT_MAX) fuse_loop_cfg_set_idle_threads(config, cmd.max_idle_threads);
    const unsigned wanted = cmd.max_threads == UINT_MAX ? 64 : cmd.max_threads;
    fuse_loop_cfg_set_max_threads(config, wanted < 64 ? 64 : wanted > 100000 ? 100000 : wanted);
    ret = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
  }
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  free(cmd.mountpoint);
  fuse_opt_free_args(&args);
  return ret == 0 || ret == SIGINT || ret == SIGTERM || ret == SIGHUP ? 0 : 1;
}
