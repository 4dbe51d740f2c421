#pragma once

// Stream and WaitQueue: what a pipe-like file is made of (kernel: a
// tracefs file with its own file_operations, trace_pipe in
// kernel/trace/trace.c: tracing_open_pipe, tracing_read_pipe,
// tracing_poll_pipe, and the wait_queue_head_t it sleeps on).
//
// A Stream is the per-open reader of such a file: each open file
// description gets its own, and read() hands out what it has not handed
// out before. read() never blocks: with nothing ready it is EAGAIN, and
// the FUSE layer (fs/server.cpp) parks the request until the stream's
// WaitQueue is woken, then reads again. That keeps a blocked reader from
// holding a FUSE worker.
//
// A WaitQueue is a list of wakers (callbacks) that wake_up_all() calls:
// the producer (the event log) wakes it after each new item; the FUSE
// layer registers one waker per open stream.
//
// Thread-safety: WaitQueue is thread-safe; its mutex is held while a waker
// runs, so remove() returning means no call of that waker is in progress
// (a waker must only queue work: it runs on the producer's thread, under
// whatever locks the producer holds). A Stream is not thread-safe: its
// owner serialises calls (fs: OpenFile::mu).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>

#include "core/locks.hpp"
#include "core/result.hpp"

namespace vsysfs::core {

class WaitQueue {
 public:
  using Waker = std::function<void()>;

  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  // Returns the id remove() takes.
  std::uint64_t add(Waker waker);
  void remove(std::uint64_t id);
  // Calls every waker. Costs one atomic load when nobody waits (the
  // producer is the event log: every store records an event).
  void wake_up_all();
  std::size_t size() const { return count_.load(std::memory_order_acquire); }

 private:
  // Order: after the producer's and the consumer's locks; leaf (wakers run
  // outside it).
  mutable Mutex mu_{"wait_queue"};
  std::map<std::uint64_t, Waker> wakers_ GUARDED_BY(mu_);
  std::uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::atomic<std::size_t> count_{0};
};

class Stream {
 public:
  virtual ~Stream() = default;
  // Up to out.size() bytes not handed out before by this stream, or
  // EAGAIN when there are none yet.
  virtual Result<std::size_t> read(std::span<char> out) = 0;
  // read() would return data now (poll's POLLIN).
  virtual bool ready() const = 0;
  // Woken when read() may have data.
  virtual WaitQueue& wait_queue() const = 0;
};

}  // namespace vsysfs::core
