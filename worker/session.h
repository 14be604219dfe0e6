#pragma once
// What every client connection handled by a worker thread has in common: it
// lives in its thread's session list (for draining and counting) and is
// destroyed only after the current epoll batch (EventLoop::retire).

#include <atomic>
#include <cstdint>
#include <string>

#include "common/event/buffer.h"
#include "common/event/event_loop.h"

namespace weir {

class ThreadContext;
class Server;

class Session : public Retired, public BufferUser {
 public:
  explicit Session(ThreadContext& ctx) : ctx_(ctx), id_(next_id_.fetch_add(1) + 1) {}
  ~Session() override;
  // The worker is stopping: close if idle, otherwise finish the current
  // request/connection and close after it.
  virtual void drain() = 0;
  // Close at once (hard stop, or `shutdown session` in the runtime API).
  virtual void kill() = 0;
  // One line for `show sess`.
  virtual std::string describe(int64_t now_ms) const = 0;
  // The server the current request or connection uses (nullptr if none).
  virtual const Server* server() const = 0;
  // Unique within the worker process.
  uint64_t id() const { return id_; }

  Session* prev_ = nullptr;  // intrusive links in ThreadContext's session list
  Session* next_ = nullptr;

 protected:
  // The buffer `b` from this thread's pool: true when it is held; false when the
  // session must wait (pool limit or memory out): it is queued, and
  // on_buffers_available() runs it again. `claim` is the most buffers the
  // session holds at once.
  bool take_buffer(Buffer& b, unsigned claim);
  // The session holds no buffer any more: its claim goes back to the pool.
  void drop_buffer_claim();
  // The session ends: its claim, and its place in the pool's queue.
  void leave_buffer_pool();

  ThreadContext& ctx_;
  uint64_t id_;
  static inline std::atomic<uint64_t> next_id_{0};
};

}  // namespace weir
