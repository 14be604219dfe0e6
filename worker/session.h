#pragma once
// What every client connection handled by a worker thread has in common: it
// lives in its thread's session list (for draining and counting) and is
// destroyed only after the current epoll batch (EventLoop::retire).

#include "common/event_loop.h"

namespace weir {

class ThreadContext;

class Session : public Retired {
 public:
  explicit Session(ThreadContext& ctx) : ctx_(ctx) {}
  ~Session() override = default;
  // The worker is stopping: close if idle, otherwise finish the current
  // request/connection and close after it.
  virtual void drain() = 0;
  // Close at once (hard stop).
  virtual void kill() = 0;

  Session* prev_ = nullptr;  // intrusive links in ThreadContext's session list
  Session* next_ = nullptr;

 protected:
  ThreadContext& ctx_;
};

}  // namespace weir
